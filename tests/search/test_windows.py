"""Window plans and the moment-merging rule, against hand-computed answers."""

from __future__ import annotations

import pytest

from vidla.search import WindowConfig, merge_moments, plan_windows
from vidla.search.store import WindowRow


def spans(duration: float, **config) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    for w in plan_windows(duration, WindowConfig(**config)):
        out.setdefault(w.scale, []).append((w.start, w.end))
    return out


def test_a_20_second_video_at_the_default_scales():
    plan = spans(20.0)
    assert plan["short"] == [(float(s), float(s + 4)) for s in range(0, 17, 2)]
    assert plan["medium"] == [(0.0, 12.0), (6.0, 18.0), (8.0, 20.0)]  # the last one moved back to end with the video
    assert plan["long"] == [(0.0, 20.0)]  # longer than the video: the whole video, once


def test_a_video_shorter_than_every_window_is_one_window():
    (only,) = plan_windows(2.5, WindowConfig())
    assert (only.start, only.end, only.scale) == (0.0, 2.5, "short")


def test_stride_and_custom_scales():
    assert spans(10.0, scales={"a": 5.0}, stride=1.0) == {"a": [(0.0, 5.0), (5.0, 10.0)]}
    assert spans(11.0, scales={"a": 5.0}, stride=1.0) == {"a": [(0.0, 5.0), (5.0, 10.0), (6.0, 11.0)]}
    with pytest.raises(ValueError, match="stride"):
        WindowConfig(stride=0)
    with pytest.raises(ValueError, match="positive"):
        WindowConfig(scales={"a": -1.0})


def test_overlapping_hits_of_a_video_merge_into_the_best_windows_moment():
    w = lambda i, video, start, end, scale="short": WindowRow(i, video, start, end, scale)  # noqa: E731
    hits = [(w(1, 1, 0, 4), 0.5), (w(2, 1, 2, 6), 0.9), (w(3, 1, 4, 8), 0.7), (w(4, 1, 0, 12, "medium"), 0.6),
            (w(5, 1, 20, 24), 0.8), (w(6, 2, 2, 6), 0.85), (w(7, 1, 6, 10), 0.4)]
    moments, videos = merge_moments(hits, k=10)
    # seed 2 (0.9) takes every unused hit of video 1 overlapping [2, 6]: 1, 3 and 4 (not 7: [6, 10] only touches it)
    assert [(v, m.window_id, m.start, m.end, m.score, m.hits, m.extent) for v, m in zip(videos, moments)] == [
        (1, 2, 2, 6, 0.9, 4, (0, 12)),
        (2, 6, 2, 6, 0.85, 1, (2, 6)),
        (1, 5, 20, 24, 0.8, 1, (20, 24)),
        (1, 7, 6, 10, 0.4, 1, (6, 10)),
    ]
    assert [m.window_id for m in merge_moments(hits, k=2)[0]] == [2, 6]
