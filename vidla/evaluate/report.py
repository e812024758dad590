"""Writing an evaluation's outputs: results.json, results.md (tables + protocol) and the duration plot.

The plot is the paper's Figure 4 (left): R@1 of text-to-video retrieval for videos grouped by duration (top-1
accuracy for classification and multiple choice). Every file is written atomically.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vidla.io import atomic_write

RESULTS_JSON, RESULTS_MD, DURATION_PLOT = "results.json", "results.md", "r1_by_duration.png"
_RETRIEVAL_COLUMNS = (("R@1", "r1"), ("R@5", "r5"), ("R@10", "r10"), ("RSum", "rsum"), ("R mean", "rmean"),
                      ("MdR", "mdr"), ("MnR", "mnr"))
_DIRECTIONS = (("text -> video", "t2v"), ("video -> text", "v2t"))


# -- duration bins ---------------------------------------------------------------------------------------------------

def duration_edges(durations: Sequence[float], num_bins: int = 5) -> list[float]:
    """Bin edges (s) at quantiles of the durations, so bins hold similar counts; inner edges rounded to 0.1 s.

    The first edge is at (or below) the shortest video and the last is infinite, so every video has a bin.
    """
    durations = np.asarray(durations, dtype=np.float64)
    low = float(np.floor(durations.min() * 10) / 10) if durations.size else 0.0
    if durations.size == 0:
        return [low, math.inf]
    inner = np.unique(np.round(np.quantile(durations, np.linspace(0, 1, num_bins + 1)[1:-1]), 1))
    return [low, *(float(e) for e in inner if e > low), math.inf]


def parse_edges(text: str) -> list[float]:
    """'10,20,30' -> [0, 10, 20, 30, inf]: user edges, closed to cover every duration."""
    edges = sorted(float(part) for part in text.split(",") if part.strip())
    if not edges or any(e < 0 for e in edges):
        raise ValueError(f"duration bins are non-negative seconds separated by commas, got {text!r}")
    return sorted(set(([0.0] if edges[0] > 0 else []) + edges + ([] if math.isinf(edges[-1]) else [math.inf])))


def by_duration(per_query: dict[str, np.ndarray], edges: Sequence[float]) -> list[dict[str, Any]]:
    """Per bin [lo, hi): query count and the percentage of hits (plain, and with DSL when present)."""
    durations = np.asarray(per_query["duration"], dtype=np.float64)
    which = np.clip(np.searchsorted(np.asarray(edges), durations, side="right") - 1, 0, len(edges) - 2)
    bins = []
    for b in range(len(edges) - 1):
        inside = which == b
        row: dict[str, Any] = {"bin": _bin_label(edges[b], edges[b + 1]), "min_s": edges[b],
                               "max_s": None if math.isinf(edges[b + 1]) else edges[b + 1],
                               "count": int(inside.sum())}
        for key in ("hit", "hit_dsl"):
            if key in per_query:
                row[key.replace("hit", "r1")] = 100.0 * float(np.mean(per_query[key][inside])) if inside.any() else None
        bins.append(row)
    return bins


def _bin_label(lo: float, hi: float) -> str:
    return f">= {lo:g} s" if math.isinf(hi) else f"{lo:g}-{hi:g} s"


# -- markdown --------------------------------------------------------------------------------------------------------

def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_number(v) for v in row) + " |" for row in rows]


def metric_table(task: str, metrics: dict[str, float]) -> list[str]:
    if task == "retrieval":
        rows = []
        for label, prefix in _DIRECTIONS:
            for suffix, note in (("", ""), ("_dsl", " (DSL)")):
                if f"{prefix}_r1{suffix}" in metrics:
                    rows.append([label + note] + [metrics[f"{prefix}_{key}{suffix}"] for _, key in _RETRIEVAL_COLUMNS])
        return _table(["direction"] + [name for name, _ in _RETRIEVAL_COLUMNS], rows)
    return _table(list(metrics), [list(metrics.values())])


def duration_table(bins: list[dict[str, Any]], hit_name: str) -> list[str]:
    with_dsl = any("r1_dsl" in row for row in bins)
    header = ["duration", "queries", hit_name] + ([f"{hit_name} (DSL)"] if with_dsl else [])
    rows = [[row["bin"], row["count"], row.get("r1")] + ([row.get("r1_dsl")] if with_dsl else []) for row in bins]
    return _table(header, rows)


def markdown_report(results: dict[str, Any]) -> str:
    protocol = results["protocol"]
    lines = [f"# {results['benchmark']} ({protocol['split']}): {results['task'].replace('_', ' ')}", "",
             f"Checkpoint: `{results['model']['checkpoint']}`", ""]
    lines += metric_table(results["task"], results["metrics"])
    if "twin_accuracy" in results["metrics"]:
        lines += ["", f"Twin accuracy (each query's own clip scored above its paired distractor, ties half; 50 = "
                      f"chance): {results['metrics']['twin_accuracy']:.1f} over "
                      f"{results['counts'].get('twin_queries', '?')} queries."]
    lines += ["", "R@K and accuracies in percent; MdR/MnR are ranks (1 = best).", "", "## Protocol", ""]
    lines += [f"- **{key.replace('_', ' ')}**: {value}" for key, value in protocol.items()
              if value not in (None, "") and key != "reference"]
    if results.get("by_duration"):
        lines += ["", f"## {results['duration_metric']} by video duration", ""]
        lines += duration_table(results["by_duration"], results["duration_metric"])
    if protocol.get("reference"):
        lines += ["", f"Paper (SPEC section 4): {protocol['reference']}."]
    return "\n".join(lines) + "\n"


# -- plot ------------------------------------------------------------------------------------------------------------

def plot_by_duration(bins: list[dict[str, Any]], title: str, ylabel: str) -> bytes:
    """A bar chart (PNG bytes) of the hit rate per duration bin, DSL bars beside the plain ones when present."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), dpi=120)
    FigureCanvasAgg(figure)  # the Agg canvas: no display, no pyplot global state
    axes = figure.add_subplot()
    series = [("r1", "plain", "#3b6ea5")] + ([("r1_dsl", "DSL", "#d08c3b")] if any("r1_dsl" in b for b in bins)
                                             else [])
    width = 0.8 / len(series)
    positions = np.arange(len(bins))
    for i, (key, label, colour) in enumerate(series):
        values = [b.get(key) or 0.0 for b in bins]
        bars = axes.bar(positions + (i - (len(series) - 1) / 2) * width, values, width, label=label, color=colour)
        axes.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=7, padding=2)
    axes.set_xticks(positions, [f"{b['bin']}\n(n={b['count']})" for b in bins], fontsize=8)
    axes.set_ylabel(ylabel)
    axes.set_xlabel("video duration")
    axes.set_ylim(0, 105)
    axes.set_title(title, fontsize=10)
    if len(series) > 1:
        axes.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


