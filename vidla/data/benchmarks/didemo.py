"""DiDeMo: 10,464 Flickr videos with ~4 moment descriptions each (Hendricks et al., ICCV 2017).

Paragraph-to-video retrieval (the protocol of CLIP4Clip and VidLA): the descriptions of a video, in file order,
joined into one paragraph; the whole video is the clip. Splits "train", "val", "test" (1,004 test videos) from
{split}_data.json of LisaAnne/LocalizingMoments.
"""

from __future__ import annotations

from pathlib import Path

from vidla.data.benchmarks.base import BenchmarkSplit, VideoFinder, find_annotation, read_json, retrieval_split
from vidla.data.manifest import ClipRecord

NAME = "didemo"
SPLITS = ("train", "val", "test")
FILES = {split: (f"{split}_data.json",) for split in SPLITS}
VIDEO_FOLDERS = ("", "videos", "video", "frames")


def load(root: Path, split: str) -> BenchmarkSplit:
    if split not in SPLITS:
        raise ValueError(f"didemo has no split {split!r}; choose one of {', '.join(SPLITS)}")
    annotations = read_json(find_annotation(root, FILES[split], f"{split}_data.json"))
    sentences: dict[str, list[str]] = {}
    moments: dict[str, list[list[list[int]]]] = {}
    for item in annotations:  # dicts keep first-seen order: videos in file order
        sentences.setdefault(item["video"], []).append(item["description"].strip())
        moments.setdefault(item["video"], []).append(item.get("times", []))
    finder = VideoFinder(root, VIDEO_FOLDERS)
    videos = []
    for name, texts in sentences.items():
        clip_id = name.rsplit(".", 1)[0] if "." in name else name
        videos.append(ClipRecord(video=finder.resolve(clip_id, name), id=clip_id,
                                 texts={"caption": " ".join(texts)},
                                 extra={"sentences": texts, "times": moments[name]}))
    return retrieval_split(NAME, split, root, videos, finder)
