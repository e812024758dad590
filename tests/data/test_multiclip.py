"""Multi-clip samples (LF-VILA's MTC input): windows of M consecutive timed sentences, from ActivityNet, DiDeMo,
the curation output and the synthetic temporal benchmark, and their frames."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from vidla.data import load_benchmark
from vidla.data.manifest import ClipRecord, write_manifest
from vidla.data.multiclip import (Segment, didemo_seconds, from_benchmark, from_curation, from_segments,
                                  read_multi_clip, segments_of, windows)
from vidla.data.synthetic import read_frame_index, write_video


@pytest.fixture(scope="module")
def counted(tmp_path_factory) -> Path:
    """10 s at 10 fps; every frame spells its index."""
    return write_video(tmp_path_factory.mktemp("mc") / "counted.mp4", num_frames=100, fps=10, keyframe_interval=10)


def test_windows_of_consecutive_sentences():
    segments = [Segment(8, 10, "five"), Segment(0, 2, "one"), Segment(4, 6, "three"), Segment(2, 4, "two"),
                Segment(6, 8, "four"), Segment(10, 12, "six"), Segment(5, 5, "empty"), Segment(12, 13, "  ")]
    out = windows(ClipRecord(video="v.mp4", id="v", extra={"keep": 1}), segments, clips=4)
    # 6 usable sentences: 0..3, and one window ending at the last (2..5)
    assert [r.id for r in out] == ["v#w0", "v#w1"]
    assert out[0].texts["caption"] == "one two three four" and (out[0].start, out[0].end) == (0, 8)
    assert [c["text"] for c in out[1].extra["clips"]] == ["three", "four", "five", "six"]
    assert out[1].extra["source_id"] == "v" and out[1].extra["window"] == 1 and out[1].extra["keep"] == 1
    assert segments_of(out[1]) == [Segment(4, 6, "three"), Segment(6, 8, "four"), Segment(8, 10, "five"),
                                   Segment(10, 12, "six")]
    assert windows(ClipRecord(video="v.mp4"), segments[:3], clips=4) == []  # fewer sentences than clips


def test_segments_of_rejects_records_that_are_not_multi_clip():
    with pytest.raises(ValueError, match="record a: not a multi-clip sample"):
        segments_of(ClipRecord(video="x.mp4", id="a"))
    with pytest.raises(ValueError, match="record b: a clip needs start, end and text"):
        segments_of(ClipRecord(video="x.mp4", id="b", extra={"clips": [{"start": 0, "text": "x"}]}))
    with pytest.raises(ValueError, match=r"record c: clip \[3.0, 1.0\] is empty"):
        segments_of(ClipRecord(video="x.mp4", id="c", extra={"clips": [{"start": 3, "end": 1, "text": "x"}]}))


def test_from_activitynet(tmp_path, counted):
    annotations = {"v_abc": {"duration": 10.0, "sentences": ["C.", "A.", "B.", "E.", "D."],
                             "timestamps": [[4, 6], [0, 2], [2, 4], [8, 10], [6, 8]]},
                   "v_short": {"duration": 10.0, "sentences": ["x.", "y."], "timestamps": [[0, 5], [5, 10]]}}
    (tmp_path / "val_1.json").write_text(json.dumps(annotations))
    (tmp_path / "videos").mkdir()
    shutil.copyfile(counted, tmp_path / "videos" / "v_abc.mp4")
    out = from_benchmark(load_benchmark("activitynet", tmp_path, "val1"), clips=4)
    assert [r.id for r in out] == ["v_abc#w0", "v_abc#w1"]  # v_short has 2 sentences: no sample
    assert out[0].texts["caption"] == "A. B. C. D." and out[1].texts["caption"] == "B. C. D. E."
    assert [(c["start"], c["end"]) for c in out[1].extra["clips"]] == [(2, 4), (4, 6), (6, 8), (8, 10)]
    assert Path(out[0].video).name == "v_abc.mp4"


def test_from_didemo(tmp_path):
    rows = [{"video": "a.mp4", "description": d, "times": t} for d, t in
            [("third", [[2, 2], [2, 2], [2, 3]]), ("first", [[0, 0]]), ("second", [[1, 1], [1, 2], [1, 2]]),
             ("fourth", [[4, 5], [4, 5]])]]
    (tmp_path / "test_data.json").write_text(json.dumps(rows))
    out = from_benchmark(load_benchmark("didemo", tmp_path, "test"), clips=4)
    assert len(out) == 1 and out[0].texts["caption"] == "first second third fourth"
    assert [(c["start"], c["end"]) for c in out[0].extra["clips"]] == [(0, 5), (5, 15), (10, 15), (20, 30)]
    assert didemo_seconds([[1, 1], [3, 3]]) == (5.0, 10.0)  # a tie: the first choice
    with pytest.raises(ValueError, match="msrvtt: video v1 has no time-stamped sentences"):
        from_benchmark(type("Split", (), {"name": "msrvtt", "videos": [ClipRecord(video="v", id="v1")]})())


def test_from_curation():
    def clip(source, scale, start, text):
        return ClipRecord(video=f"{source}.mp4", id=f"{source}#{scale}{start}", start=start, end=start + 13,
                          texts={"caption": text, "subtitle": "sub " + text},
                          extra={"source_id": source, "scale": scale})

    records = [clip("s", "13s", t, f"c{t}") for t in (39, 0, 13, 26, 52)] + [clip("s", "30s", 0, "long")] + \
        [clip("u", "13s", t, f"u{t}") for t in (0, 13, 26, 39)]
    records[-1].texts.pop("caption")
    out = from_curation(records, clips=4)
    assert [r.id for r in out] == ["s#13s#w0", "s#13s#w1", "u#13s#w0"]
    assert out[0].texts["caption"] == "c0 c13 c26 c39" and out[1].texts["caption"] == "c13 c26 c39 c52"
    assert out[2].texts["caption"] == "u0 u13 u26 sub u39"  # no caption: the subtitle
    with pytest.raises(ValueError, match="record x: not from `vidla curate`"):
        from_curation([ClipRecord(video="x.mp4", id="x")])


def test_from_the_synthetic_temporal_benchmark(tmp_path):
    from vidla.data.manifest import read_manifest
    from vidla.data.temporal_synth import generate

    paths = generate(tmp_path, num_clips=4, seed=0, mix={"medium": 1.0}, progress=False, test_fraction=0.5)
    records = read_manifest(paths["train"])
    out = from_segments(records, clips=4)
    assert len(out) == len(records) == 2  # 4 events per clip: one window each
    for record, sample in zip(records, out):
        clips = sample.extra["clips"]
        assert [(c["start"], c["end"]) for c in clips] == [(0, 1), (1, 2), (2, 3), (3, 4)]  # 8 frames at 8 fps each
        # the sentences are the caption's events, in order
        assert record.texts["caption"].lower() == ", then ".join(c["text"].rstrip(".").lower() for c in clips)
        assert sample.extra["twin"] == record.extra["twin"]


def test_cli_writes_multi_clip_manifests(tmp_path, counted, capsys):
    from vidla.cli import main
    from vidla.data.manifest import read_manifest

    (tmp_path / "val_1.json").write_text(json.dumps({"v_abc": {
        "duration": 10.0, "sentences": ["A.", "B.", "C.", "D."], "timestamps": [[0, 2], [2, 4], [4, 6], [6, 8]]},
        "v_two": {"duration": 5.0, "sentences": ["x.", "y."], "timestamps": [[0, 2], [2, 4]]}}))
    assert main(["data", "multiclip", "activitynet", str(tmp_path / "an.jsonl"), "--root", str(tmp_path),
                 "--split", "val1"]) == 0
    assert "1 samples of 4 clips from 1 of 2 sources (1 with fewer than 4" in capsys.readouterr().out
    assert [r.texts["caption"] for r in read_manifest(tmp_path / "an.jsonl")] == ["A. B. C. D."]
    curated = [ClipRecord(video=str(counted), id=f"s#13s{i}", start=2.0 * i, end=2.0 * i + 2,
                          texts={"caption": f"c{i}"},
                          extra={"source_id": "s", "scale": "13s"}) for i in range(4)]
    write_manifest(tmp_path / "curated.jsonl", curated)
    assert main(["data", "multiclip", str(tmp_path / "curated.jsonl"), str(tmp_path / "mc.jsonl"), "--clips", "2"]) == 0
    assert [r.texts["caption"] for r in read_manifest(tmp_path / "mc.jsonl")] == ["c0 c1", "c2 c3"]
    assert main(["data", "multiclip", "didemo", str(tmp_path / "x.jsonl")]) == 2  # no --root


def test_read_multi_clip_samples_each_clip_within_its_times(counted):
    segments = [Segment(0.0, 2.0, "a"), Segment(5.0, 6.0, "b"), Segment(9.0, 12.0, "c")]
    frames = read_multi_clip(counted, segments, frames_per_clip=2)
    assert frames.shape == (6, 48, 64, 3) and frames.dtype == torch.uint8
    # uniform: centres of 2 halves of each clip (the third is clamped to the video's end at 10 s)
    assert [read_frame_index(f.numpy()) for f in frames] == [5, 15, 52, 57, 92, 97]


def test_read_multi_clip_scales_in_the_decoder_as_read_clip_does(counted):
    from vidla.data.video import read_clip

    segments = [Segment(0.0, 2.0, "a"), Segment(5.0, 6.0, "b")]
    frames = read_multi_clip(counted, segments, frames_per_clip=2, resize_to=24)
    expected = torch.cat([read_clip(counted, 2, start=s.start, end=s.end, resize_to=24).frames for s in segments])
    assert frames.shape == (4, 24, 32, 3) and torch.equal(frames, expected)


def test_multi_clip_training_samples(tmp_path, counted):
    from vidla.train.clips import MultiClipSamples

    record = windows(ClipRecord(video=str(counted), id="c"), [Segment(2 * i, 2 * i + 2, f"s{i}") for i in range(4)])
    write_manifest(tmp_path / "mc.jsonl", record)
    dataset = MultiClipSamples(str(tmp_path / "mc.jsonl"), clips=4, num_frames=8, image_size=32, augment=False)
    sample = dataset[0]
    assert sample["video"].shape == (8, 3, 32, 32) and sample["sentences"] == ["s0", "s1", "s2", "s3"]
    assert sample["texts"] == {"caption": "s0 s1 s2 s3"}
    with pytest.raises(ValueError, match="mc.jsonl: sample c#w0 has 4 clips, training expects data.clips=2"):
        MultiClipSamples(str(tmp_path / "mc.jsonl"), clips=2, num_frames=8, image_size=32)
