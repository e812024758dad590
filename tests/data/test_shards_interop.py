"""Shards: no clip lost to colliding or repeated ids, and interop with the `webdataset` library both ways."""

import io
import json
import tarfile

import pytest
import torch
import webdataset as wds

from vidla.data.datasets import FailedSample
from vidla.data.manifest import ClipRecord, write_manifest
from vidla.data.shards import ShardDataset, ShardWriter, iter_tar_samples, shard_key, write_shards
from vidla.data.synthetic import read_frame_index, write_video
from vidla.data.video import load_video

# Ids that the old cleaning rule (anything but [A-Za-z0-9_-] -> "_") mapped to one key, plus a repeated id.
IDS = ["x/1", "x_1", "x.1", "x%2F1", "x 1", "x_1", "vidéo", "", None]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("interop")
    video = write_video(root / "v.mp4", num_frames=8, width=32, height=24)
    records = [ClipRecord(video="v.mp4", id=clip_id, texts={"caption": f"caption {n}"}) for n, clip_id in enumerate(IDS)]
    write_manifest(root / "clips.jsonl", records)
    return root, video


def test_keys_are_one_to_one():
    keys = [shard_key(ClipRecord(video="v", id=i), n) for n, i in enumerate(["x/1", "x_1", "x.1", "x%2F1", "x 1"])]
    assert len(set(keys)) == 5 and all("." not in k and "/" not in k for k in keys)
    assert keys[1] == "x_1"  # a clean id is its own key


def test_colliding_and_repeated_ids_all_come_back(clips, tmp_path):
    root, _ = clips
    write_shards(root / "clips.jsonl", tmp_path / "s", max_count=4)  # the repeated "x_1" lands in shards 0 and 1
    write_shards(root / "clips.jsonl", tmp_path / "one", max_count=100)  # ... and here twice in one shard
    keys = [key for key, _ in iter_tar_samples(str(tmp_path / "one" / "shard-000000.tar"))]
    assert len(keys) == len(set(keys)) == len(IDS) and "x_1~5" in keys
    listing = json.loads((tmp_path / "s" / "shards.json").read_text())
    samples = [s for s in ShardDataset(tmp_path / "s", num_frames=2)]
    assert not [s for s in samples if isinstance(s, FailedSample)]
    # Every record comes back once: the count in shards.json, the reader's count and the manifest agree.
    assert listing["total"] == len(samples) == len(IDS)
    assert sorted(s["texts"]["caption"] for s in samples) == sorted(f"caption {n}" for n in range(len(IDS)))
    assert sorted(map(str, (s["id"] for s in samples))) == sorted(map(str, IDS))
    # The webdataset library agrees.
    library = list(wds.WebDataset(sorted(str(p) for p in (tmp_path / "s").glob("*.tar")), shardshuffle=False))
    # Keys are unique within a shard (what readers group by); a repeated id in another shard is another sample.
    assert len(library) == len(IDS) and len({(s["__url__"], s["__key__"]) for s in library}) == len(IDS)


def test_writer_refuses_a_repeated_key(tmp_path):
    with pytest.raises(ValueError, match="already in"):
        with ShardWriter(tmp_path / "s-%02d.tar") as writer:
            writer.write("a", {"txt": b"1"})
            writer.write("a", {"txt": b"2"})


def test_webdataset_library_reads_vidla_shards(clips, tmp_path):
    root, video = clips
    paths = write_shards(root / "clips.jsonl", tmp_path / "s", max_count=100)
    samples = list(wds.WebDataset([str(p) for p in paths], shardshuffle=False).decode())
    assert len(samples) == len(IDS)
    for sample in samples:
        assert sample["mp4"] == video.read_bytes()
        assert sample["json"]["video"] == f"{sample['__key__']}.mp4"
    assert sorted(s["json"]["texts"]["caption"] for s in samples) == sorted(f"caption {n}" for n in range(len(IDS)))


def _library_shard(path, video_bytes, with_json):
    """A shard as the webdataset library's TarWriter writes it, laid out like video2dataset's output."""
    with wds.TarWriter(str(path)) as sink:
        for n in range(3):
            sample = {"__key__": f"{n:09d}", "mp4": video_bytes, "txt": f"a caption {n}"}
            if with_json:
                sample["json"] = {"url": f"https://example.com/{n}.mp4", "key": f"{n:09d}", "status": "success",
                                  "caption": f"a caption {n}", "duration": 0.32}
            sink.write(sample)


@pytest.mark.parametrize("with_json", [True, False])
def test_vidla_reads_library_and_video2dataset_shards(clips, tmp_path, with_json):
    _, video = clips
    _library_shard(tmp_path / "00000.tar", video.read_bytes(), with_json)
    samples = list(ShardDataset(str(tmp_path / "00000.tar"), num_frames=4))
    assert [s["id"] for s in samples] == [f"{n:09d}" for n in range(3)]
    assert [s["texts"] for s in samples] == [{"caption": f"a caption {n}"} for n in range(3)]
    expected = load_video(video, num_frames=4)
    for sample in samples:
        assert torch.equal(sample["video"], expected)
    assert [read_frame_index(f) for f in samples[0]["video"]] == [read_frame_index(f) for f in expected]


def test_a_sample_without_video_is_named(tmp_path):
    buffer = io.BytesIO(b"hello")
    with tarfile.open(tmp_path / "t.tar", "w") as tar:
        info = tarfile.TarInfo("k.txt")
        info.size = 5
        tar.addfile(info, buffer)
    (sample,) = list(ShardDataset(str(tmp_path / "t.tar")))
    assert isinstance(sample, FailedSample) and "no video member" in sample.error and "t.tar:k" in sample.video
    assert list(iter_tar_samples(str(tmp_path / "t.tar"))) == [("k", {"txt": b"hello"})]


def test_a_repeated_member_is_dropped_and_reading_goes_on(tmp_path, caplog):
    with tarfile.open(tmp_path / "t.tar", "w") as tar:
        for name, data in (("a.txt", b"1"), ("a.txt", b"2"), ("b.txt", b"3")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert list(iter_tar_samples(str(tmp_path / "t.tar"))) == [("a", {"txt": b"1"}), ("b", {"txt": b"3"})]
    assert "t.tar: dropping a member" in caplog.text and "duplicate file name" in caplog.text
