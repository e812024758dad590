"""Statistics of a curated manifest, like the paper's Table 1: clips, mean duration and mean words per scale.

Shards keep sums (not means) so that merging them is an addition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from vidla.data.manifest import ClipRecord, iter_manifest
from vidla.io import atomic_write

_TEXT_KINDS = ("subtitle", "caption")


def milliseconds(seconds: float) -> int:
    """Sums are kept in integer milliseconds so that adding shards up gives exactly the unsharded sum."""
    return round(seconds * 1000)


@dataclass
class ScaleSums:
    clips: int = 0
    milliseconds: int = 0
    words: dict[str, int] = field(default_factory=lambda: {kind: 0 for kind in _TEXT_KINDS})

    def add(self, record: ClipRecord) -> None:
        self.clips += 1
        self.milliseconds += milliseconds(record.end or 0.0) - milliseconds(record.start or 0.0)
        for kind in _TEXT_KINDS:
            text = record.texts.get(kind)
            self.words[kind] += len(text.split()) if isinstance(text, str) else 0

    def mean(self, total: float) -> float:
        return round(total / self.clips, 3) if self.clips else 0.0

    def merge(self, other: "ScaleSums") -> None:
        self.clips += other.clips
        self.milliseconds += other.milliseconds
        for kind in _TEXT_KINDS:
            self.words[kind] += other.words.get(kind, 0)


@dataclass
class CurationStats:
    videos: int = 0
    videos_done: int = 0
    videos_failed: int = 0
    source_milliseconds: int = 0
    scales: dict[str, ScaleSums] = field(default_factory=dict)

    def add_clip(self, record: ClipRecord) -> None:
        scale = str(record.extra.get("scale", "all"))
        self.scales.setdefault(scale, ScaleSums()).add(record)

    def merge(self, other: "CurationStats") -> None:
        self.videos += other.videos
        self.videos_done += other.videos_done
        self.videos_failed += other.videos_failed
        self.source_milliseconds += other.source_milliseconds
        for name, sums in other.scales.items():
            self.scales.setdefault(name, ScaleSums()).merge(sums)

    def to_json(self) -> dict[str, Any]:
        rows = {}
        for name, sums in self.scales.items():
            rows[name] = {"clips": sums.clips, "seconds": sums.milliseconds / 1000, "words": sums.words,
                          "mean_seconds": sums.mean(sums.milliseconds / 1000),
                          **{f"mean_{kind}_words": sums.mean(sums.words[kind]) for kind in _TEXT_KINDS}}
        return {"videos": self.videos, "videos_done": self.videos_done, "videos_failed": self.videos_failed,
                "source_seconds": self.source_milliseconds / 1000, "scales": rows}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "CurationStats":
        stats = cls(obj["videos"], obj["videos_done"], obj["videos_failed"], milliseconds(obj["source_seconds"]))
        for name, row in obj["scales"].items():
            stats.scales[name] = ScaleSums(row["clips"], milliseconds(row["seconds"]), dict(row["words"]))
        return stats

    def table(self) -> str:
        header = f"{'scale':<10}{'clips':>10}{'mean s':>10}{'subtitle words':>16}{'caption words':>15}"
        lines = [header, "-" * len(header)]
        for name, row in self.to_json()["scales"].items():
            lines.append(f"{name:<10}{row['clips']:>10}{row['mean_seconds']:>10.1f}"
                         f"{row['mean_subtitle_words']:>16.1f}{row['mean_caption_words']:>15.1f}")
        if self.videos:  # unknown for a bare manifest
            lines.append(f"videos: {self.videos} ({self.videos_done} done, {self.videos_failed} failed), "
                         f"{self.source_milliseconds / 3_600_000:.2f} hours of source video")
        return "\n".join(lines)


def write_stats(path: str | Path, stats: CurationStats, extra: dict[str, Any] | None = None) -> None:
    with atomic_write(path) as f:
        json.dump({**stats.to_json(), **(extra or {})}, f, indent=2, sort_keys=True)
        f.write("\n")


def read_stats(path: str | Path) -> tuple[CurationStats, dict[str, Any]]:
    obj = json.loads(Path(path).read_text(encoding="utf-8"))
    return CurationStats.from_json(obj), obj


def manifest_stats(records: Iterable[ClipRecord] | str | Path) -> CurationStats:
    """Per-scale statistics of any manifest (clips without a 'scale' key are counted under 'all')."""
    stats = CurationStats()
    for record in iter_manifest(records) if isinstance(records, (str, Path)) else records:
        stats.add_clip(record)
    return stats
