"""Model backends for curation: frame captioners and text generators (the LLM behind summaries).

Chosen by `BackendConfig.kind`:
- "hf": a local Hugging Face model, by name or path: an image-to-text model for captions (BLIP-2 in the
  paper, BLIP, GIT, VisionEncoderDecoder ...), a causal LM for summaries (Llama-2-Chat in the paper);
- "openai": an OpenAI-compatible chat-completions endpoint (vLLM, Ollama, llama.cpp's server, OpenAI);
  images are sent as base64 JPEG data: URLs;
- "python": `model` is "package.module:factory"; factory(config) returns any object with the backend's
  methods (your own model server, a batch API ...);
- "none": no captions (the manifest keeps subtitles only) or no summaries (texts are only fitted to the
  text tower's context, see vidla.curate.summarize).
There is no default: a run whose config does not name a backend stops and asks for one.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import numpy as np

from vidla.curate.chat_client import ChatClient, ChatSettings, image_message, text_message
from vidla.curate.frames import encode_jpeg

BACKEND_KINDS = ("hf", "openai", "python", "none")
DEFAULT_CAPTION_PROMPT = "Describe this image in one short sentence."


@dataclass
class BackendConfig:
    kind: str | None = None  # one of BACKEND_KINDS; None means "not chosen yet" and is refused
    model: str = ""
    prompt: str | None = None  # captioners: the instruction sent with each image (hf: a text prefix, for
    #                            processors that take text, e.g. BLIP-2's "a photo of"; none by default)
    max_new_tokens: int = 64
    device: str = "cpu"        # hf only
    dtype: str = "float32"     # hf only: float32, float16, bfloat16
    batch_size: int = 8        # hf only
    endpoint: ChatSettings = field(default_factory=ChatSettings)  # openai only

    def identity(self) -> dict[str, Any]:
        """What decides the outputs (hashed into the state store's keys); not where or how fast."""
        out: dict[str, Any] = {"kind": self.kind, "model": self.model, "prompt": self.prompt,
                               "max_new_tokens": self.max_new_tokens}
        if self.kind == "hf":
            out["dtype"] = self.dtype
        if self.kind == "openai":
            out.update(temperature=self.endpoint.temperature, extra_body=self.endpoint.extra_body)
        return out


class Captioner(Protocol):
    def caption(self, frames: Sequence[np.ndarray]) -> list[str]:
        """One caption per RGB uint8 frame [H, W, 3]."""
        ...


class TextGenerator(Protocol):
    def generate(self, prompts: Sequence[str]) -> list[str]:
        """One completion per prompt (the prompt is the whole user message)."""
        ...


def check_kind(config: BackendConfig, role: str) -> str:
    if config.kind not in BACKEND_KINDS:
        choices = ", ".join(BACKEND_KINDS)
        raise ValueError(f"{role}: no backend chosen (got kind={config.kind!r}); choose one of {choices} "
                         f"(e.g. --{role} openai --{role}-model NAME --{role}-url URL, or --{role} none)")
    return config.kind


def build_captioner(config: BackendConfig) -> Captioner | None:
    kind = check_kind(config, "captioner")
    if kind == "none":
        return None
    if kind == "hf":
        return HFImageCaptioner(config)
    if kind == "openai":
        return ChatCaptioner(config)
    return _from_factory(config)


def build_generator(config: BackendConfig) -> TextGenerator | None:
    kind = check_kind(config, "summarizer")
    if kind == "none":
        return None
    if kind == "hf":
        return HFCausalLM(config)
    if kind == "openai":
        return ChatGenerator(config)
    return _from_factory(config)


def _from_factory(config: BackendConfig) -> Any:
    module_name, _, name = config.model.partition(":")
    if not module_name or not name:
        raise ValueError(f"a python backend's model is 'package.module:factory', got {config.model!r}")
    return getattr(importlib.import_module(module_name), name)(config)


class ChatCaptioner:
    def __init__(self, config: BackendConfig):
        self.prompt = config.prompt or DEFAULT_CAPTION_PROMPT
        self.client = ChatClient(config.endpoint, config.model, config.max_new_tokens)

    def caption(self, frames: Sequence[np.ndarray]) -> list[str]:
        return self.client.map([image_message(self.prompt, encode_jpeg(frame)) for frame in frames])


class ChatGenerator:
    def __init__(self, config: BackendConfig):
        self.client = ChatClient(config.endpoint, config.model, config.max_new_tokens)

    def generate(self, prompts: Sequence[str]) -> list[str]:
        return self.client.map([text_message(prompt) for prompt in prompts])


def _torch_dtype(name: str):
    import torch

    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r}")
    return dtype


