"""Decoding frames at requested timestamps, with PyAV (FFmpeg), reading only what those frames need.

Time is in seconds from the start of the file (the container's start time, as `ffmpeg -ss` counts it). The frame
returned for a time `t` is the one on screen at `t`: the last frame whose presentation time is <= t (the first frame
for a `t` before it). Frames come back as RGB uint8 arrays [T, H, W, 3], converted by FFmpeg's swscale exactly as
the `ffmpeg` command line converts to `-pix_fmt rgb24`, and turned upright when the file carries rotation metadata
(as the command line does).

How little is decoded:
- a keyframe index (mp4, avi, mkv cues) tells when a keyframe lies between the decoder's position and the next
  target; only then does the reader seek, otherwise it decodes forward;
- packets superseded by a later packet already demuxed that is on screen by the next target are handed to the
  decoder with `skip_frame=NONREF`, so frames nothing refers to (most B-frames) are not reconstructed;
- in mp4, once every frame shown by a target has been fed (a packet's decode time is past it), the decoder is
  drained rather than fed the packets that B-frame reordering would otherwise need first;
- only the chosen frames are converted to RGB, each as soon as it is chosen (so at most one decoded frame at the
  source's size is held, whatever the number of targets).

Memory is bounded by the output: with `resize_to=N`, swscale's conversion to RGB also scales a frame whose shorter
side exceeds N down to N (aspect kept, bicubic, as `ffmpeg -vf scale=W:H:flags=bicubic` does), so a clip of T frames
holds T frames of the scaled size, never of the source's. Without it frames keep their size and equal the `ffmpeg`
command line's. Either way a video whose frames exceed MAX_SOURCE_PIXELS (8192 x 8192) or whose aspect ratio
exceeds MAX_ASPECT_RATIO (16:1) is refused before any frame is decoded.

Decoders use slice threading (FFmpeg's frame threading, PyAV's AUTO, can deadlock inside forked DataLoader workers)
and one thread inside a DataLoader worker, where the workers already keep the cores busy.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import math
import os
import re
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Sequence

import av
import av.video.reformatter
import numpy as np

from vidla.errors import VidlaError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
# A target this far past the last decodable frame, inside the duration the header states, means the file is cut off.
_TRUNCATION_TOLERANCE_S = 1.0
# Without a usable keyframe index, seek only when the next target is this far ahead of the decoder.
_SEEK_GAP_WITHOUT_INDEX_S = 2.0
_MAX_SEEK_RETRIES = 8
_FORMATS_WITH_PACKET_PTS = {"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"}
# The documented cap on source frames: one 8192 x 8192 frame is 100 MB as yuv420p, 200 MB as RGB.
MAX_SOURCE_PIXELS = 8192 * 8192
MAX_ASPECT_RATIO = 16.0


class VideoDecodeError(VidlaError, OSError):
    """A video (or frame folder) that cannot be read; the message names the file and what went wrong."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason

    def __reduce__(self):  # picklable across DataLoader workers despite the two-argument constructor
        return type(self), (self.path, self.reason)


class VideoNotFoundError(VideoDecodeError, FileNotFoundError):
    """The video file or frame folder does not exist."""


@dataclass(frozen=True)
class VideoInfo:
    """What the header says about a video. Times are seconds; width and height are as decoded, before rotation."""

    path: str
    duration: float
    frame_rate: float | None
    num_frames: int | None  # stored in the header (mp4, avi) or counted (frame folders); None when unknown
    width: int
    height: int
    codec: str
    container: str
    rotation: int | None = None  # degrees counterclockwise from the display matrix; None until a frame is decoded

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class DecodedFrames:
    frames: np.ndarray  # uint8 [T, H, W, 3], RGB, upright
    times: np.ndarray  # float64 [T]: presentation time (s) of each returned frame
    info: VideoInfo = field(repr=False)


# ---------------------------------------------------------------------------------------------------------------------
# Opening


def _in_dataloader_worker() -> bool:
    try:
        import torch.utils.data

        return torch.utils.data.get_worker_info() is not None
    except ImportError:  # pragma: no cover - torch is a dependency
        return False


