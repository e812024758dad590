"""Subtitle readers: SRT, WebVTT, ASS/SSA, TTML and SAMI through pysubs2; YouTube json3 and subtitle streams
embedded in the video container through vidla's own code.

Every reader returns the same thing: timed `Segment`s in seconds, sorted, with markup removed. What vidla adds to
pysubs2 is only what it does not do:
- the "rolling" duplicates of YouTube's automatic captions (each line shown twice as it scrolls up) are dropped,
  and only there: a file whose cues carry YouTube's inline word timings (`word<00:00:01.040><c> next</c>`).
  Identical repeated cues in any other file are kept;
- inline word timings (WebVTT's `<00:00:01.040>`, YouTube json3's tOffsetMs) are kept as word onsets, so that
  sentences can later be timed to the word;
- a cue whose timing line is malformed is skipped and counted (`Subtitles.skipped`), not fatal: pysubs2 would
  fold it into the previous cue's text;
- files in UTF-8, or UTF-16/UTF-32 with a byte-order mark, are read; anything else is a `SubtitleError` naming it.
"""

from __future__ import annotations

import codecs
import html
import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

log = logging.getLogger(__name__)

# Formats read through pysubs2, by extension (MicroDVD's .sub is left out: it needs a frame rate, and .sub is
# also VobSub's bitmap format).
PYSUBS2_FORMATS = {".srt": "srt", ".vtt": "vtt", ".ass": "ass", ".ssa": "ssa", ".ttml": "ttml", ".smi": "sami",
                   ".sami": "sami"}
SUBTITLE_EXTENSIONS = (".srt", ".vtt", ".json3", ".ass", ".ssa", ".ttml", ".smi", ".sami")

_TIME = re.compile(r"(?:(\d+):)?(\d{1,2}):(\d{1,2})[.,](\d{1,3})")
_INLINE_TIME = re.compile(r"<((?:\d+:)?\d{1,2}:\d{1,2}[.,]\d{1,3})>")
_YOUTUBE_WORD = re.compile(r"<\d{2}:\d{2}:\d{2}\.\d{3}><c> ")  # each word of YouTube's automatic captions
# Inline times are hidden from pysubs2 (a line with two of them would read as a timing line) in private-use
# characters that no timestamp pattern matches, and restored after.
_HIDE = str.maketrans({":": "\ue002", ".": "\ue003", ",": "\ue004"})
_SHOW = str.maketrans({"\ue002": ":", "\ue003": ".", "\ue004": ",", "\ue000": "<", "\ue001": ">"})
_TIMING_LINE = re.compile(r"^.*-->.*$", re.MULTILINE)
_LOOSE_TIME = re.compile(r"(?<![\d:.,])(?:(\d+):)?(\d{1,2}):(\d{1,2})[.,](\d{1,3})(?!\d)")
_TAG = re.compile(r"<[^>]*>")          # <i>, <c.color>, <v Speaker>, </c> ...
_ASS_OVERRIDE = re.compile(r"\{[^}]*\}")  # {\an8}, {\i1} ...
_SPACE = re.compile(r"\s+")
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))  # UTF-32-LE's BOM starts like UTF-16-LE's


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


@dataclass
class Subtitles:
    """A parsed subtitle file: its segments, how many malformed cues were skipped, and whether it is YouTube's
    automatic captions (whose rolling duplicates were dropped)."""

    segments: list[Segment]
    skipped: int = 0
    youtube_auto: bool = False


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


def decode_subtitle_bytes(data: bytes, source: str = "<subtitles>") -> str:
    """UTF-8, or UTF-8/16/32 with a byte-order mark; anything else is a SubtitleError naming `source`."""
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise SubtitleError(f"{source}: not {encoding.upper().replace('-SIG', '')} text (byte {e.start}); convert "
                            f"it to UTF-8 (e.g. iconv -f cp1252 -t utf-8)") from e


