"""How many CPU threads veil's torch and scikit-learn work uses. Imports neither, so the command line can decide
before either is loaded.

Why it matters: torch runs each operation on all of its threads and waits at a barrier for the last one. When another
CPU-bound process holds one of the cores, one thread is descheduled for a whole scheduler time slice at nearly every
barrier, and a step of many small operations stalls: on this 2-core machine an AAE training step at batch 16 took
111 ms on 2 threads and 50 ms on 1 thread while a second job ran (and about 40 ms on 2 threads when idle). So veil
uses only the cores that other processes leave idle, measured once when the first model is built, unless told:
`veil --threads N` or VEIL_THREADS=N. A fixed thread count keeps a seeded run bitwise reproducible; the automatic
choice can differ between an idle and a loaded machine, and with it the last bits of the results.

Several processes on one machine (`--nproc N`, or torchrun's LOCAL_WORLD_SIZE) share the idle cores among them;
VEIL_THREADS is then the count of each process.
"""
from __future__ import annotations

import functools
import os
import time

from veil.errors import VeilError

ENV = "VEIL_THREADS"


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which container limits narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def busy_cores_of_others(window: float = 0.1, since: tuple | None = None) -> float:
    """Cores kept busy by other processes (/proc/stat less this process's own CPU time) from `since` (a
    `cpu_reading()`; default: now) until now, sleeping until at least `window` seconds have passed; 0.0 where
    /proc/stat cannot be read."""
    try:
        first = since or cpu_reading()
        time.sleep(max(0.0, window - (time.monotonic() - first[2])))
        second = cpu_reading()
    except (OSError, ValueError, IndexError):
        return 0.0
    (all_1, idle_1), own_1, at_1 = first
    (all_2, idle_2), own_2, at_2 = second
    busy = ((all_2 - all_1) - (idle_2 - idle_1)) / os.sysconf("SC_CLK_TCK")
    return max(0.0, (busy - (own_2 - own_1)) / (at_2 - at_1))


def cpu_reading() -> tuple[tuple[int, int], float, float]:
    """(all and idle CPU ticks since boot, this process's CPU seconds, a monotonic time)."""
    return _cpu_ticks(), time.process_time(), time.monotonic()


def _cpu_ticks() -> tuple[int, int]:
    """(all, idle) CPU ticks since boot, over every core."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    return sum(fields[:8]), fields[3] + fields[4]  # user..steal; idle + iowait


def _reading_at_import() -> tuple | None:
    try:
        return cpu_reading()
    except (OSError, ValueError, IndexError):
        return None


#: the start of the first measurement's window: a command that needs the idle cores a tenth of a second after it
#: starts (veil mask) then waits for nothing
_IMPORTED = _reading_at_import()


def chosen_threads() -> int:
    """The threads of this process: see `threads_per_process`, for the processes a launcher (torchrun) started on
    this machine (LOCAL_WORLD_SIZE; 1 when none did)."""
    return threads_per_process(int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


def threads_per_process(processes: int) -> int:
    """VEIL_THREADS when set (a count for each process), else the idle cores shared among `processes` processes on
    this machine (at least 1 each): a run of several processes must not oversubscribe the cores either."""
    requested = os.environ.get(ENV, "").strip()
    if requested:
        if not requested.isdigit() or int(requested) < 1:
            raise VeilError(f"{ENV} must be a positive integer, got {requested!r}")
        return int(requested)
    return max(1, _idle_cores() // max(1, processes))


@functools.cache
def _idle_cores() -> int:
    """Measured once per process: a short window, and a stable choice for the whole run."""
    cores = available_cores()
    return max(1, cores - round(busy_cores_of_others(since=_IMPORTED))) if cores > 1 else 1
