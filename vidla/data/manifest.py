"""The clip manifest: one JSON object per line, one line per clip (docs/manifest.md).

    {"id": "vid001_0", "video": "videos/vid001.mp4", "start": 12.5, "end": 25.0,
     "texts": {"caption": "a dog runs", "subtitle": "look at him go"}, "label": null}

`video` is relative to the manifest's folder unless absolute; `start`/`end` are seconds (null = whole video);
`texts` maps a text kind to one string (or a list of strings for datasets with several captions per clip);
`label` is an optional class index or name. Unknown keys are kept in `extra`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Iterator

from vidla.errors import VidlaError
from vidla.io import atomic_write

_KNOWN_KEYS = {"id", "video", "start", "end", "texts", "label"}


class ManifestError(VidlaError, ValueError):
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
        """A record from its JSON object, every field checked; a ValueError names the field and the fault."""
        if not isinstance(obj, dict):
            raise ValueError(f"a clip record is a JSON object, got {type(obj).__name__}")
        if "video" not in obj:
            raise ValueError("a clip record needs a 'video' key")
        video = obj["video"]
        if not isinstance(video, str) or not video.strip():
            raise ValueError(f"field 'video': a non-empty string (a path), got {video!r}")
        start, end = _seconds(obj.get("start"), "start"), _seconds(obj.get("end"), "end")
        if start is not None and end is not None and end <= start:
            raise ValueError(f"field 'end' ({end}) must be after 'start' ({start})")
        label = obj.get("label")
        if label is not None and (isinstance(label, bool) or not isinstance(label, (int, str))):
            raise ValueError(f"field 'label': an integer, a string or null, got {label!r}")
        return cls(video=video, id=_clip_id(obj.get("id")), start=start, end=end, texts=_texts(obj.get("texts")),
                   label=label, extra={k: v for k, v in obj.items() if k not in _KNOWN_KEYS})

    def resolve(self, root: str | Path) -> Path:
        """The video path, resolved against the manifest's folder when relative."""
        path = Path(self.video)
        return path if path.is_absolute() else Path(root) / path


def _seconds(value: Any, name: str) -> float | None:
    """null, or a finite non-negative number of seconds (JSON's NaN/Infinity and strings refused)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"field '{name}': a number of seconds or null, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"field '{name}': a finite number of seconds >= 0, got {value!r}")
    return float(value)


def _clip_id(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # numeric ids are common; one type downstream
    raise ValueError(f"field 'id': a string, an integer or null, got {value!r}")


def _texts(value: Any) -> dict[str, str | list[str]]:
    """{kind: string or list of strings}; null or absent = no texts."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"field 'texts': an object mapping a text kind to a string or a list of strings, "
                         f"got {type(value).__name__}")
    for kind, text in value.items():
        if isinstance(text, list):
            bad = [t for t in text if not isinstance(t, str)]
            if bad:
                raise ValueError(f"field 'texts.{kind}': a list of strings, but it holds {bad[0]!r}")
        elif not isinstance(text, str):
            raise ValueError(f"field 'texts.{kind}': a string or a list of strings, got {text!r}")
    return dict(value)


def iter_manifest(path: str | Path) -> Iterator[ClipRecord]:
    """Streams the records of a JSONL manifest; a malformed line, a field of the wrong type or range, or bytes
    that are not UTF-8 raise ManifestError naming the file, the line and the field."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: manifest not found")
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ManifestError(f"{path}:{number}: not UTF-8 text (byte {raw[e.start]:#04x} at column "
                                    f"{e.start + 1})") from e
            if number == 1:
                line = line.removeprefix("\ufeff")  # a byte-order mark some editors write
            if not line.strip():
                continue
            try:
                yield ClipRecord.from_json(json.loads(line))
            except (ValueError, TypeError, RecursionError) as e:
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
