import subprocess
import sys

import torch

import vidla
from vidla.cli import main


def test_help_and_info(capsys):
    assert main([]) == 0
    assert "info" in capsys.readouterr().out
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert vidla.__version__ in out and torch.__version__ in out and "device" in out


def test_console_script_entry_point():
    result = subprocess.run([sys.executable, "-m", "vidla.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and vidla.__version__ in result.stdout


def test_models_lists_the_registry(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("vidla-b32", "vidla-b16", "vidla-l14", "vidla-tiny"):
        assert name in out


def test_demo_quick_runs_end_to_end(capsys):
    assert main(["demo", "--quick"]) == 0
    out = capsys.readouterr().out
    assert "t2v_r1" in out and "top clips" in out
