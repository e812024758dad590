"""Something-Something v2: 220,847 clips of 174 template actions on objects (Goyal et al., ICCV 2017).

Splits "train", "val", "test" from something-something-v2-{train,validation,test}.json ([{"id", "label",
"template", "placeholders"}], the test without labels); classes from something-something-v2-labels.json
({"Approaching something with your camera": "0", ...}): a clip's class is its template with the brackets
removed. Clip files are "<id>.webm" (the 20bn-something-something-v2 folder of the download).
"""

from __future__ import annotations

from pathlib import Path

from vidla.data.benchmarks.base import BenchmarkSplit, VideoFinder, find_annotation, read_json
from vidla.data.manifest import ClipRecord

NAME = "ssv2"
SPLITS = ("train", "val", "test")
JSONS = {"train": "something-something-v2-train.json", "val": "something-something-v2-validation.json",
         "test": "something-something-v2-test.json"}
LABELS = "something-something-v2-labels.json"
FILES = {split: (JSONS[split], LABELS) for split in SPLITS}
VIDEO_FOLDERS = ("", "20bn-something-something-v2", "videos", "frames")


def load(root: Path, split: str) -> BenchmarkSplit:
    if split not in SPLITS:
        raise ValueError(f"ssv2 has no split {split!r}; choose one of {', '.join(SPLITS)}")
    labels = {name: int(i) for name, i in read_json(find_annotation(root, [LABELS], LABELS)).items()}
    class_names = [name for name, _ in sorted(labels.items(), key=lambda item: item[1])]
    finder = VideoFinder(root, VIDEO_FOLDERS)
    videos = []
    for item in read_json(find_annotation(root, [JSONS[split]], JSONS[split])):
        clip_id = str(item["id"])
        template = item.get("template")
        label = labels[template.replace("[", "").replace("]", "")] if template else None
        texts = {"label": item["label"]} if item.get("label") else {}
        videos.append(ClipRecord(video=finder.resolve(clip_id, clip_id), id=clip_id, texts=texts, label=label,
                                 extra={"template": template, "placeholders": item.get("placeholders")}))
    return BenchmarkSplit(NAME, split, "classification", root, videos, class_names=class_names,
                          missing=finder.missing)
