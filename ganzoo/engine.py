"""The generic training loop: discriminator steps, then a generator step, for any family.

Per batch the discriminator's stage runs; every ``d_steps`` batches (more early on with
``warmup_d_steps``, :mod:`ganzoo.critic_schedule`), and after each epoch's last batch, the
generator's stage runs. Each stage asks the family's plugin for its loss terms
(``compute_losses``), then the engine backpropagates their sum and steps that stage's optimizer. Losses stay on the device
and are read back only every ``log_every`` steps, so the loop never waits on the GPU per step.
At each epoch's end it writes a sample picture, ``generator.safetensors`` (with
``discriminator.safetensors`` from the same step beside it) and a full checkpoint;
``checkpoint_every`` adds checkpoints inside epochs and Ctrl-C or SIGTERM saves one before stopping. Each
update goes through :class:`ganzoo.guard.StepGuard`, which undoes non-finite steps on the device;
their records are read at log time and the run stops after ``max_bad_steps`` of them.
Under torchrun each process trains on its share of every batch (:mod:`ganzoo.distributed`);
process 0 alone writes files and reports.
"""

from __future__ import annotations

import json
import math
import os
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ganzoo import checkpoint as ckpt
from ganzoo import distributed, launcher, memory_floor, plugin_checks, run_folder, schedule, speed, training_log
from ganzoo.critic_schedule import d_steps_before
from ganzoo.data import memory_budget_gb
from ganzoo.errors import GanzooError, image_size_taken_from
from ganzoo.guard import StepGuard, keep_state_on_device
from ganzoo.resume import read_resume_point, recorded_data_name
from ganzoo.run_data import (data_digest, dataset_for, refuse_changed_classes, refuse_out_inside_data, sample_count,
                             shadowed_folder_note)
from ganzoo.run_lock import hold_run_lock, refuse_if_locked
from ganzoo.run_summary import data_line
from ganzoo.safefile import atomic_write_bytes, check_writable, drop_unfinished_writes, tensor_digest
from ganzoo.specs import Losses, ModelSpec
from ganzoo.stop_signals import deferred_stop

VECTOR_PLOT_POINTS = 2000
GRID_SAMPLES = 64


