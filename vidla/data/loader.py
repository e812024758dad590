"""A DataLoader set-up for video: workers on every core, failed clips dropped and counted, never an empty batch.

    loader = make_dataloader(dataset, batch_size=32, shuffle=True)
    for batch in loader:             # batch["video"]: [B, T, 3, S, S]; batch["texts"]["caption"]: list of B str
        ...
    print(loader.num_skipped, loader.skipped[:3])  # clips dropped this epoch, with file and reason

Decoding happens in the workers (each opens its own decoders and SQLite connection after the fork); the collate
function drops `FailedSample`s; `VideoDataLoader` adds up what was dropped, skips batches left empty, and stops
the run when more than `max_skip_fraction` of the clips fail (a wrong root or a bug, not a few bad files).
"""

from __future__ import annotations

import logging
import os
import random
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from vidla.data.datasets import FailedSample

logger = logging.getLogger(__name__)
_MIN_SAMPLES_BEFORE_SKIP_CHECK = 32


def collate_clips(samples: Sequence[dict[str, Any] | FailedSample]) -> dict[str, Any]:
    """Stacks the good samples; failed ones go to batch["skipped"]. batch["video"] is None when none is left."""
    good = [s for s in samples if not isinstance(s, FailedSample)]
    failed = [s for s in samples if isinstance(s, FailedSample)]
    labels = [s["label"] for s in good]
    if labels and all(isinstance(label, int) for label in labels):
        labels = torch.tensor(labels, dtype=torch.long)
    return {
        "video": torch.stack([s["video"] for s in good]) if good else None,
        "texts": {kind: [s["texts"][kind] for s in good] for kind in (good[0]["texts"] if good else {})},
        "label": labels,
        "id": [s["id"] for s in good],
        "index": torch.tensor([s["index"] for s in good], dtype=torch.long),
        "skipped": failed,
    }


def seed_worker(worker_id: int) -> None:
    """Seeds Python's and NumPy's generators from torch's per-worker seed (torch seeds only itself)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


class VideoDataLoader:
    """Iterates a DataLoader built with `collate_clips`, counting and reporting the clips it had to drop."""

    def __init__(self, loader: DataLoader, max_skip_fraction: float = 0.5):
        self.loader, self.max_skip_fraction = loader, max_skip_fraction
        self.num_samples = self.num_skipped = self.total_skipped = 0
        self.skipped: list[FailedSample] = []

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def dataset(self) -> Dataset:
        return self.loader.dataset

    def set_epoch(self, epoch: int) -> None:
        """Reshuffles a DistributedSampler (or a dataset with `set_epoch`) for a new epoch."""
        for target in (self.loader.sampler, self.loader.dataset):
            if hasattr(target, "set_epoch"):
                target.set_epoch(epoch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.num_samples = self.num_skipped = 0
        self.skipped = []
        for batch in self.loader:
            self._count(batch.pop("skipped"), len(batch["id"]))
            if batch["video"] is not None:
                yield batch
        if self.num_skipped:
            logger.warning("%d of %d clips skipped this epoch (see .skipped)", self.num_skipped,
                           self.num_skipped + self.num_samples)

    def _count(self, failed: list[FailedSample], good: int) -> None:
        self.num_samples += good
        self.num_skipped += len(failed)
        self.total_skipped += len(failed)
        self.skipped.extend(failed)
        seen = self.num_samples + self.num_skipped
        if seen >= _MIN_SAMPLES_BEFORE_SKIP_CHECK and self.num_skipped > self.max_skip_fraction * seen:
            examples = "; ".join(f"{f.video}: {f.error}" for f in self.skipped[:3])
            raise RuntimeError(f"{self.num_skipped} of {seen} clips failed to load (over "
                               f"{self.max_skip_fraction:.0%}): check the video root and files. First: {examples}")


def default_num_workers() -> int:
    """One worker per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def make_dataloader(
    dataset: Dataset,
    batch_size: int,
    *,
    shuffle: bool = False,
    num_workers: int | None = None,
    drop_last: bool = False,
    seed: int | None = None,
    pin_memory: bool | None = None,
    prefetch_factor: int = 4,
    persistent_workers: bool = True,
    distributed: bool | None = None,
    max_skip_fraction: float = 0.5,
    timeout: float = 600,
    multiprocessing_context: str | None = None,
) -> VideoDataLoader:
    """A DataLoader for video datasets that keeps the cores busy.

    num_workers: default one per core; each decodes with one thread. persistent_workers keeps their decoders and
    connections between epochs. distributed (default: when torch.distributed is initialised) shards a map-style
    dataset with a DistributedSampler (iterable datasets shard themselves). pin_memory defaults to CUDA's presence.
    timeout: seconds to wait for a batch from the workers before raising instead of hanging (0: wait forever).
    """
    num_workers = default_num_workers() if num_workers is None else num_workers
    iterable = isinstance(dataset, IterableDataset)
    if distributed is None:
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    sampler = None
    if distributed and not iterable:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed or 0, drop_last=drop_last)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    workers_options: dict[str, Any] = {}
    if num_workers > 0:
        workers_options = dict(prefetch_factor=prefetch_factor, persistent_workers=persistent_workers,
                               worker_init_fn=seed_worker, timeout=timeout,
                               multiprocessing_context=multiprocessing_context)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None and not iterable,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_clips,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        drop_last=drop_last,
        generator=generator,
        **workers_options,
    )
    return VideoDataLoader(loader, max_skip_fraction=max_skip_fraction)
