"""Training with key-frame selection (SPEC 5.2): the Gumbel temperature schedule and ViLA's distillation, in
which a teacher that sees all T frames guides the student that sees the K selected ones."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from vidla.models import VidLA
from vidla.models.frame_selection import annealed_temperature
from vidla.train.config import SelectionSection


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, weight: float) -> torch.Tensor:
    """weight x MSE (mean over clips and dimensions) between the student's and the teacher's unnormalised
    video features; the teacher gets no gradient."""
    return weight * F.mse_loss(student.float(), teacher.detach().float())


class Distiller:
    """A frozen teacher that encodes every candidate frame (`encode_frames`, no selection)."""

    def __init__(self, teacher: VidLA, weight: float):
        self.teacher = teacher.eval().requires_grad_(False)
        self.weight = weight

    @classmethod
    def for_training(cls, model: VidLA, selection: SelectionSection) -> "Distiller | None":
        """None when the model selects no frames or the weight is 0. The default teacher is a frozen copy of
        `model` as built (its starting weights), made before training changes them, also on resume."""
        if model.frame_selector is None or selection.distill_weight == 0:
            return None
        if selection.teacher:
            import vidla

            teacher = vidla.load_model(selection.teacher, num_frames=model.num_frames).to(model.device)
        else:
            teacher = copy.deepcopy(model)
        return cls(teacher, selection.distill_weight)

    def loss(self, video: torch.Tensor, student_features: torch.Tensor) -> torch.Tensor:
        """video: the T candidate frames [B, T, 3, H, W] the student selected from."""
        with torch.no_grad():
            teacher_features = self.teacher.encode_frames(video)
        return distillation_loss(student_features, teacher_features, self.weight)


def set_temperature(model: VidLA, step: int, total_steps: int, selection: SelectionSection) -> None:
    if model.frame_selector is not None:
        tau = annealed_temperature(step, total_steps, selection.temperature_start, selection.temperature_end)
        model.frame_selector.temperature.fill_(tau)


def selection_guide(text_features: torch.Tensor, share: float) -> torch.Tensor:
    """The text that guides each clip's selection in training: its own text for a random `share` of the
    clips, zero (text-free selection) for the rest, so one selector serves indexing and re-ranking."""
    keep = torch.rand(text_features.shape[0], 1, device=text_features.device) < share
    return text_features.detach() * keep
