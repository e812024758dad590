"""Performance options: torch.compile's eager fallback, the optimiser kernels, the attention backends, and a
training run with every option on matching one with them off."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

import vidla
from vidla.data.temporal_synth import generate
from vidla.train.config import OptimSection, load_train_config
from vidla.train.loop import Trainer
from vidla.train.optim import build_optimizer
from vidla.data.transforms import normalize
from vidla.train.perf import CompileWithFallback, DevicePrefetcher, optimizer_options, sdpa_backends


def _tiny():
    torch.manual_seed(0)
    return vidla.create_model("vidla-tiny", temporal="hta", num_frames=2).eval()


def test_compile_failure_runs_eager_with_a_warning(monkeypatch):
    model, video = _tiny(), torch.randn(2, 2, 3, 32, 32)
    expected = model.encode_video(video)

    def broken_compile(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
        encode = CompileWithFallback(model.encode_video)
    assert torch.equal(encode(video), expected) and encode.compiled is None


def test_failure_at_the_first_compiled_call_runs_eager_with_a_warning(monkeypatch):
    model, video = _tiny(), torch.randn(2, 2, 3, 32, 32)
    calls = []

    def lazily_broken(fn, **kwargs):
        def compiled(*args):
            calls.append(1)
            raise RuntimeError("inductor: unsupported op")
        return compiled

    monkeypatch.setattr(torch, "compile", lazily_broken)
    encode = CompileWithFallback(model.encode_video)
    with pytest.warns(RuntimeWarning, match="unsupported op"):
        out = encode(video)
    assert torch.equal(out, model.encode_video(video))
    assert torch.equal(encode(video), out) and len(calls) == 1  # not retried


def test_optimizer_implementations():
    assert optimizer_options("auto") == {"fused": True}
    assert optimizer_options("auto", sharded=True) == {"foreach": True}
    assert optimizer_options("for_loop") == {"foreach": False}
    with pytest.raises(ValueError, match="implementation"):
        optimizer_options("apex")
    # each kernel takes the same step as the textbook loop
    steps = {}
    for implementation in ("for_loop", "foreach", "fused"):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.LayerNorm(8))
        optimizer = build_optimizer(model, OptimSection(lr=1e-2, implementation=implementation))
        for step in range(3):
            for p in model.parameters():
                p.grad = torch.randn(p.shape, generator=torch.Generator().manual_seed(step))
            optimizer.step()
        steps[implementation] = torch.cat([p.detach().flatten() for p in model.parameters()])
    torch.testing.assert_close(steps["foreach"], steps["for_loop"])
    torch.testing.assert_close(steps["fused"], steps["for_loop"])


def test_attention_backends_restrict_sdpa():
    q = torch.randn(1, 2, 4, 8)
    with sdpa_backends(["math"]):
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
    with pytest.raises(ValueError, match="unknown attention backend"):
        sdpa_backends(["xformers"])


def test_device_prefetcher_yields_every_batch_in_order_normalised():
    frames = [torch.randint(0, 256, (2, 3, 3, 4, 4), dtype=torch.uint8) for _ in range(3)]
    batches = [{"video": f, "tokens": {"caption": torch.full((2, 5), i)}, "skipped": i} for i, f in enumerate(frames)]
    out = list(DevicePrefetcher(iter(batches), torch.device("cpu")))
    assert [b["skipped"] for b in out] == [0, 1, 2]
    for batch, f in zip(out, frames):
        assert batch["video"].dtype == torch.float32 and torch.equal(batch["video"], normalize(f))
    assert list(DevicePrefetcher(iter([]), torch.device("cpu"))) == []


def test_training_with_the_options_on_equals_off(tmp_path, monkeypatch, recwarn):
    """uint8 frames normalised after the loader, batches prefetched to the device, channels-last patch embedding,
    the fused AdamW, the video tower through torch.compile (dynamo's trace with the eager backend: an inductor
    build takes minutes on this CPU) and SDPA restricted to its math kernel: the same weights after 2 steps as a
    run with them all off."""
    compiled = []
    original = torch.compile

    def eager_compile(fn, **kwargs):
        compiled.append(fn)
        return original(fn, backend="eager")

    monkeypatch.setattr(torch, "compile", eager_compile)
    paths = generate(tmp_path / "data", num_clips=8, seed=0, progress=False)
    common = ["model.name=vidla-tiny", f"data.train={paths['train']}", "data.num_frames=2", "data.workers=0",
              "steps=2", "batch_size=2", "precision=fp32", "checkpoint_every=2", "tensorboard=false"]
    options = {"off": ["optim.implementation=for_loop"],
               "on": ["data.uint8_frames=true", "data.prefetch_to_device=true", "optim.implementation=fused",
                      "compile=true", "model.channels_last=true", "attention_backends=[math]"]}
    for name, extra in options.items():
        Trainer(load_train_config(None, [*common, *extra, f"output_dir={tmp_path / name}"]), progress=False).run()
    assert len(compiled) == 1 and not [w for w in recwarn if "torch.compile failed" in str(w.message)]
    off, on = (load_file(tmp_path / name / "model.safetensors") for name in ("off", "on"))
    assert off.keys() == on.keys()
    for key in off:
        torch.testing.assert_close(on[key], off[key], rtol=1e-4, atol=1e-5, msg=key)
    losses = [[json.loads(line)["loss"] for line in (tmp_path / n / "metrics.jsonl").read_text().splitlines()]
              for n in options]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)
