"""The training loop of the paper (sections 3.3-3.4 and 4.2).

Per step: (1) the generator (codec + prior) minimises lambda_g L_adv-g + lambda_l L_adv-l + L_C + L_FP
(eqs. 11-16) against frozen discriminators; (2) the EMA copy is updated; (3) the global discriminator
(FreezeD: first layers frozen) and the three component discriminators take their logistic step
(+ lazy R1). Learning rates per part: codec, prior, noise-branch scalars, local D, global D.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import errno
import logging
import signal
import threading
import time
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader

from poseface.config import to_dict
from poseface.data.curate import load_keep_list
from poseface.data.dataset import FaceDataset, worker_init
from poseface.errors import PoseFaceError
from poseface.imageio import atomic_write
from poseface.losses.objectives import DiscriminatorLoss, GeneratorLoss, nonfinite_terms
from poseface.models.checkpoint import save_model
from poseface.models.discriminator import build_discriminators, freeze_d
from poseface.models.gpen import load_gpen_discriminator, load_gpen_generator
from poseface.models.restorer import PoseFaceNet
from poseface.train import checkpoint as ckpt
from poseface.train.config import ExperimentConfig
from poseface.train.distributed import Process, all_reduce_flag, average_gradients, barrier, broadcast_module
from poseface.train.ema import EMA
from poseface.train.sampler import EpochIndexed, StepBatches
from poseface.train.visual import plot_curves, to_uint8, write_grid

logger = logging.getLogger("poseface.train")


def build_optimizer(groups: list[tuple[str, list[nn.Parameter], float]], betas: tuple[float, float]) -> torch.optim.Adam | None:
    param_groups = [{"params": params, "lr": lr, "name": name} for name, params, lr in groups if params]
    return torch.optim.Adam(param_groups, betas=betas) if param_groups else None


def rewrite_csv(path: Path, fieldnames: list[str], rows: list[dict[str, str]]) -> None:
    """Write a whole CSV log atomically (header + rows; missing fields left empty)."""

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fieldnames, restval="")
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write)


class DeferredInterrupt:
    """The first Ctrl-C only asks the run to stop after the current step (and its checkpoint); a second one
    interrupts at once, without a checkpoint. A no-op outside the main thread (signals cannot be set there)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        logger.warning("Ctrl-C: stopping after this step (press again to stop at once, without a checkpoint)")

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def init_from_weights(model: PoseFaceNet, path: str) -> None:
    """Start from a trained PoseFace model (e.g. the bundled one): same architecture required, fp16 files are fine."""
    from poseface.models import bundled_weights
    from poseface.models.checkpoint import load_model

    source = load_model(bundled_weights() if path == "bundled" else path)
    try:
        model.load_state_dict({k: v.float() for k, v in source.state_dict().items()})
    except RuntimeError:
        raise PoseFaceError(f"{path}: its architecture differs from this config's model section; train with the model's own config") from None
    logger.info("initialised the restorer from %s", path)


def init_from_gpen(model: PoseFaceNet, path: str) -> None:
    """Copy GPEN's encoder convs, latent layer and StyleGAN2 into `model` (shapes must agree)."""
    gpen, _ = load_gpen_generator(path)
    g, m = gpen.config, model.config
    if (g.size, g.style_dim, g.n_mlp, g.channel_multiplier, g.narrow) != (m.size, m.style_dim, m.n_mlp, m.channel_multiplier, m.narrow):
        raise PoseFaceError(
            f"{path}: GPEN model is {g.size} px / style {g.style_dim} / cm {g.channel_multiplier:g} / narrow {g.narrow:g}, "
            f"the config asks for {m.size} / {m.style_dim} / {m.channel_multiplier:g} / {m.narrow:g}; use the matching preset (paper-512 for GPEN-BFR-512)"
        )
    source = gpen.state_dict()
    target = model.state_dict()
    copied = {k: v for k, v in source.items() if k.startswith(("prior.", "encoder.convs.", "encoder.to_latent."))}
    target.update(copied)
    model.load_state_dict(target)
    logger.info("initialised encoder and prior from %s (%d tensors)", path, len(copied))


def mean_metric(function, restored: np.ndarray, gt: np.ndarray) -> float:
    return float(np.mean(function(restored, gt)))


