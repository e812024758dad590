import shlex
import subprocess
import sys

import torch

import vidla
from vidla.cli import main
from vidla.data.manifest import read_manifest_resolved


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


def test_demo_quick_runs_end_to_end(capsys, tmp_path):
    import json

    assert main(["demo", "--quick", "--output", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| design | t2v R@1 |" in out and "verdict:" in out and "query:" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["designs"]) == {"meanpool", "hta"}
    for metrics in results["designs"].values():
        assert 0 <= metrics["t2v_r1"] <= 100 and 0 <= metrics["twin_accuracy"] <= 100
    assert (tmp_path / "demo_results.png").stat().st_size > 1000
    assert (tmp_path / "hta" / "model.safetensors").is_file() and (tmp_path / "data" / "test.jsonl").is_file()
    # the command the demo ends with indexes and searches its test clips (the newcomer's path to search)
    line = next(line for line in out.splitlines() if line.strip().startswith("vidla index"))
    index_command, search_command, serve_command = [shlex.split(part)[1:] for part in line.split(" && ")]
    assert serve_command[0] == "serve"
    assert main(index_command + ["--no-progress"]) == 0
    capsys.readouterr()
    assert main(search_command + ["--json", "-k", "3"]) == 0
    found = json.loads(capsys.readouterr().out)["results"]
    test_videos = {str(r.video) for r in read_manifest_resolved(tmp_path / "data" / "test.jsonl")}
    assert found and all(video["path"] in test_videos for video in found)
