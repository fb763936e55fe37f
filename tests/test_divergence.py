"""The divergence guard: a NaN/inf step is not applied, is reported and counted, and too many stop the run."""

from __future__ import annotations

import json

import pytest


def _net_and_adam(seed: int = 0, fused: bool = False):
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    kernel = {"fused": True} if fused else {"foreach": True}
    return net, torch.optim.Adam(net.parameters(), lr=0.05, **kernel)


def _snapshot(net, optimizer):
    tensors = [p.detach().clone() for p in net.parameters()]
    for state in optimizer.state.values():
        tensors += [v.clone() for v in state.values()]
    return tensors


@pytest.mark.parametrize("fused", [False, True], ids=["foreach-adam", "fused-adam"])  # fused: skipped in the kernel
@pytest.mark.parametrize("bad_first", [False, True])
def test_a_nan_step_changes_neither_weights_nor_optimizer_state(bad_first, fused):
    import torch

    from ganzoo.guard import StepGuard

    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(1))
    guarded, opt_g = _net_and_adam(fused=fused)
    clean, opt_c = _net_and_adam(fused=fused)
    guard = StepGuard()
    for step in range(1, 6):
        if step == (1 if bad_first else 3):  # the guarded run gets one extra, poisoned step
            before = _snapshot(guarded, opt_g)
            opt_g.zero_grad()
            guard.step(opt_g, {"fit": guarded(x).square().mean(), "bad": guarded(x).sum() * float("nan")}, step, "d")
            after = _snapshot(guarded, opt_g)
            assert all(torch.equal(a, b) for a, b in zip(before, after))
            assert all(not t.any() for t in after[len(before):])  # state the step created is back to fresh zeros
        for net, opt in ((guarded, opt_g), (clean, opt_c)):
            opt.zero_grad()
            guard.step(opt, {"fit": net(x).square().mean()}, step, "d")
    for a, b in zip(_snapshot(guarded, opt_g), _snapshot(clean, opt_c)):
        assert torch.equal(a, b)  # skipping the bad step left no trace at all
    bad = guard.flush()
    assert [(b.step, b.causes[0]) for b in bad] == [(1 if bad_first else 3, "loss 'bad' is nan")]
    assert guard.flush() == []


def test_inf_weights_after_a_step_are_undone():
    import torch

    from ganzoo.guard import StepGuard

    net, _ = _net_and_adam()
    optimizer = torch.optim.SGD(net.parameters(), lr=1e38)
    before = _snapshot(net, optimizer)
    net(torch.ones(4, 3)).sum().mul(1e3).backward()
    guard = StepGuard()
    guard.step(optimizer, {"loss": torch.tensor(1.0, requires_grad=True)}, 7, "generator")
    assert all(torch.equal(a, b) for a, b in zip(before, _snapshot(net, optimizer)))
    assert guard.flush()[0].describe() == "step 7 (generator): the updated weights are not finite"


def test_a_diverging_run_stops_with_advice_and_keeps_good_checkpoints(cli, tmp_path):
    run = tmp_path / "run"
    result = cli("train", "gan", "--data", "ring8", "--epochs", "2", "--lr", "1e30", "--out", run, "--no-progress",
                 "--set", "max_bad_steps=6", "--set", "log_every=5", "--set", "checkpoint_every=1", ok=False)
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "Training diverged" in text and "lower --lr" in text and "another --loss" in text
    assert "warning: skipped" in text and ("is nan" in text or "is inf" in text)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    bad = [r for r in rows if r["event"] == "bad_step"]
    assert len(bad) >= 6 and all(r["causes"] and r["stage"] in ("discriminator", "generator") for r in bad)
    assert rows[-1]["event"] == "diverged" and rows[-1]["bad_steps"] == len(bad)
    import torch

    from ganzoo.checkpoint import list_checkpoints, load_checkpoint

    kept = list_checkpoints(run)
    assert kept and str(kept[-1]) in text
    for path in kept:
        _, tensors = load_checkpoint(path)
        assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
