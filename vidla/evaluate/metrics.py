"""Retrieval and classification metrics, computed exactly and in bounded memory.

Conventions (docs/evaluation.md has the full definitions):

- A similarity matrix is **texts x videos**: row i is text i, column j is video j; `text_to_video[i]` is the index
  of the video text i describes. The *text axis* is dim 0 (rows), the *video axis* dim 1.
- Ranks are 1-based and **pessimistic**: an item tied with the correct one counts as ranked above it, so
  rank = number of candidates scoring >= the correct one (scipy's `rankdata(-scores, method="max")`). A constant
  model therefore scores R@1 = 0, never the optimistic 100 that `argsort`-based code can report on ties.
- Text-to-video (t2v): every text is a query (MSVD and VATEX: every caption), ranked against all videos.
- Video-to-text (v2t): every video with at least one text is a query, ranked against all texts; its rank is that of
  its best-ranked own text (the other own texts still compete, as in any gallery).
- R@K is a percentage; MdR and MnR are the median and mean rank.

Memory: similarities are produced `chunk_size` rows at a time from a `Similarity` source (a matrix or two embedding
tables), so a 10k x 10k benchmark never holds more than `chunk_size` x 10k scores.

Dual softmax (DSL, opt-in, `DualSoftmax`) re-weights each score by a softmax over the *query* axis:
t2v uses `sim * softmax(100 * sim, dim=0)` on the texts x videos matrix (dim 0 = the text axis, as the paper and
CAMoE/CLIP-ViP's evaluation code write it); v2t uses the same rule on the transposed matrix, i.e. a softmax over
the video axis. It uses the statistics of the whole test set (every other query), so it is post-processing that a
deployed search cannot do; it is always reported beside the plain figure.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_CHUNK_SIZE = 1024
DSL_TEMPERATURE = 100.0
RECALL_KS = (1, 5, 10)


class Similarity(Protocol):
    """A texts x videos similarity matrix that hands out blocks of rows, in either orientation."""

    num_texts: int
    num_videos: int

    def text_rows(self, start: int, stop: int) -> torch.Tensor:
        """sim[start:stop, :]: [stop - start, num_videos]."""

    def video_rows(self, start: int, stop: int) -> torch.Tensor:
        """sim[:, start:stop].T: [stop - start, num_texts]."""


class MatrixSimilarity:
    """A similarity matrix already in memory (texts x videos)."""

    def __init__(self, matrix: torch.Tensor | np.ndarray):
        self.matrix = torch.as_tensor(matrix)
        if self.matrix.ndim != 2:
            raise ValueError(f"a similarity matrix is 2-D (texts x videos), got shape {tuple(self.matrix.shape)}")
        self.num_texts, self.num_videos = self.matrix.shape

    def text_rows(self, start: int, stop: int) -> torch.Tensor:
        return self.matrix[start:stop]

    def video_rows(self, start: int, stop: int) -> torch.Tensor:
        return self.matrix[:, start:stop].T


class EmbeddingSimilarity:
    """Cosine similarity of text and video embeddings, computed block by block on `device`."""

    def __init__(self, text: torch.Tensor, video: torch.Tensor, device: str | torch.device | None = None):
        if text.ndim != 2 or video.ndim != 2 or text.shape[1] != video.shape[1]:
            raise ValueError(f"expected text [N, D] and video [M, D] embeddings, got {tuple(text.shape)} and "
                             f"{tuple(video.shape)}")
        device = device or text.device
        dtype = torch.promote_types(torch.promote_types(text.dtype, video.dtype), torch.float32)  # fp16/bf16 -> fp32
        self.text = F.normalize(text.to(dtype), dim=-1).to(device)
        self.video = F.normalize(video.to(dtype), dim=-1).to(device)
        self.num_texts, self.num_videos = len(text), len(video)

    def text_rows(self, start: int, stop: int) -> torch.Tensor:
        return self.text[start:stop] @ self.video.T

    def video_rows(self, start: int, stop: int) -> torch.Tensor:
        return self.video[start:stop] @ self.text.T


class DualSoftmax:
    """`base` re-weighted by a softmax over the query axis (module docstring), streamed in two passes.

    The softmax normalisers are log-sum-exps over whole columns; a first pass over row blocks computes them, so the
    full matrix is never held. Scores are float64: in float32, exp(100 * sim - lse) underflows to 0 for weak
    matches, and the resulting exact zeros would tie (and, pessimistically, sink) correct items.
    """

    def __init__(self, base: Similarity, temperature: float = DSL_TEMPERATURE,
                 chunk_size: int = DEFAULT_CHUNK_SIZE):
        self.base, self.temperature = base, temperature
        self.num_texts, self.num_videos = base.num_texts, base.num_videos
        # logsumexp over texts for each video (t2v normaliser) and over videos for each text (v2t normaliser).
        self.per_video = self._logsumexp_of_rows(base.video_rows, self.num_videos, chunk_size)
        self.per_text = self._logsumexp_of_rows(base.text_rows, self.num_texts, chunk_size)

    def _logsumexp_of_rows(self, rows, count: int, chunk_size: int) -> torch.Tensor:
        return torch.cat([torch.logsumexp(self.temperature * rows(start, min(start + chunk_size, count)).double(),
                                          dim=1) for start in range(0, count, chunk_size)])

    def _reweight(self, scores: torch.Tensor, normaliser: torch.Tensor) -> torch.Tensor:
        scores = scores.double()
        return scores * torch.exp(self.temperature * scores - normaliser.to(scores.device)[None, :])

    def text_rows(self, start: int, stop: int) -> torch.Tensor:
        return self._reweight(self.base.text_rows(start, stop), self.per_video)

    def video_rows(self, start: int, stop: int) -> torch.Tensor:
        return self._reweight(self.base.video_rows(start, stop), self.per_text)


def dual_softmax(similarity: torch.Tensor | np.ndarray, temperature: float = DSL_TEMPERATURE) -> torch.Tensor:
    """The t2v DSL matrix of a texts x videos matrix: `sim * softmax(temperature * sim, dim=0)` (dim 0 = texts)."""
    sim = torch.as_tensor(similarity).double()
    return sim * torch.softmax(temperature * sim, dim=0)


def as_similarity(similarity: Similarity | torch.Tensor | np.ndarray) -> Similarity:
    return MatrixSimilarity(similarity) if isinstance(similarity, (torch.Tensor, np.ndarray)) else similarity


def _check_finite(scores: torch.Tensor) -> None:
    if not torch.isfinite(scores).all():
        raise ValueError("the similarity matrix has NaN or infinite entries (a diverged model or bad embeddings)")


def pessimistic_ranks(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """For each row of scores [N, C], 1-based rank of the score `target[n]` (a value): #entries >= it."""
    return (scores >= target[:, None]).sum(dim=1)


