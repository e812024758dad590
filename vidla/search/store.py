"""The search index on disk: a folder holding `index.sqlite` (the truth) and `vectors.faiss` (derived from it).

SQLite holds every video (path, size, mtime, content hash, duration), every window (video, start, end, scale) and
its embedding (float32 blob), and the index's identity: the model that made it and the window plan. A video and
all its windows are written in one transaction, so a run killed at any point leaves each video either absent or
whole; `generation` counts committed changes. The faiss file records the generation it was built from, and one that
lags is rebuilt from SQLite, never trusted.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from vidla.errors import VidlaError

FORMAT = "vidla-search-1"
DATABASE = "index.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS videos (
    id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL, duration REAL NOT NULL, width INTEGER, height INTEGER);
CREATE TABLE IF NOT EXISTS windows (
    id INTEGER PRIMARY KEY, video_id INTEGER NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    start REAL NOT NULL, end REAL NOT NULL, scale TEXT NOT NULL, vector BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS windows_video ON windows (video_id);
CREATE INDEX IF NOT EXISTS videos_sha256 ON videos (sha256);
CREATE TABLE IF NOT EXISTS failures (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, error TEXT NOT NULL);
"""


BOOKKEEPING = ("format", "generation", "next_window_id")  # meta keys that are not the index's identity


class SearchIndexError(VidlaError, ValueError):
    """An index that cannot be used as asked; the message names the index and the fault."""


@dataclass(frozen=True)
class VideoRow:
    id: int
    path: str
    size: int
    mtime_ns: int
    sha256: str
    duration: float
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class WindowRow:
    id: int
    video_id: int
    start: float
    end: float
    scale: str


