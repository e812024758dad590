"""Video search benchmark: indexing throughput, and query latency / recall of the vector index.

    python bench/search.py indexing                    # vidla-b32 meanpool and hta, random weights, generated videos
    python bench/search.py indexing --temporal meanpool --videos 1 --threads 1 \
        --size 1920x1080 3840x2160 --decode-size full auto    # full-size vs decode-time scaling, on big frames
    python bench/search.py vectors --sizes 10000 100000 1000000

Indexing: windows/s through `build_index` (decoding in its thread beside the model) and the time each side spent:
decode = opening, decoding and preprocessing frames; model = encode_video on the batches. With `--size` (test-pattern
videos made by the ffmpeg command line, faster than numpy frames at 4K) and several `--decode-size` values, each run
is a fresh process, which also reports its peak RSS growth while indexing, and the runs are compared: the largest
grey-level difference of the preprocessed frames (decoded both ways, on up to 24 of the windows' instants) and the
cosine between the vectors of the same windows.

Vectors: single-query latency (wall-clock p50/p99 over the queries and the p50 of the CPU time the query used,
faiss on one thread, as a server answering one query at a time) for the exact index and the approximate ones, and the approximate recall@10 against exact search, on two
synthetic sets of unit 512-d vectors:
- "random": independent uniform directions, the worst case for any approximate index (no structure: every vector
  is nearly equidistant from a query);
- "clustered": what a window index looks like: windows of one video lie near each other (n / 100 video centres,
  100 windows each at cosine ~0.8 from their centre), and a query lies nearer one video than the rest (cosine ~0.5 to its centre).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def machine() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
            f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min)")


# ---------------------------------------------------------------------------------------------- indexing

def make_videos(folder: Path, count: int, seconds: float, fps: int = 25, size: tuple[int, int] = (320, 240)) -> None:
    """Moving gradients with noise, H.264 with a keyframe every 2 s (a camera's or a phone's file, small)."""
    import av

    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    for v in range(count):
        with av.open(str(folder / f"video{v}.mp4"), "w") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.codec_context.options = {"g": str(2 * fps), "preset": "veryfast", "crf": "23"}
            for f in range(int(seconds * fps)):
                t = f / fps
                frame = np.stack([(x + 40 * t + 60 * v) % 256, (y + 25 * t) % 256, (x + y + 10 * v) % 256], -1)
                frame = (frame + rng.integers(0, 16, frame.shape)).clip(0, 255).astype(np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)


def make_pattern_video(path: Path, seconds: float, size: tuple[int, int], fps: int = 25) -> None:
    """ffmpeg's testsrc2 (moving shapes, a gradient, a clock) under fixed grain: H.264 veryfast, crf 23, a keyframe
    every 2 s, yuv420p (about 24 Mbit/s at 4K)."""
    import subprocess

    width, height = size
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}", "-vf", "noise=alls=10:allf=u",
                    "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", str(2 * fps), "-pix_fmt", "yuv420p",
                    str(path)], check=True)


def _index_in_fresh_process(options: dict, results) -> None:
    """One `build_index` run in a spawned process: its report and the growth of its peak RSS while indexing."""
    import resource

    import torch

    import vidla
    from vidla.search import IndexSettings, build_index

    torch.set_num_threads(options["threads"])
    torch.manual_seed(0)
    model = vidla.create_model(options["model"], temporal=options["temporal"], num_frames=12)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    settings = IndexSettings(batch_size=options["batch_size"], progress=False, decode_size=options["decode_size"])
    report = build_index([options["videos"]], options["out"], model=model, settings=settings)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results.put({"windows": report.windows, "failed": dict(report.failed), "decode_s": report.decode_seconds,
                 "model_s": report.model_seconds, "wall_s": report.seconds, "rss_growth_mb": (peak - before) / 1024,
                 "peak_rss_mb": peak / 1024})


def _run_isolated(options: dict) -> dict:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_index_in_fresh_process, args=(options, results))
    process.start()
    process.join()
    if process.exitcode != 0:
        return {"error": f"exit code {process.exitcode}"}
    return results.get(timeout=10)


def compare_decodes(video: Path, image_size: int, resize_to: int | None, instants: int = 24) -> dict:
    """Preprocessed frames (uint8, as the model gets them before normalising) decoded at full size and with
    `resize_to`, on up to `instants` of the default windows' sampling instants: max and mean |difference|."""
    import torch

    from vidla.data.decode import open_video
    from vidla.data.transforms import preprocess_video
    from vidla.search.windows import WindowConfig, plan_windows, window_timestamps

    with open_video(video) as full, open_video(video, resize_to=resize_to) as scaled:
        times = sorted({t for w in plan_windows(full.info.duration, WindowConfig()) for t in window_timestamps(w, 12)})
        times = [times[i] for i in np.linspace(0, len(times) - 1, min(instants, len(times))).round().astype(int)]
        largest, total, count = 0, 0.0, 0
        for begin in range(0, len(times), 4):  # 4 at a time: a 4K frame is 100 MB as float
            chunk = times[begin:begin + 4]
            a = preprocess_video(torch.from_numpy(full.frames_at(chunk).frames), image_size, normalized=False)
            b = preprocess_video(torch.from_numpy(scaled.frames_at(chunk).frames), image_size, normalized=False)
            difference = (a.int() - b.int()).abs()
            largest, total, count = max(largest, int(difference.max())), total + float(difference.sum()), \
                count + difference.numel()
    return {"instants": len(times), "max": largest, "mean": total / count}


