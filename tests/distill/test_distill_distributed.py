"""`vidla distill-text` under torchrun: masked LM with two processes equals one process on the same global batch;
distillation runs under two processes; masks do not depend on the rank count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _distill_helpers import TINY_STUDENT
from safetensors.torch import load_file

from vidla.distill.masking import IGNORE

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def distill(output: Path, teacher: Path, corpus: Path, *extra: str, ranks: int = 1, port: int = 0):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks), "--master_port",
                str(port)] if ranks > 1 else [sys.executable]
    command = launcher + ["-m", "vidla.cli", "distill-text", "--teacher", str(teacher), "--corpus", str(corpus),
                          "--output", str(output), "--no-progress", "steps=3", "checkpoint_every=3", *TINY_STUDENT,
                          *extra]
    result = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (output / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows], load_file(output / "student.safetensors")


def test_two_processes_equal_one_for_masked_lm(tmp_path, teacher_and_corpus):
    teacher, corpus = teacher_and_corpus
    port = 29000 + os.getpid() % 1000
    one_losses, one = distill(tmp_path / "one", teacher, corpus, "--mlm-only")
    two_losses, two = distill(tmp_path / "two", teacher, corpus, "--mlm-only", ranks=2, port=port)
    assert one_losses == pytest.approx(two_losses, rel=1e-5)
    assert one.keys() == two.keys()
    for key in one:
        assert torch.allclose(one[key], two[key], atol=2e-6, rtol=0), (key, (one[key] - two[key]).abs().max())
    # and the run trained: the loss moved over three steps
    assert len(set(one_losses)) == 3


def test_distillation_runs_under_two_processes(tmp_path, teacher_and_corpus):
    teacher, corpus = teacher_and_corpus
    losses, student = distill(tmp_path / "two", teacher, corpus, ranks=2, port=29000 + (os.getpid() + 500) % 1000)
    assert len(losses) == 3 and all(torch.isfinite(torch.tensor(losses)))
    assert not any(k.startswith(("teacher_head.", "nst_head.")) for k in student)


def test_a_texts_mask_is_the_same_on_any_rank_count():
    from vidla.distill.config import load_distill_config
    from vidla.distill.trainer import DistillTrainer
    from vidla.train.distributed import World

    config = load_distill_config(None, ["teacher=unused", "corpus=[unused]", *TINY_STUDENT])
    trainer = DistillTrainer.__new__(DistillTrainer)
    trainer.config = config
    world = World(rank=0, size=1, local_rank=0, device=torch.device("cpu"))
    torch.manual_seed(0)
    tokens = torch.zeros(8, 24, dtype=torch.long)
    for row, length in enumerate([5, 9, 12, 7, 20, 6, 15, 10]):  # the halves' padding widths differ: 12 and 20
        tokens[row, :length] = torch.randint(1, 49000, (length,))
        tokens[row, 0], tokens[row, length - 1] = 49406, 49407
    whole = trainer._batch(tokens, list(range(8)), world)
    halves = [trainer._batch(tokens, keys, world) for keys in (list(range(4)), list(range(4, 8)))]
    assert [h[0].shape[1] for h in halves] == [12, 20]
    for position in range(5):  # ids, corrupted input, labels, [MASK] positions, valid positions
        first, second = whole[position][:4, :12], whole[position][4:]
        assert torch.equal(first, halves[0][position]) and torch.equal(second, halves[1][position])
    assert (whole[2] != IGNORE).any()  # something was masked
    assert whole[5] == (whole[2] != IGNORE).sum()
