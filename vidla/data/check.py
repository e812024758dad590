"""Checking that videos exist and decode: for benchmarks (`vidla data check`) and manifests (`vidla data verify`)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from vidla.data.benchmarks import AnnotationsMissing, benchmark_splits, load_benchmark
from vidla.data.decode import VideoDecodeError, open_video

LEVELS = ("exists", "header", "decode")


def check_video(path: str | os.PathLike, level: str = "header") -> str | None:
    """None when the video passes; else why not. "header" opens it; "decode" also decodes its first and last frames
    (which catches a truncated file)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    path = Path(path)
    if not path.exists():
        return "not found"
    if level == "exists":
        return None
    try:
        with open_video(path, frame_rate=1.0 if path.is_dir() else None, threads=1) as reader:
            if level == "decode":
                reader.frames_at([0.0, reader.info.duration])
    except VideoDecodeError as e:
        return e.reason
    return None


def check_videos(paths: Iterable[str | os.PathLike], level: str = "header", workers: int | None = None,
                 progress: Callable[[int], None] | None = None) -> dict[str, str]:
    """{path: problem} for the videos that fail, checked in parallel (decoding releases the GIL)."""
    unique = sorted({str(p) for p in paths})
    problems: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=workers or min(32, (os.cpu_count() or 1) * 2)) as pool:
        for path, problem in zip(unique, pool.map(lambda p: check_video(p, level), unique)):
            if problem is not None:
                problems[path] = problem
            if progress is not None:
                progress(1)
    return problems


def check_windows(clips: Iterable[tuple[str, os.PathLike, float | None]], skip: Iterable[str] = ()) -> dict[str, str]:
    """{clip: problem} for clips (name, video, start) whose window starts at or after their video's end (the
    header's duration); videos in `skip` (already reported) are not opened."""
    durations: dict[str, float | None] = {str(p): None for p in skip}
    problems = {}
    for name, video, start in clips:
        if start is None:
            continue
        key = str(video)
        if key not in durations:
            try:
                with open_video(video, frame_rate=1.0 if Path(video).is_dir() else None, threads=1) as reader:
                    durations[key] = reader.info.duration
            except VideoDecodeError:
                durations[key] = None
        duration = durations[key]
        if duration is not None and start >= duration:
            problems[name] = f"the window starts at {start:.3f} s but {video} is only {duration:.3f} s long"
    return problems


@dataclass
class SplitReport:
    split: str
    summary: str = ""
    annotation_error: str | None = None
    missing: list[str] = field(default_factory=list)  # clip ids whose video file is absent
    unreadable: dict[str, str] = field(default_factory=dict)  # path -> reason

    @property
    def ok(self) -> bool:
        return self.annotation_error is None and not self.missing and not self.unreadable


def check_benchmark(name: str, root: str | os.PathLike, splits: Iterable[str] | None = None,
                    level: str = "header", workers: int | None = None,
                    progress: Callable[[int], None] | None = None) -> list[SplitReport]:
    """Per split: annotation files present and parseable, video files present, videos readable at `level`."""
    reports = []
    for split in splits or benchmark_splits(name):
        report = SplitReport(split)
        try:
            loaded = load_benchmark(name, root, split)
        except (AnnotationsMissing, ValueError, KeyError) as e:
            report.annotation_error = f"{type(e).__name__}: {e}" if not isinstance(e, AnnotationsMissing) else str(e)
            reports.append(report)
            continue
        report.summary, report.missing = loaded.summary(), list(loaded.missing)
        if level != "exists":
            missing = set(loaded.missing)
            present = [v.video for v in loaded.videos if v.id not in missing]
            report.unreadable = check_videos(present, level, workers, progress)
        reports.append(report)
    return reports
