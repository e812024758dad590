"""Bounds on hostile sizes (docs/reliability.md): memory per clip with and without decode-time resizing, and the
tokenizer's time on a multi-megabyte text with and without the early cut.

    python bench/reliability.py                             # a few minutes on 2 busy CPU cores
    VIDLA_BEFORE=/path/to/older/vidla python bench/reliability.py   # adds the code before this change

Memory: each decode runs in a fresh process; the figure is the growth of its resident set, sampled every 2 ms
during the decode, over the resident set after opening the video and decoding one frame (so imports and the
decoder's own buffers are not counted). Times: 3 runs, mean and
a 95% t-interval.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
BEFORE = os.environ.get("VIDLA_BEFORE")  # a checkout of vidla before decode-time resizing, to compare with
sys.path.insert(0, str(ROOT))

from common import mean_ci  # noqa: E402  (bench/ is on sys.path when a script runs)

_DECODE = """
import json, os, sys, threading, time
from vidla.data.decode import open_video

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

path, resize_to = sys.argv[1], None if sys.argv[2] == "none" else int(sys.argv[2])
options = {} if resize_to is None else {"resize_to": resize_to}  # the code before resize_to has no such option
with open_video(path, threads=1, **options) as reader:
    reader.frames_at([0.0])
    base, peak, done = rss_mb(), [0.0], threading.Event()

    def sample():  # the resident set every 2 ms while decoding: frames held inside the decoder count too
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    frames = reader.frames_at([(i + 0.5) * reader.info.duration / 12 for i in range(12)]).frames
    import vidla
    assert vidla.__file__.startswith(os.getcwd()), vidla.__file__
    done.set()
    sampler.join()
    peak[0] = max(peak[0], rss_mb())
print(json.dumps({"growth_mb": peak[0] - base, "shape": list(frames.shape), "mb": frames.nbytes / 2**20}))
"""




def decode_memory(folder: Path) -> list[tuple[str, str, float, float]]:
    from vidla.data.synthetic import write_video

    rows = []
    for width, height in ((1920, 1080), (3840, 2160)):
        path = write_video(folder / f"v{height}.mp4", num_frames=16, width=width, height=height, keyframe_interval=4)
        runs = [("none", ROOT, "this branch"), ("448", ROOT, "this branch")]
        if BEFORE:
            runs.insert(0, ("none", BEFORE, "before (frames converted at the end)"))
        for resize_to, code, label in runs:
            # cwd too: `python -c` puts the current folder first on sys.path
            out = subprocess.run([sys.executable, "-c", _DECODE, str(path), resize_to], capture_output=True, text=True,
                                 check=True, cwd=code, env={**os.environ, "PYTHONPATH": str(code)}).stdout
            result = json.loads(out)
            rows.append((f"{width}x{height}", f"{resize_to} ({label})", result["mb"], result["growth_mb"],
                         result["shape"]))
    return rows


def tokenizer_times() -> list[tuple[str, float, float]]:
    import random

    from vidla.models.tokenizer import CLIPTokenizer

    tokenizer = CLIPTokenizer.default()
    rng = random.Random(0)
    words = ["the", "café", "naïve", "dog", "runs", "&amp;", "日本語", "x1", "emoji😀"]
    text = " ".join(rng.choice(words) for _ in range(400_000))  # about 2 MB
    tokenizer(["warm up"])
    rows = []
    for label, run in (("uncut (encode the whole text, then truncate)", lambda: tokenizer.encode([text])[0][:75]),
                       ("cut before clean-up and BPE (tokenizer(text))", lambda: tokenizer([text]))):
        times = []
        for _ in range(3):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        rows.append((label, *mean_ci(times)))
    return rows, len(text.encode("utf-8"))


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        memory = decode_memory(Path(folder))
    print("| source | resize_to | frames returned | output MB | peak RSS growth MB |")
    print("|---|---|---|---|---|")
    for size, resize_to, mb, growth, shape in memory:
        print(f"| {size} | {resize_to} | {'x'.join(map(str, shape))} | {mb:.1f} | {growth:.1f} |")
    rows, size = tokenizer_times()
    print(f"\nTokenizer, one text of {size / 2**20:.1f} MB, 3 runs (mean, 95% t-interval):\n")
    print("| path | seconds |")
    print("|---|---|")
    for label, mean, half in rows:
        print(f"| {label} | {mean:.3f} ± {half:.3f} |")


if __name__ == "__main__":
    main()