# -- writing ---------------------------------------------------------------------------------------------------------

def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_report(results: dict[str, Any], output_dir: str | Path) -> dict[str, Path]:
    """Writes results.json, results.md and (when matplotlib is installed) the duration plot; returns their paths.

    `results["outputs"]` is filled in with the file names before results.json is written.
    """
    output_dir = Path(output_dir)
    paths = {"json": output_dir / RESULTS_JSON, "markdown": output_dir / RESULTS_MD}
    plot = None
    if results.get("by_duration"):
        try:
            plot = plot_by_duration(results["by_duration"], f"{results['benchmark']} ({results['protocol']['split']})"
                                    f": {results['duration_metric']} by video duration", results["duration_metric"])
        except ImportError:
            results.setdefault("warnings", []).append("matplotlib is not installed: no duration plot written "
                                                      "(pip install matplotlib)")
    if plot is not None:
        paths["plot"] = output_dir / DURATION_PLOT
        with atomic_write(paths["plot"], "wb") as f:
            f.write(plot)
    results["outputs"] = {kind: path.name for kind, path in paths.items()}
    with atomic_write(paths["markdown"]) as f:
        f.write(markdown_report(results))
    with atomic_write(paths["json"]) as f:
        json.dump(results, f, indent=2, default=_json_default, allow_nan=False)
        f.write("\n")
    return paths
