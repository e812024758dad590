"""Training checkpoints: `step_NNNNNNN/` folders holding `model.safetensors` (a vidla checkpoint that
`vidla.load_model` reads) and `state.pt` (optimiser, scheduler, step, random states; plain tensors and
numbers, loaded with `weights_only=True`). A folder is written under a temporary name and renamed into place,
so a kill at any moment leaves only complete checkpoints; a failed write (a full disk) removes its partial folder
and leaves the previous checkpoints as they were."""

from __future__ import annotations

import errno
import os
import random
import re
import shutil
import logging
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np
import torch

from vidla.errors import RunFailed
from vidla.models.factory import save_state_dict

log = logging.getLogger(__name__)
_Read = TypeVar("_Read")

_STEP_DIR = re.compile(r"^step_(\d+)$")


class CheckpointWriteError(RunFailed, OSError):
    """A checkpoint could not be written ("no space left on device: PATH", or the path and the cause)."""


def os_error_in(error: BaseException) -> OSError | None:
    """The OSError behind `error`: torch.save's zip writer masks a failed write with a RuntimeError of its own
    ("unexpected pos ...") whose context is the OSError."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def write_error(error: OSError, path: Path) -> CheckpointWriteError:
    if error.errno == errno.ENOSPC:
        out = CheckpointWriteError(f"no space left on device: {path}")
    else:
        out = CheckpointWriteError(f"{path}: cannot write the checkpoint ({error.strerror or error})")
    out.errno = error.errno
    return out


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": [np_state[0], torch.from_numpy(np_state[1].copy()), *np_state[2:]]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, seq, *rest = state["python"]
    random.setstate((version, tuple(seq), *rest))
    torch.set_rng_state(state["torch"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy(), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(folder: Path, step: int, weights: dict[str, torch.Tensor], config: Any,
                    state: dict[str, Any], keep: int, **weights_format: str) -> Path:
    """Writes checkpoint `step` (full model weights, training state) atomically, then removes all but the
    newest `keep`. `config` is the weights' config dataclass (a ModelConfig for VidLA models);
    `weights_format` (config_key, file_format) passes to `save_state_dict`."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step_{step:07d}"
    partial = folder / f".step_{step:07d}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir()
        save_state_dict(weights, config, partial / "model.safetensors", **weights_format)
        with (partial / "state.pt").open("wb") as f:  # a Python file: a full disk raises OSError(ENOSPC)
            torch.save({**state, "step": step}, f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException as e:
        shutil.rmtree(partial, ignore_errors=True)  # a partial folder would keep the disk full
        cause = os_error_in(e)
        if cause is not None:
            raise write_error(cause, partial) from e
        raise
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    for old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def read_newest_checkpoint(folder: Path, read: Callable[[Path], _Read]) -> tuple[Path, _Read] | None:
    """`read(checkpoint)` of the newest checkpoint it succeeds on (None when there is none): an unreadable one is
    named in a warning and the one before it is tried; nothing is deleted."""
    found = list_checkpoints(folder)
    if not found:
        return None
    for checkpoint in reversed(found):
        try:
            return checkpoint, read(checkpoint)
        except Exception as e:  # noqa: BLE001 - a torn or corrupt checkpoint: fall back to the previous one
            log.warning("%s: unreadable checkpoint, falling back to the previous one (%s)", checkpoint, e)
    raise RuntimeError(f"{folder}: no readable checkpoint among {[p.name for p in found]}")


def load_state(checkpoint: Path) -> dict[str, Any]:
    try:
        return torch.load(checkpoint / "state.pt", map_location="cpu", weights_only=True)
    except Exception as e:
        raise RuntimeError(f"{checkpoint / 'state.pt'}: unreadable training state ({e})") from e