@dataclass
class TrainRequest:
    """What the user asked for: model, data, output folder and overrides of the defaults."""

    model: str
    out: Path
    data: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    data_root: str | None = None
    device: str | None = None
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    strict_data: bool = False


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) stopped the run after saving its position in ``checkpoint``."""

    def __init__(self, checkpoint: Path, epoch: int, step: int, batch: int = 0) -> None:
        """``epoch``: epochs done; ``batch``: batches done of the next one (the checkpoint's name counts the same)."""
        batches = f" and {batch} batch{'es' if batch != 1 else ''} of epoch {epoch + 1}" if batch else ""
        done = f"{epoch} epoch{'s' if epoch != 1 else ''}{batches}"
        super().__init__(f"interrupted after step {step} ({done} done); state saved in {checkpoint}")
        self.checkpoint, self.epoch, self.step = checkpoint, epoch, step


class DivergedError(GanzooError):
    """Too many steps had NaN or inf losses, gradients or weights; the run stopped."""


@dataclass
class TrainResult:
    """Where the run's files are and how far it got."""

    out: Path
    generator_path: Path
    epochs: int
    steps: int
    last_metrics: dict[str, float]


class Trainer:
    """One training run: builds everything from a :class:`TrainRequest` and runs the loop."""

    def __init__(self, request: TrainRequest, console: Any = None, world: distributed.World | None = None) -> None:
        import torch

        from ganzoo import build
        from ganzoo.config import refuse_pack_over_batch, renamed_loss_note, resolve_config
        from ganzoo.device import pick_device
        from ganzoo.paths import data_root, given_data_root
        from ganzoo.plugin_manager import get_manager
        from ganzoo.registry import computes_own_losses, get_model

        started = time.perf_counter()
        self.request, self.console, self.out = request, console, Path(request.out)
        self.hook = get_manager().hook
        self.world, self.main = world, world is None or world.main
        self.old_run: Path | None = None  # the earlier run's files, set aside by --overwrite (see run())
        self.device = world.device if world is not None else pick_device(request.device)
        if self.main:
            refuse_if_locked(self.out)  # at once, not after the setup; checked again under the lock in run()
            recovered = run_folder.recover_replaced_run(self.out, self._out_option())
            if recovered:
                self._say(recovered)
            self.found_checkpoints = ckpt.list_checkpoints(self.out)
        if world is not None:  # the others read the folder once process 0 has put a replaced run back
            world.any_of(False)
        resumed = read_resume_point(self.out, request.model, request.data, request.overrides) if request.resume else None
        self.model: ModelSpec = get_model(request.model) if resumed is None else resumed.model
        named = request.data or (resumed.dataset if resumed else self.model.default_dataset)
        self.dataset_name = recorded_data_name(named)
        if resumed is None:  # a run that began so (before this check) may still go on
            refuse_out_inside_data(self.out, self.dataset_name)
            shadowed = shadowed_folder_note(named) if self.main else None
            if shadowed:
                self._say(shadowed)
        # the data root a new run was given (--data-root, or $GANZOO_DATA) is kept (absolute) in checkpoints, so that
        # --resume alone finds the data again, from another shell too
        explicit_root = request.data_root or (given_data_root() if resumed is None else self._saved_data_root(resumed))
        self.data_root = str(Path(explicit_root).expanduser().resolve()) if explicit_root else None
        dataset = dataset_for(self.model, self.dataset_name)
        anchor = None  # where a decay re-planned for other --epochs on resume starts (see ganzoo.schedule)
        if resumed is None:
            self.config = resolve_config(self.model, dataset.info, request.overrides)
            build.refuse_undeclared_family_settings(self.model, self.config)
            note = renamed_loss_note(self.model, self.config)
            if note and self.main:
                self._say(note)
            chosen = speed.expand_fast(self.config, request.overrides, self.device.type, self.model.family,
                                       world.size if world is not None else 1,
                                       standard_step=not computes_own_losses(self.model))
            if chosen and self.main:
                self._say("note: --fast sets " + ", ".join(f"{key}={value}" for key, value in chosen.items()))
        else:
            self.resumed_from, self.config = resumed.path, resumed.config
            refuse_changed_classes(self.model, self.config, dataset.info, self.dataset_name)
            if resumed.skipped and self.main:
                self._say(f"note: {len(resumed.skipped)} newer checkpoint(s) could not be read whole and were "
                          f"skipped ({', '.join(path.name for path in resumed.skipped)}); the run goes on from "
                          f"{resumed.path.name}")
            anchor, note = schedule.anchor_on_resume(resumed.meta["config"], self.config, resumed.epochs_done,
                                                     resumed.meta["state"].get(schedule.ANCHOR_KEY))
            if note and self.main:
                self._say(note)
        if self.config.get("sync_bn") and world is None:  # a resumed run goes on: sync_bn cannot change on resume
            if resumed is None:
                raise GanzooError("--sync-bn shares batch-norm statistics among several processes, and this run has "
                                  "one; drop it, or train on several GPUs with --devices N.")
            if self.main:
                self._say("note: this run was started with --sync-bn on several processes; on one it has no effect")
        # a side the networks cannot take, or one too large for the memory, is said before anything else is built
        per_process = int(self.config["batch_size"]) // (world.size if world is not None else 1)
        if world is not None:
            refuse_pack_over_batch(self.config, per_process, world.size)
        # CPU processes on one machine share its memory (torchrun's LOCAL_WORLD_SIZE of them); GPUs have their own
        sharing = int(os.environ.get("LOCAL_WORLD_SIZE", 1)) if world is not None and self.device.type == "cpu" else 1
        size_from = self._image_size_source(dataset, request.overrides) if resumed is None else None
        with image_size_taken_from(size_from):  # a network refusing the data's own side says where it came from
            memory_floor.refuse_training_too_large(self.model, self.config, self.device, max(1, per_process), sharing)
            if self.main and resumed is None:  # after the settings' checks, so a mistyped setting is named first
                run_folder.refuse_overwrite(self.out, request.overwrite, self.model.name, self.dataset_name)
            if self.main:
                check_writable(self.out, self._out_option(), folder=True, create=False)  # made just before training
            torch.manual_seed(int(self.config["seed"]))
            if self.device.type == "cuda":
                torch.backends.cudnn.benchmark = True
            networks_started = time.perf_counter()
            self.generator = build.build_generator(self.model, self.config).to(self.device)
            plugin_checks.check_generator(self.model, self.config, self.generator)  # once: the data's sample shape
            self.discriminator = build.build_discriminator(self.model, self.config).to(self.device)
            plugin_checks.check_discriminator(self.model, self.config, self.generator, self.discriminator)
        # a model whose plugin computes losses never falls back to the standard step: a step it answers with None (a
        # forgotten return) is refused rather than trained as if the plugin had no compute_losses
        self.compute_losses = get_manager().subset_hook_caller(
            "compute_losses", [get_manager().get_plugin("ganzoo.defaults")]) if computes_own_losses(self.model) \
            else self.hook.compute_losses
        self._warn_of_penalties_batch_norm_mixes()
        if world is not None:  # SyncBatchNorm if asked, process 0's weights everywhere, a batch that splits evenly
            self.generator, self.discriminator = world.setup_networks(self.config, self.generator, self.discriminator)
            world.part(int(self.config["batch_size"]))
        speed.prepare_networks(self.config, self.device, self.generator, self.discriminator)
        data_started = time.perf_counter()
        budget = memory_budget_gb(self.config)  # a bad budget is refused before minutes of decoding
        loaded = self._load_data_in_turn(dataset, data_root(self.data_root))
        self.data_fingerprint = data_digest(loaded)  # as read, before any resizing or copy to the device
        self._compare_data_between_processes(sample_count(loaded))
        self.data = self._place(loaded, budget)
        self.steps_per_epoch = self.data.steps_per_epoch(int(self.config["batch_size"]))
        self.data_line = data_line(self.model.name, self.dataset_name, self.data, self.config, self.steps_per_epoch,
                                   str(self.device), world.size if world is not None else 1)
        optimizers_started = time.perf_counter()
        self.optimizers = build.build_optimizers(self.model, self.config, self.generator, self.discriminator)
        self.scalers = speed.grad_scalers(self.config, self.device, self.optimizers)
        optimizers_done = time.perf_counter()
        # plugins' running state; keys starting with "_" are not checkpointed ("_optimizers": unrolled GAN)
        self.state: dict[str, Any] = {"_optimizers": self.optimizers}
        self.data_order = torch.Generator().manual_seed(int(self.config["seed"]))
        self.epoch = self.step = self.batch_in_epoch = self.bad_steps = 0
        self.g_steps = self.d_steps_since_g = 0  # generator steps taken; discriminator steps since the last one
        self.epoch_order = self.data_order.get_state()
        self.guard = StepGuard()
        self.checked_stages: set[str] = set()  # stages whose first losses passed plugin_checks.check_losses
        if world is not None:
            self.state[distributed.WORLD_KEY] = world
            world.split_random_streams(int(self.config["seed"]))
        if resumed is not None:
            self._restore(resumed.path, resumed.meta, resumed.tensors)
            if anchor is not None:
                self.state[schedule.ANCHOR_KEY] = anchor
        for optimizer in self.optimizers.values():
            keep_state_on_device(optimizer, self.device)
        self.graphs = self._stage_graphs()
        # where the time before the first step went (the "setup" row of metrics.jsonl; the total also holds
        # reading the config, resuming and the rest)
        self.setup_seconds = {"networks": data_started - networks_started, "data": optimizers_started - data_started,
                              "optimizers": optimizers_done - optimizers_started, "total": time.perf_counter() - started}

    def _stage_graphs(self) -> Any:
        """With ``cuda_graphs``: the :class:`ganzoo.cuda_graphs.StageGraphs` that replays each stage; else None."""
        if not self.config.get("cuda_graphs"):
            return None
        from ganzoo import cuda_graphs

        reason = cuda_graphs.unsupported_reason(self.model.family, self.config, self.device.type,
                                                self.world.size if self.world is not None else 1)
        if reason:
            raise GanzooError(f"{reason}; drop --cuda-graphs.")
        cuda_graphs.make_capturable(self.optimizers)
        return cuda_graphs.StageGraphs(self.guard)

    def _image_size_source(self, dataset: Any, overrides: dict[str, Any]) -> str | None:
        """``"the images in DIR"`` (``of NAME`` for a registered set) when this new run's image side is the one its
        data gave, neither --image-size nor the model having chosen one; else None."""
        if (self.config.get("data_kind") != "images" or overrides.get("image_size") is not None
                or self.model.defaults("images").get("image_size") is not None
                or self.config.get("image_size") != dataset.info.image_size):
            return None
        return f"the images {'in' if Path(self.dataset_name).is_dir() else 'of'} {self.dataset_name}"

    def _load_data_in_turn(self, dataset: Any, root: Path | None) -> Any:
        """:meth:`_load_data`; under torchrun each node's first process loads first, with all the node's
        cores, and the other processes once every node's first process has: a download or the decoding
        of a large folder into the cache happens once per node, and the others read the result."""
        if self.world is None:
            return self._load_data(dataset, root)
        if self.world.local_rank != 0:
            self.world.wait_for_all()
            return self._load_data(dataset, root)
        try:
            data = self._load_data(dataset, root, alone=True)
        except KeyboardInterrupt:  # the others wait for this one, and got the Ctrl-C too: let them go and stop
            with suppress(RuntimeError):  # one that went at once closed its connection before the end
                self.world.wait_for_all()
            raise
        except BaseException:  # the others go on even if loading failed here: they then fail in the same words
            self.world.wait_for_all()
            raise
        self.world.wait_for_all()
        return data

    def _compare_data_between_processes(self, samples: int) -> None:
        """Under torchrun every process takes its rows of one shared order: one holding another number of samples
        would wait forever in an epoch of another length, so that is refused; other pictures under the same count (a
        node's copy differs, or its image decoder) are trained on, with a note, as each process reads its own."""
        if self.world is None:
            return
        import hashlib

        import torch

        counts = [int(count) for count in self.world.gather(torch.tensor([samples]))]
        # the fingerprint may be None (vectors, large or streamed sets): hashed as text, every process sends 32 bytes
        digests = self.world.digests(hashlib.sha256(str(self.data_fingerprint).encode()).hexdigest())
        other_count = next((rank for rank, count in enumerate(counts) if count != counts[0]), None)
        if other_count is not None:
            raise GanzooError(f"Process {other_count} reads other data than process 0 ({counts[other_count]} samples "
                              f"against {counts[0]}); every node must hold the same --data: copy the same files to "
                              f"each node, or point --data-root at a folder they share.")
        other_pictures = next((rank for rank, digest in enumerate(digests) if digest != digests[0]), None)
        if other_pictures is not None and self.main:
            self._say(f"note: process {other_pictures} reads other pictures than process 0 (the same {samples} "
                      f"samples): its node's copy of the data or its image decoder differs; each process trains on "
                      f"what it reads.")

    def _load_data(self, dataset: Any, root: Path | None, alone: bool = False) -> Any:
        """Load the data; skipped bad images are listed, or stop the run with ``strict_data``.
        ``alone``: no other process of this node is loading, so decoding may use all its cores."""
        from ganzoo.data.decoding import decoding_settings, skipped_files_told

        bar_console = self.console if self.main and self.request.progress else None
        with skipped_files_told(self._say, self.request.strict_data), \
                decoding_settings(bar_console, self.config.get("data_workers"), alone):
            data = plugin_checks.loaded(dataset, root, self.config)
        for note in getattr(data, "notes", ()):  # e.g. "streaming N images from disk (would need X GB in memory)"
            self._say(note)
        return data

    def _place(self, data: Any, budget: float) -> Any:
        """``data`` on the training device; in-memory images over ``budget`` GB (``max_memory_gb``) stay
        on the host (mapped from the cache of decoded folders) with each batch copied over, and the run
        says so."""
        from ganzoo.data import InMemoryData

        if not isinstance(data, InMemoryData) or self.device.type == "cpu":  # on the CPU the host is the device
            return data.to(self.device)
        placed = data.to(self.device, max_bytes=int(budget * 1e9))
        if placed.target is not None and self.main:
            self._say(f"keeping the {data.nbytes() / 1e9:.1f} GB of decoded images on the host (over "
                      f"max_memory_gb={budget:g}); each batch is copied to {self.device.type}")
        return placed

    def _saved_data_root(self, resumed: Any) -> str | None:
        """The data root the resumed run was started with (its --data-root or $GANZOO_DATA), while that folder is
        still there; once it is gone (the data moved), $GANZOO_DATA or the default root is used instead, with a note."""
        from ganzoo.paths import DATA_ENV, data_root

        saved = resumed.meta.get("data_root") if resumed is not None else None
        if not saved or Path(saved).is_dir():
            return saved
        if self.main:
            self._say(f"note: the data root the run started with, {saved}, is gone; the data is looked for in "
                      f"{data_root()} (--data-root or {DATA_ENV} names another)")
        return None

    def _warn_of_penalties_batch_norm_mixes(self) -> None:
        """Say once, at the start, when a gradient penalty taken image by image meets batch norm in D: in the
        standard step, and in conditional models, whose steps take the loss's penalty on (sample, label) pairs."""
        from ganzoo.adversarial import make_loss
        from ganzoo.registry import computes_own_losses
        from ganzoo.remedies import penalty_batch_norm_warning

        if not computes_own_losses(self.model) or self.model.task == "conditional":
            warning = penalty_batch_norm_warning(self.config, make_loss(self.config), self.discriminator)
            if warning:
                self._say(warning)

    def _out_option(self) -> str:
        """The option that named the run folder, for sentences about it: ``--resume`` or ``--out``."""
        return "--resume" if self.request.resume else "--out"

    def _say(self, text: str) -> None:
        """One warning line for the user (plain text: file names may hold brackets), unwrapped."""
        if self.console is not None:
            self.console.print(text, style="yellow", markup=False, soft_wrap=True)

    # -- resume ---------------------------------------------------------------------------

    def _recheck_under_lock(self) -> None:
        """Refuse what another run wrote to ``--out`` while this one set up, unlocked: a run that appeared is
        protected as in :func:`ganzoo.run_folder.refuse_overwrite`, and a resume must not go on from a checkpoint that is no
        longer the newest."""
        if not self.request.resume:
            run_folder.refuse_overwrite(self.out, self.request.overwrite, self.model.name, self.dataset_name)
        elif ckpt.list_checkpoints(self.out) != self.found_checkpoints:
            raise GanzooError(f"Another run wrote checkpoints to {self.out} while this one was setting up; resume "
                              "again to go on from the newest.")

    def _restore(self, path: Path, meta: dict[str, Any], tensors: dict[str, Any]) -> None:
        import torch

        from ganzoo.weights import check_state_dict, plugin_changed

        why = plugin_changed(self.model, meta, "resume it", "start a new run")
        for name, network in (("generator", self.generator), ("discriminator", self.discriminator)):
            saved = ckpt.subdict(tensors, f"net.{name}.")
            check_state_dict(path, network.state_dict(), saved, why=why)
            network.load_state_dict(saved)
        for stage, optimizer in self.optimizers.items():
            optimizer.load_state_dict(ckpt.optimizer_from_flat(stage, meta["optimizers"][stage], tensors))
        for stage, scaler in self.scalers.items():  # checkpoints from before scalers were saved start fresh ones
            if stage in meta.get("scalers", {}):
                scaler.load_state_dict(ckpt.scaler_from_flat(stage, meta["scalers"][stage], tensors))
        self.state.update(meta["state"])
        own = f"{ckpt.PROCESS_STATE}rank{self.world.rank}." if self.world is not None else None
        on_host = set(meta.get(ckpt.HOST_STATE_KEY, ()))  # older checkpoints: every state tensor on the device
        for prefix in ("state.", own) if own else ("state.",):  # own: this process's copies, where they differ
            # where the run kept them (checkpoints are read onto the host)
            self.state.update({key: tensor if key in on_host else tensor.to(self.device)
                               for key, tensor in ckpt.subdict(tensors, prefix).items()})
        counters = meta["counters"]
        self.epoch, self.step = counters["epoch"], counters["step"]
        self.batch_in_epoch, self.bad_steps = counters.get("batch", 0), counters.get("bad_steps", 0)
        # checkpoints from before these counters counted with a fixed d_steps from 0 in every epoch, whose last
        # few batches took no generator step
        d_steps = int(self.config["d_steps"])
        counted_before = self.epoch * (self.steps_per_epoch // d_steps) + self.batch_in_epoch // d_steps
        self.g_steps = counters.get("g_steps", counted_before)
        self.d_steps_since_g = counters.get("d_steps_since_g", self.batch_in_epoch % d_steps)
        torch.set_rng_state(tensors["rng.torch"])
        self.data_order.set_state(tensors["rng.data_order"])
        if self.device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        if self.world is not None:
            self.world.restore_random_states(tensors, int(self.config["seed"]), self.step)
        self._follow_changed_data(counters.get("samples"), counters.get("data_digest"))
        saved_by, processes = counters.get("processes", 1), self.world.size if self.world is not None else 1
        if saved_by != processes:
            self._say(f"note: {self.out} was saved by {saved_by} process(es) and resumes on {processes}: it goes on "
                      "from the same weights and optimizer state, but not bit-exactly as it would have.")

    def _follow_changed_data(self, saved_samples: int | None, saved_digest: str | None) -> None:
        """Go on with data that changed since the checkpoint (images added, removed or replaced in a folder),
        saying so; a run stopped inside an epoch starts that epoch over, since its order cannot be replayed on
        other data (its saved order state then draws the new data's order). Checkpoints from before the size
        (or the contents' digest) was kept have none to compare."""
        samples = sample_count(self.data)
        change = None
        if saved_samples is not None and saved_samples != samples:
            change = f"{saved_samples} samples then, {samples} now"
        elif saved_digest is not None and self.data_fingerprint not in (None, saved_digest):
            change = f"the same {samples} samples, other contents"
        if self.world is not None:  # process 0's data was saved: all follow its verdict, or they would disagree
            if not self.world.any_of(self.main and change is not None):  # on starting the epoch over
                return
        elif change is None:
            return
        restart = f"; epoch {self.epoch + 1} starts over on it" if self.batch_in_epoch else ""
        self.batch_in_epoch = 0
        if self.main:
            self._say(f"note: the data changed since the checkpoint ({change}); "
                      f"the run goes on with it{restart}, not exactly as it would have")

    # -- the loop -------------------------------------------------------------------------

    def _optimize(self, stage: str, batch: dict[str, Any]) -> Losses:
        if self.graphs is not None:
            return self.graphs.run(stage, batch, self.step + 1, lambda inputs: self._optimize_eagerly(stage, inputs))
        return self._optimize_eagerly(stage, batch)

    def _optimize_eagerly(self, stage: str, batch: dict[str, Any]) -> Losses:
        optimizer = self.optimizers[stage]
        optimizer.zero_grad(set_to_none=True)
        with speed.autocast(self.config, self.device):
            losses = self.compute_losses(
                model=self.model, config=self.config, generator=self.generator, discriminator=self.discriminator,
                batch=batch, stage=stage, state=self.state,
            )
        if losses is None:
            raise plugin_checks.no_losses(self.model, stage)
        if stage not in self.checked_stages:  # once per stage: the steps after pay nothing
            plugin_checks.check_losses(self.model, self.config, stage, losses)
            self.checked_stages.add(stage)
        self.guard.step(optimizer, losses.terms, self.step + 1, stage, self.scalers.get(stage),
                        self.world.average if self.world is not None else None)
        self.hook.after_step(model=self.model, config=self.config, stage=stage, generator=self.generator,
                             discriminator=self.discriminator, state=self.state)
        return losses

    def run(self) -> TrainResult:
        """Train until ``epochs`` are done, writing pictures, weights and checkpoints each epoch.

        A resumed run that stopped inside an epoch replays that epoch's data order from its saved
        start and skips the batches already done, so the result is the same as an uninterrupted run.
        A run that replaces an earlier one and fails before its first checkpoint gives the earlier one back.
        Only one run at a time writes to a folder (:mod:`ganzoo.run_lock`).
        """
        if not self.main:  # only process 0 writes
            return self._train()
        check_writable(self.out, self._out_option(), folder=True)
        with hold_run_lock(self.out):
            self._recheck_under_lock()
            for folder in (self.out, self.out / ckpt.CHECKPOINT_DIR, self.out / "samples"):
                drop_unfinished_writes(folder)  # a killed run's half-written files; no other run writes here now
            try:
                return self._train()
            except BaseException:
                if self.old_run is not None:
                    run_folder.put_old_run_back(self.out, self.old_run)
                    self.old_run = None
                    self._say("the run stopped before its first checkpoint, so the files of the run it was to "
                              f"replace are back in {self.out}")
                raise

    def _train(self) -> TrainResult:
        from ganzoo.progress import TrainingProgress

        epochs = int(self.config["epochs"])
        log_every, batch_size = int(self.config["log_every"]), int(self.config["batch_size"])
        every = int(self.config["checkpoint_every"])
        if self.main and not self.request.resume:  # an old run's files go only once the new run can start
            self.old_run = run_folder.set_old_run_aside(self.out)
        self._write_run_info()
        # rows of steps after the checkpoint are trained again; a row cut short by a kill would swallow the next
        resuming = self.request.resume and self.main
        dropped = training_log.drop_rows_after(self.out / "metrics.jsonl", self.step) if resuming else 0
        self._append_metrics({"event": "setup", **{f"{part}_seconds": round(seconds, 3)
                                                   for part, seconds in self.setup_seconds.items()}})
        if self.main and self.console is not None:
            self.console.print(self.data_line, markup=False, soft_wrap=True, highlight=False)
        if self.request.resume:
            self._append_metrics({"event": "resume", "epoch": self.epoch, "batch": self.batch_in_epoch,
                                  "step": self.step, "from": str(self.resumed_from), "dropped_rows": dropped})
            if self.main and self.console is not None:
                self.console.print(f"resuming from {self.resumed_from} (step {self.step}) up to epoch {epochs}",
                                   markup=False, soft_wrap=True, highlight=False)
        last: dict[str, float] = {}
        stopping = False  # under torchrun: every process saw the stop agreed at the last log point
        with deferred_stop(together=self.world is not None) as interrupt, TrainingProgress(
                self.console, epochs, self.steps_per_epoch, enabled=self.request.progress and self.main,
                first_epoch=self.epoch) as progress:
            while self.epoch < epochs:
                self.generator.train()
                self.discriminator.train()
                self.hook.on_epoch_start(model=self.model, config=self.config, epoch=self.epoch,
                                         optimizers=self.optimizers, state=self.state, first_batch=self.batch_in_epoch)
                sums: dict[str, tuple[Any, int]] = {}
                count, tick, epoch_start, first = 0, time.perf_counter(), time.perf_counter(), self.batch_in_epoch
                # each epoch's discriminator steps count from 0 (a checkpoint from before the epoch-end generator
                # step below may hold a count left over from the epoch before)
                if first == 0:
                    self.d_steps_since_g = 0
                self.epoch_order = self.data_order.get_state()
                for index, batch in enumerate(self._batches(batch_size)):
                    if index < first:  # done before the checkpoint this run resumed from
                        continue
                    if self.config.get("channels_last"):
                        batch = speed.to_channels_last(batch)
                    self._accumulate(sums, self._optimize("discriminator", batch))
                    self.d_steps_since_g += 1
                    # as in the WGAN authors' loop, every epoch ends with a generator step (ganzoo.critic_schedule)
                    last_batch = index + 1 == self.steps_per_epoch
                    if last_batch or self.d_steps_since_g >= d_steps_before(self.g_steps, self.config):
                        self._set_requires_grad(self.discriminator, False)
                        self._accumulate(sums, self._optimize("generator", batch))
                        self._set_requires_grad(self.discriminator, True)
                        self.g_steps += 1
                        self.d_steps_since_g = 0
                        if self.g_steps == 1:  # after the first G step: state a checkpoint cannot keep fails now
                            ckpt.check_state(self.state)
                    self.step += 1
                    self.batch_in_epoch = index + 1
                    count += 1
                    # rows at the same steps of every epoch as an uninterrupted run's, a resumed one's too
                    if (index + 1) % log_every == 0 or index + 1 == self.steps_per_epoch:
                        now = time.perf_counter()
                        last = self._log(sums, batch_size * count / max(now - tick, 1e-9))
                        progress.update(self.epoch, index + 1, last)
                        sums, count, tick = {}, 0, time.perf_counter()
                        if self.world is not None:  # all processes log at the same steps: they stop at the same one
                            stopping = self.world.any_of(interrupt.requested)
                    else:
                        progress.step(self.epoch, index + 1)
                    if self.world is None:
                        stopping = interrupt.requested
                    if index + 1 < self.steps_per_epoch:
                        checkpoint = stopping or (every and self.step % every == 0)
                        if checkpoint and count:  # the steps since the last row get theirs before a checkpoint, so
                            # a run resumed from it (after a stop or a kill) has each step in one row
                            self._log(sums, batch_size * count / max(time.perf_counter() - tick, 1e-9))
                            sums, count, tick = {}, 0, time.perf_counter()
                        if stopping:
                            raise TrainingInterrupted(self._save_checkpoint(), self.epoch, self.step, self.batch_in_epoch)
                        if checkpoint:
                            self._save_checkpoint()
                self.epoch += 1
                self.batch_in_epoch = 0
                self._end_epoch(time.perf_counter() - epoch_start, self.steps_per_epoch - first)
                if self.world is None:  # a signal during the epoch's end (pictures, checkpoint) stops here too
                    stopping = interrupt.requested
                if stopping and self.epoch < epochs:
                    raise TrainingInterrupted(ckpt.checkpoint_path(self.out, self.epoch), self.epoch, self.step)
        self._finish()
        return TrainResult(self.out, self.out / "generator.safetensors", self.epoch, self.step, last)

    def _batches(self, batch_size: int) -> Iterator[dict[str, Any]]:
        """This process's part of each batch of the epoch: all of it, its slice of the in-memory order, or its rows."""
        from ganzoo.data import InMemoryData

        if self.world is None:
            return self.data.batches(batch_size, self.data_order)
        if isinstance(self.data, InMemoryData):
            return self.data.batches(batch_size, self.data_order, part=(self.world.rank, self.world.size))
        return map(self.world.local, self.data.batches(batch_size, self.data_order))

    @staticmethod
    def _set_requires_grad(module: Any, flag: bool) -> None:
        for parameter in module.parameters():
            parameter.requires_grad_(flag)

    @staticmethod
    def _accumulate(sums: dict[str, tuple[Any, int]], losses: Losses) -> None:
        """Add each term and metric to its running sum (on the device) and count the steps it came from: with
        ``d_steps`` > 1 the generator's terms come from fewer steps than the discriminator's."""
        for name, value in {**losses.terms, **losses.metrics}.items():
            value = value.detach()
            total, steps = sums.get(name, (None, 0))
            sums[name] = (value.clone() if total is None else total + value, steps + 1)

    def _log(self, sums: dict[str, tuple[Any, int]], images_per_s: float) -> dict[str, float]:
        """Log the mean of each term and metric over the steps that gave it since the last log."""
        import torch

        self._check_guard()
        names = list(sums)
        means = torch.stack([sums[n][0].float() / sums[n][1] for n in names]) if names else None
        if means is not None and self.world is not None:
            self.world.average([means])  # over all processes: what one process with the whole batch logs
        values = means.tolist() if means is not None else []
        values = [v if math.isfinite(v) else None for v in values]  # JSON has no NaN; skipped steps are logged apart
        row = {"event": "log", "epoch": self.epoch + 1, "step": self.step, **dict(zip(names, values)),
               "images_per_s": round(images_per_s, 1)}
        self._append_metrics(row)
        return {k: v for k, v in row.items() if k not in ("event",) and v is not None}

    def _check_guard(self) -> None:
        """Record and report the updates the guard undid since the last check; stop after ``max_bad_steps``."""
        bad = self.guard.flush()
        if not bad:
            return
        self.bad_steps += len(bad)
        limit = int(self.config["max_bad_steps"])
        for item in bad:
            self._append_metrics({"event": "bad_step", "epoch": self.epoch + 1, "step": item.step, "stage": item.stage,
                                  "causes": item.causes, "bad_steps": self.bad_steps})
        self._say(f"warning: skipped {len(bad)} update(s) with NaN/inf values, first at {bad[0].describe()}; "
                  f"{self.bad_steps} of max_bad_steps={limit} so far")
        if self.bad_steps >= limit:
            kept = ckpt.list_checkpoints(self.out)
            where = f"the last good checkpoint is {kept[-1]}" if kept else "no checkpoint had been written yet"
            message = (f"Training diverged: {self.bad_steps} updates had NaN or inf values and were skipped "
                       f"(last at {bad[-1].describe()}); {where}; start again with a lower --lr (this run used "
                       f"{self.config['lr']}) or another --loss.")
            self._append_metrics({"event": "diverged", "step": self.step, "bad_steps": self.bad_steps, "message": message})
            raise DivergedError(message)

    def _append_metrics(self, row: dict[str, Any]) -> None:
        if not self.main:
            return
        with open(self.out / "metrics.jsonl", "a") as handle:
            handle.write(json.dumps({**row, "time": round(time.time(), 3)}) + "\n")

    def _write_run_info(self) -> None:
        if not self.main:
            return
        info = {"model": self.model.name, "dataset": self.dataset_name, "data_root": self.data_root, "config": self.config,
                "device": str(self.device), "processes": self.world.size if self.world is not None else 1,
                "resumed_at_epoch": self.epoch if self.request.resume else None,
                "optimizers": {stage: speed.describe_optimizer(optimizer) for stage, optimizer in self.optimizers.items()}}
        atomic_write_bytes(self.out / "run.json", (json.dumps(info, indent=2, sort_keys=True) + "\n").encode())

    # -- epoch end: pictures, weights, checkpoint -----------------------------------------

    def _end_epoch(self, seconds: float, steps_done: int) -> None:
        from ganzoo.weights import DISCRIMINATOR_FILE, DISCRIMINATOR_FORMAT, save_network

        self._append_metrics({"event": "epoch", "epoch": self.epoch, "step": self.step, "seconds": round(seconds, 3),
                              "images_per_s": round(steps_done * int(self.config["batch_size"]) / seconds, 1),
                              "lr": {stage: float(optimizer.param_groups[0]["lr"])  # the rate this epoch trained at
                                     for stage, optimizer in self.optimizers.items()}})
        if self.main:
            self._save_picture(self.out / "samples" / f"epoch_{self.epoch:03d}.png")
            save_network(self.out / "generator.safetensors", self.model, self.config, self.generator,
                         self.dataset_name, self.epoch, self.step)
            save_network(self.out / DISCRIMINATOR_FILE, self.model, self.config, self.discriminator,
                         self.dataset_name, self.epoch, self.step, DISCRIMINATOR_FORMAT)
        self._save_checkpoint()
        if self.world is not None:
            self._check_processes_agree()

    def _networks_state(self) -> dict[str, Any]:
        """Both networks' tensors under their checkpoint names (``net.generator.*``, ``net.discriminator.*``)."""
        networks = {"generator": self.generator, "discriminator": self.discriminator}
        return {f"net.{name}.{key}": value for name, net in networks.items() for key, value in net.state_dict().items()}

    def _check_processes_agree(self) -> None:
        """Log every process's weights digest (rank order) and stop if any process drifted from process 0 (a bug)."""
        digests = self.world.digests(tensor_digest(self._networks_state()))
        self._append_metrics({"event": "process_weights", "epoch": self.epoch, "sha256": digests})
        if len(set(digests)) != 1:
            other = next(rank for rank, d in enumerate(digests) if d != digests[0])
            raise GanzooError(f"Process {other} ended epoch {self.epoch} with other weights than process 0; this is a "
                              "bug in multi-process training, please report it with OUT/run.json.")

    def _save_picture(self, path: Path) -> None:
        from ganzoo import sampling, visual

        self.generator.eval()
        if self.data.info.kind == "vectors":
            fake = sampling.generate(self.model, self.config, self.generator, VECTOR_PLOT_POINTS, seed=int(self.config["seed"]))
            real = self.data.tensors["real"][:VECTOR_PLOT_POINTS]
            visual.save_vector_plot(fake, real, path, title=f"{self.model.name} on {self.dataset_name}, epoch {self.epoch}")
        elif self.data.info.kind in ("paired", "unpaired"):  # the family's rows: real A, fake B, reconstructed A...
            from ganzoo.data.translation import picture

            images, per_row = picture(self.generator, self.data)
            visual.save_image_grid(images, path, nrow=per_row)
        else:  # conditional models: one row of PICTURE_PER_CLASS images per class, named at its left
            labels = sampling.picture_labels(self.model, self.config)
            num = GRID_SAMPLES if labels is None else len(labels)
            fake = sampling.generate(self.model, self.config, self.generator, num, seed=int(self.config["seed"]), labels=labels)
            if labels is None:
                visual.save_image_grid(fake, path)
            else:
                visual.save_image_grid(fake, path, nrow=sampling.PICTURE_PER_CLASS,
                                       row_names=sampling.legend_names(self.config))
        self.generator.train()

    def _save_checkpoint(self) -> Path:
        """Save the current position; inside an epoch the data order is the epoch's start, replayed on resume."""
        import torch

        from ganzoo.weights import provenance

        self._check_guard()
        order = self.epoch_order if self.batch_in_epoch else self.data_order.get_state()
        rng = {"torch": torch.get_rng_state(), "data_order": order}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        process_state = None
        if self.world is not None:  # every process's streams; process 0's buffers (batch-norm statistics) everywhere
            rng.update(self.world.random_states())
            self.world.broadcast(t for net in (self.generator, self.discriminator) for t in net.buffers())
            process_state = self.world.process_states(  # e.g. CycleGAN's image pools, one per process
                {key: value for key, value in self.state.items()
                 if not key.startswith("_") and isinstance(value, torch.Tensor)})
        path = ckpt.checkpoint_path(self.out, self.epoch, self.batch_in_epoch)
        counters = {"epoch": self.epoch, "step": self.step, "batch": self.batch_in_epoch, "bad_steps": self.bad_steps,
                    "g_steps": self.g_steps, "d_steps_since_g": self.d_steps_since_g,
                    "processes": self.world.size if self.world is not None else 1, "samples": sample_count(self.data),
                    "data_digest": self.data_fingerprint}
        if not self.main:
            return path
        ckpt.save_checkpoint(
            path, model=self.model.name, dataset=self.dataset_name,
            config=self.config, networks={"generator": self.generator, "discriminator": self.discriminator},
            optimizers=self.optimizers, state=self.state, counters=counters, rng=rng, scalers=self.scalers,
            process_state=process_state, data_root=self.data_root, provenance=provenance(self.model),
        )
        ckpt.prune_checkpoints(self.out, int(self.config["keep_checkpoints"]))
        if self.old_run is not None:
            run_folder.drop_old_run(self.old_run)
            self.old_run = None
        return path

    def _finish(self) -> None:
        from ganzoo import visual

        if not self.main:
            return
        metrics = self.out / "metrics.jsonl"
        if metrics.exists():
            visual.save_loss_plot(metrics, self.out / "losses.png")


def train(request: TrainRequest, console: Any = None) -> TrainResult:
    """Build and run a :class:`Trainer` for ``request``; under torchrun as one of its processes (only process 0 prints)."""
    world = distributed.start(request.device)
    finished = False
    try:
        result = Trainer(request, console if world is None or world.main else None, world).run()
        finished = True
        return result
    except TrainingInterrupted:  # an agreed stop: no process leaves before process 0 has written the checkpoint
        finished = True
        raise
    except Exception as exc:  # a third-party plugin's hook that raised: one sentence naming it
        failure = plugin_checks.hook_failure(exc, request.model)
        if world is not None:
            launcher.leave_error_before_leaving(failure or exc)
        if failure is None:
            raise
        raise failure from exc
    finally:
        distributed.stop(world, together=finished)
