"""VidLanKD's distillation terms on per-token hidden states (SPEC 5.3; zinengtang/VidLanKD `vteacher/loss.py`,
`vlm/model.py`, `vlm/crd.py`).

All take student and teacher features [B, L, D] of the same token sequences and `valid` [B, L] (padding
excluded); the teacher's features carry no gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vidla.models.transformer import LayerNorm

# A finite "minus infinity" for masked logits: exp() of it is exactly 0 in float32, and a row whose entries
# are all masked stays finite (no NaN gradient through rows that are dropped afterwards).
_MASKED = -1e9


class DistillHead(nn.Module):
    """Student (or teacher) head: dense -> GELU -> LayerNorm -> Linear -> L2-normalise, per token."""

    def __init__(self, width: int, out_dim: int, eps: float = 1e-5):
        super().__init__()
        self.dense = nn.Linear(width, width)
        self.activation = nn.GELU()
        self.norm = LayerNorm(width, eps=eps)
        self.out = nn.Linear(width, out_dim)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.out(self.norm(self.activation(self.dense(hidden)))), dim=-1)


def _neuron_patterns(features: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """[B, L, D] -> [B, D, L]: each neuron's activation over the valid tokens, L2-normalised over tokens
    (padding contributes zeros, so it changes neither the norms nor the kernel)."""
    masked = features * valid[..., None].to(features.dtype)
    return F.normalize(masked.transpose(1, 2), dim=2)


def nst_loss(student: torch.Tensor, teacher: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Neuron selectivity transfer: MMD^2 between the student's and the teacher's neuron patterns with the
    polynomial kernel k(x, y) = (x.y)^2, per sequence: mean(K_ss) - 2 mean(K_st) + mean(K_tt), averaged over
    the batch. mean(K_tt) is constant for the student (VidLanKD omits it); it makes the value a true MMD^2,
    0 when the patterns coincide."""
    s = _neuron_patterns(student, valid)
    t = _neuron_patterns(teacher.detach(), valid)
    k_ss = (s @ s.transpose(1, 2)).pow(2).mean((1, 2))
    k_st = (s @ t.transpose(1, 2)).pow(2).mean((1, 2))
    k_tt = (t @ t.transpose(1, 2)).pow(2).mean((1, 2))
    return (k_ss - 2 * k_st + k_tt).mean()


def nt_xent_loss(student: torch.Tensor, teacher: torch.Tensor, valid: torch.Tensor,
                 temperature: float = 1.0) -> torch.Tensor:
    """NT-Xent (SimCLR) between student and teacher head outputs at each token position: at position l the
    2B' features of the B' sequences valid there are compared by cosine / temperature; each one's positive is
    its counterpart from the other model, the other 2B'-2 are negatives. Cross-entropy averaged over all
    valid (position, feature) anchors. (VidLanKD's code divides this mean once more by 2B; that constant is
    left to the loss weight.)"""
    batch = student.shape[0]
    z = F.normalize(torch.cat([student, teacher], 0), dim=-1).transpose(0, 1)   # [L, 2B, D]
    both_valid = torch.cat([valid, valid], 0).transpose(0, 1)                    # [L, 2B]
    logits = z @ z.transpose(1, 2) / temperature                                 # [L, 2B, 2B]
    self_pair = torch.eye(2 * batch, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_pair | ~both_valid[:, None, :], _MASKED)
    target = (torch.arange(2 * batch, device=z.device) + batch) % (2 * batch)
    per_anchor = F.cross_entropy(logits.flatten(0, 1), target.repeat(z.shape[0]), reduction="none")
    return per_anchor[both_valid.flatten()].mean()


class CRDLoss(nn.Module):
    """Contrastive representation distillation (Tian et al. 2020, as in VidLanKD's `vlm/crd.py`) on tokens,
    with in-batch negatives instead of a dataset-sized memory bank: student and teacher hidden states are
    embedded (Linear -> L2) in a shared space; for each valid token, its teacher counterpart is the positive
    and the batch's other N-1 valid tokens the negatives; the NCE critic
        P(i, j) = exp(s_i . t_j / T) / Z,   D = P / (P + m Pn),   m = N - 1, Pn = 1 / N
    with Z = mean(exp(s . t / T)) * N (CRD's normalising constant, here from the batch), and the loss
    -(sum log D(pos) + sum log(1 - D(neg))) / N. With in-batch negatives CRD's two directions (student as
    anchor, teacher as anchor) give the same sum, so one is computed."""

    def __init__(self, student_width: int, teacher_width: int, feature_dim: int = 128, temperature: float = 0.07):
        super().__init__()
        self.embed_student = nn.Linear(student_width, feature_dim)
        self.embed_teacher = nn.Linear(teacher_width, feature_dim)
        self.temperature = temperature

    def forward(self, student: torch.Tensor, teacher: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        s = F.normalize(self.embed_student(student[valid]), dim=-1)
        t = F.normalize(self.embed_teacher(teacher.detach()[valid]), dim=-1)
        return crd_nce(s, t, self.temperature)


def crd_nce(s: torch.Tensor, t: torch.Tensor, temperature: float) -> torch.Tensor:
    """CRD's NCE loss for embedded pairs s[i] <-> t[i] ([N, F] each), in-batch negatives (see CRDLoss)."""
    n = s.shape[0]
    scores = torch.exp(s @ t.T / temperature)
    p = scores / (scores.detach().mean() * n)
    noise = (n - 1) / n                                     # m * Pn
    positive = torch.eye(n, dtype=torch.bool, device=s.device)
    log_d = torch.where(positive, torch.log(p / (p + noise)), torch.log(noise / (p + noise)))
    return -log_d.sum() / n
