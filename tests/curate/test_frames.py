import io

import numpy as np
import pytest
from _curate_synth import PALETTE, make_video

from vidla.curate.frames import VideoDecodeError, encode_jpeg, frame_times, read_frames, video_duration


def test_frame_times():
    assert frame_times(35, 0.1) == [5.0, 15.0, 25.0]
    assert frame_times(4, 0.1) == [2.0]  # shorter than one interval: its middle
    assert frame_times(0, 0.1) == []
    assert frame_times(100, 1.0, max_frames=4) == [12.5, 37.5, 62.5, 87.5]


def test_read_frames_at_timestamps(tmp_path):
    video = make_video(tmp_path / "v.mp4", 60, fps=2)
    assert video_duration(video) == pytest.approx(60, abs=0.6)
    times = [55.0, 5.0, 15.2, 15.7, 35.0, 999.0]  # unsorted, close pairs, and one past the end
    frames = read_frames(video, times, max_side=32)
    for t, frame in zip(times, frames):
        assert frame.dtype == np.uint8 and frame.shape == (24, 32, 3)
        expected = PALETTE[int(min(t, 59.5) // 10) % len(PALETTE)]
        assert np.abs(frame.reshape(-1, 3).mean(0) - expected).max() < 12, t


def test_decode_errors_name_the_file(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(VideoDecodeError, match="broken.mp4"):
        read_frames(bad, [1.0])
    with pytest.raises(VideoDecodeError, match="missing.mp4"):
        video_duration(tmp_path / "missing.mp4")


def test_jpeg_round_trip():
    import av

    image = np.zeros((48, 64, 3), np.uint8)
    image[:, 32:] = (200, 40, 40)
    data = encode_jpeg(image)
    assert data[:2] == b"\xff\xd8"
    with av.open(io.BytesIO(data), format="image2pipe") as container:
        decoded = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert decoded.shape == image.shape
    assert np.abs(decoded.astype(int) - image).mean() < 8


def test_seek_and_decode_match_sequential_decoding_on_real_footage(realdata):
    import av

    for video in sorted((realdata / "videos").iterdir()):
        with av.open(str(video)) as container:
            decoded = [(f.time, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
        duration = video_duration(video)
        times = [0.0, duration * 0.37, duration * 0.38, duration * 0.9]
        for t, frame in zip(times, read_frames(video, times)):
            expected = next((image for time, image in decoded if time >= t - 1e-6), decoded[-1][1])
            assert np.array_equal(frame, expected), (video.name, t)
