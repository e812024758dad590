"""`vidla distill-text` end to end: a resumed run equals an uninterrupted one; the baseline flag; bad input."""

from __future__ import annotations

import json

import pytest
from _distill_helpers import TINY_STUDENT
from safetensors.torch import load_file

from vidla.distill.config import load_distill_config
from vidla.distill.trainer import DistillTrainer


class Interrupted(Exception):
    pass


def config(output, teacher, corpus, *extra):
    return load_distill_config(None, [f"teacher={teacher}", f"corpus=[{corpus}]", f"output_dir={output}",
                                      "steps=4", "checkpoint_every=2", *TINY_STUDENT, *extra])


def test_resumed_run_equals_an_uninterrupted_one(tmp_path, teacher_and_corpus, monkeypatch):
    teacher, corpus = teacher_and_corpus
    DistillTrainer(config(tmp_path / "straight", teacher, corpus), progress=False).run()

    save = DistillTrainer._save

    def save_then_stop(self, world, step_module, optimizer, scheduler, step):
        save(self, world, step_module, optimizer, scheduler, step)
        if step == 2:
            raise Interrupted

    monkeypatch.setattr(DistillTrainer, "_save", save_then_stop)
    with pytest.raises(Interrupted):
        DistillTrainer(config(tmp_path / "resumed", teacher, corpus), progress=False).run()
    monkeypatch.setattr(DistillTrainer, "_save", save)
    assert not (tmp_path / "resumed" / "student.safetensors").exists()
    DistillTrainer(config(tmp_path / "resumed", teacher, corpus), resume=True, progress=False).run()

    straight = load_file(tmp_path / "straight" / "student.safetensors")
    resumed = load_file(tmp_path / "resumed" / "student.safetensors")
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert (straight[key] - resumed[key]).abs().max() < 1e-6, key
    rows = [[json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
            for run in ("straight", "resumed")]
    assert [r["step"] for r in rows[1]] == [1, 2, 3, 4]
    assert [r["loss"] for r in rows[0]] == pytest.approx([r["loss"] for r in rows[1]], rel=1e-5)
    assert {"loss_mlm", "loss_nst", "loss_ntxent", "mlm_accuracy"} <= set(rows[0][0])
    first = load_file(tmp_path / "straight" / "checkpoints" / "step_0000004" / "model.safetensors")
    assert any(k.startswith("teacher_head.") for k in first)  # heads are in the checkpoint, not the student
    assert not any(k.startswith(("teacher_head.", "nst_head.")) for k in straight)


def test_bad_input_is_named(tmp_path, teacher_and_corpus):
    teacher, corpus = teacher_and_corpus
    missing = tmp_path / "nope.txt"
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        DistillTrainer(config(tmp_path / "a", teacher, missing), progress=False).run()
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    with pytest.raises(ValueError, match="empty.txt"):
        DistillTrainer(config(tmp_path / "b", teacher, empty), progress=False).run()
    with pytest.raises(ValueError, match="teacher"):
        DistillTrainer(load_distill_config(None, [f"corpus=[{corpus}]"]), progress=False).run()
    with pytest.raises(ValueError, match="contrastive"):
        DistillTrainer(config(tmp_path / "c", teacher, corpus, "loss.contrastive=simclr"), progress=False).run()
