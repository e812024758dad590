"""The training loop: one code path for one plain process and for torchrun (DDP or FSDP)."""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict
from torch.utils.data import DataLoader

import vidla
from vidla.errors import RunFailed
from vidla.io import atomic_write
from vidla.models import VidLA
from vidla.models.factory import save_state_dict
from vidla.train.checkpoint import (
    list_checkpoints,
    load_state,
    read_newest_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_error,
)
from vidla.train.config import TrainConfig
from vidla.train.data import CatchFailures, RandomClips, ReplaceFailures, StepBatches, make_collate
from vidla.train.distributed import World, average_gradients, close_world, init_world, mean_over_ranks
from vidla.train.loss import MAX_LOGIT_SCALE, ContrastiveLoss
from vidla.train.mtc import MultimodalTemporalContrastive
from vidla.train.optim import build_optimizer, build_scheduler
from vidla.train.perf import CompileWithFallback, DevicePrefetcher, batch_to_device, sdpa_backends
from vidla.train.selection import Distiller, selection_guide, set_temperature

log = logging.getLogger(__name__)
_FULL_STATE = StateDictOptions(full_state_dict=True, cpu_offload=True)


class TrainingDiverged(RunFailed, RuntimeError):
    """The loss became NaN or infinite; no checkpoint is written for that step."""


class FeatureStep(nn.Module):
    """What DDP/FSDP wrap: one forward from a batch to video and text features (and the temperature, so every
    trained parameter is reached through the wrapped forward). With frame selection, a `text_guided` share of
    the clips select their frames guided by their first text."""

    def __init__(self, model: VidLA, clip_layer: int | None = None, compile: bool = False, text_guided: float = 0.0):
        super().__init__()
        self.model = model
        self.clip_layer = clip_layer  # where multi-clip samples' clip features are read (None = last block)
        self.text_guided = text_guided
        # the video tower is most of a step's work: torch.compile it on request (eager if compiling fails)
        self.encode_video = CompileWithFallback(model.encode_video) if compile else model.encode_video

    def forward(self, video: torch.Tensor, tokens: dict[str, torch.Tensor],
                sentence_tokens: torch.Tensor | None = None):
        text_features = {kind: self.model.encode_text(ids) for kind, ids in tokens.items()}
        if sentence_tokens is None:
            if self.model.frame_selector is None:
                return self.encode_video(video), text_features, self.model.logit_scale
            # zero guides keep the text branch in the graph (DDP)
            guide = selection_guide(next(iter(text_features.values())), self.text_guided)
            return self.encode_video(video, text=guide), text_features, self.model.logit_scale
        # multi-clip samples, sentences [B, M, L]: the clip features of both towers too, for the MTC loss
        video_features, video_clips = self.model.encode_video_clips(video, sentence_tokens.shape[1], self.clip_layer)
        text_clips = self.model.encode_text(sentence_tokens.flatten(0, 1)).unflatten(0, sentence_tokens.shape[:2])
        return video_features, text_features, self.model.logit_scale, (video_clips, text_clips)


def build_model(config: TrainConfig) -> VidLA:
    m = config.model
    model = vidla.create_model(m.name, temporal=m.temporal, num_frames=config.data.num_frames,
                               pretrained=m.pretrained, frame_selection=m.frame_selection, **m.temporal_options)
    model.set_grad_checkpointing(m.grad_checkpointing)
    model.visual.channels_last = m.channels_last
    return model


def build_dataset(config: TrainConfig, model: VidLA) -> CatchFailures:
    """The training clips; `.dataset.text_kinds` are the text kinds trained on (resolved from the manifest when
    data.text_kinds is not set)."""
    d = config.data
    if d.random_clips > 0:
        kinds = d.text_kinds or ["caption", "subtitle"]
        dataset = RandomClips(d.random_clips, d.num_frames, model.image_size, kinds, d.clips)
    elif d.clips > 0:
        from vidla.train.clips import MultiClipSamples

        dataset = MultiClipSamples(d.train, d.clips, d.num_frames, model.image_size, d.sampling, d.augment,
                                   config.seed)
    else:
        from vidla.train.clips import ManifestClips

        dataset = ManifestClips(d.train, d.text_kinds, d.num_frames, model.image_size, d.sampling, d.augment,
                                config.seed, uint8_frames=d.uint8_frames)
    return CatchFailures(dataset)