class Trainer:
    def __init__(self, cfg: ExperimentConfig, process: Process | None = None, resume: bool = False,
                 loss_networks: dict[str, nn.Module] | None = None, dataset: Any = None, val_dataset: Any = None):
        self.cfg = cfg
        self.process = process or Process()
        self.device = self.process.device
        t = cfg.train
        self.out_dir = Path(t.out_dir)
        if dataset is None and not cfg.data.source:
            raise PoseFaceError("data.source is empty; set it in the config or with --set data.source=PATH (a folder or .tar of faces)")
        torch.manual_seed(t.seed)

        self.model = PoseFaceNet(cfg.model).to(self.device)
        if t.init_gpen:
            init_from_gpen(self.model, t.init_gpen)
        if t.init_weights:
            init_from_weights(self.model, t.init_weights)
        self.d_global, self.d_locals = build_discriminators(cfg.model, t.local_d_channels)
        if t.init_gpen_d:
            gpen_d, _ = load_gpen_discriminator(t.init_gpen_d, cfg.model.stddev_group)
            try:
                self.d_global.load_state_dict(gpen_d.state_dict())
            except RuntimeError:
                raise PoseFaceError(f"{t.init_gpen_d}: GPEN discriminator does not fit model.size {cfg.model.size} with the configured "
                                    f"discriminator channels; set model.discriminator_narrow / discriminator_channel_multiplier") from None
        self.d_global.to(self.device)
        self.d_locals.to(self.device)
        self.frozen_d = freeze_d(self.d_global, t.freeze_d_layers)

        self.train_set = dataset if dataset is not None else self._dataset("train")
        self.val_set = val_dataset if val_dataset is not None else self._dataset("val")
        if len(self.val_set) == 0:
            logger.warning("validation split is empty; validating on the first training images")
            self.val_set = self.train_set
        self._set_face_template()
        self._set_dlib_eyes()

        networks = loss_networks or {}
        self.g_loss = GeneratorLoss(cfg.losses, vgg=networks.get("vgg"), identity=networks.get("identity")).to(self.device)
        self.d_loss = DiscriminatorLoss(cfg.losses)
        self.use_global_d = cfg.losses.global_adv > 0
        self.use_local_d = cfg.losses.local_adv > 0

        groups = self.model.parameter_groups()
        self.opt_g = build_optimizer([("codec", groups["codec"], t.lr_codec), ("prior", groups["prior"], t.lr_prior),
                                      ("noise", groups["noise"], t.lr_noise)], t.betas)
        self.d_global_params = [p for p in self.d_global.parameters() if p.requires_grad]
        self.d_local_params = list(self.d_locals.parameters())
        self.opt_d = build_optimizer([("global_d", self.d_global_params if self.use_global_d else [], t.lr_global_d)], t.betas)
        self.opt_local = build_optimizer([("local_d", self.d_local_params if self.use_local_d else [], t.lr_local_d)], t.betas)
        self.optimizers = {name: opt for name, opt in (("g", self.opt_g), ("d", self.opt_d), ("local", self.opt_local)) if opt}
        self.schedulers = {name: torch.optim.lr_scheduler.MultiStepLR(opt, list(t.lr_milestones), t.lr_gamma)
                           for name, opt in self.optimizers.items()}
        amp_fp16 = t.amp == "fp16"
        # one loss scaler for the generator, one shared by the discriminators (fp16 only)
        self.scalers = {name: torch.amp.GradScaler(self.device.type, enabled=amp_fp16) for name in ("g", "d")}
        for module in (self.model, self.d_global, self.d_locals):
            broadcast_module(module, self.process.world_size)
        self.ema = EMA(self.model, t.ema_decay, t.ema_warmup) if t.ema else None

        self.step = 0
        self.bad_steps = 0
        self.skipped_steps = 0
        if resume:
            self._resume()
        elif ckpt.latest_checkpoint(self.out_dir) is not None:
            raise PoseFaceError(f"{self.out_dir}: already holds checkpoints; pass --resume to continue that run or choose another train.out_dir")
        self.val_batch = self._val_batch()

    # ------------------------------------------------------------------ data
    def _set_face_template(self) -> None:
        """Saved models carry the 5-point template of the training crops (unless the config names one),
        so `poseface restore` aligns faces the way the network saw them."""
        if self.cfg.model.face_template is not None or not hasattr(self.train_set, "face_template"):
            return
        template = self.train_set.face_template()
        if template is None:
            logger.info("no landmarks: saved models use the FFHQ face template scaled to %d px", self.cfg.model.size)
            return
        self.cfg.model = dataclasses.replace(self.cfg.model, face_template=tuple(template))
        self.model.config = dataclasses.replace(self.model.config, face_template=tuple(template))  # the EMA copies it later
        logger.info("face template of the training crops (%d px): %s", self.cfg.model.size,
                    ", ".join(f"({x:.1f}, {y:.1f})" for x, y in template))

    def _set_dlib_eyes(self) -> None:
        """dlib's face ResNet (identity / feature terms) sees chips cut at its own eye positions: give it
        the eyes of the training crops' template unless the config names them (losses.dlib_eyes)."""
        if self.cfg.losses.dlib_eyes is not None or self.cfg.model.face_template is None:
            return
        (xl, yl), (xr, yr) = self.cfg.model.face_template[:2]
        size = float(self.cfg.model.size)
        self.cfg.losses = dataclasses.replace(self.cfg.losses, dlib_eyes=(xl / size, yl / size, xr / size, yr / size))

    def _dataset(self, split: str) -> FaceDataset:
        d = self.cfg.data
        if not d.source:
            raise PoseFaceError("data.source is empty; set it in the config or with --set data.source=PATH (a folder or .tar of faces)")
        keep = load_keep_list(d.keep_list) if d.keep_list and split == "train" else None
        return FaceDataset(d.source, self.cfg.model.size, d.degradation, landmarks=d.landmarks, seed=self.cfg.train.seed,
                           split=split, val_fraction=d.val_fraction, landmark_methods=d.landmark_methods,
                           keep_names=keep, degradation_mix=d.degradation_mix if split == "train" else None)

    def _val_batch(self) -> dict[str, torch.Tensor]:
        count = min(self.cfg.data.val_images, len(self.val_set))
        self.val_set.set_epoch(0)
        items = [self.val_set[i] for i in range(count)]
        return {key: torch.stack([item[key] for item in items]) for key in ("lq", "gt")}

    def loader(self) -> DataLoader:
        sampler = StepBatches(len(self.train_set), self.cfg.train.batch_size, self.cfg.train.seed, self.step,
                              self.process.rank, self.process.world_size)
        workers = self.cfg.data.num_workers
        return DataLoader(EpochIndexed(self.train_set), batch_sampler=sampler, num_workers=workers,
                          worker_init_fn=worker_init if workers else None, persistent_workers=workers > 0,
                          pin_memory=self.device.type == "cuda",
                          # forked workers can inherit a locked OpenMP pool from the main process and hang
                          multiprocessing_context="spawn" if workers else None)

    # ------------------------------------------------------------------ one step
    def autocast(self):
        amp = self.cfg.train.amp
        if amp == "none":
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16 if amp == "bf16" else torch.float16)

    def _set_d_trainable(self, trainable: bool) -> None:
        for parameter in self.d_global_params + self.d_local_params:
            parameter.requires_grad_(trainable)

    def _skip(self, terms: dict[str, torch.Tensor], part: str) -> None:
        self.bad_steps += 1
        self.skipped_steps += 1
        logger.warning("step %d: non-finite %s loss (%s); batch skipped (%d in a row)", self.step, part,
                       ", ".join(nonfinite_terms(terms)), self.bad_steps)
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)
        if self.bad_steps >= self.cfg.train.max_bad_steps:
            last = ckpt.latest_checkpoint(self.out_dir)
            raise PoseFaceError(
                f"{self.out_dir}: training stopped after {self.bad_steps} consecutive non-finite losses at step {self.step}; "
                f"last good checkpoint: {last or 'none yet'}; resume from it with lower learning rates or train.amp: none"
            )

    def _apply(self, scaler_name: str, optimizers: list[torch.optim.Optimizer], loss: torch.Tensor) -> None:
        """Backward, average gradients over processes, optional clipping, optimiser steps."""
        scaler = self.scalers[scaler_name]
        params = [p for optimizer in optimizers for group in optimizer.param_groups for p in group["params"]]
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        average_gradients(params, self.process.world_size)
        if self.cfg.train.grad_clip > 0:
            for optimizer in optimizers:
                scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, self.cfg.train.grad_clip)
        for optimizer in optimizers:
            scaler.step(optimizer)
        scaler.update()

    def train_step(self, batch: dict[str, Any]) -> dict[str, float] | None:
        lq, gt = batch["lq"].to(self.device), batch["gt"].to(self.device)
        boxes, has_boxes = batch["boxes"].to(self.device), batch["has_boxes"].to(self.device)
        d_locals = self.d_locals if self.use_local_d else None
        d_global = self.d_global if self.use_global_d else None

        adversarial = self.step >= self.cfg.train.adversarial_start
        self._set_d_trainable(False)
        with self.autocast():
            restored, rgbs = self.model(lq, return_rgbs=True)
            g_total, g_terms = self.g_loss(restored.float(), gt, [r.float() for r in rgbs], boxes, has_boxes, d_global, d_locals,
                                           adversarial=adversarial)
        if all_reduce_flag(bool(nonfinite_terms(g_terms)), self.process.world_size):
            self._skip(g_terms, "generator")
            return None
        # Both losses are checked before any optimiser step, so a skipped batch changes no parameter and no
        # optimiser state. The D loss sees restored.detach() and D's weights, which the G step does not change.
        train_d = bool(self.opt_d or self.opt_local) and self.step >= self.cfg.train.first_discriminator_step()
        if train_d:
            self._set_d_trainable(True)
            with self.autocast():
                d_total, d_terms = self.d_loss(restored.detach().float(), gt, boxes, has_boxes, d_global, d_locals, step=self.step)
            if all_reduce_flag(bool(nonfinite_terms(d_terms)), self.process.world_size):
                self._skip(d_terms, "discriminator")
                return None
        self._apply("g", [self.opt_g], g_total)
        if self.ema is not None:
            self.ema.update(self.model, self.step)

        terms = {name: float(value) for name, value in g_terms.items()}
        if train_d:
            self._apply("d", [opt for opt in (self.opt_d, self.opt_local) if opt], d_total)
            terms.update({f"d_{k.removeprefix('d_')}" if k != "total" else "d_total": float(v) for k, v in d_terms.items()})
        with warnings.catch_warnings():
            # before the discriminators start, their schedules advance without optimiser steps
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`")
            for scheduler in self.schedulers.values():
                scheduler.step()
        self.bad_steps = 0
        return terms

    # ------------------------------------------------------------------ validation, images, checkpoints
    def eval_model(self) -> PoseFaceNet:
        return self.ema.model if self.ema is not None else self.model

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        from poseface.metrics.psnr_ssim import psnr, ssim

        model = self.eval_model()
        was_training = model.training
        model.eval()
        lq, gt = self.val_batch["lq"].to(self.device), self.val_batch["gt"].to(self.device)
        outputs = []
        with self.autocast():
            for start in range(0, len(lq), 8):
                outputs.append(model(lq[start: start + 8]).float())
        restored = torch.cat(outputs)
        model.train(was_training)
        restored_u8, lq_u8, gt_u8 = to_uint8(restored), to_uint8(lq), to_uint8(gt)
        self._last_val = (lq, restored, gt)
        return {"psnr": mean_metric(psnr, restored_u8, gt_u8), "ssim": mean_metric(ssim, restored_u8, gt_u8),
                "psnr_input": mean_metric(psnr, lq_u8, gt_u8), "ssim_input": mean_metric(ssim, lq_u8, gt_u8)}

    def _state(self) -> dict[str, Any]:
        state = {
            "step": self.step,
            "skipped_steps": self.skipped_steps,
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: s.state_dict() for name, s in self.schedulers.items()},
            "scalers": {name: s.state_dict() for name, s in self.scalers.items()},
            "torch_rng": torch.get_rng_state(),
            "config_yaml": yaml.safe_dump(to_dict(self.cfg), sort_keys=False),
        }
        if torch.cuda.is_available() and self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def save_checkpoint(self) -> Path | None:
        if not self.process.is_main:
            return None
        for name, module in (("model", self.model), ("d_global", self.d_global)):
            if not all(torch.isfinite(p).all() for p in module.parameters()):
                raise PoseFaceError(f"{self.out_dir}: {name} weights are not finite at step {self.step}; not saving; resume from the last good checkpoint")
        modules: dict[str, nn.Module] = {"generator": self.model, "d_global": self.d_global, "d_locals": self.d_locals}
        if self.ema is not None:
            modules["generator_ema"] = self.ema.model
        provenance = {"step": self.step, "data": self.cfg.data.source, "seed": self.cfg.train.seed, "trainer": "poseface train"}

        def write_model(folder: Path) -> None:
            save_model(self.eval_model(), folder / "model.safetensors", provenance)

        folder = ckpt.write_checkpoint(self.out_dir, self.step, modules, self._state(), write_model, self.cfg.train.keep_checkpoints)
        try:
            save_model(self.eval_model(), self.out_dir / "model.safetensors", provenance)
        except OSError as exc:
            raise PoseFaceError(ckpt.unwritable(self.out_dir / "model.safetensors", exc, self.out_dir)) from None
        return folder

    def _output_write_error(self, exc: OSError) -> PoseFaceError | None:
        """A full disk or a read-only output folder while writing logs, images or plots: the one-line error
        (None for other errors, e.g. reading the data)."""
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
            return None
        path = Path(exc.filename) if exc.filename else self.out_dir
        if exc.filename and not path.resolve().is_relative_to(self.out_dir.resolve()):
            return None
        return PoseFaceError(ckpt.unwritable(path, exc, self.out_dir))

    def _resume(self) -> None:
        folder = ckpt.latest_checkpoint(self.out_dir)
        if folder is None:
            raise PoseFaceError(f"{self.out_dir}: no checkpoint to resume from; start without --resume")
        state = ckpt.read_state(folder)
        ckpt.load_module(self.model, folder / "generator.safetensors")
        ckpt.load_module(self.d_global, folder / "d_global.safetensors")
        ckpt.load_module(self.d_locals, folder / "d_locals.safetensors")
        if self.ema is not None:
            ckpt.load_module(self.ema.model, folder / "generator_ema.safetensors")
        for name, optimizer in self.optimizers.items():
            if name not in state["optimizers"]:
                raise PoseFaceError(f"{folder}: no state for optimizer {name!r}; the config's losses changed since this run started")
            optimizer.load_state_dict(state["optimizers"][name])
        for name, scheduler in self.schedulers.items():
            scheduler.load_state_dict(state["schedulers"][name])
            self._follow_config_schedule(scheduler)
        for name, scaler in self.scalers.items():
            if name in state.get("scalers", {}):
                scaler.load_state_dict(state["scalers"][name])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        self.step = int(state["step"])
        self.skipped_steps = int(state.get("skipped_steps", 0))
        logger.info("resumed from %s at step %d", folder, self.step)
        for name in ("train_log.csv", "val_log.csv"):
            self._truncate_log(name, self.step)

    def _truncate_log(self, name: str, step: int) -> None:
        """Drop the rows a killed run logged after its last checkpoint: they are logged again on resume."""
        path = self.out_dir / name
        if not path.is_file():
            return
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            fieldnames, rows = list(reader.fieldnames or []), list(reader)
        kept = [row for row in rows if int(float(row["step"])) <= step]
        if len(kept) == len(rows):
            return
        rewrite_csv(path, fieldnames, kept)
        logger.info("%s: dropped %d rows logged after step %d (the run was stopped before its next checkpoint)", path, len(rows) - len(kept), step)

    def _follow_config_schedule(self, scheduler: torch.optim.lr_scheduler.MultiStepLR) -> None:
        """After a resume the config's rates, milestones and gamma hold (the saved optimiser and scheduler
        would keep the old ones): each group's rate becomes lr_<group> * gamma ** (milestones passed), so a
        run can be resumed with lower rates or a new piece-wise schedule, including milestones behind it."""
        t = self.cfg.train
        scheduler.milestones = collections.Counter(t.lr_milestones)
        scheduler.gamma = t.lr_gamma
        passed = sum(1 for milestone in t.lr_milestones if milestone <= scheduler.last_epoch)
        for group in scheduler.optimizer.param_groups:
            configured = getattr(t, f"lr_{group['name']}")  # `--resume --set train.lr_prior=...` applies
            if configured != group["initial_lr"]:
                logger.info("resume: lr_%s %g -> %g (from the config)", group["name"], group["initial_lr"], configured)
                group["initial_lr"] = configured
            group["lr"] = group["initial_lr"] * t.lr_gamma**passed
        scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]

    # ------------------------------------------------------------------ the run
    def _log_csv(self, name: str, row: dict[str, float]) -> None:
        """Append a row. A term that appears later (R1, the adversarial terms after `adversarial_start`)
        widens the header: the file is rewritten once with the new column, earlier rows left empty there."""
        path = self.out_dir / name
        rows: list[dict[str, str]] = []
        fieldnames: list[str] = []
        if path.is_file():
            with open(path, newline="") as handle:
                fieldnames = next(csv.reader(handle), [])
        new = [key for key in row if key not in fieldnames]
        if new and fieldnames:
            with open(path, newline="") as handle:
                rows = list(csv.DictReader(handle))
            fieldnames += new
            rewrite_csv(path, fieldnames, rows)
        elif new:
            fieldnames = new
        with open(path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fieldnames, restval="", extrasaction="ignore")
            if handle.tell() == 0:
                writer.writeheader()
            writer.writerow(row)

    def _time_is_up(self, started: float, max_minutes: float | None) -> bool:
        """Wall-clock limit reached (the same answer on every process: any rank's clock decides)."""
        if max_minutes is None:
            return False
        return all_reduce_flag(time.perf_counter() - started >= 60.0 * max_minutes, self.process.world_size)

    def fit(self, max_steps: int | None = None, progress: bool = True, max_minutes: float | None = None) -> dict[str, float]:
        """Train until `train.iterations` (or `max_steps` more steps, or `max_minutes` of wall-clock time,
        checked at step boundaries: the step that passes it is the last, with validation, images and a
        checkpoint as at any end); returns the last validation."""
        if max_minutes is not None and not max_minutes > 0:
            raise PoseFaceError(f"--max-minutes {max_minutes}: must be > 0")
        t = self.cfg.train
        main = self.process.is_main
        end = t.iterations if max_steps is None else min(t.iterations, self.step + max_steps)
        if main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "config.yaml").write_text(yaml.safe_dump(to_dict(self.cfg), sort_keys=False))
        writer = None
        if main:
            try:
                from torch.utils.tensorboard import SummaryWriter

                writer = SummaryWriter(str(self.out_dir / "tensorboard"))
            except ImportError:
                logger.warning("tensorboard is not installed: scalars go to train_log.csv only")
        bar = None
        if main and progress:
            from tqdm import tqdm

            bar = tqdm(total=end, initial=self.step, desc="train", dynamic_ncols=True)
        self.model.train()
        last_val: dict[str, float] = {}
        running: dict[str, list[float]] = {}
        started = time.perf_counter()
        steps_done = 0
        interrupt = DeferredInterrupt()
        try:
            for batch in self.loader():
                if self.step >= end:
                    break
                terms = self.train_step(batch)
                self.step += 1
                steps_done += 1
                if terms is not None:
                    for key, value in terms.items():
                        running.setdefault(key, []).append(value)
                if bar is not None:
                    bar.update(1)
                last = self.step >= end or self._time_is_up(started, max_minutes)
                if last and self.step < end:
                    logger.info("--max-minutes %g: time is up after step %d", max_minutes, self.step)
                    end = self.step
                if main and self.step % t.log_every == 0 and running:
                    means = {k: float(np.mean(v)) for k, v in running.items()}
                    running = {}
                    seconds_per_step = (time.perf_counter() - started) / max(1, steps_done)
                    row = {"step": self.step, "seconds": seconds_per_step, "lr_codec": self.opt_g.param_groups[0]["lr"], **means}
                    self._log_csv("train_log.csv", row)
                    if writer is not None:
                        for key, value in means.items():
                            writer.add_scalar(f"train/{key}", value, self.step)
                    if bar is not None:
                        bar.set_postfix({k: f"{means[k]:.3g}" for k in ("total", "l1", "d_total") if k in means} | {"s/it": f"{seconds_per_step:.2f}"})
                if main and (self.step % t.val_every == 0 or last):
                    last_val = self.validate()
                    self._log_csv("val_log.csv", {"step": self.step, **last_val})
                    if writer is not None:
                        for key, value in last_val.items():
                            writer.add_scalar(f"val/{key}", value, self.step)
                    plot_curves(self.out_dir)
                if main and (self.step % t.image_every == 0 or last):
                    if not last_val or getattr(self, "_last_val", None) is None:
                        self.validate()
                    lq, restored, gt = self._last_val
                    write_grid(self.out_dir / "images" / f"step-{self.step:08d}.png", lq, restored, gt, f"step {self.step}")
                checkpointed = self.step % t.checkpoint_every == 0 or last
                if checkpointed:
                    self.save_checkpoint()
                    barrier(self.process.world_size)
                if interrupt.requested:  # Ctrl-C during the step: stop at its boundary, where the state is whole
                    if main and not checkpointed:
                        logger.warning("interrupted: step %d finished, writing a checkpoint", self.step)
                        self.save_checkpoint()
                    raise KeyboardInterrupt
                if last:
                    break
        except OSError as exc:
            error = self._output_write_error(exc)
            if error is None:
                raise
            raise error from None
        finally:
            interrupt.restore()
            if bar is not None:
                bar.close()
            if writer is not None:
                writer.close()
        return last_val

