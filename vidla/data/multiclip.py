"""Multi-clip samples, LF-VILA's input for the MTC loss (SPEC 5.1): a window of a video cut into M consecutive
clips, each with its own sentence and times; the paragraph (the window's text) is the sentences joined.

A multi-clip sample is a manifest record (docs/manifest.md) whose extra `clips` key lists its clips in time
order, start/end in seconds of the video:

    {"id": "v_abc#w0", "video": "videos/v_abc.mp4", "start": 3.2, "end": 61.0,
     "texts": {"caption": "A man walks in. He sits down. He reads. He leaves."},
     "clips": [{"start": 3.2, "end": 15.0, "text": "A man walks in."}, ...], "source_id": "v_abc", "window": 0}

Built from sentence-timed data: ActivityNet Captions and DiDeMo (`from_benchmark`), the curation output
(`from_curation`: consecutive sentence-aligned clips of one source video) and any record listing timed
`segments` (`from_segments`; the synthetic temporal benchmark writes its events so). A source with fewer than
M sentences yields no sample; one with more yields consecutive windows of M (the last one aligned to the end).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterable, Sequence

import torch

from vidla.data.manifest import ClipRecord


@dataclass(frozen=True)
class Segment:
    """One timed sentence of a video."""

    start: float
    end: float
    text: str

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text}


def segments_of(record: ClipRecord) -> list[Segment]:
    """The clips of a multi-clip record; a ValueError names the record when they are missing or malformed."""
    clips = record.extra.get("clips")
    if not isinstance(clips, list) or not clips:
        raise ValueError(f"record {record.id or record.video}: not a multi-clip sample (no 'clips' list); "
                         "build one with `vidla data multiclip`")
    try:
        segments = [Segment(float(c["start"]), float(c["end"]), str(c["text"])) for c in clips]
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"record {record.id or record.video}: a clip needs start, end and text ({e})") from e
    bad = [s for s in segments if not s.end > s.start]
    if bad:
        raise ValueError(f"record {record.id or record.video}: clip [{bad[0].start}, {bad[0].end}] is empty")
    return segments


def windows(record: ClipRecord, segments: Iterable[Segment], clips: int = 4) -> list[ClipRecord]:
    """Multi-clip samples of `clips` consecutive segments of one video (`record` gives the video and what to
    keep): segments in time order, empty ones dropped, windows 0..M-1, M..2M-1, ..., plus one ending at the last
    segment when they do not divide evenly."""
    if clips < 1:
        raise ValueError(f"clips must be at least 1, got {clips}")
    ordered = sorted((s for s in segments if s.end > s.start and s.text.strip()), key=lambda s: (s.start, s.end))
    if len(ordered) < clips:
        return []
    starts = list(range(0, len(ordered) - clips + 1, clips))
    if starts[-1] + clips < len(ordered):
        starts.append(len(ordered) - clips)
    source_id = record.id or os.path.splitext(os.path.basename(record.video))[0]
    out = []
    for number, first in enumerate(starts):
        chosen = ordered[first: first + clips]
        extra = {**record.extra, "clips": [s.to_json() for s in chosen], "source_id": source_id, "window": number}
        extra.pop("segments", None)
        out.append(ClipRecord(video=record.video, id=f"{source_id}#w{number}", start=chosen[0].start,
                              end=max(s.end for s in chosen), label=record.label, extra=extra,
                              texts={"caption": " ".join(s.text.strip() for s in chosen)}))
    return out


def from_segments(records: Iterable[ClipRecord], clips: int = 4) -> list[ClipRecord]:
    """Records listing timed `segments` ([{start, end, text}], seconds) -> multi-clip samples."""
    out = []
    for record in records:
        raw = record.extra.get("segments") or []
        out.extend(windows(record, [Segment(float(s["start"]), float(s["end"]), s["text"]) for s in raw], clips))
    return out


def from_benchmark(split, clips: int = 4) -> list[ClipRecord]:
    """An ActivityNet Captions or DiDeMo split (vidla.load_benchmark) -> multi-clip samples of its videos'
    time-stamped sentences. DiDeMo's times are 5-second chunks chosen by several annotators: the most common
    choice is the sentence's time."""
    out = []
    for video in split.videos:
        sentences = video.extra.get("sentences")
        if sentences is None:
            raise ValueError(f"{split.name}: video {video.id} has no time-stamped sentences; multi-clip samples "
                             "are made from activitynet and didemo")
        if "timestamps" in video.extra:  # ActivityNet: [start, end] seconds per sentence
            times = [tuple(t) for t in video.extra["timestamps"]]
        else:  # DiDeMo: per sentence, each annotator's [first, last] 5-second chunk
            times = [didemo_seconds(choices) for choices in video.extra["times"]]
        base = ClipRecord(video=video.video, id=video.id, extra={"benchmark": split.name})
        out.extend(windows(base, [Segment(float(s), float(e), text) for (s, e), text in zip(times, sentences)],
                           clips))
    return out


