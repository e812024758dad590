"""The distillation terms against independent computations written from their definitions (loops over
sequences, neurons and positions in float64 numpy), on hand-built hidden states with padding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vidla.distill.losses import CRDLoss, DistillHead, crd_nce, nst_loss, nt_xent_loss


def hidden_states(seed: int, batch: int = 3, length: int = 5, dim: int = 4):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, dim, generator=g, dtype=torch.float64)
    lengths = [5, 3, 2][:batch]
    valid = torch.arange(length)[None] < torch.tensor(lengths)[:, None]
    x[~valid] = 100.0  # padding holds garbage: it must not count
    return x, valid


def nst_reference(student: np.ndarray, teacher: np.ndarray, valid: np.ndarray) -> float:
    """Per sequence: neurons' patterns over its valid tokens, each L2-normalised; MMD^2 with k(x,y)=(x.y)^2."""
    total = 0.0
    for b in range(student.shape[0]):
        tokens = valid[b].nonzero()[0]
        s = [student[b, tokens, i] / np.linalg.norm(student[b, tokens, i]) for i in range(student.shape[2])]
        t = [teacher[b, tokens, j] / np.linalg.norm(teacher[b, tokens, j]) for j in range(teacher.shape[2])]
        k = lambda xs, ys: np.mean([[float(x @ y) ** 2 for y in ys] for x in xs])  # noqa: E731
        total += k(s, s) - 2 * k(s, t) + k(t, t)
    return total / student.shape[0]


def test_nst_equals_its_definition():
    student, valid = hidden_states(0)
    teacher, _ = hidden_states(1, dim=6)  # the neuron counts may differ: the kernel is over token patterns
    expected = nst_reference(student.numpy(), teacher.numpy(), valid.numpy())
    assert nst_loss(student, teacher, valid).item() == pytest.approx(expected, rel=1e-10)


def test_nst_is_zero_for_equal_patterns_and_positive_otherwise():
    student, valid = hidden_states(0)
    scaled = student * torch.tensor([2.0, 0.5, 3.0, 1.0], dtype=torch.float64)  # per-neuron scale: same patterns
    assert nst_loss(student, scaled, valid).item() == pytest.approx(0.0, abs=1e-12)
    other, _ = hidden_states(5)
    assert nst_loss(student, other, valid).item() > 1e-3


def nt_xent_reference(student: np.ndarray, teacher: np.ndarray, valid: np.ndarray, temperature: float) -> float:
    """SimCLR's NT-Xent at each position over the sequences valid there; mean over all (position, anchor)."""
    losses = []
    for pos in range(student.shape[1]):
        rows = valid[:, pos].nonzero()[0]
        z = [student[b, pos] for b in rows] + [teacher[b, pos] for b in rows]
        z = [v / np.linalg.norm(v) for v in z]
        n = len(rows)
        for a in range(2 * n):
            positive = (a + n) % (2 * n)
            sims = {c: math.exp(float(z[a] @ z[c]) / temperature) for c in range(2 * n) if c != a}
            losses.append(-math.log(sims[positive] / sum(sims.values())))
    return float(np.mean(losses))


@pytest.mark.parametrize("temperature", [1.0, 0.3])
def test_nt_xent_equals_its_definition(temperature):
    student, valid = hidden_states(2)
    teacher, _ = hidden_states(3)
    expected = nt_xent_reference(student.numpy(), teacher.numpy(), valid.numpy(), temperature)
    assert nt_xent_loss(student, teacher, valid, temperature).item() == pytest.approx(expected, rel=1e-10)


def test_nt_xent_rewards_matching_the_counterpart():
    student, valid = hidden_states(2)
    shuffled = student[[1, 2, 0]]
    assert nt_xent_loss(student, student, valid) < nt_xent_loss(student, shuffled, valid)


def test_crd_nce_equals_its_definition():
    g = torch.Generator().manual_seed(4)
    s = torch.nn.functional.normalize(torch.randn(6, 3, generator=g, dtype=torch.float64), dim=-1)
    t = torch.nn.functional.normalize(torch.randn(6, 3, generator=g, dtype=torch.float64), dim=-1)
    n, temperature = 6, 0.5
    scores = np.exp((s @ t.T).numpy() / temperature)
    z = scores.mean() * n
    noise = (n - 1) * (1 / n)
    total = 0.0
    for i in range(n):
        for j in range(n):
            p = scores[i, j] / z
            total += math.log(p / (p + noise)) if i == j else math.log(noise / (p + noise))
    assert crd_nce(s, t, temperature).item() == pytest.approx(-total / n, rel=1e-10)
    crd = CRDLoss(4, 4, feature_dim=3).double()
    student, valid = hidden_states(0)
    assert torch.isfinite(crd(student, student, valid))


def test_head_output_is_unit_length_per_token():
    head = DistillHead(4, 7)
    out = head(torch.randn(2, 5, 4))
    assert out.shape == (2, 5, 7)
    assert torch.allclose(out.norm(dim=-1), torch.ones(2, 5), atol=1e-6)
