"""vidla's CLIP towers against Hugging Face transformers' CLIP, loaded from each supported checkpoint format."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import vidla
from vidla.models import CheckpointError

from clip_reference import (build_hf_clip, hf_image_features, hf_text_features, save_hf_folder,
                            save_openai_torchscript, to_openai_state_dict, write_tokenizer_files)

TEXTS = [
    "a photo of a cat",
    "A man, riding a horse -- on the beach!",
    "",
    "Ünïcödé café crème, naïve façade; 日本語のテキスト 😀",
    "numbers 12345 and symbols #@$%^&*() [brackets] {braces}",
    " ".join(f"word{i}" for i in range(120)),  # far longer than 77 tokens: truncated
]
TOL = 1e-5


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    model = build_hf_clip(seed=0)
    folder = save_hf_folder(model, tmp_path_factory.mktemp("hf_clip"))
    tokenizer = write_tokenizer_files(folder)
    with torch.no_grad():
        text = hf_text_features(model, tokenizer, TEXTS)
        pixels = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        image = hf_image_features(model, pixels)
    return dict(model=model, folder=folder, text=text, pixels=pixels, image=image)


def check_matches(model: vidla.VidLA, ref: dict) -> None:
    with torch.no_grad():
        assert max_err(model.encode_text(TEXTS), ref["text"]) <= TOL
        assert max_err(model.encode_video(ref["pixels"][:, None]), ref["image"]) <= TOL


def test_hf_folder_safetensors_matches_transformers(reference):
    model = vidla.load_model(reference["folder"]).eval()
    assert model.config.vision.heads == 2 and model.config.text.heads == 2
    assert model.image_size == 32 and model.config.embed_dim == 40
    check_matches(model, reference)
    assert torch.allclose(model.logit_scale, reference["model"].logit_scale)


def test_hf_folder_pytorch_bin_and_gelu(tmp_path):
    hf = build_hf_clip(seed=3, activation="gelu")
    folder = save_hf_folder(hf, tmp_path / "bin", safe=False)
    assert (folder / "pytorch_model.bin").is_file()
    tokenizer = write_tokenizer_files(folder)
    model = vidla.load_model(folder).eval()
    assert model.config.vision.activation == "gelu"
    with torch.no_grad():
        pixels = torch.randn(2, 3, 32, 32)
        assert max_err(model.encode_text(TEXTS), hf_text_features(hf, tokenizer, TEXTS)) <= TOL
        assert max_err(model.encode_video(pixels[:, None]), hf_image_features(hf, pixels)) <= TOL


def test_openai_plain_state_dict(reference, tmp_path):
    path = tmp_path / "ViT-tiny.pt"
    torch.save(to_openai_state_dict(reference["model"]), path)
    model = vidla.load_model(path, vision_heads=2, text_heads=2).eval()
    check_matches(model, reference)


def test_openai_torchscript_archive_is_read_without_jit(reference, tmp_path, monkeypatch):
    path = save_openai_torchscript(to_openai_state_dict(reference["model"]), tmp_path / "ViT-tiny.pt")

    def forbidden(*args, **kwargs):
        raise AssertionError("torch.jit.load must not be used")

    monkeypatch.setattr(torch.jit, "load", forbidden)
    model = vidla.load_model(path, vision_heads=2, text_heads=2).eval()
    check_matches(model, reference)


def test_openai_fp16_archive_loads_as_float32(reference, tmp_path):
    half = {k: v.half() for k, v in to_openai_state_dict(reference["model"]).items()}
    path = save_openai_torchscript(half, tmp_path / "half.pt")
    model = vidla.load_model(path, vision_heads=2, text_heads=2).eval()
    assert model.visual.conv1.weight.dtype == torch.float32
    rounded = build_hf_clip(seed=0)
    rounded.load_state_dict({k: v.half().float() for k, v in reference["model"].state_dict().items()})
    tokenizer = write_tokenizer_files(tmp_path / "tok")
    with torch.no_grad():
        assert max_err(model.encode_text(TEXTS), hf_text_features(rounded, tokenizer, TEXTS)) <= TOL


def test_open_clip_training_checkpoint(reference, tmp_path):
    state = {"module." + k: v for k, v in to_openai_state_dict(reference["model"]).items()}
    path = tmp_path / "epoch_3.pt"
    torch.save({"epoch": 3, "name": "run", "state_dict": state, "optimizer": {}}, path)
    check_matches(vidla.load_model(path, vision_heads=2, text_heads=2).eval(), reference)


def test_open_clip_custom_text_layout_safetensors(reference, tmp_path):
    state = {("text." + k if not k.startswith(("visual.", "logit_scale")) else k): v
             for k, v in to_openai_state_dict(reference["model"]).items()}
    path = tmp_path / "open_clip_model.safetensors"
    save_file(state, str(path))
    check_matches(vidla.load_model(path, vision_heads=2, text_heads=2).eval(), reference)


def test_head_count_follows_clip_rule_without_override(tmp_path):
    hf = build_hf_clip(seed=5, v_width=128, v_heads=2, t_width=128, t_heads=2)
    path = tmp_path / "w.pt"
    torch.save(to_openai_state_dict(hf), path)
    model = vidla.load_model(path).eval()  # 128 / 64 = 2 heads, no override needed
    pixels = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert max_err(model.encode_video(pixels[:, None]), hf_image_features(hf, pixels)) <= TOL


def test_vidla_checkpoint_round_trip(reference, tmp_path):
    model = vidla.load_model(reference["folder"]).eval()
    path = vidla.save_model(model, tmp_path / "vidla.safetensors")
    again = vidla.load_model(path).eval()
    assert again.config == model.config
    check_matches(again, reference)


def test_create_model_with_pretrained_into_named_architecture(tmp_path):
    source = vidla.create_model("vidla-tiny")
    path = vidla.save_model(source, tmp_path / "tiny.safetensors")
    model = vidla.create_model("vidla-tiny", pretrained=path)
    for (name, a), b in zip(source.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), name


def test_hub_id_goes_through_huggingface_hub(reference, monkeypatch):
    import huggingface_hub

    calls = []

    def fake_snapshot_download(repo_id, allow_patterns=None):
        calls.append(repo_id)
        return str(reference["folder"])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    model = vidla.load_model("someone/tiny-clip").eval()
    assert calls == ["someone/tiny-clip"]
    check_matches(model, reference)


# ---------------------------------------------------------------------------------------------- errors

def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here.pt"):
        vidla.load_model(tmp_path / "nothing-here.pt")


@pytest.mark.parametrize("fmt", ["safetensors", "pt"])
def test_truncated_checkpoint_is_named(reference, tmp_path, fmt):
    path = tmp_path / f"cut.{fmt}"
    if fmt == "safetensors":
        save_file({k: v.contiguous() for k, v in to_openai_state_dict(reference["model"]).items()}, str(path))
    else:
        torch.save(to_openai_state_dict(reference["model"]), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=f"cut.{fmt}"):
        vidla.load_model(path)


def test_garbage_and_unknown_formats_are_named(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"this is not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="junk.bin"):
        vidla.load_model(junk)
    other = tmp_path / "resnet.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(CheckpointError, match="resnet.pt.*unknown checkpoint format"):
        vidla.load_model(other)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pt.*empty"):
        vidla.load_model(empty)


def test_pickled_code_is_never_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (exec, ("open(%r, 'w').write('pwned')" % str(tmp_path / "pwned"),))

    path = tmp_path / "evil.pt"
    with path.open("wb") as f:
        pickle.dump({"state_dict": Evil()}, f)
    with pytest.raises(CheckpointError, match="evil.pt"):
        vidla.load_model(path)
    assert not (tmp_path / "pwned").exists()


def test_shapes_that_do_not_fit_are_named(reference):
    with pytest.raises(CheckpointError,
                       match=r"hf_clip.*do not fit.*token_embedding.weight: checkpoint \(49408, 64\), model \(49408, 256\)"):
        vidla.create_model("vidla-small", pretrained=reference["folder"])


def test_hf_folder_without_weights_or_config(reference, tmp_path):
    (tmp_path / "config.json").write_text((Path(reference["folder"]) / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        vidla.load_model(tmp_path)
    lonely = tmp_path / "w.safetensors"
    save_file({"vision_model.post_layernorm.weight": torch.ones(4)}, str(lonely))
    with pytest.raises(CheckpointError, match="config.json"):
        vidla.load_model(lonely)
