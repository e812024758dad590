"""Indexing and searching a collection with a tiny model: vectors against an independent per-window computation,
the planted event found by example, incremental updates, renames, failures, model identity and shards."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from _search_helpers import EVENT, copy_collection, make_example, settings

import vidla
from vidla.search import IndexStore, SearchIndex, SearchIndexError, build_index, merge_indexes, plan_windows
from vidla.search.windows import WindowConfig


def contents(folder: Path) -> dict[str, tuple]:
    """path -> (sha256, duration, windows, vectors): what two indexes must agree on to be equal."""
    with IndexStore(folder, readonly=True) as store:
        out = {}
        for path, video in store.videos().items():
            windows, vectors = store.video_windows(video.id)
            out[path] = (video.sha256, round(video.duration, 6), windows, vectors)
        return out


def assert_same_index(a: Path, b: Path, rename: dict[str, str] | None = None) -> None:
    left, right = contents(a), contents(b)
    rename = rename or {}
    left = {rename.get(Path(p).name, Path(p).name): v for p, v in left.items()}
    right = {Path(p).name: v for p, v in right.items()}
    assert sorted(left) == sorted(right)
    for name in left:
        assert left[name][:3] == right[name][:3], name
        np.testing.assert_allclose(left[name][3], right[name][3], atol=1e-5, err_msg=name)


def test_window_vectors_equal_an_independent_per_window_computation(built_index, collection, tiny_checkpoint):
    """Each stored vector = encode_video(preprocess_video(load_video(file, T, start, end))), one window at a time:
    decoding each video once for all its windows changes nothing."""
    model = vidla.load_model(tiny_checkpoint).eval()
    with IndexStore(built_index, readonly=True) as store:
        videos = store.videos()
        assert sorted(Path(p).name for p in videos) == ["host.mp4", "other.mp4", "plain0.mp4", "plain1.mp4"]
        for path, video in videos.items():
            windows, vectors = store.video_windows(video.id)
            expected = plan_windows(video.duration, WindowConfig(scales={"short": 4.0, "medium": 8.0}))
            assert windows == [(w.start, w.end, w.scale) for w in expected]
            with torch.no_grad():
                for (start, end, _), stored in zip(windows, vectors):
                    frames = vidla.load_video(path, 4, start=start, end=end)
                    reference = model.encode_video(vidla.preprocess_video(frames, model.image_size)[None])[0]
                    reference = torch.nn.functional.normalize(reference, dim=-1).numpy()
                    np.testing.assert_allclose(stored, reference, atol=1e-5)


def test_search_by_example_finds_the_planted_event(built_index, collection, tiny_checkpoint):
    index = SearchIndex(built_index)  # the model recorded in the index
    results = index.search_example(collection["example"], k=3)
    top = results[0]
    assert Path(top.path).name == "host.mp4"
    moment = top.moments[0]
    overlap = min(moment.end, EVENT[1]) - max(moment.start, EVENT[0])
    assert overlap >= 0.5 * (moment.end - moment.start), (moment, EVENT)
    assert moment.start <= EVENT[0] + 2 and moment.end >= EVENT[1] - 2


def test_text_search_scores_are_the_cosine_of_the_best_window(built_index, tiny_checkpoint):
    """The top moment's score is the best text-window cosine over every window, computed here by brute force."""
    model = vidla.load_model(tiny_checkpoint).eval()
    index = SearchIndex(built_index, checkpoint=tiny_checkpoint)
    query = "a red square moves right"
    with torch.no_grad():
        text = torch.nn.functional.normalize(model.encode_text([query]), dim=-1)[0].numpy()
    best = (-2.0, None)
    with IndexStore(built_index, readonly=True) as store:
        for video in store.videos().values():
            windows, vectors = store.video_windows(video.id)
            scores = vectors @ text
            i = int(np.argmax(scores))
            best = max(best, (float(scores[i]), (video.path, windows[i])), key=lambda b: b[0])
    results = index.search_text(query, k=5)
    top = results[0].moments[0]
    assert top.score == pytest.approx(best[0], abs=1e-5)
    assert (results[0].path, (top.start, top.end, top.scale)) == best[1]
    # min_score drops every window below it; k bounds the moments
    assert index.search_text(query, k=5, min_score=2.0) == []
    assert sum(len(v.moments) for v in index.search_text(query, k=2)) == 2
    with pytest.raises(ValueError, match="k must be"):
        index.search_text(query, k=0)


def test_incremental_update_equals_a_clean_build(tmp_path, collection, tiny_checkpoint):
    folder = copy_collection(collection, tmp_path / "videos")
    out = tmp_path / "incremental.index"
    assert build_index([folder], out, tiny_checkpoint, settings=settings()).embedded == 4
    # add a file, change one, delete one, rename one, touch one
    shutil.copy(collection["example"], folder / "added.mp4")
    make_example(folder / "plain0.mp4")  # new content under an old name
    (folder / "other.mp4").unlink()
    (folder / "plain1.mp4").rename(folder / "renamed.mp4")
    os.utime(folder / "host.mp4", ns=(1, 1))
    report = build_index([folder], out, tiny_checkpoint, settings=settings())
    assert (report.embedded, report.copied, report.touched, report.deleted) == (2, 1, 1, 2)
    clean = build_index([folder], tmp_path / "clean.index", tiny_checkpoint, settings=settings())
    assert clean.embedded == 4
    assert_same_index(out, tmp_path / "clean.index")
    again = build_index([folder], out, tiny_checkpoint, settings=settings())
    assert (again.embedded, again.unchanged, again.windows) == (0, 4, 0)


