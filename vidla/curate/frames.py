"""Frames for captioning: which timestamps, decoding them with PyAV, and JPEG encoding for HTTP backends.

The decoder here is deliberately small and local to curation (seek, then decode forward to each timestamp);
it could later call vidla.data's decoder instead.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np

# Decode forward instead of seeking when the next timestamp is this close (seconds): seeking lands on the
# previous keyframe, so for close timestamps it only repeats work.
_SEEK_THRESHOLD = 2.0


class VideoDecodeError(RuntimeError):
    """A video that cannot be opened or decoded; the message names the file."""


def frame_times(duration: float, fps: float, max_frames: int | None = None) -> list[float]:
    """Timestamps at `fps`, at the middle of each 1/fps interval: (k + 0.5) / fps for k = 0, 1, ...

    A video shorter than one interval gets one frame at its middle. With `max_frames`, the timestamps are
    spread evenly over the video instead.
    """
    if duration <= 0:
        return []
    count, step = math.floor(duration * fps), 1.0 / fps
    if count == 0:
        return [round(duration / 2, 3)]
    if max_frames is not None and count > max_frames:
        count, step = max_frames, duration / max_frames
    return [round((k + 0.5) * step, 3) for k in range(count)]


def video_duration(path: str | Path) -> float:
    """Duration in seconds, from the container header (the video stream's own duration when the container
    has none)."""
    container = open_video(path)
    with container:
        if container.duration is not None:
            return container.duration / 1_000_000
        stream = container.streams.video[0] if container.streams.video else None
        if stream is not None and stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
    raise VideoDecodeError(f"{path}: the container gives no duration")


def read_frames(path: str | Path, times: Sequence[float], max_side: int | None = None) -> list[np.ndarray]:
    """RGB uint8 frames [H, W, 3]: for each time, the first frame shown at or after it (the last frame if the
    time is past the end). Frames are scaled so that their longer side is at most `max_side`."""
    order = sorted(range(len(times)), key=lambda i: times[i])
    frames: list[np.ndarray | None] = [None] * len(times)
    container = open_video(path)
    try:
        with container:
            if not container.streams.video:
                raise VideoDecodeError(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "SLICE"  # frame threading delays frames and breaks seek-then-decode
            decoder = _Cursor(container, stream)
            for index in order:
                frames[index] = _to_rgb(decoder.frame_at(times[index]), max_side)
    except VideoDecodeError:
        raise
    except Exception as e:  # av raises many types; name the file whatever went wrong
        raise VideoDecodeError(f"{path}: cannot decode: {e}") from e
    return frames  # type: ignore[return-value]


class _Cursor:
    """Decodes forward from the last position, seeking only when the target is far ahead. Targets come in
    increasing order, so the frame returned last is the answer again while it is not before the target."""

    def __init__(self, container, stream):
        self.container, self.stream = container, stream
        self.iterator = None
        self.current = None  # the last frame decoded

    def frame_at(self, time: float):
        if self.current is not None and self.current.time >= time - 1e-6:
            return self.current
        if self.current is None or time - self.current.time > _SEEK_THRESHOLD:
            self._seek(time)
        for frame in self.iterator:
            if frame.time is None:
                continue
            self.current = frame
            if frame.time >= time - 1e-6:
                return frame
        if self.current is None:
            raise VideoDecodeError(f"no frame at or after {time:.3f}s")
        return self.current  # past the end: the last frame

    def _seek(self, time: float) -> None:
        offset = int(max(0.0, time) / self.stream.time_base) if self.stream.time_base else 0
        self.container.seek(offset, stream=self.stream, backward=True, any_frame=False)
        self.iterator = self.container.decode(self.stream)
        self.current = None


def _to_rgb(frame, max_side: int | None) -> np.ndarray:
    width, height = frame.width, frame.height
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
        width, height = max(2, round(width * scale)), max(2, round(height * scale))
    return frame.to_ndarray(format="rgb24", width=width, height=height)


def encode_jpeg(frame: np.ndarray, quality: int = 3) -> bytes:
    """JPEG bytes through FFmpeg's mjpeg encoder (no Pillow needed); `quality` is the quantiser, 2 (best) to
    31."""
    import av

    height, width = frame.shape[:2]
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height = width - width % 2, height - height % 2
    codec.pix_fmt = "yuvj420p"
    codec.time_base = Fraction(1, 25)
    codec.options = {"qmin": str(quality), "qmax": str(quality)}
    picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:codec.height, :codec.width]), format="rgb24")
    packets = codec.encode(picture.reformat(format="yuvj420p")) + codec.encode(None)
    return b"".join(bytes(p) for p in packets)


def open_video(path: str | Path) -> "av.container.InputContainer":  # noqa: F821 (av is imported lazily)
    """av.open, with errors that name the file."""
    import av

    try:
        return av.open(str(path))
    except Exception as e:
        raise VideoDecodeError(f"{path}: cannot open: {e}") from e
