"""Video-text clips from a manifest for training, and the periodic validation retrieval."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from vidla.data.manifest import ClipRecord
from vidla.errors import VidlaError

log = logging.getLogger(__name__)
_PREFERRED_KINDS = ("caption", "subtitle")


class EmptyDataError(VidlaError, ValueError):
    """A training manifest without clips, or without the text kinds asked for; the message names the file."""


def text_kind_counts(clips: Sequence[ClipRecord]) -> Counter[str]:
    """How many clips hold a non-empty text of each kind (one pass; SQL on a SQLite clip index)."""
    if hasattr(clips, "text_kind_counts"):
        return clips.text_kind_counts()
    return Counter(kind for record in clips for kind, text in record.texts.items() if text)


def resolve_text_kinds(clips: Sequence[ClipRecord], requested: Sequence[str] | None, manifest: str) -> list[str]:
    """The text kinds to train on: those asked for (each must be held by some clip), or by default the kinds
    every clip holds (else the kinds any clip holds), caption and subtitle first."""
    if len(clips) == 0:
        raise EmptyDataError(f"{manifest}: the manifest holds no clips")
    counts = text_kind_counts(clips)
    found = ", ".join(f"{kind} ({count} clips)" for kind, count in counts.most_common()) or "none"
    if requested is not None:
        absent = [kind for kind in requested if not counts.get(kind)]
        if absent:
            raise EmptyDataError(f"{manifest}: data.text_kinds asks for {', '.join(absent)}, which no clip holds "
                                 f"(text kinds found: {found})")
        return list(requested)
    kinds = [kind for kind, count in counts.items() if count == len(clips)] or list(counts)
    if not kinds:
        raise EmptyDataError(f"{manifest}: no clip holds any text")
    return sorted(kinds, key=lambda k: (_PREFERRED_KINDS.index(k) if k in _PREFERRED_KINDS else 2, k))


class ManifestClips(Dataset):
    """Training samples from a clip manifest (or SQLite index): frames sampled, decoded, augmented and
    normalised, one text per kind (a random one where a clip has several).

    Indexed by the sampler's keys (epoch * n + index); each key seeds its own augmentation and text choice, so a
    resumed run sees exactly the samples an uninterrupted one would, with any number of workers.
    A clip that cannot be used raises (the training loop replaces it, see vidla.train.data). uint8_frames: frames
    stay uint8 (normalised on the device by the training loop), 4x fewer bytes through the workers' shared memory
    and the GPU copy."""

    def __init__(self, manifest: str, text_kinds: Sequence[str] | None, num_frames: int, image_size: int,
                 sampling: str = "uniform", augment: bool = True, seed: int = 0, uint8_frames: bool = False):
        from vidla.data import VideoTextDataset, VideoTransform

        self.seed = seed
        self.clips = VideoTextDataset(manifest, num_frames=num_frames, sampling=sampling, train=augment,
                                      transform=VideoTransform(image_size, train=augment,
                                                                normalized=not uint8_frames),
                                      text_kinds=text_kinds, text_choice="random")
        self.text_kinds = resolve_text_kinds(self.clips.clips, text_kinds, manifest)
        self.clips.loader.text_kinds = self.text_kinds
        log.info("%s: %d clips, text kinds %s", manifest, len(self.clips), ", ".join(self.text_kinds))

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


class MultiClipSamples(Dataset):
    """Training samples from a multi-clip manifest (vidla.data.multiclip): M clips' frames, num_frames / M from
    each clip's own times, in clip order; texts = {"caption": the paragraph}; "sentences" = the M sentences.
    Keyed and seeded like ManifestClips; one augmentation for the whole window (clips are one video)."""

    text_kinds = ["caption"]  # the paragraph

    def __init__(self, manifest: str, clips: int, num_frames: int, image_size: int, sampling: str = "uniform",
                 augment: bool = True, seed: int = 0):
        from vidla.data import VideoTransform
        from vidla.data.manifest import read_manifest_resolved

        self.records, self.clips, self.seed = read_manifest_resolved(manifest), clips, seed
        self.frames_per_clip, self.sampling, self.augment = num_frames // clips, sampling, augment
        self.transform = VideoTransform(image_size, train=augment)
        wrong = next((r for r in self.records if len(r.extra.get("clips") or []) != clips), None)
        if wrong is not None:  # a whole manifest of the wrong shape is a config error, not bad samples to skip
            raise ValueError(f"{manifest}: sample {wrong.id} has {len(wrong.extra.get('clips') or [])} clips, "
                             f"training expects data.clips={clips} (`vidla data multiclip --clips {clips}`)")

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: int) -> dict[str, Any]:
        from vidla.data.multiclip import read_multi_clip, segments_of

        record = self.records[key % len(self.records)]
        segments = segments_of(record)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(hash((self.seed, key)) % 2**63)
            frames = read_multi_clip(record.video, segments, self.frames_per_clip, self.sampling, self.augment,
                                     resize_to=self.transform.decode_size)  # decoded as VideoTextDataset decodes
            video = self.transform(frames)
        return {"video": video, "texts": {"caption": " ".join(s.text.strip() for s in segments)},
                "sentences": [s.text for s in segments]}


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