def test_an_unreadable_video_is_reported_by_name_and_not_retried_until_it_changes(tmp_path, collection,
                                                                                    tiny_checkpoint):
    folder = copy_collection(collection, tmp_path / "videos")
    (folder / "broken.mp4").write_bytes(b"not a video at all" * 100)
    out = tmp_path / "i.index"
    report = build_index([folder], out, tiny_checkpoint, settings=settings())
    assert report.embedded == 4 and list(report.failed) == [str(folder / "broken.mp4")]
    assert "broken.mp4" in report.failed[str(folder / "broken.mp4")]
    rerun = build_index([folder], out, tiny_checkpoint, settings=settings())
    assert rerun.embedded == 0 and str(folder / "broken.mp4") in rerun.failed
    shutil.copy(collection["example"], folder / "broken.mp4")  # repaired
    fixed = build_index([folder], out, tiny_checkpoint, settings=settings())
    assert fixed.embedded == 1 and not fixed.failed


def test_another_model_is_a_clear_error(tmp_path, built_index, collection, tiny_checkpoint):
    torch.manual_seed(1)
    other = vidla.save_model(vidla.create_model("vidla-tiny", num_frames=4), tmp_path / "other.safetensors")
    with pytest.raises(SearchIndexError, match="not the one that built the index"):
        SearchIndex(built_index, checkpoint=other).search_text("anything")
    copy = tmp_path / "copy.index"
    shutil.copytree(built_index, copy)
    with pytest.raises(SearchIndexError, match="built with another model"):
        build_index([collection["host"].parent], copy, other, settings=settings())


def test_shards_merged_equal_a_one_process_build(tmp_path, collection, tiny_checkpoint, built_index):
    folder = collection["host"].parent
    shards = [tmp_path / f"shard{i}.index" for i in range(3)]
    sizes = [build_index([folder], shard, tiny_checkpoint, settings=settings(shard=(i, 3))).videos
             for i, shard in enumerate(shards)]
    assert sum(sizes) == 4 and max(sizes) < 4
    merge_indexes(shards, tmp_path / "merged.index", progress=False)
    assert_same_index(tmp_path / "merged.index", built_index)
    query = SearchIndex(tmp_path / "merged.index").search_example(collection["example"], k=3)
    reference = SearchIndex(built_index).search_example(collection["example"], k=3)
    assert [(v.path, [(m.start, m.end, round(m.score, 4)) for m in v.moments]) for v in query] == \
           [(v.path, [(m.start, m.end, round(m.score, 4)) for m in v.moments]) for v in reference]


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "ivf-sq8"])
def test_vector_index_kinds_agree_on_a_small_collection(tmp_path, built_index, collection, kind):
    from vidla.search import VectorIndexConfig

    copy = tmp_path / "copy.index"
    shutil.copytree(built_index, copy)
    (copy / "vectors.json").unlink()  # stale or missing vectors are rebuilt from SQLite, never trusted
    index = SearchIndex(copy, vectors=VectorIndexConfig(kind=kind, ivf_nprobe=1000))
    from vidla.search.vectors import index_kind

    assert index_kind(index.vectors) == kind
    reference = SearchIndex(built_index).search_example(collection["example"], k=3)
    results = index.search_example(collection["example"], k=3)
    assert [(v.path, [m.window_id for m in v.moments]) for v in results] == \
           [(v.path, [m.window_id for m in v.moments]) for v in reference]


def test_an_open_index_sees_what_a_later_run_committed(tmp_path, built_index, collection, tiny_checkpoint):
    copy = tmp_path / "copy.index"
    shutil.copytree(built_index, copy)
    index = SearchIndex(copy)
    assert len(index.search_example(collection["example"], k=20)) == 4
    report = build_index([collection["host"], collection["other"]], copy, tiny_checkpoint, settings=settings())
    assert (report.deleted, report.embedded) == (2, 0)  # the index mirrors its inputs
    names = {Path(v.path).name for v in index.search_example(collection["example"], k=20)}
    assert names == {"host.mp4", "other.mp4"}


def test_shards_do_not_depend_on_where_the_collection_is_mounted(tmp_path, collection):
    from vidla.search.indexer import _list_videos_keyed, in_shard

    first = copy_collection(collection, tmp_path / "mnt" / "a")
    second = copy_collection(collection, tmp_path / "elsewhere" / "deeper" / "b")

    def split(folder):
        keyed = _list_videos_keyed([folder])
        return [sorted(os.path.basename(p) for p, key in keyed.items() if in_shard(key, (i, 3))) for i in range(3)]

    assert split(first) == split(second)
    assert sorted(sum(split(first), [])) == ["host.mp4", "other.mp4", "plain0.mp4", "plain1.mp4"]
