"""Test videos for vidla.data, encoded once per session with PyAV (small: 64x48, a few seconds).

Every frame spells its own index (vidla.data.synthetic), so a test can tell exactly which frame came back.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vidla.data.synthetic import write_video

# name -> write_video arguments. Keyframe intervals short enough that seeking is exercised.
VIDEOS = {
    "h264.mp4": dict(num_frames=100, keyframe_interval=20),
    "h264_long_gop.mp4": dict(num_frames=100),  # x264's default: one keyframe
    "h264.mkv": dict(num_frames=100, keyframe_interval=20),
    "vp9.webm": dict(num_frames=100, codec="libvpx-vp9", keyframe_interval=25),
    "vp8.mkv": dict(num_frames=60, codec="libvpx", keyframe_interval=25),
    "mpeg4.avi": dict(num_frames=100, codec="mpeg4", keyframe_interval=25),
    "hevc.mp4": dict(num_frames=60, codec="libx265", keyframe_interval=20,
                     codec_options={"x265-params": "log-level=error"}),
    "h264_29.97.mp4": dict(num_frames=60, fps=30000 / 1001, keyframe_interval=15),
    "h264_faststart.mp4": dict(num_frames=100, keyframe_interval=20, container_options={"movflags": "faststart"}),
    # Variable frame rate: 40 ms steps, and 120 ms on every third frame.
    "vfr.mp4": dict(num_frames=60, timestamps=list(np.cumsum([0] + [0.04 if i % 3 else 0.12 for i in range(1, 60)]))),
    "vfr.mkv": dict(num_frames=60, timestamps=list(np.cumsum([0] + [0.04 if i % 3 else 0.12 for i in range(1, 60)]))),
    "rotate90.mp4": dict(num_frames=20, rotation=90),
    "rotate180.mp4": dict(num_frames=20, rotation=180),
    "rotate270.mp4": dict(num_frames=20, rotation=-90),
}


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    return {name: write_video(folder / name, **options) for name, options in VIDEOS.items()}


@pytest.fixture(scope="session")
def frame_folder(tmp_path_factory) -> Path:
    """30 PNG frames named frame_1.png .. frame_30.png (natural order differs from text order)."""
    import av

    from vidla.data.synthetic import frame_with_index

    folder = tmp_path_factory.mktemp("frames")
    for index in range(30):
        codec = av.CodecContext.create("png", "w")
        codec.width, codec.height, codec.pix_fmt = 64, 48, "rgb24"
        frame = av.VideoFrame.from_ndarray(frame_with_index(index), format="rgb24")
        packets = codec.encode(frame) + codec.encode(None)
        (folder / f"frame_{index + 1}.png").write_bytes(b"".join(bytes(p) for p in packets))
    return folder
