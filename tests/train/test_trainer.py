import copy
import math
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from poseface.errors import PoseFaceError
from poseface.train.sampler import StepBatches


def fixed_batch():
    from tests.train.conftest import TinyFaces

    faces = TinyFaces()
    items = [faces[i] for i in range(4)]
    return {k: torch.stack([it[k] for it in items]) for k in ("lq", "gt", "boxes", "has_boxes")}


def test_each_part_gets_the_paper_learning_rate(make_trainer):
    trainer = make_trainer()
    rates = {g["name"]: g["lr"] for opt in trainer.optimizers.values() for g in opt.param_groups}
    assert rates == {"codec": 2e-3, "prior": 2e-4, "noise": 2e-3, "global_d": 2e-5, "local_d": 2e-3}
    groups = {g["name"]: {id(p) for p in g["params"]} for opt in trainer.optimizers.values() for g in opt.param_groups}
    model = trainer.model
    assert id(model.prior.conv1.noise.weight) in groups["noise"]
    assert id(model.prior.mapping[1].weight) in groups["prior"]
    assert id(model.encoder.mmrbs["8"].fuse.weight) in groups["codec"]
    assert id(model.decoder.blocks["32"].out.weight) in groups["codec"]
    assert all(id(p) not in groups["global_d"] for p in trainer.d_global.convs[0].parameters())  # FreezeD


def test_piecewise_decay(make_trainer):
    trainer = make_trainer(lr_milestones=(2, 4), lr_gamma=0.5)
    batch = fixed_batch()
    lrs = []
    for _ in range(5):
        trainer.train_step(batch)
        lrs.append(trainer.opt_g.param_groups[0]["lr"])
    assert lrs == pytest.approx([2e-3, 1e-3, 1e-3, 5e-4, 5e-4])


def test_resume_follows_the_configs_schedule(make_trainer, tmp_path):
    trainer = make_trainer(out_dir=tmp_path / "s", checkpoint_every=3, lr_milestones=(100,))
    trainer.fit(max_steps=3, progress=False)
    resumed = make_trainer(out_dir=tmp_path / "s", resume=True, lr_milestones=(2, 4), lr_gamma=0.5)
    initial = {g["name"]: g["initial_lr"] for opt in resumed.optimizers.values() for g in opt.param_groups}
    assert initial["codec"] == 2e-3 and initial["prior"] == 2e-4
    for expected_factor in (0.5, 0.25):  # milestone 2 is behind the resumed run (step 3); 4 comes next
        for optimizer in resumed.optimizers.values():
            for group in optimizer.param_groups:
                assert group["lr"] == pytest.approx(initial[group["name"]] * expected_factor), group["name"]
        resumed.train_step(fixed_batch())


def test_resume_applies_learning_rates_given_on_resume(make_trainer, tmp_path, caplog):
    trainer = make_trainer(out_dir=tmp_path / "r", checkpoint_every=3, lr_milestones=(100,))
    trainer.fit(max_steps=3, progress=False)
    with caplog.at_level("INFO", logger="poseface.train"):
        resumed = make_trainer(
            out_dir=tmp_path / "r", resume=True, lr_milestones=(100,), lr_prior=5e-5, lr_global_d=1e-6
        )
    rates = {g["name"]: g["lr"] for opt in resumed.optimizers.values() for g in opt.param_groups}
    assert (
        rates["prior"] == pytest.approx(5e-5)
        and rates["global_d"] == pytest.approx(1e-6)
        and rates["codec"] == pytest.approx(2e-3)
    )
    assert "lr_prior 0.0002 -> 5e-05" in caplog.text
    resumed.train_step(fixed_batch())
    assert {g["name"]: g["lr"] for g in resumed.opt_g.param_groups}["prior"] == pytest.approx(5e-5)


