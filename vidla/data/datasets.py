"""Video-text datasets over clip records: a manifest (JSONL), a SQLite clip index, or a list of records.

A sample is a dict:

    {"video": tensor,                 # the transform's output, or uint8 [T, H, W, 3] without a transform
     "texts": {"caption": str, ...},  # one string per requested text kind ("" when a clip lacks that kind)
     "label": int | str | None, "id": str | None, "index": int}

A clip that cannot be decoded does not stop anything: `__getitem__` returns a `FailedSample`, logged, which
`collate_clips` drops and counts (see vidla.data.loader).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Sequence

import torch
from torch.utils.data import Dataset

from vidla.data.decode import VideoDecodeError
from vidla.data.index import ClipIndex
from vidla.data.manifest import ClipRecord, read_manifest
from vidla.data.video import read_clip

logger = logging.getLogger(__name__)

TEXT_CHOICES = ("random", "first", "all")


@dataclass
class FailedSample:
    """A clip that could not be loaded: where it is and why. `unexpected` marks errors other than bad video data."""

    index: int
    id: str | None
    video: str
    error: str
    unexpected: bool = False


@dataclass
class ClipLoader:
    """Turns a clip record and its video into a sample: sampling, decoding, transform, text choice."""

    num_frames: int | None = 12
    sampling: str = "uniform"
    num_clips: int = 1
    stride: int = 4
    fps: float | None = None
    train: bool = False
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None
    text_kinds: Sequence[str] | None = None  # None: every kind the record has
    text_choice: str = "random"  # for kinds holding several texts: one at random, the first, or all (a list)
    frame_rate: float | None = None  # of frame folders
    threads: int | None = None
    # Shorter side frames are scaled down to inside the decoder (memory per clip bounded by the output). "auto":
    # the transform's `decode_size` (vidla.data.transforms.decode_size: twice what it needs, leaving the last,
    # antialiased step to the transform, as the indexer and `vidla eval` do); None: the source size.
    resize_to: int | str | None = "auto"

    def __post_init__(self) -> None:
        if self.text_choice not in TEXT_CHOICES:
            raise ValueError(f"text_choice must be one of {TEXT_CHOICES}, got {self.text_choice!r}")
        if self.resize_to == "auto":
            self.resize_to = getattr(self.transform, "decode_size", None)
        elif self.resize_to is not None and (not isinstance(self.resize_to, int) or self.resize_to < 1):
            raise ValueError(f"resize_to must be 'auto', None or a positive int, got {self.resize_to!r}")

    def load(self, record: ClipRecord, source: str | os.PathLike | bytes | BinaryIO, index: int,
             name: str | None = None) -> dict[str, Any] | FailedSample:
        where = name or (record.video if isinstance(source, (bytes, bytearray)) else str(source))
        try:
            clip = read_clip(source, self.num_frames, self.sampling, record.start, record.end,
                             num_clips=self.num_clips, stride=self.stride, fps=self.fps, train=self.train,
                             frame_rate=self.frame_rate, threads=self.threads, name=name, resize_to=self.resize_to)
            video = clip.frames if self.transform is None else self.transform(clip.frames)
        except VideoDecodeError as e:
            logger.warning("skipping clip %s: %s", record.id or index, e)
            return FailedSample(index, record.id, where, str(e))
        except Exception as e:  # a bug or an FFmpeg surprise: skip the clip, but loudly (the loader caps these)
            logger.exception("skipping clip %s (%s) after an unexpected error", record.id or index, where)
            return FailedSample(index, record.id, where, f"{type(e).__name__}: {e}", unexpected=True)
        return {"video": video, "texts": self.select_texts(record), "label": record.label, "id": record.id,
                "index": index}

    def select_texts(self, record: ClipRecord) -> dict[str, str | list[str]]:
        kinds = self.text_kinds if self.text_kinds is not None else sorted(record.texts)
        return {kind: _choose(record.texts.get(kind), self.text_choice) for kind in kinds}


def _choose(value: str | list[str] | None, choice: str) -> str | list[str]:
    if value is None:
        return [] if choice == "all" else ""
    if isinstance(value, str):
        return [value] if choice == "all" else value
    if choice == "all":
        return list(value)
    if not value:
        return ""
    if choice == "first":
        return value[0]
    return value[int(torch.randint(len(value), (1,)))]


def open_clips(path: str | os.PathLike) -> Sequence[ClipRecord]:
    """A manifest: `.jsonl` read into memory, `.sqlite`/`.db` opened as a lazy `ClipIndex`."""
    path = Path(path)
    if path.suffix in (".sqlite", ".sqlite3", ".db"):
        return ClipIndex(path)
    return read_manifest(path)


class VideoTextDataset(Dataset):
    """Map-style dataset of clips: `VideoTextDataset("clips.jsonl", num_frames=12, transform=VideoTransform(224))`.

    clips: a manifest path (.jsonl or a SQLite index) or a sequence of ClipRecord.
    root: where relative video paths resolve; by default the manifest's folder (an index remembers its own).
    The other keyword arguments configure a `ClipLoader`.
    """

    def __init__(self, clips: Sequence[ClipRecord] | str | os.PathLike, root: str | os.PathLike | None = None,
                 **loader_options: Any):
        if isinstance(clips, (str, os.PathLike)):
            manifest = Path(clips)
            clips = open_clips(manifest)
            default_root = clips.root if isinstance(clips, ClipIndex) else manifest.parent
        else:
            default_root = getattr(clips, "root", Path("."))
        self.clips = clips
        self.root = Path(root) if root is not None else Path(default_root)
        self.loader = ClipLoader(**loader_options)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, Any] | FailedSample:
        record = self.clips[index]
        return self.loader.load(record, record.resolve(self.root), index)
