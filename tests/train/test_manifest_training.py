"""Training from a real manifest of mp4 clips, with validation retrieval and a corrupt clip skipped."""

from __future__ import annotations

import json

import vidla
from vidla.data import read_manifest, write_manifest
from vidla.data.temporal_synth import generate
from vidla.train.config import load_train_config
from vidla.train.loop import Trainer


def test_train_on_manifest_with_validation_and_a_corrupt_clip(tmp_path):
    paths = generate(tmp_path / "data", num_clips=20, seed=0, progress=False)
    records = read_manifest(paths["train"])
    (tmp_path / "data" / records[0].video).write_bytes(b"not a video")  # one corrupt clip
    config = load_train_config(None, [
        "model.name=vidla-tiny", "model.temporal=hta", f"data.train={paths['train']}", f"data.val={paths['test']}",
        "data.num_frames=4", "data.workers=0", "data.group_size=2", "steps=4", "batch_size=4", "precision=fp32",
        "checkpoint_every=4", "log_every=1", "tensorboard=false", f"output_dir={tmp_path / 'run'}"])
    summary = Trainer(config, progress=False).run()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 16 and [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4]
    validation = [r for r in rows if "val_t2v_r1" in r]
    assert validation and 0 <= validation[-1]["val_t2v_r1"] <= 100 and validation[-1]["val_v2t_mdr"] >= 1
    assert vidla.load_model(tmp_path / "run" / "model.safetensors").config.temporal == "hta"
    # 4 steps x 4 clips = one epoch of the 16 clips: the corrupt one was met once, replaced and counted
    assert summary["skipped_samples"] == 1 and rows[-2]["skipped_samples"] == 1


def test_missing_text_kind_is_skipped(tmp_path):
    paths = generate(tmp_path / "data", num_clips=8, seed=0, progress=False)
    records = read_manifest(paths["train"])
    for record in records:
        record.texts.pop("subtitle")
    write_manifest(paths["train"], records)
    config = load_train_config(None, [
        "model.name=vidla-tiny", f"data.train={paths['train']}", "data.num_frames=2", "data.workers=0",
        "steps=1", "batch_size=2", "precision=fp32", "tensorboard=false", f"output_dir={tmp_path / 'run'}"])
    try:
        Trainer(config, progress=False).run()
    except RuntimeError as e:
        assert "consecutive samples failed" in str(e)
    else:
        raise AssertionError("clips without a subtitle cannot train a two-text objective")
