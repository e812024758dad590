"""Search decodes at the size training's loader decodes to: on a 1920x1080 video every array the indexer, search by
example and thumbnails decode is bounded by the output size; the vectors equal the training loader's path
(VideoTextDataset + VideoTransform) computed independently; `decode_size=None` gives the old full-size vectors; an
index keeps its decode size across runs."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch

import vidla
from vidla.data.datasets import VideoTextDataset
from vidla.data.decode import VideoReader
from vidla.data.manifest import ClipRecord
from vidla.data.synthetic import write_video
from vidla.data.transforms import VideoTransform
from vidla.search import IndexSettings, IndexStore, SearchIndex, SearchIndexError, build_index
from vidla.search.store import DATABASE
from vidla.search.windows import WindowConfig

# vidla-tiny's input is 32 px: decode_size = 2 x 32 = 64, so 1920x1080 decodes to 1920 * 64 // 1080 = 113 x 64.
SCALED = (64, 113, 3)
FULL = (1080, 1920, 3)


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("big")
    return write_video(folder / "big.mp4", num_frames=16, fps=8.0, width=1920, height=1080, textured=True,
                       keyframe_interval=8)


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    return vidla.load_model(tiny_checkpoint).eval()


def spy_on_frames_at(monkeypatch) -> list[tuple[int, ...]]:
    """Shapes of every frame array any reader returns from now on (the indexer decodes in a thread)."""
    shapes: list[tuple[int, ...]] = []
    frames_at = VideoReader.frames_at

    def spy(self, times):
        decoded = frames_at(self, times)
        shapes.append(decoded.frames.shape)
        return decoded

    monkeypatch.setattr(VideoReader, "frames_at", spy)
    return shapes


@pytest.fixture
def decoded_shapes(monkeypatch) -> list[tuple[int, ...]]:
    return spy_on_frames_at(monkeypatch)


def one_second_windows(**options) -> IndexSettings:
    return IndexSettings(windows=WindowConfig(scales={"short": 1.0}), progress=False, **options)


def training_loader_vector(model, path, start, end, resize_to="auto") -> np.ndarray:
    """The vector of a clip through training's dataset (its "auto" decode size, evaluation transform)."""
    dataset = VideoTextDataset([ClipRecord(video=str(path), start=start, end=end)], num_frames=model.num_frames,
                               transform=VideoTransform(model.image_size), resize_to=resize_to)
    with torch.no_grad():
        features = model.encode_video(dataset[0]["video"][None])
    return torch.nn.functional.normalize(features, dim=-1)[0].numpy()


def stored(index: Path) -> tuple[list[tuple[float, float, str]], np.ndarray, dict]:
    with IndexStore(index, readonly=True) as store:
        video, = store.videos().values()
        return (*store.video_windows(video.id), store.identity())


@pytest.fixture(scope="module")
def scaled_build(big, tiny_checkpoint, tmp_path_factory) -> tuple[Path, list[tuple[int, ...]]]:
    """An index of the 1080p video with the default decode size, and the shapes decoded while building it."""
    out = tmp_path_factory.mktemp("scaled") / "big.index"
    import vidla.data.transforms as transforms

    with pytest.MonkeyPatch.context() as monkeypatch:
        shapes = spy_on_frames_at(monkeypatch)
        preprocess = transforms.preprocess_video

        def spy(frames, *args, **kwargs):  # what the transform is handed at once (it makes a float copy)
            shapes.append(("preprocess", *frames.shape))
            return preprocess(frames, *args, **kwargs)

        monkeypatch.setattr(transforms, "preprocess_video", spy)
        build_index([big], out, tiny_checkpoint, settings=one_second_windows())
    return out, shapes


@pytest.fixture(scope="module")
def scaled_index(scaled_build) -> Path:
    return scaled_build[0]


def test_indexing_decodes_at_the_training_size_and_gives_the_training_loaders_vectors(big, model, scaled_build):
    index, shapes = scaled_build
    decoded = [shape for shape in shapes if shape[0] != "preprocess"]
    preprocessed = [shape[1:] for shape in shapes if shape[0] == "preprocess"]
    assert decoded and {shape[1:] for shape in decoded} == {SCALED}  # never a 1080p frame
    assert {shape[1:] for shape in preprocessed} == {SCALED} and max(shape[0] for shape in preprocessed) <= 8
    assert sum(shape[0] for shape in preprocessed) == sum(shape[0] for shape in decoded)  # each frame once
    windows, vectors, identity = stored(index)
    assert identity["decode"] == {"resize_to": 64}
    assert len(windows) == 3
    for (start, end, _), vector in zip(windows, vectors):
        np.testing.assert_allclose(vector, training_loader_vector(model, big, start, end), atol=1e-5)


