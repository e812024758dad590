"""Test helpers: reference metrics written from their definitions, the synthetic benchmark's shape, the CLI."""

import numpy as np
from scipy.stats import rankdata

from vidla.cli import main

# (frames at 10 fps) per synthetic MSR-VTT video: durations 1 to 8 s, for the duration bins.
MSRVTT_FRAMES = [10, 15, 20, 30, 40, 50, 60, 80]
MSRVTT_CAPTIONS_PER_VIDEO = 3


def run_cli(argv: list[str]) -> int:
    """`vidla <argv>`: the command's exit code (a user error is a message on stderr, as on the command line)."""
    return main(argv)


def ref_t2v_ranks(sim, t2v):
    """scipy: pessimistic rank of each text's video in its row."""
    return np.array([rankdata(-sim[i], method="max")[t2v[i]] for i in range(len(sim))])


def ref_v2t_ranks(sim, t2v):
    """scipy: per video with a text, the best pessimistic rank among its texts in its column."""
    t2v = np.asarray(t2v)
    out = []
    for v in range(sim.shape[1]):
        own = np.flatnonzero(t2v == v)
        if own.size:
            out.append(rankdata(-sim[:, v], method="max")[own].min())
    return np.array(out)


def ref_argsort_t2v_ranks(sim, t2v):
    """numpy argsort (CLIP4Clip's formulation): exact when there are no ties."""
    order = np.argsort(-sim, axis=1)
    return np.array([int(np.flatnonzero(order[i] == t2v[i])[0]) + 1 for i in range(len(sim))])


def ref_argsort_v2t_ranks(sim, t2v):
    t2v = np.asarray(t2v)
    order = np.argsort(-sim.T, axis=1)
    return np.array([min(int(np.flatnonzero(order[v] == t)[0]) + 1 for t in np.flatnonzero(t2v == v))
                     for v in range(sim.shape[1]) if (t2v == v).any()])


def ref_metrics(ranks, prefix):
    r = {k: 100.0 * np.mean(ranks <= k) for k in (1, 5, 10)}
    return {f"{prefix}_r1": r[1], f"{prefix}_r5": r[5], f"{prefix}_r10": r[10],
            f"{prefix}_rsum": r[1] + r[5] + r[10], f"{prefix}_rmean": (r[1] + r[5] + r[10]) / 3,
            f"{prefix}_mdr": float(np.median(ranks)), f"{prefix}_mnr": float(np.mean(ranks))}


def ref_retrieval_metrics(sim, t2v):
    return {**ref_metrics(ref_t2v_ranks(sim, t2v), "t2v"), **ref_metrics(ref_v2t_ranks(sim, t2v), "v2t")}
