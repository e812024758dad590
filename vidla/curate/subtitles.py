"""Subtitle readers: SRT, WebVTT, YouTube json3 and subtitle streams embedded in the video container.

Every reader returns the same thing: timed `Segment`s in seconds, sorted, with markup removed and the
"rolling" duplicates of YouTube's automatic captions dropped. Where a format gives word onsets (json3 and
YouTube's WebVTT inline timestamps) they are kept, so that sentences can later be timed to the word.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

SUBTITLE_EXTENSIONS = (".srt", ".vtt", ".json3")

_TIME = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{1,2})[.,](\d{1,3})")
_INLINE_TIME = re.compile(r"<((?:\d+:)?\d{1,2}:\d{1,2}[.,]\d{1,3})>")
_TAG = re.compile(r"<[^>]*>")          # <i>, <c.color>, <v Speaker>, </c> ...
_ASS_OVERRIDE = re.compile(r"\{[^}]*\}")  # {\an8}, {\i1} ...
_SPACE = re.compile(r"\s+")


class SubtitleError(ValueError):
    """A subtitle file or stream that cannot be read; the message names it."""


@dataclass(frozen=True)
class Segment:
    """One subtitle cue: `text` shown from `start` to `end` (seconds).

    `word_starts`, when the format gives them, holds the onset of each whitespace-separated word of `text`.
    """

    start: float
    end: float
    text: str
    word_starts: tuple[float, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start": self.start, "end": self.end, "text": self.text}
        if self.word_starts is not None:
            out["word_starts"] = list(self.word_starts)
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> "Segment":
        starts = obj.get("word_starts")
        return cls(float(obj["start"]), float(obj["end"]), obj["text"], None if starts is None else tuple(starts))


def parse_timestamp(text: str) -> float:
    """'01:02:03,450', '02:03.450' or '1:02:03.4' -> seconds."""
    match = _TIME.fullmatch(text.strip())
    if not match:
        raise ValueError(f"not a subtitle timestamp: {text!r}")
    hours, minutes, seconds, fraction = match.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds) + int(fraction) / 10 ** len(fraction)


def clean_text(text: str) -> str:
    """Removes markup (HTML-like tags, ASS overrides, '\\N' breaks, entities) and collapses whitespace."""
    text = _ASS_OVERRIDE.sub("", text).replace("\\N", " ").replace("\\n", " ").replace("\\h", " ")
    return _SPACE.sub(" ", html.unescape(_TAG.sub("", text))).strip()


def _cue_blocks(text: str) -> Iterable[list[str]]:
    """Blank-line separated blocks of non-empty lines (CRLF and BOM tolerated)."""
    block: list[str] = []
    for line in text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line.strip():
            block.append(line.rstrip())
        elif block:
            yield block
            block = []
    if block:
        yield block


def _timed_cue(block: list[str]) -> tuple[float, float, list[str]] | None:
    """(start, end, text lines) of an SRT/VTT cue block, or None for a block without a timing line."""
    for index, line in enumerate(block):
        if "-->" in line:
            left, right = line.split("-->", 1)
            end_field = right.strip().split()[0] if right.strip() else ""
            return parse_timestamp(left), parse_timestamp(end_field), block[index + 1:]
    return None


def _parse_cues(text: str, source: str) -> list[tuple[float, float, list[str]]]:
    cues = []
    for block in _cue_blocks(text):
        if block[0].startswith(("WEBVTT", "NOTE", "STYLE", "REGION")) and "-->" not in block[0]:
            continue
        try:
            cue = _timed_cue(block)
        except ValueError as e:
            raise SubtitleError(f"{source}: bad cue {block[0]!r}: {e}") from e
        if cue is not None:
            cues.append(cue)
        elif cues and not cues[-1][2]:
            # YouTube puts a whitespace-only line between a cue's timing and its text.
            cues[-1] = (cues[-1][0], cues[-1][1], block)
    return cues


def _line_words(line: str, cue_start: float) -> tuple[str, list[float] | None]:
    """Cleans one VTT line; returns its text and word onsets when the line carries inline timestamps."""
    pieces = _INLINE_TIME.split(line)
    if len(pieces) == 1:
        return clean_text(line), None
    words: list[str] = []
    starts: list[float] = []
    onset = cue_start
    for position, piece in enumerate(pieces):
        if position % 2 == 1:
            onset = parse_timestamp(piece)
            continue
        for word in clean_text(piece).split():
            words.append(word)
            starts.append(onset)
    return " ".join(words), starts


def _segments_from_cues(cues: list[tuple[float, float, list[str]]]) -> list[Segment]:
    """Drops rolling duplicates: leading lines of a cue that repeat the trailing lines of the previous cue
    (YouTube's automatic captions show each line twice, scrolling)."""
    segments: list[Segment] = []
    previous: list[str] = []
    for start, end, raw_lines in cues:
        lines = [_line_words(line, start) for line in raw_lines]
        lines = [(text, starts) for text, starts in lines if text]
        texts = [text for text, _ in lines]
        overlap = next((k for k in range(min(len(texts), len(previous)), 0, -1) if texts[:k] == previous[-k:]), 0)
        if texts:
            previous = texts
        fresh = lines[overlap:]
        if not fresh:
            continue
        text = " ".join(t for t, _ in fresh)
        word_starts = None
        if any(starts is not None for _, starts in fresh):
            # Lines without inline times start at the cue start.
            word_starts = tuple(s for t, starts in fresh for s in (starts or [start] * len(t.split())))
        segments.append(Segment(start, end, text, word_starts))
    return segments


def read_srt(text: str, source: str = "<srt>") -> list[Segment]:
    return normalize(_segments_from_cues(_parse_cues(text, source)))


def read_vtt(text: str, source: str = "<vtt>") -> list[Segment]:
    if not text.lstrip("\ufeff").startswith("WEBVTT"):
        raise SubtitleError(f"{source}: not a WebVTT file (no 'WEBVTT' header)")
    return normalize(_segments_from_cues(_parse_cues(text, source)))


def read_json3(text: str, source: str = "<json3>") -> list[Segment]:
    """YouTube's json3 timed text: events with tStartMs/dDurationMs and segs (utf8, tOffsetMs per word)."""
    try:
        events = json.loads(text)["events"]
    except (ValueError, KeyError, TypeError) as e:
        raise SubtitleError(f"{source}: not a YouTube json3 file: {e}") from e
    segments = []
    for event in events:
        segs = event.get("segs") or []
        start = event.get("tStartMs", 0) / 1000.0
        end = start + event.get("dDurationMs", 0) / 1000.0
        words: list[str] = []
        starts: list[float] = []
        for seg in segs:
            onset = start + seg.get("tOffsetMs", 0) / 1000.0
            for word in clean_text(seg.get("utf8", "")).split():
                words.append(word)
                starts.append(onset)
        if words:
            segments.append(Segment(start, end, " ".join(words), tuple(starts)))
    return normalize(segments)


def read_subtitle_file(path: str | Path) -> list[Segment]:
    """Reads an .srt, .vtt or .json3 file, by extension."""
    path = Path(path)
    readers = {".srt": read_srt, ".vtt": read_vtt, ".json3": read_json3}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise SubtitleError(f"{path}: unknown subtitle format (known: {', '.join(readers)})")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise SubtitleError(f"{path}: cannot read: {e}") from e
    return reader(text, str(path))


def read_embedded(video: str | Path, languages: Sequence[str] = ()) -> tuple[list[Segment], str]:
    """Text subtitle stream of a container (mkv, mp4 mov_text, ...), through PyAV.

    Picks the first stream whose language is in `languages` (in that order), else the first text stream.
    Returns the segments and a description of the stream used. Bitmap subtitles (PGS, DVD) have no text and
    are refused.
    """
    import av

    try:
        container = av.open(str(video))
    except (av.FFmpegError, OSError) as e:
        raise SubtitleError(f"{video}: cannot open: {e}") from e
    with container:
        stream = _pick_stream(list(container.streams.subtitles), languages, video)
        segments = []
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            start = float(packet.pts * packet.time_base)
            end = start + float((packet.duration or 0) * packet.time_base)
            for subtitle in packet.decode():
                if getattr(subtitle, "type", b"") not in (b"ass", b"text"):
                    raise SubtitleError(f"{video}: subtitle stream {stream.index} is a bitmap format; "
                                        "it needs OCR, which vidla does not do")
                text = clean_text(_subtitle_text(subtitle))
                if text:
                    segments.append(Segment(start, end, text))
        return normalize(segments), f"embedded stream {stream.index} ({stream.language or 'und'})"


def _pick_stream(streams: list, languages: Sequence[str], video: str | Path):
    if not streams:
        raise SubtitleError(f"{video}: no subtitle stream in the container")
    for language in languages:
        for stream in streams:
            if (stream.language or "").lower().startswith(language.lower()):
                return stream
    return streams[0]


def _subtitle_text(subtitle) -> str:
    raw = subtitle.dialogue if subtitle.type == b"ass" else subtitle.text
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)


