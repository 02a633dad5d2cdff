"""Shared PyTorch-Ignite machinery: device choice, seeded deterministic engines, evaluator engines, progress,
per-epoch logs, checkpoints every epoch, and resume.

Progress: one plain line per epoch on stderr, with a live bar within each epoch when stderr is a terminal (bars
redrawn with carriage returns would fill a log file with frames); nothing when quiet (`set_quiet(True)`,
`progress=False`, or the environment variable VEIL_NO_PROGRESS=1).

Every torch model in veil (AAE, MLP, CNN, ConvMixer, ViT) trains through `fit_engine`, so all of them get the same
crash safety: a run killed at any point and resumed from its last checkpoint reaches the same weights as an
uninterrupted run with the same seed (DeterministicEngine re-seeds every epoch from the seed and the epoch number).

They also train alike in a run of several processes (`veil.distributed`): each process takes its shard of every
epoch (`shuffled_loader`), the networks a step calls average their gradients (`distribute`: DistributedDataParallel),
the metrics of the losses and of the evaluators sum over the processes (Ignite's metrics do), and rank 0 alone
writes the checkpoints and the log and shows progress. A run resumes at the number of processes it started with.
"""
from __future__ import annotations

import copy
import io
import os
import random
import secrets
import sys
from pathlib import Path

import ignite.distributed as idist
import numpy as np
import torch
from ignite.engine import DeterministicEngine, Engine, Events, create_supervised_evaluator
from ignite.handlers import Checkpoint, DiskSaver, Timer, global_step_from_engine
from ignite.handlers.checkpoint import BaseSaveHandler
from ignite.metrics import Accuracy, Average, Loss, RunningAverage

from veil.errors import VeilError
from veil.io.write import make_private, private_dir, write_json

CHECKPOINT_DIR = "checkpoints"
#: in a training run's work folder: the seed the run drew when it was given none (owner-only, like the checkpoints)
SEED_FILE = "training-seed.json"
#: added to the seed once per rank: each process draws its own dropout, noise and mixing in a run of several
RANK_SEED_STRIDE = 100_003
#: the range of an engine's per-epoch seeds: with the rank's and the epoch's offsets, below NumPy's legacy limit 2**32
ENGINE_SEEDS = 2 ** 31
_QUIET = False


def set_quiet(quiet: bool = True) -> None:
    """Silence (or restore) training progress for this process: the hook for a `--quiet` flag."""
    global _QUIET
    _QUIET = bool(quiet)


def progress_mode(progress: bool = True) -> str | None:
    """"bar" (and epoch lines) on a terminal, "lines" (one per epoch) otherwise, None when off or silenced, and on
    every process but rank 0 of a run of several."""
    if not progress or _QUIET or os.environ.get("VEIL_NO_PROGRESS") == "1" or idist.get_rank() > 0:
        return None
    return "bar" if sys.stderr.isatty() else "lines"


def tensor_loader(*arrays, batch_size: int, shuffle: bool, drop_last: bool = False) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(_dataset(arrays), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)


def _dataset(arrays) -> torch.utils.data.TensorDataset:
    return torch.utils.data.TensorDataset(*[torch.as_tensor(np.asarray(a)) for a in arrays])


def shuffled_loader(*arrays, batch_size: int, seed: int, drop_last: bool = False) -> torch.utils.data.DataLoader:
    """Training batches, in a new order every epoch. In a run of N processes, each takes its shard of every epoch
    (a DistributedSampler seeded with `seed`; `fit_engine` re-shuffles it each epoch) in batches of
    batch_size // N, so that a step still learns from `batch_size` samples in all (rounded down to a multiple of N);
    a shard is padded with a few repeated samples when N does not divide the data."""
    world = idist.get_world_size()
    if world == 1:
        return tensor_loader(*arrays, batch_size=batch_size, shuffle=True, drop_last=drop_last)
    if batch_size < world:
        raise VeilError(f"a batch of {batch_size} cannot be shared among {world} processes (each takes "
                        "batch_size // processes samples per step)")
    dataset = _dataset(arrays)
    sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=world, rank=idist.get_rank(), seed=seed)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size // world, sampler=sampler, drop_last=drop_last)


def shard_loader(*arrays, batch_size: int) -> torch.utils.data.DataLoader:
    """Evaluation batches of this process's share: every N-th sample in a run of N processes, all of them otherwise.
    Ignite's metrics sum their counts over the processes, so every rank gets the figures of the whole set, each
    sample counted once."""
    rank, world = idist.get_rank(), idist.get_world_size()
    return tensor_loader(*[np.asarray(a)[rank::world] for a in arrays], batch_size=batch_size, shuffle=False)


