"""`vidla eval --benchmark manifest` on the synthetic temporal benchmark written by `vidla data synth`."""

from __future__ import annotations

import json

import torch

import vidla
from vidla.cli import main
from vidla.data import load_benchmark


def test_synth_then_eval_a_manifest_benchmark(tmp_path, capsys):
    data = tmp_path / "synth"
    assert main(["data", "synth", str(data), "--num-clips", "12", "--seed", "3"]) == 0
    split = load_benchmark("manifest", data, "test")
    assert split.task == "retrieval" and len(split.texts) == len(split.videos) > 0 and not split.missing
    checkpoint = vidla.save_model(vidla.create_model("vidla-tiny", temporal="hta", num_frames=8),
                                  tmp_path / "tiny.safetensors")
    out = tmp_path / "eval"
    # no --frames: the manifest benchmark evaluates with the checkpoint's 8 frames
    assert main(["eval", "--benchmark", "manifest", "--data-root", str(data), "--checkpoint", str(checkpoint),
                 "--output", str(out), "--no-cache", "--workers", "0", "--no-progress", "--threads", "1"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["model"]["num_frames"] == results["protocol"]["frames"] == 8
    metrics = results["metrics"] if "metrics" in results else results
    flat = json.dumps(metrics)
    assert "t2v_r1" in flat and "v2t_mdr" in flat
    # the figure equals a direct computation with the same model and frames
    model = vidla.load_model(checkpoint).eval()
    with torch.no_grad():
        videos = torch.stack([vidla.preprocess_video(vidla.load_video(v.video, num_frames=8), model.image_size)
                              for v in split.videos])
        sim = torch.nn.functional.normalize(model.encode_text(split.texts), dim=-1) @ \
            torch.nn.functional.normalize(model.encode_video(videos), dim=-1).T
    own = sim[torch.arange(len(split.texts)), torch.tensor(split.text_to_video)]
    expected_r1 = 100 * ((sim >= own[:, None]).sum(1) == 1).float().mean().item()
    assert abs(_find(metrics, "t2v_r1") - expected_r1) < 1e-6
    # twin accuracy: each caption against its own clip and the clip its record names as twin, by hand
    ids = [v.id for v in split.videos]
    wins = []
    for t, v in enumerate(split.text_to_video):
        own_score, twin_score = sim[t, v].item(), sim[t, ids.index(split.videos[v].extra["twin"])].item()
        wins.append(1.0 if own_score > twin_score else 0.5 if own_score == twin_score else 0.0)
    assert abs(metrics["twin_accuracy"] - 100 * sum(wins) / len(wins)) < 1e-6
    assert results["counts"]["twin_queries"] == len(wins)
    assert "Twin accuracy" in capsys.readouterr().out


def _find(tree, key):
    if isinstance(tree, dict):
        if key in tree and isinstance(tree[key], (int, float)):
            return tree[key]
        for value in tree.values():
            found = _find(value, key)
            if found is not None:
                return found
    return None
