"""A vidla checkpoint missing some of its own temporal tensors is an error naming them; CLIP weights (or another
temporal design asked for on purpose) still start the temporal parameters from their CLIP-based initialisation."""

from __future__ import annotations

import pytest
import torch

import vidla
from vidla.models.checkpoints import CheckpointError
from vidla.models.factory import save_state_dict


def test_missing_temporal_tensor_of_a_vidla_checkpoint_is_named(tmp_path):
    model = vidla.create_model("vidla-tiny", temporal="hta", num_frames=4)
    state = model.state_dict()
    temporal = sorted(k for k in state if k.startswith("temporal."))
    dropped = temporal[0]
    save_state_dict({k: v for k, v in state.items() if k != dropped}, model.config, tmp_path / "one.safetensors")
    with pytest.raises(CheckpointError, match=rf"one.safetensors: .*missing: \['{dropped}'\]"):
        vidla.load_model(tmp_path / "one.safetensors")
    save_state_dict({k: v for k, v in state.items() if k not in temporal}, model.config, tmp_path / "all.safetensors")
    with pytest.raises(CheckpointError, match=rf"all.safetensors: .*missing: \['{temporal[0]}'"):
        vidla.load_model(tmp_path / "all.safetensors")  # a vidla hta checkpoint must hold its hta tensors
    with pytest.raises(CheckpointError, match="missing"):
        vidla.create_model("vidla-tiny", temporal="hta", num_frames=4, pretrained=tmp_path / "all.safetensors")


def _initialised_from(clip_state, seed):
    torch.manual_seed(seed)
    reference = vidla.create_model("vidla-tiny", temporal="hta", num_frames=4)
    reference.load_state_dict({**reference.state_dict(), **clip_state})
    reference.temporal.init_from_clip(reference.visual)  # the documented initialisation, done by hand
    return reference.state_dict()


def test_clip_weights_still_initialise_a_new_temporal_design(tmp_path):
    clip_only = vidla.create_model("vidla-tiny", temporal="meanpool", num_frames=4)
    vidla.save_model(clip_only, tmp_path / "clip.safetensors")  # image-text weights, no temporal tensors
    a, b = _initialised_from(clip_only.state_dict(), 1), _initialised_from(clip_only.state_dict(), 2)
    from_clip = [k for k in a if k.startswith("temporal.") and torch.equal(a[k], b[k])]  # not random
    assert from_clip
    hta = vidla.create_model("vidla-tiny", temporal="hta", num_frames=4, pretrained=tmp_path / "clip.safetensors")
    switched = vidla.load_model(tmp_path / "clip.safetensors", temporal="hta", num_frames=4)  # on purpose
    for model in (hta, switched):
        state = model.state_dict()
        assert all(torch.equal(state[k], a[k]) for k in from_clip)
        assert all(torch.equal(state[k], v) for k, v in clip_only.state_dict().items())
