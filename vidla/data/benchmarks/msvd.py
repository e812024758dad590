"""MSVD (Microsoft Research Video Description): 1,970 YouTube clips, ~40 English captions each (Chen & Dolan 2011).

Splits "train", "val", "test" = 1,200 / 100 / 670 videos: from train_list.txt / val_list.txt / test_list.txt when
present (one clip id a line), else by youtube_mapping.txt ("<clip id> vid<N>": vid1-1200 train, vid1201-1300 val,
vid1301-1970 test). Captions from AllVideoDescriptions.txt ("<clip id> <caption>" lines) or the original
"MSR Video Description Corpus.csv" (English rows). Every caption of a test video is a query.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from vidla.data.benchmarks.base import (
    BenchmarkSplit,
    VideoFinder,
    find_annotation,
    find_optional,
    read_csv,
    read_lines,
    retrieval_split,
)
from vidla.data.manifest import ClipRecord

NAME = "msvd"
SPLITS = ("train", "val", "test")
RANGES = {"train": (1, 1200), "val": (1201, 1300), "test": (1301, 1970)}
CAPTION_FILES = ("AllVideoDescriptions.txt", "MSR Video Description Corpus.csv")
FILES = {split: (f"{split}_list.txt or youtube_mapping.txt", *CAPTION_FILES) for split in SPLITS}
VIDEO_FOLDERS = ("", "YouTubeClips", "videos", "frames")


def load(root: Path, split: str) -> BenchmarkSplit:
    if split not in SPLITS:
        raise ValueError(f"msvd has no split {split!r}; choose one of {', '.join(SPLITS)}")
    captions = _captions(find_annotation(root, CAPTION_FILES, "AllVideoDescriptions.txt"))
    finder = VideoFinder(root, VIDEO_FOLDERS)
    videos = [ClipRecord(video=finder.resolve(clip_id, clip_id), id=clip_id, texts={"caption": captions[clip_id]})
              for clip_id in _split_ids(root, split)]
    return retrieval_split(NAME, split, root, videos, finder)


def _split_ids(root: Path, split: str) -> list[str]:
    listing = find_optional(root, [f"{split}_list.txt"])
    if listing is not None:
        return read_lines(listing)
    mapping = find_annotation(root, ["youtube_mapping.txt"], f"{split}_list.txt or youtube_mapping.txt")
    first, last = RANGES[split]
    ids = []
    for line in read_lines(mapping):
        clip_id, number = line.split()
        if first <= int(number.removeprefix("vid")) <= last:
            ids.append((int(number.removeprefix("vid")), clip_id))
    return [clip_id for _, clip_id in sorted(ids)]


def _captions(path: Path) -> dict[str, list[str]]:
    captions: dict[str, list[str]] = defaultdict(list)
    if path.suffix == ".csv":  # VideoID,Start,End,WorkerID,Source,AnnotationTime,Language,Description
        for row in read_csv(path):
            if row.get("Language") == "English" and row.get("Description"):
                captions[f"{row['VideoID']}_{row['Start']}_{row['End']}"].append(row["Description"].strip())
        return captions
    for line in read_lines(path):
        clip_id, _, caption = line.partition(" ")
        if caption.strip():
            captions[clip_id].append(caption.strip())
    return captions
