"""Frames for captioning: which timestamps, decoding them (vidla.data's reader), and JPEG encoding for HTTP
backends."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from vidla.data.decode import VideoDecodeError, open_video, probe_video
from vidla.data.transforms import resize

__all__ = ["VideoDecodeError", "encode_jpeg", "frame_times", "read_frames", "video_duration"]


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
    """Duration in seconds (vidla.data's probe: container, stream or demuxed packets)."""
    info = probe_video(path)
    if not info.duration:
        raise VideoDecodeError(path, "the container gives no duration")
    return info.duration


def read_frames(path: str | Path, times: Sequence[float], max_side: int | None = None) -> list[np.ndarray]:
    """RGB uint8 frames [H, W, 3]: the frame on screen at each time (the last frame for a time past the end),
    decoded by vidla.data's reader; frames are scaled so that their longer side is at most `max_side`."""
    with open_video(path) as reader:
        frames = torch.from_numpy(reader.frames_at(list(times)).frames)
    height, width = frames.shape[1:3]
    if max_side and max(width, height) > max_side and len(frames):
        scale = max_side / max(width, height)
        scaled = resize(frames.permute(0, 3, 1, 2), max(2, round(height * scale)), max(2, round(width * scale)))
        frames = scaled.to(torch.uint8).permute(0, 2, 3, 1)
    return [frame.contiguous().numpy() for frame in frames]


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
