"""Full training state in one safetensors file, so ``--resume`` continues exactly where a run stopped.

Tensors: both networks, every optimizer's per-parameter state, RNG states, the fixed sampling
noise, the tensor entries of the family's ``state`` dict (in a multi-process run also the other
processes' copies of those that differ between processes) and, for fp16, each GradScaler's scale
and growth tracker. The ``__metadata__`` header holds the rest as JSON (config, counters,
optimizer hyperparameters, GradScaler factors, JSON entries of ``state``).
Files are written atomically and the newest ``keep`` are kept. Epoch ends are saved as
``state-epoch-0003.safetensors`` (3 epochs done); a position inside an epoch (``checkpoint_every``
or Ctrl-C) as ``state-epoch-0003-batch-000040.safetensors`` (3 epochs and 40 batches of the 4th).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ganzoo.errors import GanzooError, with_article
from ganzoo.safefile import WeightsError, digest_matches, load_tensors, read_metadata, save_tensors

STATE_FORMAT = "ganzoo.state/1"
#: Metadata key of the SHA-256 of the JSON part, which the tensors' digest does not cover.
JSON_DIGEST_KEY = "json_sha256"
#: What every checkpoint's JSON holds (``scalers`` came later and may be missing from old ones).
REQUIRED_META = {"model", "dataset", "config", "counters", "optimizers", "state"}
CHECKPOINT_DIR = "checkpoints"
#: Prefix of the state tensors that processes other than 0 keep for themselves (``process_state.rank1.pool_a``).
PROCESS_STATE = "process_state."
#: Metadata key of the state tensors a run on an accelerator kept on the host: a resume puts the others back on the
#: training device (checkpoints are read onto the host), and these, such as a random generator's state, where they
#: were. Empty for a run on the CPU, whose resume on an accelerator puts every state tensor there.
HOST_STATE_KEY = "host_state"
_NAME = re.compile(r"^state-epoch-(\d+)(?:-batch-(\d+))?\.safetensors$")


def checkpoint_path(out: Path, epoch: int, batch: int = 0) -> Path:
    """``OUT/checkpoints/state-epoch-EEEE[-batch-BBBBBB].safetensors`` for ``epoch`` epochs and ``batch`` batches done."""
    suffix = f"-batch-{batch:06d}" if batch else ""
    return out / CHECKPOINT_DIR / f"state-epoch-{epoch:04d}{suffix}.safetensors"


def list_checkpoints(out: Path) -> list[Path]:
    """Checkpoints of a run folder, oldest first."""
    folder = out / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [((int(m.group(1)), int(m.group(2) or 0)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def load_latest_checkpoint(out: Path) -> tuple[Path, dict[str, Any], dict[str, Any], list[Path]]:
    """``(path, meta, tensors, skipped)`` of the newest checkpoint that loads whole; the damaged newer ones are
    ``skipped`` (newest first), not used, and named so the user knows how far back the run goes."""
    if not out.is_dir():
        raise WeightsError(f"{out} does not exist; pass --resume the --out folder of the run to continue.")
    skipped = []
    for path in reversed(list_checkpoints(out)):
        try:
            return (path, *load_checkpoint(path), skipped)
        except WeightsError:
            skipped.append(path)
    if skipped:
        raise WeightsError(f"No usable checkpoint in {out / CHECKPOINT_DIR}: all {len(skipped)} there are damaged "
                           f"({', '.join(p.name for p in reversed(skipped))}), so the run cannot go on; start it again "
                           "with --overwrite in place of --resume.")
    raise WeightsError(f"No usable checkpoint in {out / CHECKPOINT_DIR}; start a new run without --resume, or pass the run's --out folder.")


def check_state(state: dict[str, Any]) -> None:
    """Refuse a training ``state`` entry a checkpoint cannot keep (a plugin's set or object), naming its key,
    so a run fails at its first step rather than losing an epoch when its first checkpoint is written."""
    import torch

    for key, value in state.items():
        if key.startswith("_") or isinstance(value, torch.Tensor):
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise GanzooError(f"Training state[{key!r}] holds {with_article(type(value).__name__)}, which a checkpoint cannot "
                              f"keep; the plugin that sets it must store a tensor or JSON values (numbers, strings, "
                              f"lists, dicts), or name it {'_' + key!r} to keep it out of checkpoints.") from None


def _split_state(prefix: str, values: dict[str, Any], tensors: dict[str, Any]) -> dict[str, Any]:
    """Move tensor entries of ``values`` into ``tensors`` under ``prefix``; return the JSON-able rest."""
    import torch

    rest = {}
    for key, value in values.items():
        if key.startswith("_"):
            continue
        if isinstance(value, torch.Tensor):
            tensors[f"{prefix}{key}"] = value
        else:
            rest[key] = value
    return rest


def optimizer_to_flat(stage: str, optimizer: Any, tensors: dict[str, Any]) -> dict[str, Any]:
    """Flatten an optimizer's state_dict: tensors into ``tensors``, the rest returned as JSON."""
    state_dict = optimizer.state_dict()
    json_state = {}
    for param_id, entries in state_dict["state"].items():
        json_state[str(param_id)] = _split_state(f"optim.{stage}.{param_id}.", entries, tensors)
    return {"param_groups": state_dict["param_groups"], "state": json_state}


def optimizer_from_flat(stage: str, flat: dict[str, Any], tensors: dict[str, Any]) -> dict[str, Any]:
    """Rebuild the optimizer state_dict written by :func:`optimizer_to_flat`."""
    state: dict[int, dict[str, Any]] = {int(pid): dict(values) for pid, values in flat["state"].items()}
    prefix = f"optim.{stage}."
    for name, tensor in tensors.items():
        if name.startswith(prefix):
            pid, key = name[len(prefix):].split(".", 1)
            state.setdefault(int(pid), {})[key] = tensor
    return {"state": state, "param_groups": flat["param_groups"]}


def scaler_to_flat(stage: str, scaler: Any, tensors: dict[str, Any]) -> dict[str, Any]:
    """A GradScaler's state: scale (float32) and growth tracker (int32) into ``tensors``, the factors returned as JSON."""
    import torch

    state = scaler.state_dict()
    tensors[f"scaler.{stage}.scale"] = torch.tensor(state.pop("scale"), dtype=torch.float32)
    tensors[f"scaler.{stage}.growth_tracker"] = torch.tensor(state.pop("_growth_tracker"), dtype=torch.int32)
    return state


def scaler_from_flat(stage: str, flat: dict[str, Any], tensors: dict[str, Any]) -> dict[str, Any]:
    """The GradScaler ``state_dict`` written by :func:`scaler_to_flat`."""
    return {**flat, "scale": float(tensors[f"scaler.{stage}.scale"]),
            "_growth_tracker": int(tensors[f"scaler.{stage}.growth_tracker"])}


def save_checkpoint(path: Path, *, model: str, dataset: str, config: dict[str, Any], networks: dict[str, Any],
                    optimizers: dict[str, Any], state: dict[str, Any], counters: dict[str, Any],
                    rng: dict[str, Any], scalers: dict[str, Any] | None = None,
                    process_state: dict[str, Any] | None = None, data_root: str | None = None,
                    provenance: dict[str, str] | None = None) -> None:
    """Write the whole training state atomically to ``path``.

    ``scalers``: fp16 GradScalers by stage; ``process_state``: other processes' own copies of state
    tensors (``rankR.KEY``, see :meth:`ganzoo.distributed.World.process_states`); ``data_root``: the
    ``--data-root`` the run was started with (absolute), so ``--resume`` finds the data without it;
    ``provenance``: the model's plugin distribution and version (:func:`ganzoo.weights.provenance`), so that a
    resume its plugin's new networks do not fit names the version that saved it.
    """
    check_state(state)
    tensors: dict[str, Any] = {}
    for net_name, module in networks.items():
        for key, value in module.state_dict().items():
            tensors[f"net.{net_name}.{key}"] = value
    optim_json = {stage: optimizer_to_flat(stage, opt, tensors) for stage, opt in optimizers.items()}
    state_json = _split_state("state.", state, tensors)
    scalers_json = {stage: scaler_to_flat(stage, scaler, tensors) for stage, scaler in (scalers or {}).items()}
    for key, value in rng.items():
        tensors[f"rng.{key}"] = value
    for key, value in (process_state or {}).items():
        tensors[f"{PROCESS_STATE}{key}"] = value
    on_accelerator = not all(value.is_cpu for key, value in tensors.items() if key.startswith("net."))
    host_state = sorted(key for key, value in state.items()
                        if on_accelerator and not key.startswith("_") and getattr(value, "is_cpu", False))
    meta = {"model": model, "dataset": dataset, "config": config, "counters": counters,
            "optimizers": optim_json, "state": state_json, "scalers": scalers_json, HOST_STATE_KEY: host_state}
    if data_root is not None:
        meta["data_root"] = data_root
    meta.update(provenance or {})
    text = json.dumps(meta)
    save_tensors(path, tensors, {"format": STATE_FORMAT, "json": text, JSON_DIGEST_KEY: _sha256(text)}, with_digest=True)


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(meta, tensors)`` of a checkpoint written by :func:`save_checkpoint`."""
    metadata = read_metadata(path)
    if metadata.get("format") != STATE_FORMAT:
        raise WeightsError(f"{path} is not a ganzoo training checkpoint; --resume takes the --out folder of a ganzoo run.")
    text = metadata.get("json", "")
    try:
        meta = json.loads(text)
    except ValueError:
        meta = None
    sealed = JSON_DIGEST_KEY not in metadata or metadata[JSON_DIGEST_KEY] == _sha256(text)  # older ones have none
    if not sealed or not _well_formed(meta):
        raise WeightsError(f"{path} holds a damaged training state; resume from an older checkpoint.")
    tensors = load_tensors(path)
    if not digest_matches(metadata, tensors):
        raise WeightsError(f"{path} holds tensors that do not match their checksum; resume from an older checkpoint.")
    return meta, tensors


def _well_formed(meta: Any) -> bool:
    """Whether checkpoint JSON has every part, of the type the trainer reads, so a resume never dies on it."""
    from ganzoo.setting_checks import is_whole

    def whole(value: Any) -> bool:
        return is_whole(value) and value >= 0

    if not isinstance(meta, dict) or not REQUIRED_META <= meta.keys():
        return False
    counters, optimizers = meta["counters"], meta["optimizers"]
    return (isinstance(meta["model"], str) and isinstance(meta["dataset"], str)
            and all(isinstance(meta.get(key, {}), dict) for key in ("config", "counters", "state", "scalers"))
            and isinstance(meta.get("data_root", ""), str)
            and whole(counters.get("epoch")) and whole(counters.get("step"))
            and all(whole(counters.get(key, 0)) for key in ("batch", "bad_steps", "processes", "samples", "g_steps",
                                                       "d_steps_since_g"))
            and isinstance(counters.get("data_digest", ""), (str, type(None)))
            and isinstance(optimizers, dict)
            and all(isinstance(flat, dict) and isinstance(flat.get("param_groups"), list)
                    and isinstance(flat.get("state"), dict) for flat in optimizers.values()))


def prune_checkpoints(out: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints."""
    for old in list_checkpoints(out)[:-keep]:
        old.unlink(missing_ok=True)


def subdict(tensors: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Entries of ``tensors`` under ``prefix``, with the prefix removed."""
    return {name[len(prefix):]: value for name, value in tensors.items() if name.startswith(prefix)}
