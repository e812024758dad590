"""Training batches: a deterministic, resumable order of samples, bad clips replaced without repeats, and collation."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from vidla.errors import RunFailed

log = logging.getLogger(__name__)
_MIN_TRIED_BEFORE_RATIO_CHECK = 32
_EXAMPLES = 3


class BadDataError(RunFailed, RuntimeError):
    """More clips failed than `data.max_bad_fraction` allows (a wrong root or a broken manifest, not a few bad
    files)."""


@dataclass
class BadSample:
    """A sample that could not be loaded (corrupt video, missing text): its key and why."""

    key: int
    error: str


class StepBatches:
    """Batch sampler: the sample keys of each (step, micro-batch) for one rank, with bad clips replaced.

    The data order is a stream of seeded permutations (one per epoch): stream position q holds clip
    `order(q // n)[q % n]` under key `(q // n) * n + clip`, so samples can seed their augmentation by key. Global
    step s takes the next `batch_size` unused positions; within a step, micro-batch m of rank r takes the contiguous
    slice m*k + r, so k processes see together the global batch one process would.

    A clip that fails (reported through `mark_bad`) is replaced by `replacement()`: the next stream position no
    batch has taken yet, which the stream then skips. So each position is used once: a bad clip's slot is filled
    by a clip not yet used this epoch (never a repeat), known-bad clips are skipped in later epochs, and the epoch
    simply ends earlier. `state_dict()` (cursor, positions taken ahead, bad clips, batches handed to the loader
    but not trained yet) makes a resumed run continue exactly.
    """

    def __init__(self, num_items: int, batch_size: int, steps: int, seed: int, rank: int = 0, world: int = 1,
                 accumulation: int = 1, start_step: int = 0, group_size: int = 1):
        if num_items <= 0:
            raise ValueError("the training data holds no clips")
        if batch_size % (world * accumulation):
            raise ValueError(f"batch size {batch_size} is not divisible by {world} x {accumulation}")
        if group_size > 1 and (num_items % group_size or batch_size % group_size):
            raise ValueError(f"group_size {group_size} must divide the number of items ({num_items}) and the "
                             f"batch size ({batch_size})")
        self.group_size = group_size
        self.num_items, self.batch_size, self.steps, self.seed = num_items, batch_size, steps, seed
        self.rank, self.world, self.accumulation, self.start_step = rank, world, accumulation, start_step
        self.micro = batch_size // (world * accumulation)
        self.cursor = start_step * batch_size  # exact when no clip failed; a checkpoint's state says otherwise
        self.taken: set[int] = set()           # positions >= cursor used as replacements
        self.bad: set[int] = set()             # clip indices that failed
        self.examples: list[str] = []          # the first failures, for messages
        self.pending: dict[int, np.ndarray] = {}  # step -> global keys handed to the loader, not trained yet
        self._orders: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return (self.steps - self.start_step) * self.accumulation

    def epoch_order(self, epoch: int) -> np.ndarray:
        """A seeded permutation of the items; with group_size g, runs of g consecutive items stay together
        (hard negatives such as twin clips written next to each other then share a batch)."""
        if epoch not in self._orders:
            groups = np.random.default_rng([self.seed, epoch]).permutation(self.num_items // self.group_size)
            self._orders = {e: o for e, o in self._orders.items() if e >= epoch - 1}  # keep two epochs' orders
            self._orders[epoch] = (groups[:, None] * self.group_size + np.arange(self.group_size)[None]).ravel()
        return self._orders[epoch]

    def _key(self, position: int) -> int:
        epoch, offset = divmod(position, self.num_items)
        return epoch * self.num_items + int(self.epoch_order(epoch)[offset])

    def _usable(self, position: int) -> bool:
        return position not in self.taken and self._key(position) % self.num_items not in self.bad

    def _check_alive(self, skipped: int) -> None:
        if skipped > 2 * self.num_items:  # two epochs' worth of positions without one good clip
            raise BadDataError(f"all {self.num_items} clips failed to load. First: {'; '.join(self.examples)}")

    def global_keys(self, step: int) -> np.ndarray:
        """The keys of global step `step` (taken from the stream when first asked for, then fixed)."""
        if step not in self.pending:
            keys: list[int] = []
            skipped = 0
            while len(keys) < self.batch_size:
                position, self.cursor = self.cursor, self.cursor + 1
                if self._usable(position):
                    keys.append(self._key(position))
                    skipped = 0
                else:
                    self.taken.discard(position)
                    skipped += 1
                    self._check_alive(skipped)
            self.pending[step] = np.array(keys, dtype=np.int64)
        return self.pending[step]

    def replacement(self) -> int:
        """The key of the next stream position no batch has taken (the stream skips it from now on)."""
        position = self.cursor
        while not self._usable(position):
            position += 1
            self._check_alive(position - self.cursor)
        self.taken.add(position)
        return self._key(position)

    def mark_bad(self, key: int, error: str) -> None:
        index = key % self.num_items
        if index not in self.bad and len(self.examples) < _EXAMPLES:
            self.examples.append(error)
        self.bad.add(index)

    @property
    def tried(self) -> int:
        """Distinct clips handed out so far (positions used, capped at one epoch)."""
        return min(self.num_items, self.cursor + len(self.taken))

    def check_bad_fraction(self, max_fraction: float) -> None:
        tried = self.tried
        if tried >= min(self.num_items, _MIN_TRIED_BEFORE_RATIO_CHECK) and len(self.bad) > max_fraction * tried:
            raise BadDataError(f"{len(self.bad)} of {tried} clips failed to load ({len(self.bad) / tried:.0%}, over "
                               f"data.max_bad_fraction={max_fraction}): check the manifest, its video root and "
                               f"text kinds. First: {'; '.join(self.examples)}")

    def finished(self, step: int) -> None:
        """Step `step` is trained: its keys leave the pending list."""
        self.pending = {s: k for s, k in self.pending.items() if s > step}

    def state_dict(self) -> dict[str, Any]:
        return {"cursor": self.cursor, "taken": sorted(self.taken), "bad": sorted(self.bad),
                "examples": list(self.examples),
                "pending": {int(s): torch.from_numpy(k.copy()) for s, k in self.pending.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.cursor, self.taken, self.bad = int(state["cursor"]), set(state["taken"]), set(state["bad"])
        self.examples = list(state["examples"])
        self.pending = {int(s): k.numpy() for s, k in state["pending"].items()}

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


class CatchFailures(Dataset):
    """Wraps a dataset whose samples may fail (corrupt video, missing text): a failure becomes a `BadSample`
    (logged), which `ReplaceFailures` replaces in the training process."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: int) -> dict[str, Any] | BadSample:
        try:
            return {**self.dataset[key], "key": key}
        except Exception as e:  # noqa: BLE001 - any bad sample is replaced, never a crash
            log.warning("skipping sample %d: %s", key % len(self), e)
            return BadSample(key, f"{type(e).__name__}: {e}" if not isinstance(e, (OSError, ValueError)) else str(e))


