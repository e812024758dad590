import json

from vidla.cli import main
from vidla.data.index import ClipIndex
from vidla.data.manifest import ClipRecord, write_manifest
from vidla.data.synthetic import read_frame_index
from vidla.data.video import load_video


def test_probe(videos, capsys):
    assert main(["data", "probe", str(videos["h264.mp4"]), str(videos["rotate90.mp4"])]) == 0
    out = capsys.readouterr().out
    assert "h264" in out and "64x48" in out and "4.000 s" in out and "25.000 fps" in out and "rotated 90 deg" in out
    assert main(["data", "probe", "--json", str(videos["vp9.webm"])]) == 0
    assert json.loads(capsys.readouterr().out)["codec"] == "vp9"
    assert main(["data", "probe", str(videos["h264.mp4"].parent / "absent.mp4")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_frames_writes_the_sampled_frames(videos, tmp_path, capsys):
    assert main(["data", "frames", str(videos["h264.mp4"]), str(tmp_path / "out"), "-n", "4"]) == 0
    written = sorted((tmp_path / "out").glob("*.png"))
    assert len(written) == 4 and written[0].name == "frame_000_00000.480s.png"
    assert read_frame_index(load_video(written[1], 1, frame_rate=1)[0]) == 37  # a PNG file reads as a 1-frame video


def test_verify_index_and_shards(videos, tmp_path, capsys):
    records = [ClipRecord(video=str(videos["h264.mp4"]), id="good", texts={"caption": "c"}),
               ClipRecord(video="missing.mp4", id="gone")]
    write_manifest(tmp_path / "clips.jsonl", records)
    assert main(["data", "verify", str(tmp_path / "clips.jsonl")]) == 1
    assert "missing: gone" in capsys.readouterr().out
    assert main(["data", "index", str(tmp_path / "clips.jsonl"), str(tmp_path / "clips.sqlite")]) == 0
    assert len(ClipIndex(tmp_path / "clips.sqlite")) == 2
    assert main(["data", "shards", str(tmp_path / "clips.sqlite"), str(tmp_path / "shards")]) == 0
    assert "1 shards, 1 clips (1 missing videos left out)" in capsys.readouterr().out


def test_benchmarks_listing(capsys):
    assert main(["data", "benchmarks"]) == 0
    out = capsys.readouterr().out
    assert "MSRVTT_JSFUSION_test.csv" in out and "something-something-v2-labels.json" in out
    assert main(["data"]) == 0