def default_decoder_threads() -> int:
    """1 inside a DataLoader worker (the workers share the cores), else 0 = FFmpeg's choice."""
    return 1 if _in_dataloader_worker() else 0


def _check_path(path: Path) -> None:
    if not path.exists():
        raise VideoNotFoundError(path, "no such file or folder")
    if path.is_file() and path.stat().st_size == 0:
        raise VideoDecodeError(path, "the file is empty (0 bytes)")


def open_video(
    source: str | os.PathLike | bytes | BinaryIO,
    *,
    frame_rate: float | None = None,
    threads: int | None = None,
    autorotate: bool = True,
    skip_nonref: bool = True,
    name: str | None = None,
    resize_to: int | None = None,
) -> "VideoReader | FrameFolderReader":
    """A reader for a video file, a folder of frames (JPEG/PNG, sorted by name), or video bytes / a binary file.

    `frame_rate` is the rate a frame folder was extracted at (frame i is shown at i / frame_rate); files carry
    their own.
    `name` names in-memory sources in error messages. `resize_to`: frames whose shorter side is longer are scaled
    down to it while converting to RGB (never up); None keeps the source size.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        _check_path(path)
        if path.is_dir():
            return FrameFolderReader(path, frame_rate=frame_rate, resize_to=resize_to)
    return VideoReader(source, threads=threads, autorotate=autorotate, skip_nonref=skip_nonref, name=name,
                       resize_to=resize_to)


def probe_video(source: str | os.PathLike, *, frame_rate: float | None = None) -> VideoInfo:
    """The header information of a video, with its rotation read from the first frame."""
    with open_video(source, frame_rate=frame_rate) as reader:
        decoded = reader.frames_at([0.0])
        return decoded.info


# ---------------------------------------------------------------------------------------------------------------------
# Video files


class VideoReader:
    """An open video file. Use as a context manager; `frames_at` may be called several times (e.g. test views)."""

    def __init__(
        self,
        source: str | os.PathLike | bytes | BinaryIO,
        *,
        threads: int | None = None,
        autorotate: bool = True,
        skip_nonref: bool = True,
        name: str | None = None,
        resize_to: int | None = None,
    ):
        if resize_to is not None and resize_to < 1:
            raise ValueError(f"resize_to must be a positive number of pixels, got {resize_to}")
        self.resize_to = resize_to
        if isinstance(source, (bytes, bytearray, memoryview)):
            source = io.BytesIO(source)
        if isinstance(source, (str, os.PathLike)):
            self.path = name or str(source)
            _check_path(Path(source))
            source = str(source)
        else:
            self.path = name or getattr(source, "name", "<video bytes>")
        self.autorotate, self._source, self._threads = autorotate, source, threads
        self._container = None
        try:
            self._open()
            self.info = self._read_info()
            # Skipping needs true presentation times on packets; AVI's are decode-order counters.
            self.skip_nonref = skip_nonref and self.info.container in _FORMATS_WITH_PACKET_PTS
            self._reformatter = av.video.reformatter.VideoReformatter()
            self._first_pts = self._stream.start_time
            self._index_usable: bool | None = None
            self._dts_stored = self.info.container.startswith("mov")  # mp4 stores decode times and indexes them
            self._reorder_delay = self._initial_reorder_delay() if self._dts_stored else 0
            self._no_seek_until: float = -math.inf  # after an overshoot: no index seeks for targets up to this pts
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        """Opens (or reopens) the container and sets up the decoder of its video stream."""
        self.close()
        if not isinstance(self._source, str):
            self._source.seek(0)
        with self._errors("cannot open"):
            self._container = av.open(self._source, metadata_errors="ignore")
        self._stream = self._video_stream()
        self._stream.thread_type = "SLICE"
        self._stream.codec_context.thread_count = default_decoder_threads() if self._threads is None else self._threads
        self._time_base = self._stream.time_base
        self._origin_us = self._container.start_time or 0  # t = 0 is the container start, as `ffmpeg -ss` counts

    # -- context management -----------------------------------------------------------------------------------------

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _errors(self, what: str):
        return _wrap_errors(self.path, what)

    # -- header ------------------------------------------------------------------------------------------------------

    def _video_stream(self):
        streams = [s for s in self._container.streams.video
                   if not s.disposition & av.stream.Disposition.attached_pic]  # cover art is not the video
        if not streams:
            raise VideoDecodeError(self.path, "no video stream (audio-only or not a video)")
        if streams[0].codec_context is None:
            raise VideoDecodeError(self.path, f"no decoder for its video codec ({streams[0].codec.name})")
        return streams[0]

    def _read_info(self) -> VideoInfo:
        stream, context = self._stream, self._stream.codec_context
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        frame_rate = float(rate) if rate else None
        duration = self._video_duration()
        if duration is None or duration <= 0:
            raise VideoDecodeError(self.path, "the video stream has no frames (zero length)")
        check_frame_size(self.path, context.width, context.height)
        return VideoInfo(path=self.path, duration=duration, frame_rate=frame_rate,
                         num_frames=stream.frames or None, width=context.width, height=context.height,
                         codec=context.name, container=self._container.format.name)

    def _video_duration(self) -> float | None:
        """Seconds from t = 0 to the end of the video stream, from the cheapest source that has it."""
        stream = self._stream
        offset = 0.0
        if stream.start_time is not None:
            offset = float(stream.start_time * self._time_base) - self._origin_us / 1e6
        if stream.duration:
            return offset + float(stream.duration * self._time_base)
        tagged = _parse_clock(stream.metadata.get("DURATION") or stream.metadata.get("duration"))
        if tagged:  # Matroska muxers store each track's duration as a tag
            return offset + tagged
        if self._container.duration:
            return self._container.duration / 1e6
        return self._duration_by_demuxing()

    def _duration_by_demuxing(self) -> float | None:
        """End of the last packet, reading from the last keyframe (a raw stream or a live recording has no header)."""
        end = None
        with self._errors("cannot find the duration (a raw stream without timestamps?)"):
            try:
                self._container.seek(2**62, stream=self._stream, backward=True)
            except av.FFmpegError:
                self._container.seek(0)
            for packet in self._container.demux(self._stream):
                if packet.pts is not None:
                    end = max(end or 0, packet.pts + (packet.duration or 0))
            self._container.seek(0)
        return None if end is None else self._seconds(end)

    # -- timestamps --------------------------------------------------------------------------------------------------

    def _to_pts(self, seconds: float) -> int:
        """The last stream pts at or before `seconds`, read to the microsecond as `ffmpeg -ss` reads times.

        Half a microsecond is added so that a frame time printed to the microsecond (rounded either way) selects
        that frame, never the one before it.
        """
        microseconds = round(seconds * 1_000_000) + self._origin_us
        return ((2 * microseconds + 1) * self._time_base.denominator) // (2 * self._time_base.numerator * 1_000_000)

    def _seconds(self, pts: int) -> float:
        return float(pts * self._time_base) - self._origin_us / 1e6

    # -- decoding ----------------------------------------------------------------------------------------------------

    def frames_at(self, times: Sequence[float]) -> DecodedFrames:
        """The frames on screen at each of `times` (seconds, any order, repeats allowed), clamped to the video."""
        if self._container is None:
            raise VideoDecodeError(self.path, "the reader is closed")
        last = max(self.info.duration - 1e-6, 0.0)
        requested = [self._to_pts(min(max(float(t), 0.0), last)) for t in times]
        output = _Output(self, requested)
        if requested:
            self._decode_targets(sorted(set(requested)), output)
        return output.result()

    def _to_rgb(self, frame, width: int, height: int) -> np.ndarray:
        """swscale to rgb24 at (width, height): the source size unless `resize_to` scales it down (bicubic)."""
        scaled = (width, height) != (frame.width, frame.height) and self.resize_to is not None
        with self._errors("cannot convert a frame to RGB"):
            rgb = self._reformatter.reformat(frame, width=width, height=height, format="rgb24",
                                             interpolation="BICUBIC" if scaled else None).to_ndarray()
        if self.autorotate:
            rgb = _rotate(rgb, getattr(frame, "rotation", 0))
        return rgb

    def _decode_targets(self, targets: list[int], chosen: "_Output") -> None:
        """Gives `chosen[target]` the (frame, its pts) on screen at each target pts, seeking only when it saves work."""
        pending = deque(targets)
        seek_to, step = (pending[0] if pending else 0), self._frame_ticks()
        for _ in range(len(targets) * (_MAX_SEEK_RETRIES + 1)):
            if not pending:
                return
            at_start = self._seek(seek_to)
            outcome, first_pts = self._decode_run(pending, chosen, accept_early=at_start)
            if outcome == "overshoot":
                # The seek landed on a keyframe after the target (mp4 indexes hold dts, some indexes are coarse):
                # go back further each time until a frame at or before the target comes out, or the file starts.
                self._no_seek_until = max(self._no_seek_until, pending[0])
                seek_to, step = min(seek_to, first_pts) - step, step * 2
            else:
                seek_to, step = (pending[0] if pending else 0), self._frame_ticks()
        if pending:
            raise VideoDecodeError(self.path, "cannot reach the requested frames (seeking does not converge)")

    def _frame_ticks(self) -> int:
        rate = self.info.frame_rate or 25.0
        return max(1, round(1 / (rate * self._time_base)))

    def _seek(self, pts: int) -> bool:
        """Seeks to the keyframe at or before `pts`; True when it went to the start of the file instead."""
        floor = self._first_pts if self._first_pts is not None else self._to_pts(0.0)
        with self._errors(f"cannot seek to {self._seconds(pts):.3f} s"):
            if pts >= floor:
                try:
                    # An mp4 index holds decode times: ask for the keyframe decoded early enough to be shown by pts.
                    self._container.seek(pts - self._reorder_delay, stream=self._stream, backward=True)
                    return False
                except av.FFmpegError:  # e.g. a target before the first index entry
                    pass
            try:
                self._container.seek(0)
            except av.FFmpegError:  # not even that (no index at all): reopen, which starts at the start
                self._open()
            return True

    def _decode_run(self, pending: deque, chosen: "_Output", accept_early: bool) -> tuple[str, int]:
        """Decodes forward from the current position, resolving targets; stops when a seek would be cheaper.

        Returns ("done" | "seek", 0), or ("overshoot", pts of the first frame) when the seek landed after the target
        (unless `accept_early`: at the start of the file the first frame stands for earlier times).
        """
        run = _Run(accept_early)
        for packet in self._packets():
            drain = False
            if packet is not None:
                # Seek only after progress, so that a seek landing off the index's keyframe cannot loop.
                if run.resolved and self._worth_seeking(pending[0], packet, run.seen):
                    return "seek", 0
                drain = self._drain_now(pending, packet, run.seen)
                if not drain:
                    self._set_skip(packet, run.seen, pending[0])
            limit = packet.dts if drain else math.inf
            outcome = self._take_frames(self._decode_packet(None if drain else packet), pending, chosen, run, limit)
            if outcome is not None:
                return outcome
            if drain:  # every frame shown before this packet's decode time is out: targets before it are settled
                while pending and pending[0] < limit and run.previous is not None:
                    chosen[pending.popleft()] = run.previous
                return ("seek" if pending else "done"), 0
        self._finish_at_end(run.previous, pending, chosen)
        return "done", 0

    def _take_frames(self, frames: list, pending: deque, chosen: "_Output", run: "_Run",
                     limit: float = math.inf) -> tuple[str, int] | None:
        """Resolves the targets that decoded frames settle: a target is settled by the first frame after it.

        When draining, frames from `limit` on are ignored: packets not fed yet may hold frames shown before them.
        """
        for frame in frames:
            pts = run.timestamps(frame)
            if pts is None:
                continue
            if run.previous is None and pts > pending[0] and not (run.accept_early or self._is_first_frame(pts)):
                return "overshoot", pts
            if pts >= limit:
                continue
            while pending and pending[0] < pts:
                chosen[pending.popleft()] = run.previous if run.previous is not None else (frame, pts)
                run.resolved += 1
            run.previous = (frame, pts)
            if not pending:
                return "done", 0
        return None

    def _drain_now(self, pending: deque, packet, seen: list[int]) -> bool:
        """True when draining the decoder beats decoding on: everything the next target needs has been fed and the
        target after it needs a seek anyway.

        Packets come in decode order and a frame is never decoded after it is shown (dts <= pts), so once a
        packet's dts is past the target, every frame shown by then is in the decoder. Draining hands those frames
        over without feeding the 2-3 packets that B-frame reordering would otherwise need first. Only where the
        container stores decode times (mp4); elsewhere they are guessed.
        """
        if not self._dts_stored or packet.dts is None or packet.dts <= pending[0] or not seen:
            return False
        return len(pending) == 1 or self._worth_seeking(pending[1], packet, seen)

    def _is_first_frame(self, pts: int) -> bool:
        return self._first_pts is not None and pts <= self._first_pts

    def _packets(self) -> Iterator:
        """Demuxed packets of the video stream; None once at the end (a flush)."""
        demuxer = self._container.demux(self._stream)
        while True:
            with self._errors("cannot read the file (truncated or corrupt)"):
                packet = next(demuxer, None)
            if packet is None or packet.size == 0:
                yield None
                return
            yield packet

    def _decode_packet(self, packet) -> list:
        where = f" near {self._seconds(packet.pts):.3f} s" if packet is not None and packet.pts is not None else ""
        with self._errors(f"corrupt video data{where}"):
            return self._stream.codec_context.decode(packet)

    def _set_skip(self, packet, seen: list[int], target: int) -> None:
        """Skip reconstructing a non-reference frame when a later packet already demuxed is on screen by `target`."""
        context = self._stream.codec_context
        if not self.skip_nonref or packet.pts is None:
            context.skip_frame = "DEFAULT"
            return
        later = bisect.bisect_right(seen, packet.pts)
        superseded = later < len(seen) and seen[later] <= target
        bisect.insort(seen, packet.pts)
        context.skip_frame = "NONREF" if superseded else "DEFAULT"

    def _worth_seeking(self, target: int, packet, seen: list[int]) -> bool:
        """True when a keyframe lies between the packet about to be decoded and the target."""
        if target <= self._no_seek_until or packet.pts is None:
            return False
        position = max(packet.pts, seen[-1]) if seen else packet.pts  # the furthest presentation time demuxed
        if self._index_is_usable():
            entries = self._stream.index_entries
            at = entries.search_timestamp(target - self._reorder_delay, backward=True)
            if at < 0:
                return False
            if self._dts_stored:  # mp4 indexes decode times: compare like with like
                return packet.dts is not None and entries[at].timestamp > packet.dts
            return entries[at].timestamp > position
        return float((target - position) * self._time_base) > _SEEK_GAP_WITHOUT_INDEX_S

    def _initial_reorder_delay(self) -> int:
        """How far decode times run behind presentation times in an mp4 with B-frames (its first frame's pts - dts).

        A keyframe is shown that much after it is decoded, so the index's decode times are shifted by it.
        """
        entries = getattr(self._stream, "index_entries", None)
        if not entries or self._first_pts is None:
            return 0
        return max(0, self._first_pts - entries[0].timestamp)

    def _index_is_usable(self) -> bool:
        if self._index_usable is None:  # Matroska reads its cues at the first seek, so ask after one
            entries = getattr(self._stream, "index_entries", None)  # PyAV >= 17
            self._index_usable = entries is not None and len(entries) >= 2 and any(e.is_keyframe for e in entries[1:])
        return self._index_usable

    def _finish_at_end(self, previous: tuple[Any, int] | None, pending: deque, chosen: "_Output") -> None:
        """End of stream: remaining targets show the last frame, unless far beyond it (a cut-off file)."""
        if previous is None:
            raise VideoDecodeError(self.path, "no frame could be decoded (zero-length stream, or truncated/corrupt)")
        frame, pts = previous
        last = self._seconds(pts + (getattr(frame, "duration", None) or 0))
        furthest = self._seconds(pending[-1]) if pending else last
        if furthest - last > _TRUNCATION_TOLERANCE_S:
            raise VideoDecodeError(
                self.path, f"the video stream ends at {last:.2f} s but the header says {self.info.duration:.2f} s "
                           f"and {furthest:.2f} s was requested (truncated file?)")
        while pending:
            chosen[pending.popleft()] = previous


class _Output:
    """Where chosen frames go: each distinct frame is converted to RGB once, as soon as it is chosen, straight into
    its rows of the output array, so a clip holds its output and one frame in conversion, whatever the number of
    targets. All frames get the first converted frame's size (a mid-stream size change is scaled, as ffmpeg does)."""

    def __init__(self, reader: VideoReader, requested: list[int]):
        self.reader, self.rows = reader, {}
        for row, pts in enumerate(requested):
            self.rows.setdefault(pts, []).append(row)
        self.count = len(requested)
        self.frames: np.ndarray | None = None
        self.times = np.zeros(self.count, dtype=np.float64)
        self.size: tuple[int, int] | None = None
        self.rotation = 0
        self.written: dict[int, int] = {}  # frame pts -> a row that holds it

    def __setitem__(self, target: int, chosen: tuple[Any, int]) -> None:
        frame, pts = chosen
        rows = self.rows[target]
        if pts in self.written:
            rgb = self.frames[self.written[pts]]
        else:
            reader = self.reader
            if self.size is None:
                self.size = output_size(reader.path, frame.width, frame.height, reader.resize_to)
            rgb = reader._to_rgb(frame, *self.size)
            if self.frames is None:
                self.frames = np.empty((self.count, *rgb.shape), np.uint8)
            self.written[pts] = rows[0]
        if 0 in rows:
            self.rotation = getattr(frame, "rotation", 0)
        self.frames[rows] = rgb
        self.times[rows] = self.reader._seconds(pts)

    def result(self) -> DecodedFrames:
        info = self.reader.info
        if self.frames is None:
            width, height = output_size(self.reader.path, info.width, info.height, self.reader.resize_to)
            self.frames = np.zeros((0, height, width, 3), np.uint8)
        return DecodedFrames(frames=self.frames, times=self.times,
                             info=replace(info, rotation=self.rotation) if self.count else info)


@dataclass
class _Run:
    """What one decoding run (from a seek to the next) knows."""

    accept_early: bool
    previous: tuple[Any, int] | None = None  # the last frame out of the decoder and its pts
    seen: list[int] = field(default_factory=list)  # sorted pts of the packets demuxed since the seek
    resolved: int = 0
    timestamps: "_BestEffortTimestamps" = field(default_factory=lambda: _BestEffortTimestamps())  # reset per seek


class _BestEffortTimestamps:
    """FFmpeg's `best_effort_timestamp` rule (libavcodec guess_correct_pts), which the ffmpeg command line uses.

    AVI cannot store B-frame presentation times, so its "pts" are decode-order counters that go backwards once the
    frames are reordered; when pts go backwards more often than dts do, the dts are the better clock.
    """

    def __init__(self) -> None:
        self.faulty_pts = self.faulty_dts = 0
        self.last_pts = self.last_dts = None

    def __call__(self, frame) -> int | None:
        pts, dts = frame.pts, frame.dts
        if dts is not None:
            self.faulty_dts += self.last_dts is not None and dts <= self.last_dts
            self.last_dts = dts
        if pts is not None:
            self.faulty_pts += self.last_pts is not None and pts <= self.last_pts
            self.last_pts = pts
        if pts is not None and (self.faulty_pts <= self.faulty_dts or dts is None):
            return pts
        return dts


@contextlib.contextmanager
def _wrap_errors(path: str, what: str) -> Iterator[None]:
    """Turns FFmpeg and OS errors into a VideoDecodeError that names the file and what was being done."""
    try:
        yield
    except VideoDecodeError:
        raise
    except FileNotFoundError as e:
        raise VideoNotFoundError(path, f"{what}: {e}") from e
    except (av.FFmpegError, OSError, EOFError, MemoryError) as e:
        raise VideoDecodeError(path, f"{what}: {e}") from e


def check_frame_size(path: str, width: int, height: int) -> None:
    """Refuses frames over MAX_SOURCE_PIXELS or MAX_ASPECT_RATIO (a hostile or broken file), naming the file."""
    if width < 1 or height < 1:
        return  # unknown until a frame is decoded
    if width * height > MAX_SOURCE_PIXELS or max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise VideoDecodeError(path, f"frames of {width}x{height} exceed vidla's limits ({MAX_SOURCE_PIXELS} pixels, "
                                     f"aspect ratio {MAX_ASPECT_RATIO:g}:1); re-encode the video smaller")


def output_size(path: str, width: int, height: int, resize_to: int | None) -> tuple[int, int]:
    """(width, height) of converted frames: the source's, or scaled so the shorter side is `resize_to`."""
    check_frame_size(path, width, height)
    shorter = min(width, height)
    if resize_to is None or shorter <= resize_to:
        return width, height
    # The longer side is truncated, as the transforms' shorter-side resize does: when resize_to is a multiple k of
    # the model's input size S, int(S * truncated / resize_to) == int(S * side / shorter), so the transform's
    # resize and crop see the same geometry as on full-size frames.
    return max(1, width * resize_to // shorter), max(1, height * resize_to // shorter)


def _rotate(rgb: np.ndarray, rotation: int | None) -> np.ndarray:
    """Applies a display-matrix rotation (degrees counterclockwise) as `ffmpeg`'s autorotate does."""
    if not rotation:
        return rgb
    quarter_turns = round(rotation / 90)
    if abs(rotation - quarter_turns * 90) > 1:  # arbitrary angles are left alone, as ffmpeg does
        return rgb
    return np.ascontiguousarray(np.rot90(rgb, k=quarter_turns % 4))


def _parse_clock(value: str | None) -> float | None:
    """'00:01:02.500000000' -> 62.5"""
    if not value:
        return None
    match = re.fullmatch(r"\s*(\d+):(\d+):(\d+(?:\.\d*)?)\s*", value)
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


# ---------------------------------------------------------------------------------------------------------------------
# Frame folders


def natural_key(name: str) -> list:
    """'frame_10.jpg' sorts after 'frame_9.jpg'."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


class FrameFolderReader:
    """A folder of image files, one per frame in name order; frame i is shown at i / frame_rate seconds."""

    def __init__(self, folder: str | os.PathLike, *, frame_rate: float | None = None, resize_to: int | None = None):
        self.path, self.resize_to = str(folder), resize_to
        folder = Path(folder)
        _check_path(folder)
        self.files = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS),
                            key=lambda p: natural_key(p.name))
        if not self.files:
            raise VideoDecodeError(folder, f"the folder has no image files ({', '.join(IMAGE_EXTENSIONS)})")
        rate = 1.0 if frame_rate is None else float(frame_rate)  # unknown: frame i at i seconds
        if rate <= 0:
            raise ValueError(f"frame_rate must be positive, got {frame_rate}")
        first = self._read(0)
        self.info = VideoInfo(path=self.path, duration=len(self.files) / rate, frame_rate=rate,
                              num_frames=len(self.files), width=first.shape[1], height=first.shape[0],
                              codec="images", container="folder", rotation=0)
        self._cache = {0: first}

    def close(self) -> None:
        self._cache = {}

    def __enter__(self) -> "FrameFolderReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, index: int) -> np.ndarray:
        path = self.files[index]
        with _wrap_errors(str(path), "cannot read the image"):
            with av.open(str(path)) as container:
                frame = next(container.decode(video=0), None)
                if frame is None:
                    raise VideoDecodeError(path, "the image holds no picture")
                width, height = output_size(str(path), frame.width, frame.height, self.resize_to)
                if (width, height) == (frame.width, frame.height):
                    return frame.to_ndarray(format="rgb24")
                return frame.reformat(width=width, height=height, format="rgb24",
                                      interpolation="BICUBIC").to_ndarray()

    def frames_at(self, times: Sequence[float]) -> DecodedFrames:
        count, rate = len(self.files), self.info.frame_rate
        indices = [min(max(int(math.floor(float(t) * rate + 1e-9)), 0), count - 1) for t in times]
        for index in sorted(set(indices) - set(self._cache)):
            image = self._read(index)
            if image.shape[:2] != (self.info.height, self.info.width):
                raise VideoDecodeError(self.files[index], f"size {image.shape[1]}x{image.shape[0]} differs from the "
                                                          f"first frame's {self.info.width}x{self.info.height}")
            self._cache[index] = image
        frames = np.stack([self._cache[i] for i in indices]) if indices else \
            np.zeros((0, self.info.height, self.info.width, 3), np.uint8)
        return DecodedFrames(frames=frames, times=np.array(indices, dtype=np.float64) / rate, info=self.info)