def text_to_video_ranks(similarity: Similarity | torch.Tensor | np.ndarray, text_to_video: Sequence[int],
                        chunk_size: int = DEFAULT_CHUNK_SIZE) -> np.ndarray:
    """Rank of each text's own video among all videos (pessimistic ties): int64 [num_texts]."""
    sim = as_similarity(similarity)
    owners = _check_mapping(text_to_video, sim)
    ranks = []
    for start in range(0, sim.num_texts, chunk_size):
        rows = sim.text_rows(start, min(start + chunk_size, sim.num_texts))
        _check_finite(rows)
        own = owners[start:start + len(rows)].to(rows.device)
        ranks.append(pessimistic_ranks(rows, rows.gather(1, own[:, None])[:, 0]).cpu())
    return torch.cat(ranks).numpy() if ranks else np.zeros(0, np.int64)


def video_to_text_ranks(similarity: Similarity | torch.Tensor | np.ndarray, text_to_video: Sequence[int],
                        chunk_size: int = DEFAULT_CHUNK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Rank of each video's best own text among all texts (pessimistic ties).

    Returns (ranks, videos): the ranks of the videos that have at least one text, and those videos' indices.
    Because a pessimistic rank falls as the score rises, the best-ranked own text is the best-scoring one.
    """
    sim = as_similarity(similarity)
    owners = _check_mapping(text_to_video, sim)
    has_text = torch.zeros(sim.num_videos, dtype=torch.bool)
    has_text[owners] = True
    ranks = []
    for start in range(0, sim.num_videos, chunk_size):
        rows = sim.video_rows(start, min(start + chunk_size, sim.num_videos))
        _check_finite(rows)
        videos = torch.arange(start, start + len(rows), device=rows.device)
        own = owners.to(rows.device)[None, :] == videos[:, None]
        best = rows.masked_fill(~own, -torch.inf).amax(dim=1)
        ranks.append(pessimistic_ranks(rows, best).cpu())
    all_ranks = torch.cat(ranks) if ranks else torch.zeros(0, dtype=torch.long)
    return all_ranks[has_text].numpy(), torch.nonzero(has_text)[:, 0].numpy()


def twin_wins(similarity: Similarity | torch.Tensor | np.ndarray, text_to_video: Sequence[int],
              twin_of: Sequence[int | None], chunk_size: int = DEFAULT_CHUNK_SIZE) -> np.ndarray:
    """The paired-distractor test of each text query: 1 when it scores its own video above that video's twin (a
    clip made to differ in one respect, e.g. the order of its events), 0.5 on a tie, 0 below; NaN when its video
    has no twin. `twin_of[v]` is the index of video v's twin, or None. Twin accuracy = 100 x the mean (50 = chance)."""
    sim = as_similarity(similarity)
    owners = _check_mapping(text_to_video, sim)
    if len(twin_of) != sim.num_videos:
        raise ValueError(f"twin_of must give one entry per video ({sim.num_videos}), got {len(twin_of)}")
    twins = torch.tensor([-1 if t is None else int(t) for t in twin_of], dtype=torch.long)
    if len(twins) and (twins.max() >= sim.num_videos or twins.min() < -1):
        raise ValueError(f"twin_of has indices outside 0..{sim.num_videos - 1}")
    wins = []
    for start in range(0, sim.num_texts, chunk_size):
        rows = sim.text_rows(start, min(start + chunk_size, sim.num_texts)).float().cpu()
        _check_finite(rows)
        own_video = owners[start:start + len(rows)]
        twin = twins[own_video]
        own = rows.gather(1, own_video[:, None])[:, 0]
        other = rows.gather(1, twin.clamp(min=0)[:, None])[:, 0]
        win = (own > other).double() + 0.5 * (own == other).double()
        wins.append(torch.where(twin >= 0, win, torch.full_like(win, float("nan"))))
    return torch.cat(wins).numpy() if wins else np.zeros(0)


