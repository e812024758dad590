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


def test_frames_match_sequential_decoding_on_real_footage(realdata):
    """The frame on screen at t, against a plain sequential PyAV decode sorted by presentation time. AVI files
    with packed B-frames are left out: PyAV's per-frame times there differ from the ffmpeg command line's, which
    vidla.data's reader follows exactly (tests/data/test_ffmpeg_exact.py covers them)."""
    import av

    for video in sorted((realdata / "videos").glob("*.mp4")):
        with av.open(str(video)) as container:
            decoded = sorted(((f.time, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)),
                             key=lambda item: item[0])
        assert video_duration(video) == pytest.approx(decoded[-1][0], abs=0.5)
        # midway between two frames' start times, so no rounding convention decides the answer; times count
        # from the video's first frame (as the ffmpeg command line's -ss does), whatever its stored start time
        picks = [0, int(len(decoded) * 0.37), int(len(decoded) * 0.38), int(len(decoded) * 0.9)]
        times = [(decoded[i][0] + decoded[i + 1][0]) / 2 - decoded[0][0] for i in picks]
        for i, t, frame in zip(picks, times, read_frames(video, times)):
            assert np.array_equal(frame, decoded[i][1]), (video.name, t)
