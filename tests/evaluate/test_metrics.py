"""Retrieval and classification metrics against independent computations written from the definitions."""

import math

import numpy as np
import pytest
import torch
from _eval_helpers import (
    ref_argsort_t2v_ranks,
    ref_argsort_v2t_ranks,
    ref_metrics,
    ref_retrieval_metrics,
    ref_t2v_ranks,
    ref_v2t_ranks,
)
from scipy.stats import rankdata

from vidla.evaluate.metrics import (
    DualSoftmax,
    EmbeddingSimilarity,
    MatrixSimilarity,
    classification_metrics,
    dual_softmax,
    retrieval_metrics,
    retrieval_ranks,
    text_to_video_ranks,
    video_to_text_ranks,
)


def assert_metrics_match(metrics, sim, t2v):
    for name, value in ref_retrieval_metrics(sim, t2v).items():
        assert metrics[name] == pytest.approx(value, abs=1e-9), name


def multi_caption_mapping(rng, num_videos, max_captions, empty=()):
    t2v = [v for v in range(num_videos) if v not in empty for _ in range(rng.integers(1, max_captions + 1))]
    return np.array(rng.permutation(t2v))


# -- random matrices -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 7, 1024])
def test_one_caption_per_video_matches_scipy_and_argsort(chunk_size):
    rng = np.random.default_rng(0)
    sim = rng.standard_normal((50, 50))
    t2v = np.arange(50)
    ranks = retrieval_ranks(sim, t2v, chunk_size=chunk_size)
    np.testing.assert_array_equal(ranks["t2v"], ref_t2v_ranks(sim, t2v))
    np.testing.assert_array_equal(ranks["t2v"], ref_argsort_t2v_ranks(sim, t2v))
    np.testing.assert_array_equal(ranks["v2t"], ref_argsort_v2t_ranks(sim, t2v))
    assert_metrics_match(retrieval_metrics(sim, t2v, chunk_size=chunk_size), sim, t2v)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_several_captions_per_video(seed):
    rng = np.random.default_rng(seed)
    t2v = multi_caption_mapping(rng, 30, 6, empty=(4, 17))  # two gallery videos have no caption
    sim = rng.standard_normal((len(t2v), 30))
    ranks, videos = video_to_text_ranks(sim, t2v, chunk_size=8)
    np.testing.assert_array_equal(ranks, ref_v2t_ranks(sim, t2v))
    np.testing.assert_array_equal(ranks, ref_argsort_v2t_ranks(sim, t2v))
    assert 4 not in videos and 17 not in videos and len(videos) == 28
    np.testing.assert_array_equal(text_to_video_ranks(sim, t2v, chunk_size=5), ref_argsort_t2v_ranks(sim, t2v))
    assert_metrics_match(retrieval_metrics(sim, t2v, chunk_size=9), sim, t2v)


def test_ties_are_pessimistic_on_quantised_scores():
    rng = np.random.default_rng(4)
    t2v = multi_caption_mapping(rng, 25, 4)
    sim = np.round(rng.uniform(0, 1, (len(t2v), 25)), 1)  # 11 distinct values: ties everywhere
    assert_metrics_match(retrieval_metrics(sim, t2v, chunk_size=6), sim, t2v)


def test_embeddings_equal_their_cosine_matrix():
    rng = np.random.default_rng(5)
    text, video = torch.randn(40, 16, dtype=torch.float64), torch.randn(15, 16, dtype=torch.float64)
    t2v = multi_caption_mapping(rng, 15, 4)[:40]
    text = text[: len(t2v)]
    cosine = (torch.nn.functional.normalize(text, dim=-1) @ torch.nn.functional.normalize(video, dim=-1).T).numpy()
    metrics = retrieval_metrics(EmbeddingSimilarity(text, video), t2v, chunk_size=4)
    assert_metrics_match(metrics, cosine, t2v)


# -- hand-built matrices ---------------------------------------------------------------------------------------------


def test_hand_built_ties_and_multi_captions():
    # 4 texts, 3 videos; texts 0, 1 describe video 0, text 2 video 1, text 3 video 2.
    sim = np.array([[0.9, 0.9, 0.1],   # tie with video 1: pessimistic rank 2
                    [0.5, 0.2, 0.1],   # rank 1
                    [0.3, 0.3, 0.3],   # all tied: rank 3
                    [0.1, 0.8, 0.7]])  # rank 2
    t2v = [0, 0, 1, 2]
    ranks = retrieval_ranks(sim, t2v)
    np.testing.assert_array_equal(ranks["t2v"], [2, 1, 3, 2])
    # Video 0: its texts score 0.9 and 0.5 in column 0 -> best text ranks 1. Video 1: column [0.9, 0.2, 0.3, 0.8],
    # its text scores 0.3 -> rank 3. Video 2: column [0.1, 0.1, 0.3, 0.7], its text 0.7 -> rank 1.
    np.testing.assert_array_equal(ranks["v2t"], [1, 3, 1])
    metrics = retrieval_metrics(sim, t2v)
    assert metrics["t2v_r1"] == 25.0 and metrics["t2v_mdr"] == 2.0 and metrics["t2v_mnr"] == 2.0
    assert metrics["v2t_r1"] == pytest.approx(200 / 3) and metrics["v2t_mdr"] == 1.0
    assert metrics["v2t_mnr"] == pytest.approx(5 / 3)


