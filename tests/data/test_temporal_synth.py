"""The synthetic temporal benchmark: twins hold the same events in another order, and nothing else differs."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np

from vidla.data import load_video, read_manifest
from vidla.data.temporal_synth import SCALES, Event, caption, generate, render_event, twin_order


def test_twin_orders():
    rng = np.random.default_rng(0)
    events = [Event(c, "square", "grows") for c in ("red", "green", "blue", "yellow", "purple", "white", "red", "blue")]
    assert twin_order(events[:2], "short", rng) == events[:2][::-1]
    long_twin = twin_order(events, "long", rng)
    assert long_twin[:6] == events[:6] and long_twin[6:] == [events[7], events[6]]  # only the end differs
    medium = twin_order(events[:4], "medium", rng)
    assert sorted(map(str, medium)) == sorted(map(str, events[:4])) and medium != events[:4]
    assert caption(events[:2], "short") == "a red square grows, then a green square grows"


def test_generated_benchmark(tmp_path):
    paths = generate(tmp_path, num_clips=24, seed=1, progress=False)
    train, test = read_manifest(paths["train"]), read_manifest(paths["test"])
    records = {r.id: r for r in train + test}
    assert len(records) == 24
    for record in records.values():
        twin = records[record.extra["twin"]]
        assert twin.extra["twin"] == record.id and twin.extra["scale"] == record.extra["scale"]
        assert record.texts["caption"] != twin.texts["caption"] and record.texts["subtitle"]
        assert (tmp_path / record.video).is_file()
    # twins are consecutive in their manifest (training keeps them in one batch with data.group_size=2)
    assert all(train[i].extra["twin"] == train[i + 1].id for i in range(0, len(train), 2))
    # a twin's frames are the same frames in another order: uniform sampling of a multiple of the event count
    record = next(r for r in records.values() if r.extra["scale"] == "medium")
    frames = load_video(tmp_path / record.video, num_frames=8).numpy().astype(int)
    twin_frames = load_video(tmp_path / records[record.extra["twin"]].video, num_frames=8).numpy().astype(int)
    matched = [min(np.abs(f - g).mean() for g in twin_frames) for f in frames]
    assert max(matched) < 2.0  # every frame has a near-identical frame in the twin (lossy coding aside)
    assert np.abs(frames - twin_frames).mean() > 5  # but not at the same positions
    assert json.loads((tmp_path / "README.json").read_text())["clips"] == 24
    assert set(Counter(r.extra["scale"] for r in records.values())) <= set(SCALES)


def test_rendering_is_deterministic_and_moves():
    event = Event("blue", "circle", "moves right")
    a, b = render_event(event, 8, 32, seed=3), render_event(event, 8, 32, seed=3)
    assert np.array_equal(a, b) and a.shape == (8, 32, 32, 3)
    blue = [np.argwhere((f == (60, 90, 235)).all(-1))[:, 1].mean() for f in a]
    assert all(x < y for x, y in zip(blue, blue[1:]))  # the circle's centre moves right frame by frame


def test_idle_variant_places_brief_events_between_empty_stretches(tmp_path):
    from vidla.data.temporal_synth import BACKGROUND

    paths = generate(tmp_path, num_clips=4, seed=2, size=32, frames_per_event=2, idle_frames=6,
                     mix={"medium": 1.0}, progress=False)
    records = {r.id: r for split in paths.values() for r in read_manifest(split)}
    for record in records.values():
        starts = record.extra["event_starts"]
        assert record.extra["duration"] == 4 * 8 / 8 and starts == records[record.extra["twin"]].extra["event_starts"]
        assert all(slot * 8 <= s <= slot * 8 + 6 for slot, s in enumerate(starts))  # inside its own slot
        frames = load_video(tmp_path / record.video, num_frames=32).numpy().astype(int)  # every frame
        busy = [np.abs(f - BACKGROUND).max() > 60 for f in frames]  # a coloured shape is on screen
        assert busy == [any(s <= i < s + 2 for s in starts) for i in range(32)]


def _frames_digest(monkeypatch, tmp_path, **options) -> str:
    """sha256 of every clip's raw frames (before H.264, so independent of the encoder's version) and the
    manifests + README.json."""
    import hashlib

    import vidla.data.temporal_synth as synth

    digest = hashlib.sha256()

    def capture(path, frames, fps, crf=18):
        digest.update(path.name.encode())
        digest.update(np.stack(list(frames)).tobytes())
        return path

    monkeypatch.setattr(synth, "write_mp4", capture)
    synth.generate(tmp_path, progress=False, **options)
    for path in sorted(tmp_path.glob("*.json*")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_default_clips_unchanged_by_the_distractor_option(monkeypatch, tmp_path):
    # digests computed with the generator as it was before `distractors` existed (main at f302167)
    assert _frames_digest(monkeypatch, tmp_path / "a", num_clips=8, seed=3, size=16, frames_per_event=2) == \
        "ef0c1949fe654a6ee5972795b68aa48063539dfe2be31182b6e0620794e240db"
    assert _frames_digest(monkeypatch, tmp_path / "b", num_clips=8, seed=4, size=16, frames_per_event=2,
                          idle_frames=3, distractors=0) == \
        "b4f856aeb0b8d739854869edb531331b469b11fcea08b4e7b76f7284a69ffe2e"


def test_distractors_are_shown_but_never_named(tmp_path):
    from vidla.data.temporal_synth import BACKGROUND, COLOURS

    paths = generate(tmp_path, num_clips=4, seed=5, size=48, frames_per_event=2, idle_frames=6, distractors=2,
                     mix={"short": 1.0}, progress=False)
    records = {r.id: r for split in paths.values() for r in read_manifest(split)}
    for record in records.values():
        starts, extra = record.extra["event_starts"], record.extra["distractor_starts"]
        twin = records[record.extra["twin"]]
        assert len(starts) == 2 and len(extra) == 2 and record.extra["duration"] == 4 * 8 / 8
        assert (starts, extra) == (twin.extra["event_starts"], twin.extra["distractor_starts"])
        slots = sorted(s // 8 for s in starts + extra)
        assert slots == [0, 1, 2, 3]  # every slot holds one event, mentioned or not
        assert [seg["start"] * 8 for seg in record.extra["segments"]] == starts  # segments: mentioned only
        frames = load_video(tmp_path / record.video, num_frames=32).numpy().astype(int)  # every frame
        busy = [np.abs(f - BACKGROUND).max() > 60 for f in frames]
        assert busy == [any(s <= i < s + 2 for s in starts + extra) for i in range(32)]
        # what is on screen at each start: the mentioned events' colours are in the caption, the distractors' not
        texts = record.texts["caption"] + " " + record.texts["subtitle"]

        def named(start: int) -> bool:
            # the shape on screen, read from the pixels: its colour, and its shape from how much of its bounding
            # box it fills (square 1, circle pi/4, triangle 1/2)
            mask = np.abs(frames[start] - BACKGROUND).max(-1) > 60
            colour = min(COLOURS, key=lambda c: np.abs(np.array(COLOURS[c]) - frames[start][mask].mean(0)).sum())
            rows, cols = np.nonzero(mask)
            fill = mask.sum() / ((np.ptp(rows) + 1) * (np.ptp(cols) + 1))
            shape = "square" if fill > 0.95 else "circle" if fill > 0.69 else "triangle"
            return f"{colour} {shape}" in texts

        assert all(named(s) for s in starts) and not any(named(s) for s in extra)
    assert json.loads((tmp_path / "README.json").read_text())["distractors"] == 2


def test_synth_command_passes_the_variants_on(tmp_path):
    from vidla.cli import main

    assert main(["data", "synth", str(tmp_path / "cli"), "--num-clips", "4", "--size", "32", "--frames-per-event",
                 "4", "--idle-frames", "4", "--distractors", "1"]) == 0
    generate(tmp_path / "api", num_clips=4, size=32, frames_per_event=4, idle_frames=4, distractors=1,
             progress=False)
    for split in ("train", "test"):
        cli, api = [(tmp_path / run / f"{split}.jsonl").read_text() for run in ("cli", "api")]
        assert cli == api
    rows = [json.loads(line) for line in (tmp_path / "cli" / "train.jsonl").read_text().splitlines()]
    assert all(len(r["distractor_starts"]) == 1 and r["event_starts"] for r in rows)
