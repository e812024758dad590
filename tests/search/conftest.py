"""A small video collection with a planted event, a tiny model, and an index of them built once per session.

Each host video is a dark, noisy scene 16 s long (8 fps, 32x32); `host.mp4` shows a red square moving right from
12 s to 16 s, `other.mp4` a blue circle growing from 2 s to 6 s, the rest nothing. `example.mp4` is the red square's
move filmed again on its own: another start position, another background noise, encoded separately.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from vidla.data.temporal_synth import COLOURS, Event, _shape_mask, write_mp4

REPO = Path(__file__).resolve().parents[2]
FPS, SIZE, SECONDS = 8, 32, 16
EVENT = (12.0, 16.0)  # the red square's move in host.mp4
SCALES = "short=4,medium=8"


def background(frames: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (28 + rng.integers(0, 12, (frames, SIZE, SIZE, 3))).astype(np.uint8)


def paint(frames: np.ndarray, event: Event, first: int, count: int, seed: int) -> None:
    """Draws `event` over frames[first:first + count] (moves right, or grows)."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(8, SIZE - 8)
    for f in range(count):
        p = f / max(1, count - 1)
        x, radius = (4 + p * (SIZE - 8), 5.0) if event.action == "moves right" else (SIZE / 2, 2 + 8 * p)
        frames[first + f][_shape_mask(event.shape, SIZE, x, y, radius)] = COLOURS[event.colour]


def make_collection(folder: Path, extra_plain: int = 2) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    n = FPS * SECONDS
    videos = {}
    host = background(n, 1)
    paint(host, Event("red", "square", "moves right"), int(EVENT[0] * FPS), int((EVENT[1] - EVENT[0]) * FPS), 1)
    videos["host"] = write_mp4(folder / "host.mp4", host, FPS)
    other = background(n, 2)
    paint(other, Event("blue", "circle", "grows"), 2 * FPS, 4 * FPS, 2)
    videos["other"] = write_mp4(folder / "other.mp4", other, FPS)
    for i in range(extra_plain):
        videos[f"plain{i}"] = write_mp4(folder / f"plain{i}.mp4", background(n - FPS * i, 10 + i), FPS)
    return videos


def make_example(path: Path) -> Path:
    clip = background(4 * FPS, 99)
    paint(clip, Event("red", "square", "moves right"), 0, 4 * FPS, 7)
    return write_mp4(path, clip, FPS)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    import vidla

    torch.manual_seed(0)
    model = vidla.create_model("vidla-tiny", temporal="meanpool", num_frames=4)
    return vidla.save_model(model, tmp_path_factory.mktemp("model") / "tiny.safetensors")


@pytest.fixture(scope="session")
def collection(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("collection")
    videos = make_collection(folder / "videos")
    videos["example"] = make_example(folder / "example.mp4")
    return videos


def settings(**overrides):
    from vidla.search import IndexSettings, WindowConfig

    return IndexSettings(windows=WindowConfig(scales={"short": 4.0, "medium": 8.0}), progress=False, **overrides)


@pytest.fixture(scope="session")
def built_index(tmp_path_factory, collection, tiny_checkpoint) -> Path:
    from vidla.search import build_index

    out = tmp_path_factory.mktemp("index") / "videos.index"
    build_index([collection["host"].parent], out, tiny_checkpoint, settings=settings())
    return out


def copy_collection(collection: dict[str, Path], folder: Path) -> Path:
    shutil.copytree(collection["host"].parent, folder)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def served(built_index):
    """`vidla serve INDEX --port P` in a subprocess, with the default host."""
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "vidla.cli", "serve", str(built_index), "--port", str(port)],
                               cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/info", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "vidla serve did not start"
        time.sleep(0.1)
    yield process, port
    process.terminate()
    process.wait(timeout=20)
