"""CLIP's byte-level BPE tokenizer, on the `tokenizers` library for speed.

Two text clean-ups:
- "clip" (default): OpenAI CLIP's own (ftfy.fix_text, HTML unescape twice, whitespace collapse, lower case),
  as in OpenAI's and open_clip's tokenizers;
- "hf": Hugging Face's CLIPTokenizer normaliser (NFC, whitespace collapse, lower case).
Both then split with CLIP's regex and apply the BPE merges. Sequences are [SOT] tokens [EOT], truncated so
the end token is kept, and zero-padded to the context length.
"""

from __future__ import annotations

import gzip
import html
import json
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

SOT, EOT = "<|startoftext|>", "<|endoftext|>"
_SPLIT = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
_WHITESPACE = re.compile(r"\s+")
# Text that ftfy and HTML unescaping leave unchanged: printable ASCII without '&' (the fast path).
_PLAIN = re.compile(r"[\x20-\x25\x27-\x7e\t\n\r\x0c]*")


def clip_clean(text: str) -> str:
    """OpenAI CLIP's clean-up: ftfy, HTML unescape twice, whitespace collapse, strip, lower case."""
    if not _PLAIN.fullmatch(text):
        import ftfy

        text = ftfy.fix_text(text)
        text = html.unescape(html.unescape(text)).strip()
    return _WHITESPACE.sub(" ", text).strip().lower()


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def _bundled_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """The vocabulary of OpenAI CLIP, rebuilt from its merges file (shipped with vidla, MIT licence)."""
    data = resources.files("vidla").joinpath("assets/bpe_simple_vocab_16e6.txt.gz").read_bytes()
    lines = gzip.decompress(data).decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges] + [SOT, EOT]
    return {token: i for i, token in enumerate(vocab)}, merges  # type: ignore[return-value]


class CLIPTokenizer:
    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], context_length: int = 77,
                 clean: str = "clip"):
        if clean not in ("clip", "hf"):
            raise ValueError(f"clean must be 'clip' or 'hf', got {clean!r}")
        for token in (SOT, EOT):
            if token not in vocab:
                raise ValueError(f"the vocabulary has no {token} token")
        self.vocab_size = len(vocab)
        self.context_length = context_length
        self.clean = clean
        self.sot_token_id, self.eot_token_id = vocab[SOT], vocab[EOT]
        bpe = models.BPE(vocab=vocab, merges=merges, continuing_subword_prefix="", end_of_word_suffix="</w>",
                         fuse_unk=False, unk_token=EOT)
        self._tokenizer = Tokenizer(bpe)
        self._tokenizer.normalizer = normalizers.Sequence(
            [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()])
        self._tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        self._tokenizer.decoder = decoders.ByteLevel()
        self._tokenizer.add_special_tokens([SOT, EOT])

    @classmethod
    def default(cls, context_length: int = 77, clean: str = "clip") -> "CLIPTokenizer":
        """OpenAI CLIP's vocabulary, bundled with the package."""
        vocab, merges = _cached_bundled_vocab()
        return cls(vocab, merges, context_length, clean)

    @classmethod
    def from_files(cls, vocab_file: str | Path, merges_file: str | Path, context_length: int = 77,
                   clean: str = "clip") -> "CLIPTokenizer":
        """Hugging Face's vocab.json + merges.txt."""
        vocab = _read_json(Path(vocab_file))
        merges = _read_merges(Path(merges_file))
        return cls(vocab, merges, context_length, clean)

    @classmethod
    def from_directory(cls, directory: str | Path, context_length: int = 77,
                       clean: str = "clip") -> "CLIPTokenizer":
        """The tokenizer files of a Hugging Face checkpoint folder (vocab.json + merges.txt, or tokenizer.json)."""
        directory = Path(directory)
        if (directory / "vocab.json").is_file() and (directory / "merges.txt").is_file():
            return cls.from_files(directory / "vocab.json", directory / "merges.txt", context_length, clean)
        if (directory / "tokenizer.json").is_file():
            model = _read_json(directory / "tokenizer.json").get("model", {})
            merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model.get("merges", [])]
            return cls(model.get("vocab", {}), merges, context_length, clean)
        raise FileNotFoundError(f"{directory}: no tokenizer files (vocab.json + merges.txt, or tokenizer.json)")

    def encode(self, texts: str | Iterable[str]) -> list[list[int]]:
        """Token ids per text, without start/end tokens and without truncation. A single string is one text
        (not a sequence of characters)."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise TypeError(f"texts must be strings; item {bad} is {type(texts[bad]).__name__}")
        if self.clean == "clip":
            texts = [clip_clean(t) for t in texts]
        return [e.ids for e in self._tokenizer.encode_batch(texts, add_special_tokens=False)]

    def __call__(self, texts: str | Iterable[str], context_length: int | None = None) -> torch.Tensor:
        """Texts -> [B, context_length] int64 ids: SOT, tokens (truncated, keeping EOT), EOT, zeros."""
        if isinstance(texts, str):
            texts = [texts]
        length = context_length or self.context_length
        encoded = self.encode([self._head(t, length - 2) if isinstance(t, str) else t for t in texts])
        out = np.zeros((len(encoded), length), dtype=np.int64)
        for row, ids in enumerate(encoded):
            ids = [self.sot_token_id] + ids[: length - 2] + [self.eot_token_id]
            out[row, : len(ids)] = ids
        return torch.from_numpy(out)

    def _head(self, text: str, needed: int) -> str:
        """A prefix of a long text whose first `needed` tokens are the whole text's, so that clean-up and BPE cost
        what the kept tokens need, not what the text holds (a multi-megabyte subtitle dump takes seconds).

        Cuts fall on whitespace (no word is split: tokens never span whitespace). Two cuts, one twice as long as the
        other, must agree on the first `needed` tokens, which guards against clean-ups that look past a word (ftfy
        repairing mis-decoded text); otherwise the budget grows, up to the whole text.
        """
        budget = 16 * needed + 256
        while 4 * budget < len(text):
            short, long = _cut(text, budget), _cut(text, 2 * budget)
            ids_short, ids_long = self.encode([short, long])
            if len(ids_short) >= needed and ids_short[:needed] == ids_long[:needed]:
                return long
            budget *= 4
        return text

    def decode(self, ids: Iterable[int]) -> str:
        ids = [i for i in ids if i not in (0, self.sot_token_id, self.eot_token_id)]
        return self._tokenizer.decode(ids).replace("</w>", " ").strip()


def _cut(text: str, at: int) -> str:
    """`text` up to the last whitespace before `at` (or at `at` in a word longer than half of it)."""
    space = max(text.rfind(c, at // 2, at) for c in " \n\t")
    return text[:space if space > 0 else at]


@lru_cache(maxsize=1)
def _cached_bundled_vocab() -> tuple[dict[str, int], list[tuple[str, str]]]:
    return _bundled_vocab()


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: tokenizer file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a valid JSON tokenizer file ({e})") from e


def _read_merges(path: Path) -> list[tuple[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: tokenizer file not found")
    lines = path.read_text(encoding="utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines if line and not line.startswith("#version")]
    bad = [m for m in merges if len(m) != 2]
    if bad:
        raise ValueError(f"{path}: malformed merges line {' '.join(bad[0])!r}")
    return merges  # type: ignore[return-value]
