"""The loss, the optimiser groups, the schedule, the data order and the config, against definitions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import vidla
from vidla.config import ConfigError
from vidla.train.config import load_train_config
from vidla.train.data import StepBatches
from vidla.train.loss import ContrastiveLoss, symmetric_info_nce
from vidla.train.optim import build_optimizer, cosine_factor
from vidla.train.config import OptimSection

REPO = Path(__file__).resolve().parents[2]


def reference_info_nce(video: np.ndarray, text: np.ndarray, scale: float) -> float:
    """Symmetric info-NCE from its definition, in float64 numpy."""
    v = video / np.linalg.norm(video, axis=1, keepdims=True)
    t = text / np.linalg.norm(text, axis=1, keepdims=True)
    logits = scale * v @ t.T

    def cross_entropy(rows):
        log_softmax = rows - np.log(np.exp(rows - rows.max(1, keepdims=True)).sum(1, keepdims=True)) \
            - rows.max(1, keepdims=True)
        return -np.mean(np.diag(log_softmax))

    return (cross_entropy(logits) + cross_entropy(logits.T)) / 2


def test_loss_is_the_sum_over_text_kinds_of_symmetric_info_nce():
    rng = np.random.default_rng(0)
    video, caption, subtitle = (rng.normal(size=(6, 16)) for _ in range(3))
    logit_scale = torch.tensor(math.log(1 / 0.07))
    total, parts = ContrastiveLoss()(torch.tensor(video), {"caption": torch.tensor(caption),
                                                           "subtitle": torch.tensor(subtitle)}, logit_scale)
    expected_caption = reference_info_nce(video, caption, 1 / 0.07)
    expected_subtitle = reference_info_nce(video, subtitle, 1 / 0.07)
    assert parts["caption"].item() == pytest.approx(expected_caption, rel=1e-6)
    assert total.item() == pytest.approx(expected_caption + expected_subtitle, rel=1e-6)
    # the temperature is clamped at 1/100 as in CLIP
    _, clamped = ContrastiveLoss()(torch.tensor(video), {"c": torch.tensor(caption)}, torch.tensor(10.0))
    assert clamped["c"].item() == pytest.approx(reference_info_nce(video, caption, 100.0), rel=1e-6)


def test_local_rows_average_to_the_global_loss():
    torch.manual_seed(0)
    video, text = torch.nn.functional.normalize(torch.randn(8, 4), dim=-1), torch.randn(8, 4)
    text = torch.nn.functional.normalize(text, dim=-1)
    scale = torch.tensor(20.0)
    full = symmetric_info_nce(video, text, video, text, scale, 0)
    halves = [symmetric_info_nce(video[i:i + 4], text[i:i + 4], video, text, scale, i) for i in (0, 4)]
    assert torch.allclose(full, sum(halves) / 2, atol=1e-6)


def test_parameter_groups_and_temporal_learning_rate():
    model = vidla.create_model("vidla-tiny", temporal="hta", num_frames=4)
    optimizer = build_optimizer(model, OptimSection(lr=1e-5, temporal_lr=1e-4, weight_decay=0.2))
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    no_decay = ["logit_scale", "visual.class_embedding", "visual.positional_embedding", "temporal.mst_tokens",
                "temporal.positions.table", "text.token_embedding.weight", "visual.ln_pre.weight",
                "visual.transformer.resblocks.0.attn.in_proj_bias"]
    for name in no_decay:
        assert group_of[id(named[name])]["weight_decay"] == 0.0, name
    assert group_of[id(named["visual.transformer.resblocks.0.attn.in_proj_weight"])]["weight_decay"] == 0.2
    assert group_of[id(named["temporal.temporal_layers.0.attn.in_proj_weight"])]["lr"] == 1e-4
    assert group_of[id(named["visual.conv1.weight"])]["lr"] == 1e-5
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(named)


def test_cosine_schedule_with_warmup():
    assert cosine_factor(0, 100, 10, 0.0) == pytest.approx(0.1)
    assert cosine_factor(9, 100, 10, 0.0) == pytest.approx(1.0)
    assert cosine_factor(10, 100, 10, 0.0) == pytest.approx(1.0)
    assert cosine_factor(55, 100, 10, 0.0) == pytest.approx(0.5)
    assert cosine_factor(100, 100, 10, 0.002) == pytest.approx(0.002)


def test_step_batches_split_resume_and_cover_epochs():
    one = StepBatches(10, 4, steps=6, seed=3)
    two = [StepBatches(10, 4, steps=6, seed=3, rank=r, world=2) for r in (0, 1)]
    for step_one, (a, b) in zip(one, zip(*two)):
        assert step_one == a + b  # rank order = the single process's order
    resumed = list(StepBatches(10, 4, steps=6, seed=3, start_step=2))
    assert resumed == list(one)[2:]
    fresh = StepBatches(10, 4, steps=6, seed=3)
    keys = np.concatenate([fresh.global_keys(s) for s in range(5)])  # 20 keys = 2 epochs
    assert sorted(keys[:10] % 10) == list(range(10)) and sorted(keys[10:20] % 10) == list(range(10))
    with pytest.raises(ValueError, match="divisible"):
        StepBatches(10, 5, steps=1, seed=0, world=2)


def test_configs_load_with_overrides_and_inheritance(tmp_path):
    config = load_train_config(REPO / "configs/train/tiny_cpu.yaml", ["steps=3", "optim.lr=0.5", "data.num_frames=2"])
    assert config.steps == 3 and config.optim.lr == 0.5 and config.data.num_frames == 2
    assert config.model.name == "vidla-tiny"
    child = tmp_path / "child.yaml"
    child.write_text(f"base: {REPO / 'configs/train/tiny_cpu.yaml'}\noptim:\n  lr: 0.25\n")
    inherited = load_train_config(child)
    assert inherited.optim.lr == 0.25 and inherited.optim.warmup_steps == 2 and inherited.steps == 8
    with pytest.raises(ConfigError, match="optim.*unknown key.*'lrr'"):
        load_train_config(None, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="steps: expected int"):
        load_train_config(None, ["steps=many"])


@pytest.mark.parametrize("path", sorted((REPO / "configs/train").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_loads_and_validates(path):
    config = load_train_config(path, ["data.train=clips.jsonl"])  # recipes leave the data to the user
    config.validate(world_size=1 if config.batch_size % 2 else 2)
    assert config.model.name in vidla.list_models()
