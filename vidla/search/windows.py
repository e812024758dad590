"""Where a video is looked at: overlapping windows at several temporal scales, and the frames each one needs.

VidLA is trained on clips at three temporal scales (short, medium, long); the index embeds every video at the same
three, as windows that overlap by half their length, so that an action of any length falls mostly inside one window
of some scale. A scale longer than the video becomes a single window holding the whole video (once, at the smallest
such scale), so a video shorter than the short window is one window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vidla.data.sampling import uniform_timestamps

# The paper's clips run 13/30/60 s; a search moment is usually shorter, so the defaults keep the 1:3:9 spread of
# short to long at a finer grain.
DEFAULT_SCALES = {"short": 4.0, "medium": 12.0, "long": 36.0}


@dataclass
class WindowConfig:
    """Window lengths in seconds by scale name; consecutive windows of a scale start `stride` x length apart."""

    scales: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SCALES))
    stride: float = 0.5

    def __post_init__(self) -> None:
        if not self.scales or any(length <= 0 for length in self.scales.values()):
            raise ValueError(f"window scales must be positive lengths in seconds, got {self.scales}")
        if not 0 < self.stride <= 1:
            raise ValueError(f"the window stride is a fraction of its length in (0, 1], got {self.stride}")


@dataclass(frozen=True, order=True)
class Window:
    start: float
    end: float
    scale: str


def plan_windows(duration: float, config: WindowConfig) -> list[Window]:
    """The windows of a video `duration` seconds long, in start order (ties: shorter first).

    Each scale tiles the video from 0 with its stride; the last window is moved back to end with the video, so the
    whole video is covered without a window running past its end.
    """
    if duration <= 0:
        raise ValueError(f"a video must have a positive duration, got {duration}")
    windows: set[Window] = set()
    whole_video_taken = False
    for scale, length in sorted(config.scales.items(), key=lambda item: item[1]):
        if length >= duration:
            if not whole_video_taken:
                windows.add(Window(0.0, round(duration, 6), scale))
                whole_video_taken = True
            continue
        step = length * config.stride
        count = 1 + int(-(-(duration - length) // step))  # ceil: enough windows to reach the end
        for i in range(count):
            start = min(i * step, duration - length)
            windows.add(Window(round(start, 6), round(start + length, 6), scale))
    return sorted(windows, key=lambda w: (w.start, w.end - w.start, w.scale))


def window_timestamps(window: Window, num_frames: int) -> list[float]:
    """The instants a window is sampled at: centres of `num_frames` equal segments (the evaluation sampling)."""
    return uniform_timestamps(window.start, window.end, num_frames)[0]
