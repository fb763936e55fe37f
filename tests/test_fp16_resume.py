"""fp16 runs resume bit-exactly: each optimizer's GradScaler state travels in the checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from test_speed_options import _fp16_runs_on_cpu


def _tensors(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def test_fp16_resume_is_bit_exact_with_the_scalers_state(cli, tmp_path, image_folder):
    if not _fp16_runs_on_cpu():
        pytest.skip("this torch has no fp16 autocast backward on the CPU")
    # lr 0.01 makes the discriminator's scaled gradients overflow in the first epoch, so its scale is
    # below the initial 2**16 when the run is split: a fresh scaler would skip other steps (checked by hand:
    # resuming with a fresh scaler changes 39 of the 54 checkpoint tensors). The small MLP keeps fp16 on CPU fast.
    common = ["train", "gan", "--data", image_folder, "--batch-size", "16", "--lr", "0.01",
              "--set", "hidden_dims=[32,64]", "--precision", "fp16", "--no-progress", "--device", "cpu"]
    cli(*common, "--epochs", "2", "--out", tmp_path / "straight")
    cli(*common, "--epochs", "1", "--out", tmp_path / "split")
    halfway = _tensors(tmp_path / "split" / "checkpoints" / "state-epoch-0001.safetensors")
    assert halfway["scaler.discriminator.scale"].item() < 2.0**16  # the state that matters was saved
    assert halfway["scaler.generator.growth_tracker"].item() == 4  # 4 generator steps, none overflowed
    cli("train", "gan", "--resume", tmp_path / "split", "--epochs", "2", "--no-progress", "--device", "cpu")
    straight = _tensors(tmp_path / "straight" / "checkpoints" / "state-epoch-0002.safetensors")
    split = _tensors(tmp_path / "split" / "checkpoints" / "state-epoch-0002.safetensors")
    assert straight.keys() == split.keys()
    for key in straight:
        assert np.array_equal(straight[key].numpy(), split[key].numpy()), key


def test_scaler_state_round_trips_through_a_checkpoint(tmp_path):
    import torch

    from ganzoo import checkpoint as ckpt

    net = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(net.parameters())
    scaler = torch.amp.GradScaler("cpu", init_scale=512.0, growth_interval=7)
    for _ in range(3):
        optimizer.zero_grad()
        scaler.scale(net(torch.ones(4, 2)).sum()).backward()
        scaler.step(optimizer)
        scaler.update()
    path = tmp_path / "state.safetensors"
    ckpt.save_checkpoint(path, model="m", dataset="d", config={}, networks={"n": net}, optimizers={"s": optimizer},
                         state={}, counters={"epoch": 0, "step": 3}, rng={}, scalers={"s": scaler})
    meta, tensors = ckpt.load_checkpoint(path)
    fresh = torch.amp.GradScaler("cpu")
    fresh.load_state_dict(ckpt.scaler_from_flat("s", meta["scalers"]["s"], tensors))
    assert fresh.state_dict() == scaler.state_dict() == {
        "scale": 512.0, "growth_factor": 2.0, "backoff_factor": 0.5, "growth_interval": 7, "_growth_tracker": 3}