def test_ema_warmup_follows_the_model_early():
    from poseface.train.ema import EMA

    model = torch.nn.Linear(2, 2, bias=False)
    torch.nn.init.zeros_(model.weight)
    ema = EMA(model, decay=0.995, warmup=True)
    assert [ema.decay_at(t) for t in (0, 10, 10_000)] == pytest.approx([0.1, 11 / 20, 0.995])
    assert EMA(model, 0.995).decay_at(0) == 0.995
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model, step=0)
    assert torch.allclose(ema.model.weight, torch.full((2, 2), 0.9))  # 0.1 * 0 + 0.9 * 1


def test_adversarial_terms_and_discriminators_start_at_adversarial_start(make_trainer, tmp_path):
    trainer = make_trainer(out_dir=tmp_path / "adv", adversarial_start=2, log_every=1)
    d_before = [p.detach().clone() for p in trainer.d_locals.parameters()]
    trainer.fit(max_steps=2, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(d_before, trainer.d_locals.parameters()))
    trainer.fit(max_steps=1, progress=False)
    assert not all(torch.equal(a, b) for a, b in zip(d_before, trainer.d_locals.parameters()))
    from poseface.train.visualize import read_csv

    log = read_csv(tmp_path / "adv" / "train_log.csv")
    assert log["step"] == [1, 2, 3]
    assert all(math.isnan(v) for v in log["adv_global"][:2]) and math.isfinite(log["adv_global"][2])
    assert all(math.isnan(v) for v in log["d_total"][:2]) and math.isfinite(log["l1"][0])


def test_discriminators_can_start_before_the_generator_sees_their_gradients(make_trainer, tmp_path):
    trainer = make_trainer(out_dir=tmp_path / "warm", adversarial_start=3, discriminator_start=1, log_every=1)
    d_before = [p.detach().clone() for p in trainer.d_locals.parameters()]
    trainer.fit(max_steps=1, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(d_before, trainer.d_locals.parameters()))
    trainer.fit(max_steps=2, progress=False)
    assert not all(torch.equal(a, b) for a, b in zip(d_before, trainer.d_locals.parameters()))
    from poseface.train.visualize import read_csv

    log = read_csv(tmp_path / "warm" / "train_log.csv")
    assert math.isnan(log["d_total"][0]) and all(math.isfinite(v) for v in log["d_total"][1:3])
    assert "adv_global" not in log  # the generator has had no adversarial term yet


def test_every_loss_term_active_and_loss_goes_down(make_trainer):
    from poseface.losses.arcface import ARCFACE_KINDS, load_identity_encoder
    from poseface.losses.vgg import DEFAULT_LAYERS, load_vgg19_features

    torch.manual_seed(0)
    networks = {
        "vgg": load_vgg19_features(DEFAULT_LAYERS, None, pretrained=False),
        "identity": load_identity_encoder(ARCFACE_KINDS[0], None, pretrained=False),
    }
    trainer = make_trainer(loss_networks=networks)
    batch = fixed_batch()
    first = trainer.train_step(batch)
    for name in (
        "adv_global",
        "adv_local",
        "l1",
        "pyramid_l1",
        "feature_matching",
        "face_preserving",
        "d_global",
        "d_left_eye",
        "d_r1",
    ):
        assert name in first and math.isfinite(first[name]), name
    for _ in range(12):
        last = trainer.train_step(batch)
    assert last["l1"] < 0.8 * first["l1"]


def test_freeze_d_layers_do_not_change(make_trainer):
    trainer = make_trainer()
    frozen = {k: v.clone() for k, v in trainer.d_global.state_dict().items() if k.startswith(("convs.0.", "convs.1."))}
    trained = trainer.d_global.final_conv[0].weight.clone()
    for _ in range(2):
        trainer.train_step(fixed_batch())
    state = trainer.d_global.state_dict()
    assert all(torch.equal(state[k], v) for k, v in frozen.items())
    assert not torch.equal(trained, trainer.d_global.final_conv[0].weight)


