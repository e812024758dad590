"""Readers for the evaluation and fine-tuning benchmarks, each from the dataset's original annotation files.

    split = load_benchmark("msrvtt", "/data/msrvtt", "test-1k")
    split.videos          # ClipRecords with absolute paths (+ windows, captions, labels)
    split.texts, split.text_to_video, split.class_names, split.answers

The expected folder layouts and file formats are in docs/datasets.md; `vidla data check NAME ROOT` reports what
is missing or unreadable.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

from vidla.data.benchmarks import activitynet, didemo, kinetics, manifest, msrvtt, msvd, ssv2, vatex
from vidla.data.benchmarks.base import AnnotationsMissing, BenchmarkSplit, VideoFinder

_MODULES: dict[str, ModuleType] = {m.NAME: m for m in (msrvtt, didemo, activitynet, msvd, vatex, kinetics, ssv2,
                                                      manifest)}
DEFAULT_SPLITS = {"msrvtt": "test-1k", "didemo": "test", "activitynet": "val1", "msvd": "test", "vatex": "test",
                  "kinetics400": "val", "ssv2": "val", "manifest": "test"}
ALIASES = {"msr-vtt": "msrvtt", "msr_vtt": "msrvtt", "anet": "activitynet", "activitynet-captions": "activitynet",
           "kinetics": "kinetics400", "kinetics-400": "kinetics400", "k400": "kinetics400",
           "something-something-v2": "ssv2", "sthv2": "ssv2"}


def list_benchmarks() -> list[str]:
    return list(_MODULES)


def _module(name: str) -> ModuleType:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in _MODULES:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(_MODULES)}")
    return _MODULES[key]


def benchmark_splits(name: str) -> tuple[str, ...]:
    return _module(name).SPLITS


def benchmark_files(name: str) -> dict[str, tuple[str, ...]]:
    """The annotation files each split reads (alternatives included), for messages and docs."""
    module = _module(name)
    return {split: module.FILES.get(split, ()) for split in module.SPLITS}


def load_benchmark(name: str, root: str | os.PathLike, split: str | None = None) -> BenchmarkSplit:
    """One split (default: the evaluation split of the papers) of a benchmark whose files are under `root`."""
    module = _module(name)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: the {module.NAME} root folder does not exist")
    return module.load(root, split or DEFAULT_SPLITS[module.NAME])


__all__ = ["AnnotationsMissing", "BenchmarkSplit", "DEFAULT_SPLITS", "VideoFinder", "benchmark_files",
           "benchmark_splits", "list_benchmarks", "load_benchmark"]
