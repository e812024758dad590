"""Clip texts: frame captions and subtitles gathered per clip, summarised with the paper's prompt, and fitted to
the text tower's context.

The long-text rule, in order:
1. Medium and long clips (`summarize_scales`): the caption text and the subtitle text are each summarised
   into one sentence with SUMMARY_PROMPT (the paper's, verbatim).
2. Other clips keep their texts; one that is longer than the text tower's context (`max_tokens` CLIP tokens,
   75 = 77 minus the start and end tokens) is summarised the same way when `summarize_overlong` is on and a
   text generator is configured.
3. An input longer than `max_input_words` (an LLM context you set) is summarised in parts of whole
   sentences first, and the joined part summaries are summarised again (map-reduce, at most 3 rounds).
4. Every final text that still exceeds `max_tokens` (no generator, or an LLM that ignored the 25-word limit)
   is cut at the last whole sentence that fits, or after the last word that fits if even the first sentence
   does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

SUMMARY_PROMPT = ("Summarize the following sentences into a single sentence, not exceeding 25 words. "
                  "Do not output any additional text and use any external information.")

_SENTENCE = re.compile(r"(?<=[.?!…])\s+")
_LABEL = re.compile(r"^(summary|summarized sentence|sentence|answer)\s*:\s*", re.IGNORECASE)
_MAX_ROUNDS = 3

Generate = Callable[[list[str]], list[str]]


def summary_prompt(text: str) -> str:
    """The paper's prompt followed by the input text."""
    return f"{SUMMARY_PROMPT} {text}"


def clean_reply(reply: str) -> str:
    """The first non-empty line of an LLM reply, without a 'Summary:' label or wrapping quotes."""
    line = next((line.strip() for line in reply.splitlines() if line.strip()), "")
    line = _LABEL.sub("", line).strip()
    if len(line) >= 2 and line[0] + line[-1] in ('""', "''", "“”"):
        line = line[1:-1].strip()
    return line


def join_captions(captions: Sequence[str]) -> str:
    """Frame captions as one text: consecutive repeats dropped, each ended with a period."""
    out: list[str] = []
    for caption in captions:
        caption = caption.strip()
        if caption and (not out or caption.rstrip(".").lower() != out[-1].rstrip(".").lower()):
            out.append(caption if caption[-1] in ".?!" else caption + ".")
    return " ".join(out)


@lru_cache(maxsize=1)
def _clip_tokenizer():
    from vidla.models.tokenizer import CLIPTokenizer

    return CLIPTokenizer.default()


def clip_token_count(text: str) -> int:
    """CLIP BPE tokens of `text`, without the start and end tokens."""
    return len(_clip_tokenizer().encode([text])[0])


def fit_text(text: str, max_tokens: int, count: Callable[[str], int] = clip_token_count) -> str:
    """Rule 4: whole sentences while they fit, else words while they fit."""
    if count(text) <= max_tokens:
        return text
    sentences = _SENTENCE.split(text)
    kept = _longest_prefix(sentences, " ", max_tokens, count)
    if kept:
        return kept
    return _longest_prefix(text.split(), " ", max_tokens, count)


def _longest_prefix(parts: list[str], joiner: str, max_tokens: int, count: Callable[[str], int]) -> str:
    """The longest joined prefix of `parts` within `max_tokens` (binary search: counts are monotone)."""
    low, high = 0, len(parts)
    while low < high:
        middle = (low + high + 1) // 2
        if count(joiner.join(parts[:middle])) <= max_tokens:
            low = middle
        else:
            high = middle - 1
    return joiner.join(parts[:low])


def _chunks(text: str, max_words: int) -> list[str]:
    """Whole sentences grouped into parts of at most `max_words` words (a longer sentence is cut in words)."""
    parts: list[list[str]] = [[]]
    for sentence in _SENTENCE.split(text):
        words = sentence.split()
        for start in range(0, len(words), max_words):
            piece = words[start:start + max_words]
            if parts[-1] and len(parts[-1]) + len(piece) > max_words:
                parts.append([])
            parts[-1].extend(piece)
    return [" ".join(p) for p in parts if p]


@dataclass
class TextRule:
    summarize_scales: tuple[str, ...] = ("medium", "long")
    max_tokens: int = 75
    summarize_overlong: bool = True
    max_input_words: int = 1500


def summarize(texts: Sequence[str], generate: Generate, max_input_words: int) -> list[str]:
    """One sentence per text with the paper's prompt (rules 1 and 3). `generate` gets whole prompts."""
    pending = list(texts)
    for _ in range(_MAX_ROUNDS):
        overlong = [i for i, text in enumerate(pending) if len(text.split()) > max_input_words]
        if not overlong:
            break
        parts = {i: _chunks(pending[i], max_input_words) for i in overlong}
        flat = [part for i in overlong for part in parts[i]]
        replies = iter(generate([summary_prompt(part) for part in flat]))
        for i in overlong:
            pending[i] = " ".join(clean_reply(next(replies)) for _ in parts[i])
    pending = [" ".join(text.split()[:max_input_words]) for text in pending]  # after 3 rounds: cut
    return [clean_reply(reply) for reply in generate([summary_prompt(text) for text in pending])]


def clip_texts(raw: Sequence[tuple[str, dict[str, str]]], rule: TextRule, generate: Generate | None,
               count: Callable[[str], int] = clip_token_count) -> list[dict[str, str]]:
    """Final texts of a video's clips. `raw` holds (scale, {"caption": ..., "subtitle": ...}) per clip."""
    out = [dict(texts) for _, texts in raw]
    if generate is not None:
        targets = [(row, kind) for row, (scale, texts) in enumerate(raw) for kind, text in texts.items()
                   if text and (scale in rule.summarize_scales
                                or (rule.summarize_overlong and count(text) > rule.max_tokens))]
        summaries = summarize([raw[row][1][kind] for row, kind in targets], generate, rule.max_input_words)
        for (row, kind), summary in zip(targets, summaries):
            out[row][kind] = summary or out[row][kind]  # an empty reply keeps the text (then rule 4)
    return [{kind: fit_text(text, rule.max_tokens, count) for kind, text in texts.items()} for texts in out]
