"""MSR-VTT: 10,000 YouTube clips, 20 captions each (Xu et al., CVPR 2016).

Splits:
- "train-9k": the 9,000 videos of MSRVTT_train.9k.csv, every caption of each (from MSRVTT_data.json or the
  original videodatainfo json); "train-7k" likewise with MSRVTT_train.7k.csv.
- "test-1k": the 1k-A test of JSFusion (MSRVTT_JSFUSION_test.csv): 1,000 videos, one caption each.
- "train", "validate", "test": the official 6,513 / 497 / 2,990 split of the videodatainfo json.
- "mc-test": the 2,990 multiple-choice items of JSFusion (5 captions, one correct).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from vidla.data.benchmarks.base import (
    BenchmarkSplit,
    VideoFinder,
    find_annotation,
    read_csv,
    read_json,
    read_jsonl,
    retrieval_split,
)
from vidla.data.manifest import ClipRecord

NAME = "msrvtt"
SPLITS = ("train-9k", "test-1k", "train-7k", "train", "validate", "test", "mc-test")
DATA_JSON = ("MSRVTT_data.json", "train_val_videodatainfo.json", "videodatainfo.json")
FILES = {
    "train-9k": ("MSRVTT_train.9k.csv", *DATA_JSON),
    "train-7k": ("MSRVTT_train.7k.csv", *DATA_JSON),
    "test-1k": ("MSRVTT_JSFUSION_test.csv",),
    "mc-test": ("msrvtt_mc_test.jsonl", "mc_test.jsonl", "msrvtt_multi_choice_qa.jsonl"),
    **{split: DATA_JSON for split in ("train", "validate", "test")},
}
VIDEO_FOLDERS = ("", "videos", "MSRVTT_Videos", "TrainValVideo", "TestVideo", "frames")


def load(root: Path, split: str) -> BenchmarkSplit:
    finder = VideoFinder(root, VIDEO_FOLDERS)
    if split == "test-1k":
        return _test_1k(root, finder)
    if split == "mc-test":
        return _multiple_choice(root, finder)
    if split in ("train-9k", "train-7k"):
        listing = find_annotation(root, [FILES[split][0]], f"the {split} video list")
        ids = [row.get("video_id") or next(iter(row.values())) for row in read_csv(listing)]
    elif split in ("train", "validate", "test"):
        ids = [v["video_id"] for v in _data_json(root)["videos"] if v.get("split") == split]
    else:
        raise ValueError(f"msrvtt has no split {split!r}; choose one of {', '.join(SPLITS)}")
    captions = _captions(root)
    videos = [_record(finder, video_id, captions.get(video_id, [])) for video_id in ids]
    return retrieval_split(NAME, split, root, videos, finder)


def _record(finder: VideoFinder, video_id: str, captions: list[str] | str) -> ClipRecord:
    return ClipRecord(video=finder.resolve(video_id, video_id), id=video_id, texts={"caption": captions})


def _data_json(root: Path) -> dict:
    """Videos and sentences of MSRVTT_data.json, or of the original train_val (+ test) videodatainfo json."""
    data = read_json(find_annotation(root, DATA_JSON, "MSRVTT_data.json or train_val_videodatainfo.json"))
    test = root / "test_videodatainfo.json"
    if test.is_file() and not any(v.get("split") == "test" for v in data["videos"]):
        extra = read_json(test)
        data = {"videos": data["videos"] + extra["videos"], "sentences": data["sentences"] + extra["sentences"]}
    return data


def _captions(root: Path) -> dict[str, list[str]]:
    captions: dict[str, list[str]] = defaultdict(list)
    for sentence in sorted(_data_json(root)["sentences"], key=lambda s: s.get("sen_id", 0)):
        captions[sentence["video_id"]].append(sentence["caption"].strip())
    return captions


def _test_1k(root: Path, finder: VideoFinder) -> BenchmarkSplit:
    rows = read_csv(find_annotation(root, FILES["test-1k"], "MSRVTT_JSFUSION_test.csv"))
    videos = [_record(finder, row["video_id"], row["sentence"].strip()) for row in rows]
    return retrieval_split(NAME, "test-1k", root, videos, finder)


def _multiple_choice(root: Path, finder: VideoFinder) -> BenchmarkSplit:
    items = read_jsonl(find_annotation(root, FILES["mc-test"], "the multiple-choice jsonl"))
    videos = [_record(finder, item["clip_name"], list(item["options"])) for item in items]
    split = retrieval_split(NAME, "mc-test", root, videos, finder, task="multiple_choice")
    starts = [texts[0] for texts in split.video_to_texts]
    split.answers = [start + int(item["answer"]) for start, item in zip(starts, items)]
    return split
