"""A synthetic temporal-reasoning video-text benchmark (procedural, numpy; written as real mp4 files).

Each clip is a sequence of events — a coloured shape that appears, moves, grows or shrinks — one event per
equal-length segment, rendered independently of its position in the clip. Every clip has a **twin** with the
same events in another order: short clips (2 events) reversed, medium ones (4 events) with two neighbouring
events swapped, long ones (8 events) with their last two events swapped, so the twins differ only in order,
and for long clips only late in the clip. With uniform sampling of a multiple of the event count, twins give
the same multiset of frames: a design blind to frame order (mean pooling) cannot tell them apart, and twin
accuracy (a caption scoring its own clip above its twin) sits at 50% for it.

With `idle_frames` > 0 (the variant where key-frame selection matters, SPEC 5.2) each event is brief and sits
at a random place inside a slot of its length plus `idle_frames` frames of empty background; twins share the
places. A model that sees a few uniformly spaced frames mostly sees the background.

With `distractors` > 0 each clip also shows that many distractor events, drawn like the others (a colour and
shape no mentioned event has) in slots of their own at random places among the mentioned ones, that neither
caption nor subtitle names: the variant where text-guided key-frame selection can matter (what is on screen is
not all in the text). Twins share the distractors and their slots; only the mentioned events change order.

Texts per clip: a `caption` (the events in order, "a red square moves left, then ...") and a `subtitle`
(a narrated paraphrase, "first we see ..., after that ..."). Long clips describe how they start and end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from vidla.data.manifest import ClipRecord, write_manifest

COLOURS = {"red": (220, 50, 50), "green": (50, 185, 70), "blue": (60, 90, 235), "yellow": (235, 215, 50),
           "purple": (160, 70, 210), "white": (235, 235, 235)}
SHAPES = ("square", "circle", "triangle")
ACTIONS = ("appears", "moves left", "moves right", "moves up", "moves down", "grows", "shrinks")
NARRATION = {"appears": "shows up", "moves left": "going left", "moves right": "going right",
             "moves up": "going up", "moves down": "going down", "grows": "getting bigger",
             "shrinks": "getting smaller"}
GERUND = {"appears": "appearing", "moves left": "moving left", "moves right": "moving right",
          "moves up": "moving up", "moves down": "moving down", "grows": "growing", "shrinks": "shrinking"}
SCALES = {"short": 2, "medium": 4, "long": 8}  # events per clip
BACKGROUND = 28  # grey level of the empty scene


@dataclass(frozen=True)
class Event:
    colour: str
    shape: str
    action: str

    def phrase(self) -> str:
        return f"a {self.colour} {self.shape} {self.action}"

    def gerund(self) -> str:
        return f"a {self.colour} {self.shape} {GERUND[self.action]}"

    def narration(self) -> str:
        return f"the {self.colour} {self.shape} {NARRATION[self.action]}"


def twin_order(events: Sequence[Event], scale: str, rng: np.random.Generator) -> list[Event]:
    """The same events in another order, as described in the module docstring."""
    events = list(events)
    if scale == "short":
        return events[::-1]
    i = len(events) - 2 if scale == "long" else int(rng.integers(0, len(events) - 1))
    events[i], events[i + 1] = events[i + 1], events[i]
    return events


def caption(events: Sequence[Event], scale: str) -> str:
    if scale == "long":
        return (f"it starts with {events[0].gerund()} and {events[1].gerund()}, "
                f"and ends with {events[-2].gerund()}, then {events[-1].gerund()}")
    return ", then ".join(e.phrase() for e in events)


def subtitle(events: Sequence[Event], scale: str) -> str:
    if scale == "long":
        return f"first we see {events[0].narration()}; at the end {events[-2].narration()}, " \
               f"and finally {events[-1].narration()}"
    steps = [f"first we see {events[0].narration()}"] + [f"after that {e.narration()}" for e in events[1:]]
    return "; ".join(steps)


def event_segments(events: Sequence[Event], seconds: float, starts: Sequence[float] | None = None) -> list[dict]:
    """Each event's times (`seconds` long, back to back unless `starts` are given) and its own sentence: what
    multi-clip samples (vidla.data.multiclip) are cut from."""
    starts = [i * seconds for i in range(len(events))] if starts is None else starts
    return [{"start": s, "end": s + seconds, "text": e.phrase().capitalize() + "."} for s, e in zip(starts, events)]


# ---------------------------------------------------------------------------------------------- rendering

def _shape_mask(shape: str, size: int, cx: float, cy: float, radius: float) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    if shape == "square":
        return (np.abs(x - cx) <= radius) & (np.abs(y - cy) <= radius)
    if shape == "circle":
        return (x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2
    # triangle pointing up: inside the band between the apex and the base
    top, bottom = cy - radius, cy + radius
    half_width = (y - top) / (2 * radius) * radius
    return (y >= top) & (y <= bottom) & (np.abs(x - cx) <= half_width)


def render_event(event: Event, frames: int, size: int, seed: int) -> np.ndarray:
    """[frames, size, size, 3] uint8: the event alone on a dark background, start position drawn from `seed`."""
    rng = np.random.default_rng(seed)
    margin, radius = size * 0.2, size * 0.14
    cx, cy = rng.uniform(margin, size - margin, size=2)
    out = np.empty((frames, size, size, 3), dtype=np.uint8)
    travel = size - 2 * margin
    for f in range(frames):
        progress = f / max(1, frames - 1)
        x, y, r = cx, cy, radius
        if event.action.startswith("moves"):
            direction = event.action.split()[1]
            along = margin + progress * travel if direction in ("right", "down") else size - margin - progress * travel
            x, y = (along, cy) if direction in ("left", "right") else (cx, along)
        elif event.action == "grows":
            r = radius * (0.5 + 1.0 * progress)
        elif event.action == "shrinks":
            r = radius * (1.5 - 1.0 * progress)
        frame = np.full((size, size, 3), BACKGROUND, dtype=np.uint8)
        frame[_shape_mask(event.shape, size, x, y, r)] = COLOURS[event.colour]
        out[f] = frame
    return out


def with_idle(events: Sequence[np.ndarray], offsets: Sequence[int], idle_frames: int) -> Iterable[np.ndarray]:
    """Each event's frames inside a slot of their length + `idle_frames` frames, starting `offset` frames in;
    the rest of the slot shows the empty background."""
    blank = np.full(events[0].shape[1:], BACKGROUND, dtype=np.uint8)
    for frames, offset in zip(events, offsets):
        yield from [blank] * offset
        yield from frames
        yield from [blank] * (idle_frames - offset)


def write_mp4(path: Path, frames: Iterable[np.ndarray], fps: int, crf: int = 18) -> Path:
    """Encodes RGB uint8 frames as H.264 (yuv420p) with PyAV."""
    import av

    frames = list(frames)
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.options = {"crf": str(crf), "preset": "veryfast"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


# ---------------------------------------------------------------------------------------------- the benchmark

def random_events(count: int, rng: np.random.Generator, avoid: Sequence[Event] = ()) -> list[Event]:
    """`count` distinct events (so that every order is distinguishable), none with the colour and shape of an
    event in `avoid` (so that a caption naming those never names these)."""
    events: list[Event] = []
    while len(events) < count:
        event = Event(str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES)), str(rng.choice(ACTIONS)))
        if all((event.colour, event.shape) != (e.colour, e.shape) for e in [*avoid, *events]):
            events.append(event)
    return events


def distractor_slots(mentioned: int, distractors: int, rng: np.random.Generator) -> list[int]:
    """The slots (of `mentioned` + `distractors`) that show a distractor, at random places, ascending."""
    return sorted(rng.choice(mentioned + distractors, size=distractors, replace=False).tolist())


def generate(out_dir: str | Path, num_clips: int = 400, seed: int = 0, test_fraction: float = 0.2,
             size: int = 64, fps: int = 8, frames_per_event: int = 8,
             mix: dict[str, float] | None = None, idle_frames: int = 0, distractors: int = 0,
             progress: bool = True) -> dict[str, Path]:
    """Writes `videos/*.mp4`, `train.jsonl` and `test.jsonl` (twins stay in the same split) under `out_dir`.

    num_clips is rounded down to whole twin pairs; `mix` gives the share of short/medium/long pairs
    (default 0.5/0.3/0.2); `idle_frames` > 0 makes events brief moments between idle stretches (module
    docstring; records then carry `event_starts`, the first frame of each event); `distractors` > 0 adds that
    many unmentioned events per clip (module docstring; records then also carry `distractor_starts`, and
    `event_starts` and `segments` cover the mentioned events only). Returns the manifest paths."""
    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    mix = mix or {"short": 0.5, "medium": 0.3, "long": 0.2}
    pairs = num_clips // 2
    scales = rng.choice(list(mix), size=pairs, p=np.array(list(mix.values())) / sum(mix.values()))
    test_pairs = set(rng.choice(pairs, size=max(1, round(pairs * test_fraction)), replace=False).tolist())
    records: dict[str, list[ClipRecord]] = {"train": [], "test": []}
    iterator = range(pairs)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="synthesising clips", unit="pair")
    for pair in iterator:
        scale = str(scales[pair])
        events = random_events(SCALES[scale], rng)
        # drawn only when asked for, as the idle offsets below, so the default clips stay what they were
        extras = random_events(distractors, rng, avoid=events) if distractors else []
        extra_slots = distractor_slots(len(events), distractors, rng) if distractors else []
        slots = len(events) + distractors
        renders = {e: render_event(e, frames_per_event, size, seed=seed * 1_000_003 + pair * 16 + i)
                   for i, e in enumerate(events + extras)}
        split = "test" if pair in test_pairs else "train"
        offsets = rng.integers(0, idle_frames + 1, size=slots).tolist() if idle_frames else [0] * slots
        slot = frames_per_event + idle_frames
        starts = [i * slot + o for i, o in enumerate(offsets)]  # first frame of each slot's event
        mentioned = [i for i in range(slots) if i not in extra_slots]
        timing = {"event_starts": [starts[i] for i in mentioned]} if idle_frames or distractors else {}
        if distractors:
            timing["distractor_starts"] = [starts[i] for i in extra_slots]
        for twin, order in enumerate([events, twin_order(events, scale, rng)]):
            clip_id = f"pair{pair:05d}_{twin}"
            shown = list(order)
            for i, extra in zip(extra_slots, extras):  # ascending slots, so earlier insertions stay in place
                shown.insert(i, extra)
            write_mp4(out / "videos" / f"{clip_id}.mp4", with_idle([renders[e] for e in shown], offsets, idle_frames),
                      fps)
            records[split].append(ClipRecord(
                video=f"videos/{clip_id}.mp4", id=clip_id, start=None, end=None,
                texts={"caption": caption(order, scale), "subtitle": subtitle(order, scale)},
                extra={"twin": f"pair{pair:05d}_{1 - twin}", "scale": scale,
                       "duration": slots * slot / fps,
                       "segments": event_segments(order, frames_per_event / fps,
                                                  [starts[i] / fps for i in mentioned]),
                       **timing}))
    paths = {split: out / f"{split}.jsonl" for split in records}
    for split, rows in records.items():
        write_manifest(paths[split], rows)
    (out / "README.json").write_text(json.dumps({
        "what": "vidla synthetic temporal benchmark", "seed": seed, "clips": 2 * pairs, "fps": fps, "size": size,
        "frames_per_event": frames_per_event, "idle_frames": idle_frames, "events_per_scale": SCALES,
        **({"distractors": distractors} if distractors else {}),  # the default README stays what it was
        "splits": {k: len(v) for k, v in records.items()}}, indent=1))
    return paths
