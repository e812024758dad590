"""Key-frame selection in search: an index built with a selection model stores text-free selections of each window's
T candidates; `rerank=N` re-encodes the best N windows with the query's text-guided selection. Checked against
`model.encode_video` on frames decoded here by the indexer's own decoding path, one window at a time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _search_helpers import REPO, settings

import vidla
from vidla.data.decode import open_video
from vidla.search import IndexStore, SearchIndex, SearchIndexError, build_index
from vidla.search.indexer import iter_window_frames
from vidla.search.query import MAX_RERANK
from vidla.search.windows import Window

T, K = 8, 2
QUERY = "a red square moves right"


def selection_model(segments: int = K):
    torch.manual_seed(0)
    model = vidla.create_model("vidla-tiny", temporal="meanpool", num_frames=T, frame_selection={"segments": segments})
    # the text term starts at zero (text-free); random here, so the text changes which frames are picked
    torch.nn.init.normal_(model.frame_selector.text_query.weight, std=2.0)
    return model.eval()


@pytest.fixture(scope="module")
def selection_checkpoint(tmp_path_factory) -> Path:
    return vidla.save_model(selection_model(), tmp_path_factory.mktemp("sel") / "select.safetensors")


@pytest.fixture(scope="module")
def selection_index(tmp_path_factory, collection, selection_checkpoint) -> Path:
    out = tmp_path_factory.mktemp("sel_index") / "videos.index"
    build_index([collection["host"], collection["other"]], out, selection_checkpoint, settings=settings())
    return out


def candidates(path: str, start: float, end: float, model, resize_to: int | None = None) -> torch.Tensor:
    """One window's T preprocessed candidate frames, decoded on their own (the indexer's decoding path, at the
    index's decode size `resize_to`)."""
    with open_video(path, resize_to=resize_to) as reader:
        [(_, pixels)] = list(iter_window_frames(reader, [Window(start, end, "x")], model.num_frames,
                                                model.image_size))
    return pixels


def unit(x: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(x.float(), dim=-1).numpy()


def test_stored_vectors_are_text_free_selections_of_the_candidates(selection_index, selection_checkpoint):
    model = vidla.load_model(selection_checkpoint).eval()
    with IndexStore(selection_index, readonly=True) as store, torch.no_grad():
        identity, resize_to = store.identity()["model"], store.identity()["decode"]["resize_to"]
        assert identity["num_frames"] == T and identity["frame_selection"]["segments"] == K
        checked = 0
        for path, video in store.videos().items():
            windows, vectors = store.video_windows(video.id)
            for (start, end, _), stored in zip(windows, vectors):
                frames = candidates(path, start, end, model, resize_to)
                assert frames.shape[0] == T
                np.testing.assert_allclose(stored, unit(model.encode_video(frames[None]))[0], atol=1e-5)
                checked += 1
        assert checked >= 10


def test_another_selection_is_another_model(selection_index, collection, tmp_path):
    """Same weights, other segments: the vectors would differ, so the index refuses to mix them."""
    model = selection_model(segments=4)
    with pytest.raises(SearchIndexError, match="another model"):
        build_index([collection["host"]], selection_index, model=model, settings=settings())
    plain = vidla.create_model("vidla-tiny", temporal="meanpool", num_frames=T)
    out = tmp_path / "plain.index"
    build_index([collection["host"]], out, model=plain, settings=settings())
    with IndexStore(out, readonly=True) as store:
        assert store.identity()["model"]["frame_selection"] is None


def test_rerank_scores_are_text_guided_encodings(selection_index, selection_checkpoint):
    index = SearchIndex(selection_index)
    model = vidla.load_model(selection_checkpoint).eval()
    n, k = 12, 12
    with torch.no_grad():
        text = model.encode_text([QUERY])
        query = unit(text)[0]
        shortlist = index.nearest_windows(query, n)
        assert len(shortlist) == n
        rows = index.store.windows([i for i, _ in shortlist])
        expected, text_free = {}, {}
        for i, free_score in shortlist:
            row = rows[i]
            frames = candidates(index.store.video(row.video_id).path, row.start, row.end, model,
                                index.identity["decode"]["resize_to"])[None]
            expected[i] = float(unit(model.encode_video(frames, text=QUERY))[0] @ query)
            text_free[i] = free_score
        changed = sum(abs(expected[i] - text_free[i]) > 1e-4 for i in expected)
        assert changed >= 2, "the text should change some selections, or this test checks nothing"

    rescored = index.rerank_windows(QUERY, query, [i for i, _ in shortlist])
    assert [i for i, _ in rescored] == sorted(expected, key=lambda i: (-expected[i], i))
    for i, score in rescored:
        assert score == pytest.approx(expected[i], abs=1e-5)
    assert index.last_rerank.windows == n and index.last_rerank.skipped == 0

    results = index.search_text(QUERY, k=k, rerank=n)
    moments = [m for video in results for m in video.moments]
    assert moments and sorted(expected.values(), reverse=True)[0] == pytest.approx(moments[0].score, abs=1e-5)
    for m in moments:  # every moment is seeded by a re-scored window, with its re-scored score
        assert m.window_id in expected and m.score == pytest.approx(expected[m.window_id], abs=1e-5)
    assert [v.score for v in results] == sorted((v.score for v in results), reverse=True)
    for video in results:
        assert [m.score for m in video.moments] == sorted((m.score for m in video.moments), reverse=True)


def test_rerank_of_a_model_without_selection_is_a_clear_error(built_index):
    index = SearchIndex(built_index)
    with pytest.raises(SearchIndexError, match="no frame selection"):
        index.search_text(QUERY, k=3, rerank=10)


@pytest.mark.parametrize("k, n", [(5, 4), (3, 0), (3, -1), (3, MAX_RERANK + 1)])
def test_bad_rerank_is_rejected(selection_index, k, n):
    with pytest.raises(ValueError, match="rerank must be between"):
        SearchIndex(selection_index).search_text(QUERY, k=k, rerank=n)


def test_cli_rerank(selection_index, built_index):
    def search(index, *extra):
        return subprocess.run([sys.executable, "-m", "vidla.cli", "search", str(index), QUERY, "-k", "2", *extra],
                              cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO),
                                                                              "OMP_NUM_THREADS": "1"})

    done = search(selection_index, "--rerank", "6", "--json")
    assert done.returncode == 0, done.stderr
    assert '"moments"' in done.stdout
    done = search(built_index, "--rerank", "6")
    assert done.returncode == 2 and "no frame selection" in done.stderr
    done = search(selection_index, "--rerank", "1")
    assert done.returncode == 2 and "rerank must be between" in done.stderr


