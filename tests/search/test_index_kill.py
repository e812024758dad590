"""kill -9 in the middle of `vidla index`, then a rerun: nothing lost, nothing duplicated, the same index as a clean
build."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

from _search_helpers import SCALES, make_collection, settings
from test_index import assert_same_index

from vidla.search import IndexStore, build_index, plan_windows
from vidla.search.windows import WindowConfig

REPO = Path(__file__).resolve().parents[2]


def _videos_committed(database: Path) -> int:
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM videos").fetchone()[0]
    except sqlite3.Error:
        return 0  # not created yet


def test_kill_9_mid_run_then_rerun_equals_a_clean_build(tmp_path, tiny_checkpoint, kill_9_when):
    folder = tmp_path / "videos"
    make_collection(folder, extra_plain=14)  # 16 videos
    out = tmp_path / "killed.index"
    command = [sys.executable, "-m", "vidla.cli", "index", str(folder), "--checkpoint", str(tiny_checkpoint),
               "--out", str(out), "--scales", SCALES, "--no-progress", "--batch-size", "2"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    kill_9_when(command, lambda: _videos_committed(out / "index.sqlite") >= 3, timeout=120, cwd=REPO, env=env)

    with IndexStore(out, readonly=True) as store:  # each committed video is whole
        committed = store.videos()
        assert 3 <= len(committed) < 16
        for video in committed.values():
            windows, vectors = store.video_windows(video.id)
            assert len(windows) == len(vectors) == len(plan_windows(video.duration,
                                                                     WindowConfig({"short": 4.0, "medium": 8.0})))
    resumed = build_index([folder], out, tiny_checkpoint, settings=settings())
    assert resumed.embedded == 16 - len(committed) and resumed.unchanged == len(committed)
    build_index([folder], tmp_path / "clean.index", tiny_checkpoint, settings=settings())
    assert_same_index(out, tmp_path / "clean.index")
