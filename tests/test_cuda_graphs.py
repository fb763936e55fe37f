"""CUDA graph replay of training stages: refused with one sentence where it cannot work; on a GPU,
replayed steps equal eager ones (new batches copied in, the guard's records kept per step)."""

from __future__ import annotations

import copy
import json

import pytest

from ganzoo.cuda_graphs import unsupported_reason

needs_cuda = pytest.mark.skipif("not __import__('torch').cuda.is_available()", reason="needs a CUDA GPU")


def test_unsupported_runs_get_a_reason():
    plain = {"loss": "ns", "precision": "fp32", "with": []}
    assert unsupported_reason("dcgan", plain, "cuda", 1) is None
    assert "CUDA device" in unsupported_reason("dcgan", plain, "cpu", 1)
    assert "several processes" in unsupported_reason("dcgan", plain, "cuda", 2)
    assert "cyclegan" in unsupported_reason("cyclegan", plain, "cuda", 1)
    assert "began" in unsupported_reason("gan", {**plain, "loss": "began"}, "cuda", 1)
    assert "bf16" in unsupported_reason("gan", {**plain, "precision": "fp16"}, "cuda", 1)
    assert "ema" in unsupported_reason("gan", {**plain, "with": ["ema"]}, "cuda", 1)
    assert "instance_noise" in unsupported_reason("gan", {**plain, "instance_noise": 0.1}, "cuda", 1)
    assert "decay_epochs" in unsupported_reason("gan", {**plain, "decay_epochs": 2}, "cuda", 1)
    assert "reuse_fake" in unsupported_reason("gan", {**plain, "reuse_fake": True}, "cuda", 1)


def test_cuda_graphs_on_the_cpu_is_refused_in_one_sentence(cli, tmp_path):
    result = cli("train", "gan", "--data", "ring8", "--epochs", "1", "--cuda-graphs", "--device", "cpu",
                 "--out", tmp_path / "run", "--no-progress", ok=False)
    assert result.exit_code != 0
    assert "CUDA graphs need a CUDA device; drop --cuda-graphs." in result.output


def _linear_stage(model, optimizer, guard, step_of):
    from ganzoo.specs import Losses

    def eager(batch):
        optimizer.zero_grad(set_to_none=True)
        loss = ((model(batch["x"]) - batch["y"]) ** 2).mean()
        guard.step(optimizer, {"loss": loss}, step_of(), "discriminator")
        return Losses({"loss": loss}, {"mean": model.weight.detach().mean().reshape(())})

    return eager


@needs_cuda
@pytest.mark.parametrize("fused", [True, False], ids=["fused-adam", "foreach-adam"])
def test_replayed_stage_equals_eager_steps_and_keeps_each_guard_record(fused):
    import torch

    from ganzoo.cuda_graphs import StageGraphs, make_capturable
    from ganzoo.guard import StepGuard, keep_state_on_device

    torch.manual_seed(0)
    device = torch.device("cuda")
    runs = []
    for _ in range(2):  # eager, then graphed
        model = torch.nn.Linear(16, 1).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05, fused=fused, foreach=None if fused else True)
        keep_state_on_device(optimizer, device)
        runs.append((model, optimizer, StepGuard()))
    runs[1][0].load_state_dict(copy.deepcopy(runs[0][0].state_dict()))  # both start from the same weights
    make_capturable({"discriminator": runs[1][1]})
    gen = torch.Generator(device="cpu").manual_seed(1)
    batches = [{"x": torch.randn(32, 16, generator=gen).to(device), "y": torch.randn(32, 1, generator=gen).to(device)}
               for _ in range(10)]
    batches[6]["x"][0, 0] = float("nan")  # step 7 must be skipped, in the graph as eagerly
    results = []
    for model, optimizer, guard in runs:
        graphs = StageGraphs(guard) if model is runs[1][0] else None
        step = {"n": 0}
        eager = _linear_stage(model, optimizer, guard, lambda: step["n"])
        losses = []
        for batch in batches:
            step["n"] += 1
            out = graphs.run("discriminator", batch, step["n"], eager) if graphs else eager(batch)
            losses.append(out.terms["loss"].item())
        results.append((model.weight.detach().clone(), losses, [b.step for b in guard.flush()]))
    (w_eager, loss_eager, bad_eager), (w_graph, loss_graph, bad_graph) = results
    assert bad_eager == bad_graph == [7]
    assert loss_graph[3:] != [loss_graph[3]] * 7  # replays saw new batches, not the captured one again
    assert loss_graph == pytest.approx(loss_eager, rel=1e-5, nan_ok=True)
    assert torch.allclose(w_graph, w_eager, rtol=1e-5, atol=1e-6)


@needs_cuda
def test_dcgan_trains_with_cuda_graphs_through_the_command(cli, image_folder, tmp_path):
    import torch
    from safetensors.torch import load_file

    run = tmp_path / "run"
    cli("train", "dcgan", "--data", image_folder, "--image-size", "16", "--epochs", "2", "--batch-size", "4",
        "--set", "g_width=8", "--set", "d_width=8", "--set", "log_every=1", "--cuda-graphs", "--device", "cuda",
        "--out", run, "--no-progress")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    logs = [r for r in rows if r["event"] == "log"]
    assert len(logs) >= 8 and not [r for r in rows if r["event"] == "bad_step"]
    assert len({r["d_real"] for r in logs}) == len(logs)  # every step's own loss, not one replayed value
    weights = load_file(str(run / "generator.safetensors"))
    assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point())
