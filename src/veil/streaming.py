"""`veil mask --out DIR`: read, mask and write a chunk at a time into a shard folder (`veil.shards`), so that memory
holds a few chunks whatever the size of the set.

Each chunk of the input (`veil.data.stream`) becomes one shard: decoded, masked and encoded in this process, or in
one of `nproc` worker processes forked here (no torch is imported, as for `veil.sharding`), at most two chunks per
worker in flight. The manifest is rewritten after each shard, so a killed run leaves the shards it finished; run
again with the same input, masker and options, it skips them (resumes) and writes the rest. A folder holding a run
of other settings, or anything else, is never written into unless `force`.

Masking a chunk gives the bytes masking the whole set gives (the chunk size is a multiple of the masker's
`shard_unit`); what a set records about its masking beyond the configuration (the AAE latent's conformity) is
computed on the first shard.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from veil.data.stream import ImageStream, RawChunk
from veil.errors import VeilError
from veil.io.output import OutputClaim, is_occupied
from veil.io.read import read_json
from veil.shards import (MANIFEST, Storage, read_manifest, shard_index, shard_name, uint8_storage, write_manifest,
                         write_shard)
from veil.threads import ENV as THREADS_ENV, threads_per_process

#: what must match for a run to continue another's shards
PLAN_FIELDS = ("method", "fingerprint", "config", "source", "count", "chunk_size", "resize", "storage", "class_names")


def mask_to_shards(stream: ImageStream, out_dir, masker, force: bool = False, resume: bool = False,
                   nproc: int | None = None, storage: Storage | None = None, progress: bool = True,
                   reads=()) -> dict:
    """Mask every chunk of `stream` into shard folder `out_dir`; returns its manifest. An unfinished run there
    with the same plan is continued (as with `resume`); one with another plan is refused unless `force`."""
    unit = masker.shard_unit
    if unit is None:
        raise VeilError(f"this {masker.method} masker masks a set whole; write an .npz instead")
    if stream.chunk_size % unit:
        raise VeilError(f"{masker.method} masks in batches of {unit} images: the chunk size must be a multiple of "
                        f"{unit}, got {stream.chunk_size}")
    storage = storage or Storage.for_masker(masker)
    plan = {"method": masker.method, "fingerprint": masker.fingerprint, "config": masker.config,
            "source": stream.source, "count": len(stream), "chunk_size": stream.chunk_size,
            "resize": None if stream.resize is None else stream.resize.describe(),
            "storage": storage.describe(), "class_names": list(stream.class_names)}
    previous = None if force else _unfinished_run(out_dir, plan)
    if resume and not force and previous is None and is_occupied(out_dir):
        finished = (Path(out_dir) / MANIFEST).is_file()
        raise VeilError("holds a finished masked set: nothing to resume" if finished else "holds no unfinished "
                        "masking run to resume (add --force to replace it)", out_dir)
    output = OutputClaim(out_dir, force, folder=True, writer="mask", reads=reads,
                         resume=resume or previous is not None, in_place=True)
    with output.open() as folder:
        return _write_shards(Path(folder), stream, masker, storage, plan, previous, nproc, progress)


def _unfinished_run(out_dir, plan: dict) -> dict | None:
    """The manifest of an unfinished run in `out_dir` to continue, None if there is none; another plan's is
    refused, naming what differs."""
    if not (Path(out_dir) / MANIFEST).is_file():
        return None
    manifest = read_manifest(out_dir)
    if manifest["complete"]:
        return None  # a finished set: the output claim refuses to overwrite it
    recorded = manifest.get("plan", {})
    differing = [name for name in PLAN_FIELDS if recorded.get(name) != plan[name]]
    if differing:
        raise VeilError(f"holds an unfinished masking run with another {', '.join(differing)}; run that again to "
                        "finish it, or add --force to replace it", out_dir)
    return manifest


def _write_shards(folder: Path, stream: ImageStream, masker, storage: Storage, plan: dict, previous: dict | None,
                  nproc, progress: bool) -> dict:
    shards = {shard["name"]: shard for shard in (previous or {}).get("shards", [])
              if (folder / shard["name"]).is_file()}
    manifest = {"method": masker.method, "fingerprint": masker.fingerprint,
                "meta": (previous or {}).get("meta", {}), "class_names": list(stream.class_names),
                "labelled": stream.labels is not None, "count": len(stream), "order": stream.order,
                "storage": storage.describe(), "plan": plan, "complete": False, "shards": []}
    if previous and "sample_shape" in previous:
        manifest["sample_shape"] = previous["sample_shape"]  # what the shards to come must match
    done = frozenset(shard_index(name) for name in shards)
    report = _Progress(stream.n_chunks, len(done), progress)
    for record in _masked_records(stream, masker, storage, folder, done, nproc):
        _check_shape(manifest, record, folder)
        first_meta = record.pop("masked_meta", None)
        if first_meta is not None:
            manifest["meta"] = {"source": stream.source, "n": len(stream), **first_meta, **uint8_storage(masker)}
        shards[record["name"]] = record
        manifest["shards"] = [shards[name] for name in sorted(shards)]
        write_manifest(folder, manifest)
        report.shard_done(record["count"])
    manifest["complete"] = True
    write_manifest(folder, manifest)
    report.close()
    return read_json(folder / MANIFEST)


def _check_shape(manifest: dict, record: dict, folder: Path) -> None:
    """Every shard holds samples of one shape (a chunk of images of another size is refused, naming both)."""
    shape = manifest.setdefault("sample_shape", record["shape"])
    if shape != record["shape"]:
        raise VeilError(f"{record['name']} holds samples of shape {tuple(record['shape'])}, the shards before it "
                        f"{tuple(shape)}: the input's images differ in size (give --size)", folder)
    del record["shape"]


# ---------------------------------------------------------------------- masking the chunks

#: (masker, stream, storage, folder, threads) of a forked worker: inherited from the parent, never pickled
_WORK: tuple | None = None


def _masked_records(stream: ImageStream, masker, storage: Storage, folder: Path, done: frozenset, nproc):
    """The manifest records of the shards not `done`, in order, each masked and written in this process or in one
    of `nproc` forked workers (at most two chunks per worker waiting, so memory stays bounded)."""
    global _WORK
    chunks = stream.raw_chunks(done)
    workers = min(nproc or 1, stream.n_chunks - len(done))
    _WORK = (masker, stream, storage, folder, threads_per_process(workers) if workers > 1 else None)
    try:
        if workers <= 1:
            yield from map(_mask_chunk, chunks)
            return
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            pending: deque = deque()
            for raw in chunks:
                pending.append(pool.submit(_mask_chunk, raw))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
    finally:
        _WORK = None


def _mask_chunk(raw: RawChunk) -> dict:
    """Decode, mask and write one chunk as its shard; its manifest record (with the sample shape, and for the
    first chunk what the masker records about the set)."""
    masker, stream, storage, folder, threads = _WORK
    if threads is None:
        return _mask_and_write(raw, masker, stream, storage, folder)
    from threadpoolctl import threadpool_limits

    os.environ[THREADS_ENV] = str(threads)  # this forked worker's own environment: veil.threads reads it
    with threadpool_limits(threads):
        return _mask_and_write(raw, masker, stream, storage, folder)


def _mask_and_write(raw: RawChunk, masker, stream: ImageStream, storage: Storage, folder: Path) -> dict:
    images = stream.decode(raw, pixels=masker.exact_uint8 or masker.takes_uint8)
    masked = masker.transform(images.images)
    record = write_shard(folder / shard_name(raw.index), masked, images.labels, raw.index * stream.chunk_size,
                         storage)
    record["shape"] = list(masked.shape[1:])
    if raw.index == 0:
        record["masked_meta"] = {"image_shape": list(images.images.shape[1:]), **masker.masked_meta(masked)}
    return record


class _Progress:
    """A bar on a terminal, a line per shard otherwise (as the training's progress), nothing when silenced."""

    def __init__(self, total: int, done: int, progress: bool):
        self.total, self.done, self.images, self.start = total, done, 0, time.perf_counter()
        shown = progress and os.environ.get("VEIL_NO_PROGRESS") != "1"
        self.bar = None
        if shown and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="shard", file=sys.stderr, leave=False)
        self.lines = shown and self.bar is None
        if self.lines and done:
            print(f"mask: resuming: {done} of {total} shards already written", file=sys.stderr, flush=True)

    def shard_done(self, count: int) -> None:
        self.done, self.images = self.done + 1, self.images + count
        rate = self.images / max(time.perf_counter() - self.start, 1e-9)
        if self.bar is not None:
            self.bar.set_postfix_str(f"{rate:.0f} images/s", refresh=False)
            self.bar.update(1)
        elif self.lines:
            print(f"mask: shard {self.done}/{self.total} written ({rate:.0f} images/s)", file=sys.stderr,
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
