"""The student is bidirectional and blind to padding; the teacher is causal, frozen and gets no gradient."""

from __future__ import annotations

import torch

import vidla
from vidla.distill.config import DistillConfig
from vidla.distill.masking import MaskingConfig, mask_tokens
from vidla.distill.student import StudentConfig, TextStudent, load_student, save_student, valid_positions
from vidla.distill.teacher import TextTeacher
from vidla.distill.trainer import DistillStep
from vidla.train.optim import build_optimizer

SMALL = StudentConfig(width=32, layers=2, heads=2, mlp_dim=64, context_length=16)


def tokens(texts, length=16):
    return vidla.CLIPTokenizer.default(length)(texts)


def test_student_sees_both_directions_and_ignores_padding(tmp_path):
    torch.manual_seed(0)
    student = TextStudent(SMALL).eval()
    a, b = tokens(["a red square moves left", "a red square moves right"])
    with torch.no_grad():
        ha, hb = student(a[None]), student(b[None])
        assert (ha[0, 1] - hb[0, 1]).abs().max() > 1e-4  # position 1 ("a") sees the later, different word
        length = int(valid_positions(a[None], SMALL.eot_token_id).sum())
        short = student(a[None, :length])                   # the same text without its padding columns
        assert torch.allclose(short[0], ha[0, :length], atol=1e-5)
    path = save_student(student, tmp_path / "student.safetensors")
    loaded = load_student(path)
    assert loaded.config == SMALL
    with torch.no_grad():
        assert torch.equal(loaded.encode(a[None]), student.encode(a[None]))


def test_teacher_is_causal_and_shows_mask_as_the_mean_embedding():
    torch.manual_seed(0)
    teacher = TextTeacher(vidla.create_model("vidla-tiny").text)
    a, b = tokens(["a red square moves left", "a red square moves right"])
    states = teacher(torch.stack([a, b]), torch.stack([a, b]), torch.zeros(2, 16, dtype=torch.bool))
    assert torch.allclose(states[0, :4], states[1, :4])      # identical prefix: identical states (causal)
    assert (states[0, 5] - states[1, 5]).abs().max() > 1e-4
    masked = torch.zeros(1, 16, dtype=torch.bool)
    masked[0, 2] = True
    shown = teacher(a[None], a[None].masked_fill(masked, 49408), masked)
    embeddings = teacher.tower.token_embedding(a[None]).clone()
    embeddings[0, 2] = teacher.tower.token_embedding.weight.mean(0)
    assert torch.allclose(shown, teacher.tower.token_states(embeddings=embeddings))
    original = TextTeacher(teacher.tower, "original")(a[None], a[None].masked_fill(masked, 49408), masked)
    assert torch.allclose(original, teacher.tower.token_states(a[None]))


def test_teacher_gets_no_gradient_and_does_not_change():
    torch.manual_seed(0)
    teacher = TextTeacher(vidla.create_model("vidla-tiny").text)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    config = DistillConfig(student=SMALL)
    step = DistillStep(TextStudent(SMALL), config, teacher.width)
    optimizer = build_optimizer(step, config.optim)
    head_before = step.teacher_head.dense.weight.clone()
    ids = tokens(["a red square moves left, then a blue circle grows", "a dull plodding mess"])
    valid = valid_positions(ids, SMALL.eot_token_id)
    special = (ids == SMALL.sot_token_id) | (ids == SMALL.eot_token_id)
    for seed in range(3):
        m = mask_tokens(ids, valid & ~special, SMALL.mask_token_id, SMALL.sot_token_id, MaskingConfig(rate=0.5),
                        torch.Generator().manual_seed(seed))
        total, parts, _ = step(m.token_ids, m.labels, valid, teacher(ids, m.token_ids, m.masked))
        assert set(parts) == {"mlm", "nst", "ntxent"}
        total.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert not teacher.training
    teacher.train()
    assert not teacher.training and not teacher.tower.training
    assert not torch.equal(head_before, step.teacher_head.dense.weight)  # the teacher-side head does train
