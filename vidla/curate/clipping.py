"""Multi-scale clipping at sentence boundaries.

Each scale partitions the video's sentences on its own: a clip is a run of consecutive sentences, from the
first one's start to the last one's end, and every sentence belongs to at most one clip of the scale. The
cut is chosen by dynamic programming: first, leave out as little speech as possible (a sentence is left out
only when no clip within [min, max] seconds can hold it, e.g. a sentence longer than `max`); then keep each
clip's duration as near the target as possible (least squares of the relative error). A clip never spans a
silence longer than `max_gap` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from vidla.curate.sentences import Sentence


@dataclass(frozen=True)
class Scale:
    name: str
    target: float
    min: float
    max: float

    def __post_init__(self) -> None:
        if not 0 < self.min <= self.target <= self.max:
            raise ValueError(f"scale {self.name!r}: need 0 < min <= target <= max, got "
                             f"{self.min}, {self.target}, {self.max}")


# Targets are the paper's mean durations (SPEC section 3); the bounds are our choice.
DEFAULT_SCALES = (Scale("short", 13.2, 6.0, 20.0), Scale("medium", 30.4, 20.0, 45.0),
                  Scale("long", 60.3, 45.0, 90.0))


@dataclass(frozen=True)
class Clip:
    start: float
    end: float
    first: int  # index of its first sentence
    last: int   # index one past its last sentence

    @property
    def duration(self) -> float:
        return self.end - self.start


def cut_clips(sentences: Sequence[Sentence], scale: Scale, max_gap: float = 10.0) -> list[Clip]:
    """The clips of one scale (see the module docstring)."""
    count = len(sentences)
    # best[i]: (seconds of speech left out, squared error) of the best cut of sentences[:i].
    best: list[tuple[float, float] | None] = [None] * (count + 1)
    choice: list[int] = [0] * (count + 1)  # for best[i]: where its last clip begins, or -1 if skipped
    best[0] = (0.0, 0.0)
    for begin in range(count):
        base = best[begin]
        assert base is not None  # skipping is always possible, so every prefix has a cut
        skipped = (round(base[0] + sentences[begin].end - sentences[begin].start, 6), base[1])
        _offer(best, choice, begin + 1, skipped, -1)
        for end in range(begin + 1, count + 1):
            duration = sentences[end - 1].end - sentences[begin].start
            if duration > scale.max or (end - begin > 1 and
                                        sentences[end - 1].start - sentences[end - 2].end > max_gap):
                break
            if duration >= scale.min:
                error = ((duration - scale.target) / scale.target) ** 2
                _offer(best, choice, end, (base[0], base[1] + error), begin)
    return _trace(sentences, choice)


def _offer(best: list, choice: list[int], index: int, cost: tuple[float, float], begin: int) -> None:
    if best[index] is None or cost < best[index]:
        best[index], choice[index] = cost, begin


def _trace(sentences: Sequence[Sentence], choice: list[int]) -> list[Clip]:
    clips = []
    end = len(sentences)
    while end > 0:
        begin = choice[end]
        if begin < 0:
            end -= 1
            continue
        clips.append(Clip(sentences[begin].start, sentences[end - 1].end, begin, end))
        end = begin
    return clips[::-1]


def clip_subtitle(sentences: Sequence[Sentence], clip: Clip) -> str:
    return " ".join(s.text for s in sentences[clip.first:clip.last])
