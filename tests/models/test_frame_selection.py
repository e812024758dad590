"""Key-frame selection (SPEC 5.2): one frame per segment, straight-through gradients in training, a
deterministic argmax at inference, text guidance, and the option saved with the model."""

from __future__ import annotations

import pytest
import torch

import vidla
from vidla.models.frame_selection import annealed_temperature
from vidla.models.temporal import TEMPORAL_DESIGNS

T, K = 8, 4


def selecting_model(temporal: str = "meanpool", **selection) -> vidla.VidLA:
    torch.manual_seed(0)
    return vidla.create_model("vidla-tiny", temporal=temporal, num_frames=T,
                              frame_selection={"segments": K, **selection})


def assert_one_per_segment(indices: torch.Tensor, frames: int = T, segments: int = K) -> None:
    per_segment = frames // segments
    assert indices.shape[-1] == segments
    assert torch.equal(indices // per_segment, torch.arange(segments).expand_as(indices))


@pytest.mark.parametrize("temporal", sorted(TEMPORAL_DESIGNS))
def test_straight_through_gradients_reach_the_selector_with_every_design(temporal):
    model = selecting_model(temporal).train()
    video = torch.randn(2, T, 3, 32, 32)
    model.encode_video(video, text=torch.randn(2, 64)).square().sum().backward()
    for name, param in model.frame_selector.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_training_selection_is_hard_one_frame_per_segment():
    model = selecting_model().train()
    video = torch.randn(3, T, 3, 32, 32)
    for _ in range(5):  # Gumbel noise: different draws, always one whole candidate frame per segment
        frames, indices = model.select_frames(video)
        assert_one_per_segment(indices)
        expected = video[torch.arange(3)[:, None], indices]
        torch.testing.assert_close(frames, expected, atol=1e-6, rtol=0)


def test_straight_through_gradient_is_the_softmax_gradient():
    """The backward pass of the hard pick equals that of the soft Gumbel-softmax with the same noise."""
    model = selecting_model().train()
    selector, video = model.frame_selector, torch.randn(2, T, 3, 32, 32)
    selector.temperature.fill_(0.5)
    weights = torch.randn(2, K, 3, 32, 32)  # a loss linear in the selected frames

    torch.manual_seed(1)
    frames, _ = model.select_frames(video)
    (frames * weights).sum().backward()
    got = selector.score.weight.grad.clone()

    selector.zero_grad()
    logits = selector.logits(selector.frame_features(model.visual, video))
    torch.manual_seed(1)
    gumbels = -torch.empty_like(logits).exponential_().log()  # the draw F.gumbel_softmax makes
    soft = ((logits + gumbels) / 0.5).softmax(-1)
    segments = video.unflatten(1, (K, T // K))
    (torch.einsum("bks,bks...->bk...", soft, segments) * weights).sum().backward()
    torch.testing.assert_close(got, selector.score.weight.grad, atol=1e-5, rtol=1e-4)


def test_inference_selection_is_deterministic_argmax():
    model = selecting_model().eval()
    video = torch.randn(4, T, 3, 32, 32)
    with torch.no_grad():
        runs = []
        for seed in range(3):
            torch.manual_seed(seed)  # no noise: the random state must not matter
            runs.append(model.select_frames(video))
        logits = model.frame_selector.logits(model.frame_selector.frame_features(model.visual, video))
        features = model.encode_video(video)
        reference = model.encode_frames(video[torch.arange(4)[:, None], runs[0][1]])
    for frames, indices in runs[1:]:
        assert torch.equal(indices, runs[0][1]) and torch.equal(frames, runs[0][0])
    assert torch.equal(runs[0][1], logits.argmax(-1) + torch.arange(K) * (T // K))
    assert_one_per_segment(runs[0][1])
    torch.testing.assert_close(features, reference)


def test_text_guidance_changes_the_selection_and_zero_text_is_text_free():
    model = selecting_model().eval()
    video = torch.randn(8, T, 3, 32, 32)
    with torch.no_grad():
        free = model.select_frames(video)[1]
        # the text term starts at zero (a new selector is text-free); give it weights as training would
        assert torch.equal(model.select_frames(video, "a red square grows")[1], free)
        torch.nn.init.normal_(model.frame_selector.text_query.weight)
        by_text = [model.select_frames(video, text)[1] for text in ("a red square grows", "a blue circle moves left",
                                                                     "a green triangle shrinks")]
        by_list = model.select_frames(video, ["a red square grows"] * 8)[1]
        zero = model.select_frames(video, torch.zeros(1, 64))[1]
    assert torch.equal(zero, free)
    assert torch.equal(by_list, by_text[0])  # one text is broadcast over the clips
    assert any(not torch.equal(a, b) for a in [free, *by_text] for b in by_text if a is not b)
    for indices in by_text:
        assert_one_per_segment(indices)


@pytest.mark.parametrize("features", ["patch", "pixels"])
def test_selection_is_saved_with_the_model(tmp_path, features):
    model = selecting_model(features=features, grid=3).eval()
    path = vidla.save_model(model, tmp_path / "m.safetensors")
    loaded = vidla.load_model(path).eval()
    assert loaded.config.frame_selection == model.config.frame_selection
    video = torch.randn(2, T, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.encode_video(video, "a text"), model.encode_video(video, "a text"))


def test_clip_weights_load_into_a_selecting_model(tmp_path):
    plain = vidla.create_model("vidla-tiny", num_frames=T)
    path = vidla.save_model(plain, tmp_path / "plain.safetensors")
    model = vidla.create_model("vidla-tiny", num_frames=T, pretrained=path, frame_selection={"segments": K})
    assert torch.equal(model.visual.conv1.weight, plain.visual.conv1.weight) and model.frame_selector is not None


def test_bad_use_is_explained():
    model = selecting_model()
    with pytest.raises(ValueError, match="multiple of 4"):
        model.encode_video(torch.randn(1, 6, 3, 32, 32))
    with pytest.raises(ValueError, match="features must be one of"):
        selecting_model(features="optical-flow")
    plain = vidla.create_model("vidla-tiny")
    with pytest.raises(ValueError, match="no frame selection|has none"):
        plain.encode_video(torch.randn(1, 2, 3, 32, 32), text="a text")


def test_temperature_anneals_from_one_to_a_hundredth():
    assert annealed_temperature(0, 101) == 1.0
    assert annealed_temperature(100, 101) == pytest.approx(0.01)
    assert annealed_temperature(50, 101) == pytest.approx(0.1)  # exponential: the geometric mean halfway
    assert annealed_temperature(500, 101) == pytest.approx(0.01)
