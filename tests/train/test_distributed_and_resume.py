"""End-to-end runs of `vidla train`: two processes under torchrun equal one process, and a run killed with
SIGKILL and resumed ends with the weights of an uninterrupted run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vidla
from vidla.train.config import load_train_config
from vidla.train.loop import Trainer, TrainingDiverged

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "configs/train/tiny_cpu.yaml")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def train(output: Path, *overrides: str, launcher: list[str] | None = None, check: bool = True):
    command = (launcher or [sys.executable, "-m", "vidla.cli"]) + \
        ["train", "--config", TINY, f"output_dir={output}", "--no-progress", *overrides]
    if launcher:
        command = launcher + ["-m", "vidla.cli"] + command[len(launcher):]
    return subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300, check=check)


def weights(output: Path) -> dict[str, torch.Tensor]:
    return vidla.load_model(output / "model.safetensors").state_dict()


def losses(output: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (output / "metrics.jsonl").read_text().splitlines()]


def assert_same_weights(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=atol, rtol=0), (key, (a[key] - b[key]).abs().max())


@pytest.mark.parametrize("mode", ["ddp", "ddp-local-loss", "fsdp"])
def test_two_processes_equal_one(tmp_path, mode):
    extra = ["local_loss=true"] if mode == "ddp-local-loss" else []
    strategy = "fsdp" if mode == "fsdp" else "ddp"
    single = train(tmp_path / "one", "steps=4", *extra)
    assert single.returncode == 0
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                str(29500 + os.getpid() % 1000 + ["ddp", "ddp-local-loss", "fsdp"].index(mode))]
    result = train(tmp_path / "two", "steps=4", f"strategy={strategy}", *extra, launcher=torchrun, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert losses(tmp_path / "one") == pytest.approx(losses(tmp_path / "two"), rel=1e-5)
    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert_same_weights(one, two, atol=2e-5)
    start = vidla.create_model("vidla-tiny", temporal="hta", num_frames=4).state_dict()
    moved = max((one[k] - start[k]).abs().max().item() for k in one)
    assert moved > 1e-3  # the runs trained: equal weights are not the initial ones


def test_killed_run_resumes_to_the_same_weights(tmp_path, kill_9_when):
    settings = ["steps=14", "checkpoint_every=3", "keep_checkpoints=2", "data.num_frames=8", "batch_size=16"]
    train(tmp_path / "straight", *settings)

    out = tmp_path / "killed"
    command = [sys.executable, "-m", "vidla.cli", "train", "--config", TINY, f"output_dir={out}", "--no-progress",
               *settings]
    kill_9_when(command, (out / "checkpoints" / "step_0000006").is_dir, timeout=120, env=ENV)
    assert not (out / "model.safetensors").exists(), "the run finished before it was killed"
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir() if not p.name.startswith("."))
    assert checkpoints and len(checkpoints) <= 2  # only complete ones, the last K kept

    resumed = train(out, *settings, "--resume")
    assert "resuming from" in resumed.stdout
    assert_same_weights(weights(tmp_path / "straight"), weights(out), atol=1e-6)
    assert losses(out) == pytest.approx(losses(tmp_path / "straight"), rel=1e-6)  # no duplicated step rows
    assert (out / "checkpoints" / "step_0000014" / "state.pt").is_file()


def test_nan_loss_stops_with_the_step_and_no_checkpoint(tmp_path, monkeypatch):
    from vidla.train import loss as loss_module

    calls = {"n": 0}
    original = loss_module.ContrastiveLoss.forward

    def poisoned(self, video, texts, logit_scale):
        calls["n"] += 1
        total, parts = original(self, video, texts, logit_scale)
        return (total * float("nan"), parts) if calls["n"] == 3 else (total, parts)

    monkeypatch.setattr(loss_module.ContrastiveLoss, "forward", poisoned)
    config = load_train_config(TINY, [f"output_dir={tmp_path}", "checkpoint_every=1", "steps=5"])
    with pytest.raises(TrainingDiverged, match="step 3: the loss is nan.*step_0000002"):
        Trainer(config, progress=False).run()
    saved = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert saved == ["step_0000001", "step_0000002"]
    assert vidla.load_model(tmp_path / "checkpoints" / "step_0000002" / "model.safetensors") is not None


def test_resolved_config_is_saved(tmp_path):
    train(tmp_path, "steps=1", "optim.lr=0.002")
    saved = load_train_config(tmp_path / "config.yaml")
    assert saved.optim.lr == 0.002 and saved.steps == 1 and saved.output_dir == str(tmp_path)
