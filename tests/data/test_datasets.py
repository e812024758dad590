import json
import pickle
import shutil
import sys
import tarfile

import pytest
import torch
from _video_cases import truncate, write_audio_only

from vidla.data.datasets import FailedSample, VideoTextDataset
from vidla.data.index import ClipIndex, build_clip_index
from vidla.data.loader import collate_clips, make_dataloader
from vidla.data.manifest import ClipRecord, write_manifest
from vidla.data.shards import ShardDataset, expand_urls, iter_tar_samples, write_shards
from vidla.data.synthetic import read_frame_index, write_video
from vidla.data.transforms import VideoTransform

CORRUPT = {"missing.mp4", "empty.mp4", "truncated.mp4", "text.mp4", "no_frames.mkv"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, videos):
    """100 clips: 95 good (copies of 5 short videos) and 5 corrupt ones, in a JSONL manifest."""
    root = tmp_path_factory.mktemp("corpus")
    (root / "videos").mkdir()
    sources = [write_video(root / f"source{i}.mp4", num_frames=10 + i, width=32, height=24) for i in range(5)]
    records = []
    for i in range(95):
        name = f"videos/clip{i:03d}.mp4"
        shutil.copyfile(sources[i % 5], root / name)
        records.append(ClipRecord(video=name, id=f"clip{i:03d}", texts={"caption": [f"caption {i} a", f"caption {i} b"],
                                                                         "subtitle": f"subtitle {i}"}, label=i % 3))
    (root / "videos" / "empty.mp4").write_bytes(b"")
    truncate(videos["h264.mp4"], root / "videos" / "truncated.mp4")
    (root / "videos" / "text.mp4").write_text("not a video\n" * 100)
    write_audio_only(root / "videos" / "no_frames.mkv", with_empty_video_stream=True)
    for position, name in zip((7, 23, 50, 71, 99), sorted(CORRUPT)):
        records.insert(position, ClipRecord(video=f"videos/{name}", id=f"bad-{name}", texts={"caption": "x"}, label=0))
    assert len(records) == 100
    write_manifest(root / "clips.jsonl", records)
    return root


def _run_epoch(dataset, **options):
    loader = make_dataloader(dataset, batch_size=8, **options)
    ids = [clip_id for batch in loader for clip_id in batch["id"]]
    return loader, ids


def test_100_clips_with_5_corrupt_yield_95_samples_and_report_5_skipped(corpus):
    dataset = VideoTextDataset(corpus / "clips.jsonl", num_frames=4, transform=VideoTransform(16))
    loader, ids = _run_epoch(dataset, num_workers=2, shuffle=True, seed=0)
    assert len(ids) == 95 and len(set(ids)) == 95 and not any(i.startswith("bad-") for i in ids)
    assert loader.num_samples == 95 and loader.num_skipped == 5
    assert {f.video.rsplit("/", 1)[-1] for f in loader.skipped} == CORRUPT
    assert all(str(corpus) in f.video and f.error for f in loader.skipped)


def test_batches_hold_what_the_model_needs(corpus):
    dataset = VideoTextDataset(corpus / "clips.jsonl", num_frames=4, transform=VideoTransform(16),
                               text_kinds=["caption", "subtitle"], text_choice="first")
    batch = next(iter(make_dataloader(dataset, batch_size=6, num_workers=0)))
    assert batch["video"].shape == (6, 4, 3, 16, 16) and batch["video"].dtype == torch.float32
    assert torch.isfinite(batch["video"]).all()
    assert batch["texts"]["caption"][:2] == ["caption 0 a", "caption 1 a"]
    assert batch["texts"]["subtitle"][0] == "subtitle 0"
    assert batch["label"].tolist() == [0, 1, 2, 0, 1, 2] and batch["index"].tolist() == [0, 1, 2, 3, 4, 5]


def test_a_batch_of_only_failures_is_skipped_not_yielded(corpus):
    records = [ClipRecord(video="videos/missing.mp4", id="a"), ClipRecord(video="videos/empty.mp4", id="b"),
               ClipRecord(video="videos/clip000.mp4", id="c")]
    loader = make_dataloader(VideoTextDataset(records, root=corpus, num_frames=2), batch_size=2, num_workers=0,
                             max_skip_fraction=1.0)
    batches = list(loader)
    assert [b["id"] for b in batches] == [["c"]] and loader.num_skipped == 2


def test_too_many_failures_stop_the_run(corpus):
    records = [ClipRecord(video=f"nowhere/{i}.mp4", id=str(i)) for i in range(40)]
    loader = make_dataloader(VideoTextDataset(records, root=corpus, num_frames=2), batch_size=4, num_workers=0)
    with pytest.raises(RuntimeError, match="failed to load"):
        list(loader)


