"""kill -9 in the middle of a run, twice, then a rerun: the output equals an uninterrupted run's, byte for byte."""

import sqlite3
import subprocess
import sys
from pathlib import Path

from _curate_synth import OUTPUTS, ChatServer, make_corpus

REPO = Path(__file__).resolve().parents[2]


def _command(corpus: Path, output: Path, url: str) -> list[str]:
    return [sys.executable, "-m", "vidla.cli", "curate", "run", "--input", str(corpus), "--output", str(output),
            "--captioner", "openai", "--captioner-model", "vlm", "--captioner-url", url,
            "--summarizer", "openai", "--summarizer-model", "llm", "--summarizer-url", url,
            "--concurrency", "2", "--no-progress", "--set", "captions.fps=0.2", "--set", "run.memo_chunk=3"]


def _memo_rows(store: Path) -> int:
    try:
        with sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM memo").fetchone()[0]
    except sqlite3.Error:
        return 0  # not created yet


def test_kill_9_then_rerun_gives_the_uninterrupted_output(tmp_path, kill_9_when):
    corpus = make_corpus(tmp_path / "corpus")
    server = ChatServer(delay=0.01)
    try:
        reference, killed = tmp_path / "reference", tmp_path / "killed"
        subprocess.run(_command(corpus, reference, server.url), cwd=REPO, check=True, capture_output=True)
        total = _memo_rows(reference / "state.sqlite")
        assert total > 60

        store = killed / "state.sqlite"
        kill_9_when(_command(corpus, killed, server.url), lambda: _memo_rows(store) >= total // 4, cwd=REPO)
        first = _memo_rows(store)
        assert not (killed / "manifest.jsonl").exists()  # nothing half-written
        kill_9_when(_command(corpus, killed, server.url), lambda: _memo_rows(store) >= first + total // 3, cwd=REPO)
        requests_before = len(server.requests)
        finished = subprocess.run(_command(corpus, killed, server.url), cwd=REPO, capture_output=True, text=True)
        assert finished.returncode == 0, finished.stderr
        assert "4 done, 2 failed" in finished.stdout
    finally:
        server.close()
    for name in OUTPUTS:
        assert (killed / name).read_bytes() == (reference / name).read_bytes(), name
    # The last rerun asked only for what the killed runs had not stored (a few in flight at a kill are redone).
    assert len(server.requests) - requests_before < total - first
