"""Training on several processes started by torchrun: one per GPU (NCCL), or several on the CPU (gloo).

torchrun sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in each process it starts; :func:`start`
reads them, joins the process group and picks the device ``cuda:LOCAL_RANK`` (or the CPU).
``--batch-size`` stays the global batch: each process takes its ``batch_size / WORLD_SIZE`` rows
of every batch, and the gradients of each stage are averaged over the processes before its
optimizer steps, so all processes keep identical weights and a run follows the same path as one
process with the whole batch (up to the order of floating-point sums).

The networks are not wrapped in ``DistributedDataParallel``. DDP averages gradients from hooks
that its own ``forward`` arms, but GAN plugins call submodules (CycleGAN's ``generator.ab`` and
``discriminator.a``), methods (the EMA's ``update``) and attributes (BEGAN's
``reconstruction_error``) of the networks: a DDP wrapper has none of them, and calling them on the
wrapped module would skip the averaging without an error. Instead
:class:`ganzoo.guard.StepGuard` calls :meth:`World.average` right after each stage's backward
on exactly the gradients that stage's optimizer uses, together with the loss values, so every
process takes the same skip-or-apply decision: one all-reduce per dtype once the backward is done,
where DDP overlaps bucketed all-reduces with it. Saved weights keep their plain names (no
``module.`` prefix).

Random numbers: the generator noise of the built-in adversarial step comes from one stream all
processes share (:func:`batch_noise` draws the whole batch's noise and keeps this process's rows);
everything else (dropout, instance noise, plugins' own draws) comes from a stream of each process's
own. Buffers (batch-norm running statistics) are taken from process 0 before each checkpoint, as
DDP does before each forward; ``sync_bn`` uses torch's SyncBatchNorm (CUDA only) for batch
statistics over the whole batch. Plugins' running state that differs between processes (CycleGAN's
image pools) is checkpointed for every process (:meth:`World.process_states`), so a resumed run
goes on exactly.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, NoReturn

from ganzoo.errors import GanzooError

if TYPE_CHECKING:
    import torch

#: Where the engine keeps the run's :class:`World` in the plugins' ``state`` (not checkpointed).
WORLD_KEY = "_world"
#: Most dimensions of a state tensor checkpointed per process (:meth:`World.process_states`).
MAX_STATE_DIMS = 8
SYNC_BN_NEEDS_CUDA = ("--sync-bn needs CUDA devices (torch's SyncBatchNorm runs on GPUs only); drop it for a run "
                      "on the CPU.")
#: Dtypes a state tensor checkpointed per process may have (their index travels between processes).
_DTYPES = ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool")


_joined = False  # whether this process joined a process group (then it ends through end_worker)


def launched() -> bool:
    """True inside a process that torchrun started for a run of more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def uses_cuda(device_name: str | None) -> bool:
    """Whether the processes of a run asked for ``--device device_name`` train on CUDA (else on the CPU)."""
    import torch

    if device_name in (None, "", "auto"):
        return torch.cuda.is_available()
    try:
        return torch.device(device_name).type == "cuda"
    except (RuntimeError, ValueError):  # not a device name: start() says so in its own sentence
        return False


def split_batch(batch_size: int, processes: int) -> int:
    """Rows of a global batch of ``batch_size`` each of ``processes`` takes; refuses a batch that does not split evenly."""
    if batch_size % processes:
        raise GanzooError(f"--batch-size {batch_size} does not split evenly over {processes} processes: it is the "
                          f"global batch; use a multiple of {processes}.")
    return batch_size // processes


def joined() -> bool:
    """True once this process has joined torchrun's process group through :func:`start`."""
    return _joined


def is_main() -> bool:
    """True in process 0 (and outside torchrun): the one that writes files and prints."""
    return int(os.environ.get("RANK", "0")) == 0