def make_collate(tokenize: Callable[[list[str]], torch.Tensor], text_kinds: Sequence[str]):
    """Stacks videos and tokenizes each text kind (in the loader workers, off the training process); failed
    samples go to batch["failed"]; multi-clip samples' per-clip sentences become "sentence_tokens" [B, M, L]."""

    def collate(samples: list[dict[str, Any] | BadSample]) -> dict[str, Any]:
        good = [s for s in samples if not isinstance(s, BadSample)]
        batch = {
            "video": torch.stack([s["video"] for s in good]) if good else None,
            "tokens": {kind: tokenize([s["texts"][kind] for s in good]) for kind in text_kinds} if good else {},
            "keys": torch.tensor([s["key"] for s in good], dtype=torch.long),
            "failed": [s for s in samples if isinstance(s, BadSample)],
        }
        if good and "sentences" in good[0]:
            clips = len(good[0]["sentences"])
            flat = tokenize([sentence for s in good for sentence in s["sentences"]])
            batch["sentence_tokens"] = flat.unflatten(0, (len(good), clips))
        return batch

    return collate


class ReplaceFailures:
    """Fills the failed slots of each micro-batch with replacement clips (loaded here, in the training process),
    so every batch keeps its size (ranks must agree on it) and no clip repeats within an epoch.

    Under torchrun all ranks share the stream: each micro-batch they exchange their failures (one all-reduce of a
    count; the keys only when there are any), mark them bad and draw replacements in rank order, so every rank's
    sampler stays identical. Stops with BadDataError once more than `max_bad_fraction` of the clips failed."""

    def __init__(self, sampler: StepBatches, dataset: Dataset, collate: Callable, max_bad_fraction: float,
                 rank: int = 0, world: int = 1):
        self.sampler, self.dataset, self.collate = sampler, dataset, collate
        self.max_bad_fraction, self.rank, self.world = max_bad_fraction, rank, world

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        failed: list[BadSample] = batch.pop("failed")
        while True:
            everyone = _exchange(failed, self.world)
            if not any(everyone):
                return batch
            for failure in (f for rank_failures in everyone for f in rank_failures):
                self.sampler.mark_bad(failure.key, failure.error)
            self.sampler.check_bad_fraction(self.max_bad_fraction)
            keys = [[self.sampler.replacement() for _ in rank_failures] for rank_failures in everyone]
            samples = [self.dataset[key] for key in keys[self.rank]]
            failed = [s for s in samples if isinstance(s, BadSample)]
            good = [s for s in samples if not isinstance(s, BadSample)]
            if good:
                batch = _concatenate(batch, self.collate(good))

    @property
    def bad_clips(self) -> int:
        return len(self.sampler.bad)


def _exchange(failed: list[BadSample], world: int) -> list[list[BadSample]]:
    """Every rank's failures, in rank order."""
    if world == 1:
        return [failed]
    import torch.distributed as dist

    count = torch.tensor([len(failed)], dtype=torch.long)
    if dist.get_backend() == "nccl":
        count = count.cuda()
    dist.all_reduce(count)
    if count.item() == 0:
        return [[] for _ in range(world)]
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, failed)
    return gathered


def _concatenate(batch: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    more.pop("failed", None)
    if batch["video"] is None:
        return more
    joined = {"video": torch.cat([batch["video"], more["video"]]),
              "tokens": {kind: torch.cat([batch["tokens"][kind], more["tokens"][kind]]) for kind in batch["tokens"]},
              "keys": torch.cat([batch["keys"], more["keys"]])}
    if "sentence_tokens" in batch:
        joined["sentence_tokens"] = torch.cat([batch["sentence_tokens"], more["sentence_tokens"]])
    return joined
