"""Zero-shot classification and multiple choice on the real clips of ../shared/realdata.

The model has random weights, so the scores mean nothing; the tests check the whole path (benchmark readers, real
codecs and sizes, 400 classes x 28 prompts, option scoring) and every output.
"""

import json

from _eval_helpers import run_cli

# Real clips and the Kinetics-400 class that fits each (the NTU and pool clips are labelled by their nearest class).
KINETICS_CLIPS = {"kinetics_arm_wrestling": "arm wrestling", "pool_cleaning": "cleaning pool",
                  "ntu_drink_water": "drinking"}


def kinetics_root(realdata, tmp_path):
    """A Kinetics-400 layout (validate.csv + class list + untrimmed videos) over the real clips, by symlinks."""
    root = tmp_path / "kinetics400"
    (root / "videos").mkdir(parents=True)
    (root / "kinetics400_classes.txt").symlink_to(realdata / "annotations" / "kinetics400_classes.txt")
    rows = ["label,youtube_id,time_start,time_end,split"]
    for name, label in KINETICS_CLIPS.items():
        source = next((realdata / "videos").glob(f"{name}.*"))
        (root / "videos" / source.name).symlink_to(source)
        rows.append(f"{label},{name},0,10,val")
    (root / "validate.csv").write_text("\n".join(rows) + "\n")
    return root


def common_argv(checkpoint, output, cache):
    return ["--checkpoint", str(checkpoint), "--frames", "8", "--output", str(output), "--cache-dir", str(cache),
            "--workers", "0", "--no-progress"]


def test_zero_shot_kinetics_on_real_clips(realdata, tiny_checkpoint, tmp_path):
    root = kinetics_root(realdata, tmp_path)
    argv = ["eval", "--benchmark", "kinetics400", "--data-root", str(root),
            *common_argv(tiny_checkpoint, tmp_path / "run", tmp_path / "cache")]
    assert run_cli(argv) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["task"] == "zero_shot_classification"
    assert results["protocol"]["classes"] == 400 and results["protocol"]["videos"] == 3
    assert results["protocol"]["templates"] == "kinetics" and "60.2" in results["protocol"]["reference"]
    assert set(results["metrics"]) == {"top1", "top5", "mean_class_top1"}
    assert all(0 <= v <= 100 for v in results["metrics"].values())
    # 400 classes x 28 templates embedded once, and the three clips with their real durations (10, 10, 3.4 s).
    text_entry = next(e for e in results["cache"] if e["kind"] == "text")
    assert text_entry["count"] == 400 * 28
    assert sum(b["count"] for b in results["by_duration"]) == 3 and results["by_duration"][0]["min_s"] <= 3.4
    assert results["duration_metric"] == "top-1 accuracy"
    markdown = (tmp_path / "run" / "results.md").read_text()
    assert "| top1 | top5 | mean_class_top1 |" in markdown and "**templates**: kinetics" in markdown
    assert (tmp_path / "run" / "r1_by_duration.png").read_bytes()[:4] == b"\x89PNG"


def test_zero_shot_multiple_choice_on_real_msrvtt_clips(realdata, tiny_checkpoint, tmp_path):
    argv = ["eval", "--benchmark", "msrvtt-mc", "--data-root", str(realdata),
            *common_argv(tiny_checkpoint, tmp_path / "run", tmp_path / "cache")]
    assert run_cli(argv) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["task"] == "multiple_choice" and results["protocol"]["split"] == "mc-test"
    assert results["counts"] == {"videos": 2, "options": 10}
    assert results["metrics"]["accuracy"] in (0.0, 50.0, 100.0)
    assert results["protocol"]["texts_per_video"] == "5"
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"results.json", "results.md", "r1_by_duration.png"}
