"""The clip manifest: one JSON object per line, one line per clip (docs/manifest.md).

    {"id": "vid001_0", "video": "videos/vid001.mp4", "start": 12.5, "end": 25.0,
     "texts": {"caption": "a dog runs", "subtitle": "look at him go"}, "label": null}

`video` is relative to the manifest's folder unless absolute; `start`/`end` are seconds (null = whole video);
`texts` maps a text kind to one string (or a list of strings for datasets with several captions per clip);
`label` is an optional class index or name. Unknown keys are kept in `extra`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator

from vidla.io import atomic_write

_KNOWN_KEYS = {"id", "video", "start", "end", "texts", "label"}


class ManifestError(ValueError):
    """A manifest line that cannot be read; the message names the file and line."""


@dataclass
class ClipRecord:
    video: str
    id: str | None = None
    start: float | None = None
    end: float | None = None
    texts: dict[str, str | list[str]] = field(default_factory=dict)
    label: int | str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "video": self.video, "start": self.start, "end": self.end,
                               "texts": self.texts, "label": self.label}
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "ClipRecord":
        if not isinstance(obj, dict) or "video" not in obj:
            raise ValueError("a clip record is an object with at least a 'video' key")
        texts = obj.get("texts") or {}
        if not isinstance(texts, dict):
            raise ValueError("'texts' must map a text kind to a string or a list of strings")
        start, end = obj.get("start"), obj.get("end")
        if start is not None and end is not None and float(end) <= float(start):
            raise ValueError(f"'end' ({end}) must be after 'start' ({start})")
        return cls(video=str(obj["video"]), id=obj.get("id"),
                   start=None if start is None else float(start), end=None if end is None else float(end),
                   texts=dict(texts), label=obj.get("label"),
                   extra={k: v for k, v in obj.items() if k not in _KNOWN_KEYS})

    def resolve(self, root: str | Path) -> Path:
        """The video path, resolved against the manifest's folder when relative."""
        path = Path(self.video)
        return path if path.is_absolute() else Path(root) / path


def iter_manifest(path: str | Path) -> Iterator[ClipRecord]:
    """Streams the records of a JSONL manifest; a malformed line raises ManifestError naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: manifest not found")
    with path.open("r", encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield ClipRecord.from_json(json.loads(line))
            except (ValueError, TypeError) as e:
                raise ManifestError(f"{path}:{number}: {e}") from e


def read_manifest(path: str | Path) -> list[ClipRecord]:
    return list(iter_manifest(path))


def read_manifest_resolved(path: str | Path) -> list[ClipRecord]:
    """The records with their video paths resolved against the manifest's folder (absolute where it is)."""
    root = Path(path).parent
    return [replace(r, video=str(r.resolve(root))) for r in iter_manifest(path)]


def write_manifest(path: str | Path, records: Iterable[ClipRecord | dict[str, Any]]) -> int:
    """Writes records atomically (temp file + rename); returns how many were written."""
    count = 0
    with atomic_write(path) as f:
        for record in records:
            obj = record.to_json() if isinstance(record, ClipRecord) else ClipRecord.from_json(record).to_json()
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
            count += 1
    return count
