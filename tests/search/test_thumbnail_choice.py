"""Thumbnails are not black frames: a flat frame (black, a fade) is replaced by the nearest informative frame of its
strip slot; an informative frame is shown as it is; a video with nothing but black still gets its thumbnail."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vidla.data.temporal_synth import write_mp4
from vidla.search import IndexSettings, SearchIndex, build_index
from vidla.search.server import FLAT_LUMA_STD, Thumbnails, is_flat, slot_positions
from vidla.search.windows import WindowConfig

FPS, SECONDS, SIZE = 8, 4, 32


def textured(frames: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (frames, SIZE, SIZE, 3)).astype(np.uint8)


@pytest.fixture(scope="module")
def index_of(tmp_path_factory, tiny_checkpoint):
    folder = tmp_path_factory.mktemp("thumbs")
    video = textured(FPS * SECONDS, 0)
    video[10:15] = 0  # black from 1.25 s to 1.875 s: the window [0, 4] s samples 1.5 s (its 2nd of 4 frames)
    (folder / "videos").mkdir()
    write_mp4(folder / "videos" / "fade.mp4", video, FPS)
    write_mp4(folder / "videos" / "black.mp4", np.zeros_like(video), FPS)
    settings = IndexSettings(windows=WindowConfig(scales={"short": 4.0}), progress=False)
    build_index([folder / "videos"], folder / "v.index", tiny_checkpoint, settings=settings)
    index = SearchIndex(folder / "v.index")
    windows = {index.store.video(w.video_id).path.rsplit("/", 1)[-1]: i
               for i, w in index.store.windows(range(100)).items() if (w.start, w.end) == (0.0, 4.0)}
    return index, windows, video


def luma_std(jpeg: bytes) -> float:
    image = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), dtype=np.float32)
    return float((image @ np.array([0.299, 0.587, 0.114], np.float32)).std())


def test_a_black_frame_gives_way_to_the_next_informative_one(index_of):
    index, windows, video = index_of
    thumbnails = Thumbnails(index, None)
    # 4 frames at 0.5, 1.5, 2.5, 3.5 s; position 1 is black, its slot's later neighbour (2.5 s, frame 20) is not
    assert slot_positions(1, 4) == [1, 2, 0]
    shown = np.asarray(Image.open(io.BytesIO(thumbnails.get(windows["fade.mp4"], 1))).convert("RGB"), np.float32)
    assert luma_std(thumbnails.get(windows["fade.mp4"], 1)) > 20
    expected = np.asarray(Image.fromarray(video[20]).resize(shown.shape[1::-1], Image.BICUBIC), np.float32)
    other = np.asarray(Image.fromarray(video[4]).resize(shown.shape[1::-1], Image.BICUBIC), np.float32)
    assert np.abs(shown - expected).mean() < np.abs(shown - other).mean() - 10  # frame 20, not frame 4 (0.5 s)


def test_an_informative_frame_is_shown_as_it_is(index_of):
    index, windows, video = index_of
    shown = np.asarray(Image.open(io.BytesIO(Thumbnails(index, None).get(windows["fade.mp4"], 0))).convert("RGB"),
                       np.float32)
    own = np.asarray(Image.fromarray(video[4]).resize(shown.shape[1::-1], Image.BICUBIC), np.float32)
    later = np.asarray(Image.fromarray(video[20]).resize(shown.shape[1::-1], Image.BICUBIC), np.float32)
    assert np.abs(shown - own).mean() < np.abs(shown - later).mean() - 10


def test_all_black_still_gets_its_frame(index_of):
    index, windows, _ = index_of
    data = Thumbnails(index, None).get(windows["black.mp4"], 1)
    assert luma_std(data) < FLAT_LUMA_STD


def test_flatness_rule():
    assert is_flat(np.zeros((8, 8, 3), np.uint8)) and is_flat(np.full((8, 8, 3), 200, np.uint8))
    ramp = np.repeat(np.linspace(0, 255, 8, dtype=np.uint8)[None, :, None], 8, 0).repeat(3, 2)
    assert not is_flat(ramp)
    assert slot_positions(4, 12) == [4, 5, 3]  # 12 frames, 4 per strip: a slot reaches one frame either side
    assert slot_positions(0, 32) == [0, 1, 2, 3, 4]
