import pytest
import torch

from vidla.data.sampling import (
    dense_timestamps,
    fps_timestamps,
    random_timestamps,
    sample_timestamps,
    uniform_timestamps,
)
from vidla.data.synthetic import read_frame_index
from vidla.data.video import load_video


def test_uniform_takes_segment_centres_whatever_the_duration():
    assert uniform_timestamps(0.0, 12.0, 4) == [[1.5, 4.5, 7.5, 10.5]]
    assert uniform_timestamps(10.0, 10.6, 3) == [[pytest.approx(10.1), pytest.approx(10.3), pytest.approx(10.5)]]


def test_uniform_views_are_offset_inside_segments():
    views = uniform_timestamps(0.0, 4.0, 2, num_clips=2)
    assert views == [[0.5, 2.5], [1.5, 3.5]]


def test_random_is_one_point_per_segment_and_reproducible():
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        (times,) = random_timestamps(2.0, 10.0, 8, generator)
        assert all(2.0 + i <= t < 3.0 + i for i, t in enumerate(times))
    first = random_timestamps(0, 1, 5, torch.Generator().manual_seed(7))
    assert first == random_timestamps(0, 1, 5, torch.Generator().manual_seed(7))


def test_dense_stride_and_views():
    (clip,) = dense_timestamps(0.0, 10.0, 4, frame_rate=10, stride=2)
    assert clip == pytest.approx([4.65, 4.85, 5.05, 5.25])  # centred, frame middles 0.2 s apart
    views = dense_timestamps(0.0, 10.0, 4, frame_rate=10, stride=2, num_clips=5)
    assert [v[0] for v in views] == pytest.approx([0.05, 2.35, 4.65, 6.95, 9.25])
    (short,) = dense_timestamps(0.0, 0.5, 8, frame_rate=10, stride=2)  # clip longer than the window
    assert short[0] == pytest.approx(0.05) and max(short) < 0.5
    generator = torch.Generator().manual_seed(0)
    starts = {dense_timestamps(0, 10, 4, 10, 2, random=True, generator=generator)[0][0] for _ in range(10)}
    assert len(starts) == 10 and all(0 <= s < 10 - 0.8 for s in starts)


def test_fps_caps_and_pads():
    assert fps_timestamps(0.0, 2.0, 2.0) == [[0.25, 0.75, 1.25, 1.75]]
    assert fps_timestamps(0.0, 2.0, 2.0, num_frames=2) == [[0.25, 0.75]]
    assert fps_timestamps(0.0, 1.0, 2.0, num_frames=4) == [[0.25, 0.75, 0.75, 0.75]]


def test_dispatch_and_errors():
    assert sample_timestamps("tsn", 0, 1, 2, generator=torch.Generator().manual_seed(0))[0][0] < 0.5
    with pytest.raises(ValueError, match="unknown sampling"):
        sample_timestamps("everything", 0, 1, 2)
    with pytest.raises(ValueError, match="end > start"):
        uniform_timestamps(3.0, 3.0, 4)
    with pytest.raises(ValueError, match="frame rate"):
        sample_timestamps("dense", 0, 1, 2, frame_rate=None)
    with pytest.raises(ValueError, match="fps"):
        sample_timestamps("fps", 0, 1, 2)


def test_samplers_pick_the_expected_frames(videos):
    path = videos["h264.mp4"]  # 100 frames at 25 fps
    assert [read_frame_index(f) for f in load_video(path, 5)] == [10, 30, 50, 70, 90]
    frames = load_video(path, 4, "random", generator=torch.Generator().manual_seed(0))
    assert all(25 * i <= read_frame_index(f) < 25 * (i + 1) for i, f in enumerate(frames))
    assert [read_frame_index(f) for f in load_video(path, 4, "dense", stride=3)] == [44, 47, 50, 53]
    assert [read_frame_index(f) for f in load_video(path, None, "fps", fps=2, end=2.0)] == [6, 18, 31, 43]