class IndexStore:
    """One SQLite connection to an index folder; `readonly` for searching and serving."""

    def __init__(self, folder: str | Path, create: bool = False, readonly: bool = False):
        self.folder = Path(folder)
        self.path = self.folder / DATABASE
        if not self.path.is_file():
            if not create:
                raise FileNotFoundError(f"{self.folder}: not a vidla search index (no {DATABASE}); "
                                        "build one with `vidla index`")
            self.folder.mkdir(parents=True, exist_ok=True)
        if readonly:
            self.db = sqlite3.connect(f"file:{self.path.resolve().as_posix()}?mode=ro", uri=True,
                                      check_same_thread=False, timeout=30)
        else:
            self.db = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # in WAL mode: durable against a killed process
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.executescript(_SCHEMA)
        format_ = self.meta().get("format")
        if format_ not in (None, FORMAT):
            raise SearchIndexError(f"{self.folder}: index format {format_!r}, this vidla reads {FORMAT!r}")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "IndexStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- identity ------------------------------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        try:
            return dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.OperationalError:  # a read-only open of an empty file
            return {}

    def identity(self) -> dict[str, Any]:
        """The JSON-valued identity keys (model, windows, ...) written by `set_identity`."""
        return {k: json.loads(v) for k, v in self.meta().items() if k not in BOOKKEEPING}

    def set_identity(self, identity: dict[str, Any]) -> None:
        rows = [(k, json.dumps(v, sort_keys=True)) for k, v in identity.items()] + [("format", FORMAT)]
        with self.transaction():
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows)

    @property
    def generation(self) -> int:
        return int(self.meta().get("generation", 0))

    # -- writing ---------------------------------------------------------------------------------------------------

    def transaction(self):
        return _Transaction(self.db)

    def _bump(self) -> None:
        self.db.execute("INSERT INTO meta VALUES ('generation', '1') "
                        "ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1")

    def put_video(self, video: VideoRow, windows: Sequence[tuple[float, float, str]], vectors: np.ndarray) -> int:
        """Replaces any video at `video.path` by this one and its windows, in one transaction; returns its id."""
        if len(windows) != len(vectors):
            raise ValueError(f"{video.path}: {len(windows)} windows but {len(vectors)} vectors")
        with self.transaction():
            self.db.execute("DELETE FROM videos WHERE path = ?", (video.path,))
            self.db.execute("DELETE FROM failures WHERE path = ?", (video.path,))
            cursor = self.db.execute(
                "INSERT INTO videos (path, size, mtime_ns, sha256, duration, width, height) VALUES (?,?,?,?,?,?,?)",
                (video.path, video.size, video.mtime_ns, video.sha256, video.duration, video.width, video.height))
            video_id = int(cursor.lastrowid)
            first = self._allocate_window_ids(len(windows))
            self.db.executemany(
                "INSERT INTO windows (id, video_id, start, end, scale, vector) VALUES (?, ?, ?, ?, ?, ?)",
                [(first + i, video_id, s, e, scale, np.ascontiguousarray(v, dtype=np.float32).tobytes())
                 for i, ((s, e, scale), v) in enumerate(zip(windows, vectors))])
            self._bump()
        return video_id

    def _allocate_window_ids(self, count: int) -> int:
        """The first of `count` new window ids (inside a transaction). Ids come from a counter kept in meta, never
        from SQLite's max(id) + 1 alone, so a deleted window's id is never given to another: a vector index built
        earlier can then be brought up to date by ids alone (`window_id_floor`)."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'next_window_id'").fetchone()
        top = int(self.db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM windows").fetchone()[0])
        first = max(int(row[0]) if row else 0, top)
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('next_window_id', ?)", (str(first + count),))
        return first

    def start_window_counter(self) -> int:
        """Makes sure the id counter exists (an index made before it had none) and returns `window_id_floor`."""
        with self.transaction():
            return self._allocate_window_ids(0)

    @property
    def window_id_floor(self) -> int | None:
        """Every window id given so far is below this, and no id below it will be given again; None for an index
        whose counter has not started."""
        value = self.meta().get("next_window_id")
        return None if value is None else int(value)

    def touch_video(self, video_id: int, size: int, mtime_ns: int) -> None:
        """The file changed on disk but not in content (same hash): only its stat is updated."""
        with self.transaction():
            self.db.execute("UPDATE videos SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime_ns, video_id))

    def delete_videos(self, paths: Iterable[str]) -> int:
        paths = list(paths)
        if not paths:
            return 0
        with self.transaction():
            self.db.executemany("DELETE FROM videos WHERE path = ?", [(p,) for p in paths])
            self.db.executemany("DELETE FROM failures WHERE path = ?", [(p,) for p in paths])
            self._bump()
        return len(paths)

    def put_failure(self, path: str, size: int, mtime_ns: int, error: str) -> None:
        with self.transaction():
            self.db.execute("DELETE FROM videos WHERE path = ?", (path,))
            self.db.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?)", (path, size, mtime_ns, error))
            self._bump()

    # -- reading ---------------------------------------------------------------------------------------------------

    def videos(self) -> dict[str, VideoRow]:
        rows = self.db.execute("SELECT id, path, size, mtime_ns, sha256, duration, width, height FROM videos")
        return {row[1]: VideoRow(*row) for row in rows}

    def video(self, video_id: int) -> VideoRow | None:
        row = self.db.execute("SELECT id, path, size, mtime_ns, sha256, duration, width, height FROM videos "
                              "WHERE id = ?", (video_id,)).fetchone()
        return None if row is None else VideoRow(*row)

    def failures(self) -> dict[str, tuple[int, int, str]]:
        return {p: (s, m, e) for p, s, m, e in self.db.execute("SELECT path, size, mtime_ns, error FROM failures")}

    def video_windows(self, video_id: int) -> tuple[list[tuple[float, float, str]], np.ndarray]:
        rows = self.db.execute("SELECT start, end, scale, vector FROM windows WHERE video_id = ? ORDER BY id",
                               (video_id,)).fetchall()
        return [(s, e, scale) for s, e, scale, _ in rows], _stack([r[3] for r in rows])

    def windows(self, ids: Sequence[int]) -> dict[int, WindowRow]:
        out: dict[int, WindowRow] = {}
        ids = [int(i) for i in ids]
        for i in range(0, len(ids), 900):  # SQLite's bound-parameter limit
            chunk = ids[i:i + 900]
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(f"SELECT id, video_id, start, end, scale FROM windows WHERE id IN ({marks})",
                                       chunk):
                out[row[0]] = WindowRow(*row)
        return out

    def window_vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored float32 vectors of these windows (absent ids are left out)."""
        out: dict[int, np.ndarray] = {}
        ids = [int(i) for i in ids]
        for i in range(0, len(ids), 900):
            chunk = ids[i:i + 900]
            marks = ",".join("?" * len(chunk))
            for window_id, blob in self.db.execute(f"SELECT id, vector FROM windows WHERE id IN ({marks})", chunk):
                out[window_id] = np.frombuffer(blob, dtype=np.float32)
        return out

    def vectors_of(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these windows, [len(ids), D] float32 in the order given; every id must exist."""
        found = self.window_vectors(ids)
        missing = [int(i) for i in ids if int(i) not in found]
        if missing:
            raise SearchIndexError(f"{self.folder}: windows {missing[:5]} are not in the index")
        return np.stack([found[int(i)] for i in ids]) if len(ids) else np.zeros((0, 0), np.float32)

    def window_ids(self) -> np.ndarray:
        """Every window's id, int64, ascending."""
        return np.fromiter((r[0] for r in self.db.execute("SELECT id FROM windows ORDER BY id")), dtype=np.int64)

    def count_windows(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM windows").fetchone()[0])

    def iter_vectors(self, batch: int = 65_536) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(window ids int64 [n], vectors float32 [n, D]) in id order, `batch` rows at a time."""
        last = -1
        while True:
            rows = self.db.execute("SELECT id, vector FROM windows WHERE id > ? ORDER BY id LIMIT ?",
                                   (last, batch)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield np.array([r[0] for r in rows], dtype=np.int64), _stack([r[1] for r in rows])

    def vector(self, window_id: int) -> np.ndarray | None:
        row = self.db.execute("SELECT vector FROM windows WHERE id = ?", (window_id,)).fetchone()
        return None if row is None else np.frombuffer(row[0], dtype=np.float32).copy()


def _stack(blobs: list[bytes]) -> np.ndarray:
    if not blobs:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([np.frombuffer(b, dtype=np.float32) for b in blobs])


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (the connection runs in autocommit mode)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, *exc: Any) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
