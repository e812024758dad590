"""`load_video`: the frames of a clip, sampled and decoded, as a uint8 tensor.

    frames = vidla.load_video("clip.mp4", num_frames=12)             # [12, H, W, 3] uint8 RGB
    frames = vidla.load_video("clip.mp4", 32, start=5.0, end=20.0)   # a window, in seconds
    pixels = vidla.preprocess_video(frames, model.image_size)        # [12, 3, S, S] float, CLIP-normalised
    frames = vidla.load_video("4k.mp4", 12, resize_to=decode_size(model.image_size))  # decoded small, as training
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import torch

from vidla.data.decode import VideoDecodeError, VideoInfo, open_video
from vidla.data.sampling import sample_timestamps


@dataclass
class VideoClip:
    frames: torch.Tensor  # uint8 [T, H, W, 3], or [V, T, H, W, 3] for several views
    timestamps: torch.Tensor  # float64 [T] or [V, T]: presentation time (s) of each returned frame
    info: VideoInfo


def read_clip(
    path: str | os.PathLike | bytes | BinaryIO,
    num_frames: int | None = 12,
    sampling: str = "uniform",
    start: float | None = None,
    end: float | None = None,
    *,
    num_clips: int = 1,
    stride: int = 4,
    fps: float | None = None,
    train: bool = False,
    generator: torch.Generator | None = None,
    frame_rate: float | None = None,
    threads: int | None = None,
    autorotate: bool = True,
    name: str | None = None,
    resize_to: int | None = None,
) -> VideoClip:
    """`load_video` with the frame times and the header information; the arguments are `load_video`'s."""
    with open_video(path, frame_rate=frame_rate, threads=threads, autorotate=autorotate, name=name,
                    resize_to=resize_to) as reader:
        window_start, window_end = _window(reader, start, end, sampling, frame_rate)
        views = sample_timestamps(sampling, window_start, window_end, num_frames, num_clips=num_clips,
                                  frame_rate=reader.info.frame_rate, stride=stride, fps=fps, train=train,
                                  generator=generator)
        flat = [t for view in views for t in view]
        decoded = reader.frames_at(flat)
    frames = torch.from_numpy(decoded.frames)
    times = torch.from_numpy(decoded.times)
    if num_clips > 1:
        frames = frames.reshape(num_clips, -1, *frames.shape[1:])
        times = times.reshape(num_clips, -1)
    return VideoClip(frames=frames, timestamps=times, info=decoded.info)


def load_video(
    path: str | os.PathLike | bytes | BinaryIO,
    num_frames: int | None = 12,
    sampling: str = "uniform",
    start: float | None = None,
    end: float | None = None,
    *,
    num_clips: int = 1,
    stride: int = 4,
    fps: float | None = None,
    train: bool = False,
    generator: torch.Generator | None = None,
    frame_rate: float | None = None,
    threads: int | None = None,
    autorotate: bool = True,
    name: str | None = None,
    resize_to: int | None = None,
) -> torch.Tensor:
    """Frames of a video as a uint8 RGB tensor [T, H, W, 3] (channels last, upright, T = num_frames).

    path: a video file (mp4, mkv, webm, avi, ...), a folder of JPEG/PNG frames, or the bytes of a video.
    sampling: "uniform" (segment centres, default), "random" (TSN), "dense" (`stride` frames apart) or "fps"
        (`fps=` frames per second; `num_frames` then caps the count, None keeps all).
    start, end: a window in seconds (default: the whole video); an `end` past the video is clamped.
    num_clips: V views -> [V, T, H, W, 3]. stride: frames between dense samples. train: a random position for
        "dense". generator: a torch.Generator for the random samplers. frame_rate: of a frame folder (frame i is
        shown at i / frame_rate s). threads: decoder threads (default 1 in DataLoader workers, else FFmpeg's
        choice). autorotate: apply rotation metadata (default True). name: names bytes input in errors.
    resize_to: frames whose shorter side exceeds it are scaled down to it inside the decoder's conversion to RGB
        (bicubic, aspect kept), so memory follows the output, not the source; None (default) keeps the source size.

    A video shorter than asked for repeats frames rather than failing; a window starting after the video's end,
    a missing, empty, truncated or undecodable file raises `VideoDecodeError` naming the file.
    """
    return read_clip(path, num_frames, sampling, start, end, num_clips=num_clips, stride=stride, fps=fps,
                     train=train, generator=generator, frame_rate=frame_rate, threads=threads, autorotate=autorotate,
                     name=name, resize_to=resize_to).frames


def _window(reader, start: float | None, end: float | None, sampling: str,
            frame_rate: float | None) -> tuple[float, float]:
    """Validates [start, end) against the video, clamping an end beyond it."""
    info = reader.info
    if info.container == "folder" and frame_rate is None and (start is not None or end is not None
                                                              or sampling == "fps"):
        raise ValueError(f"{info.path}: a frame folder has no clock; pass frame_rate= (frames per second it was "
                         f"extracted at) to use a window or fps sampling")
    start = 0.0 if start is None else float(start)
    end = info.duration if end is None else min(float(end), info.duration)
    if start < 0 or not np.isfinite(start):
        raise ValueError(f"start must be a non-negative number of seconds, got {start}")
    if start >= info.duration:
        raise VideoDecodeError(info.path, f"the window starts at {start:.2f} s but the video is only "
                                          f"{info.duration:.2f} s long")
    if end <= start:
        raise ValueError(f"{info.path}: the window [{start}, {end}] is empty")
    return start, end
