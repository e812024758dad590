"""Embedding a benchmark's videos and texts in batches, with bounded memory, a progress bar and a cache.

Videos are decoded and preprocessed in DataLoader workers, one batch in flight at a time (plus the workers'
prefetch); only the [N, views, D] embeddings are kept, so decoded video for a whole benchmark is never held.
Frames are scaled inside the decoder to the size training's loader decodes to (`ClipSampling.decode_size`, default
"auto": `vidla.data.transforms.decode_size`, shorter side 2 S), so evaluation sees training's pixels and memory
follows the output, not the source; `decode_size=None` decodes at the source's size.
A video that cannot be decoded stops the evaluation with its path: skipping it would change the protocol.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from typing import Any, Iterator, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from vidla.data.manifest import ClipRecord
from vidla.data.transforms import normalize, preprocess_video, resolve_decode_size, three_crop
from vidla.data.video import read_clip
from vidla.evaluate.cache import EmbeddingCache, cache_key, file_identity, model_fingerprint

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class ClipSampling:
    """Which frames of a clip the model sees, and how many test views are averaged.

    method: "uniform" (segment centres; the retrieval and zero-shot protocol), "dense" (`stride` frames apart;
    Kinetics fine-tuned testing) or any other `vidla.data.sampling` method. temporal_views: clips per video (spread
    evenly); spatial_views: 1 = centre crop, 3 = three crops along the longer side. frame_rate: of frame folders.
    decode_size: shorter side frames are decoded to, "auto" (twice the model's input size, as training's loader),
    None or "full" (the source's size) or pixels (vidla.data.transforms.resolve_decode_size).
    """

    num_frames: int = 32
    method: str = "uniform"
    temporal_views: int = 1
    spatial_views: int = 1
    stride: int = 4
    frame_rate: float | None = None
    decode_size: int | str | None = "auto"

    def __post_init__(self) -> None:
        if self.spatial_views not in (1, 3):
            raise ValueError(f"spatial_views must be 1 (centre crop) or 3 (three crops), got {self.spatial_views}")
        if self.num_frames < 1 or self.temporal_views < 1:
            raise ValueError("num_frames and temporal_views must be at least 1")
        resolve_decode_size(self.decode_size, 1)  # a bad value fails here

    @property
    def num_views(self) -> int:
        return self.temporal_views * self.spatial_views

    def describe(self) -> str:
        stride = f" (stride {self.stride})" if self.method == "dense" else ""
        return (f"{self.num_frames} frames, {self.method} sampling{stride}, "
                f"{self.temporal_views}x{self.spatial_views} views")


def crop_views(frames: torch.Tensor, spatial_views: int, image_size: int) -> torch.Tensor:
    """uint8 temporal views [K, T, H, W, 3] -> normalised [K * spatial_views, T, 3, S, S] (temporal-major)."""
    if spatial_views == 1:
        return preprocess_video(frames, image_size)
    crops = torch.stack([normalize(three_crop(view, image_size)) for view in frames])  # [K, 3, T, 3, S, S]
    return crops.flatten(0, 1)


def clip_duration(record: ClipRecord, video_duration: float) -> float:
    """Seconds of the window the model sees (an end past the video is clamped, as the decoder does)."""
    end = video_duration if record.end is None else min(record.end, video_duration)
    return end - (record.start or 0.0)


class ClipDataset(Dataset):
    """Clip records -> {"video": [views, T, 3, S, S] float, "duration": seconds, "index": i}."""

    def __init__(self, clips: Sequence[ClipRecord], sampling: ClipSampling, image_size: int):
        self.clips, self.sampling, self.image_size = clips, sampling, image_size
        self.resize_to = resolve_decode_size(sampling.decode_size, image_size)

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record, s = self.clips[index], self.sampling
        clip = read_clip(record.video, s.num_frames, s.method, record.start, record.end, num_clips=s.temporal_views,
                         stride=s.stride, frame_rate=s.frame_rate, resize_to=self.resize_to)
        frames = clip.frames if s.temporal_views > 1 else clip.frames[None]
        return {"video": crop_views(frames, s.spatial_views, self.image_size),
                "duration": clip_duration(record, clip.info.duration), "index": index}


@dataclass
class VideoEmbeddings:
    features: torch.Tensor  # float32 [N, views, D], unnormalised (as encode_video returns them)
    durations: torch.Tensor  # float64 [N]: seconds of each clip

    def pooled(self) -> torch.Tensor:
        """One embedding per video: the mean of its L2-normalised view embeddings."""
        return nn.functional.normalize(self.features, dim=-1).mean(dim=1)


@contextlib.contextmanager
def evaluating(module: nn.Module) -> Iterator[None]:
    """Eval mode and no gradients; the module's mode is restored afterwards (evaluation inside a training loop)."""
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        module.train(was_training)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_num_workers() -> int:
    try:
        return min(8, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return min(8, os.cpu_count() or 1)


class Embedder:
    """Runs a model over texts and clips in batches, caching results: one object per evaluation run.

    cache: an EmbeddingCache or None (no caching). `log` records each request and whether it hit the cache.
    """

    def __init__(self, model: nn.Module, *, device: str | torch.device | None = None, precision: str = "fp32",
                 cache: EmbeddingCache | None = None, batch_size: int = 8, text_batch_size: int = 256,
                 num_workers: int | None = None, progress: bool = True):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.device = torch.device(device or default_device())
        self.model = model.to(self.device)
        self.precision, self.cache, self.progress = precision, cache, progress
        self.batch_size, self.text_batch_size = batch_size, text_batch_size
        self.num_workers = default_num_workers() if num_workers is None else num_workers
        self.log: list[dict[str, Any]] = []
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model)
        return self._fingerprint

    @contextlib.contextmanager
    def _inference(self):
        autocast = contextlib.nullcontext() if self.precision == "fp32" else \
            torch.autocast(self.device.type, dtype=PRECISIONS[self.precision])
        with evaluating(self.model), autocast:
            yield

    def _cached(self, kind: str, description: dict[str, Any], compute) -> dict[str, torch.Tensor]:
        """compute() -> tensors, or the cached tensors of an identical earlier request."""
        description = {"kind": kind, "model": self.fingerprint, "precision": self.precision, **description}
        key = cache_key(description)
        hit = self.cache.load(kind, key) if self.cache is not None else None
        entry = {"kind": kind, "count": len(description["inputs"]), "cache": "hit" if hit is not None else "miss"}
        if hit is None:
            hit = compute()
            if self.cache is not None:
                entry["path"] = str(self.cache.save(kind, key, hit, description))
        else:
            entry["path"] = str(self.cache.path(kind, key))
        self.log.append(entry)
        return hit

    def texts(self, texts: Sequence[str], desc: str = "texts") -> torch.Tensor:
        """Unnormalised text embeddings [N, D], float32 on the CPU."""
        texts = list(texts)
        result = self._cached("text", {"inputs": texts}, lambda: {"features": self._encode_texts(texts, desc)})
        return result["features"]

    def _encode_texts(self, texts: list[str], desc: str) -> torch.Tensor:
        from tqdm.auto import tqdm

        out = []
        starts = range(0, len(texts), self.text_batch_size)
        with self._inference():
            for start in tqdm(starts, desc=f"embedding {desc}", unit="batch", disable=not self.progress):
                out.append(self.model.encode_text(texts[start:start + self.text_batch_size]).float().cpu())
        return torch.cat(out) if out else torch.zeros(0, self.model.config.embed_dim)

    def videos(self, clips: Sequence[ClipRecord], sampling: ClipSampling, desc: str = "videos") -> VideoEmbeddings:
        """Embeddings [N, views, D] and durations [N] of clips, decoded in batches."""
        image_size = self.model.image_size
        resize_to = resolve_decode_size(sampling.decode_size, image_size)  # the pixels, whatever the spelling
        description = {"inputs": [{**file_identity(c.video), "start": c.start, "end": c.end} for c in clips],
                       "sampling": {**asdict(sampling), "decode_size": resize_to}, "image_size": image_size}
        result = self._cached("video", description, lambda: self._encode_videos(clips, sampling, desc))
        return VideoEmbeddings(result["features"], result["durations"])

    def _encode_videos(self, clips: Sequence[ClipRecord], sampling: ClipSampling, desc: str) -> dict[str, torch.Tensor]:
        from tqdm.auto import tqdm

        dataset = ClipDataset(clips, sampling, self.model.image_size)
        workers = min(self.num_workers, len(dataset))
        loader = DataLoader(dataset, batch_size=self.batch_size, shuffle=False, num_workers=workers,
                            pin_memory=self.device.type == "cuda", prefetch_factor=2 if workers else None)
        features = torch.zeros(len(dataset), sampling.num_views, self.model.config.embed_dim)
        durations = torch.zeros(len(dataset), dtype=torch.float64)
        with self._inference():
            for batch in tqdm(loader, desc=f"embedding {desc}", unit="batch", disable=not self.progress):
                views, index = batch["video"].flatten(0, 1), batch["index"]
                # Views of a batch are encoded batch_size at a time: 5x3 views would otherwise multiply it by 15.
                encoded = torch.cat([self.model.encode_video(views[i:i + self.batch_size].to(self.device)).float().cpu()
                                     for i in range(0, len(views), self.batch_size)])
                features[index] = encoded.view(len(index), sampling.num_views, -1)
                durations[index] = batch["duration"].double()
        return {"features": features, "durations": durations}
