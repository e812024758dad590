"""`vidla distill-text`'s trainer: masked LM + distillation from a frozen vidla text tower.

It is `vidla train`'s Trainer with another model and objective: the same process-group set-up (one process
or torchrun/DDP), deterministic resumable batches (StepBatches), atomic checkpoints with optimiser,
scheduler and random states, metrics.jsonl, progress bar, gradient clipping and divergence check.

Masked LM under torchrun sees what one process would: each text's mask is drawn from a generator seeded by (seed,
the text's stream key), so neither the rank count nor a resume changes it, and the MLM loss is the mean over the
chosen tokens of the *global* batch (a rank's sum divided by the global count / ranks; DDP's gradient average then
gives exactly the one-process gradient). The distillation terms (NST's MMD, NT-Xent / CRD with in-batch
negatives) are statistics of each rank's own batch, as VidLanKD's released code computes them under DDP.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from vidla.distill.config import DistillConfig
from vidla.distill.corpus import read_corpus, tokenize_corpus
from vidla.distill.losses import CRDLoss, DistillHead, nst_loss, nt_xent_loss
from vidla.distill.masking import IGNORE, mask_tokens
from vidla.distill.student import TextStudent, save_student, valid_positions
from vidla.distill.teacher import TextTeacher, load_teacher
from vidla.train.checkpoint import load_state, read_newest_checkpoint, rng_state, save_checkpoint, set_rng_state
from vidla.train.data import StepBatches
from vidla.train.distributed import World
from vidla.train.loop import Trainer, _MetricsLog, _no_sync, _progress, _seed_everything, wrap
from vidla.train.optim import build_optimizer, build_scheduler

log = logging.getLogger(__name__)
CHECKPOINT_CONFIG_KEY = "vidla_distill_config"
STUDENT_FILE = "student.safetensors"


class DistillStep(nn.Module):
    """What DDP wraps: the student and the distillation heads, from a masked batch to the losses."""

    def __init__(self, student: TextStudent, config: DistillConfig, teacher_width: int):
        super().__init__()
        loss, width = config.loss, student.config.width
        self.student, self.loss = student, loss
        # VidLanKD: an NST head on the student; an NT-Xent head on each side (the teacher's is trained, the
        # teacher itself is frozen)
        self.nst_head = DistillHead(width, teacher_width) if loss.nst_weight > 0 else None
        self.student_head = self.teacher_head = self.crd = None
        if loss.contrastive == "ntxent" and loss.contrastive_weight > 0:
            self.student_head = DistillHead(width, teacher_width)
            self.teacher_head = DistillHead(teacher_width, teacher_width)
        elif loss.contrastive == "crd" and loss.contrastive_weight > 0:
            self.crd = CRDLoss(width, teacher_width, loss.crd_dim, loss.crd_temperature)

    def forward(self, token_ids: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor,
                teacher_states: torch.Tensor | None, mlm_tokens: torch.Tensor | None = None):
        """`mlm_tokens`: what the MLM sum is divided by (default: this batch's chosen tokens, a plain mean)."""
        hidden = self.student(token_ids, valid)
        chosen = labels != IGNORE
        logits = self.student.mlm_logits(hidden[chosen]).float()
        normaliser = chosen.sum() if mlm_tokens is None else mlm_tokens
        mlm = F.cross_entropy(logits, labels[chosen], reduction="sum") / normaliser.clamp(min=1) \
            if chosen.any() else hidden.sum() * 0
        parts = {"mlm": mlm}
        accuracy = (logits.argmax(-1) == labels[chosen]).float().mean() if chosen.any() else torch.ones(())
        total = self.loss.mlm_weight * mlm
        if self.nst_head is not None:
            parts["nst"] = nst_loss(self.nst_head(hidden).float(), teacher_states, valid)
            total = total + self.loss.nst_weight * parts["nst"]
        if self.student_head is not None:
            parts["ntxent"] = nt_xent_loss(self.student_head(hidden).float(),
                                           self.teacher_head(teacher_states).float(), valid,
                                           self.loss.temperature)
            total = total + self.loss.contrastive_weight * parts["ntxent"]
        if self.crd is not None:
            parts["crd"] = self.crd(hidden.float(), teacher_states, valid)
            total = total + self.loss.contrastive_weight * parts["crd"]
        return total, parts, accuracy.detach()


def mask_seed(seed: int, key: int) -> int:
    """The seed of one text's mask: its stream key is unique in a run and the same on any number of ranks."""
    return int(np.random.SeedSequence([seed, key]).generate_state(1)[0])


class DistillTrainer(Trainer):
    config: DistillConfig

    def __init__(self, config: DistillConfig, resume: bool = False, progress: bool = True):
        super().__init__(config, resume, progress)  # type: ignore[arg-type]

    def _run(self, world: World) -> dict[str, Any]:
        config = self.config
        _seed_everything(config.seed)
        # the student first, so that a seed gives the same student with and without a teacher and heads
        student = TextStudent(config.student)
        texts = read_corpus(config.corpus)
        tokens = tokenize_corpus(texts, config.student.context_length)
        teacher = self._teacher(world)
        step_module = DistillStep(student, config, teacher.width if teacher else config.student.width)
        step_module.to(world.device)
        wrapped = wrap(step_module, config, world)  # type: ignore[arg-type]
        optimizer = build_optimizer(step_module, config.optim)
        scheduler = build_scheduler(optimizer, config.optim, config.steps)
        start_step = self._restore(step_module, optimizer, scheduler) if self.resume else 0
        if world.is_main:
            self._write_config()
            self._trim_metrics(start_step)
            print(f"corpus: {len(texts)} texts; student: {sum(p.numel() for p in student.parameters()):,} "
                  f"parameters; {'distilling from ' + str(config.teacher) if teacher else 'masked LM only'}")
        sampler = StepBatches(len(tokens), config.batch_size, config.steps, config.seed, world.rank, world.size,
                              config.accumulation, start_step)
        logger = _MetricsLog(self.output, config.tensorboard) if world.is_main else None
        try:
            summary = self._loop(world, step_module, wrapped, teacher, tokens, iter(sampler), optimizer,
                                 scheduler, start_step, logger)
        finally:
            if logger:
                logger.close()
        return summary

    def _teacher(self, world: World) -> TextTeacher | None:
        config = self.config
        if not config.loss.distills:
            return None
        teacher = load_teacher(config.teacher, config.loss.teacher_input, world.device)
        student = config.student
        if teacher.tower.config.vocab_size != student.mask_token_id:
            raise ValueError(f"{config.teacher}: the teacher has {teacher.tower.config.vocab_size} token "
                             f"embeddings; the student expects CLIP's {student.mask_token_id} (+ [MASK])")
        if student.context_length > teacher.context_length:
            raise ValueError(f"student.context_length {student.context_length} exceeds the teacher's text "
                             f"context ({teacher.context_length})")
        return teacher

    def _batch(self, tokens: torch.Tensor, keys: list[int], world: World):
        config = self.config
        ids = tokens[torch.as_tensor(keys) % len(tokens)]
        valid = valid_positions(ids, config.student.eot_token_id)
        special = (ids == config.student.sot_token_id) | (ids == config.student.eot_token_id)
        # each row's mask from its own generator, drawn at the full context length (before trimming the padding,
        # whose width depends on the other rows of this rank's batch)
        rows = [mask_tokens(ids[i:i + 1], (valid & ~special)[i:i + 1], config.student.mask_token_id,
                            config.student.sot_token_id, config.masking,
                            torch.Generator().manual_seed(mask_seed(config.seed, int(key))))
                for i, key in enumerate(keys)]
        corrupted, labels, masked = (torch.cat(parts) for parts in zip(*((r.token_ids, r.labels, r.masked)
                                                                          for r in rows)))
        width = int(valid.sum(1).max())  # drop the columns that are padding in every row
        batch = [t[:, :width].to(world.device) for t in (ids, corrupted, labels, masked, valid)]
        mlm_tokens = (labels != IGNORE).sum().to(world.device, torch.float32)
        if world.distributed:  # the global batch's chosen tokens, per rank (see the module's docstring)
            torch.distributed.all_reduce(mlm_tokens)
            mlm_tokens /= world.size
        return batch + [mlm_tokens]

    def _loop(self, world, step_module, wrapped, teacher, tokens, batches, optimizer, scheduler, start_step,
              logger):
        config = self.config
        autocast = torch.autocast(world.device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")
        bar = _progress(world.is_main and self.progress, start_step, config.steps)
        started, loss_value = time.perf_counter(), float("nan")
        for step in range(start_step, config.steps):
            loss_sum = torch.zeros((), device=world.device)
            parts_sum: dict[str, float] = {}
            for micro in range(config.accumulation):
                original, corrupted, labels, masked, valid, mlm_tokens = self._batch(tokens, next(batches), world)
                teacher_states = teacher(original, corrupted, masked).float() if teacher else None
                with _no_sync(wrapped, micro < config.accumulation - 1), autocast:
                    loss, parts, accuracy = wrapped(corrupted, labels, valid, teacher_states, mlm_tokens)
                (loss / config.accumulation).backward()
                loss_sum += loss.detach() / config.accumulation
                parts["mlm_accuracy"] = accuracy
                for name, value in parts.items():
                    parts_sum[name] = parts_sum.get(name, 0.0) + value.item() / config.accumulation
            loss_value, grad_norm, lr = self._optimizer_step(world, wrapped, optimizer, scheduler, loss_sum, step)
            done = step + 1
            rate = config.batch_size * (done - start_step) / (time.perf_counter() - started)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}", mlm_acc=f"{parts_sum['mlm_accuracy']:.3f}",
                                texts_s=f"{rate:.0f}")
            if logger and (done % config.log_every == 0 or done == config.steps):
                logger.write({"step": done, "loss": loss_value,
                              **{(k if k == "mlm_accuracy" else f"loss_{k}"): v for k, v in parts_sum.items()},
                              "lr": lr, "grad_norm": grad_norm, "texts_per_s": rate})
            if done % config.checkpoint_every == 0 or done == config.steps:
                self._save(world, step_module, optimizer, scheduler, done)
        if bar is not None:
            bar.close()
        return {"steps": config.steps, "loss": loss_value, "output_dir": str(self.output), "rank": world.rank,
                "student": str(self.output / STUDENT_FILE)}

    def _save(self, world: World, step_module: DistillStep, optimizer, scheduler, step: int) -> None:
        if world.is_main:
            state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng_state()}
            save_checkpoint(self.checkpoints, step, step_module.state_dict(), self.config, state,
                            self.config.keep_checkpoints, config_key=CHECKPOINT_CONFIG_KEY,
                            file_format="vidla-distill-checkpoint")
            if step == self.config.steps:
                save_student(step_module.student, self.output / STUDENT_FILE)
        if world.distributed:
            torch.distributed.barrier()

    def _restore(self, step_module: DistillStep, optimizer, scheduler) -> int:
        newest = read_newest_checkpoint(self.checkpoints,
                                        lambda c: (load_file(str(c / "model.safetensors")), load_state(c)))
        if newest is None:
            log.warning("%s: no checkpoint to resume from; starting at step 0", self.checkpoints)
            return 0
        latest, (weights, state) = newest
        step_module.load_state_dict({k: v.to(next(step_module.parameters()).device) for k, v in weights.items()})
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        print(f"resuming from {latest} (step {state['step']})")
        return int(state["step"])