def didemo_seconds(choices: Sequence[Sequence[int]]) -> tuple[float, float]:
    """DiDeMo annotators' [first, last] chunk choices -> the most common one, in seconds (ties: the first)."""
    if not choices:
        return 0.0, 0.0  # an untimed sentence: an empty segment, dropped by `windows`
    counts = Counter(tuple(c) for c in choices)
    first, last = max(counts, key=lambda c: (counts[c], -list(counts).index(c)))
    return 5.0 * first, 5.0 * (last + 1)


def from_curation(records: Iterable[ClipRecord], clips: int = 4, text_kind: str = "caption") -> list[ClipRecord]:
    """A curated manifest (`vidla curate`) -> multi-clip samples: runs of consecutive clips of one scale of one
    source video, each clip's `text_kind` text as its sentence (the subtitle where it has none)."""
    groups: dict[tuple[str, str], list[ClipRecord]] = {}
    for record in records:
        source = record.extra.get("source_id")
        if source is None or record.start is None or record.end is None:
            raise ValueError(f"record {record.id}: not from `vidla curate` (needs source_id, start and end)")
        groups.setdefault((str(source), str(record.extra.get("scale", ""))), []).append(record)
    out = []
    for (source, scale), members in groups.items():
        segments = [Segment(r.start, r.end, _text(r, text_kind)) for r in members]
        base = ClipRecord(video=members[0].video, id=f"{source}#{scale}" if scale else source,
                          extra={"source_id": source, "scale": scale})
        out.extend(windows(base, segments, clips))
    return out


def _text(record: ClipRecord, kind: str) -> str:
    value = record.texts.get(kind) or record.texts.get("subtitle") or ""
    return value if isinstance(value, str) else (value[0] if value else "")


def read_multi_clip(path: str | os.PathLike | bytes | BinaryIO, segments: Sequence[Segment], frames_per_clip: int,
                    sampling: str = "uniform", train: bool = False, generator: torch.Generator | None = None,
                    name: str | None = None, resize_to: int | None = None) -> torch.Tensor:
    """uint8 [M * frames_per_clip, H, W, 3]: each clip's frames sampled within its own times, in clip order,
    from one opening of the video; `resize_to` as `load_video`'s (frames scaled down inside the decoder)."""
    from vidla.data.decode import open_video
    from vidla.data.sampling import sample_timestamps
    from vidla.data.video import _window

    times: list[float] = []
    with open_video(path, name=name, resize_to=resize_to) as reader:
        for segment in segments:
            start, end = _window(reader, segment.start, segment.end, sampling, None)
            times += sample_timestamps(sampling, start, end, frames_per_clip, frame_rate=reader.info.frame_rate,
                                       train=train, generator=generator)[0]
        decoded = reader.frames_at(times)
    return torch.from_numpy(decoded.frames)
