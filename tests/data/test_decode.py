import io
import pickle

import numpy as np
import pytest
import torch
from _video_cases import on_screen, pyav_frames

from vidla.data.decode import FrameFolderReader, VideoDecodeError, VideoReader, natural_key, open_video, probe_video
from vidla.data.synthetic import read_frame_index
from vidla.data.video import load_video, read_clip

# Containers whose packets carry presentation times, so that PyAV's plain decode is a fair reference.
REFERENCE_CASES = ["h264.mp4", "h264_long_gop.mp4", "h264.mkv", "vp9.webm", "vp8.mkv", "hevc.mp4", "h264_29.97.mp4",
                   "h264_faststart.mp4", "vfr.mp4", "vfr.mkv"]


def _random_times(rng, duration, count):
    return rng.uniform(-0.2, duration + 0.2, count)  # a little outside the video too: clamped


@pytest.mark.parametrize("name", REFERENCE_CASES)
def test_frames_at_random_times_equal_a_full_decode(videos, name):
    times, reference = pyav_frames(videos[name])
    assert [read_frame_index(f) for f in reference] == list(range(len(reference)))
    rng = np.random.default_rng(0)
    with open_video(videos[name]) as reader:
        for _ in range(12):
            requested = _random_times(rng, reader.info.duration, int(rng.integers(1, 14)))
            decoded = reader.frames_at(requested)
            clamped = np.clip(requested, 0, reader.info.duration - 1e-6)
            expected = [on_screen(times, t) for t in clamped]
            assert [read_frame_index(f) for f in decoded.frames] == expected
            assert np.array_equal(decoded.frames, reference[expected])  # pixel-exact, not just the same index
            assert np.allclose(decoded.times, times[expected])


@pytest.mark.parametrize("name", ["h264.mp4", "h264_long_gop.mp4", "vp9.webm", "hevc.mp4"])
def test_skipping_non_reference_frames_changes_nothing(videos, name):
    rng = np.random.default_rng(1)
    with open_video(videos[name]) as fast, open_video(videos[name], skip_nonref=False) as plain:
        for _ in range(8):
            requested = np.sort(rng.uniform(0, fast.info.duration, 12))
            assert np.array_equal(fast.frames_at(requested).frames, plain.frames_at(requested).frames)


def test_frames_at_keeps_request_order_and_repeats(videos):
    with open_video(videos["h264.mp4"]) as reader:
        decoded = reader.frames_at([2.0, 0.0, 2.0, 1.0])
    assert [read_frame_index(f) for f in decoded.frames] == [50, 0, 50, 25]
    assert decoded.frames.dtype == np.uint8 and decoded.frames.shape == (4, 48, 64, 3)


def test_only_needed_frames_are_decoded(videos, monkeypatch):
    """Two late frames of a video with keyframes every 20 frames: a seek, then a fraction of one GOP."""
    decoded_frames = []
    original = VideoReader._decode_packet

    def counting(self, packet):
        frames = original(self, packet)
        decoded_frames.extend(frames)
        return frames

    monkeypatch.setattr(VideoReader, "_decode_packet", counting)
    with open_video(videos["h264.mp4"]) as reader:
        assert [read_frame_index(f) for f in reader.frames_at([3.3, 3.5]).frames] == [82, 87]
    assert len(decoded_frames) < 20


def test_info(videos):
    info = probe_video(videos["h264.mp4"])
    assert (info.width, info.height, info.codec, info.num_frames) == (64, 48, "h264", 100)
    assert info.duration == pytest.approx(4.0) and info.frame_rate == pytest.approx(25.0)
    assert probe_video(videos["vp9.webm"]).duration == pytest.approx(4.0, abs=0.05)  # from Matroska's tags
    assert probe_video(videos["h264_29.97.mp4"]).frame_rate == pytest.approx(30000 / 1001)


def test_bytes_and_file_objects(videos):
    data = videos["h264.mkv"].read_bytes()
    for source in (data, io.BytesIO(data)):
        frames = load_video(source, 4, name="in-memory.mkv")
        assert [read_frame_index(f) for f in frames] == [12, 37, 62, 87]


def test_threads_do_not_change_frames(videos):
    one = load_video(videos["h264.mp4"], 8, threads=1)
    several = load_video(videos["h264.mp4"], 8, threads=3)
    assert torch.equal(one, several)


def test_load_video_layout_and_uniform_sampling(videos):
    frames = load_video(videos["h264.mp4"], num_frames=4)
    assert frames.shape == (4, 48, 64, 3) and frames.dtype == torch.uint8
    assert [read_frame_index(f) for f in frames] == [12, 37, 62, 87]  # centres of 4 one-second segments
    clip = read_clip(videos["h264.mp4"], 4, start=1.0, end=2.0)
    assert [read_frame_index(f) for f in clip.frames] == [28, 34, 40, 46]  # centres 1.125, 1.375, ... s
    assert torch.allclose(clip.timestamps, torch.tensor([1.12, 1.36, 1.60, 1.84], dtype=torch.float64))


def test_window_end_past_the_video_is_clamped(videos):
    frames = load_video(videos["h264.mp4"], 2, start=3.0, end=60.0)
    assert [read_frame_index(f) for f in frames] == [81, 93]


def test_views(videos):
    clip = read_clip(videos["h264.mp4"], 4, "dense", stride=2, num_clips=3)
    assert clip.frames.shape == (3, 4, 48, 64, 3) and clip.timestamps.shape == (3, 4)
    indices = [[read_frame_index(f) for f in view] for view in clip.frames]
    assert indices == [[0, 2, 4, 6], [46, 48, 50, 52], [92, 94, 96, 98]]


def test_frame_folder(frame_folder):
    with FrameFolderReader(frame_folder, frame_rate=10) as reader:
        assert reader.info.num_frames == 30 and reader.info.duration == pytest.approx(3.0)
        assert [read_frame_index(f) for f in reader.frames_at([0, 0.95, 1.0, 2.99, 5.0]).frames] == [0, 9, 10, 29, 29]
    frames = load_video(frame_folder, 3)  # uniform over the frames: no clock needed
    assert [read_frame_index(f) for f in frames] == [5, 15, 25]
    assert [read_frame_index(f) for f in load_video(frame_folder, 2, start=1.0, end=2.0, frame_rate=10)] == [12, 17]
    with pytest.raises(ValueError, match="frame_rate"):
        load_video(frame_folder, 2, start=1.0)


def test_natural_order():
    assert sorted(["f10.jpg", "f9.jpg", "f100.jpg"], key=natural_key) == ["f9.jpg", "f10.jpg", "f100.jpg"]


def test_real_frame_folder(realdata):
    frames = load_video(realdata / "frames" / "video7020", 8)
    assert frames.shape[0] == 8 and frames.shape[-1] == 3 and frames.float().std() > 10


def test_real_videos_decode_at_uniform_times(realdata):
    for path in sorted((realdata / "videos").iterdir()):
        clip = read_clip(path, 12)
        assert clip.frames.shape[:1] == (12,) and clip.frames.float().std() > 5, path.name
        assert torch.all(clip.timestamps[1:] > clip.timestamps[:-1]), path.name


def test_decode_error_pickles_and_names_the_file(tmp_path):
    error = VideoDecodeError(tmp_path / "x.mp4", "broken")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.path == str(tmp_path / "x.mp4") and copy.reason == "broken"
    assert isinstance(error, OSError)
