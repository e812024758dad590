"""Helpers shared by the tests of vidla.data: reference decodes (PyAV, the ffmpeg command line) and bad files."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None or FFPROBE is None,
                                  reason="the ffmpeg command line is not installed (apt-get install ffmpeg)")


def pyav_frames(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Every frame (RGB) and its time in seconds from the container start, by a plain PyAV decode."""
    with av.open(str(path)) as container:
        origin = (container.start_time or 0) / 1e6
        decoded = [(float(f.pts * f.time_base) - origin, f.to_ndarray(format="rgb24"))
                   for f in container.decode(video=0)]
    return np.array([t for t, _ in decoded]), np.stack([frame for _, frame in decoded])


def on_screen(times: np.ndarray, t: float) -> int:
    """Index of the frame on screen at t: the last one starting at or before t (the first before it starts)."""
    return max(0, int(np.searchsorted(times, t + 1e-9, side="right")) - 1)


@functools.lru_cache(maxsize=None)
def _fps_mode_flag() -> tuple[str, ...]:
    version = subprocess.run([FFMPEG, "-hide_banner", "-h", "long"], capture_output=True, text=True).stdout
    return ("-fps_mode", "passthrough") if "-fps_mode" in version else ("-vsync", "0")


def _raw(args: list[str], width: int, height: int) -> np.ndarray:
    out = subprocess.run([FFMPEG, "-v", "error", *args, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(out, np.uint8).reshape(-1, height, width, 3)


def ffmpeg_frame_at(path: str | Path, t: float, width: int, height: int) -> np.ndarray:
    """`ffmpeg -ss t -i path -frames:v 1`: the frame the command line decodes at t (rgb24)."""
    frames = _raw(["-ss", f"{t:.6f}", "-i", str(path), "-frames:v", "1"], width, height)
    assert len(frames) == 1, f"ffmpeg returned {len(frames)} frames for {path} at {t}"
    return frames[0]


def ffmpeg_frames(path: str | Path, width: int, height: int, max_frames: int | None = None) -> np.ndarray:
    """The frames the command line decodes, none dropped or repeated (the first `max_frames` of them)."""
    limit = ["-frames:v", str(max_frames)] if max_frames else []
    return _raw(["-i", str(path), *_fps_mode_flag(), *limit], width, height)


def ffprobe_times(path: str | Path) -> np.ndarray:
    """Best-effort time of every frame, in seconds from the file's start (NaN where ffprobe has none: FFmpeg 5.1
    leaves some frames of AVI files with B-frames untimed)."""
    probe = subprocess.run([FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "frame=best_effort_timestamp_time:format=start_time", "-of", "json", str(path)],
                           capture_output=True, check=True, text=True).stdout
    probed = json.loads(probe)
    origin = float(probed.get("format", {}).get("start_time", 0) or 0)
    return np.array([float(f.get("best_effort_timestamp_time", "nan")) - origin for f in probed["frames"]])


def max_difference(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape, (a.shape, b.shape)
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


# Bad inputs ---------------------------------------------------------------------------------------------------------

def truncate(source: Path, target: Path, fraction: float = 0.5) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def write_audio_only(path: Path, with_empty_video_stream: bool) -> Path:
    """An audio track, and optionally a video stream that never receives a frame (a zero-length stream)."""
    with av.open(str(path), "w") as container:
        if with_empty_video_stream:
            video = container.add_stream("libx264", rate=25)
            video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("aac", rate=16000)
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(audio.encode(frame))
        container.mux(audio.encode())
    return path