def test_a_constant_model_scores_zero_not_perfect():
    sim = np.zeros((20, 20))
    metrics = retrieval_metrics(sim, np.arange(20))
    assert metrics["t2v_r1"] == 0.0 and metrics["v2t_r10"] == 0.0 and metrics["t2v_mdr"] == 20.0


def test_v2t_takes_the_best_caption_and_a_tied_sibling_counts_against():
    # Video 0 has texts 0 and 1 scoring 0.9 and 0.8 in its column; text 2 (video 1) scores 0.95.
    sim = np.array([[0.9, 0.0], [0.8, 0.0], [0.95, 1.0]])
    ranks, _ = video_to_text_ranks(sim, [0, 0, 1])
    np.testing.assert_array_equal(ranks, [2, 1])
    sim[1, 0] = 0.9  # its second text now ties with the first: pessimistically, rank 3
    np.testing.assert_array_equal(video_to_text_ranks(sim, [0, 0, 1])[0], [3, 1])
    np.testing.assert_array_equal(video_to_text_ranks(sim, [0, 0, 1])[0], ref_v2t_ranks(sim, [0, 0, 1]))


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="one video index per text"):
        retrieval_metrics(np.zeros((3, 3)), [0, 1])
    with pytest.raises(ValueError, match="outside"):
        retrieval_metrics(np.zeros((2, 2)), [0, 5])
    with pytest.raises(ValueError, match="NaN"):
        retrieval_metrics(np.array([[np.nan, 0.0], [0.0, 1.0]]), [0, 1])


# -- dual softmax ----------------------------------------------------------------------------------------------------

# texts x videos; text i describes video i. Text 1's plain top-1 is video 0 (0.02 > 0.015).
DSL_SIM = np.array([[0.02, 0.000, 0.00],
                    [0.02, 0.015, 0.00],
                    [0.02, 0.000, 0.01]])


def test_dsl_matches_a_hand_computed_3x3_example():
    e = math.e
    # t2v: softmax of 100 * sim over the text axis (each column): column 0 is [2, 2, 2] -> 1/3 each;
    # column 1 is [0, 1.5, 0]; column 2 is [0, 0, 1].
    c1 = e ** 1.5 + 2
    expected_t2v = np.array([[0.02 / 3, 0.0, 0.0],
                             [0.02 / 3, 0.015 * e ** 1.5 / c1, 0.0],
                             [0.02 / 3, 0.0, 0.01 * e / (e + 2)]])
    np.testing.assert_allclose(dual_softmax(DSL_SIM).numpy(), expected_t2v, rtol=1e-12)
    source = DualSoftmax(MatrixSimilarity(DSL_SIM), chunk_size=2)
    np.testing.assert_allclose(source.text_rows(0, 3).numpy(), expected_t2v, rtol=1e-12)
    # v2t (videos x texts): softmax of 100 * sim over the video axis (each text's row of DSL_SIM):
    # text 0: [2, 0, 0]; text 1: [2, 1.5, 0]; text 2: [2, 0, 1].
    z0, z1, z2 = e ** 2 + 2, e ** 2 + e ** 1.5 + 1, e ** 2 + e + 1
    expected_v2t = np.array([[0.02 * e ** 2 / z0, 0.02 * e ** 2 / z1, 0.02 * e ** 2 / z2],
                             [0.0, 0.015 * e ** 1.5 / z1, 0.0],
                             [0.0, 0.0, 0.01 * e / z2]])
    np.testing.assert_allclose(source.video_rows(0, 3).numpy(), expected_v2t, rtol=1e-12)


def test_dsl_is_reported_beside_the_plain_figures():
    metrics = retrieval_metrics(DSL_SIM, [0, 1, 2], dsl=True)
    assert metrics["t2v_r1"] == pytest.approx(100 / 3)  # only text 0 finds its video
    assert metrics["t2v_r1_dsl"] == pytest.approx(200 / 3)  # DSL lifts text 1 (0.0104 > 0.0067)
    assert "t2v_r1" in retrieval_metrics(DSL_SIM, [0, 1, 2]) and "t2v_r1_dsl" not in retrieval_metrics(DSL_SIM,
                                                                                                        [0, 1, 2])


