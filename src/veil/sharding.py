"""Masking a set in shards (`veil mask --nproc N`, or under torchrun): each process masks a consecutive part of the
images and the parts are put back together in the input's order, giving the very bytes one process gives.

Why the result does not change: a masker's `shard_unit` says at which boundaries a shard may start (the NumPy AAE
encoder works in batches of 128 images, and a batch of other rows could round differently; the keyed schemes and
the filters, `iidfilter`'s per-image filters included, treat each image alone); a masker whose result depends on the
whole set (`shard_unit` None: the torch AAEMasker) is never sharded.
What a masked set records about the masking (the latent's conformity, ...) is computed on the merged set.

`--nproc` forks worker processes and imports nothing heavy: the keyed schemes' and the AAE's masking stay torch-free.
Forking is safe for these NumPy maskers only: a process forked after torch has run on several threads can hang in
its first parallel operation (it did here), so the torch AAEMasker declares itself unshardable. Only a torchrun
launch (several machines) goes through `ignite.distributed`, whose ranks gather the shards.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from veil.distributed import external_launch
from veil.errors import VeilError
from veil.threads import ENV as THREADS_ENV, threads_per_process


def transform(masker, images: np.ndarray, nproc: int | None = None) -> np.ndarray:
    """`masker.transform(images)`, shared among `nproc` processes forked here, or among the ranks of the torchrun
    launch this process belongs to; the same array either way."""
    if external_launch():
        return _across_ranks(masker, images)
    if nproc and nproc > 1:
        return _in_processes(masker, images, nproc)
    return masker.transform(images)


def shard_bounds(n: int, parts: int, unit: int = 1) -> list[tuple[int, int]]:
    """`parts` consecutive (start, stop) ranges over range(n), as equal as whole `unit`s of images allow (each
    start a multiple of `unit`; the last ranges are empty when there are fewer units than parts)."""
    units = -(-n // unit)
    edges = [min(n, unit * (units * part // parts)) for part in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _unit(masker) -> int:
    unit = masker.shard_unit
    if unit is None:
        raise VeilError(f"this {masker.method} masker masks a set whole, in one process (drop --nproc)")
    return unit


# ---------------------------------------------------------------------- processes forked on this machine

#: (masker, images, threads) of a forked worker: inherited from the parent, never pickled (the images may be GBs)
_WORK: tuple | None = None


def _in_processes(masker, images: np.ndarray, nproc: int) -> np.ndarray:
    bounds = [(start, stop) for start, stop in shard_bounds(len(images), nproc, _unit(masker)) if stop > start]
    if len(bounds) == 1:
        return masker.transform(images)
    global _WORK
    _WORK = (masker, images, threads_per_process(len(bounds)))
    try:
        with ProcessPoolExecutor(len(bounds), mp_context=multiprocessing.get_context("fork")) as pool:
            return np.concatenate(list(pool.map(_mask_shard, bounds)))
    finally:
        _WORK = None


def _mask_shard(bounds: tuple[int, int]) -> np.ndarray:
    """A worker's shard, on its share of the cores (NumPy's BLAS, and the NumPy encoder's worker threads, would
    otherwise start a thread per idle core in every worker)."""
    from threadpoolctl import threadpool_limits

    masker, images, threads = _WORK
    start, stop = bounds
    os.environ[THREADS_ENV] = str(threads)  # this forked worker's own environment: veil.threads reads it
    with threadpool_limits(threads):
        return masker.transform(images[start:stop])


# ---------------------------------------------------------------------- the ranks of a torchrun launch

def _across_ranks(masker, images: np.ndarray) -> np.ndarray:
    """Each rank masks its shard; every rank gets them all, in order (padded to the longest for the collective)."""
    import ignite.distributed as idist
    import torch

    bounds = shard_bounds(len(images), idist.get_world_size(), _unit(masker))
    start, stop = bounds[idist.get_rank()]
    # an empty shard still needs the masked form's shape and type
    part = masker.transform(images[start:stop] if stop > start else images[:1])[:stop - start]
    longest = max(end - begin for begin, end in bounds)
    padded = np.zeros((longest, *part.shape[1:]), dtype=part.dtype)
    padded[:len(part)] = part
    gathered = idist.all_gather(torch.from_numpy(padded)).numpy()
    return np.concatenate([gathered[rank * longest:rank * longest + end - begin]
                           for rank, (begin, end) in enumerate(bounds)])