FREEZE_RANDOM_D = "without train.init_gpen_d: FreezeD fixes the first 2 layers of a randomly initialised discriminator"


def freeze_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and FREEZE_RANDOM_D in r.getMessage()]


def test_freeze_d_on_a_random_discriminator_warns_once(make_trainer, tmp_path, caplog):
    with caplog.at_level("WARNING", logger="poseface.train"):
        trainer = make_trainer(out_dir=tmp_path / "random")  # freeze_d_layers=2, no init_gpen_d
        trainer.train_step(fixed_batch())
    assert freeze_warnings(caplog) == [
        "train.freeze_d_layers 2 " + FREEZE_RANDOM_D + "; pass --init-gpen-d GPEN-D.pth or set train.freeze_d_layers: 0"
    ]
    gpen_d = tmp_path / "gpen_d.pth"
    torch.save(trainer.d_global.state_dict(), gpen_d)  # a GPEN-layout discriminator file
    caplog.clear()
    with caplog.at_level("WARNING", logger="poseface.train"):
        make_trainer(out_dir=tmp_path / "gpen", init_gpen_d=str(gpen_d))
        make_trainer(out_dir=tmp_path / "unfrozen", freeze_d_layers=0)
    assert freeze_warnings(caplog) == []


def test_non_finite_loss_skips_the_batch_and_repeated_ones_stop_the_run(make_trainer):
    trainer = make_trainer(max_bad_steps=3)
    batch = fixed_batch()
    batch["lq"][0, 0, 0, 0] = float("nan")
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    assert trainer.train_step(batch) is None
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    trainer.train_step(batch)
    with pytest.raises(PoseFaceError, match="3 consecutive non-finite losses"):
        trainer.train_step(batch)


def test_resumed_run_equals_uninterrupted_run(make_trainer, tmp_path):
    straight = make_trainer(out_dir=tmp_path / "a", checkpoint_every=3)
    straight.fit(max_steps=6, progress=False)
    first_half = make_trainer(out_dir=tmp_path / "b", checkpoint_every=3)
    first_half.fit(max_steps=3, progress=False)
    del first_half  # the "killed" run: only its checkpoint survives
    resumed = make_trainer(out_dir=tmp_path / "b", resume=True, checkpoint_every=3)
    assert resumed.step == 3
    resumed.fit(max_steps=3, progress=False)
    log_a = (tmp_path / "a" / "train_log.csv").read_text().splitlines()
    log_b = (tmp_path / "b" / "train_log.csv").read_text().splitlines()

    def strip(lines: list[str]) -> list[str]:  # drop the seconds column
        return [",".join(v for i, v in enumerate(line.split(",")) if i != 1) for line in lines]

    assert strip(log_a) == strip(log_b)
    for (ka, va), (kb, vb) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(va, vb), ka


def test_a_batch_skipped_for_the_discriminator_changes_no_parameter_and_no_optimizer_state(make_trainer):
    trainer = make_trainer()
    trainer.d_loss.cfg = copy.copy(trainer.d_loss.cfg)
    trainer.d_loss.cfg.r1_gamma = float(
        "inf"
    )  # R1 is due at step 0: D loss inf (a config refuses it, so set after the check)
    batch = fixed_batch()
    modules = {"g": trainer.model, "d": trainer.d_global, "local": trainer.d_locals}
    before = {name: {k: v.clone() for k, v in m.state_dict().items()} for name, m in modules.items()}
    optimizer_state = {name: len(opt.state) for name, opt in trainer.optimizers.items()}
    assert trainer.train_step(batch) is None  # step 0: R1 step, non-finite
    for name, module in modules.items():
        assert all(torch.equal(before[name][k], v) for k, v in module.state_dict().items()), name
    assert (
        {name: len(opt.state) for name, opt in trainer.optimizers.items()}
        == optimizer_state
        == {n: 0 for n in optimizer_state}
    )