class PartBatches:
    """(x, y) batches of a set read a part at a time (the shards of a folder), for Ignite: `read_part(i)` gives
    part i's samples and labels, `sizes` how many each part holds, `chosen` which samples (of all, in order) to
    use. Only one part is in memory. With `shuffle`, each epoch visits the parts in a new order and shuffles inside
    each, drawn from (`seed`, the epoch: `set_epoch`, which `fit_engine` calls as each epoch starts), so that a
    resumed run sees each epoch's order again; batches never span two parts."""

    def __init__(self, read_part, sizes: list[int], chosen: np.ndarray, batch_size: int, shuffle: bool = False,
                 prepare=lambda X: X, seed: int = 0):
        self.read_part, self.batch_size, self.shuffle, self.prepare = read_part, batch_size, shuffle, prepare
        self.seed, self.epoch = seed, 0
        edges = np.cumsum([0, *sizes])
        self.chosen = [np.flatnonzero(chosen[start:stop]) for start, stop in zip(edges[:-1], edges[1:])]

    def __len__(self) -> int:
        return sum(-(-len(kept) // self.batch_size) for kept in self.chosen)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.chosen)) if self.shuffle else range(len(self.chosen))
        for part in order:
            kept = self.chosen[part]
            if not len(kept):
                continue
            X, y = self.read_part(part)
            X, y = torch.as_tensor(self.prepare(X[kept])), torch.as_tensor(y[kept])
            index = torch.as_tensor(rng.permutation(len(kept)) if self.shuffle else np.arange(len(kept)))
            for start in range(0, len(kept), self.batch_size):
                batch = index[start:start + self.batch_size]
                yield X[batch], y[batch]


def check_single_process(what: str) -> None:
    """Refuse a run of several processes for work that trains in one (naming it)."""
    if idist.get_world_size() > 1:
        raise VeilError(f"{what} trains in one process (drop --nproc, or run it without torchrun)")


def distribute(module: torch.nn.Module) -> torch.nn.Module:
    """What a training step calls: in a run of several processes, `module` inside DistributedDataParallel
    (`idist.auto_model`), which averages the gradients over the processes in every backward pass; otherwise the
    module itself. Evaluation, checkpoints and saving use the module itself."""
    return idist.auto_model(module) if idist.get_world_size() > 1 else module


def autocast(device: torch.device, bf16: bool):
    """The context of a training step's forward passes: bfloat16 autocast with `bf16` (weights, gradients and
    optimiser states stay float32; no loss scaling is needed for bfloat16), else nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def check_bf16(device: torch.device) -> None:
    """Refuse bfloat16 training where autocast cannot do it."""
    supported = (torch.cuda.is_bf16_supported() if device.type == "cuda"
                 else torch.amp.is_autocast_available(device.type))
    if not supported:
        raise VeilError(f"bf16 training is not supported on {device} here (drop --bf16)")


class _EngineState:
    """The trainer's epoch/iteration counters without the RNG snapshot (it holds NumPy objects that a
    weights-only load refuses; we only ever resume at epoch boundaries, where the engine re-seeds anyway)."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def state_dict(self):
        return {k: v for k, v in self.engine.state_dict().items() if k != "rng_states"}

    def load_state_dict(self, state):
        self.engine.load_state_dict({**state, "rng_states": None})


class PrivateDiskSaver(DiskSaver):
    """Ignite's atomic DiskSaver, but a checkpoint holds the weights (an AAE's decoder: the private key), so each file
    is made owner-only; Ignite itself widens it to group/others-readable."""

    def __call__(self, checkpoint, filename: str, metadata=None) -> None:
        if idist.get_rank() != self.save_on_rank:
            return
        path = Path(self.dirname) / filename
        try:
            super().__call__(checkpoint, filename, metadata)
        except OSError as exc:  # a full disk is the user's problem to fix, not a traceback
            raise VeilError(f"cannot write checkpoint ({exc.strerror or exc})", path) from None
        make_private(path)


def make_trainer(step, seed: int) -> DeterministicEngine:
    """A DeterministicEngine whose per-epoch seeds derive from `seed` (not from a random draw), and from the rank
    in a run of several processes. Ignite seeds NumPy's legacy generator with them, which takes 32 bits, so a drawn
    63-bit seed enters here reduced (the networks' initialisation, the holdout and the shuffling take it whole)."""
    trainer = DeterministicEngine(step)

    @trainer.on(Events.STARTED)
    def _fix_seed(engine):
        engine.state.seed = int(seed) % ENGINE_SEEDS + RANK_SEED_STRIDE * idist.get_rank()

    return trainer


def latest_checkpoint(out_dir) -> Path | None:
    """The newest checkpoint; older ones a killed run left behind are removed."""
    folder = Path(out_dir) / CHECKPOINT_DIR
    found = sorted(folder.glob("*.pt"), key=_epoch_of) if folder.is_dir() else []
    for stale in found[:-1]:
        stale.unlink(missing_ok=True)
    return found[-1] if found else None


def _epoch_of(path: Path) -> int:
    suffix = path.stem.rsplit("_", 1)[-1]
    return int(suffix) if suffix.isdigit() else -1


def fit_engine(trainer: Engine, loader, *, epochs: int, out_dir, to_save: dict, loss_names: list[str],
               resume: bool = False, progress: bool = True, evaluate=None,
               log_name: str = "training_log.json") -> list[dict]:
    """Run `trainer` for `epochs` with live losses, an epoch log, a checkpoint per epoch, and optional resume.

    `evaluate(epoch) -> dict` adds validation figures to each epoch's log row (an evaluator engine's metrics; the
    handlers on that engine, such as early stopping, run within it). Returns the log rows. In a run of several
    processes, every process calls this alike; `out_dir` is rank 0's, and only rank 0 writes.
    """
    out_dir = Path(out_dir)
    log_path = out_dir / log_name
    to_save = {**to_save, "trainer": _EngineState(trainer)}
    rows: list[dict] = []
    if resume:
        rows = _resume(out_dir, to_save, log_path, epochs)
    for name in loss_names:
        RunningAverage(output_transform=_pick(name), alpha=0.9).attach(trainer, f"running_{name}")
        Average(output_transform=_pick(name)).attach(trainer, name)
    mode = progress_mode(progress)
    if mode == "bar":
        from ignite.handlers import ProgressBar

        ProgressBar(persist=False).attach(trainer, metric_names=[f"running_{n}" for n in loss_names])
    timer = Timer().attach(trainer, start=Events.EPOCH_STARTED)
    sampler = getattr(loader, "sampler", None)
    if not isinstance(sampler, torch.utils.data.DistributedSampler):
        sampler = loader if hasattr(loader, "set_epoch") else None  # a loader that draws its own order (PartBatches)
    if sampler is not None:
        trainer.add_event_handler(Events.EPOCH_STARTED, lambda engine: sampler.set_epoch(engine.state.epoch))

    @trainer.on(Events.EPOCH_COMPLETED)
    def _log(engine):
        row = {"epoch": engine.state.epoch, **{n: float(engine.state.metrics[n]) for n in loss_names}}
        if evaluate is not None:
            row.update(evaluate(engine.state.epoch))
        row["epoch_s"] = round(timer.value(), 3)
        rows.append(row)
        if idist.get_rank() == 0:
            write_json(log_path, {"epochs": rows})
        if mode:  # on a terminal, after the bar of the epoch has cleared itself
            print(epoch_line(row, engine.state.max_epochs), file=sys.stderr, flush=True)

    saver = PrivateDiskSaver(str(private_dir(out_dir / CHECKPOINT_DIR)), require_empty=False, atomic=True)
    # registered after the log, so a checkpoint always has its log row on disk before it
    trainer.add_event_handler(Events.EPOCH_COMPLETED, Checkpoint(to_save, saver, filename_prefix="",
                                                                  n_saved=1, global_step_transform=lambda e, _: e.state.epoch))
    if trainer.state.epoch >= epochs and trainer.state.iteration > 0:
        return rows
    trainer.run(loader, max_epochs=epochs)
    return rows


def epoch_line(row: dict, epochs: int) -> str:
    """One log row as a short line: `epoch 3/30  loss 0.4120  val_accuracy 0.9310  2.1s`."""
    figures = "  ".join(f"{k} {v:.4f}" for k, v in row.items() if k not in ("epoch", "epoch_s"))
    return f"epoch {row['epoch']}/{epochs}  {figures}  {row['epoch_s']:.1f}s"


class MemorySaver(BaseSaveHandler):
    """Ignite save handler keeping checkpoints in memory. Saved itself within the periodic checkpoint, so the best
    epoch's weights survive a resume; files written beside it could be lost between two checkpoints."""

    def __init__(self):
        self.saved: dict[str, dict] = {}

    def __call__(self, checkpoint, filename: str, metadata=None) -> None:
        self.saved[filename] = copy.deepcopy(checkpoint)

    def remove(self, filename: str) -> None:
        self.saved.pop(filename, None)

    def state_dict(self):
        return {"saved": self.saved}

    def load_state_dict(self, state):
        self.saved = dict(state["saved"])


def keep_best(module: torch.nn.Module, trainer: Engine, score_function) -> Checkpoint:
    """A Checkpoint of `module` at the best `score_function(evaluator)` so far, named by the trainer's epoch; attach
    it to the validation evaluator's COMPLETED event. Checkpoint it too (`to_save`) to resume with the same best."""
    return Checkpoint({"model": module}, MemorySaver(), filename_pattern="{global_step}", n_saved=1,
                      score_function=score_function, global_step_transform=global_step_from_engine(trainer))


def restore_best(best: Checkpoint, module: torch.nn.Module) -> int:
    """Load the best epoch's weights into `module`; returns that epoch (0 when none was scored)."""
    name = best.last_checkpoint
    if name is None:
        return 0
    Checkpoint.load_objects({"model": module}, best.save_handler.saved[str(name)])
    return int(name)


def make_evaluator(module: torch.nn.Module, device, loss_fn=torch.nn.functional.cross_entropy) -> Engine:
    """An Ignite evaluator engine with accuracy and loss for a classifier network."""
    return create_supervised_evaluator(module, metrics={"accuracy": Accuracy(), "loss": Loss(loss_fn)}, device=device,
                                       non_blocking=True)


def run_evaluator(evaluator: Engine, loader, prefix: str) -> dict:
    """Run `evaluator` over `loader`; its metrics as floats named `{prefix}_{metric}`."""
    evaluator.run(loader)
    return {f"{prefix}_{name}": float(value) for name, value in evaluator.state.metrics.items()}


def _resume(out_dir: Path, to_save: dict, log_path: Path, epochs: int) -> list[dict]:
    checkpoint = latest_checkpoint(out_dir) if idist.get_rank() == 0 else None
    saved = _from_rank0(checkpoint)
    if not saved:
        return []
    try:
        state = torch.load(io.BytesIO(saved), map_location="cpu", weights_only=True)
        Checkpoint.load_objects(to_load=to_save, checkpoint=state)
    except Exception as exc:  # a checkpoint from another configuration, or a damaged file
        raise VeilError(f"cannot resume from this checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                        checkpoint) from None
    engine = to_save["trainer"].engine
    done = engine.state.epoch
    engine.state.max_epochs = max(epochs, done)  # allows extending a finished run with a larger --epochs
    if log_path.exists():
        from veil.io.read import read_json

        return [row for row in read_json(log_path).get("epochs", []) if row.get("epoch", 0) <= done]
    return []


def _from_rank0(path: Path | None) -> bytes:
    """The bytes of rank 0's file (b"" for None), on every process: the others may run on machines that do not
    see rank 0's disk."""
    data = path.read_bytes() if path is not None else b""
    if idist.get_world_size() == 1:
        return data
    sent = torch.from_numpy(np.frombuffer(data, dtype=np.uint8).copy()) if idist.get_rank() == 0 else None
    return idist.broadcast(sent, src=0, safe_mode=True).cpu().numpy().tobytes()


def _pick(name: str):
    return lambda output: output[name]


def training_seed(seed: int | None, work_dir=None, resume: bool = False) -> int:
    """`seed` when given; else the one this run drew before (kept in `work_dir`, so that a resumed run goes on with
    it); else a new one from the operating system's randomness (63 bits). The same on every process of a run.

    A trained masker is secret, and so is its seed: two AAEs of one recipe and one seed, trained on different images,
    end up with latent spaces that nearly line up, so the seed alone lets an attacker decode the victim's vectors
    (measured on CIFAR-10: median SSIM 0.567 with the victim's seed, 0.033 with another; `veil attack --method
    seed-guess`). A fixed default such as 0 is the first seed an attacker tries, so there is none."""
    if seed is not None:
        return seed
    drawn = _kept_or_new_seed(work_dir, resume) if idist.get_rank() == 0 else 0
    if idist.get_world_size() == 1:
        return drawn
    return int(idist.broadcast(torch.tensor([drawn], dtype=torch.int64), src=0, safe_mode=True).item())


def _kept_or_new_seed(work_dir, resume: bool) -> int:
    """Rank 0's part of `training_seed`: the seed kept in `work_dir` when resuming, else a new one, kept there."""
    if work_dir is None:
        return secrets.randbits(63)
    path = Path(work_dir) / SEED_FILE
    if resume and path.exists():
        from veil.io.read import read_json

        return int(read_json(path)["seed"])
    if resume and any((path.parent / CHECKPOINT_DIR).glob("*.pt")):
        raise VeilError("this run started before veil drew and kept training seeds: resume it with the --seed it "
                        "started with (0 unless one was given)", path.parent)
    drawn = secrets.randbits(63)
    private_dir(path.parent)
    write_json(path, {"seed": drawn})
    make_private(path)
    return drawn


def set_seed(seed: int) -> None:
    """Seed torch and Python with the whole seed (a drawn one has 63 bits) and NumPy's legacy generator, which
    takes 32 bits, with its low bits; what Ignite's `manual_seed` does for seeds below 2**32."""
    seed = int(seed)
    random.seed(seed)
    torch.manual_seed(seed)
    np.random.seed(seed % 2 ** 32)
