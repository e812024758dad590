"""ActivityNet Captions: 20k YouTube videos with dense, time-stamped sentences (Krishna et al., ICCV 2017).

Paragraph-to-video retrieval: each video's sentences, in time order, joined into one paragraph; the whole video is
the clip. Splits: "train" (train.json), "val1" (val_1.json, the 4,917-video test of CLIP4Clip and VidLA), "val2".
"""

from __future__ import annotations

from pathlib import Path

from vidla.data.benchmarks.base import BenchmarkSplit, VideoFinder, find_annotation, read_json, retrieval_split
from vidla.data.manifest import ClipRecord

NAME = "activitynet"
SPLITS = ("train", "val1", "val2")
FILES = {"train": ("train.json",), "val1": ("val_1.json",), "val2": ("val_2.json",)}
VIDEO_FOLDERS = ("", "videos", "Activity_Videos", "v1-2", "v1-3", "frames")


def load(root: Path, split: str) -> BenchmarkSplit:
    if split not in SPLITS:
        raise ValueError(f"activitynet has no split {split!r}; choose one of {', '.join(SPLITS)}")
    annotations = read_json(find_annotation(root, FILES[split], FILES[split][0]))
    finder = VideoFinder(root, VIDEO_FOLDERS)
    videos = []
    for video_id, item in annotations.items():
        order = sorted(range(len(item["sentences"])), key=lambda i: tuple(item["timestamps"][i]))
        sentences = [item["sentences"][i].strip() for i in order]
        # Downloads name files "v_<youtube id>" as the annotations do, or drop the "v_".
        path = finder.resolve(video_id, video_id, video_id.removeprefix("v_"))
        videos.append(ClipRecord(video=path, id=video_id, texts={"caption": " ".join(sentences)},
                                 extra={"duration": item.get("duration"), "sentences": sentences,
                                        "timestamps": [item["timestamps"][i] for i in order]}))
    return retrieval_split(NAME, split, root, videos, finder)
