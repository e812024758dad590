"""Evaluation: exact retrieval metrics, dual softmax, zero-shot classification and multiple choice, multi-view
classification testing, embedding caches and reports (docs/evaluation.md).

    from vidla.evaluate import retrieval_metrics
    metrics = retrieval_metrics(similarity, text_to_video, dsl=True)   # similarity: texts x videos
    metrics["t2v_r1"], metrics["v2t_mdr"], metrics["t2v_r1_dsl"]
"""

from vidla.evaluate.cache import EmbeddingCache, model_fingerprint
from vidla.evaluate.classification import KINETICS_VIEWS, SSV2_VIEWS, VideoClassifier, multi_view_logits
from vidla.evaluate.embed import ClipSampling, Embedder, VideoEmbeddings
from vidla.evaluate.metrics import (
    DualSoftmax,
    EmbeddingSimilarity,
    MatrixSimilarity,
    classification_metrics,
    dual_softmax,
    retrieval_metrics,
    retrieval_ranks,
    text_to_video_ranks,
    twin_accuracy,
    twin_wins,
    video_to_text_ranks,
)
from vidla.evaluate.protocols import PROTOCOLS, EvalProtocol, get_protocol
from vidla.evaluate.run import EvalOptions, run_benchmark
from vidla.evaluate.tasks import (
    EvalResult,
    evaluate_classifier,
    evaluate_multiple_choice,
    evaluate_retrieval,
    evaluate_zero_shot,
    paragraph_split,
)
from vidla.evaluate.zeroshot import KINETICS_TEMPLATES

__all__ = [
    "ClipSampling", "DualSoftmax", "EmbeddingCache", "EmbeddingSimilarity", "Embedder", "EvalOptions", "EvalProtocol",
    "EvalResult", "KINETICS_TEMPLATES", "KINETICS_VIEWS", "MatrixSimilarity", "PROTOCOLS", "SSV2_VIEWS",
    "VideoClassifier", "VideoEmbeddings", "classification_metrics", "dual_softmax", "evaluate_classifier",
    "evaluate_multiple_choice", "evaluate_retrieval", "evaluate_zero_shot", "get_protocol", "model_fingerprint",
    "multi_view_logits", "paragraph_split", "retrieval_metrics", "retrieval_ranks", "run_benchmark",
    "text_to_video_ranks", "twin_accuracy", "twin_wins", "video_to_text_ranks",
]
