from __future__ import annotations

from pathlib import Path

import pytest
import torch

import vidla
from _distill_helpers import TEXTS

@pytest.fixture(scope="session")
def teacher_and_corpus(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("distill")
    torch.manual_seed(0)
    teacher = vidla.save_model(vidla.create_model("vidla-tiny"), folder / "teacher.safetensors")
    corpus = folder / "corpus.txt"
    corpus.write_text("\n".join(TEXTS * 4) + "\n\n", encoding="utf-8")
    return teacher, corpus
