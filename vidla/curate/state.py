"""The state store: a local SQLite file recording each finished unit of work, so a rerun skips it.

A unit is keyed by (video, stage, key), where `key` hashes the stage's parameters together with the keys of
the stages it reads: change a parameter and that stage and everything downstream of it run again, nothing
else does. Model calls are also memoised one by one (table `memo`), so a video interrupted halfway through its
captions resumes at the next frame.

Kill -9 safety: every write is one SQLite transaction in WAL mode, so a killed process leaves each unit
either absent or whole. Units are written only when finished (there is no "running" state to clean up), and
outputs are written atomically from the store at the end of a run.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS units (
    video TEXT NOT NULL, stage TEXT NOT NULL, key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    result TEXT, error TEXT, attempts INTEGER NOT NULL DEFAULT 1, seconds REAL, updated REAL NOT NULL,
    PRIMARY KEY (video, stage, key));
CREATE TABLE IF NOT EXISTS memo (
    namespace TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (namespace, key));
CREATE TABLE IF NOT EXISTS params (key TEXT PRIMARY KEY, stage TEXT NOT NULL, params TEXT NOT NULL);
"""


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def unit_key(stage: str, params: dict[str, Any], upstream: Iterable[str] = ()) -> str:
    """Hash of a stage's parameters and of the keys of its inputs."""
    payload = canonical_json({"stage": stage, "params": params, "upstream": list(upstream)})
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Unit:
    status: str
    result: Any
    error: str | None
    attempts: int


class StateStore:
    """Thread-safe (one connection behind a lock); several processes may share a file, but keep it on a local
    disk: SQLite's locking is unreliable on network file systems."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), timeout=60.0, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # in WAL mode: durable against a killed process
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "StateStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def get(self, video: str, stage: str, key: str) -> Unit | None:
        with self._lock:
            row = self._db.execute("SELECT status, result, error, attempts FROM units "
                                   "WHERE video=? AND stage=? AND key=?", (video, stage, key)).fetchone()
        if row is None:
            return None
        status, result, error, attempts = row
        return Unit(status, None if result is None else json.loads(result), error, attempts)

    def put_done(self, video: str, stage: str, key: str, result: Any, seconds: float = 0.0) -> Any:
        """Records a finished unit; returns the result as read back, so that a fresh result and a stored one
        are the same object (floats and tuples pass through JSON alike)."""
        encoded = canonical_json(result)
        self._put(video, stage, key, "done", encoded, None, seconds)
        return json.loads(encoded)

    def put_failed(self, video: str, stage: str, key: str, error: str, seconds: float = 0.0) -> None:
        self._put(video, stage, key, "failed", None, error, seconds)

    def _put(self, video: str, stage: str, key: str, status: str, result: str | None, error: str | None,
             seconds: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO units (video, stage, key, status, result, error, attempts, seconds, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT (video, stage, key) DO UPDATE SET "
                "status=excluded.status, result=excluded.result, error=excluded.error, "
                "attempts=units.attempts + 1, seconds=excluded.seconds, updated=excluded.updated",
                (video, stage, key, status, result, error, seconds, time.time()))

    def record_params(self, key: str, stage: str, params: dict[str, Any]) -> None:
        """Keeps the parameters behind a key, for `vidla curate status` and for people reading the store."""
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO params (key, stage, params) VALUES (?, ?, ?)",
                             (key, stage, canonical_json(params)))

    def memo_get(self, namespace: str, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(dict.fromkeys(keys))
        found: dict[str, Any] = {}
        with self._lock:
            for start in range(0, len(keys), 500):  # SQLite's limit on bound parameters
                chunk = keys[start:start + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT key, value FROM memo WHERE namespace=? AND key IN ({marks})",
                                        (namespace, *chunk))
                found.update((key, json.loads(value)) for key, value in rows)
        return found

    def memo_put(self, namespace: str, items: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("INSERT OR REPLACE INTO memo (namespace, key, value) VALUES (?, ?, ?)",
                                     [(namespace, k, canonical_json(v)) for k, v in items.items()])
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def counts(self) -> list[tuple[str, str, int]]:
        """(stage, status, units) over the whole store."""
        with self._lock:
            return self._db.execute("SELECT stage, status, COUNT(*) FROM units GROUP BY stage, status "
                                    "ORDER BY stage, status").fetchall()

    def failures(self) -> list[tuple[str, str, str, int]]:
        """(video, stage, error, attempts) of the units whose last attempt failed."""
        with self._lock:
            return self._db.execute("SELECT video, stage, error, attempts FROM units WHERE status='failed' "
                                    "ORDER BY video, stage").fetchall()
