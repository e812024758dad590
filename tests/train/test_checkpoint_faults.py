"""Faults around checkpoints: a full disk while writing one, and an unreadable newest checkpoint on resume."""

from __future__ import annotations

import errno
import hashlib
import logging
from pathlib import Path

import pytest
import torch

import vidla
from vidla.cli import main
from vidla.train import checkpoint as checkpoint_module
from vidla.train.checkpoint import CheckpointWriteError, list_checkpoints
from vidla.train.config import load_train_config
from vidla.train.loop import Trainer

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "configs/train/tiny_cpu.yaml")
FAST = ["steps=2", "checkpoint_every=1", "batch_size=4", "data.num_frames=2", "threads=1"]


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def full_disk_after(first_bytes: int):
    """A torch.save whose file fills the disk after `first_bytes` bytes: the OSError a real full disk raises."""
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        class Full:
            written = 0

            def write(self, data):
                if self.written + len(data) > first_bytes:
                    raise OSError(errno.ENOSPC, "No space left on device")
                self.written += len(data)
                return f.write(data)

            def flush(self):
                f.flush()

        return real_save(obj, Full(), *args, **kwargs)

    return save


def test_full_disk_while_checkpointing_names_the_path_and_keeps_the_previous(tmp_path, monkeypatch):
    config = load_train_config(TINY, [f"output_dir={tmp_path}", *FAST])
    calls = {"n": 0}
    real_save = checkpoint_module.save_checkpoint

    def second_fills_the_disk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            monkeypatch.setattr(torch, "save", full_disk_after(1000))
        return real_save(*args, **kwargs)

    monkeypatch.setattr("vidla.train.loop.save_checkpoint", second_fills_the_disk)
    with pytest.raises(CheckpointWriteError, match=r"no space left on device: .*\.step_0000002\.partial"):
        Trainer(config, progress=False).run()
    folder = tmp_path / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["step_0000001"]  # no partial folder left behind
    assert vidla.load_model(folder / "step_0000001" / "model.safetensors") is not None
    assert torch.load(folder / "step_0000001" / "state.pt", weights_only=True)["step"] == 1


def test_full_disk_in_the_weights_file_and_the_cli_message(tmp_path, monkeypatch, capsys):
    assert main(["train", "--config", TINY, f"output_dir={tmp_path}", "--no-progress", *FAST[:1], *FAST[2:],
                 "checkpoint_every=1", "steps=1"]) == 0
    before = digest(tmp_path / "checkpoints" / "step_0000001")

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module, "save_state_dict", no_space)
    code = main(["train", "--config", TINY, f"output_dir={tmp_path}", "--no-progress", *FAST, "--resume"])
    assert code == 3
    assert "error: no space left on device: " + str(tmp_path / "checkpoints" / ".step_0000002.partial") in \
        capsys.readouterr().err
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step_0000001"]
    assert digest(tmp_path / "checkpoints" / "step_0000001") == before  # the previous checkpoint is untouched


@pytest.mark.parametrize("damaged", ["state.pt", "model.safetensors"])
def test_corrupt_newest_checkpoint_falls_back_to_the_previous(tmp_path, damaged, caplog, capsys):
    config = load_train_config(TINY, [f"output_dir={tmp_path}", *FAST])
    Trainer(config, progress=False).run()
    newest = list_checkpoints(tmp_path / "checkpoints")[-1]
    data = (newest / damaged).read_bytes()
    (newest / damaged).write_bytes(data[: len(data) // 2])  # torn by a failing disk
    resumed = load_train_config(TINY, [f"output_dir={tmp_path}", *FAST[1:], "steps=3"])
    with caplog.at_level(logging.WARNING):
        Trainer(resumed, resume=True, progress=False).run()
    assert f"{newest}: unreadable checkpoint, falling back to the previous one" in caplog.text
    assert f"resuming from {tmp_path / 'checkpoints' / 'step_0000001'} (step 1)" in capsys.readouterr().out
    assert torch.load(tmp_path / "checkpoints" / "step_0000003" / "state.pt", weights_only=True)["step"] == 3
