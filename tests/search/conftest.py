"""A small video collection with a planted event, a tiny model, and an index of them built once per session.

Each host video is a dark, noisy scene 16 s long (8 fps, 32x32); `host.mp4` shows a red square moving right from
12 s to 16 s, `other.mp4` a blue circle growing from 2 s to 6 s, the rest nothing. `example.mp4` is the red square's
move filmed again on its own: another start position, another background noise, encoded separately.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _search_helpers import REPO, make_collection, make_example, settings


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


@pytest.fixture(scope="session")
def built_index(tmp_path_factory, collection, tiny_checkpoint) -> Path:
    from vidla.search import build_index

    out = tmp_path_factory.mktemp("index") / "videos.index"
    build_index([collection["host"].parent], out, tiny_checkpoint, settings=settings())
    return out


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