def stored_vectors(index: Path) -> np.ndarray:
    from vidla.search import IndexStore

    with IndexStore(index, readonly=True) as store:
        return np.concatenate([store.video_windows(v.id)[1] for v in sorted(store.videos().values(),
                                                                            key=lambda v: v.path)])


def bench_decode_sizes(args: argparse.Namespace) -> None:
    """Indexing the same big videos with each --decode-size, each run in a fresh process (for its peak RSS)."""
    import vidla
    from vidla.data.transforms import resolve_decode_size

    image_size = vidla.create_model(args.model).image_size
    print(f"machine: {machine()}; torch threads {args.threads}")
    print(f"{args.videos} video(s) of {args.seconds:.0f} s per size, testsrc2 + grain, 25 fps, H.264 veryfast crf 23 "
          f"(keyframe every 2 s); default windows (4/12/36 s), 12 frames each, batch {args.batch_size}, random "
          f"weights; decode auto = shorter side {resolve_decode_size('auto', image_size)} px\n")
    rows, comparisons = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.size:
            width, height = (int(v) for v in size.split("x"))
            videos = Path(tmp) / size
            videos.mkdir()
            for v in range(args.videos):
                make_pattern_video(videos / f"video{v}.mp4", args.seconds, (width, height))
            for temporal in args.temporal:
                indexes, runs = {}, {option: [] for option in args.decode_size}
                for repeat in range(args.repeats):  # the options take turns, so load changes hit them alike
                    for option in args.decode_size:
                        decode = None if option == "full" else option
                        out = Path(tmp) / f"{size}-{temporal}-{option}-{repeat}.index"
                        result = _run_isolated({"model": args.model, "temporal": temporal, "threads": args.threads,
                                                "batch_size": args.batch_size, "decode_size": decode,
                                                "videos": str(videos), "out": str(out)})
                        print(f"  {size} {temporal} decode {option} run {repeat}: {result}", file=sys.stderr,
                              flush=True)
                        runs[option].append(result)
                        if "error" not in result:
                            indexes.setdefault(option, out)
                rows += [(size, f"{args.model} {temporal}", option, results) for option, results in runs.items()]
                if "full" in indexes:
                    for option, out in indexes.items():
                        if option == "full":
                            continue
                        a, b = stored_vectors(indexes["full"]), stored_vectors(out)
                        cosine = (a * b).sum(axis=1)
                        pixels = compare_decodes(videos / "video0.mp4", image_size,
                                                 resolve_decode_size(option, image_size))
                        comparisons.append((size, f"{args.model} {temporal}", option, pixels, cosine))
    from common import mean_ci

    def cell(values: list[float], digits: int) -> str:
        mean, half = mean_ci(values)
        return f"{mean:.{digits}f}" + ("" if half != half else f" ± {half:.{digits}f}")  # NaN: a single run

    print(f"Mean ± half-width of the 95% t-interval over {args.repeats} runs (each a fresh process):\n")
    print("| source | model | decode | windows | decode s/window | model s | decode share % | wall s | "
          "peak RSS growth MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size, model, option, results in rows:
        failed = [r["error"] for r in results if "error" in r]
        done = [r for r in results if "error" not in r]
        if failed:
            print(f"| {size} | {model} | {option} | {len(failed)} run(s) failed: {failed[0]} | | | | | |")
        if not done:
            continue
        print(f"| {size} | {model} | {option} | {done[0]['windows']} | "
              f"{cell([r['decode_s'] / max(r['windows'], 1) for r in done], 2)} | "
              f"{cell([r['model_s'] for r in done], 1)} | "
              f"{cell([100 * r['decode_s'] / max(r['decode_s'] + r['model_s'], 1e-9) for r in done], 0)} | "
              f"{cell([r['wall_s'] for r in done], 1)} | {cell([r['rss_growth_mb'] for r in done], 0)} |")
    if comparisons:
        print("\n| source | model | decode vs full | instants | max grey-level diff | mean diff | windows | "
              "min cosine | mean cosine |")
        print("|---|---|---|---|---|---|---|---|---|")
        for size, model, option, pixels, cosine in comparisons:
            print(f"| {size} | {model} | {option} | {pixels['instants']} | {pixels['max']} | {pixels['mean']:.3f} | "
                  f"{len(cosine)} | {cosine.min():.6f} | {cosine.mean():.6f} |")
    print(f"\nmachine after: {machine()}")


def bench_indexing(args: argparse.Namespace) -> None:
    import torch

    import vidla
    from vidla.search import IndexSettings, build_index

    if args.size:
        return bench_decode_sizes(args)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        videos = Path(tmp) / "videos"
        make_videos(videos, args.videos, args.seconds)
        print(f"machine: {machine()}; torch threads {args.threads}")
        print(f"{args.videos} videos of {args.seconds:.0f} s, 320x240, 25 fps, H.264 (keyframe every 2 s); default "
              f"windows (4/12/36 s, half overlapping), 12 frames each, batch {args.batch_size}\n")
        print("| model | windows | windows/s | decode s | model s | decode share | wall s |")
        print("|---|---|---|---|---|---|---|")
        for temporal in args.temporal:
            torch.manual_seed(0)
            model = vidla.create_model(args.model, temporal=temporal, num_frames=12)
            settings = IndexSettings(batch_size=args.batch_size, progress=False, decode_size=args.decode_size[0])
            report = build_index([videos], Path(tmp) / f"{temporal}.index", model=model, settings=settings)
            share = report.decode_seconds / (report.decode_seconds + report.model_seconds)
            print(f"| {args.model} {temporal} | {report.windows} | {report.windows / report.seconds:.2f} | "
                  f"{report.decode_seconds:.1f} | {report.model_seconds:.1f} | {100 * share:.0f}% | "
                  f"{report.seconds:.1f} |", flush=True)
    print(f"\nmachine after: {machine()}")


# ---------------------------------------------------------------------------------------------- vectors

def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def dataset(kind: str, n: int, queries: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "random":
        return unit(rng.standard_normal((n, dim), np.float32)), unit(rng.standard_normal((queries, dim), np.float32))
    centres = unit(rng.standard_normal((max(1, n // 100), dim), np.float32))
    data = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):  # in chunks, to bound the temporary memory
        stop = min(n, start + 100_000)
        noise = unit(rng.standard_normal((stop - start, dim), np.float32))
        data[start:stop] = unit(0.8 * centres[rng.integers(0, len(centres), stop - start)] + 0.6 * noise)
    owners = centres[rng.integers(0, len(centres), queries)]
    return data, unit(0.5 * owners + 0.87 * unit(rng.standard_normal((queries, dim), np.float32)))


def latencies(index, queries: np.ndarray, k: int = 10) -> tuple[float, float, float]:
    """Wall-clock p50 and p99 (ms), and the p50 of the CPU time the query thread used (ms): on a shared, busy
    machine the wall clock also counts the time other processes hold the core; the CPU time is what a query costs
    a core of its own (faiss runs a single query on the calling thread)."""
    times, cpu = [], []
    for q in queries:
        started, started_cpu = time.perf_counter(), time.thread_time()
        index.search(q[None], k)
        times.append(time.perf_counter() - started)
        cpu.append(time.thread_time() - started_cpu)
    return (float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3),
            float(np.percentile(cpu, 50) * 1e3))


def recall(index, queries: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    _, found = index.search(queries, k)
    return float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth)]))


def bench_vectors(args: argparse.Namespace) -> None:
    import faiss

    from vidla.search.vectors import VectorIndexConfig, build_vector_index

    print(f"machine: {machine()}; faiss {faiss.__version__}, one thread per query; {args.queries} queries, k = 10\n")
    print("| vectors | data | index | build s | p50 ms | p99 ms | CPU p50 ms | recall@10 |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        for kind in args.data:
            data, queries = dataset(kind, n, args.queries, args.dim, seed=0)
            ids = np.arange(n, dtype=np.int64)
            faiss.omp_set_num_threads(args.build_threads)
            started = time.perf_counter()
            exact = build_vector_index(ids, data, VectorIndexConfig(kind="flat"))
            build = time.perf_counter() - started
            _, truth = exact.search(queries, 10)
            faiss.omp_set_num_threads(1)
            p50, p99, cpu = latencies(exact, queries)
            print(f"| {n:,} | {kind} | flat (exact) | {build:.1f} | {p50:.2f} | {p99:.2f} | {cpu:.2f} | 1 |",
                  flush=True)
            approximate = [("ivf", VectorIndexConfig(kind="ivf"))]
            if n <= args.hnsw_limit:
                approximate.append(("hnsw", VectorIndexConfig(kind="hnsw")))
            for name, config in approximate:
                faiss.omp_set_num_threads(args.build_threads)
                started = time.perf_counter()
                index = build_vector_index(ids, data, config)
                build = time.perf_counter() - started
                inner = faiss.downcast_index(index.index)
                settings = [("nprobe", p) for p in args.nprobe] if name == "ivf" else \
                    [("efSearch", e) for e in args.ef_search]
                for label, value in settings:
                    if name == "ivf":
                        inner.nprobe = value
                        described = f"ivf nlist {inner.nlist}, nprobe {value}"
                    else:
                        inner.hnsw.efSearch = value
                        described = f"hnsw M 32, efSearch {value}"
                    faiss.omp_set_num_threads(1)
                    p50, p99, cpu = latencies(index, queries)
                    print(f"| {n:,} | {kind} | {described} | {build:.1f} | {p50:.2f} | {p99:.2f} | {cpu:.2f} | "
                          f"{recall(index, queries, truth):.3f} |", flush=True)
                del index
            del exact, data
    print(f"\nmachine after: {machine()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="what", required=True)
    indexing = commands.add_parser("indexing")
    indexing.add_argument("--model", default="vidla-b32")
    indexing.add_argument("--temporal", nargs="+", default=["meanpool", "hta"])
    indexing.add_argument("--videos", type=int, default=2)
    indexing.add_argument("--seconds", type=float, default=20.0)
    indexing.add_argument("--batch-size", type=int, default=8)
    indexing.add_argument("--threads", type=int, default=2)
    indexing.add_argument("--size", nargs="+", default=[], metavar="WxH",
                          help="test-pattern videos of these sizes, each --decode-size in a fresh process, compared")
    indexing.add_argument("--decode-size", nargs="+", default=["auto"], metavar="auto|full|PIXELS")
    indexing.add_argument("--repeats", type=int, default=3, help="with --size: runs of each decode size")
    vectors = commands.add_parser("vectors")
    vectors.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    vectors.add_argument("--data", nargs="+", default=["random", "clustered"])
    vectors.add_argument("--dim", type=int, default=512)
    vectors.add_argument("--queries", type=int, default=200)
    vectors.add_argument("--nprobe", type=int, nargs="+", default=[16, 32, 64, 128])
    vectors.add_argument("--ef-search", type=int, nargs="+", default=[64, 128, 256])
    vectors.add_argument("--hnsw-limit", type=int, default=100_000, help="skip hnsw (slow to build) above this")
    vectors.add_argument("--build-threads", type=int, default=2)
    args = parser.parse_args()
    bench_indexing(args) if args.what == "indexing" else bench_vectors(args)


if __name__ == "__main__":
    main()
