import json
from pathlib import Path

import pytest
from _curate_synth import OUTPUTS, ChatServer, FakeCaptioner, FakeGenerator, make_corpus

from vidla.curate.clipping import DEFAULT_SCALES
from vidla.curate.config import load_config
from vidla.curate.pipeline import merge_shards, read_sources, run_curation
from vidla.curate.stats import manifest_stats
from vidla.data.manifest import iter_manifest

@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def config_for(corpus: Path, output: Path, **sections):
    base = {"input": str(corpus), "output": str(output), "run": {"progress": False},
            "captions": {"backend": {"kind": "python", "model": "fake"}},
            "summaries": {"backend": {"kind": "python", "model": "fake"}}}
    for key, value in sections.items():
        base.setdefault(key, {}).update(value)
    return load_config(base=base)


def run(corpus, output, captioner=None, generator=None, shard=(0, 1), stages=None, **sections):
    kwargs = {"stages": stages} if stages else {}
    return run_curation(config_for(corpus, output, **sections), shard, captioner=captioner or FakeCaptioner(),
                        generator=generator or FakeGenerator(), **kwargs)


def read_outputs(output: Path) -> dict[str, bytes]:
    return {name: (output / name).read_bytes() for name in OUTPUTS}


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("reference")
    report = run(corpus, output)
    assert (report.videos, report.done, report.failed, report.pending) == (6, 4, 2, 0)
    return output


def test_sources_from_folder_and_manifest(corpus, tmp_path):
    ids = [v.id for v in read_sources(corpus)]
    assert ids == ["broken", "silent", "v0", "v1", "v2", "v3"]
    manifest = tmp_path / "sources.jsonl"
    manifest.write_text(json.dumps({"video": str(corpus / "v0.mp4"), "id": "first",
                                    "subtitles": str(corpus / "v2.vtt")}) + "\n")
    [video] = read_sources(manifest)
    assert (video.id, video.subtitles) == ("first", corpus / "v2.vtt")
    manifest.write_text(manifest.read_text() * 2)
    with pytest.raises(ValueError, match="appears twice"):
        read_sources(manifest)


def test_manifest_is_ready_for_training(reference, corpus):
    records = list(iter_manifest(reference / "manifest.jsonl"))  # the reader `vidla train` uses
    assert records
    bounds = {s.name: s for s in DEFAULT_SCALES}
    for record in records:
        assert record.resolve(reference).resolve().is_file()
        assert set(record.texts) == {"caption", "subtitle"} and all(record.texts.values())
        scale = bounds[record.extra["scale"]]
        assert scale.min <= record.end - record.start <= scale.max
        if scale.name != "short":  # summarised: the fake keeps eight words
            assert all(len(text.split()) <= 8 for text in record.texts.values())
    assert {r.extra["source_id"] for r in records} == {"v0", "v1", "v2", "v3"}
    from vidla.data import VideoTextDataset  # what `vidla train` reads a manifest with

    dataset = VideoTextDataset(reference / "manifest.jsonl", num_frames=4, text_kinds=["caption", "subtitle"])
    for index in range(0, len(dataset), 7):
        sample = dataset[index]
        assert sample["video"].shape[0] == 4 and sample["texts"] == records[index].texts, sample
    assert len({r.id for r in records}) == len(records)
    stats = json.loads((reference / "stats.json").read_text())
    assert stats["scales"] == manifest_stats(records).to_json()["scales"]
    assert (stats["videos"], stats["videos_done"], stats["videos_failed"]) == (6, 4, 2)


def test_failures_are_recorded_with_their_error(reference):
    failures = [json.loads(line) for line in (reference / "failures.jsonl").read_text().splitlines()]
    assert [(f["id"], f["stage"]) for f in failures] == [("broken", "subtitles"), ("silent", "subtitles")]
    assert "broken.mp4" in failures[0]["error"]
    assert "no subtitle stream" in failures[1]["error"]


def test_rerun_skips_finished_work(reference, corpus):
    before = read_outputs(reference)
    captioner, generator = FakeCaptioner(), FakeGenerator()
    report = run(corpus, reference, captioner, generator, run={"retry_failed": False, "progress": False})
    assert captioner.calls == 0 and generator.prompts == []
    assert report.done == 4 and read_outputs(reference) == before