def test_ctrl_c_inside_a_step_checkpoints_at_the_step_boundary_and_resume_is_exact(make_trainer, tmp_path):
    straight = make_trainer(out_dir=tmp_path / "a", checkpoint_every=100)
    straight.fit(max_steps=6, progress=False)
    interrupted = make_trainer(out_dir=tmp_path / "b", checkpoint_every=100)
    update = interrupted.ema.update

    def update_then_ctrl_c(model, step):  # SIGINT after this step's optimiser and EMA updates ran
        update(model, step)
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    interrupted.ema.update = update_then_ctrl_c
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN under nohup / a background job
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(max_steps=6, progress=False)
    assert interrupted.step == 3  # step 2 finished, then stopped
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back
    resumed = make_trainer(out_dir=tmp_path / "b", resume=True, checkpoint_every=100)
    assert resumed.step == 3
    resumed.fit(max_steps=3, progress=False)
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name


def test_rows_logged_after_the_last_checkpoint_are_not_duplicated_on_resume(make_trainer, tmp_path):
    straight = make_trainer(out_dir=tmp_path / "a", checkpoint_every=3)
    straight.fit(max_steps=6, progress=False)
    killed = make_trainer(out_dir=tmp_path / "b", checkpoint_every=3)
    killed.fit(max_steps=5, progress=False)  # logs steps 1-5; the end-of-run checkpoint at 5 is removed below
    del killed
    root = tmp_path / "b" / "checkpoints"
    shutil.rmtree(root / "step-00000005")
    (root / "latest").unlink(missing_ok=True)  # as after a kill between the step-5 log row and its checkpoint
    resumed = make_trainer(out_dir=tmp_path / "b", resume=True, checkpoint_every=3)
    assert resumed.step == 3
    resumed.fit(max_steps=3, progress=False)

    def steps(folder: Path) -> list[str]:
        return [line.split(",")[0] for line in (folder / "train_log.csv").read_text().splitlines()[1:]]

    assert steps(tmp_path / "b") == steps(tmp_path / "a") == [str(i) for i in range(1, 7)]


def test_existing_run_is_not_overwritten(make_trainer, tmp_path):
    trainer = make_trainer(out_dir=tmp_path / "c", checkpoint_every=2)
    trainer.fit(max_steps=2, progress=False)
    with pytest.raises(PoseFaceError, match="already holds checkpoints; pass --resume"):
        make_trainer(out_dir=tmp_path / "c")
    with pytest.raises(PoseFaceError, match="no checkpoint to resume from"):
        make_trainer(out_dir=tmp_path / "empty", resume=True)


def test_outputs_of_a_run(make_trainer, tmp_path):
    trainer = make_trainer(out_dir=tmp_path / "d", checkpoint_every=4, image_every=4, val_every=4)
    result = trainer.fit(max_steps=4, progress=False)
    out = tmp_path / "d"
    for name in (
        "model.safetensors",
        "model.json",
        "curves.png",
        "images/step-00000004.png",
        "train_log.csv",
        "val_log.csv",
        "config.yaml",
    ):
        assert (out / name).is_file(), name
    assert set(result) == {"psnr", "ssim", "psnr_input", "ssim_input"}
    from poseface.models import load_model

    assert load_model(out / "model.safetensors").config.size == 32