def wrap(step_module: FeatureStep, config: TrainConfig, world: World) -> nn.Module:
    if not world.distributed:
        return step_module
    if config.strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        model = step_module.model
        for block in [*model.visual.transformer.resblocks, *model.text.transformer.resblocks]:
            fully_shard(block)
        # FSDP cannot shard a 0-d parameter: the temperature stays replicated, its gradient averaged by hand
        return fully_shard(step_module, ignored_params={model.logit_scale})
    device_ids = [world.device.index] if world.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(step_module, device_ids=device_ids)


class Trainer:
    def __init__(self, config: TrainConfig, resume: bool = False, progress: bool = True):
        self.config, self.resume, self.progress = config, resume, progress
        self.output = Path(config.output_dir)
        self.checkpoints = self.output / "checkpoints"

    def run(self) -> dict[str, Any]:
        config = self.config
        world = init_world(config.device)
        if config.threads:
            torch.set_num_threads(config.threads)
        try:
            config.validate(world.size)
            return self._run(world)
        finally:
            close_world(world)

    def _run(self, world: World) -> dict[str, Any]:
        config = self.config
        _seed_everything(config.seed)
        model = build_model(config).to(world.device)
        distiller = Distiller.for_training(model, config.selection)  # its teacher: the weights before training
        step_module = FeatureStep(model, config.loss.mtc_layer, compile=config.compile,
                                  text_guided=config.selection.text_guided)
        wrapped = wrap(step_module, config, world)  # before the optimiser: FSDP replaces the parameters
        optimizer = build_optimizer(model, config.optim)
        scheduler = build_scheduler(optimizer, config.optim, config.steps)
        start_step, sampler_state = self._restore(step_module, optimizer, scheduler) if self.resume else (0, None)
        if world.is_main:
            self._write_config()
            self._trim_metrics(start_step)
        dataset = build_dataset(config, model)
        sampler = StepBatches(len(dataset), config.batch_size, config.steps, config.seed, world.rank, world.size,
                              config.accumulation, start_step, config.data.group_size)
        if sampler_state is not None:
            sampler.load_state_dict(sampler_state)
        self.text_kinds = dataset.dataset.text_kinds
        collate = make_collate(model.tokenizer, self.text_kinds)
        self.replace_failures = ReplaceFailures(sampler, dataset, collate, config.data.max_bad_fraction,
                                                world.rank, world.size)
        loader = DataLoader(dataset, batch_sampler=sampler, num_workers=config.data.workers, collate_fn=collate,
                            pin_memory=world.device.type == "cuda",
                            persistent_workers=config.data.workers > 0,
                            prefetch_factor=4 if config.data.workers > 0 else None)
        loss_fn = ContrastiveLoss(world, config.local_loss)
        mtc_fn = temporal_contrastive(config, world)
        logger = _MetricsLog(self.output, config.tensorboard) if world.is_main else None
        # failed clips are replaced in this process, before a batch is (optionally) prefetched to the device
        batches = (self.replace_failures(batch) for batch in loader)
        if config.data.prefetch_to_device:
            batches = DevicePrefetcher(batches, world.device)
        summary = self._loop(world, step_module, wrapped, loss_fn, optimizer, scheduler, batches, start_step, logger,
                             mtc_fn, distiller)
        if logger:
            logger.close()
        return summary

    def _loop(self, world, step_module, wrapped, loss_fn, optimizer, scheduler, batches, start_step, logger,
              mtc_fn=None, distiller=None):
        config, model = self.config, step_module.model
        autocast = torch.autocast(world.device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
        bar = _progress(world.is_main and self.progress, start_step, config.steps)
        clips_per_step, started, loss_value = config.batch_size, time.perf_counter(), float("nan")
        sampler = self.replace_failures.sampler
        for step in range(start_step, config.steps):
            loss_sum = torch.zeros((), device=world.device)
            parts_sum: dict[str, float] = {}
            set_temperature(model, step, config.steps, config.selection)
            for micro in range(config.accumulation):
                batch = batch_to_device(next(batches), world.device)  # uint8 frames are normalised there
                video, tokens = batch["video"], batch["tokens"]
                extra = (batch["sentence_tokens"],) if mtc_fn is not None and "sentence_tokens" in batch else ()
                with _no_sync(wrapped, micro < config.accumulation - 1), autocast, \
                        sdpa_backends(config.attention_backends):
                    video_features, text_features, scale, *clip_features = wrapped(video, tokens, *extra)
                loss, parts = loss_fn(video_features.float(), {k: v.float() for k, v in text_features.items()},
                                      scale)
                if clip_features:
                    mtc = mtc_fn(*(f.float() for f in clip_features[0]),
                                 generator=mtc_generator(config.seed, step, micro))
                    loss, parts = loss + mtc, {**parts, "mtc": mtc}
                if distiller is not None:
                    with autocast:
                        parts["distill"] = distiller.loss(video, video_features)
                    loss = loss + parts["distill"]
                (loss / config.accumulation).backward()
                loss_sum += loss.detach() / config.accumulation
                for kind, value in parts.items():
                    parts_sum[kind] = parts_sum.get(kind, 0.0) + value.item() / config.accumulation
            if config.strategy == "fsdp":
                average_gradients([model.logit_scale], world)
            loss_value, grad_norm, lr = self._optimizer_step(world, wrapped, optimizer, scheduler, loss_sum, step)
            with torch.no_grad():
                model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
            done = step + 1
            sampler.finished(step)
            rate = clips_per_step * (done - start_step) / (time.perf_counter() - started)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}", clips_s=f"{rate:.1f}")
            if logger and (done % config.log_every == 0 or done == config.steps):
                logger.write({"step": done, "loss": loss_value, **{f"loss_{k}": v for k, v in parts_sum.items()},
                              "lr": lr, "temperature": 1 / model.logit_scale.exp().item(),
                              "grad_norm": grad_norm, "clips_per_s": rate, "skipped_samples": len(sampler.bad)})
            if done % config.checkpoint_every == 0 or done == config.steps:
                self._save(world, step_module, optimizer, scheduler, done, sampler)
            if config.data.val and logger and ((config.val_every and done % config.val_every == 0)
                                               or done == config.steps):
                logger.write({"step": done, **self._validate(model, world)})
        if bar is not None:
            bar.close()
        return {"steps": config.steps, "loss": loss_value, "output_dir": str(self.output),
                "skipped_samples": len(sampler.bad), "rank": world.rank}

    def _optimizer_step(self, world: World, wrapped: nn.Module, optimizer, scheduler, loss_sum: torch.Tensor,
                        step: int) -> tuple[float, float, float]:
        """The end of a step: the loss averaged over ranks (a NaN stops the run), gradient clipping, one optimiser
        and schedule step. Returns (loss, gradient norm, learning rate of the step)."""
        loss_value = mean_over_ranks(loss_sum, world).item()
        if not math.isfinite(loss_value):
            raise TrainingDiverged(f"step {step + 1}: the loss is {loss_value}; stopping without writing a "
                                   f"checkpoint (last good one: {self._last_checkpoint_name()})")
        grad_norm = self._clip(wrapped)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return loss_value, grad_norm, lr

    def _clip(self, wrapped: nn.Module) -> float:
        params = [p for p in wrapped.parameters() if p.grad is not None]
        if self.config.optim.clip_grad > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, self.config.optim.clip_grad)
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)

    def _save(self, world: World, step_module: FeatureStep, optimizer, scheduler, step: int,
              sampler: StepBatches) -> None:
        # full (unsharded) state dicts, gathered on every rank (collective under FSDP), written by rank 0
        weights, optimizer_state = get_state_dict(step_module, optimizer, options=_FULL_STATE)
        weights = {k.removeprefix("model."): v for k, v in weights.items()}
        state = {"optimizer": optimizer_state, "scheduler": scheduler.state_dict(), "rng": rng_state(),
                 "sampler": sampler.state_dict()}
        if world.is_main:
            config = step_module.model.config
            save_checkpoint(self.checkpoints, step, weights, config, state, self.config.keep_checkpoints)
            if step == self.config.steps:
                try:
                    save_state_dict(weights, config, self.output / "model.safetensors")
                except OSError as e:  # atomic_write has removed its temporary file
                    raise write_error(e, self.output / "model.safetensors") from e
        if world.distributed:
            torch.distributed.barrier()

    def _restore(self, step_module: FeatureStep, optimizer, scheduler) -> tuple[int, dict[str, Any] | None]:
        """Loads the newest readable checkpoint; an unreadable one is named in a warning and the one before it
        is used (nothing is deleted). Returns the step to start from and the data order's saved state."""
        newest = read_newest_checkpoint(
            self.checkpoints, lambda c: (vidla.load_model(c / "model.safetensors").state_dict(), load_state(c)))
        if newest is None:
            log.warning("%s: no checkpoint to resume from; starting at step 0", self.checkpoints)
            return 0, None
        checkpoint, (weights, state) = newest
        set_state_dict(step_module, optimizer, model_state_dict={f"model.{k}": v for k, v in weights.items()},
                       optim_state_dict=state["optimizer"], options=_FULL_STATE)
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        print(f"resuming from {checkpoint} (step {state['step']})")
        return int(state["step"]), state.get("sampler")

    def _last_checkpoint_name(self) -> str:
        found = list_checkpoints(self.checkpoints)
        return str(found[-1]) if found else "none"

    def _write_config(self) -> None:
        with atomic_write(self.output / "config.yaml") as f:
            yaml.safe_dump(json.loads(json.dumps(asdict(self.config))), f, sort_keys=False)

    def _trim_metrics(self, start_step: int) -> None:
        """On resume, drop the metrics of steps after the checkpoint (they are about to be redone)."""
        path = self.output / "metrics.jsonl"
        if not path.is_file():
            return
        kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= start_step]
        with atomic_write(path) as f:
            f.write("".join(line + "\n" for line in kept))

    def _validate(self, model: VidLA, world: World) -> dict[str, float]:
        from vidla.train.clips import validation_retrieval

        if self.config.strategy == "fsdp" and world.distributed:
            log.warning("validation during FSDP training is not supported; run `vidla eval` on a checkpoint")
            return {}
        d = self.config.data
        return validation_retrieval(model, d.val, self.text_kinds[0], d.num_frames, d.workers)


