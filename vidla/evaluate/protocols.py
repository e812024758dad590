"""The evaluation protocol of each benchmark: which split, which queries, how many frames, how they are sampled.

Readers (`vidla.data.benchmarks`) turn a dataset's files into a split; a protocol says how to score it. Every field
is written into results.json and the markdown table, so a number always travels with the protocol behind it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from vidla.evaluate.embed import ClipSampling

# SPEC section 4: 32 uniformly sampled frames, one centre-cropped view, for retrieval and zero-shot Kinetics.
PAPER_SAMPLING = ClipSampling(num_frames=32, method="uniform")
TIE_RULE = ("pessimistic: rank = number of candidates scoring >= the correct one (ties count against the "
            "model); v2t ranks a video by its best-ranked own text")
DSL_RULE = ("dual softmax at inference: sim' = sim * softmax(100 * sim) over the query axis (t2v: over texts, "
            "dim 0 of the texts x videos matrix; v2t: over videos); uses the whole test set's statistics")


@dataclass(frozen=True)
class EvalProtocol:
    name: str  # what `vidla eval --benchmark` takes
    benchmark: str  # the reader in vidla.data.benchmarks
    split: str
    task: str  # "retrieval", "zero_shot_classification" or "multiple_choice"
    queries: str  # what a query is, in words
    sampling: ClipSampling = PAPER_SAMPLING
    templates: str | None = None  # zero-shot classification: a key of zeroshot.TEMPLATE_SETS
    reference: str = ""  # the paper's numbers to compare against (SPEC section 4)
    notes: tuple[str, ...] = field(default_factory=tuple)
    frames_from_checkpoint: bool = False  # no paper frame count: evaluate with the checkpoint's (--frames overrides)

    def with_split(self, split: str | None) -> "EvalProtocol":
        """The same frames and sampling on another split of the benchmark; the paper reference no longer applies."""
        if split is None or split == self.split:
            return self
        return replace(self, split=split, queries=f"the {split} split as vidla.data.benchmarks reads it",
                       reference="")


PROTOCOLS: dict[str, EvalProtocol] = {p.name: p for p in (
    EvalProtocol("msrvtt", "msrvtt", "test-1k", "retrieval",
                 "1k-A test (JSFusion split): 1,000 videos, one caption each; every caption is a query",
                 reference="VidLA-B/32 fine-tuned: t2v R@1 55.6 (60.9 DSL), R@5 79.7, R@10 86.9, MdR 1.0, "
                           "MnR 11.4; VidLA-B/16: 58.0 (61.1 DSL); zero-shot VidLA-B/16: 36.6 (41.5 DSL)"),
    EvalProtocol("didemo", "didemo", "test", "retrieval",
                 "paragraph-to-video: all descriptions of a video concatenated into one query; whole videos",
                 reference="VidLA-B/32 fine-tuned: t2v R@1 56.9 (62.2 DSL); VidLA-B/16: 61.1 (64.8 DSL)",
                 notes=("CLIP's 77-token context truncates long paragraphs",)),
    EvalProtocol("activitynet", "activitynet", "val1", "retrieval",
                 "paragraph-to-video on val_1: each video's sentences in time order, concatenated; whole videos",
                 reference="VidLA-B/32 fine-tuned: t2v R@1 61.3 (69.2 DSL); VidLA-B/16: 65.2 (73.0 DSL)",
                 notes=("CLIP's 77-token context truncates long paragraphs",)),
    EvalProtocol("msvd", "msvd", "test", "retrieval",
                 "670 test videos, every caption (~40 per video) is a t2v query",
                 reference="VidLA-B/32 fine-tuned: t2v R@1 48.6 (52.7 DSL); VidLA-B/16: 51.5 (55.9 DSL)"),
    EvalProtocol("vatex", "vatex", "test", "retrieval",
                 "1,500-video test (HGR split), every English caption (10 per video) is a t2v query",
                 reference="VidLA-B/32 fine-tuned: t2v R@1 66.5 (73.7 DSL); VidLA-B/16: 69.2 (75.8 DSL)"),
    EvalProtocol("msrvtt-mc", "msrvtt", "mc-test", "multiple_choice",
                 "2,990 test videos, 5 candidate captions each, one correct; pick the most similar caption"),
    EvalProtocol("kinetics400", "kinetics400", "val", "zero_shot_classification",
                 "400 classes; class names in CLIP's 28 Kinetics prompt templates, averaged per class",
                 templates="kinetics", reference="zero-shot VidLA-B/16: top-1 60.2"),
    EvalProtocol("manifest", "manifest", "test", "retrieval",
                 "ROOT/test.jsonl (any clip manifest, e.g. `vidla data synth`): every caption is a t2v query",
                 sampling=ClipSampling(num_frames=12, method="uniform"), frames_from_checkpoint=True,
                 notes=("not a paper protocol; frames: the checkpoint's unless --frames is given",)),
    EvalProtocol("ssv2", "ssv2", "val", "zero_shot_classification",
                 "174 classes; the class template text itself is the prompt",
                 templates="none", notes=("not a paper protocol: the paper fine-tunes on SSv2 (2x3 views)",)),
)}
ALIASES = {"msr-vtt": "msrvtt", "msrvtt-1k": "msrvtt", "msrvtt_mc": "msrvtt-mc", "anet": "activitynet",
           "kinetics": "kinetics400", "k400": "kinetics400", "kinetics-400": "kinetics400"}


def get_protocol(name: str) -> EvalProtocol:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in PROTOCOLS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[key]


def list_protocols() -> list[EvalProtocol]:
    return list(PROTOCOLS.values())
