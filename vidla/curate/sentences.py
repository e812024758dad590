"""Punctuation restoration and sentence splitting, with times.

Subtitle segments become timed words (exact onsets where the format gave them, otherwise spread over the
cue in proportion to their length); a punctuator restores the punctuation of ASR text; sentences end at
terminal punctuation; and a sentence longer than `max_words` is split again at its longest pauses.

Punctuators (chosen by `SentenceConfig.punctuator`):
- "auto" (default): keeps the text's own punctuation when it has some (at least one sentence end per
  `max_words` words, as human subtitles do), else applies the pause rule;
- "pauses": the documented rule: a sentence ends after a word followed by a silence of at least
  `pause_seconds` (before the next word) and at the end of the text; ASR text has no other cue;
- "hf:<model>": a Hugging Face token-classification model (a BERT punctuation model as in the paper).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

from vidla.curate.subtitles import Segment

_SENTENCE_END = re.compile(r"[.?!…]+[\"')\]»”’]*$")
# Common abbreviations that end in a period without ending a sentence.
_ABBREVIATIONS = {"mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "vs.", "etc.", "e.g.", "i.e.", "jr.", "sr.",
                  "no.", "fig.", "approx.", "u.s.", "a.m.", "p.m."}


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Sentence:
    start: float
    end: float
    text: str

    def to_json(self) -> list[Any]:
        return [self.start, self.end, self.text]

    @classmethod
    def from_json(cls, obj: Sequence[Any]) -> "Sentence":
        return cls(float(obj[0]), float(obj[1]), str(obj[2]))


def words_from_segments(segments: Sequence[Segment]) -> list[Word]:
    """Timed words. Overlapping cues are cut at the next cue's start so that times never go backwards."""
    words: list[Word] = []
    for index, segment in enumerate(segments):
        tokens = segment.text.split()
        end = segment.end
        if index + 1 < len(segments):
            end = max(segment.start, min(end, segments[index + 1].start))
        if segment.word_starts is not None and len(segment.word_starts) == len(tokens):
            starts = [min(max(s, segment.start), end) for s in segment.word_starts]
            ends = starts[1:] + [end]
        else:
            starts, ends = _spread(segment.start, end, tokens)
        words.extend(Word(s, max(s, e), t) for s, e, t in zip(starts, ends, tokens))
    return words


def _spread(start: float, end: float, tokens: list[str]) -> tuple[list[float], list[float]]:
    """Word times within a cue, proportional to word length (+1 for the space)."""
    weights = [len(t) + 1 for t in tokens]
    total = sum(weights)
    starts, ends, position = [], [], start
    for weight in weights:
        starts.append(position)
        position += (end - start) * weight / total
        ends.append(position)
    return starts, ends


class Punctuator(Protocol):
    def punctuate(self, words: Sequence[Word]) -> list[str]:
        """The words' texts with punctuation (and case) restored, one per word."""
        ...

    def params(self) -> dict[str, Any]:
        """What determines the output; hashed into the state store's key."""
        ...


@dataclass
class PausePunctuator:
    """Ends a sentence after each silence of at least `pause_seconds`, and at the end of the text."""

    pause_seconds: float = 0.6

    def punctuate(self, words: Sequence[Word]) -> list[str]:
        out = []
        for index, word in enumerate(words):
            last = index + 1 == len(words)
            pause = last or words[index + 1].start - word.end >= self.pause_seconds
            out.append(_with_period(word.text) if pause else word.text)
        return out

    def params(self) -> dict[str, Any]:
        return {"kind": "pauses", "pause_seconds": self.pause_seconds}


@dataclass
class AutoPunctuator:
    """Keeps existing punctuation when the text has enough of it; else falls back to `fallback`."""

    fallback: PausePunctuator
    max_words: int = 40

    def punctuate(self, words: Sequence[Word]) -> list[str]:
        ends = sum(1 for w in words if _SENTENCE_END.search(w.text))
        if words and ends * self.max_words >= len(words):
            return [w.text for w in words]
        return self.fallback.punctuate(words)

    def params(self) -> dict[str, Any]:
        return {"kind": "auto", "max_words": self.max_words, "fallback": self.fallback.params()}


def _with_period(text: str) -> str:
    return text if _SENTENCE_END.search(text) else text.rstrip(",;:") + "."


def _ends_sentence(text: str) -> bool:
    return bool(_SENTENCE_END.search(text)) and text.lower() not in _ABBREVIATIONS


def split_sentences(words: Sequence[Word], texts: Sequence[str], max_words: int = 40) -> list[Sentence]:
    """Sentences from punctuated word texts; sentences over `max_words` words are split at their longest
    pauses (the later one on ties), recursively."""
    spans: list[tuple[int, int]] = []
    begin = 0
    for index, text in enumerate(texts):
        if _ends_sentence(text) or index + 1 == len(texts):
            spans.extend(_split_long(words, begin, index + 1, max_words))
            begin = index + 1
    return [_sentence(words, texts, begin, end) for begin, end in spans]


def _split_long(words: Sequence[Word], begin: int, end: int, max_words: int) -> list[tuple[int, int]]:
    if end - begin <= max_words:
        return [(begin, end)]
    # Cut after word k (begin <= k < end-1) where the pause to the next word is longest.
    cut = max(range(begin, end - 1), key=lambda k: (words[k + 1].start - words[k].end, k))
    return _split_long(words, begin, cut + 1, max_words) + _split_long(words, cut + 1, end, max_words)


def _sentence(words: Sequence[Word], texts: Sequence[str], begin: int, end: int) -> Sentence:
    parts = list(texts[begin:end])
    parts[-1] = _with_period(parts[-1])
    text = " ".join(parts)
    return Sentence(words[begin].start, words[end - 1].end, text[:1].upper() + text[1:])