def normalize(segments: Iterable[Segment]) -> list[Segment]:
    """Sorted by start, empty cues dropped, negative or inverted times repaired."""
    out = []
    for segment in sorted(segments, key=lambda s: (s.start, s.end)):
        text = _SPACE.sub(" ", segment.text).strip()
        if not text:
            continue
        start = max(0.0, segment.start)
        out.append(Segment(start, max(start, segment.end), text, segment.word_starts))
    return out


def find_sidecar(video: str | Path, languages: Sequence[str] = ()) -> Path | None:
    """The subtitle file beside a video: `name.srt`/`.vtt`/`.json3`, or yt-dlp's `name.LANG.ext`.

    Files in a preferred language come first (in `languages` order), then the plain name, then any other
    language; within each, the extension order of SUBTITLE_EXTENSIONS.
    """
    video = Path(video)
    candidates = [p for p in video.parent.glob(f"{_glob_escape(video.stem)}.*")
                  if p.suffix.lower() in SUBTITLE_EXTENSIONS and p.is_file()]
    if not candidates:
        return None

    def rank(path: Path) -> tuple[int, int, str]:
        tag = path.name[len(video.stem) + 1: -len(path.suffix)]  # '' or 'en' or 'en-US'
        if tag and tag.lower() in [lang.lower() for lang in languages]:
            group = [lang.lower() for lang in languages].index(tag.lower())
        elif not tag:
            group = len(languages)
        else:
            group = len(languages) + 1
        return group, SUBTITLE_EXTENSIONS.index(path.suffix.lower()), path.name

    return min(candidates, key=rank)


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)