def _batches(items: Sequence, size: int):
    for start in range(0, len(items), max(1, size)):
        yield items[start:start + size]


class HFImageCaptioner:
    """A Hugging Face image-to-text model (AutoModelForImageTextToText + AutoProcessor), greedy decoding."""

    def __init__(self, config: BackendConfig):
        from transformers import (
            AutoImageProcessor,
            AutoModelForImageTextToText,
            AutoProcessor,
            AutoTokenizer,
            PreTrainedTokenizerBase,
        )

        self.config = config
        processor = AutoProcessor.from_pretrained(config.model)
        if isinstance(processor, PreTrainedTokenizerBase):
            # No multimodal processor (VisionEncoderDecoder checkpoints): an image processor and a tokenizer.
            self.processor, self.tokenizer = AutoImageProcessor.from_pretrained(config.model), processor
        else:
            self.processor = processor
            self.tokenizer = getattr(processor, "tokenizer", None) or AutoTokenizer.from_pretrained(config.model)
        self.takes_text = hasattr(self.processor, "tokenizer")
        self.model = AutoModelForImageTextToText.from_pretrained(config.model, dtype=_torch_dtype(config.dtype))
        self.model.to(config.device).eval()

    def caption(self, frames: Sequence[np.ndarray]) -> list[str]:
        out: list[str] = []
        for batch in _batches(list(frames), self.config.batch_size):
            out.extend(self._caption_batch(batch))
        return out

    def _caption_batch(self, frames: list[np.ndarray]) -> list[str]:
        import torch

        kwargs: dict[str, Any] = {"images": frames, "return_tensors": "pt"}
        if self.config.prompt and self.takes_text:
            kwargs["text"] = [self.config.prompt] * len(frames)
        inputs = self.processor(**kwargs)
        inputs = {k: v.to(self.config.device) for k, v in inputs.items()}
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        with torch.no_grad():
            generated = self.model.generate(**inputs, max_new_tokens=self.config.max_new_tokens, do_sample=False)
        return [t.strip() for t in self.tokenizer.batch_decode(_new_tokens(generated, inputs, self.model),
                                                               skip_special_tokens=True)]


class HFCausalLM:
    """A Hugging Face causal LM, greedy decoding; the tokenizer's chat template is used when it has one."""

    def __init__(self, config: BackendConfig):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.config = config
        self.tokenizer = AutoTokenizer.from_pretrained(config.model)
        self.tokenizer.padding_side = "left"  # generation continues at the right end of every row
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(config.model, dtype=_torch_dtype(config.dtype))
        self.model.to(config.device).eval()

    def format(self, prompt: str) -> str:
        """The text the model sees: the chat template around the prompt, or the prompt itself."""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                      add_generation_prompt=True)
        return prompt

    def generate(self, prompts: Sequence[str]) -> list[str]:
        out: list[str] = []
        for batch in _batches(list(prompts), self.config.batch_size):
            out.extend(self._generate_batch(batch))
        return out

    def _generate_batch(self, prompts: list[str]) -> list[str]:
        import torch

        texts = [self.format(p) for p in prompts]
        templated = bool(getattr(self.tokenizer, "chat_template", None))
        inputs = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not templated)
        inputs = {k: v.to(self.config.device) for k, v in inputs.items()}
        with torch.no_grad():
            generated = self.model.generate(**inputs, max_new_tokens=self.config.max_new_tokens, do_sample=False,
                                            pad_token_id=self.tokenizer.pad_token_id)
        return [t.strip() for t in self.tokenizer.batch_decode(_new_tokens(generated, inputs, self.model),
                                                               skip_special_tokens=True)]


def _new_tokens(generated, inputs: dict, model):
    """Decoder-only models return the prompt before the answer: drop it."""
    input_ids = inputs.get("input_ids")
    if input_ids is None or model.config.is_encoder_decoder:
        return generated
    length = input_ids.shape[1]
    if generated.shape[1] >= length and bool((generated[:, :length] == input_ids).all()):
        return generated[:, length:]
    return generated

