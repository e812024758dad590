"""The search tests' small video collection (described in conftest.py) and index settings, importable by the
test modules as `_search_helpers` (a `from conftest import` picks another folder's conftest when pytest is given
several test folders)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

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


def settings(**overrides):
    from vidla.search import IndexSettings, WindowConfig

    return IndexSettings(windows=WindowConfig(scales={"short": 4.0, "medium": 8.0}), progress=False, **overrides)


def copy_collection(collection: dict[str, Path], folder: Path) -> Path:
    shutil.copytree(collection["host"].parent, folder)
    return folder
