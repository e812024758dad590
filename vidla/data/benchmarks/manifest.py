"""Any clip manifest as a retrieval benchmark: ROOT/{split}.jsonl (docs/manifest.md), e.g. the synthetic temporal
benchmark of `vidla data synth`. Every caption of a clip is a query (texts["caption"], a string or a list)."""

from __future__ import annotations

from pathlib import Path

from vidla.data.benchmarks.base import AnnotationsMissing, BenchmarkSplit, VideoFinder, retrieval_split
from vidla.data.manifest import read_manifest_resolved

NAME = "manifest"
SPLITS = ("train", "val", "test")
FILES = {split: (f"{split}.jsonl",) for split in SPLITS}


def load(root: Path, split: str) -> BenchmarkSplit:
    path = root / f"{split}.jsonl"
    if not path.is_file():
        raise AnnotationsMissing(f"{path}: no {split} manifest (a manifest benchmark is ROOT/{{train,val,test}}.jsonl)")
    videos = [r for r in read_manifest_resolved(path) if r.texts.get("caption")]
    finder = VideoFinder(root, folders=())
    finder.missing = [r.id or r.video for r in videos if not Path(r.video).exists()]
    return retrieval_split(NAME, split, root, videos, finder)
