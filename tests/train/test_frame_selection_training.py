"""Training with key-frame selection: the distillation term against its definition, a frozen teacher, and
whole runs of `vidla train` (one process and torchrun)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

import vidla
from vidla.train.config import SelectionSection, load_train_config
from vidla.train.loop import Trainer
from vidla.train.selection import Distiller, distillation_loss, selection_guide

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs/train/tiny_cpu.yaml"
SELECTION = ["data.num_frames=8", "model.frame_selection.segments=4", "selection.distill_weight=0.5"]


def test_distillation_term_equals_its_definition():
    torch.manual_seed(0)
    model = vidla.create_model("vidla-tiny", temporal="hta", num_frames=8, frame_selection={"segments": 4})
    distiller = Distiller.for_training(model, SelectionSection(distill_weight=0.01))
    # an independent teacher: a model without a selector holding the same starting weights, on all 8 frames
    reference = vidla.create_model("vidla-tiny", temporal="hta", num_frames=8).eval()
    reference.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("frame_selector.")})

    video = torch.randn(3, 8, 3, 32, 32)
    student = model.train().encode_video(video)
    term = distiller.loss(video, student)
    with torch.no_grad():
        teacher = reference.encode_video(video)
    pairs = zip(student.detach().flatten().tolist(), teacher.flatten().tolist())
    expected = 0.01 * sum((s - t) ** 2 for s, t in pairs) / student.numel()
    assert term.item() == pytest.approx(expected, rel=1e-5)
    assert distillation_loss(torch.ones(2, 3), torch.zeros(2, 3), 0.25).item() == 0.25

    term.backward()  # the student learns from it, the teacher does not
    assert model.frame_selector.frame_mlp[1].weight.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in distiller.teacher.parameters())


def test_no_distiller_without_selection_or_weight():
    plain = vidla.create_model("vidla-tiny", num_frames=4)
    assert Distiller.for_training(plain, SelectionSection()) is None
    selecting = vidla.create_model("vidla-tiny", num_frames=4, frame_selection={"segments": 2})
    assert Distiller.for_training(selecting, SelectionSection(distill_weight=0.0)) is None


def test_selection_guide_keeps_or_zeroes_whole_texts():
    text = torch.randn(1000, 8, requires_grad=True)
    guide = selection_guide(text, 0.3)
    kept = guide.abs().sum(-1) > 0
    assert torch.equal(guide[kept], text[kept].detach()) and not guide.requires_grad
    assert 0.25 < kept.float().mean() < 0.35
    assert selection_guide(text, 0.0).abs().sum() == 0


def test_config_checks_the_segments(tmp_path):
    with pytest.raises(ValueError, match="not a multiple"):
        load_train_config(TINY, ["data.num_frames=6", "model.frame_selection.segments=4"]).validate()


def test_training_run_anneals_distills_and_saves_the_selector(tmp_path):
    config = load_train_config(TINY, [*SELECTION, "steps=3", "checkpoint_every=3", f"output_dir={tmp_path}"])
    Trainer(config, progress=False).run()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert all(r["loss_distill"] > 0 for r in rows)
    assert rows[-1]["loss"] == pytest.approx(rows[-1]["loss_caption"] + rows[-1]["loss_subtitle"]
                                             + rows[-1]["loss_distill"], rel=1e-5)
    model = vidla.load_model(tmp_path / "model.safetensors")
    assert model.config.frame_selection.segments == 4
    torch.manual_seed(0)  # the run's seed: the selector it started from
    start = vidla.create_model("vidla-tiny", temporal="hta", num_frames=8, frame_selection={"segments": 4})
    moved = (model.frame_selector.frame_mlp[1].weight - start.frame_selector.frame_mlp[1].weight).abs().max()
    assert moved > 1e-4
    assert model.frame_selector.temperature.item() == 1.0  # not saved: set by the loop at every step


def test_torchrun_trains_a_selecting_model(tmp_path):
    import subprocess

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(30500 + os.getpid() % 1000), "-m", "vidla.cli", "train", "--config", str(TINY),
               f"output_dir={tmp_path}", "--no-progress", "steps=2", *SELECTION]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["loss_distill"] > 0 for r in rows)
    assert vidla.load_model(tmp_path / "model.safetensors").frame_selector is not None