def test_collate_of_failed_samples():
    batch = collate_clips([FailedSample(3, "x", "x.mp4", "gone")])
    assert batch["video"] is None and batch["id"] == [] and len(batch["skipped"]) == 1


def test_text_choice():
    from vidla.data.datasets import ClipLoader

    record = ClipRecord(video="v.mp4", texts={"caption": ["a", "b", "c"], "subtitle": "s"})
    assert ClipLoader(text_choice="all").select_texts(record) == {"caption": ["a", "b", "c"], "subtitle": ["s"]}
    assert ClipLoader(text_choice="first", text_kinds=["caption", "summary"]).select_texts(record) == \
        {"caption": "a", "summary": ""}
    picked = {ClipLoader().select_texts(record)["caption"] for _ in range(60)}
    assert picked == {"a", "b", "c"}


def test_sqlite_index_is_lazy_and_fork_safe(corpus, tmp_path):
    index = build_clip_index(corpus / "clips.jsonl", tmp_path / "clips.sqlite")
    assert len(index) == 100 and index[0].id == "clip000" and index[-1].id == "bad-truncated.mp4"
    assert index.find("clip042").texts["subtitle"] == "subtitle 42"
    assert index[44].id == "clip042"  # two corrupt clips come before it
    assert index.root.resolve() == corpus.resolve()
    assert [r.id for r in index[5:8]] == ["clip005", "clip006", "bad-empty.mp4"]
    clone = pickle.loads(pickle.dumps(index))
    assert clone[3].id == "clip003"
    with pytest.raises(IndexError):
        index[100]
    dataset = VideoTextDataset(tmp_path / "clips.sqlite", num_frames=2)
    loader, ids = _run_epoch(dataset, num_workers=2)
    assert len(ids) == 95 and loader.num_skipped == 5


def test_index_moves_with_its_folder(corpus, tmp_path):
    build_clip_index(corpus / "clips.jsonl", corpus / "moved.sqlite")
    assert ClipIndex(corpus / "moved.sqlite").root.resolve() == corpus.resolve()


def test_shards_round_trip(corpus, tmp_path):
    paths = write_shards(corpus / "clips.jsonl", tmp_path / "shards", max_count=30)
    listing = json.loads((tmp_path / "shards" / "shards.json").read_text())
    assert len(paths) == 4 and listing["total"] == 99 and listing["missing"] == 1  # missing.mp4 is left out
    members = list(iter_tar_samples(str(paths[0])))
    assert members[0][0] == "clip000" and set(members[0][1]) == {"mp4", "json"}
    with tarfile.open(paths[0]) as tar:
        assert tar.getnames()[:2] == ["clip000.mp4", "clip000.json"]
    dataset = ShardDataset(str(tmp_path / "shards" / "shard-{000000..000003}.tar"), num_frames=3)
    loader, ids = _run_epoch(dataset, num_workers=2)
    assert sorted(ids) == sorted([f"clip{i:03d}" for i in range(95)])  # each clip once across workers
    assert loader.num_skipped == 4  # the four corrupt files that were packed


def test_shards_decode_the_same_frames_and_shuffle(corpus, tmp_path):
    write_shards(corpus / "clips.jsonl", tmp_path / "s", max_count=50)
    plain = VideoTextDataset(corpus / "clips.jsonl", num_frames=3)
    streamed = {s["id"]: s for s in ShardDataset(tmp_path / "s", num_frames=3) if not isinstance(s, FailedSample)}
    position = [r.id for r in plain.clips].index("clip010")
    assert torch.equal(streamed["clip010"]["video"], plain[position]["video"])
    assert [read_frame_index(f) for f in streamed["clip010"]["video"]] == [1, 5, 8]
    order = [s.get("id") if isinstance(s, dict) else None
             for s in ShardDataset(tmp_path / "s" / "shards.json", num_frames=1, shuffle=True, shuffle_buffer=20)]
    assert order != sorted(order, key=str) and len(order) == 99


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX shell")
def test_shards_from_a_command(corpus, tmp_path):
    paths = write_shards(corpus / "clips.jsonl", tmp_path / "p", max_count=200)
    samples = list(ShardDataset(f"pipe:cat {paths[0]}", num_frames=1))
    assert sum(not isinstance(s, FailedSample) for s in samples) == 95


def test_expand_urls(tmp_path):
    assert expand_urls("s-{08..10}.tar") == ["s-08.tar", "s-09.tar", "s-10.tar"]
    assert expand_urls(["a.tar", "b-{1..2}.tar"]) == ["a.tar", "b-1.tar", "b-2.tar"]
    (tmp_path / "x.tar").write_bytes(b"")
    assert expand_urls(tmp_path) == [str(tmp_path / "x.tar")]