def twin_accuracy(similarity: Similarity | torch.Tensor | np.ndarray, text_to_video: Sequence[int],
                  twin_of: Sequence[int | None], chunk_size: int = DEFAULT_CHUNK_SIZE) -> float:
    """Percent of the queries with a twin that score their own video above the twin (ties count half)."""
    wins = twin_wins(similarity, text_to_video, twin_of, chunk_size)
    wins = wins[~np.isnan(wins)]
    if wins.size == 0:
        raise ValueError("no query's video has a twin")
    return 100.0 * float(wins.mean())


def _check_mapping(text_to_video: Sequence[int], sim: Similarity) -> torch.Tensor:
    owners = torch.as_tensor(np.asarray(text_to_video, dtype=np.int64))
    if owners.ndim != 1 or len(owners) != sim.num_texts:
        raise ValueError(f"text_to_video must give one video index per text ({sim.num_texts}), got {len(owners)}")
    if len(owners) and (owners.min() < 0 or owners.max() >= sim.num_videos):
        raise ValueError(f"text_to_video has indices outside 0..{sim.num_videos - 1}")
    return owners


def rank_metrics(ranks: np.ndarray, prefix: str, ks: Sequence[int] = RECALL_KS) -> dict[str, float]:
    """R@K (percent) for each K, their sum and mean, median rank and mean rank, named `{prefix}_r1` etc."""
    ranks = np.asarray(ranks)
    if ranks.size == 0:
        raise ValueError(f"{prefix}: no queries to score")
    recalls = {f"{prefix}_r{k}": 100.0 * float(np.mean(ranks <= k)) for k in ks}
    return {**recalls, f"{prefix}_rsum": sum(recalls.values()), f"{prefix}_rmean": sum(recalls.values()) / len(ks),
            f"{prefix}_mdr": float(np.median(ranks)), f"{prefix}_mnr": float(np.mean(ranks))}


