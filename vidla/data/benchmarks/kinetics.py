"""Kinetics-400: ~300k ten-second YouTube clips of 400 human actions (Kay et al. 2017).

Splits "train", "val", "test" from the official csv lists (train.csv, validate.csv, test.csv:
label,youtube_id,time_start,time_end,split[,is_cc]); test.csv without labels gives label None. Class names (label
index order) from kinetics400_classes.txt / classes.txt / labels.txt when present (one a line), else the sorted
names of train.csv (the usual order, alphabetical). Clip files are "<youtube_id>_<start:06d>_<end:06d>.mp4" in any
folder layout (flat, or one folder per class); an untrimmed "<youtube_id>.mp4" is read with the csv window.
"""

from __future__ import annotations

from pathlib import Path

from vidla.data.benchmarks.base import (
    BenchmarkSplit,
    VideoFinder,
    find_annotation,
    find_optional,
    read_csv,
    read_lines,
)
from vidla.data.manifest import ClipRecord

NAME = "kinetics400"
SPLITS = ("train", "val", "test")
CSV = {"train": ("train.csv", "kinetics_400_train.csv", "kinetics400_train.csv"),
       "val": ("validate.csv", "val.csv", "kinetics_400_validate.csv", "kinetics400_val.csv"),
       "test": ("test.csv", "kinetics_400_test.csv", "kinetics400_test.csv")}
CLASS_FILES = ("kinetics400_classes.txt", "classes.txt", "labels.txt", "kinetics_400_labels.txt")
FILES = {split: CSV[split] for split in SPLITS}
VIDEO_FOLDERS = ("", "videos", "train", "val", "validate", "test", "train_256", "val_256", "frames")


def _normal(name: str) -> str:
    """Class names appear with spaces or underscores, quoted or not, across distributions."""
    return name.strip().strip('"').replace("_", " ").lower()


def load(root: Path, split: str) -> BenchmarkSplit:
    if split not in SPLITS:
        raise ValueError(f"kinetics400 has no split {split!r}; choose one of {', '.join(SPLITS)}")
    rows = read_csv(find_annotation(root, CSV[split], CSV[split][0]))
    class_names = _class_names(root, rows)
    index = {_normal(name): i for i, name in enumerate(class_names)}
    finder = VideoFinder(root, VIDEO_FOLDERS)
    videos = [_record(finder, row, index) for row in rows]
    return BenchmarkSplit(NAME, split, "classification", root, videos, class_names=class_names,
                          missing=finder.missing)


def _class_names(root: Path, rows: list[dict[str, str]]) -> list[str]:
    listed = find_optional(root, CLASS_FILES)
    if listed is not None:
        return read_lines(listed)
    train = find_optional(root, CSV["train"])
    source = read_csv(train) if train is not None else rows
    return sorted({row["label"].strip() for row in source if row.get("label")})


def _record(finder: VideoFinder, row: dict[str, str], index: dict[str, int]) -> ClipRecord:
    youtube_id, start, end = row["youtube_id"], int(float(row["time_start"])), int(float(row["time_end"]))
    clip_id = f"{youtube_id}_{start:06d}_{end:06d}"
    label_name = row.get("label")
    label = index.get(_normal(label_name)) if label_name else None
    if label_name and label is None:
        raise ValueError(f"Kinetics class {label_name!r} of clip {clip_id} is not among the class names")
    texts = {"label": label_name} if label_name else {}
    clip = finder.find(clip_id)
    source = finder.find(youtube_id) if clip is None else None
    if source is not None:
        return ClipRecord(video=str(source), id=clip_id, start=start, end=end, texts=texts, label=label)
    return ClipRecord(video=str(clip) if clip else finder.resolve(clip_id, clip_id), id=clip_id, texts=texts,
                      label=label)
