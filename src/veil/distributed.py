"""Runs of several processes, through PyTorch-Ignite's `ignite.distributed` (idist): on this machine
(`veil train --nproc N`: N processes spawned here) or on several (`torchrun ... -m veil train ...`: each process
joins the group the launcher describes in the env:// variables). Backend: nccl for CUDA, gloo for the CPU.

What a run of several processes shares, wherever it comes from:
- the output is claimed before any work starts (by the spawning process, or by rank 0 of a torchrun launch, whose
  refusal is then raised on every rank, so that no process waits in a collective for one that has quit), and rank 0
  alone writes it (checkpoints, logs, the model);
- a VeilError is one line from rank 0, exit code 2: spawned processes leave their message for the one that spawned
  them, which raises it after the launcher has stopped (and reaped) them all.

Processes are spawned, never forked: a process forked after torch had run on several threads hung here in its first
parallel operation. So they import the caller's main module, as with any spawned Python process: a script that
calls `train_masker(..., nproc=2)` must do so under `if __name__ == "__main__":`.

Reading the launch from the environment imports nothing (`veil mask` and the command line's error path stay
torch-free); the functions that start or join a process group import torch and Ignite when called.
"""
from __future__ import annotations

import contextlib
import logging
import os
import pickle
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from veil.errors import VeilError
from veil.threads import threads_per_process

if TYPE_CHECKING:
    from veil.io.output import OutputClaim

#: what torchrun (and any env:// launcher) sets in every process it starts
ENV_LAUNCH = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
#: what spawned processes read their work from, in the run's private temporary folder
JOB_FILE = "job.pickle"
#: Ignite's and torch's INFO/WARNING lines about the launch itself ("Initialized processing group", "Terminating
#: process ... via signal SIGTERM" when a failed run is stopped): not for a user, whose errors are one line
_LAUNCH_LOGGERS = ("ignite.distributed.launcher.Parallel", "ignite.distributed.auto.auto_model",
                   "torch.multiprocessing.spawn")


def external_launch() -> bool:
    """Whether torchrun (or a launcher like it) started this process: the env:// variables are set."""
    return all(name in os.environ for name in ENV_LAUNCH)


def launch_rank() -> int:
    """This process's rank in an external launch (0 otherwise), read from the environment without torch."""
    return int(os.environ.get("RANK", "0")) if external_launch() else 0


def spawns(nproc: int | None) -> bool:
    """Whether `launch(..., nproc=nproc)` spawns processes here (and returns nothing of theirs)."""
    return bool(nproc and nproc > 1) and not external_launch()


def backend_for(device: str | None) -> str:
    """nccl when the work runs on CUDA (`device`, or by default when CUDA is present), gloo on the CPU."""
    from veil.devices import pick_device

    return "nccl" if pick_device(device).type == "cuda" else "gloo"


def launch(func, *args, output: OutputClaim, check=None, nproc: int | None = None, device: str | None = "cpu"):
    """Run `func(work, *args)` on every process of the run, where `work` is the claimed output (see below) on
    rank 0 and None on the others, and return its result in this process. The processes work on `device` (None:
    CUDA when present), which picks the backend.

    `output` is claimed (after `check()`, which may refuse; see `rank0_output`) before any work starts, here, or by
    rank 0 of a torchrun launch.
    - started by torchrun: this process joins the launcher's group, runs `func` as its rank, and returns its result;
    - `nproc` > 1: `nproc` processes are spawned here (`func` and `args` must pickle); this one waits for them all
      and returns None, and raises rank 0's VeilError;
    - otherwise: `func` in this process, with no group.
    """
    if external_launch():
        if nproc:
            raise VeilError("--nproc starts processes on this machine; under torchrun, give torchrun "
                            "--nproc-per-node instead")
        import ignite.distributed as idist

        _quiet_launch_loggers()
        with idist.Parallel(backend=backend_for(device)), rank0_output(output, check) as work:
            return func(work, *args)
    with rank0_output(output, check) as work:
        if not spawns(nproc):
            return func(work, *args)
        _spawn(func, work, args, nproc, backend_for(device))
    return None


def _spawn(func, work, args, nproc: int, backend: str) -> None:
    """`nproc` processes on this machine, meeting through a file in a private temporary folder (no port to pick,
    none to collide with another run), which also holds their work and receives each rank's VeilError message.

    The work (the data, often large) goes through that file rather than the processes' start-up pipes: Python's
    spawn writes to a pipe whose reading end it still holds, so a process that died while starting would leave
    this one blocked for ever on a write larger than the pipe's buffer."""
    import ignite.distributed as idist
    import torch
    from torch.multiprocessing import ProcessExitedException

    if backend == "nccl" and nproc > torch.cuda.device_count():
        raise VeilError(f"--nproc {nproc} needs a GPU per process; {torch.cuda.device_count()} visible (or give "
                        "--device cpu)")
    _quiet_launch_loggers()
    threads = threads_per_process(nproc)
    with tempfile.TemporaryDirectory(prefix="veil-ranks-") as shared:
        Path(shared, JOB_FILE).write_bytes(pickle.dumps((func, work, args), protocol=pickle.HIGHEST_PROTOCOL))
        try:
            with idist.Parallel(backend=backend, nproc_per_node=nproc,
                                init_method=f"file://{shared}/rendezvous") as parallel:
                parallel.run(_rank_main, shared, threads)
        except ProcessExitedException as exc:  # a VeilError (exit code 2), or a process killed from outside
            raise VeilError(_reported_error(shared) or f"process {exc.error_index} of {nproc} ended with "
                            f"{exc.signal_name or f'exit code {exc.exit_code}'}") from None


def _rank_main(local_rank: int, shared: str, threads: int) -> None:
    """One spawned process: its share of the cores, then the job `func` (given `work` on rank 0); a VeilError is
    left in `shared` for the spawning process, and ends this one with exit code 2 (the launcher then stops the
    others)."""
    import ignite.distributed as idist

    from veil.devices import fix_threads

    _quiet_launch_loggers()
    fix_threads(threads)
    rank = idist.get_rank()
    func, work, args = pickle.loads(Path(shared, JOB_FILE).read_bytes())  # written by this run's parent, 0700
    try:
        func(work if rank == 0 else None, *args)
    except VeilError as exc:
        Path(shared, f"error-{rank:05d}").write_text(str(exc))
        raise SystemExit(2) from None


def _reported_error(shared: str) -> str | None:
    """The VeilError message of the lowest rank that left one."""
    found = sorted(Path(shared).glob("error-*"))
    return found[0].read_text() if found else None


def _quiet_launch_loggers() -> None:
    for name in _LAUNCH_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def rank0_output(output: OutputClaim, check=None):
    """`output.open()` for a run of one or several processes: rank 0 runs `check()` (which may refuse), claims the
    output and yields where to write; the other ranks yield None and write nothing. A refusal on rank 0 is raised
    on every rank."""
    import ignite.distributed as idist

    with contextlib.ExitStack() as stack:
        work, problem = None, None
        if idist.get_rank() == 0:
            try:
                if check is not None:
                    check()
                work = stack.enter_context(output.open())
            except VeilError as exc:
                problem = exc
        agree(problem)
        yield work


def agree(problem: VeilError | None) -> None:
    """Raise rank 0's `problem` (None: there is none) on every rank of the run, as the same one line."""
    import ignite.distributed as idist

    if idist.get_world_size() > 1:
        message = idist.broadcast(str(problem) if problem else "", src=0)
        problem = VeilError(message) if message else None
    if problem is not None:
        raise problem
