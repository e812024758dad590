"""The text corpus: plain text files (one text per line, blank lines skipped) or vidla clip manifests
(`.jsonl`: every text of every record, e.g. the captions and subtitles a teacher was trained on), CLIP-tokenised
once."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from vidla.models.tokenizer import CLIPTokenizer


def read_corpus(paths: Sequence[str | Path]) -> list[str]:
    """All non-blank lines of the files, in order; an unreadable or empty file is an error naming it."""
    texts: list[str] = []
    for path in map(Path, paths):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: corpus file not found")
        if path.suffix == ".jsonl":
            texts += _manifest_texts(path)
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: not UTF-8 text ({e})") from e
        found = [line.strip() for line in lines if line.strip()]
        if not found:
            raise ValueError(f"{path}: no text (a corpus file holds one text per line)")
        texts += found
    return texts


def tokenize_corpus(texts: Sequence[str], context_length: int, batch: int = 4096) -> torch.Tensor:
    """[N, context_length] int64 CLIP token ids ([SOT] ... [EOT], truncated keeping [EOT], zero-padded)."""
    tokenizer = CLIPTokenizer.default(context_length)
    parts = [tokenizer(list(texts[i: i + batch])) for i in range(0, len(texts), batch)]
    return torch.cat(parts) if parts else torch.zeros(0, context_length, dtype=torch.long)


def _manifest_texts(path: Path) -> list[str]:
    from vidla.data.manifest import read_manifest

    texts = []
    for record in read_manifest(path):
        for value in record.texts.values():
            texts += [value] if isinstance(value, str) else list(value)
    texts = [t.strip() for t in texts if t and t.strip()]
    if not texts:
        raise ValueError(f"{path}: the manifest holds no texts")
    return texts