def test_saved_model_carries_the_face_template_of_the_training_crops(tmp_path):
    from poseface.models import load_model
    from poseface.models.config import ModelConfig
    from poseface.train.trainer import Trainer
    from tests.train.conftest import TinyFaces, tiny_config

    template = ((10.0, 12.0), (21.0, 12.0), (15.5, 18.0), (11.0, 24.0), (20.0, 24.0))

    class FacesWithLandmarks(TinyFaces):
        def face_template(self):
            return list(template)

    for dataset, expected in ((FacesWithLandmarks(), template), (TinyFaces(), tuple(ModelConfig(size=32).template()))):
        out = tmp_path / type(dataset).__name__
        trainer = Trainer(tiny_config(out, checkpoint_every=1), dataset=dataset, val_dataset=TinyFaces(4, seed=1))
        trainer.fit(max_steps=1, progress=False)
        for path in (out / "model.safetensors", out / "checkpoints" / "step-00000001" / "model.safetensors"):
            assert np.allclose(load_model(path).config.template(), expected)
        # dlib's face ResNet cuts its chips at the template's eyes (fractions of the 32-px crop)
        eyes = trainer.cfg.losses.dlib_eyes
        assert (
            (eyes is None)
            if dataset.__class__ is TinyFaces
            else np.allclose(eyes, (10 / 32, 12 / 32, 21 / 32, 12 / 32))
        )


def test_step_batches_are_a_function_of_the_step():
    a = StepBatches(10, 2, seed=3)
    b = StepBatches(10, 2, seed=3, start_step=7)
    it_a = iter(a)
    first = [next(it_a) for _ in range(9)]
    assert next(iter(b)) == first[7]
    epoch0 = [i for batch in first[:5] for _, i in batch]
    assert sorted(epoch0) == list(range(10))  # one epoch visits every sample once
    ranks = [StepBatches(10, 2, seed=3, rank=r, world_size=2).batch(0) for r in range(2)]
    assert not set(ranks[0]) & set(ranks[1])


def test_config_errors_are_one_line(tmp_path, capsys):
    from poseface.cli import main

    config = tmp_path / "bad.yaml"
    config.write_text("train:\n  batch_sise: 4\n")
    assert main(["train", str(config)]) == 2
    err = capsys.readouterr().err
    assert "unknown key(s) batch_sise" in err and "Traceback" not in err
    config.write_text("data:\n  source: ''\ntrain:\n  device: cpu\n")
    assert main(["train", str(config), "--set", f"train.out_dir={tmp_path / 'x'}"]) == 2
    assert "data.source is empty" in capsys.readouterr().err


def test_compare_validation_draws_every_run_and_rejects_a_non_run(tmp_path):
    from poseface.imageio import read_rgb
    from poseface.train.visualize import compare_validation

    for name, offset in (("a", 0.0), ("b", 1.0)):
        run = tmp_path / name
        run.mkdir()
        rows = "\n".join(f"{s},{20 + offset + s / 100},{0.6 + s / 1000},22.0,0.65" for s in (100, 200, 300))
        (run / "val_log.csv").write_text("step,psnr,ssim,psnr_input,ssim_input\n" + rows + "\n")
    out = compare_validation({"a": tmp_path / "a", "b": tmp_path / "b"}, tmp_path / "cmp.png", "ablations")
    assert read_rgb(out).shape[2] == 3
    (tmp_path / "empty").mkdir()
    with pytest.raises(PoseFaceError, match="no val_log.csv with rows"):
        compare_validation({"x": tmp_path / "empty"}, tmp_path / "x.png")


def test_max_minutes_stops_at_a_step_boundary_with_a_checkpoint(make_trainer, tmp_path):
    out = tmp_path / "timed"
    trainer = make_trainer(out_dir=out, checkpoint_every=100, val_every=100, image_every=100)
    trainer.fit(max_steps=50, progress=False, max_minutes=1e-9)  # time is up after the first step
    assert trainer.step == 1
    for name in (
        "model.safetensors",
        "val_log.csv",
        "curves.png",
        "images/step-00000001.png",
        "checkpoints/step-00000001/state.pt",
    ):
        assert (out / name).is_file(), name
    resumed = make_trainer(out_dir=out, resume=True, checkpoint_every=100)
    assert resumed.step == 1
    with pytest.raises(PoseFaceError, match="--max-minutes 0: must be > 0"):
        resumed.fit(max_steps=1, progress=False, max_minutes=0)
