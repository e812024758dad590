"""Bad clips in training: each is replaced by a clip not yet used in its epoch (never a repeat), counted once,
and the run stops only past data.max_bad_fraction; the order stays exact across a resume and equal under 2
processes (gloo) to 1 process."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.data import DataLoader, Dataset

from vidla.train.data import BadDataError, CatchFailures, ReplaceFailures, StepBatches, make_collate

N, BAD = 20, {3, 7, 11, 12}


class Flaky(Dataset):
    """Clip i fails when i is in `bad`; a good sample's video is its key (so tests can read back what trained)."""

    def __init__(self, n: int = N, bad: set[int] = BAD):
        self.n, self.bad = n, bad

    def __len__(self):
        return self.n

    def __getitem__(self, key):
        if key % self.n in self.bad:
            raise OSError(f"clip{key % self.n}.mp4: corrupt")
        return {"video": torch.tensor([key]), "texts": {"caption": f"clip {key % self.n}"}}


def trained_keys(steps: int, batch: int = 4, workers: int = 0, start: int = 0, state=None, rank=0, world=1,
                 dataset=None, max_bad=0.5, stop: int | None = None):
    """The keys of the samples that reach the loss, step by step (up to `stop`: a run killed there), and the
    sampler (for its state)."""
    dataset = CatchFailures(dataset or Flaky())
    sampler = StepBatches(len(dataset), batch, steps, seed=5, rank=rank, world=world, start_step=start)
    if state is not None:
        sampler.load_state_dict(state)
    collate = make_collate(lambda texts: torch.zeros(len(texts), 3, dtype=torch.long), ["caption"])
    fill = ReplaceFailures(sampler, dataset, collate, max_bad, rank, world)
    loader = DataLoader(dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate,
                        prefetch_factor=2 if workers else None)
    out, batches = [], iter(loader)
    for step in range(start, stop or steps):
        batch = fill(next(batches))
        assert batch["video"][:, 0].tolist() == batch["keys"].tolist()  # each sample is its key's clip
        assert len(batch["keys"]) == batch["tokens"]["caption"].shape[0] == sampler.micro  # full size
        out.append(batch["keys"].tolist())
        sampler.finished(step)
    return out, sampler


def per_epoch(keys: list[list[int]], n: int = N) -> dict[int, Counter]:
    """How often each clip trained, by epoch (a key is epoch * n + clip)."""
    epochs: dict[int, Counter] = {}
    for key in (k for step in keys for k in step):
        epochs.setdefault(key // n, Counter())[key % n] += 1
    return epochs


@pytest.mark.parametrize("workers", [0, 2])
def test_every_good_clip_once_per_epoch_and_bad_ones_counted_once(workers):
    keys, sampler = trained_keys(steps=9, workers=workers)  # 36 samples: two epochs of 16 good clips and some
    epochs = per_epoch(keys)
    good = set(range(N)) - BAD
    for epoch in (0, 1):
        assert set(epochs[epoch]) == good and max(epochs[epoch].values()) == 1  # each good clip, once
    assert not set(epochs[2]) & BAD and max(epochs[2].values()) == 1
    assert sampler.bad == BAD  # unique clips, although clips met again in epoch 1 are not re-counted
    assert all(len(step) == 4 for step in keys)


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_from_the_sampler_state_continues_exactly(workers):
    straight, _ = trained_keys(steps=9, workers=workers)
    first, sampler = trained_keys(steps=9, workers=workers, stop=4)  # a run stopped after step 4 (its checkpoint)
    state = sampler.state_dict()
    rest, _ = trained_keys(steps=9, workers=workers, start=4, state=state)
    assert first + rest == straight


def test_too_many_bad_clips_stop_with_examples():
    bad = set(range(0, 40, 2)) | {1, 3, 5}  # 23 of 40 clips
    with pytest.raises(BadDataError, match=r"of \d+ clips failed to load .*over data.max_bad_fraction=0.5.*"
                                           r"First: clip\d+\.mp4: corrupt; clip\d+\.mp4: corrupt"):
        trained_keys(steps=20, dataset=Flaky(40, bad))
    keys, sampler = trained_keys(steps=20, dataset=Flaky(40, bad), max_bad=0.6)  # under a looser ratio: trains
    assert sampler.bad == bad and per_epoch(keys, 40)[0] == Counter(set(range(40)) - bad)
    with pytest.raises(BadDataError, match=r"20 of 20 clips failed to load \(100%"):
        trained_keys(steps=2, dataset=Flaky(20, set(range(20))), max_bad=0.99)


def _rank_main(rank: int, folder: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=2)
    keys, _ = trained_keys(steps=9, rank=rank, world=2)
    torch.save(keys, f"{folder}/rank{rank}.pt")
    dist.destroy_process_group()


def test_two_ranks_replace_like_one_process(tmp_path):
    mp.start_processes(_rank_main, args=(str(tmp_path),), nprocs=2, start_method="spawn")
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    single, _ = trained_keys(steps=9)
    assert [a + b for a, b in zip(*ranks)] == single  # same keys, no clip twice within an epoch across ranks
