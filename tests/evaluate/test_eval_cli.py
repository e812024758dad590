"""`vidla eval` end to end on a small benchmark in MSR-VTT's real file layout, with synthetic videos."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _eval_helpers import MSRVTT_CAPTIONS_PER_VIDEO, MSRVTT_FRAMES, ref_retrieval_metrics, run_cli
from scipy.special import softmax

import vidla
from vidla.data import load_video, preprocess_video

FRAMES = 4


def eval_argv(root, checkpoint, output, cache, *extra) -> list[str]:
    return ["eval", "--benchmark", "msrvtt", "--data-root", str(root), "--checkpoint", str(checkpoint),
            "--frames", str(FRAMES), "--output", str(output), "--cache-dir", str(cache), "--workers", "0",
            "--no-progress", *extra]


def reference_similarity(root, checkpoint, captions_and_videos) -> np.ndarray:
    """The texts x videos cosine matrix computed here through the public API, one video at a time."""
    model = vidla.load_model(checkpoint, num_frames=FRAMES).eval()
    texts = [text for text, _ in captions_and_videos]
    videos = list(dict.fromkeys(video for _, video in captions_and_videos))
    with torch.no_grad():
        pixels = [preprocess_video(load_video(root / "videos" / "all" / f"{v}.mp4", FRAMES), model.image_size)
                  for v in videos]
        video = F.normalize(model.encode_video(torch.stack(pixels)), dim=-1)
        text = F.normalize(model.encode_text(texts), dim=-1)
    return (text @ video.T).double().numpy(), [videos.index(v) for _, v in captions_and_videos]


@pytest.fixture(scope="module")
def first_run(msrvtt_root, tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    assert run_cli(eval_argv(msrvtt_root, tiny_checkpoint, out / "run", out / "cache", "--dsl")) == 0
    return out


def test_every_output_file(first_run, msrvtt_root, tiny_checkpoint):
    run = first_run / "run"
    assert sorted(p.name for p in run.iterdir()) == ["r1_by_duration.png", "results.json", "results.md"]
    results = json.loads((run / "results.json").read_text())
    # The protocol travels with the numbers.
    protocol = results["protocol"]
    assert results["benchmark"] == "msrvtt" and results["task"] == "retrieval"
    assert protocol["split"] == "test-1k" and protocol["videos"] == 8 and protocol["texts"] == 8
    assert protocol["texts_per_video"] == "1" and protocol["frames"] == FRAMES
    assert "uniform" in protocol["sampling"] and "pessimistic" in protocol["tie_rule"]
    assert "softmax" in protocol["dsl"] and "dim 0" in protocol["dsl"]
    assert protocol["missing_videos"] == "none" and "55.6" in protocol["reference"]
    assert results["model"]["checkpoint"] == str(tiny_checkpoint) and len(results["model"]["fingerprint"]) == 64
    # Every metric in both directions, plain and DSL, equal to the independent computation.
    rows = list(csv.DictReader((msrvtt_root / "MSRVTT_JSFUSION_test.csv").open()))
    sim, t2v = reference_similarity(msrvtt_root, tiny_checkpoint, [(r["sentence"], r["video_id"]) for r in rows])
    for name, value in ref_retrieval_metrics(sim, t2v).items():
        assert results["metrics"][name] == pytest.approx(value, abs=1e-9), name
    # DSL from its definition: t2v re-weights by a softmax over texts (axis 0), v2t by one over videos.
    t2v_dsl = ref_retrieval_metrics(sim * softmax(100 * sim, axis=0), t2v)
    v2t_dsl = ref_retrieval_metrics((sim.T * softmax(100 * sim.T, axis=0)).T, t2v)
    for name in t2v_dsl:
        expected = (t2v_dsl if name.startswith("t2v") else v2t_dsl)[name]
        assert results["metrics"][name + "_dsl"] == pytest.approx(expected, abs=1e-9), name
    # Duration bins cover every query; durations are the synthetic videos' (1 to 8 s).
    bins = results["by_duration"]
    assert sum(b["count"] for b in bins) == 8 and len(bins) >= 3
    assert bins[0]["min_s"] <= 1.0 and bins[-1]["max_s"] is None
    assert all("r1" in b and "r1_dsl" in b for b in bins)
    assert results["outputs"] == {"json": "results.json", "markdown": "results.md", "plot": "r1_by_duration.png"}
    assert [entry["cache"] for entry in results["cache"]] == ["miss", "miss"]
    # The markdown table: both directions, DSL rows beside plain ones, the protocol and the bins.
    markdown = (run / "results.md").read_text()
    for needle in ("| text -> video |", "| text -> video (DSL) |", "| video -> text (DSL) |", "R@1", "MdR",
                   "**tie rule**: pessimistic", "**frames**: 4", "t2v R@1 by video duration", "Paper"):
        assert needle in markdown, needle
    assert f"{results['metrics']['t2v_r1']:.1f}" in markdown
    # The plot is a PNG image.
    png = (run / "r1_by_duration.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    matplotlib_image = pytest.importorskip("matplotlib.image")
    assert matplotlib_image.imread(run / "r1_by_duration.png").shape[2] in (3, 4)


def test_second_run_reads_the_cache_and_agrees(first_run, msrvtt_root, tiny_checkpoint, monkeypatch):
    import vidla.evaluate.embed as embed

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached run must not decode video")

    monkeypatch.setattr(embed, "read_clip", no_decoding)
    argv = eval_argv(msrvtt_root, tiny_checkpoint, first_run / "again", first_run / "cache", "--dsl")
    assert run_cli(argv) == 0
    first = json.loads((first_run / "run" / "results.json").read_text())
    again = json.loads((first_run / "again" / "results.json").read_text())
    assert [entry["cache"] for entry in again["cache"]] == ["hit", "hit"]
    assert again["metrics"] == first["metrics"]


def test_full_test_split_has_several_captions_per_video(msrvtt_root, tiny_checkpoint, tmp_path):
    argv = eval_argv(msrvtt_root, tiny_checkpoint, tmp_path / "run", tmp_path / "cache", "--split", "test")
    argv[argv.index("--workers") + 1] = "2"  # decoding in DataLoader workers, as by default
    assert run_cli(argv) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    n = len(MSRVTT_FRAMES)
    assert results["protocol"]["texts_per_video"] == str(MSRVTT_CAPTIONS_PER_VIDEO)
    assert results["counts"] == {"videos": n, "texts": n * MSRVTT_CAPTIONS_PER_VIDEO,
                                 "t2v_queries": n * MSRVTT_CAPTIONS_PER_VIDEO, "v2t_queries": n}
    assert results["protocol"]["dsl"] == "off" and "t2v_r1_dsl" not in results["metrics"]
    assert results["protocol"]["reference"] is None or "55.6" not in results["protocol"].get("reference", "")
    # Different frames or inputs: a different cache entry (the first run's is not reused).
    assert [entry["cache"] for entry in results["cache"]] == ["miss", "miss"]


def test_missing_videos_stop_the_run_unless_allowed(msrvtt_root, tiny_checkpoint, tmp_path, capsys):
    root = tmp_path / "msrvtt"
    shutil.copytree(msrvtt_root, root)
    (root / "videos" / "all" / "video7003.mp4").unlink()
    assert run_cli(eval_argv(root, tiny_checkpoint, tmp_path / "run", tmp_path / "cache")) == 2
    assert "video7003" in capsys.readouterr().err and not (tmp_path / "run").exists()
    argv = eval_argv(root, tiny_checkpoint, tmp_path / "run", tmp_path / "cache", "--allow-missing")
    assert run_cli(argv) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["protocol"]["videos"] == 7 and results["protocol"]["missing_videos"].startswith("1 dropped")


def test_an_undecodable_video_stops_the_run_with_its_path(msrvtt_root, tiny_checkpoint, tmp_path, capsys):
    root = tmp_path / "msrvtt"
    shutil.copytree(msrvtt_root, root)
    (root / "videos" / "all" / "video7005.mp4").write_bytes(b"this is not a video")
    assert run_cli(eval_argv(root, tiny_checkpoint, tmp_path / "run", tmp_path / "cache")) == 2
    assert "video7005.mp4" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_config_file_and_list(msrvtt_root, tiny_checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VIDLA_CACHE_DIR", str(tmp_path / "default-cache"))
    config = tmp_path / "eval.yaml"
    config.write_text(f"benchmark: msrvtt\nframes: 2\nnum_duration_bins: 2\nduration_bins: null\n"
                      f"data_root: {msrvtt_root}\n")
    argv = ["eval", "--config", str(config), "--checkpoint", str(tiny_checkpoint), "--output", str(tmp_path / "r"),
            "--no-cache", "--workers", "0", "--no-progress"]
    assert run_cli(argv) == 0
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert results["protocol"]["frames"] == 2 and len(results["by_duration"]) == 2
    assert results["cache"][0]["cache"] == "miss" and "path" not in results["cache"][0]  # --no-cache: nothing written
    assert not (tmp_path / "default-cache").exists()
    assert "| text -> video |" in capsys.readouterr().out
    assert run_cli(["eval", "--list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in ("msrvtt", "didemo", "activitynet", "msvd", "vatex", "kinetics400"))


@pytest.mark.parametrize("config", sorted((Path(__file__).parents[2] / "configs" / "eval").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_shipped_configs_load(config):
    from vidla.config import from_dict, load_yaml
    from vidla.evaluate.protocols import get_protocol
    from vidla.evaluate.run import EvalOptions, resolve_sampling

    options = from_dict(EvalOptions, load_yaml(config))
    protocol = get_protocol(options.benchmark).with_split(options.split)
    assert resolve_sampling(protocol, options).num_frames == 32
