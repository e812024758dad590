"""A SQLite index of clip records: millions of clips, none of them in RAM until asked for.

A JSONL manifest read into a list costs every DataLoader worker its own copy (Python's reference counts defeat
copy-on-write after fork); `ClipIndex` keeps the records on disk and reads one row per `__getitem__`, through a
read-only connection that each process opens for itself.

    build_clip_index("clips.jsonl", "clips.sqlite")
    clips = ClipIndex("clips.sqlite"); len(clips); clips[123_456]  # a ClipRecord
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence, overload

from vidla.data.manifest import ClipRecord, iter_manifest

if TYPE_CHECKING:
    from collections import Counter

_SCHEMA = """
CREATE TABLE clips (position INTEGER PRIMARY KEY, id TEXT, video TEXT NOT NULL, record TEXT NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
"""
_BATCH = 10_000


class ClipIndex(Sequence[ClipRecord]):
    """Read-only random access to the records of an index built by `build_clip_index`; position = manifest order."""

    def __init__(self, path: str | os.PathLike, root: str | os.PathLike | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: clip index not found")
        self._connection: sqlite3.Connection | None = None
        self._pid = -1
        meta = dict(self._connect().execute("SELECT key, value FROM meta").fetchall())
        self._length = int(meta["count"])
        # Relative video paths resolve against the folder of the manifest the index was built from.
        self.root = Path(root) if root is not None else self.path.parent / (meta.get("root") or ".")

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None or self._pid != os.getpid():  # never share a connection across a fork
            uri = f"file:{self.path.resolve().as_posix()}?mode=ro"
            self._connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._pid = os.getpid()
        return self._connection

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_connection"], state["_pid"] = None, -1
        return state

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> ClipRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[ClipRecord]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._length))]
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError(f"clip {index} out of range for {self._length} clips")
        row = self._connect().execute("SELECT record FROM clips WHERE position = ?", (index,)).fetchone()
        return ClipRecord.from_json(json.loads(row[0]))

    def __iter__(self) -> Iterator[ClipRecord]:
        for (record,) in self._connect().execute("SELECT record FROM clips ORDER BY position"):
            yield ClipRecord.from_json(json.loads(record))

    def text_kind_counts(self) -> "Counter[str]":
        """How many clips hold a non-empty text of each kind (one SQL pass, no record decoded in Python)."""
        from collections import Counter

        rows = self._connect().execute(
            "SELECT t.key, COUNT(*) FROM clips, json_each(clips.record, '$.texts') AS t "
            "WHERE (t.type = 'text' AND t.atom != '') OR (t.type = 'array' AND json_array_length(t.value) > 0) "
            "GROUP BY t.key").fetchall()
        return Counter(dict(rows))

    def find(self, clip_id: str) -> ClipRecord | None:
        """The record with this id (indexed lookup)."""
        row = self._connect().execute("SELECT record FROM clips WHERE id = ? LIMIT 1", (clip_id,)).fetchone()
        return None if row is None else ClipRecord.from_json(json.loads(row[0]))


def build_clip_index(source: str | os.PathLike | Iterable[ClipRecord], path: str | os.PathLike,
                     root: str | os.PathLike | None = None) -> ClipIndex:
    """Writes a SQLite index from a JSONL manifest (streamed) or records; atomic: a temp file renamed into place.

    `root` is where relative video paths resolve; by default the manifest's folder.
    """
    path = Path(path)
    if isinstance(source, (str, os.PathLike)):
        root = Path(source).resolve().parent if root is None else root
        records: Iterable[ClipRecord] = iter_manifest(source)
    else:
        records = source
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        count = _write_index(Path(tmp), records, root)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    index = ClipIndex(path)
    assert len(index) == count
    return index


def _write_index(path: Path, records: Iterable[ClipRecord], root: str | os.PathLike | None) -> int:
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path)
    try:
        connection.executescript(_SCHEMA)
        count, batch = 0, []
        for record in records:
            batch.append((count, record.id, record.video, json.dumps(record.to_json(), ensure_ascii=False)))
            count += 1
            if len(batch) >= _BATCH:
                connection.executemany("INSERT INTO clips VALUES (?, ?, ?, ?)", batch)
                batch.clear()
        connection.executemany("INSERT INTO clips VALUES (?, ?, ?, ?)", batch)
        connection.execute("CREATE INDEX clips_id ON clips (id)")
        # The root is stored relative to the index, so that a dataset folder can move as a whole.
        relative_root = "" if root is None else os.path.relpath(Path(root).resolve(), path.parent.resolve())
        meta = {"count": str(count), "root": relative_root, "format": "vidla-clips-1"}
        connection.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        connection.commit()
    finally:
        connection.close()
    return count
