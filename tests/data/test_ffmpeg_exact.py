"""Frames at given timestamps equal the ffmpeg command line's (rgb24 output, the same swscale conversion).

Two checks per video: `ffmpeg -ss t` at frame start times (where "the frame at t" is unambiguous), and times in
the middle of frames against the command line's full decode with its best-effort frame times. The tolerance is one
grey level; every case here is in fact pixel-exact.
"""

import numpy as np
import pytest
from _video_cases import ffmpeg_frame_at, ffmpeg_frames, ffprobe_times, max_difference, needs_ffmpeg

from vidla.data.decode import open_video

pytestmark = needs_ffmpeg

TOLERANCE = 1  # grey levels

ENCODED = ["h264.mp4", "h264_long_gop.mp4", "h264.mkv", "vp9.webm", "mpeg4.avi", "hevc.mp4", "h264_29.97.mp4",
           "vfr.mp4", "vfr.mkv", "rotate90.mp4", "rotate180.mp4", "rotate270.mp4"]


def _check_against_ffmpeg(path, count=8, seed=0, full_decode_frames=None):
    """`full_decode_frames` limits the mid-frame check to the first frames (large videos)."""
    with open_video(path) as reader:
        height, width = reader.frames_at([0.0]).frames.shape[1:3]  # after rotation
        times = ffprobe_times(path)
        frames = ffmpeg_frames(path, width, height, full_decode_frames)
        rng = np.random.default_rng(seed)
        # Frames with a known time whose successor has one too (ffprobe 5.1 leaves some AVI frames untimed).
        timed = [i for i in range(len(times) - 1) if np.isfinite(times[i]) and np.isfinite(times[i + 1])]
        # 1. ffmpeg -ss at frame start times.
        starts = sorted(rng.choice(timed, size=min(count, len(timed)), replace=False))
        ours = reader.frames_at([round(times[i], 6) for i in starts]).frames
        for i, frame in zip(starts, ours):
            assert max_difference(frame, ffmpeg_frame_at(path, round(times[i], 6), width, height)) <= TOLERANCE, \
                f"{path.name}: frame {i} at {times[i]:.6f} s"
        # 2. mid-frame times against the full decode: frame i is on screen between its time and the next's.
        middles = sorted(rng.choice([i for i in timed if i + 1 < len(frames)], size=count))
        ours = reader.frames_at([(times[i] + times[i + 1]) / 2 for i in middles]).frames
        for i, frame in zip(middles, ours):
            assert max_difference(frame, frames[i]) <= TOLERANCE, f"{path.name}: middle of frame {i}"


@pytest.mark.parametrize("name", ENCODED)
def test_encoded_videos_match_ffmpeg(videos, name):
    _check_against_ffmpeg(videos[name])


def test_rotation_metadata_is_applied_like_ffmpeg(videos):
    with open_video(videos["rotate90.mp4"]) as reader:
        decoded = reader.frames_at([0.0])
    assert decoded.frames.shape == (1, 64, 48, 3) and decoded.info.rotation == 90


@pytest.mark.parametrize("name", ["video9770.mp4", "video9771.mp4", "kinetics_arm_wrestling.mp4", "pool_cleaning.mp4",
                                  "eye_makeup_mpeg4.avi", "ntu_drink_water.avi"])
def test_real_videos_match_ffmpeg(realdata, name):
    _check_against_ffmpeg(realdata / "videos" / name, count=6, full_decode_frames=40)