def test_changing_clips_keeps_captions(reference, corpus, tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    (output / "state.sqlite").write_bytes((reference / "state.sqlite").read_bytes())
    captioner, generator = FakeCaptioner(), FakeGenerator()
    scales = [{"name": "short", "target": 13.2, "min": 6, "max": 20}, {"name": "medium", "target": 25, "min": 15,
                                                                       "max": 35}]
    run(corpus, output, captioner, generator, clips={"scales": scales})
    assert captioner.calls == 0 and generator.prompts  # new clips, new summaries, the same frame captions
    assert (output / "manifest.jsonl").read_bytes() != (reference / "manifest.jsonl").read_bytes()


class FlakyCaptioner(FakeCaptioner):
    """Fails on its first `failures` calls."""

    def __init__(self, failures: int):
        super().__init__()
        self.failures = failures

    def caption(self, frames):
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the GPU fell off the bus")
        return super().caption(frames)


def test_a_failing_video_does_not_stop_the_others_and_is_retried(corpus, reference, tmp_path):
    report = run(corpus, tmp_path, FlakyCaptioner(1))
    assert (report.done, report.failed) == (3, 3)
    failures = (tmp_path / "failures.jsonl").read_text()
    assert '"stage":"captions"' in failures and "fell off the bus" in failures
    report = run(corpus, tmp_path, FakeCaptioner(), run={"retry_failed": False, "progress": False})
    assert report.failed == 3  # told not to retry
    report = run(corpus, tmp_path, FakeCaptioner())
    assert (report.done, report.failed) == (4, 2)
    assert read_outputs(tmp_path) == read_outputs(reference)


def test_shards_merge_into_the_unsharded_output(corpus, reference, tmp_path):
    for index in range(3):
        report = run(corpus, tmp_path, shard=(index, 3))
        assert report.videos == 2 and (tmp_path / f"stats-{index:05d}-of-00003.json").is_file()
        if index == 1:
            with pytest.raises(FileNotFoundError, match="stats-00002-of-00003.json"):
                merge_shards(tmp_path)
    merge_shards(tmp_path)
    assert read_outputs(tmp_path) == read_outputs(reference)


def test_stages_run_separately(corpus, reference, tmp_path):
    captioner = FakeCaptioner()
    report = run(corpus, tmp_path, captioner, stages=["subtitles", "sentences", "clips"])
    assert report.pending == 4 and report.failed == 2 and not (tmp_path / "manifest.jsonl").exists()
    assert captioner.calls == 0
    report = run(corpus, tmp_path, stages=["captions"])
    assert (report.pending, report.failed) == (4, 2) and not (tmp_path / "manifest.jsonl").exists()
    captioner = FakeCaptioner()
    report = run(corpus, tmp_path, captioner, stages=["texts"])
    assert captioner.calls == 0 and report.done == 4
    assert read_outputs(tmp_path) == read_outputs(reference)


def test_backends_must_be_named(corpus, tmp_path):
    config = load_config(base={"input": str(corpus), "output": str(tmp_path)})
    with pytest.raises(ValueError, match="captioner: no backend chosen.*--captioner none"):
        run_curation(config)


def test_no_captioner_keeps_subtitles_only(corpus, tmp_path):
    config = load_config(base={"input": str(corpus), "output": str(tmp_path), "run": {"progress": False},
                               "captions": {"backend": {"kind": "none"}},
                               "summaries": {"backend": {"kind": "none"}}})
    report = run_curation(config)
    assert report.done == 4
    records = list(iter_manifest(tmp_path / "manifest.jsonl"))
    assert all(set(r.texts) == {"subtitle"} for r in records)


def test_parallel_workers_give_the_same_output(corpus, reference, tmp_path):
    run(corpus, tmp_path, run={"workers": 3, "progress": False})
    assert read_outputs(tmp_path) == read_outputs(reference)


def test_cli_with_http_backends(corpus, tmp_path, capsys):
    from vidla.cli import main

    server = ChatServer()
    try:
        args = ["curate", "run", "--input", str(corpus), "--output", str(tmp_path), "--no-progress",
                "--captioner", "openai", "--captioner-model", "vlm", "--captioner-url", server.url,
                "--summarizer", "openai", "--summarizer-model", "llm", "--summarizer-url", server.url,
                "--workers", "2", "--concurrency", "3", "--set", "captions.fps=0.2"]
        assert main(args) == 0
        printed = capsys.readouterr().out
        assert "6 videos: 4 done, 2 failed" in printed and "mean s" in printed
        requests = len(server.requests)
        assert main(args) == 0  # everything is in the state store: no request
        assert len(server.requests) == requests
    finally:
        server.close()
    records = list(iter_manifest(tmp_path / "manifest.jsonl"))
    assert all(r.texts["caption"] and r.texts["subtitle"] for r in records)
    capsys.readouterr()
    assert main(["curate", "stats", str(tmp_path / "manifest.jsonl"), "--json", str(tmp_path / "s.json")]) == 0
    assert "short" in capsys.readouterr().out and (tmp_path / "s.json").is_file()
    assert main(["curate", "status", str(tmp_path)]) == 0
    status = capsys.readouterr().out
    assert "captions" in status and "failed: broken [subtitles" in status
    assert main(["curate", "inspect", str(corpus / "v2.vtt")]) == 0
    assert "sentences" in capsys.readouterr().out


def test_cli_reports_config_errors(corpus, tmp_path, capsys):
    from vidla.cli import main

    assert main(["curate", "run", "--input", str(corpus), "--output", str(tmp_path)]) == 2
    assert "no backend chosen" in capsys.readouterr().err
    assert main(["curate", "run", "--input", str(corpus), "--output", str(tmp_path), "--captioner", "none",
                 "--summarizer", "none", "--shard", "3/2"]) == 2
    assert main(["curate", "merge", str(tmp_path)]) == 2


@pytest.mark.parametrize("path", sorted(Path(__file__).resolve().parents[2].glob("configs/curate/*.yaml")),
                         ids=lambda p: p.name)
def test_shipped_configs_load(path):
    config = load_config(path, [f"input={path.parent}", "output=/tmp/unused"])
    assert config.captions.backend.kind in ("hf", "openai", "none")
    assert config.summaries.backend.kind in ("hf", "openai", "none")


def test_webdataset_export(reference, tmp_path):
    import io
    import tarfile

    import av
    import numpy as np
    from _curate_synth import PALETTE

    from vidla.cli import main
    from vidla.data.shards import ShardDataset

    records = list(iter_manifest(reference / "manifest.jsonl"))[:5]
    manifest = reference / "first-five.jsonl"
    manifest.write_text("".join(json.dumps(r.to_json()) + "\n" for r in records))
    assert main(["curate", "export", str(manifest), "--output", str(tmp_path), "--clips-per-shard", "3",
                 "--no-progress"]) == 0
    shards = sorted(tmp_path.glob("shard-*.tar"))
    assert [p.name for p in shards] == ["shard-000000.tar", "shard-000001.tar"]
    members = {}
    for shard in shards:
        with tarfile.open(shard) as tar:
            members.update({m.name: tar.extractfile(m).read() for m in tar.getmembers()})
    assert len(members) == 10
    for record in records:
        key = record.id.replace("#", "%23")  # ids are percent-encoded into keys (one-to-one)
        meta = json.loads(members[f"{key}.json"])
        assert meta["video"] == f"{key}.mp4" and meta["texts"] == record.texts
        assert (meta["source_start"], meta["source_end"]) == (record.start, record.end)
        with av.open(io.BytesIO(members[f"{key}.mp4"])) as clip:
            frames = [(f.time, f.to_ndarray(format="rgb24")) for f in clip.decode(video=0)]
        assert abs(len(frames) / 2 - (record.end - record.start)) <= 1.0  # 2 fps sources
        for time, image in frames[::4]:  # the source's colour at that time, give or take a frame
            colours = {PALETTE[int((record.start + time + shift) // 10) % len(PALETTE)] for shift in (-0.5, 0, 0.5)}
            assert min(np.abs(image.reshape(-1, 3).mean(0) - c).max() for c in colours) < 12
    samples = list(ShardDataset(str(tmp_path), num_frames=4))  # what `vidla train` streams
    assert [s["id"] for s in samples] == [r.id for r in records]
    assert all(s["video"].shape[0] == 4 for s in samples)