def sentences_from_segments(segments: Sequence[Segment], punctuator: Punctuator,
                            max_words: int = 40) -> list[Sentence]:
    words = words_from_segments(segments)
    if not words:
        return []
    return split_sentences(words, punctuator.punctuate(words), max_words)


# -- Hugging Face token-classification punctuator ------------------------------------------------------------

_LABEL_WORDS = {"PERIOD": ".", "FULLSTOP": ".", "COMMA": ",", "QUESTION": "?", "EXCLAMATION": "!",
                "COLON": ":", "SEMICOLON": ";"}


def label_to_punctuation(label: str) -> tuple[str, bool]:
    """A punctuation model's label -> (mark to append, capitalise the word).

    Understands the common label schemes: the mark itself ('.', ',', '?', '0'/'O' for none), names ('PERIOD',
    'I-COMMA'), and case-and-mark pairs ('.U', 'OU', ',O': mark or O, then U for upper case).
    """
    name = label.upper().split("-")[-1]
    for word, mark in _LABEL_WORDS.items():
        if word in name:
            return mark, False
    if len(label) == 2 and label[1] in "UO":  # mark+case scheme, e.g. '.U', 'OU', ',O'
        return ("" if label[0] in "O0" else label[0]), label[1] == "U"
    marks = [c for c in label if c in ".,?!:;"]
    return (marks[0] if marks else ""), False


class HFPunctuator:
    """A Hugging Face token-classification model that predicts, for each word, the mark that follows it.

    A word takes the label of its first sub-token (the convention of Hugging Face's token-classification
    training). Long texts go through in windows of `window` words overlapping by `overlap`; each word keeps the
    prediction of the window where it is furthest from an edge.
    """

    def __init__(self, model: str, device: str = "cpu", window: int = 120, overlap: int = 20,
                 batch_size: int = 8, label_map: dict[str, str] | None = None):
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        if overlap >= window:
            raise ValueError("overlap must be smaller than window")
        self.model_name, self.window, self.overlap, self.batch_size = model, window, overlap, batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.model = AutoModelForTokenClassification.from_pretrained(model).to(device).eval()
        self.device = device
        id2label = self.model.config.id2label
        label_map = label_map or {}
        self.marks = {int(i): (label_map[lab], False) if lab in label_map else label_to_punctuation(lab)
                      for i, lab in id2label.items()}

    def params(self) -> dict[str, Any]:
        return {"kind": "hf", "model": self.model_name, "window": self.window, "overlap": self.overlap,
                "marks": {str(k): v for k, v in sorted(self.marks.items())}}

    def punctuate(self, words: Sequence[Word]) -> list[str]:
        texts = [w.text.rstrip(".,?!:;") or w.text for w in words]
        labels = [0] * len(texts)
        windows = _windows(len(texts), self.window, self.overlap)
        for start in range(0, len(windows), self.batch_size):
            batch = windows[start:start + self.batch_size]
            for (begin, _, keep_from, keep_to), predicted in zip(batch, self._predict(texts, batch)):
                labels[keep_from:keep_to] = predicted[keep_from - begin: keep_to - begin]
        out = []
        for text, label in zip(texts, labels):
            mark, upper = self.marks.get(label, ("", False))
            out.append((text[:1].upper() + text[1:] if upper else text) + mark)
        return out

    def _predict(self, texts: list[str], windows: list[tuple[int, int, int, int]]) -> list[list[int]]:
        import torch

        pieces = [texts[begin:end] for begin, end, _, _ in windows]
        encoded = self.tokenizer(pieces, is_split_into_words=True, truncation=True, padding=True,
                                 return_tensors="pt")
        with torch.no_grad():
            logits = self.model(**{k: v.to(self.device) for k, v in encoded.items()}).logits
        predictions = logits.argmax(-1).tolist()
        out = []
        for row, piece in enumerate(pieces):
            labels = [0] * len(piece)  # words lost to truncation get no mark
            seen = set()
            for position, word_id in enumerate(encoded.word_ids(row)):
                if word_id is not None and word_id not in seen:
                    seen.add(word_id)
                    labels[word_id] = predictions[row][position]
            out.append(labels)
        return out


def _windows(count: int, window: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(begin, end, keep_from, keep_to) windows covering range(count); kept parts tile it exactly."""
    step = window - overlap
    out = []
    begin = 0
    while True:
        end = min(begin + window, count)
        keep_from = begin + overlap // 2 if begin else 0
        keep_to = end if end == count else end - (overlap - overlap // 2)
        out.append((begin, end, keep_from, keep_to))
        if end == count:
            return out
        begin += step


def build_punctuator(kind: str, pause_seconds: float = 0.6, max_words: int = 40, device: str = "cpu",
                     label_map: dict[str, str] | None = None) -> Punctuator:
    """'auto', 'pauses' or 'hf:<model name or path>'."""
    pauses = PausePunctuator(pause_seconds)
    if kind == "auto":
        return AutoPunctuator(pauses, max_words)
    if kind == "pauses":
        return pauses
    if kind.startswith("hf:"):
        return HFPunctuator(kind[3:], device=device, label_map=label_map)
    raise ValueError(f"unknown punctuator {kind!r}: use 'auto', 'pauses' or 'hf:<model>'")


__all__ = ["Word", "Sentence", "Punctuator", "PausePunctuator", "AutoPunctuator", "HFPunctuator",
           "words_from_segments", "split_sentences", "sentences_from_segments", "label_to_punctuation",
           "build_punctuator"]