def test_full_size_option_gives_the_old_pixels(big, model, tmp_path, tiny_checkpoint, scaled_index, decoded_shapes):
    build_index([big], tmp_path / "full.index", tiny_checkpoint, settings=one_second_windows(decode_size=None))
    assert {shape[1:] for shape in decoded_shapes} == {FULL}
    windows, vectors, identity = stored(tmp_path / "full.index")
    assert identity["decode"] == {"resize_to": None}
    for (start, end, _), vector in zip(windows, vectors):
        with torch.no_grad():  # the path before decode-time scaling: full-size frames, then the transform
            pixels = vidla.preprocess_video(vidla.load_video(big, model.num_frames, start=start, end=end), 32)
            reference = torch.nn.functional.normalize(model.encode_video(pixels[None]), dim=-1)[0].numpy()
        np.testing.assert_allclose(vector, reference, atol=1e-5)
    _, scaled, _ = stored(scaled_index)
    cosine = (scaled * vectors).sum(axis=1)
    assert not np.array_equal(scaled, vectors) and cosine.min() > 0.99, cosine  # other pixels, nearly the same


def test_search_by_example_decodes_as_the_index_did(big, model, tmp_path, tiny_checkpoint, scaled_index,
                                                    decoded_shapes):
    query = SearchIndex(scaled_index).embed_example(big, 0.5, 1.5)
    assert {shape[1:] for shape in decoded_shapes} == {SCALED}
    np.testing.assert_allclose(query, training_loader_vector(model, big, 0.5, 1.5), atol=1e-5)
    # An index from before decode-time scaling records no decode size: it was built, and is queried, at full size.
    old = tmp_path / "old.index"
    build_index([big], old, tiny_checkpoint, settings=one_second_windows(decode_size="full"))
    db = sqlite3.connect(old / DATABASE)
    with db:
        assert db.execute("DELETE FROM meta WHERE key = 'decode'").rowcount == 1
    db.close()
    decoded_shapes.clear()
    query = SearchIndex(old).embed_example(big, 0.5, 1.5)
    assert {shape[1:] for shape in decoded_shapes} == {FULL}
    np.testing.assert_allclose(query, training_loader_vector(model, big, 0.5, 1.5, resize_to=None), atol=1e-5)


def test_an_index_keeps_its_decode_size(big, tmp_path, tiny_checkpoint, decoded_shapes):
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "big.mp4").write_bytes(big.read_bytes())
    out = tmp_path / "full.index"
    build_index([folder], out, tiny_checkpoint, settings=one_second_windows(decode_size=None))
    write_video(folder / "added.mp4", num_frames=8, fps=8.0, width=1920, height=1080, textured=True)
    decoded_shapes.clear()
    report = build_index([folder], out, tiny_checkpoint, settings=one_second_windows())  # default: auto
    assert report.embedded == 1 and {shape[1:] for shape in decoded_shapes} == {FULL}  # the index's own size
    with pytest.raises(SearchIndexError, match="decodes frames at full size, not a shorter side of 64 px"):
        build_index([folder], out, tiny_checkpoint, settings=one_second_windows(decode_size=64))
    with pytest.raises(ValueError, match="decode size must be"):
        one_second_windows(decode_size="huge")


def test_thumbnails_decode_at_their_own_size(big, scaled_index, decoded_shapes):
    from PIL import Image

    from vidla.search.server import THUMBNAIL_WIDTH, Thumbnails, _jpeg

    index = SearchIndex(scaled_index)
    window_id, = [i for i, w in index.store.windows(range(100)).items() if (w.start, w.end) == (0.5, 1.5)]
    data = Thumbnails(index, None).get(window_id, 2)
    # decode_size(160) = 320: 1920x1080 decodes to 1920 * 320 // 1080 = 568 x 320, one frame
    assert decoded_shapes == [(1, 320, 568, 3)]
    image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32)
    assert image.shape == (90, THUMBNAIL_WIDTH, 3)
    instant = 0.5 + 2.5 / 4  # the third of 4 segment centres of [0.5, 1.5]
    frame = vidla.load_video(big, 1, start=instant, end=instant + 1e-3)[0].numpy()  # full size
    expected = np.asarray(Image.fromarray(frame).resize((160, 90), Image.BICUBIC), dtype=np.float32)
    before = np.asarray(Image.open(io.BytesIO(_jpeg(frame))).convert("RGB"), dtype=np.float32)  # full-size decode
    # JPEG of this noise texture is 13 grey levels off on average either way; the two thumbnails differ by ~2.
    assert abs(np.abs(image - expected).mean() - np.abs(before - expected).mean()) < 1
    assert np.abs(image - before).mean() < 3
