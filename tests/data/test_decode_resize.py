"""Decode-time resizing: frames scaled inside swscale's conversion (memory follows the output), against the ffmpeg
command line's scale filter, and the dataset's output against the full-size path; the cap on source frames."""

import numpy as np
import pytest
import torch
from _video_cases import _fps_mode_flag, _raw, needs_ffmpeg

import vidla.data.decode as decode
from vidla.data.datasets import ClipLoader
from vidla.data.decode import VideoDecodeError, open_video
from vidla.data.manifest import ClipRecord
from vidla.data.synthetic import write_video
from vidla.data.transforms import CLIP_STD, VideoTransform, decode_size, preprocess_video, resolve_decode_size
from vidla.data.video import load_video


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """A 640x360 video: large next to what a 64-pixel model needs."""
    return write_video(tmp_path_factory.mktemp("large") / "large.mp4", num_frames=12, width=640, height=360,
                       keyframe_interval=4)


def _against_scale_filter(path, resize_to, times):
    """Our scaled frames and `ffmpeg -vf scale=W:H:flags=bicubic` at the same frames: |difference| per value."""
    with open_video(path, resize_to=resize_to) as reader:
        decoded = reader.frames_at(times)
    height, width = decoded.frames.shape[1:3]
    reference = _raw(["-i", str(path), *_fps_mode_flag(), "-frames:v", str(len(times)), "-vf",
                      f"scale={width}:{height}:flags=bicubic"], width, height)
    assert len(reference) == len(times)
    return decoded.frames, np.abs(decoded.frames.astype(np.int16) - reference.astype(np.int16))


@needs_ffmpeg
def test_scaled_frames_match_ffmpeg_scale_filter(large):
    """Not bit-exact: the command line's scale filter rounds differently from one swscale call that scales and
    converts to RGB. Synthetic frames (sharp digits on flat colour) are the worst case: 1.2 grey levels on average."""
    frames, difference = _against_scale_filter(large, 90, [i / 25 for i in range(12)])
    assert frames.shape == (12, 90, 160, 3)
    assert difference.mean() <= 1.5 and (difference > 8).mean() <= 0.03, (difference.mean(), (difference > 8).mean())


@needs_ffmpeg
@pytest.mark.parametrize("name", ["kinetics_arm_wrestling.mp4", "video9770.mp4"])
def test_scaled_real_frames_match_ffmpeg_scale_filter(realdata, name):
    frames, difference = _against_scale_filter(realdata / "videos" / name, 80, [0.0])  # 340x256 -> 106x80 etc.
    assert min(frames.shape[1:3]) == 80
    assert difference.mean() <= 0.6 and np.percentile(difference, 99) <= 8, difference.mean()


def test_full_size_path_is_unchanged_when_the_source_is_small_enough(large):
    with open_video(large) as reader:
        full = reader.frames_at([0.0, 0.2, 0.44]).frames
    with open_video(large, resize_to=360) as reader:  # the shorter side is already 360: no scaling
        same = reader.frames_at([0.0, 0.2, 0.44]).frames
    assert full.shape == (3, 360, 640, 3) and np.array_equal(full, same)


def _grey_levels(sample, expected):
    std = torch.tensor(CLIP_STD).view(3, 1, 1) * 255
    return ((sample - expected) * std).abs()  # normalised values back in 0..255 grey levels


def test_dataset_output_stays_close_to_the_full_size_path(large):
    """Auto: the decoder scales to twice what the transform needs, the transform's antialiased resize does the rest.
    Reference: the same transform on full-size frames (the path used before decode-time resizing). Synthetic frames
    (sharp digits) are the worst case: 1.6 grey levels on average, 23 at most."""
    transform = VideoTransform(64)
    loader = ClipLoader(num_frames=6, transform=transform)
    assert loader.resize_to == 128
    sample = loader.load(ClipRecord(video=str(large)), large, 0)
    expected = preprocess_video(load_video(large, 6), 64)
    levels = _grey_levels(sample["video"], expected)
    assert sample["video"].shape == expected.shape == (6, 3, 64, 64)
    assert levels.max() <= 32 and levels.mean() <= 2.0, (levels.max(), levels.mean())
    full = ClipLoader(num_frames=6, transform=transform, resize_to=None).load(ClipRecord(video=str(large)), large, 0)
    assert torch.equal(full["video"], expected)  # resize_to=None is the full-size path, exactly


@pytest.mark.parametrize("name", ["kinetics_arm_wrestling.mp4", "video9770.mp4", "pool_cleaning.mp4"])
def test_dataset_output_on_real_videos_stays_close_to_the_full_size_path(realdata, name):
    path = realdata / "videos" / name
    sample = ClipLoader(num_frames=6, transform=VideoTransform(64)).load(ClipRecord(video=str(path)), path, 0)
    levels = _grey_levels(sample["video"], preprocess_video(load_video(path, 6), 64))
    assert levels.mean() <= 1.0, levels.mean()  # measured 0.66-0.84


def test_training_transform_asks_for_room_to_crop():
    assert VideoTransform(224, train=True).decode_short_side == 280  # the 0.8 crop is resized up to 224
    assert VideoTransform(224).decode_short_side == 224


def test_the_decode_size_rule():
    """Twice what the transform needs, from one function: the transform, the dataset's "auto" and the option parser
    agree with it (hand-computed values)."""
    assert decode_size(224) == 448 and decode_size(224, train=True) == 560 and decode_size(336) == 672
    assert VideoTransform(224).decode_size == 448 and VideoTransform(224, train=True).decode_size == 560
    assert ClipLoader(transform=VideoTransform(224, train=True)).resize_to == 560
    assert ClipLoader(transform=lambda frames: frames).resize_to is None  # a transform that states no need
    assert resolve_decode_size("auto", 224) == 448 and resolve_decode_size("300", 224) == 300
    assert resolve_decode_size(None, 224) is None and resolve_decode_size("full", 224) is None
    for bad in ("huge", 0, -5, 2.5, True):
        with pytest.raises(ValueError, match="decode size must be"):
            resolve_decode_size(bad, 224)


def test_source_frames_over_the_cap_are_refused_before_decoding(large, monkeypatch):
    monkeypatch.setattr(decode, "MAX_SOURCE_PIXELS", 640 * 360 - 1)
    with pytest.raises(VideoDecodeError, match=r"large.mp4: frames of 640x360 exceed vidla's limits"):
        open_video(large)
    monkeypatch.setattr(decode, "MAX_SOURCE_PIXELS", 8192 * 8192)
    monkeypatch.setattr(decode, "MAX_ASPECT_RATIO", 1.5)
    with pytest.raises(VideoDecodeError, match="aspect ratio 1.5:1"):
        load_video(large, 2)


def test_frame_folders_are_scaled_too(large, tmp_path):
    from PIL import Image

    frames = load_video(large, 3).numpy()
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / f"{i:03d}.png")
    scaled = load_video(tmp_path, 3, frame_rate=1, resize_to=90)
    assert scaled.shape == (3, 90, 160, 3)
    assert abs(scaled.float().mean().item() - float(frames.mean())) < 2  # the same picture, smaller
