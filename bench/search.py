"""Video search benchmark: indexing throughput, and query latency / recall of the vector index.

    python bench/search.py indexing                    # vidla-b32 meanpool and hta, random weights, generated videos
    python bench/search.py indexing --temporal meanpool --videos 1 --threads 1 \
        --size 1920x1080 3840x2160 --decode-size full auto    # full-size vs decode-time scaling, on big frames
    python bench/search.py vectors --sizes 10000 100000 1000000
    python bench/search.py vectors --sizes 1000000 --data clustered --seeds 0 1 2   # mean and 95% t-interval
    python bench/search.py endtoend --windows 1000000                               # vidla search's own path
    python bench/search.py rerank --rerank 10 20 50    # text-guided key-frame re-ranking (vidla-b32 hta, T=32->K=8)
    python bench/search.py rerank-quality --seeds 0 1 2   # does re-ranking find more? (trains bench/selection.py's models)

Indexing: windows/s through `build_index` (decoding in its thread beside the model) and the time each side spent:
decode = opening, decoding and preprocessing frames; model = encode_video on the batches. With `--size` (test-pattern
videos made by the ffmpeg command line, faster than numpy frames at 4K) and several `--decode-size` values, each run
is a fresh process, which also reports its peak RSS growth while indexing, and the runs are compared: the largest
grey-level difference of the preprocessed frames (decoded both ways, on up to 24 of the windows' instants) and the
cosine between the vectors of the same windows.

Rerank: latency of `search_text(..., rerank=N)` on an index of generated videos built with a frame-selection model
(random weights: the cost is the same), split into decoding the N windows' T candidates and the model (text-guided
selection + the tower on K frames), beside the same query without re-ranking.

Rerank quality: per seed, bench/selection.py's recipe on the idle-stretch synthetic clips (an all-T vidla-demo HTA
model trained from scratch, then fine-tuned with a frame selector T=16 -> K=4, half the clips' selection guided by
their caption, distilled from all-T); its 64 test clips indexed by `build_index` (one window a clip), each caption
searched through `SearchIndex.search_text` without and with `rerank=N`: R@1/5/10 of its own clip, mean and 95%
t-interval over the seeds.

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
sys.path.insert(0, str(Path(__file__).resolve().parent))


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


def latencies(index, queries: np.ndarray, k: int = 10, params=None) -> tuple[float, float, float]:
    """Wall-clock p50 and p99 (ms), and the p50 of the CPU time the query thread used (ms): on a shared, busy
    machine the wall clock also counts the time other processes hold the core; the CPU time is what a query costs
    a core of its own (faiss runs a single query on the calling thread)."""
    times, cpu = [], []
    for q in queries:
        started, started_cpu = time.perf_counter(), time.thread_time()
        index.search(q[None], k, params=params)
        times.append(time.perf_counter() - started)
        cpu.append(time.thread_time() - started_cpu)
    return (float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3),
            float(np.percentile(cpu, 50) * 1e3))


def recall(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    return float(np.mean([len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth)]))


class Reranked:
    """ivf-sq8 as `SearchIndex` uses it: fetch `fetch` candidates by the codes' scores, re-score them with the float
    vectors and keep the best k. The float vectors come from memory here (SQLite in vidla: its cost is in the
    `endtoend` figures)."""

    def __init__(self, index, vectors: np.ndarray, fetch: int):
        self.index, self.vectors, self.fetch = index, vectors, fetch

    def search(self, queries: np.ndarray, k: int, params=None):
        _, candidates = self.index.search(queries, self.fetch, params=params)
        found = np.empty((len(queries), k), np.int64)
        for row, (q, ids) in enumerate(zip(queries, candidates)):
            ids = ids[ids >= 0]
            best = np.argsort(-(self.vectors[ids] @ q))[:k]
            found[row, :len(best)] = ids[best]
            found[row, len(best):] = -1
        return None, found


def bench_vectors(args: argparse.Namespace) -> None:
    import faiss

    from common import mean_ci
    from vidla.search.vectors import VectorIndexConfig, build_vector_index, inner_index, search_parameters

    print(f"machine: {machine()}; faiss {faiss.__version__}, one thread per query; {args.queries} queries, k = 10, "
          f"data seeds {args.seeds}\n")
    print("| vectors | data | seed | index | build s | bytes/vector | p50 ms | p99 ms | CPU p50 ms | recall@10 |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows: dict[tuple, list[tuple[float, float, float, float]]] = {}  # (n, data, index) -> per seed figures

    def measure(n, kind, seed, described, build, size, index, queries, truth, params=None):
        faiss.omp_set_num_threads(1)
        p50, p99, cpu = latencies(index, queries, params=params)
        found = index.search(queries, 10, params=params)[1]
        r = recall(found, truth)
        print(f"| {n:,} | {kind} | {seed} | {described} | {build:.1f} | {size:,.0f} | {p50:.2f} | {p99:.2f} | "
              f"{cpu:.2f} | {r:.3f} |", flush=True)
        rows.setdefault((n, kind, described), []).append((build, p50, cpu, r))

    for n in args.sizes:
        for kind in args.data:
            for seed in args.seeds:
                data, queries = dataset(kind, n, args.queries, args.dim, seed=seed)
                ids = np.arange(n, dtype=np.int64)
                faiss.omp_set_num_threads(args.build_threads)
                started = time.perf_counter()
                exact = build_vector_index(ids, data, VectorIndexConfig(kind="flat"))
                build = time.perf_counter() - started
                _, truth = exact.search(queries, 10)
                if not args.skip_exact:
                    measure(n, kind, seed, "flat (exact)", build, 4 * args.dim, exact, queries, truth)
                del exact
                approximate = list(args.ivf)
                if n <= args.hnsw_limit:
                    approximate.append("hnsw")
                for name in approximate:
                    config = VectorIndexConfig(kind=name, ivf_nlist=args.nlist)
                    faiss.omp_set_num_threads(args.build_threads)
                    started = time.perf_counter()
                    index = build_vector_index(ids, data, config)
                    build = time.perf_counter() - started
                    size = len(faiss.serialize_index(index)) / n
                    inner = inner_index(index)
                    searched = Reranked(index, data, args.rerank) if name == "ivf-sq8" else index
                    for value in (args.ef_search if name == "hnsw" else args.nprobe):
                        if name == "hnsw":
                            params = search_parameters(index, ef_search=value)
                            described = f"hnsw M 32, efSearch {value}"
                        else:
                            params = search_parameters(index, nprobe=value)
                            described = f"{name} nlist {inner.nlist}, nprobe {value}" + \
                                (f", re-rank {args.rerank}" if name == "ivf-sq8" else "")
                        measure(n, kind, seed, described, build, size, searched, queries, truth, params)
                    del index, searched
                del data
    if len(args.seeds) > 1:
        print(f"\nOver the {len(args.seeds)} data seeds: mean ± half-width of the 95% t-interval\n")
        print("| vectors | data | index | build s | p50 ms | CPU p50 ms | recall@10 |")
        print("|---|---|---|---|---|---|---|")
        for (n, kind, described), values in rows.items():
            cells = []
            for column, digits in zip(zip(*values), (1, 2, 2, 3)):
                mean, half = mean_ci(list(column))
                cells.append(f"{mean:.{digits}f} ± {half:.{digits}f}")
            print(f"| {n:,} | {kind} | {described} | " + " | ".join(cells) + " |")
    print(f"\nmachine after: {machine()}")


def bench_endtoend(args: argparse.Namespace) -> None:
    """`vidla search` at `--windows` windows: an IndexStore filled through its own API (videos of the default window
    plan, vectors clustered per video as in the `vectors` set), the vector index built by `refresh_vectors` as
    `vidla index` builds it, then `SearchIndex.search_vector` timed whole and split into the faiss search and the
    rest (SQLite lookups of the hits, the ivf-sq8 re-rank, merging into moments); the text encoder separately."""
    import faiss
    import torch
    from tqdm import tqdm

    from vidla.search import SearchIndex, VectorIndexConfig, WindowConfig
    from vidla.search.indexer import refresh_vectors
    from vidla.search.store import IndexStore, VideoRow
    from vidla.search.vectors import search_vectors
    from vidla.search.windows import plan_windows

    torch.set_num_threads(1)
    windows = plan_windows(args.video_seconds, WindowConfig())
    videos = args.windows // len(windows)
    rng = np.random.default_rng(args.seed)
    print(f"machine: {machine()}; faiss {faiss.__version__} on one thread per query, torch {torch.__version__} on 1")
    print(f"{videos:,} videos of {args.video_seconds:.0f} s x {len(windows)} windows (default plan) = "
          f"{videos * len(windows):,} windows of {args.dim}-d; vector index {args.kind}\n")
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        folder = Path(tmp) / "bench.index"
        store = IndexStore(folder, create=True)
        store.set_identity({"model": {"id": "bench", "checkpoint": None, "embed_dim": args.dim, "num_frames": 12},
                            "windows": {}})
        centres = unit(rng.standard_normal((videos, args.dim), np.float32))
        started = time.perf_counter()
        rows = [(w.start, w.end, w.scale) for w in windows]
        for v in tqdm(range(videos), desc="filling the store", unit="video", mininterval=5):
            noise = unit(rng.standard_normal((len(windows), args.dim), np.float32))
            store.put_video(VideoRow(0, f"/videos/{v:07d}.mp4", 1, 1, f"{v:064x}", args.video_seconds), rows,
                            unit(0.8 * centres[v] + 0.6 * noise))
        fill = time.perf_counter() - started
        faiss.omp_set_num_threads(args.build_threads)
        started = time.perf_counter()
        kind = refresh_vectors(store, "bench", VectorIndexConfig(kind=args.kind))
        build = time.perf_counter() - started
        store.close()
        size = {f.name: f.stat().st_size / 2**20 for f in folder.iterdir() if f.is_file()}
        started = time.perf_counter()
        index = SearchIndex(folder, nprobe=args.nprobe)
        opened = time.perf_counter() - started
        faiss.omp_set_num_threads(1)
        owners = centres[rng.integers(0, videos, args.queries)]
        queries = unit(0.5 * owners + 0.87 * unit(rng.standard_normal((args.queries, args.dim), np.float32)))
        total, vector = [], []
        for q in queries:
            started = time.perf_counter()
            index.search_vector(q, k=10)
            total.append(time.perf_counter() - started)
            started = time.perf_counter()
            search_vectors(index.vectors, q[None], 200, nprobe=args.nprobe)  # what search_vector fetches for k=10
            vector.append(time.perf_counter() - started)
        model = _text_model(args.model)
        text = []
        for i in range(args.queries // 4):
            started = time.perf_counter()
            model.encode_text([f"a dog jumps into the pool number {i}"])
            text.append(time.perf_counter() - started)
        p = lambda xs, q=50: float(np.percentile(xs, q) * 1e3)  # noqa: E731
        print(f"filling the store: {fill:.0f} s ({videos * len(windows) / fill:,.0f} windows/s); vector index "
              f"({kind}) built from SQLite in {build:.0f} s; opening the index {opened:.1f} s")
        print("files: " + ", ".join(f"{name} {mb:,.0f} MiB" for name, mb in sorted(size.items())) + "\n")
        print("| step | p50 ms | p99 ms |")
        print("|---|---|---|")
        rest = np.array(total) - np.array(vector)
        print(f"| faiss search (200 candidates, nprobe {args.nprobe or 'default'}) | {p(vector):.2f} | "
              f"{p(vector, 99):.2f} |")
        print(f"| SQLite lookups + merging into moments{' + exact re-rank' if kind == 'ivf-sq8' else ''} "
              f"| {p(rest):.2f} | {p(rest, 99):.2f} |")
        print(f"| search_vector, k = 10 (the two above) | {p(total):.2f} | {p(total, 99):.2f} |")
        print(f"| text encoder ({args.model}, 1 text, 1 thread) | {p(text):.2f} | {p(text, 99):.2f} |")
        index.close()
        if args.changed:
            _bench_refresh(folder, args, rows, centres, rng)
    print(f"\nmachine after: {machine()}")


def _bench_refresh(folder: Path, args: argparse.Namespace, rows, centres: np.ndarray, rng) -> None:
    """What the next `vidla index` run costs after a few videos changed: the lagging vector index brought up to
    date by window ids (`update_vector_index`) against a rebuild from SQLite (k-means included for ivf)."""
    import faiss

    from vidla.search import VectorIndexConfig
    from vidla.search.indexer import refresh_vectors
    from vidla.search.store import IndexStore, VideoRow

    faiss.omp_set_num_threads(args.build_threads)
    store = IndexStore(folder)
    videos = len(centres)
    store.delete_videos([f"/videos/{v:07d}.mp4" for v in range(args.changed)])
    for v in range(videos, videos + args.changed):
        noise = unit(rng.standard_normal((len(rows), args.dim), np.float32))
        store.put_video(VideoRow(0, f"/videos/{v:07d}.mp4", 1, 1, f"{v:064x}", args.video_seconds), rows,
                        unit(0.8 * centres[v % videos] + 0.6 * noise))
    config = VectorIndexConfig(kind=args.kind)
    started = time.perf_counter()
    refresh_vectors(store, "bench", config)
    update = time.perf_counter() - started
    started = time.perf_counter()
    refresh_vectors(store, "bench", config, force=True)
    rebuild = time.perf_counter() - started
    store.close()
    print(f"\nafter {args.changed} videos deleted and {args.changed} added ({2 * args.changed * len(rows):,} "
          f"windows changed), `build_threads` {args.build_threads}:\n")
    print("| vector index refresh | s |")
    print("|---|---|")
    print(f"| updated by window ids (the default) | {update:.2f} |")
    print(f"| rebuilt from SQLite | {rebuild:.2f} |")


def bench_rerank(args: argparse.Namespace) -> None:
    import torch

    import vidla
    from vidla.search import IndexSettings, SearchIndex, build_index

    torch.set_num_threads(args.threads)
    queries = ["a dog jumps into the pool", "a man slices bread in a kitchen", "cars drive past at night",
               "a child rides a bicycle", "two people dance on a stage"]
    with tempfile.TemporaryDirectory() as tmp:
        videos = Path(tmp) / "videos"
        make_videos(videos, args.videos, args.seconds)
        torch.manual_seed(0)
        model = vidla.create_model(args.model, temporal=args.temporal, num_frames=args.frames,
                                   frame_selection={"segments": args.segments}).eval()
        torch.nn.init.normal_(model.frame_selector.text_query.weight, std=0.02)  # a text term, as once trained
        report = build_index([videos], Path(tmp) / "videos.index", model=model,
                             settings=IndexSettings(batch_size=8, progress=False))
        index = SearchIndex(Path(tmp) / "videos.index", model=model)
        print(f"machine: {machine()}; torch threads {args.threads}")
        print(f"{args.model} {args.temporal}, frame selection T={args.frames} -> K={args.segments}, random weights; "
              f"{args.videos} videos of {args.seconds:.0f} s, 320x240, 25 fps, H.264; {report.total_windows} windows "
              f"(indexed at {report.windows / report.seconds:.2f} windows/s); k = 10, {args.repeats} queries per N\n")
        index.search_text(queries[0], k=10)  # warm up
        start = time.perf_counter()
        for q in queries[:args.repeats]:
            index.search_text(q, k=10)
        plain = (time.perf_counter() - start) / args.repeats
        print("| N re-ranked | latency s (median) | per window s | decode s | model s | decode share | model share |")
        print("|---|---|---|---|---|---|---|")
        print(f"| 0 (no re-rank) | {plain:.3f} | - | - | - | - | - |")
        for n in args.rerank:
            rows = []
            for q in queries[:args.repeats]:
                start = time.perf_counter()
                index.search_text(q, k=min(10, n), rerank=n)
                stats = index.last_rerank
                rows.append((time.perf_counter() - start, stats.decode_seconds, stats.model_seconds, stats.windows))
            wall, decode, model_s, windows = (float(np.median(c)) for c in zip(*rows))
            print(f"| {n} ({windows:.0f} windows) | {wall:.2f} | {wall / windows:.3f} | {decode:.2f} | {model_s:.2f} | "
                  f"{100 * decode / wall:.0f}% | {100 * model_s / wall:.0f}% |", flush=True)
        index.close()
    print(f"\nmachine after: {machine()}")


def bench_rerank_quality(args: argparse.Namespace) -> None:
    import torch

    from common import mean_ci
    from selection import FPS, FRAMES_PER_EVENT, IDLE_FRAMES, T, train  # the recipe of bench/selection.py

    from vidla.data.manifest import read_manifest_resolved
    from vidla.data.temporal_synth import generate
    from vidla.search import IndexSettings, SearchIndex, WindowConfig, build_index

    torch.set_num_threads(1)
    recipe = argparse.Namespace(model="vidla-demo", workers=1, batch_size=32, distill_weight=0.01, text_guided=0.5,
                                progress=False)
    variants = ["text-free"] + [f"rerank {n}" for n in args.rerank]
    per_seed: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    print(f"machine: {machine()}; torch threads 1")
    for seed in args.seeds:
        started = time.perf_counter()
        folder = Path(args.output) / f"seed{seed}"
        data = folder / "data"
        if not (data / "test.jsonl").is_file():
            generate(data, num_clips=args.clips, seed=seed, size=32, fps=FPS, frames_per_event=FRAMES_PER_EVENT,
                     idle_frames=IDLE_FRAMES, mix={"medium": 1.0}, progress=False)
        all_t = train(folder / "all_T", data / "train.jsonl", recipe, seed, args.steps, 5e-4, T)
        selected = train(folder / "selected_K", data / "train.jsonl", recipe, seed, args.finetune_steps, 2.5e-4, T,
                         pretrained=all_t, selection=True)
        out = folder / "test.index"
        build_index([data / "test.jsonl"], out, selected,  # one window a clip: the scale is longer than any clip
                    settings=IndexSettings(windows=WindowConfig(scales={"clip": 3600.0}), progress=False))
        index = SearchIndex(out)
        records = read_manifest_resolved(data / "test.jsonl")
        frames_changed = _text_changes_selection(index, [r.texts["caption"] for r in records])
        base: list[int] = []
        for variant in variants:
            rerank = None if variant == "text-free" else int(variant.split()[1])
            ranks = []
            for record in records:
                found = [Path(v.path).resolve() for v in index.search_text(record.texts["caption"], k=10,
                                                                           rerank=rerank)]
                target = Path(record.video).resolve()
                ranks.append(found.index(target) + 1 if target in found else 11)
            base = ranks if variant == "text-free" else base  # variants[0]: the ranks the others compare with
            per_seed[variant].append({**{f"R@{r}": 100 * sum(x <= r for x in ranks) / len(ranks) for r in (1, 5, 10)},
                                      "moved": 100 * sum(a != b for a, b in zip(ranks, base)) / len(ranks),
                                      "frames": frames_changed})
        index.close()
        print(f"seed {seed}: {time.perf_counter() - started:.0f} s; " + "; ".join(
            f"{v} " + " ".join(f"{m} {x:.1f}" for m, x in per_seed[v][-1].items() if m != "frames")
            for v in variants) + f"; text changes the frames of {frames_changed:.1f}% of (caption, clip) pairs",
            flush=True)
    print(f"\n{len(records)} test clips a seed, each caption a query; mean ± 95% t-interval over seeds "
          f"{args.seeds}\n")
    print("| search | R@1 | R@5 | R@10 | queries whose own clip moved (%) |\n|---|---|---|---|---|")
    for v in variants:
        cells = [mean_ci([r[m] for r in per_seed[v]]) for m in ("R@1", "R@5", "R@10", "moved")]
        print(f"| {v} | " + " | ".join(f"{m:.1f} ± {h:.1f}" for m, h in cells) + " |")
    share = mean_ci([r["frames"] for r in per_seed["text-free"]])
    print(f"\n(caption, test clip) pairs whose key frames the caption changes: {share[0]:.1f} ± {share[1]:.1f}%")
    print(f"\nmachine after: {machine()}")


def _text_changes_selection(index, captions: list[str]) -> float:
    """% of (caption, indexed window) pairs where the caption's text-guided selection picks other frames than the
    text-free one (windows decoded by the indexer's path)."""
    import torch

    from vidla.data.decode import open_video
    from vidla.search.indexer import iter_window_frames
    from vidla.search.windows import Window

    model, candidates = index.model, []
    for video in index.store.videos().values():
        windows = [Window(*w) for w in index.store.video_windows(video.id)[0]]
        with open_video(video.path) as reader:
            candidates += [p for _, p in sorted(iter_window_frames(reader, windows, model.num_frames,
                                                                   model.image_size), key=lambda x: x[0])]
    candidates = torch.stack(candidates)
    with torch.no_grad():
        free = model.select_frames(candidates)[1]
        texts = model.encode_text(captions)
        differ = sum(int((model.select_frames(candidates, texts[q:q + 1])[1] != free).any(-1).sum())
                     for q in range(len(captions)))
    return 100 * differ / (len(captions) * len(candidates))


def _text_model(name: str):
    import vidla

    model = vidla.create_model(name).eval()  # random weights: the forward pass costs the same
    model.encode_text(["warm up"])
    return model


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
    vectors.add_argument("--seeds", type=int, nargs="+", default=[0], help="data seeds (>= 3 for an interval)")
    vectors.add_argument("--ivf", nargs="+", default=["ivf", "ivf-sq8"], choices=["ivf", "ivf-sq8"],
                         help="the ivf kinds to measure")
    vectors.add_argument("--nlist", type=int, default=None, help="ivf cells (default: vidla's, 4 sqrt(n))")
    vectors.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32, 64])
    vectors.add_argument("--rerank", type=int, default=200,
                         help="ivf-sq8: candidates re-scored exactly (vidla fetches 20 k = 200 for k = 10)")
    vectors.add_argument("--skip-exact", action="store_true", help="no exact-search latency rows (truth only)")
    vectors.add_argument("--ef-search", type=int, nargs="+", default=[64, 128, 256])
    vectors.add_argument("--hnsw-limit", type=int, default=100_000, help="skip hnsw (slow to build) above this")
    vectors.add_argument("--build-threads", type=int, default=2)
    endtoend = commands.add_parser("endtoend")
    endtoend.add_argument("--windows", type=int, default=1_000_000)
    endtoend.add_argument("--video-seconds", type=float, default=138.0, help="138 s: 100 windows at 4/12/36 s")
    endtoend.add_argument("--dim", type=int, default=512)
    endtoend.add_argument("--kind", default="auto", choices=["auto", "ivf", "ivf-sq8"])
    endtoend.add_argument("--nprobe", type=int, default=None)
    endtoend.add_argument("--queries", type=int, default=200)
    endtoend.add_argument("--seed", type=int, default=0)
    endtoend.add_argument("--model", default="vidla-b32")
    endtoend.add_argument("--build-threads", type=int, default=2)
    endtoend.add_argument("--tmp", default=None, help="where the temporary index goes (2.3 GB at 1M windows)")
    endtoend.add_argument("--changed", type=int, default=10, help="then delete and add this many videos and time "
                          "the vector index refresh: updated by ids against a rebuild (0: skip)")


    rerank = commands.add_parser("rerank")
    rerank.add_argument("--rerank", type=int, nargs="+", default=[10, 20, 50], help="windows re-ranked (N)")
    rerank.add_argument("--model", default="vidla-b32")
    rerank.add_argument("--temporal", default="hta")
    rerank.add_argument("--frames", type=int, default=32, help="T candidate frames per window")
    rerank.add_argument("--segments", type=int, default=8, help="K frames the tower encodes")
    rerank.add_argument("--videos", type=int, default=2)
    rerank.add_argument("--seconds", type=float, default=40.0, help="40 s: 27 windows a video at 4/12/36 s")
    rerank.add_argument("--repeats", type=int, default=3, help="queries per N (the median is reported)")
    rerank.add_argument("--threads", type=int, default=1)
    quality = commands.add_parser("rerank-quality")
    quality.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    quality.add_argument("--rerank", type=int, nargs="+", default=[10, 20])
    quality.add_argument("--clips", type=int, default=320)
    quality.add_argument("--steps", type=int, default=150, help="all-T training (bench/selection.py's)")
    quality.add_argument("--finetune-steps", type=int, default=60, help="selected-K fine-tuning")
    quality.add_argument("--output", default=str(Path(__file__).resolve().parents[1] / "runs/bench_rerank"))
    args = parser.parse_args()
    {"indexing": bench_indexing, "vectors": bench_vectors, "endtoend": bench_endtoend, "rerank": bench_rerank,
     "rerank-quality": bench_rerank_quality}[args.what](args)


if __name__ == "__main__":
    main()
