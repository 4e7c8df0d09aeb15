"""The training loop of the paper (sections 3.3-3.4 and 4.2).

Per step: (1) the generator (codec + prior) minimises lambda_g L_adv-g + lambda_l L_adv-l + L_C + L_FP
(eqs. 11-16) against frozen discriminators; (2) the EMA copy is updated; (3) the global discriminator
(FreezeD: first layers frozen) and the three component discriminators take their logistic step
(+ lazy R1). Learning rates per part: codec, prior, noise-branch scalars, local D, global D.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
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
from poseface.losses.objectives import DiscriminatorLoss, GeneratorLoss, nonfinite_terms
from poseface.models.discriminator import GlobalDiscriminator, build_discriminators, freeze_d
from poseface.models.gpen import init_from_gpen, load_gpen_discriminator
from poseface.models.network import PoseFaceNet
from poseface.train import checkpoint as ckpt
from poseface.train import runlog
from poseface.train.config import ExperimentConfig
from poseface.train.distributed import Process, all_reduce_flag, average_gradients, barrier, broadcast_module
from poseface.train.ema import EMA
from poseface.train.interrupt import DeferredInterrupt
from poseface.train.optim import build_optimizer, build_scheduler, resume_schedule
from poseface.train.sampler import EpochIndexed, StepBatches
from poseface.train.validation import Images, val_batch, validate
from poseface.train.visualize import plot_curves, write_grid

logger = logging.getLogger("poseface.train")


def build_restorer(cfg: ExperimentConfig, device: torch.device) -> PoseFaceNet:
    """The network to train, on `device`: fresh (seeded), or from GPEN (train.init_gpen) / trained weights (train.init_weights)."""
    model = PoseFaceNet(cfg.model).to(device)
    if cfg.train.init_gpen:
        init_from_gpen(model, cfg.train.init_gpen)
    if cfg.train.init_weights:
        init_from_weights(model, cfg.train.init_weights)
    return model


def build_trained_discriminators(
    cfg: ExperimentConfig, device: torch.device
) -> tuple[GlobalDiscriminator, nn.ModuleDict]:
    """The global discriminator (GPEN's with train.init_gpen_d) and the component ones, on `device`."""
    d_global, d_locals = build_discriminators(cfg.model, cfg.train.local_d_channels)
    path = cfg.train.init_gpen_d
    if path:
        gpen_d, _ = load_gpen_discriminator(path, cfg.model.stddev_group)
        try:
            d_global.load_state_dict(gpen_d.state_dict())
        except RuntimeError:
            raise PoseFaceError(
                f"{path}: GPEN discriminator does not fit model.size {cfg.model.size} with the configured "
                f"discriminator channels; set model.discriminator_narrow / discriminator_channel_multiplier"
            ) from None
    return d_global.to(device), d_locals.to(device)


def freeze_trained_d(d_global: GlobalDiscriminator, cfg: ExperimentConfig, warn: bool = True) -> list[str]:
    """FreezeD on the global D (train.freeze_d_layers); warns when the layers it freezes are random (no train.init_gpen_d)."""
    n_layers = cfg.train.freeze_d_layers
    if warn and n_layers > 0 and not cfg.train.init_gpen_d:
        logger.warning(
            "train.freeze_d_layers %d without train.init_gpen_d: FreezeD fixes the first %d layers of a randomly "
            "initialised discriminator; pass --init-gpen-d GPEN-D.pth or set train.freeze_d_layers: 0",
            n_layers,
            n_layers,
        )
    return freeze_d(d_global, n_layers)


def init_from_weights(model: PoseFaceNet, path: str) -> None:
    """Start from a trained PoseFace model (e.g. the bundled one): same architecture required, fp16 files are fine."""
    from poseface.models import bundled_weights
    from poseface.models.checkpoint import load_model

    source = load_model(bundled_weights() if path == "bundled" else path)
    try:
        model.load_state_dict({k: v.float() for k, v in source.state_dict().items()})
    except RuntimeError:
        raise PoseFaceError(
            f"{path}: its architecture differs from this config's model section; train with the model's own config"
        ) from None
    logger.info("initialised the restorer from %s", path)


class Trainer:
    def __init__(
        self,
        cfg: ExperimentConfig,
        process: Process | None = None,
        resume: bool = False,
        loss_networks: dict[str, nn.Module] | None = None,
        dataset: Any = None,
        val_dataset: Any = None,
    ):
        self.cfg = cfg
        self.process = process or Process()
        self.device = self.process.device
        t = cfg.train
        self.out_dir = Path(t.out_dir)
        if dataset is None and not cfg.data.source:
            raise PoseFaceError(
                "data.source is empty; set it in the config or with --set data.source=PATH (a folder or .tar of faces)"
            )
        torch.manual_seed(t.seed)

        self.model = build_restorer(cfg, self.device)
        self.d_global, self.d_locals = build_trained_discriminators(cfg, self.device)
        self.frozen_d = freeze_trained_d(self.d_global, cfg, warn=self.process.is_main)

        self.train_set = dataset if dataset is not None else self._dataset("train")
        self.val_set = val_dataset if val_dataset is not None else self._dataset("val")
        if len(self.val_set) == 0:
            logger.warning("validation split is empty; validating on the first training images")
            self.val_set = self.train_set
        self._set_face_template()
        self._set_dlib_eyes()

        networks = loss_networks or {}
        self.g_loss = GeneratorLoss(cfg.losses, vgg=networks.get("vgg"), identity=networks.get("identity")).to(
            self.device
        )
        self.d_loss = DiscriminatorLoss(cfg.losses)
        self.use_global_d = cfg.losses.global_adv > 0
        self.use_local_d = cfg.losses.local_adv > 0

        groups = self.model.parameter_groups()
        self.opt_g = build_optimizer(
            [
                ("codec", groups["codec"], t.lr_codec),
                ("prior", groups["prior"], t.lr_prior),
                ("noise", groups["noise"], t.lr_noise),
            ],
            t.betas,
        )
        self.d_global_params = [p for p in self.d_global.parameters() if p.requires_grad]
        self.d_local_params = list(self.d_locals.parameters())
        self.opt_d = build_optimizer(
            [("global_d", self.d_global_params if self.use_global_d else [], t.lr_global_d)], t.betas
        )
        self.opt_local = build_optimizer(
            [("local_d", self.d_local_params if self.use_local_d else [], t.lr_local_d)], t.betas
        )
        self.optimizers = {
            name: opt for name, opt in (("g", self.opt_g), ("d", self.opt_d), ("local", self.opt_local)) if opt
        }
        self.schedulers = {name: build_scheduler(opt, t) for name, opt in self.optimizers.items()}
        amp_fp16 = t.amp == "fp16"
        # one loss scaler for the generator, one shared by the discriminators (fp16 only)
        self.scalers = {name: torch.amp.GradScaler(self.device.type, enabled=amp_fp16) for name in ("g", "d")}
        for module in (self.model, self.d_global, self.d_locals):
            broadcast_module(module, self.process.world_size)
        self.ema = EMA(self.model, t.ema_decay, t.ema_warmup) if t.ema else None

        self.step = 0
        self.bad_steps = 0
        self.skipped_steps = 0
        self.last_images: Images | None = None  # of the last validation, for the image grids
        if resume:
            self._resume()
        elif ckpt.latest_checkpoint(self.out_dir) is not None:
            raise PoseFaceError(
                f"{self.out_dir}: already holds checkpoints; pass --resume to continue that run or choose another train.out_dir"
            )
        self.val_batch = val_batch(self.val_set, cfg.data.val_images)

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
        self.model.config = dataclasses.replace(
            self.model.config, face_template=tuple(template)
        )  # the EMA copies it later
        logger.info(
            "face template of the training crops (%d px): %s",
            self.cfg.model.size,
            ", ".join(f"({x:.1f}, {y:.1f})" for x, y in template),
        )

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
            raise PoseFaceError(
                "data.source is empty; set it in the config or with --set data.source=PATH (a folder or .tar of faces)"
            )
        keep = load_keep_list(d.keep_list) if d.keep_list and split == "train" else None
        return FaceDataset(
            d.source,
            self.cfg.model.size,
            d.degradation,
            landmarks=d.landmarks,
            seed=self.cfg.train.seed,
            split=split,
            val_fraction=d.val_fraction,
            landmark_methods=d.landmark_methods,
            keep_names=keep,
            degradation_mix=d.degradation_mix if split == "train" else None,
        )

    def loader(self) -> DataLoader:
        sampler = StepBatches(
            len(self.train_set),
            self.cfg.train.batch_size,
            self.cfg.train.seed,
            self.step,
            self.process.rank,
            self.process.world_size,
        )
        workers = self.cfg.data.num_workers
        return DataLoader(
            EpochIndexed(self.train_set),
            batch_sampler=sampler,
            num_workers=workers,
            worker_init_fn=worker_init if workers else None,
            persistent_workers=workers > 0,
            pin_memory=self.device.type == "cuda",
            # forked workers can inherit a locked OpenMP pool from the main process and hang
            multiprocessing_context="spawn" if workers else None,
        )

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
        logger.warning(
            "step %d: non-finite %s loss (%s); batch skipped (%d in a row)",
            self.step,
            part,
            ", ".join(nonfinite_terms(terms)),
            self.bad_steps,
        )
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
            g_total, g_terms = self.g_loss(
                restored.float(),
                gt,
                [r.float() for r in rgbs],
                boxes,
                has_boxes,
                d_global,
                d_locals,
                adversarial=adversarial,
            )
        if all_reduce_flag(bool(nonfinite_terms(g_terms)), self.process.world_size):
            self._skip(g_terms, "generator")
            return None
        # Both losses are checked before any optimiser step, so a skipped batch changes no parameter and no
        # optimiser state. The D loss sees restored.detach() and D's weights, which the G step does not change.
        train_d = bool(self.opt_d or self.opt_local) and self.step >= self.cfg.train.first_discriminator_step()
        if train_d:
            self._set_d_trainable(True)
            with self.autocast():
                d_total, d_terms = self.d_loss(
                    restored.detach().float(), gt, boxes, has_boxes, d_global, d_locals, step=self.step
                )
            if all_reduce_flag(bool(nonfinite_terms(d_terms)), self.process.world_size):
                self._skip(d_terms, "discriminator")
                return None
        self._apply("g", [self.opt_g], g_total)
        if self.ema is not None:
            self.ema.update(self.model, self.step)

        terms = {name: float(value) for name, value in g_terms.items()}
        if train_d:
            self._apply("d", [opt for opt in (self.opt_d, self.opt_local) if opt], d_total)
            terms.update({name: float(value) for name, value in d_terms.items()})
        with warnings.catch_warnings():
            # before the discriminators start, their schedules advance without optimiser steps
            warnings.filterwarnings(
                "ignore", message="Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`"
            )
            for scheduler in self.schedulers.values():
                scheduler.step()
        self.bad_steps = 0
        return terms

    # ------------------------------------------------------------------ validation, images, checkpoints
    def eval_model(self) -> PoseFaceNet:
        return self.ema.model if self.ema is not None else self.model

    def validate(self) -> dict[str, float]:
        return self._validate()[0]

    def _validate(self) -> tuple[dict[str, float], Images]:
        metrics, self.last_images = validate(self.eval_model(), self.val_batch, self.device, self.autocast)
        return metrics, self.last_images

    def _config_yaml(self) -> str:
        return yaml.safe_dump(to_dict(self.cfg), sort_keys=False)

    def _modules(self) -> dict[str, nn.Module]:
        """What a checkpoint holds as <name>.safetensors."""
        modules: dict[str, nn.Module] = {"generator": self.model, "d_global": self.d_global, "d_locals": self.d_locals}
        if self.ema is not None:
            modules["generator_ema"] = self.ema.model
        return modules

    def save_checkpoint(self) -> Path | None:
        if not self.process.is_main:
            return None
        ckpt.refuse_non_finite_weights({"model": self.model, "d_global": self.d_global}, self.out_dir, self.step)
        state = ckpt.training_state(
            self.step,
            self.skipped_steps,
            self.optimizers,
            self.schedulers,
            self.scalers,
            self._config_yaml(),
            self.device,
        )
        provenance = {
            "step": self.step,
            "data": self.cfg.data.source,
            "seed": self.cfg.train.seed,
            "trainer": "poseface train",
        }
        return ckpt.save_run(
            self.out_dir,
            self.step,
            self._modules(),
            state,
            self.eval_model(),
            provenance,
            self.cfg.train.keep_checkpoints,
        )

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
        ckpt.load_modules(folder, self._modules())
        ckpt.load_optimizers(folder, state, self.optimizers)
        for name, scheduler in self.schedulers.items():
            resume_schedule(scheduler, state["schedulers"][name], self.cfg.train)
        ckpt.load_scalers(state, self.scalers)
        ckpt.load_rng(state, self.device)
        self.step = int(state["step"])
        self.skipped_steps = int(state.get("skipped_steps", 0))
        logger.info("resumed from %s at step %d", folder, self.step)
        for name in runlog.LOGS:
            runlog.truncate_to_step(self.out_dir / name, self.step)

    # ------------------------------------------------------------------ the run
    def _log_csv(self, name: str, row: dict[str, float]) -> None:
        runlog.append_row(self.out_dir / name, row)

    def _add_scalars(self, writer: Any, section: str, values: dict[str, float]) -> None:
        if writer is not None:
            for key, value in values.items():
                writer.add_scalar(f"{section}/{key}", value, self.step)

    def _open_tensorboard(self) -> Any:
        try:
            from torch.utils.tensorboard import SummaryWriter

            return SummaryWriter(str(self.out_dir / "tensorboard"))
        except ImportError:
            logger.warning("tensorboard is not installed: scalars go to train_log.csv only")
            return None

    def _progress_bar(self, end: int) -> Any:
        from tqdm import tqdm

        return tqdm(total=end, initial=self.step, desc="train", dynamic_ncols=True)

    def _log_train(self, running: dict[str, list[float]], seconds_per_step: float, writer: Any, bar: Any) -> None:
        """The means of the terms since the last row: a row of train_log.csv, TensorBoard scalars, the bar's postfix."""
        means = {k: float(np.mean(v)) for k, v in running.items()}
        row = {"step": self.step, "seconds": seconds_per_step, "lr_codec": self.opt_g.param_groups[0]["lr"], **means}
        self._log_csv(runlog.TRAIN_LOG, row)
        self._add_scalars(writer, "train", means)
        if bar is not None:
            bar.set_postfix(
                {k: f"{means[k]:.3g}" for k in ("total", "l1", "d_total") if k in means}
                | {"s/it": f"{seconds_per_step:.2f}"}
            )

    def _log_validation(self, writer: Any) -> dict[str, float]:
        """Validate: a row of val_log.csv, TensorBoard scalars, curves.png redrawn."""
        metrics = self.validate()
        self._log_csv(runlog.VAL_LOG, {"step": self.step, **metrics})
        self._add_scalars(writer, "val", metrics)
        plot_curves(self.out_dir)
        return metrics

    def _write_images(self, validated: bool) -> None:
        """The degraded | restored | clean grid of this step (validating first unless this run has validated)."""
        images = self.last_images if validated else None
        if images is None:
            _, images = self._validate()
        write_grid(self.out_dir / "images" / f"step-{self.step:08d}.png", *images, f"step {self.step}")

    def _time_is_up(self, started: float, max_minutes: float | None) -> bool:
        """Wall-clock limit reached (the same answer on every process: any rank's clock decides)."""
        if max_minutes is None:
            return False
        return all_reduce_flag(time.perf_counter() - started >= 60.0 * max_minutes, self.process.world_size)

    def fit(
        self, max_steps: int | None = None, progress: bool = True, max_minutes: float | None = None
    ) -> dict[str, float]:
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
            (self.out_dir / "config.yaml").write_text(self._config_yaml())
        writer = self._open_tensorboard() if main else None
        bar = self._progress_bar(end) if main and progress else None
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
                for key, value in (terms or {}).items():
                    running.setdefault(key, []).append(value)
                if bar is not None:
                    bar.update(1)
                last = self.step >= end or self._time_is_up(started, max_minutes)
                if last and self.step < end:
                    logger.info("--max-minutes %g: time is up after step %d", max_minutes, self.step)
                    end = self.step
                if main and self.step % t.log_every == 0 and running:
                    self._log_train(running, (time.perf_counter() - started) / max(1, steps_done), writer, bar)
                    running = {}
                if main and (self.step % t.val_every == 0 or last):
                    last_val = self._log_validation(writer)
                if main and (self.step % t.image_every == 0 or last):
                    self._write_images(validated=bool(last_val))
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
