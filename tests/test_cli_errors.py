"""One way a command reports a user's problem (vidla/errors.py): `vidla COMMAND: error: MESSAGE` on one line,
no traceback, exit 2 for bad input and 3 for a run that failed; a bug keeps its traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import vidla.train.loop
from vidla.cli import main
from vidla.train.loop import TrainingDiverged

REPO = Path(__file__).resolve().parents[1]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("argv, message", [
    (["train", "--config", "{tmp}/absent.yaml"], "vidla train: error: {tmp}/absent.yaml: config file not found"),
    (["search", "{tmp}/absent.index", "a dog"], "vidla search: error: {tmp}/absent.index: not a vidla search index"),
    (["eval-text", "{tmp}/absent.safetensors"], "vidla eval-text: error: {tmp}/absent.safetensors: no such file"),
    (["data", "verify", "{tmp}/absent.jsonl"], "vidla data verify: error: {tmp}/absent.jsonl: manifest not found"),
    (["curate", "status", "{tmp}"], "vidla curate status: error: no state store at {tmp}"),
    (["search", "{tmp}/absent.index"], "vidla search: error: give a text query or --example VIDEO"),
])
def test_bad_input_is_one_line_naming_the_file_and_exit_2(argv, message, tmp_path, capsys):
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    assert one_line_error(capsys).startswith(message.format(tmp=tmp_path))


def test_bad_config_value_is_named(tmp_path, capsys):
    config = tmp_path / "train.yaml"
    config.write_text("steps: -1\n", encoding="utf-8")
    assert main(["train", "--config", str(config)]) == 2
    assert one_line_error(capsys).startswith("vidla train: error: steps: ")


class Diverging:
    def __init__(self, *args, **kwargs):
        pass

    def run(self):
        raise TrainingDiverged("loss is nan at step 3")


def test_a_run_that_fails_exits_3(monkeypatch, capsys):
    monkeypatch.setattr(vidla.train.loop, "Trainer", Diverging)
    assert main(["train", "--config", str(REPO / "configs/train/tiny_cpu.yaml")]) == 3
    assert one_line_error(capsys) == "vidla train: error: loss is nan at step 3"


def test_a_bug_keeps_its_traceback(monkeypatch):
    class Broken(Diverging):
        def run(self):
            raise TypeError("a bug")

    monkeypatch.setattr(vidla.train.loop, "Trainer", Broken)
    with pytest.raises(TypeError, match="a bug"):
        main(["train", "--config", str(REPO / "configs/train/tiny_cpu.yaml")])
    monkeypatch.setattr(vidla.train.loop, "Trainer", Diverging)
    monkeypatch.setenv("VIDLA_TRACEBACK", "1")  # asked for: a user error shows where it came from too
    with pytest.raises(TrainingDiverged):
        main(["train", "--config", str(REPO / "configs/train/tiny_cpu.yaml")])


def test_the_command_line_prints_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "vidla.cli", "eval", "--benchmark", "msrvtt", "--data-root",
                             str(tmp_path / "absent"), "--checkpoint", str(tmp_path / "absent.pt")],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == f"vidla eval: error: {tmp_path / 'absent'}: the msrvtt root folder does not exist"