def test_api_rerank(selection_index, built_index):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from vidla.search.server import MAX_RERANK as API_MAX, create_app

    client = TestClient(create_app(selection_index))
    response = client.get("/api/search", params={"q": QUERY, "k": 3, "rerank": 6})
    assert response.status_code == 200, response.text
    expected = SearchIndex(selection_index).search_text(QUERY, k=3, rerank=6)
    got = [m for v in response.json()["results"] for m in v["moments"]]
    assert [m["window_id"] for m in got] == [m.window_id for v in expected for m in v.moments]
    assert [m["score"] for m in got] == pytest.approx([m.score for v in expected for m in v.moments], abs=1e-5)
    for params, status, message in [({"rerank": 2}, 400, "rerank must be between"),
                                    ({"rerank": API_MAX + 1}, 422, f"less than or equal to {API_MAX}"),
                                    ({"rerank": 0}, 422, "greater than or equal to 1")]:
        response = client.get("/api/search", params={"q": QUERY, "k": 3, **params})
        assert response.status_code == status and message in response.text, response.text
    response = TestClient(create_app(built_index)).get("/api/search", params={"q": QUERY, "k": 3, "rerank": 6})
    assert response.status_code == 400 and "no frame selection" in response.text


def test_rerank_leaves_out_a_changed_video_and_says_which(collection, selection_checkpoint, tmp_path):
    video = tmp_path / "host.mp4"
    video.write_bytes(collection["host"].read_bytes())
    build_index([video], tmp_path / "one.index", selection_checkpoint, settings=settings())
    index = SearchIndex(tmp_path / "one.index")
    assert index.search_text(QUERY, k=2, rerank=4)  # unchanged: re-ranked
    os.utime(video, ns=(1, 1))
    with pytest.warns(UserWarning, match=f"{video}: changed since it was indexed"):
        assert index.search_text(QUERY, k=2, rerank=4) == []
    assert index.last_rerank.skipped == 4 and index.last_rerank.windows == 0


def test_rerank_decodes_at_the_index_decode_size(tmp_path):
    """On a video larger than the decode size (128x96 for a 32 px model: decoded to 85x64), a selector without its
    text term re-selects exactly the stored text-free frames, so re-ranked scores equal the stored vectors' scores;
    decoding at full size instead would give other pixels and other scores."""
    from vidla.data.synthetic import write_video

    model = selection_model()
    torch.nn.init.zeros_(model.frame_selector.text_query.weight)  # text-free, as a new selector starts
    path = write_video(tmp_path / "big.mp4", num_frames=64, fps=8.0, width=128, height=96, textured=True)
    build_index([path], tmp_path / "big.index", model=model, settings=settings())
    index = SearchIndex(tmp_path / "big.index", model=model)
    assert index.identity["decode"]["resize_to"] == 64
    with torch.no_grad():
        query = unit(model.encode_text([QUERY]))[0]
    shortlist = index.nearest_windows(query, index.vectors.ntotal)  # every window of the video
    rescored = dict(index.rerank_windows(QUERY, query, [i for i, _ in shortlist]))
    assert len(rescored) == len(shortlist) >= 3
    for i, stored in shortlist:
        assert rescored[i] == pytest.approx(stored, abs=1e-5)
    row = index.store.windows([shortlist[0][0]])[shortlist[0][0]]
    with torch.no_grad():
        full = candidates(str(path), row.start, row.end, model)  # full size: what a rerank must not decode
        assert abs(float(unit(model.encode_video(full[None]))[0] @ query) - shortlist[0][1]) > 1e-4
