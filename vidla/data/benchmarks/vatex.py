"""VATEX: 41,250 ten-second YouTube clips (Kinetics-600), 10 English + 10 Chinese captions each (Wang et al. 2019).

Splits: "train" (vatex_training_v1.0.json, 25,991 clips), "val" (vatex_validation_v1.0.json, 3,000),
"public-test" (vatex_public_test_english_v1.1.json), and "test": the 1,500-clip retrieval test of HGR, CLIP4Clip and
VidLA, whose ids are listed one a line in test_list.txt (clips of the validation set). A {split}_list.txt beside
the jsons restricts any split to the ids it lists. English captions ("enCap") only; every caption is a query.
Clip files are "<videoID>.mp4"; an untrimmed "<youtube id>.mp4" is read with the window the id encodes.
"""

from __future__ import annotations

from pathlib import Path

from vidla.data.benchmarks.base import (
    BenchmarkSplit,
    VideoFinder,
    clip_or_source,
    find_annotation,
    find_optional,
    read_json,
    read_lines,
    retrieval_split,
)

NAME = "vatex"
SPLITS = ("train", "val", "test", "public-test")
JSONS = {"train": "vatex_training_v1.0.json", "val": "vatex_validation_v1.0.json",
         "public-test": "vatex_public_test_english_v1.1.json"}
FILES = {"train": (JSONS["train"],), "val": (JSONS["val"],), "public-test": (JSONS["public-test"],),
         "test": ("test_list.txt", JSONS["train"], JSONS["val"])}
VIDEO_FOLDERS = ("", "videos", "vatex_videos", "frames")


def load(root: Path, split: str) -> BenchmarkSplit:
    if split not in SPLITS:
        raise ValueError(f"vatex has no split {split!r}; choose one of {', '.join(SPLITS)}")
    listing = find_optional(root, [f"{split}_list.txt"])
    if split == "test" and listing is None:
        find_annotation(root, ["test_list.txt"], "test_list.txt (the 1,500 test clip ids)")
    captions: dict[str, list[str]] = {}
    for json_split in (["train", "val"] if split == "test" else [split]):
        path = find_annotation(root, [JSONS[json_split]], JSONS[json_split])
        captions.update({item["videoID"]: [c.strip() for c in item.get("enCap", [])] for item in read_json(path)})
    ids = read_lines(listing) if listing is not None else list(captions)
    finder = VideoFinder(root, VIDEO_FOLDERS)
    videos = [clip_or_source(finder, clip_id, {"caption": captions.get(clip_id, [])}) for clip_id in ids]
    return retrieval_split(NAME, split, root, videos, finder)