def parse_subtitles(text: str, format_: str, source: str = "<subtitles>", rolling: bool | None = None) -> Subtitles:
    """Parses subtitle text in a pysubs2 format ("srt", "vtt", "ass", "ssa", "ttml", "sami") or "json3".

    rolling: drop YouTube's rolling duplicates; None (default) = only in YouTube's automatic captions.
    """
    if format_ == "json3":
        return _parse_json3(text, source)
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if format_ == "vtt" and not text.startswith("WEBVTT"):
        raise SubtitleError(f"{source}: not a WebVTT file (no 'WEBVTT' header)")
    youtube_auto = format_ == "vtt" and _YOUTUBE_WORD.search(text) is not None
    if format_ not in PYSUBS2_FORMATS.values():
        raise SubtitleError(f"{source}: unknown subtitle format {format_!r}")
    if format_ in ("vtt", "srt"):
        text = _INLINE_TIME.sub(lambda m: "\ue000" + m.group(1).translate(_HIDE) + "\ue001", text)
        text = _TIMING_LINE.sub(lambda m: _padded_timing(m.group(0), "." if format_ == "vtt" else ","), text)
    import pysubs2

    try:
        events = pysubs2.SSAFile.from_string(text, format_=format_)
    except Exception as e:  # pysubs2 raises its own errors, ValueError, KeyError ... for unreadable files
        raise SubtitleError(f"{source}: cannot read as {format_}: {type(e).__name__}: {e}") from e
    if format_ == "srt" and not len(events) and text.strip():
        raise SubtitleError(f"{source}: no subtitle cue found (not an SRT file?)")
    cues, skipped = [], 0
    for event in events:
        if event.is_comment or (format_ in ("ass", "ssa") and event.is_drawing):
            continue
        lines, orphans = _cue_lines(event.plaintext.translate(_SHOW), format_)
        skipped += orphans
        cues.append((event.start / 1000.0, event.end / 1000.0, lines))
    if format_ in ("srt", "vtt"):  # timing lines pysubs2 could not read (each made no cue of its own)
        skipped += max(0, sum("-->" in line for line in text.split("\n")) - len(events))
    if skipped:
        log.warning("%s: skipped %d malformed cue(s)", source, skipped)
    rolling = youtube_auto if rolling is None else rolling
    return Subtitles(normalize(_segments_from_cues(cues, rolling)), skipped, youtube_auto)


def _padded_timing(line: str, separator: str) -> str:
    """Timestamps of a timing line written in full ('0:1:5.2' -> '00:01:05.200'), as pysubs2 expects them;
    some tools (meeting transcripts) leave out the padding that webvtt-py and players accept."""
    def full(m: re.Match) -> str:
        hours, minutes, seconds, fraction = m.groups()
        return f"{int(hours or 0):02d}:{int(minutes):02d}:{int(seconds):02d}{separator}{fraction.ljust(3, '0')}"

    return _LOOSE_TIME.sub(full, line)


def _cue_lines(text: str, format_: str) -> tuple[list[str], int]:
    """A cue's own text lines, and how many blocks without a timing line pysubs2 folded into it.

    pysubs2 reads SRT and WebVTT line by line: a line with two timestamps starts a cue and every other line is
    text of the cue before. So a cue whose timing line is malformed or missing, a WebVTT NOTE block or a cue
    identifier ends up after an empty line at the end of the previous cue's text. A WebVTT cue's text ends at its
    first empty line (the specification), an SRT cue's where a block starts with a number line or holds "-->".
    Blocks holding "-->" are counted by the caller; the others (text without timing) here.
    """
    lines = text.split("\n")
    if format_ not in ("srt", "vtt") or "" not in lines:
        return lines, 0
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line:
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    blocks = [b for b in blocks if b]
    if not blocks:
        return [], 0
    if format_ == "srt":
        cut = next((i for i, b in enumerate(blocks[1:], 1) if re.fullmatch(r"\s*\d+\s*", b[0]) or
                    any("-->" in line for line in b)), len(blocks))
        rest = blocks[cut:]
    else:  # NOTE/STYLE/REGION blocks and a lone last line (the next cue's identifier) are not cues
        rest = [b for b in blocks[1:] if not b[0].startswith(("NOTE", "STYLE", "REGION"))]
        if rest and len(rest[-1]) == 1:
            rest.pop()
        cut = 1
    return [line for b in blocks[:cut] for line in b], sum(not any("-->" in line for line in b) for b in rest)


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


