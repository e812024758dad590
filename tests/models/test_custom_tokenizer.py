"""`load_model(source, tokenizer=...)` for checkpoints whose vocabulary is not CLIP's."""

import json

import pytest
import torch
from transformers import CLIPTokenizer as HFCLIPTokenizer

import vidla
from vidla.models.checkpoints import CheckpointError
from vidla.models.config import get_model_config
from vidla.models.tokenizer import EOT, SOT, bytes_to_unicode
from vidla.models.vidla import VidLA

MERGES = [("h", "e"), ("he", "l"), ("l", "o</w>"), ("hel", "lo</w>"), ("c", "a"), ("ca", "t</w>")]
TEXTS = ["hello cat", "Hello, CAT!", "a cat says hello", ""]


@pytest.fixture(scope="module")
def small_vocab(tmp_path_factory):
    """A 520-token byte-level BPE vocabulary (not CLIP's 49408) as vocab.json + merges.txt."""
    folder = tmp_path_factory.mktemp("vocab")
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["".join(m) for m in MERGES] + [SOT, EOT]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in MERGES) + "\n",
                                       encoding="utf-8")
    return folder, len(tokens)


@pytest.fixture(scope="module")
def checkpoint(small_vocab, tmp_path_factory):
    _, size = small_vocab
    config = get_model_config("vidla-tiny")
    config.text.vocab_size, config.text.eot_token_id = size, size - 1
    torch.manual_seed(0)
    model = VidLA(config)
    return vidla.save_model(model, tmp_path_factory.mktemp("ckpt") / "model.safetensors"), model


def test_default_tokenizer_is_refused_with_a_hint(checkpoint):
    path, _ = checkpoint
    with pytest.raises(CheckpointError, match="49408 tokens but the text tower only 520.*tokenizer=FOLDER"):
        vidla.load_model(path)


def test_tokenizer_folder_gives_hugging_face_ids_and_the_same_features(checkpoint, small_vocab):
    path, original = checkpoint
    folder, size = small_vocab
    model = vidla.load_model(path, tokenizer=folder)
    ids = model.tokenizer(TEXTS, 16)
    hf = HFCLIPTokenizer(vocab=str(folder / "vocab.json"), merges=str(folder / "merges.txt"))
    expected = hf(TEXTS, padding="max_length", max_length=16, return_tensors="pt")["input_ids"]
    mask = torch.arange(16)[None] <= (expected == size - 1).int().argmax(-1)[:, None]  # HF pads with EOT
    assert torch.equal(ids * mask, expected * mask) and torch.all(ids[~mask] == 0)
    assert ids[0, 1].item() == MERGES.index(("hel", "lo</w>")) + 512  # "hello" is one token of this vocabulary
    assert model.config.text.eot_token_id == size - 1
    original.tokenizer = vidla.models.tokenizer.CLIPTokenizer.from_directory(folder)
    model.eval()
    original.eval()
    with torch.no_grad():
        assert torch.allclose(model.encode_text(TEXTS), original.encode_text(TEXTS), atol=1e-6)


def test_tokenizer_object(checkpoint, small_vocab):
    path, _ = checkpoint
    folder, size = small_vocab
    tokenizer = vidla.models.tokenizer.CLIPTokenizer.from_directory(folder)
    assert vidla.load_model(path, tokenizer=tokenizer).tokenizer is tokenizer
    with pytest.raises(TypeError, match="lacks"):
        vidla.load_model(path, tokenizer=object())
