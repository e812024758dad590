"""What every benchmark reader returns, and the file-finding helpers they share."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from vidla.data.decode import IMAGE_EXTENSIONS
from vidla.data.manifest import ClipRecord

VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg", ".3gp", ".ogv")
# Folders where annotation files commonly sit below a dataset root.
ANNOTATION_FOLDERS = ("", "annotations", "annotation", "anns", "data", "msrvtt_data", "splits", "labels")


class AnnotationsMissing(FileNotFoundError):
    """A benchmark's annotation files are not under its root; the message lists the names looked for."""


@dataclass
class BenchmarkSplit:
    """One split of a benchmark, read from its original annotation files.

    videos: one ClipRecord per video (absolute path, optional start/end window, texts["caption"] = its caption(s),
        label = class index for classification); `missing` holds the ids whose file was not found (they stay in
        `videos` with their expected path, so that a protocol's size never changes silently).
    texts, text_to_video: the text queries of retrieval (and the options of multiple choice), each with the index of
        its video in `videos`.
    class_names: classification classes, by label index.
    answers: multiple choice: per video, the index into `texts` of the correct option.
    """

    name: str
    split: str
    task: str  # "retrieval", "classification" or "multiple_choice"
    root: Path
    videos: list[ClipRecord]
    texts: list[str] = field(default_factory=list)
    text_to_video: list[int] = field(default_factory=list)
    class_names: list[str] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[int | None]:
        return [video.label for video in self.videos]

    @property
    def video_to_texts(self) -> list[list[int]]:
        """For each video, the indices of its texts (several captions per video in MSVD, VATEX, 9k training)."""
        out: list[list[int]] = [[] for _ in self.videos]
        for text, video in enumerate(self.text_to_video):
            out[video].append(text)
        return out

    def summary(self) -> str:
        parts = [f"{self.name} {self.split}: {len(self.videos)} videos"]
        if self.texts:
            parts.append(f"{len(self.texts)} texts")
        if self.class_names:
            parts.append(f"{len(self.class_names)} classes")
        if self.missing:
            parts.append(f"{len(self.missing)} video files missing")
        return ", ".join(parts)


def retrieval_split(name: str, split: str, root: Path, videos: list[ClipRecord], finder: "VideoFinder",
                    task: str = "retrieval") -> BenchmarkSplit:
    """A retrieval split whose queries are all captions of all videos, in order."""
    texts, text_to_video = [], []
    for position, video in enumerate(videos):
        captions = video.texts.get("caption", [])
        for caption in [captions] if isinstance(captions, str) else captions:
            texts.append(caption)
            text_to_video.append(position)
    return BenchmarkSplit(name, split, task, root, videos, texts, text_to_video, missing=finder.missing)


class VideoFinder:
    """Finds video files under a root by name, whatever the folder layout and extension the download produced.

    A name is looked up as given, then by its stem with any video extension (so "x.mov" finds "x.mp4" or
    "x.mov.mp4"), then in any subfolder. Frame folders named like the video count too.
    """

    def __init__(self, root: str | os.PathLike, folders: Sequence[str] = ("",)):
        self.root = Path(root)
        self.missing: list[str] = []
        self._by_name: dict[str, Path] = {}
        self._index(folders)

    def _index(self, folders: Sequence[str]) -> None:
        for folder in folders:
            top = self.root / folder
            if not top.is_dir():
                continue
            for directory, subfolders, files in os.walk(top):
                here = Path(directory)
                if files and any(f.lower().endswith(IMAGE_EXTENSIONS) for f in files) and here != top:
                    self._add(here.name, here)  # a frame folder stands for the video of the same name
                for name in files:
                    if name.lower().endswith(VIDEO_EXTENSIONS):
                        self._add(name, here / name)

    def _add(self, name: str, path: Path) -> None:
        for key in _name_keys(name):
            self._by_name.setdefault(key, path)

    def find(self, name: str, *alternatives: str) -> Path | None:
        for candidate in (name, *alternatives):
            for key in _name_keys(candidate):
                if key in self._by_name:
                    return self._by_name[key]
        return None

    def resolve(self, clip_id: str, name: str, *alternatives: str) -> str:
        """The found path, or (recorded as missing) where the file was expected."""
        found = self.find(name, *alternatives)
        if found is None:
            self.missing.append(clip_id)
            return str(self.root / "videos" / name)
        return str(found)


def _name_keys(name: str) -> list[str]:
    """'a.mov.mp4' -> ['a.mov.mp4', 'a.mov', 'a']: every name a file may be asked for by."""
    keys = [name]
    while True:
        stem, dot, extension = name.rpartition(".")
        if not dot or not stem or "." + extension.lower() not in VIDEO_EXTENSIONS:
            return keys
        keys.append(stem)
        name = stem


def find_annotation(root: Path, names: Iterable[str], what: str) -> Path:
    """The first of `names` found in the root or a usual annotation subfolder."""
    names = list(names)
    for folder in ANNOTATION_FOLDERS:
        for name in names:
            path = root / folder / name
            if path.is_file():
                return path
    raise AnnotationsMissing(f"{root}: {what} not found; expected one of {', '.join(names)} "
                             f"in the root or in {', '.join(f for f in ANNOTATION_FOLDERS if f)}/")


def find_optional(root: Path, names: Iterable[str]) -> Path | None:
    try:
        return find_annotation(root, names, "")
    except AnnotationsMissing:
        return None


def read_json(path: Path) -> Any:
    with path.open("r", encoding="utf-8") as f:
        return json.load(f)


def read_jsonl(path: Path) -> list[Any]:
    with path.open("r", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open("r", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def read_lines(path: Path) -> list[str]:
    with path.open("r", encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def youtube_window(clip_id: str) -> tuple[str, float, float] | None:
    """'Ptf_2VRj-V0_000122_000132' or '-4wsuPCjDBc_5_15' -> ('Ptf_2VRj-V0', 122.0, 132.0): a clip of a YouTube video."""
    parts = clip_id.rsplit("_", 2)
    if len(parts) != 3:
        return None
    try:
        start, end = float(parts[1]), float(parts[2])
    except ValueError:
        return None
    return (parts[0], start, end) if end > start else None


def clip_or_source(finder: VideoFinder, clip_id: str, texts: dict, label: int | str | None = None,
                   extra: dict | None = None) -> ClipRecord:
    """A trimmed clip file `clip_id.*` if present, else the untrimmed YouTube video with the id's window."""
    found = finder.find(clip_id)
    window = youtube_window(clip_id)
    if found is None and window is not None:
        source = finder.find(window[0])
        if source is not None:
            return ClipRecord(video=str(source), id=clip_id, start=window[1], end=window[2], texts=texts,
                              label=label, extra=extra or {})
    return ClipRecord(video=finder.resolve(clip_id, clip_id) if found is None else str(found), id=clip_id,
                      texts=texts, label=label, extra=extra or {})
