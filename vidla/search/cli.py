"""`vidla index`, `vidla index merge`, `vidla search`, `vidla serve` (docs/search.md).

    vidla index videos/ --checkpoint model.safetensors --out videos.index       # new or incremental
    vidla index videos/ --checkpoint M --out shard0.index --shard 0/4           # one of 4 machines
    vidla index merge shard0.index shard1.index ... --out videos.index
    torchrun --nproc_per_node 8 -m vidla.cli index videos/ --checkpoint M --out v.index   # v.index.shard{i}of8
    vidla search videos.index "a dog jumps into the pool" -k 10 --min-score 0.2
    vidla search videos.index --example clip.mp4 --start 12 --end 16             # more like this moment
    vidla search videos.index "a dog jumps into the pool" --rerank 50            # text-guided key frames
    vidla serve videos.index                                                     # http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from vidla.errors import VidlaError


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    index = subparsers.add_parser(
        "index", help="index videos for search (or `vidla index merge` shard indexes)",
        usage="vidla index ROOT... --checkpoint SOURCE --out INDEX [options]\n"
              "       vidla index merge SHARD_INDEX... --out INDEX",
        description="Cuts each video under ROOT (folders, files or JSONL manifests) into overlapping windows at "
                    "several scales, embeds them and stores them in a search index. A rerun embeds only new or "
                    "changed files, drops deleted ones and resumes an interrupted run. `vidla index merge` joins "
                    "the indexes of --shard runs.")
    index.add_argument("roots", nargs="+", metavar="ROOT", help="folders, video files or .jsonl manifests")
    index.add_argument("--out", required=True, help="the index folder (created or updated)")
    index.add_argument("--checkpoint", help="any checkpoint vidla.load_model reads (required unless merging)")
    index.add_argument("--scales", default=None,
                       help="window lengths in seconds, e.g. short=4,medium=12,long=36 (the default)")
    index.add_argument("--stride", type=float, default=0.5, help="window start step as a fraction of its length")
    index.add_argument("--batch-size", type=int, default=8, help="windows per model call")
    index.add_argument("--vector-index", default="auto", choices=["auto", "flat", "hnsw", "ivf", "ivf-sq8"],
                       help="exact (flat) or approximate (ivf-sq8: 8-bit codes, re-ranked exactly, a quarter of "
                            "ivf's memory; ivf; hnsw); auto: exact up to --exact-limit windows, ivf-sq8 beyond")
    index.add_argument("--exact-limit", type=int, default=100_000)
    index.add_argument("--nlist", type=int, default=None,
                       help="ivf kinds: k-means cells (default 4 sqrt(windows)); more cells, fewer windows per cell")
    index.add_argument("--decode-size", default="auto", metavar="auto|full|PIXELS",
                       help="shorter side frames are decoded to: auto (default) = twice the model's input size, as "
                            "training's loader (an existing index keeps its own); full = the source's size")
    index.add_argument("--shard", default="0/1", help="i/N: index only the i-th of N slices of the videos")
    index.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available)")
    index.add_argument("--no-progress", action="store_true")
    index.set_defaults(func=run_index)

    search = subparsers.add_parser("search", help="find moments in an index by text or by example",
                                   description="Ranked moments (start-end, scale, score), grouped per video.")
    search.add_argument("index", help="an index folder made by `vidla index`")
    search.add_argument("text", nargs="?", help="what to look for")
    search.add_argument("-k", type=int, default=10, help="moments to return (1-1000)")
    search.add_argument("--min-score", type=float, help="drop windows scoring below this cosine similarity")
    search.add_argument("--json", action="store_true", help="print JSON")
    search.add_argument("--example", help="a video file: search for moments like (a clip of) it")
    search.add_argument("--start", type=float, help="with --example: clip start in seconds")
    search.add_argument("--end", type=float, help="with --example: clip end in seconds")
    search.add_argument("--checkpoint", help="the model (default: the checkpoint recorded in the index)")
    search.add_argument("--rerank", type=int, default=None, metavar="N",
                        help="a model with frame selection: decode the best N windows again (N >= k) and re-score "
                             "them with the key frames this text selects (slower: ~N model calls)")
    _add_tuning(search)
    search.set_defaults(func=run_search)

    serve = subparsers.add_parser("serve", help="HTTP search API and web page over an index",
                                  description="A FastAPI app on uvicorn: the search page at /, the JSON API at "
                                              "/api/search, thumbnails and videos by index id.")
    serve.add_argument("index")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--checkpoint", help="the model (default: the checkpoint recorded in the index)")
    _add_tuning(serve)
    serve.set_defaults(func=run_serve)


def _add_tuning(parser: argparse.ArgumentParser) -> None:
    """Query-time recall/speed settings of an approximate index (no rebuild; an exact index ignores them)."""
    parser.add_argument("--nprobe", type=int, default=None,
                        help="ivf indexes: cells scanned per query (default: the index's, 32); more = better recall, "
                             "proportionally slower")
    parser.add_argument("--ef-search", type=int, default=None,
                        help="hnsw indexes: candidates kept while searching the graph (default: the index's, 128)")


def torch_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _parse_scales(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    scales = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            scales[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--scales takes name=seconds pairs, e.g. short=4,medium=12, got {text!r}") from None
    return scales


def run_index(args: argparse.Namespace) -> int:
    from vidla.search import IndexSettings, VectorIndexConfig, WindowConfig, build_index, merge_indexes

    vectors = VectorIndexConfig(kind=args.vector_index, exact_limit=args.exact_limit, ivf_nlist=args.nlist)
    if args.roots[0] == "merge":
        report = merge_indexes(args.roots[1:], args.out, vectors, progress=not args.no_progress)
    else:
        if not args.checkpoint:
            raise VidlaError("--checkpoint is required (any checkpoint vidla.load_model reads)")
        from vidla.curate.pipeline import parse_shard

        scales = _parse_scales(args.scales)
        windows = WindowConfig(stride=args.stride, **({"scales": scales} if scales else {}))
        shard, out, device = parse_shard(args.shard), args.out, args.device
        if args.shard == "0/1" and int(os.environ.get("WORLD_SIZE", 1)) > 1:  # under torchrun: a shard per rank
            shard = (int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]))
            out = f"{args.out}.shard{shard[0]}of{shard[1]}"
            if device is None and torch_cuda():
                device = f"cuda:{os.environ.get('LOCAL_RANK', 0)}"
        settings = IndexSettings(windows=windows, vectors=vectors, batch_size=args.batch_size, shard=shard,
                                 progress=not args.no_progress, decode_size=args.decode_size)
        model = None
        if device or torch_cuda():
            import vidla

            model = vidla.load_model(args.checkpoint, device=device or "cuda")
        report = build_index(args.roots, out, args.checkpoint, model=model, settings=settings)
    print(report.summary())
    for path, error in list(report.failed.items())[:20]:
        print(f"  failed: {error if path in error else f'{path}: {error}'}", file=sys.stderr)
    if report.windows:
        share = report.decode_seconds / max(report.decode_seconds + report.model_seconds, 1e-9)
        print(f"decoding {report.decode_seconds:.1f} s, model {report.model_seconds:.1f} s "
              f"(decode share {100 * share:.0f}%), {report.seconds:.1f} s in all")
    return 0


def run_search(args: argparse.Namespace) -> int:
    from vidla.search import SearchIndex

    if (args.text is None) == (args.example is None):
        raise VidlaError("give a text query or --example VIDEO (one of them)")
    if args.rerank is not None and args.example:
        raise VidlaError("--rerank re-selects frames for a text query, not for --example")
    index = SearchIndex(args.index, checkpoint=args.checkpoint, nprobe=args.nprobe, ef_search=args.ef_search)
    if args.example:
        results = index.search_example(args.example, args.start, args.end, k=args.k, min_score=args.min_score)
    else:
        results = index.search_text(args.text, k=args.k, min_score=args.min_score, rerank=args.rerank)
    if args.json:
        print(json.dumps({"query": args.text or {"example": args.example, "start": args.start, "end": args.end},
                          "results": [r.to_json() for r in results]}, indent=1))
        return 0
    if not results:
        print("no moments" + (f" scoring at least {args.min_score}" if args.min_score is not None else ""))
    rank = 0
    for video in results:
        print(f"{video.path}  (best {video.score:.3f})")
        for m in video.moments:
            rank += 1
            print(f"  {rank:>3}. {_clock(m.start)}-{_clock(m.end)}  {m.score:.3f}  {m.scale}"
                  + (f"  ({m.hits} windows, {_clock(m.extent[0])}-{_clock(m.extent[1])})" if m.hits > 1 else ""))
    return 0


def _clock(seconds: float) -> str:
    minutes, secs = divmod(max(seconds, 0.0), 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes}:{secs:04.1f}"


def run_serve(args: argparse.Namespace) -> int:
    from vidla.search.server import serve

    try:
        serve(Path(args.index), host=args.host, port=args.port, checkpoint=args.checkpoint, nprobe=args.nprobe,
              ef_search=args.ef_search)
    except ImportError as e:  # fastapi or uvicorn, imported when the server starts
        raise VidlaError(f"{e.name or e} is not installed: pip install 'vidla[search]'") from e
    return 0