def test_streamed_dsl_equals_the_dense_definition_on_random_scores():
    rng = np.random.default_rng(6)
    t2v = multi_caption_mapping(rng, 20, 3)
    sim = rng.uniform(-0.2, 0.6, (len(t2v), 20))
    dense_t2v = dual_softmax(sim).numpy()
    dense_v2t = dual_softmax(sim.T).numpy()  # v2t: the same rule on the transposed matrix
    metrics = retrieval_metrics(sim, t2v, dsl=True, chunk_size=7)
    for name, value in ref_metrics(ref_t2v_ranks(dense_t2v, t2v), "t2v").items():
        assert metrics[name + "_dsl"] == pytest.approx(value), name
    for name, value in ref_metrics(ref_v2t_ranks(dense_v2t.T, t2v), "v2t").items():
        assert metrics[name + "_dsl"] == pytest.approx(value), name


# -- memory bound ----------------------------------------------------------------------------------------------------


class RecordingSimilarity(EmbeddingSimilarity):
    def __init__(self, *args):
        super().__init__(*args)
        self.largest_block = 0

    def text_rows(self, start, stop):
        self.largest_block = max(self.largest_block, stop - start)
        return super().text_rows(start, stop)

    def video_rows(self, start, stop):
        self.largest_block = max(self.largest_block, stop - start)
        return super().video_rows(start, stop)


def test_10k_by_10k_runs_in_chunks():
    generator = torch.Generator().manual_seed(0)
    # float64, so that the reference's matmul cannot differ from the chunked one in a way that breaks a near-tie.
    text, video = (torch.randn(10_000, 32, generator=generator, dtype=torch.float64) for _ in range(2))
    text[:, :8] += 2 * video[:, :8]  # a weakly aligned model, so the ranks are not all in the tail
    t2v = np.arange(10_000)
    source = RecordingSimilarity(text, video)
    ranks = retrieval_ranks(source, t2v, chunk_size=1000)
    assert source.largest_block == 1000  # never more than 1000 x 10k scores at once
    # Spot-check 50 queries per direction against scipy on their full row/column.
    picked = np.random.default_rng(0).choice(10_000, 50, replace=False)
    t, v = source.text.numpy(), source.video.numpy()
    for i in picked:
        assert ranks["t2v"][i] == rankdata(-(t[i] @ v.T), method="max")[i]
        assert ranks["v2t"][i] == rankdata(-(v[i] @ t.T), method="max")[i]


# -- classification --------------------------------------------------------------------------------------------------


def test_classification_metrics_with_ties_and_per_class_mean():
    scores = np.array([[0.9, 0.1, 0.0],   # label 0: rank 1
                       [0.5, 0.5, 0.0],   # label 1: tied with class 0 -> rank 2
                       [0.1, 0.2, 0.3],   # label 2: rank 1
                       [0.3, 0.2, 0.1]])  # label 2: rank 3
    metrics = classification_metrics(scores, [0, 1, 2, 2], ks=(1, 2))
    assert metrics["top1"] == 50.0 and metrics["top2"] == 75.0
    assert metrics["mean_class_top1"] == pytest.approx(100 * (1 + 0 + 0.5) / 3)


def test_twin_wins_by_hand():
    from vidla.data import ClipRecord
    from vidla.evaluate import twin_accuracy, twin_wins
    from vidla.evaluate.tasks import twin_indices

    sim = torch.tensor([[0.9, 0.1, 0.0],    # text 0 -> video 0, twin 1: win
                        [0.8, 0.2, 0.0],    # text 1 -> video 1, twin 0: loss
                        [0.5, 0.5, 0.3],    # text 2 -> video 0, twin 1: tie
                        [0.0, 0.0, 1.0]])   # text 3 -> video 2, no twin
    records = [ClipRecord(id="a", video="a.mp4", extra={"twin": "b"}), ClipRecord(id="b", video="b.mp4",
               extra={"twin": "a"}), ClipRecord(id="c", video="c.mp4")]
    twins = twin_indices(records)
    assert twins == [1, 0, None]
    wins = twin_wins(sim, [0, 1, 0, 2], twins, chunk_size=3)  # chunks of 3 rows: 2 blocks
    assert wins[:3].tolist() == [1.0, 0.0, 0.5] and np.isnan(wins[3])
    assert twin_accuracy(sim, [0, 1, 0, 2], twins) == pytest.approx(100 * 1.5 / 3)
    with pytest.raises(ValueError, match="clip c: its twin 'z' is not among the evaluated clips"):
        twin_indices([*records[:2], ClipRecord(id="c", video="c.mp4", extra={"twin": "z"})])