def retrieval_ranks(similarity: Similarity | torch.Tensor | np.ndarray, text_to_video: Sequence[int],
                    chunk_size: int = DEFAULT_CHUNK_SIZE) -> dict[str, np.ndarray]:
    """Both directions' per-query ranks: {"t2v": [texts], "v2t": [videos with a text], "v2t_videos": their ids}."""
    v2t, v2t_videos = video_to_text_ranks(similarity, text_to_video, chunk_size)
    return {"t2v": text_to_video_ranks(similarity, text_to_video, chunk_size), "v2t": v2t, "v2t_videos": v2t_videos}


def metrics_from_ranks(ranks: dict[str, np.ndarray], suffix: str = "") -> dict[str, float]:
    metrics = {**rank_metrics(ranks["t2v"], "t2v"), **rank_metrics(ranks["v2t"], "v2t")}
    return {name + suffix: value for name, value in metrics.items()}


def retrieval_metrics(similarity: Similarity | torch.Tensor | np.ndarray, text_to_video: Sequence[int],
                      dsl: bool = False, chunk_size: int = DEFAULT_CHUNK_SIZE) -> dict[str, float]:
    """`t2v_r1 ... v2t_mnr` of a texts x videos similarity; with `dsl`, also `t2v_r1_dsl ...` beside them."""
    sim = as_similarity(similarity)
    metrics = metrics_from_ranks(retrieval_ranks(sim, text_to_video, chunk_size))
    if dsl:
        dsl_sim = DualSoftmax(sim, chunk_size=chunk_size)
        metrics.update(metrics_from_ranks(retrieval_ranks(dsl_sim, text_to_video, chunk_size), "_dsl"))
    return metrics


def classification_ranks(scores: torch.Tensor | np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """Pessimistic rank of the true class in each row of scores [N, C] (ties count against)."""
    scores = torch.as_tensor(scores)
    labels_t = torch.as_tensor(np.asarray(labels, dtype=np.int64))
    if scores.ndim != 2 or len(scores) != len(labels_t):
        raise ValueError(f"expected scores [N, C] for {len(labels_t)} labels, got {tuple(scores.shape)}")
    _check_finite(scores)
    return pessimistic_ranks(scores, scores.gather(1, labels_t[:, None])[:, 0]).numpy()


def classification_metrics(scores: torch.Tensor | np.ndarray, labels: Sequence[int],
                           ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Top-K accuracy (percent) and mean per-class top-1 accuracy (percent; over classes present in `labels`)."""
    ranks = classification_ranks(scores, labels)
    labels = np.asarray(labels)
    num_classes = torch.as_tensor(scores).shape[1]
    metrics = {f"top{k}": 100.0 * float(np.mean(ranks <= k)) for k in ks if k <= num_classes}
    per_class = [np.mean(ranks[labels == c] <= 1) for c in np.unique(labels)]
    metrics["mean_class_top1"] = 100.0 * float(np.mean(per_class))
    return metrics