def _segments_from_cues(cues: list[tuple[float, float, list[str]]], rolling: bool) -> list[Segment]:
    """Segments from (start, end, text lines). With `rolling` (YouTube's automatic captions, which show each line
    twice as it scrolls), leading lines of a cue that repeat the trailing lines of the previous cue are dropped."""
    segments: list[Segment] = []
    previous: list[str] = []
    for start, end, raw_lines in cues:
        lines = [_line_words(line, start) for line in raw_lines]
        lines = [(text, starts) for text, starts in lines if text]
        texts = [text for text, _ in lines]
        overlap = 0
        if rolling:
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
    return parse_subtitles(text, "srt", source).segments


def read_vtt(text: str, source: str = "<vtt>") -> list[Segment]:
    return parse_subtitles(text, "vtt", source).segments


def read_json3(text: str, source: str = "<json3>") -> list[Segment]:
    """YouTube's json3 timed text: events with tStartMs/dDurationMs and segs (utf8, tOffsetMs per word)."""
    return _parse_json3(text, source).segments


def _parse_json3(text: str, source: str) -> Subtitles:
    try:
        events = json.loads(text)["events"]
        events = list(events) if isinstance(events, list) else None
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise SubtitleError(f"{source}: not a YouTube json3 file: {e}") from e
    if events is None:
        raise SubtitleError(f"{source}: not a YouTube json3 file: 'events' is not a list")
    segments, skipped = [], 0
    for event in events:
        try:
            segment = _json3_event(event)
        except (AttributeError, TypeError, ValueError):  # an event of the wrong shape: skipped and counted
            skipped += 1
            continue
        if segment is not None:
            segments.append(segment)
    if skipped:
        log.warning("%s: skipped %d malformed event(s)", source, skipped)
    return Subtitles(normalize(segments), skipped)


def _json3_event(event: dict) -> Segment | None:
    segs = event.get("segs") or []
    start = float(event.get("tStartMs", 0)) / 1000.0
    end = start + float(event.get("dDurationMs", 0)) / 1000.0
    if not (math.isfinite(start) and math.isfinite(end)):
        raise ValueError("times must be finite")
    words: list[str] = []
    starts: list[float] = []
    for seg in segs:
        onset = start + float(seg.get("tOffsetMs", 0)) / 1000.0
        utf8 = seg.get("utf8", "")
        if not isinstance(utf8, str) or not math.isfinite(onset):
            raise ValueError("a seg needs utf8 text and a finite offset")
        for word in clean_text(utf8).split():
            words.append(word)
            starts.append(onset)
    return Segment(start, end, " ".join(words), tuple(starts)) if words else None


def read_subtitles(path: str | Path) -> Subtitles:
    """Reads a subtitle file by extension (SUBTITLE_EXTENSIONS), with the count of malformed cues skipped."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUBTITLE_EXTENSIONS:
        raise SubtitleError(f"{path}: unknown subtitle format (known: {', '.join(SUBTITLE_EXTENSIONS)})")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SubtitleError(f"{path}: cannot read: {e}") from e
    return parse_subtitles(decode_subtitle_bytes(data, str(path)), PYSUBS2_FORMATS.get(suffix, "json3"), str(path))


def read_subtitle_file(path: str | Path) -> list[Segment]:
    """The segments of a subtitle file (see `read_subtitles`)."""
    return read_subtitles(path).segments


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