def _seed(seed: int, rank: int, step: int) -> int:
    """A 64-bit seed for process ``rank``'s own stream, apart from the user's seeds and the shared stream."""
    digest = hashlib.sha256(f"ganzoo/{seed}/{rank}/{step}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _default_rng_state(device: "torch.device") -> "torch.Tensor":
    import torch

    return torch.cuda.get_rng_state(device) if device.type == "cuda" else torch.get_rng_state()


@dataclass
class World:
    """This process's place in the run: rank, number of processes, device, and the shared noise stream."""

    rank: int
    size: int
    local_rank: int
    device: "torch.device"
    noise: Any = field(default=None, repr=False)
    _patient_group: Any = field(default=None, repr=False)

    @property
    def main(self) -> bool:
        """Process 0 writes pictures, metrics, weights and checkpoints and shows progress."""
        return self.rank == 0

    def part(self, batch_size: int) -> int:
        """Rows of each global batch this process takes; refuses a batch that does not split evenly."""
        return split_batch(batch_size, self.size)

    def local(self, batch: dict[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
        """This process's rows of a whole batch (for data sources that cannot slice their own order)."""
        rows = self.part(int(next(iter(batch.values())).shape[0]))
        return {key: value[self.rank * rows:(self.rank + 1) * rows] for key, value in batch.items()}

    def average(self, tensors: list["torch.Tensor"]) -> None:
        """Replace each tensor, in place, by its mean over all processes (one all-reduce per dtype)."""
        import torch
        import torch.distributed as dist

        by_dtype: dict[Any, list[torch.Tensor]] = {}
        for tensor in tensors:
            by_dtype.setdefault(tensor.dtype, []).append(tensor)
        for group in by_dtype.values():
            flat = torch.cat([t.reshape(-1) for t in group])
            dist.all_reduce(flat)
            flat.div_(self.size)
            for tensor, part in zip(group, flat.split([t.numel() for t in group])):
                tensor.copy_(part.view_as(tensor))

    def any_of(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any process (every process must call this at the same point)."""
        import torch
        import torch.distributed as dist

        found = torch.tensor([float(flag)], device=self.device)
        dist.all_reduce(found, op=dist.ReduceOp.MAX)
        return bool(found.item())

    def broadcast(self, tensors: Iterable["torch.Tensor"]) -> None:
        """Overwrite each tensor, in place, with process 0's values."""
        import torch.distributed as dist

        for tensor in tensors:
            dist.broadcast(tensor, src=0)

    def wait_for_all(self) -> None:
        """Return once every process has called this, however long that takes (a download, the decoding
        of a large folder): on a gloo group with a day's timeout, as NCCL's watchdog would abort a
        collective that waits ten minutes. Every process must call it at the same point."""
        import datetime

        import torch.distributed as dist

        if self._patient_group is None:
            self._patient_group = dist.new_group(backend="gloo", timeout=datetime.timedelta(days=1))
        dist.barrier(group=self._patient_group)

    def gather(self, tensor: "torch.Tensor") -> list["torch.Tensor"]:
        """Every process's copy of a same-shaped tensor, in rank order, on the CPU."""
        import torch
        import torch.distributed as dist

        local = tensor.to(self.device)
        found = [torch.empty_like(local) for _ in range(self.size)]
        dist.all_gather(found, local)
        return [t.cpu() for t in found]

    def digests(self, digest: str) -> list[str]:
        """Every process's hex digest (see :func:`ganzoo.safefile.tensor_digest`), in rank order."""
        import torch

        mine = torch.tensor(list(bytes.fromhex(digest)), dtype=torch.uint8)
        return [bytes(t.tolist()).hex() for t in self.gather(mine)]

    def process_states(self, tensors: dict[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
        """Every other process's copy (``rankR.KEY``) of the state tensors that differ between processes.

        Plugins may keep running state per process (CycleGAN's image pools hold that process's
        fakes). Process 0's copies go into the checkpoint as usual; these entries let every other
        process resume its own. Tensors equal on all processes (BEGAN's k_t) are not repeated.
        """
        from ganzoo.safefile import tensor_digest

        names = hashlib.sha256("|".join(sorted(tensors)).encode()).hexdigest()
        if len(set(self.digests(names))) > 1:
            raise GanzooError("The processes of this run keep different training-state entries, so no checkpoint can "
                              "hold them; a plugin must keep the same state keys on every process.")
        entries = {}
        for key in sorted(tensors):
            if len(set(self.digests(tensor_digest({key: tensors[key]})))) > 1:
                for rank, copy in enumerate(self._gather_any_shape(tensors[key])):
                    if rank:
                        entries[f"rank{rank}.{key}"] = copy
        return entries

    def _gather_any_shape(self, tensor: "torch.Tensor") -> list["torch.Tensor"]:
        """Every process's copy of a tensor whose shape may differ between processes, on the CPU.

        Shapes and dtypes travel first, so every process takes the same decision (a refusal included)
        and no process is left waiting in a collective the others skipped.
        """
        import torch

        dtype = str(tensor.dtype).removeprefix("torch.")
        header = torch.zeros(2 + MAX_STATE_DIMS, dtype=torch.int64)
        header[0], header[1] = tensor.dim(), _DTYPES.index(dtype) if dtype in _DTYPES else -1
        if tensor.dim() <= MAX_STATE_DIMS:
            header[2:2 + tensor.dim()] = torch.tensor(tensor.shape, dtype=torch.int64)
        headers = self.gather(header)
        dtypes = {int(found[1]) for found in headers}
        if any(int(found[0]) > MAX_STATE_DIMS for found in headers) or len(dtypes) > 1 or -1 in dtypes:
            raise GanzooError(f"A training-state tensor ({tensor.dtype}, {tensor.dim()} dimensions) cannot be "
                              f"checkpointed per process: keep it at most {MAX_STATE_DIMS} dimensions, of a torch "
                              "number type that every process shares.")
        shapes = [tuple(int(n) for n in found[2:2 + int(found[0])]) for found in headers]
        data = tensor.detach().contiguous().reshape(-1).view(torch.uint8)  # bytes: any dtype travels
        sizes = [math.prod(found) * tensor.element_size() for found in shapes]
        padded = torch.zeros(max(sizes), dtype=torch.uint8, device=data.device)
        padded[:data.numel()] = data
        return [found[:size].view(tensor.dtype).reshape(found_shape)
                for found, size, found_shape in zip(self.gather(padded), sizes, shapes)]

    def setup_networks(self, config: dict[str, Any], *networks: Any) -> list[Any]:
        """SyncBatchNorm if ``sync_bn`` asks for it, then process 0's weights and buffers everywhere."""
        import torch

        if config.get("sync_bn"):
            if self.device.type != "cuda":
                raise GanzooError(SYNC_BN_NEEDS_CUDA)
            networks = tuple(torch.nn.SyncBatchNorm.convert_sync_batchnorm(net) for net in networks)
        for net in networks:
            self.broadcast(net.state_dict().values())
        return list(networks)

    def split_random_streams(self, seed: int) -> None:
        """Start the shared noise stream where one process's stream is now, and give each process its own."""
        import torch

        self.noise = torch.Generator(self.device)
        self.noise.set_state(_default_rng_state(self.device))
        torch.manual_seed(_seed(seed, self.rank, 0))

    def random_states(self) -> dict[str, "torch.Tensor"]:
        """Checkpoint entries (``rng.`` names) for the shared noise stream and every process's own streams."""
        import torch

        states = {"noise": self.noise.get_state()}
        kinds = {"torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            kinds["cuda"] = torch.cuda.get_rng_state(self.device)
        for kind, state in kinds.items():
            for rank, gathered in enumerate(self.gather(state)):
                states[f"{kind}.rank{rank}"] = gathered
        return states

    def restore_random_states(self, tensors: dict[str, "torch.Tensor"], seed: int, step: int) -> None:
        """Set the streams saved by :meth:`random_states`; a process the checkpoint has none for starts a new one.

        Call it after the one-process states (``rng.torch``, ``rng.cuda``) are restored: a checkpoint
        of a one-process run continues its stream as the shared noise.
        """
        import torch

        self.noise.set_state(tensors["rng.noise"] if "rng.noise" in tensors else _default_rng_state(self.device))
        own = tensors.get(f"rng.torch.rank{self.rank}")
        if own is None:
            torch.manual_seed(_seed(seed, self.rank, step))
            return
        torch.set_rng_state(own)
        if self.device.type == "cuda" and f"rng.cuda.rank{self.rank}" in tensors:
            torch.cuda.set_rng_state(tensors[f"rng.cuda.rank{self.rank}"], self.device)


def start(device_name: str | None = None) -> World | None:
    """Join torchrun's process group (NCCL on CUDA, gloo on the CPU); None outside a multi-process run."""
    if not launched():
        return None
    import torch
    import torch.distributed as dist

    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    wanted = torch.device(device_name) if device_name not in (None, "", "auto") else None
    if wanted is not None and wanted.type not in ("cpu", "cuda"):
        raise GanzooError(f"Multi-process training runs on CUDA or the CPU, not {device_name!r}; use --device cuda or cpu.")
    if wanted is not None and wanted.index is not None:
        raise GanzooError(f"Under torchrun each process uses cuda:LOCAL_RANK; pass --device cuda, not {device_name!r}.")
    if uses_cuda(device_name):
        if local_rank >= torch.cuda.device_count():
            raise GanzooError(f"Process {rank} wants cuda:{local_rank} but this machine has {torch.cuda.device_count()} "
                              "GPU(s); start at most that many processes per node.")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group("nccl", device_id=device)
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    global _joined
    _joined = True
    return World(rank, size, local_rank, device)


def stop(world: World | None, together: bool = False) -> None:
    """Leave the process group (a no-op outside a multi-process run); ``together`` (a run that ended
    normally on every process) waits for all processes first, so none tears down its connections
    while another is still at work."""
    if world is None:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        if together:
            dist.barrier()
        if world._patient_group is not None:  # held by the world, its gloo threads would outlive the group
            dist.destroy_process_group(world._patient_group)
            world._patient_group = None
        dist.destroy_process_group()


def end_worker(code: int) -> NoReturn:
    """End a torchrun worker that joined a process group (or began to, and was interrupted) with exit status
    ``code``, skipping interpreter teardown.

    gloo's threads can outlive ``destroy_process_group`` (pytorch/pytorch#190489, #179291); if they
    are still running when the interpreter tears down, the process may die of SIGABRT ("terminate
    called without an active exception") after a run that succeeded, and torchrun then stops the
    other processes. Every file ganzoo writes is closed by then; only stdout and stderr need flushing.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more to say
            pass
    os._exit(code)


def batch_noise(state: dict[str, Any], rows: int, dim: int, device: "torch.device") -> "torch.Tensor":
    """Standard normal noise for this process's ``rows`` samples.

    In a multi-process run, this process's rows of one draw for the whole batch from the shared
    stream: together the processes use the noise one process with the whole batch would.
    """
    import torch

    world = state.get(WORLD_KEY)
    if world is None or world.noise is None:
        return torch.randn(rows, dim, device=device)
    whole = torch.randn(rows * world.size, dim, device=device, generator=world.noise)
    return whole[world.rank * rows:(world.rank + 1) * rows]


def batch_labels(state: dict[str, Any], rows: int, classes: int, device: "torch.device") -> "torch.Tensor":
    """Uniform class indices for this process's ``rows`` samples, drawn like :func:`batch_noise`."""
    import torch

    world = state.get(WORLD_KEY)
    if world is None or world.noise is None:
        return torch.randint(0, classes, (rows,), device=device)
    whole = torch.randint(0, classes, (rows * world.size,), device=device, generator=world.noise)
    return whole[world.rank * rows:(world.rank + 1) * rows]
