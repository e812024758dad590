"""Which instants of a clip to look at: timestamps (seconds) in a window [start, end) of a video.

Every sampler returns a list of views, each a list of timestamps; most callers want one view. Timestamps are what the
decoder takes (it returns the frame on screen at each), so the samplers work the same for constant and variable
frame rates, and never need the frame count.

- "uniform": T segments of equal length, the centre of each (the paper's default, whatever the clip's duration);
  view k of K takes the point (k + 0.5) / K into each segment (TSN's test-time views).
- "random": T segments, a random point in each (TSN's training sampling).
- "dense": T consecutive frames, `stride` frames apart, at a random position (training) or at K evenly spread
  positions (testing, e.g. Kinetics 5 temporal views); needs the video's frame rate.
- "fps": one frame every 1 / fps seconds from the start of the window, at most `num_frames` of them.
"""

from __future__ import annotations

import math

import torch

SAMPLING_METHODS = ("uniform", "random", "dense", "fps")
_ALIASES = {"tsn": "random", "segment": "random", "segment_random": "random", "segment-random": "random"}


def _inside(times: list[float], start: float, end: float) -> list[float]:
    """Keeps each timestamp inside [start, end): a sampler never asks for a frame past the window."""
    last = max(start, end - 1e-6)
    return [min(max(t, start), last) for t in times]


def _check_window(start: float, end: float, num_frames: int | None) -> None:
    if not end > start:
        raise ValueError(f"the window must have end > start, got [{start}, {end}]")
    if num_frames is not None and num_frames < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")


def uniform_timestamps(start: float, end: float, num_frames: int, num_clips: int = 1) -> list[list[float]]:
    """Centres of `num_frames` equal segments; with `num_clips` views, view k sits (k + 0.5) / K into each."""
    _check_window(start, end, num_frames)
    segment = (end - start) / num_frames
    return [_inside([start + (i + (k + 0.5) / num_clips) * segment for i in range(num_frames)], start, end)
            for k in range(num_clips)]


def random_timestamps(start: float, end: float, num_frames: int, generator: torch.Generator | None = None,
                      num_clips: int = 1) -> list[list[float]]:
    """A uniformly random point in each of `num_frames` equal segments (TSN training)."""
    _check_window(start, end, num_frames)
    segment = (end - start) / num_frames
    views = []
    for _ in range(num_clips):
        offsets = torch.rand(num_frames, generator=generator, dtype=torch.float64).tolist()
        views.append(_inside([start + (i + u) * segment for i, u in enumerate(offsets)], start, end))
    return views


def dense_timestamps(start: float, end: float, num_frames: int, frame_rate: float, stride: int = 4,
                     num_clips: int = 1, random: bool = False,
                     generator: torch.Generator | None = None) -> list[list[float]]:
    """`num_frames` frames `stride` apart; a random clip position when `random`, else `num_clips` spread evenly.

    A window shorter than the clip keeps the clip at the window's start; its last frames repeat the window's last.
    """
    _check_window(start, end, num_frames)
    if frame_rate is None or frame_rate <= 0:
        raise ValueError("dense sampling needs the video's frame rate")
    if stride < 1:
        raise ValueError(f"stride must be at least 1, got {stride}")
    span = num_frames * stride / frame_rate
    room = max(0.0, end - start - span)
    if random:
        starts = [start + room * u for u in torch.rand(num_clips, generator=generator, dtype=torch.float64).tolist()]
    elif num_clips == 1:
        starts = [start + room / 2]
    else:
        starts = [start + room * k / (num_clips - 1) for k in range(num_clips)]
    # + 0.5 frame: the middle of a frame's display time, never on the boundary with its neighbour.
    return [_inside([s + (i * stride + 0.5) / frame_rate for i in range(num_frames)], start, end) for s in starts]


def fps_timestamps(start: float, end: float, fps: float, num_frames: int | None = None) -> list[list[float]]:
    """One timestamp every 1 / fps seconds (at the middle of each interval); `num_frames` caps or pads the count.

    Padding repeats the last timestamp, so that a short clip still yields `num_frames` frames for batching.
    """
    _check_window(start, end, num_frames)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    count = max(1, math.ceil((end - start) * fps - 1e-9))
    times = [start + (i + 0.5) / fps for i in range(count)]
    if num_frames is not None:
        times = (times + [times[-1]] * num_frames)[:num_frames]
    return [_inside(times, start, end)]


def sample_timestamps(
    method: str,
    start: float,
    end: float,
    num_frames: int | None,
    *,
    num_clips: int = 1,
    frame_rate: float | None = None,
    stride: int = 4,
    fps: float | None = None,
    train: bool = False,
    generator: torch.Generator | None = None,
) -> list[list[float]]:
    """Dispatches to the sampler named `method` (see the module docstring); returns `num_clips` views."""
    method = _ALIASES.get(method, method)
    if num_clips < 1:
        raise ValueError(f"num_clips must be at least 1, got {num_clips}")
    if method == "uniform":
        return uniform_timestamps(start, end, _required(num_frames, method), num_clips)
    if method == "random":
        return random_timestamps(start, end, _required(num_frames, method), generator, num_clips)
    if method == "dense":
        return dense_timestamps(start, end, _required(num_frames, method), frame_rate, stride, num_clips,
                                random=train, generator=generator)
    if method == "fps":
        if fps is None:
            raise ValueError("sampling='fps' needs fps=")
        return fps_timestamps(start, end, fps, num_frames) * num_clips
    raise ValueError(f"unknown sampling {method!r}; choose one of {', '.join(SAMPLING_METHODS)}")


def _required(num_frames: int | None, method: str) -> int:
    if num_frames is None:
        raise ValueError(f"sampling={method!r} needs num_frames")
    return num_frames
