"""Training batches: a deterministic, resumable order of samples, robust samples, and collation."""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

log = logging.getLogger(__name__)


class StepBatches:
    """Batch sampler: the sample keys of each (step, micro-batch) for one rank.

    The data order is a stream of seeded permutations (one per epoch); global step s takes the next
    `batch_size` keys; within a step, micro-batch m of rank r takes the contiguous slice m*k + r. So the order
    depends only on (seed, step): a resumed run continues exactly, and k processes see together the same
    global batch one process would. A key is epoch * n + index, so samples can seed their augmentation.
    """

    def __init__(self, num_items: int, batch_size: int, steps: int, seed: int, rank: int = 0, world: int = 1,
                 accumulation: int = 1, start_step: int = 0, group_size: int = 1):
        if batch_size % (world * accumulation):
            raise ValueError(f"batch size {batch_size} is not divisible by {world} x {accumulation}")
        if group_size > 1 and (num_items % group_size or batch_size % group_size):
            raise ValueError(f"group_size {group_size} must divide the number of items ({num_items}) and the "
                             f"batch size ({batch_size})")
        self.group_size = group_size
        self.num_items, self.batch_size, self.steps, self.seed = num_items, batch_size, steps, seed
        self.rank, self.world, self.accumulation, self.start_step = rank, world, accumulation, start_step
        self.micro = batch_size // (world * accumulation)

    def __len__(self) -> int:
        return (self.steps - self.start_step) * self.accumulation

    def global_keys(self, step: int) -> np.ndarray:
        first, last = step * self.batch_size, (step + 1) * self.batch_size
        keys = []
        for epoch in range(first // self.num_items, (last - 1) // self.num_items + 1):
            order = self.epoch_order(epoch) + epoch * self.num_items
            lo, hi = max(first, epoch * self.num_items), min(last, (epoch + 1) * self.num_items)
            keys.append(order[lo - epoch * self.num_items: hi - epoch * self.num_items])
        return np.concatenate(keys)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """A seeded permutation of the items; with group_size g, runs of g consecutive items stay together
        (hard negatives such as twin clips written next to each other then share a batch)."""
        groups = np.random.default_rng([self.seed, epoch]).permutation(self.num_items // self.group_size)
        return (groups[:, None] * self.group_size + np.arange(self.group_size)[None]).ravel()

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.steps):
            keys = self.global_keys(step)
            for m in range(self.accumulation):
                start = (m * self.world + self.rank) * self.micro
                yield keys[start: start + self.micro].tolist()


class RandomClips(Dataset):
    """Random frames and made-up texts, fixed by the key: for benchmarks and tests without video files."""

    def __init__(self, num_clips: int, num_frames: int, image_size: int, text_kinds: Sequence[str],
                 clips: int = 0):
        self.num_clips, self.num_frames, self.image_size = num_clips, num_frames, image_size
        self.text_kinds = list(text_kinds)
        self.clips = clips  # > 0: multi-clip samples, one made-up sentence per clip

    def __len__(self) -> int:
        return self.num_clips

    def __getitem__(self, key: int) -> dict[str, Any]:
        index = key % self.num_clips
        generator = torch.Generator().manual_seed(index)
        video = torch.randn(self.num_frames, 3, self.image_size, self.image_size, generator=generator)
        words = torch.randint(0, 50, (self.num_frames,), generator=generator).tolist()
        texts = {kind: f"{kind} " + " ".join(f"w{w}" for w in words) for kind in self.text_kinds}
        sample = {"video": video, "texts": texts, "key": key}
        if self.clips > 0:
            per_clip = len(words) // self.clips
            sample["sentences"] = [" ".join(f"w{w}" for w in words[i * per_clip: (i + 1) * per_clip])
                                   for i in range(self.clips)]
        return sample


class SkipFailures(Dataset):
    """Wraps a dataset whose samples may fail (corrupt video, missing text): a failed sample is logged,
    counted in the sample's "skipped", and replaced by the next index, so every batch keeps its size (ranks must agree on it)."""

    def __init__(self, dataset: Dataset, max_tries: int = 16):
        self.dataset, self.max_tries = dataset, max_tries

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: int) -> dict[str, Any]:
        n = len(self)
        for attempt in range(self.max_tries):
            candidate = (key // n) * n + (key % n + attempt) % n
            try:
                return {**self.dataset[candidate], "key": key, "skipped": attempt}
            except Exception as e:  # noqa: BLE001 - any bad sample is skipped, never a crash
                log.warning("skipping sample %d: %s", candidate % n, e)
        raise RuntimeError(f"{self.max_tries} consecutive samples failed from index {key % n}; "
                           "is the data readable?")


def make_collate(tokenize: Callable[[list[str]], torch.Tensor], text_kinds: Sequence[str]):
    """Stacks videos and tokenizes each text kind (in the loader workers, off the training process); multi-clip
    samples' per-clip sentences become "sentence_tokens" [B, M, L]."""

    def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = {
            "video": torch.stack([s["video"] for s in samples]),
            "tokens": {kind: tokenize([s["texts"][kind] for s in samples]) for kind in text_kinds},
            "keys": torch.tensor([s["key"] for s in samples]),
            "skipped": sum(s.get("skipped", 0) for s in samples),
        }
        if "sentences" in samples[0]:
            clips = len(samples[0]["sentences"])
            flat = tokenize([sentence for s in samples for sentence in s["sentences"]])
            batch["sentence_tokens"] = flat.unflatten(0, (len(samples), clips))
        return batch

    return collate
