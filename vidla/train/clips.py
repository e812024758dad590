"""Video-text clips from a manifest for training, and the periodic validation retrieval."""

from __future__ import annotations

import logging
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

log = logging.getLogger(__name__)


class ManifestClips(Dataset):
    """Training samples from a clip manifest (or SQLite index): frames sampled, decoded, augmented and
    normalised, one text per kind (a random one where a clip has several).

    Indexed by the sampler's keys (epoch * n + index); each key seeds its own augmentation and text choice, so a
    resumed run sees exactly the samples an uninterrupted one would, with any number of workers.
    A clip that cannot be used raises (SkipFailures replaces it). uint8_frames: frames stay uint8 (normalised
    on the device by the training loop), 4x fewer bytes through the workers' shared memory and the GPU copy."""

    def __init__(self, manifest: str, text_kinds: Sequence[str], num_frames: int, image_size: int,
                 sampling: str = "uniform", augment: bool = True, seed: int = 0, uint8_frames: bool = False):
        from vidla.data import VideoTextDataset, VideoTransform

        self.text_kinds, self.seed = list(text_kinds), seed
        self.clips = VideoTextDataset(manifest, num_frames=num_frames, sampling=sampling, train=augment,
                                      transform=VideoTransform(image_size, train=augment,
                                                                normalized=not uint8_frames),
                                      text_kinds=self.text_kinds, text_choice="random")

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, key: int) -> dict[str, Any]:
        from vidla.data import FailedSample

        index = key % len(self.clips)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(hash((self.seed, key)) % 2**63)
            sample = self.clips[index]
        if isinstance(sample, FailedSample):
            raise OSError(f"{sample.video}: {sample.error}")
        missing = [kind for kind in self.text_kinds if not sample["texts"].get(kind)]
        if missing:
            raise ValueError(f"clip {sample['id'] or index}: no {', '.join(missing)} text")
        return {"video": sample["video"], "texts": sample["texts"]}


@torch.no_grad()
def validation_retrieval(model, manifest: str, text_kind: str, num_frames: int, workers: int = 0) -> dict[str, float]:
    """Both directions' retrieval metrics on a manifest (the first `text_kind` text of each clip)."""
    from vidla.data.manifest import read_manifest_resolved
    from vidla.evaluate import ClipSampling, Embedder, retrieval_metrics

    records = [r for r in read_manifest_resolved(manifest) if r.texts.get(text_kind)]
    if not records:
        log.warning("%s: no clip with a %s text to validate on", manifest, text_kind)
        return {}
    texts = [t if isinstance(t := r.texts[text_kind], str) else t[0] for r in records]
    embedder = Embedder(model, device=model.device, num_workers=workers, progress=False)
    videos = embedder.videos(records, ClipSampling(num_frames=num_frames)).features[:, 0]
    text_features = embedder.texts(texts)
    similarity = F.normalize(text_features, dim=-1) @ F.normalize(videos, dim=-1).T
    metrics = retrieval_metrics(similarity, list(range(len(records))))
    return {f"val_{name}": value for name, value in metrics.items()}
