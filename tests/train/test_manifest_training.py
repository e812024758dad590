"""Training from a real manifest of mp4 clips, with validation retrieval and a corrupt clip skipped."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import vidla
from vidla.data import ClipRecord, read_manifest, write_manifest
from vidla.data.index import build_clip_index
from vidla.data.temporal_synth import generate
from vidla.train.clips import EmptyDataError, resolve_text_kinds, text_kind_counts
from vidla.train.config import load_train_config
from vidla.train.data import StepBatches
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


def test_text_kinds_default_to_what_the_manifest_holds(tmp_path):
    paths = generate(tmp_path / "data", num_clips=8, seed=0, progress=False)
    records = read_manifest(paths["train"])
    for record in records:
        record.texts.pop("subtitle")
    write_manifest(paths["train"], records)
    settings = ["model.name=vidla-tiny", f"data.train={paths['train']}", "data.num_frames=2", "data.workers=0",
                "steps=1", "batch_size=2", "precision=fp32", "tensorboard=false", f"output_dir={tmp_path / 'run'}"]
    trainer = Trainer(load_train_config(None, settings), progress=False)
    summary = trainer.run()  # a caption-only manifest trains on captions, no clip skipped
    assert trainer.text_kinds == ["caption"] and summary["skipped_samples"] == 0
    asked = load_train_config(None, [*settings, "data.text_kinds=[caption, subtitle]"])
    with pytest.raises(EmptyDataError, match=r"train.jsonl: data.text_kinds asks for subtitle, which no clip holds "
                                             r"\(text kinds found: caption \(6 clips\)\)"):
        Trainer(asked, progress=False).run()


def test_text_kinds_by_default_are_those_every_clip_holds(tmp_path):
    records = [ClipRecord(id=str(i), video=f"{i}.mp4", texts={"caption": "c", "subtitle": "s" if i else "",
                                                                "summary": ["a"] if i == 2 else []})
               for i in range(4)]
    assert resolve_text_kinds(records, None, "m.jsonl") == ["caption"]  # clip 0 has an empty subtitle
    records[0].texts["caption"] = ""
    assert resolve_text_kinds(records, None, "m.jsonl") == ["caption", "subtitle", "summary"]  # none common
    assert resolve_text_kinds(records, ["subtitle"], "m.jsonl") == ["subtitle"]
    index = build_clip_index(records, tmp_path / "clips.sqlite")
    assert text_kind_counts(index) == text_kind_counts(records) == {"caption": 3, "subtitle": 3, "summary": 1}
    with pytest.raises(EmptyDataError, match="m.jsonl: the manifest holds no clips"):
        resolve_text_kinds([], None, "m.jsonl")


def test_empty_manifest_is_a_clear_error(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    config = load_train_config(None, ["model.name=vidla-tiny", f"data.train={tmp_path / 'empty.jsonl'}",
                                      "data.workers=0", "steps=1", "batch_size=2", "precision=fp32",
                                      "tensorboard=false", f"output_dir={tmp_path / 'run'}"])
    with pytest.raises(EmptyDataError, match="empty.jsonl: the manifest holds no clips"):
        Trainer(config, progress=False).run()


def test_resume_with_a_corrupt_clip_continues_exactly(tmp_path):
    """The data order's state (bad clips, replacements drawn ahead) travels in the checkpoint: resuming from step 2
    ends with the weights of the uninterrupted run."""
    paths = generate(tmp_path / "data", num_clips=10, seed=0, progress=False)
    records = read_manifest(paths["train"])
    first = StepBatches(len(records), 2, steps=4, seed=0).epoch_order(0)[0]  # the first clip the run meets
    (tmp_path / "data" / records[first].video).write_bytes(b"not a video")
    settings = ["model.name=vidla-tiny", f"data.train={paths['train']}", "data.num_frames=2", "data.workers=0",
                "data.text_kinds=[caption]", "steps=4", "batch_size=2", "precision=fp32", "checkpoint_every=2",
                "tensorboard=false", "threads=1"]
    straight = Trainer(load_train_config(None, [*settings, f"output_dir={tmp_path / 'a'}"]), progress=False).run()
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "b" / "checkpoints" / "step_0000004")  # as if killed after the step-2 checkpoint
    (tmp_path / "b" / "model.safetensors").unlink()
    resumed = Trainer(load_train_config(None, [*settings, f"output_dir={tmp_path / 'b'}"]), resume=True,
                      progress=False).run()
    a = vidla.load_model(tmp_path / "a" / "model.safetensors").state_dict()
    b = vidla.load_model(tmp_path / "b" / "model.safetensors").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight["skipped_samples"] == resumed["skipped_samples"] == 1
