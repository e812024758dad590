"""The shared token encoder under CLIP's text tower and the distilled student: it must not change what either
saves or how either starts. The literals below were printed by main before the trunk was factored out
(TextTransformer's outputs against transformers' CLIPTextModel are checked in test_clip_loading.py)."""

from __future__ import annotations

import pytest
import torch

from vidla.distill.student import StudentConfig, TextStudent
from vidla.models.clip import TextTransformer
from vidla.models.config import TextConfig

BLOCK = [f"transformer.resblocks.0.{name}" for name in (
    "ln_1.weight", "ln_1.bias", "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
    "attn.out_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias", "mlp.c_proj.weight",
    "mlp.c_proj.bias")]
TOWER_KEYS = ["positional_embedding", "text_projection", "token_embedding.weight", *BLOCK,
              "ln_final.weight", "ln_final.bias"]
STUDENT_KEYS = ["positional_embedding", "mlm_bias", "token_embedding.weight", *BLOCK, "ln_final.weight",
                "ln_final.bias", "mlm_dense.weight", "mlm_dense.bias", "mlm_norm.weight", "mlm_norm.bias"]

# the first three values of each tensor after torch.manual_seed(0): the random draws come in main's order
TOWER_INIT = {"token_embedding.weight": [-0.036191, 0.013851, 0.023964],
              "positional_embedding": [0.004047, -0.006549, 0.000521],
              "text_projection": [-0.528902, 0.006446, 0.122188],
              "transformer.resblocks.0.attn.in_proj_weight": [0.595305, 0.357312, 0.219873],
              "transformer.resblocks.0.mlp.c_proj.weight": [0.277266, 0.284597, 0.098911]}
STUDENT_INIT = {"token_embedding.weight": [-0.024304, -0.003393, 0.011646],
                "positional_embedding": [0.001843, -0.00676, -0.00896],
                "transformer.resblocks.0.attn.in_proj_weight": [-0.238716, -0.212522, 0.45331],
                "transformer.resblocks.0.mlp.c_proj.weight": [-0.304265, 0.161903, -0.210274],
                "mlm_dense.weight": [0.35214, -0.209573, 0.352967]}


def tower() -> TextTransformer:
    torch.manual_seed(0)
    return TextTransformer(TextConfig(context_length=8, vocab_size=50, width=8, layers=1, heads=2, mlp_dim=16), 4)


def student() -> TextStudent:
    torch.manual_seed(0)
    return TextStudent(StudentConfig(width=8, layers=1, heads=2, mlp_dim=16, context_length=8, vocab_size=51,
                                     mask_token_id=50))


@pytest.mark.parametrize("build, keys, init", [(tower, TOWER_KEYS, TOWER_INIT),
                                               (student, STUDENT_KEYS, STUDENT_INIT)])
def test_state_dict_keys_and_seeded_initialisation_are_mains(build, keys, init):
    state = build().state_dict()
    assert list(state) == keys
    for name, values in init.items():
        assert state[name].flatten()[:3].tolist() == pytest.approx(values, abs=1e-6), name


def test_tower_is_causal_and_student_reads_both_directions():
    ids = torch.tensor([[3, 7, 9, 12, 5]])
    changed = ids.clone()
    changed[0, 3] = 40  # a later token
    for encoder, sees_later in ((tower(), False), (student(), True)):
        with torch.no_grad():
            before, after = encoder.token_states(ids), encoder.token_states(changed)
        prefix_unchanged = torch.equal(before[0, :3], after[0, :3])
        assert prefix_unchanged == (not sees_later)


def test_too_many_tokens_are_refused_by_both():
    for encoder in (tower(), student()):
        with pytest.raises(ValueError, match="9 tokens exceed the encoder's context of 8"):
            encoder(torch.ones(1, 9, dtype=torch.long))
