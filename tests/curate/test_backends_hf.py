"""The Hugging Face backends with tiny randomly initialised models built here (no download)."""

import pytest

transformers = pytest.importorskip("transformers")
import torch  # noqa: E402
from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

from vidla.curate.backends import BackendConfig, HFCausalLM, build_captioner, build_generator  # noqa: E402
from vidla.curate.sentences import HFPunctuator, Word, sentences_from_segments  # noqa: E402
from vidla.curate.subtitles import Segment  # noqa: E402
from vidla.curate.summarize import SUMMARY_PROMPT, summary_prompt  # noqa: E402

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "<s>", "</s>"] + sorted(set(
    (SUMMARY_PROMPT + " a man walks his dog in the park then sits on bench").lower().replace(".", " .")
    .replace(",", " ,").split()))


def _tokenizer(**special) -> PreTrainedTokenizerFast:
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace()])
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", **special)


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(VOCAB), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         bos_token_id=4, eos_token_id=5, pad_token_id=0)
    path = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(path)
    _tokenizer(bos_token="<s>", eos_token="</s>").save_pretrained(path)
    return path


def test_hf_causal_lm_summarizer(tiny_llama):
    generator = build_generator(BackendConfig(kind="hf", model=str(tiny_llama), max_new_tokens=6, batch_size=4))
    prompts = [summary_prompt("a man walks his dog."), summary_prompt("then sits on a bench in the park.")]
    batched = generator.generate(prompts)
    assert len(batched) == 2 and all(isinstance(text, str) for text in batched)
    assert generator.generate(prompts) == batched  # greedy: deterministic
    assert [generator.generate([p])[0] for p in prompts] == batched  # left padding does not change answers
    assert not any(SUMMARY_PROMPT.lower()[:20] in text for text in batched)  # the prompt is not echoed


def test_hf_causal_lm_uses_the_chat_template(tiny_llama, tmp_path):
    tokenizer = _tokenizer(bos_token="<s>", eos_token="</s>")
    tokenizer.chat_template = "{% for m in messages %}[CLS] {{ m['content'] }} [SEP]{% endfor %}"
    tokenizer.save_pretrained(tmp_path)
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((tiny_llama / name).read_bytes())
    generator = HFCausalLM(BackendConfig(kind="hf", model=str(tmp_path), max_new_tokens=3))
    prompt = summary_prompt("a man walks.")
    assert generator.format(prompt) == f"[CLS] {prompt} [SEP]"
    assert len(generator.generate([prompt])) == 1


def test_hf_image_captioner(tmp_path):
    pytest.importorskip("PIL", reason="Hugging Face image processors need Pillow (the curate extra has it)")
    import numpy as np
    from transformers import (GPT2Config, ViTConfig, ViTImageProcessor, VisionEncoderDecoderConfig,
                              VisionEncoderDecoderModel)

    torch.manual_seed(0)
    encoder = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                        image_size=32, patch_size=16)
    decoder = GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=len(VOCAB), n_positions=64,
                         bos_token_id=4, eos_token_id=5, pad_token_id=0)
    model = VisionEncoderDecoderModel(VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder))
    for settings in (model.config, model.generation_config):
        settings.decoder_start_token_id, settings.pad_token_id, settings.eos_token_id = 4, 0, 5
    model.save_pretrained(tmp_path)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    _tokenizer(bos_token="<s>", eos_token="</s>").save_pretrained(tmp_path)

    captioner = build_captioner(BackendConfig(kind="hf", model=str(tmp_path), max_new_tokens=5, batch_size=2))
    frames = [np.full((48, 64, 3), value, np.uint8) for value in (0, 90, 180)]
    captions = captioner.caption(frames)
    assert len(captions) == 3 and all(isinstance(c, str) and c for c in captions)
    assert captioner.caption(frames) == captions


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from transformers import BertConfig, BertForTokenClassification

    path = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64,
                        id2label={0: "O", 1: "PERIOD", 2: "COMMA"}, label2id={"O": 0, "PERIOD": 1, "COMMA": 2})
    BertForTokenClassification(config).save_pretrained(path)
    _tokenizer(cls_token="[CLS]", sep_token="[SEP]").save_pretrained(path)
    return path


def _forced_punctuator(path, label: int, **kwargs) -> HFPunctuator:
    punctuator = HFPunctuator(str(path), **kwargs)
    with torch.no_grad():  # make the classifier predict one label everywhere
        punctuator.model.classifier.weight.zero_()
        punctuator.model.classifier.bias.copy_(torch.nn.functional.one_hot(torch.tensor(label), 3).float())
    return punctuator


def test_hf_punctuator_marks_every_word_across_windows(tiny_bert):
    words = [Word(i * 0.3, i * 0.3 + 0.3, w) for i, w in enumerate(("a man walks his dog in the park " * 4).split())]
    periods = _forced_punctuator(tiny_bert, 1, window=7, overlap=2, batch_size=2).punctuate(words)
    assert periods == [w.text + "." for w in words]
    commas = _forced_punctuator(tiny_bert, 2, window=7, overlap=2).punctuate(words)
    assert commas == [w.text + "," for w in words]


def test_hf_punctuator_in_sentence_splitting(tiny_bert):
    segments = [Segment(0, 3, "a man walks his dog"), Segment(3.1, 6, "in the park")]
    sentences = sentences_from_segments(segments, _forced_punctuator(tiny_bert, 0), max_words=40)
    assert [s.text for s in sentences] == ["A man walks his dog in the park."]  # no mark: one sentence
    sentences = sentences_from_segments(segments, _forced_punctuator(tiny_bert, 1), max_words=40)
    assert len(sentences) == 8