def temporal_contrastive(config: TrainConfig, world: World) -> MultimodalTemporalContrastive | None:
    """The MTC term when `loss.mtc_weight` > 0 (multi-clip samples), else None."""
    c = config.loss
    if c.mtc_weight <= 0:
        return None
    return MultimodalTemporalContrastive(world, config.local_loss, c.mtc_weight, c.mtc_temperature, c.mtc_anchors,
                                         c.mtc_candidates, c.mtc_other_negatives)


def mtc_generator(seed: int, step: int, micro: int) -> torch.Generator:
    """The MTC draws of one micro-batch: fixed by (seed, step, micro), alike on every rank and on resume."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step, micro]).generate_state(1)[0]))


def _no_sync(wrapped: nn.Module, skip_sync: bool):
    import contextlib

    return wrapped.no_sync() if skip_sync and hasattr(wrapped, "no_sync") else contextlib.nullcontext()


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _progress(enabled: bool, start: int, total: int):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc="train", unit="step", dynamic_ncols=True)


class _MetricsLog:
    """metrics.jsonl (always) and TensorBoard (when installed and enabled)."""

    def __init__(self, output: Path, tensorboard: bool):
        output.mkdir(parents=True, exist_ok=True)
        self.file = (output / "metrics.jsonl").open("a", encoding="utf-8")
        self.board = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.board = SummaryWriter(str(output / "tensorboard"))
            except ImportError:
                log.info("tensorboard is not installed; metrics go to metrics.jsonl only")

    def write(self, row: dict[str, Any]) -> None:
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        if self.board is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.board.add_scalar(key, value, row["step"])

    def close(self) -> None:
        self.file.close()
        if self.board is not None:
            self.board.close()
