"""The output transaction of a command (`claim_output`): refuse what must not be written, lock, write beside the
output, and put it in place only when the command finishes, recording in a folder which writer put what there."""
from __future__ import annotations

import contextlib
import filecmp
import hashlib
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from veil.defaults import cache_dir
from veil.errors import VeilError
from veil.io.read import read_json
from veil.io.write import atomic_path, private_dir, write_json


#: the record, in every folder output, of the top-level entries each writer (a command) put there
RECORD = ".veil-outputs.json"


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, writer: str, prefill: bool = False):
    """Yield a fresh temporary folder beside `path`; only if the block finishes do its entries go into `path`, as
    `writer`'s (see `_swap_in`). `prefill`: the temporary folder starts with copies of the top-level files of an
    existing `path`, so that the block can read and rewrite them; a copy it leaves unchanged is not written back."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    except OSError as exc:
        raise VeilError(f"cannot write here ({exc.strerror or exc})", path) from None
    try:
        copies = _prefill(tmp, path) if prefill else []
        yield tmp
        _swap_in(tmp, path, writer, kept=_drop_unchanged(tmp, path, copies))
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise VeilError(f"cannot write ({exc.strerror or exc})", path) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _is_folder(path: Path) -> bool:
    """A real folder (not a link to one): what an output may be merged into."""
    return path.is_dir() and not path.is_symlink()


def _prefill(tmp: Path, path: Path) -> list[str]:
    """Copy the top-level regular files of folder `path` (not its record, not links) into `tmp`; their names."""
    if not _is_folder(path):
        return []
    names = [entry.name for entry in os.scandir(path) if entry.is_file(follow_symlinks=False) and entry.name != RECORD]
    for name in names:
        shutil.copy2(path / name, tmp / name)  # keeps the mode: a private file stays private
    return names


def _drop_unchanged(tmp: Path, path: Path, copies: list[str]) -> list[str]:
    """Remove from `tmp` the copies the block left as they were, and name them: the run keeps those entries of
    `path` as they stand, without writing them (a user's file copied in does not become the run's)."""
    unchanged = [name for name in copies if (tmp / name).is_file() and not (tmp / name).is_symlink()
                 and filecmp.cmp(tmp / name, path / name, shallow=False)]
    for name in unchanged:
        os.unlink(tmp / name)
    return unchanged


def _swap_in(tmp: Path, path: Path, writer: str, kept=()) -> None:
    """Put what folder `tmp` holds at `path`, recording its entries as `writer`'s. Into an existing folder they are
    merged (`_merge_in`; `kept`: the entries there that the run keeps as they are). Any other `path` (none, a file,
    a link) is replaced whole, the old one put back should that fail."""
    if _is_folder(path):
        _merge_in(tmp, path, writer, kept)
        return
    names = os.listdir(tmp)
    _write_record(tmp, _record_after({}, writer, names, set(names)))
    if not (path.exists() or path.is_symlink()):
        os.replace(tmp, path)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
    try:
        os.replace(path, old / path.name)
    except BaseException:
        old.rmdir()
        raise
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(old / path.name, path)  # should this fail too, the old output stays in `old`, not deleted
        old.rmdir()
        raise
    shutil.rmtree(old, ignore_errors=True)


def _merge_in(tmp: Path, path: Path, writer: str, kept) -> None:
    """Move the entries of `tmp` into folder `path`, and remove the entries that `path`'s record names as
    `writer`'s and that this run neither wrote again nor `kept`. The old entries are first moved aside, and put back
    should any move fail. The folder ends up no more open than `tmp` (0700 from mkdtemp), as a new output would be."""
    record, written = _read_record(path), set(os.listdir(tmp))
    own = set(record.get(writer, ()))
    stale = [name for name in sorted(own - written - set(kept)) if _lexists(path / name)]
    present = (set(os.listdir(path)) - set(stale)) | written
    _write_record(tmp, _record_after(record, writer, written | (own & set(kept)), present))
    entries, old_mode = os.listdir(tmp), stat.S_IMODE(path.stat().st_mode)
    aside = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
    moved_aside, moved_in = [], []
    try:
        os.chmod(path, old_mode & stat.S_IMODE(tmp.stat().st_mode))
        for name in [*entries, *stale]:
            if _lexists(path / name):
                os.replace(path / name, aside / name)
                moved_aside.append(name)
        for name in entries:
            os.replace(tmp / name, path / name)
            moved_in.append(name)
    except BaseException:
        for name in moved_in:
            os.replace(path / name, tmp / name)
        for name in moved_aside:  # should this fail too, the old entry stays in `aside`, not deleted
            os.replace(aside / name, path / name)
        os.chmod(path, old_mode)
        with contextlib.suppress(OSError):
            aside.rmdir()
        raise
    for emptied in (aside, tmp):
        shutil.rmtree(emptied, ignore_errors=True)


def _lexists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _read_record(folder: Path) -> dict[str, list[str]]:
    """{writer: its top-level entries} of `folder`. A folder without a record, or with one that cannot be read,
    counts as nobody's: nothing in it is ever removed. Names that are not plain entries of the folder are ignored,
    so that a tampered record cannot reach outside it."""
    try:
        record = read_json(folder / RECORD)
    except VeilError:
        return {}
    return {writer: [name for name in names if _is_entry_name(name)]
            for writer, names in record.items() if isinstance(names, list)}


def _is_entry_name(name) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..", RECORD) and "/" not in name and "\0" not in name


def _record_after(record: dict, writer: str, written, present: set) -> dict[str, list[str]]:
    """The record once `writer` has written `written`: those entries are its own now, no longer another writer's,
    and entries no longer `present` are dropped."""
    written = set(written) - {RECORD}
    after = {other: [name for name in names if name not in written and name in present]
             for other, names in record.items() if other != writer}
    after[writer] = sorted(written)
    return {name: names for name, names in sorted(after.items()) if names}


def _write_record(folder: Path, record: dict) -> None:
    write_json(folder / RECORD, record)


@contextlib.contextmanager
def _in_place_dir(path: Path, writer: str):
    """Yield `path` itself (created if needed, 0700), for a training run that must be resumable after a crash; when
    the block finishes, `writer` is recorded as the writer of the entries the run created or changed, besides those
    it wrote before. A run killed before then leaves no record: a resumed run records what it touches."""
    before = _stamps(path)
    yield private_dir(path)
    record, now = _read_record(path), _stamps(path)
    written = [name for name in now if before.get(name) != now[name] or name in record.get(writer, ())]
    _write_record(path, _record_after(record, writer, written, set(now)))


def _stamps(folder: Path) -> dict[str, tuple[int, int]]:
    """Each top-level entry of `folder` (but its record) with its inode and modification time."""
    if not _is_folder(folder):
        return {}
    return {entry.name: (entry.inode(), entry.stat(follow_symlinks=False).st_mtime_ns)
            for entry in os.scandir(folder) if entry.name != RECORD}


# ---------------------------------------------------------------------- refusal and locking

def is_occupied(path) -> bool:
    """Whether writing `path` would replace something: any file or link, or a folder that is not empty."""
    path = Path(path)
    if path.is_symlink() or path.is_file():
        return True
    if path.is_dir():
        return any(path.iterdir())
    return path.exists()


def refuse_undecodable(path) -> None:
    """Refuse a path that is not valid UTF-8: it could not be named in JSON, manifests or messages."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        raise VeilError("name is not valid UTF-8; choose another", path) from None


def refuse_overlap(out, reads=()) -> None:
    """Refuse an output that is, lies inside, or contains a folder the command reads (its masker or model): writing
    there could replace or delete the very files being read, such as a decoder. `--force` does not lift this."""
    target = Path(out).resolve()
    for source in reads:
        if source is None:
            continue
        source = Path(source).resolve()
        if target == source or source in target.parents or target in source.parents:
            raise VeilError(f"is or overlaps {source}, which this command reads; choose an --out outside it", out)


def lock_path(path) -> Path:
    """The lock file for an output: in the user cache folder (never beside the user's files), named by a hash of
    the output's absolute path."""
    digest = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:32]
    return cache_dir() / "locks" / f"{digest}.lock"


@contextlib.contextmanager
def output_lock(path):
    """Hold an exclusive lock on output `path` for the block; a second writer is refused at once, not queued."""
    import filelock

    lock_file = lock_path(path)
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(lock_file), timeout=0)
        lock.acquire()
    except filelock.Timeout:
        raise VeilError("another veil command is writing this output now; refusing to write it too", path) from None
    except OSError as exc:
        raise VeilError(f"cannot create an output lock ({exc.strerror or exc})", lock_file) from None
    try:
        yield
    finally:
        lock.release()


@dataclass(frozen=True)
class OutputClaim:
    """What a command that writes `path` asks of the output transaction (`open`); built once by the command and
    handed on as it is (through `veil.distributed.launch` to rank 0, for a run of several processes).

    `force`: replace an existing output; `folder`: the output is a folder, `writer`'s (the command, such as
    "unmask"), which is then required; `reads`: the folders the command reads, never to be overlapped (None
    entries are skipped); `resume`: continue a training folder where it stands; `in_place`: a new training folder
    is written where it stands, so that it can be resumed; `prefill`: the temporary folder starts with copies of
    the existing folder's files (a report that continues its folder)."""

    path: Path
    force: bool = False
    folder: bool = False
    writer: str | None = None
    reads: tuple[str | os.PathLike | None, ...] = ()
    resume: bool = False
    in_place: bool = False
    prefill: bool = False

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "reads", tuple(self.reads))
        if self.folder and not self.writer:
            raise ValueError("a folder output needs the name of its writer")

    @contextlib.contextmanager
    def open(self):
        """Everything a command that writes `path` must do, in one place:

        refuse an output that overlaps a folder it reads (`reads`, even with `force`); take the output's lock;
        refuse an existing output unless `force` (or `resume`); yield a temporary file or folder (`folder`) beside
        `path`, put in place only when the block finishes, so a failure leaves nothing and the old output as it was.

        `force` replaces an existing file whole. A folder's record (RECORD, in the folder) names what each writer
        put there: `force` over an existing folder replaces the entries the run writes, removes those the same
        writer wrote before and did not write again, and keeps everything else (the user's files, other commands'
        outputs, anything in a folder without a record).

        Training folders (`in_place`) are the exception a crash needs: a new one is written where it stands (0700)
        so that `resume` can continue it, and the caller writes its manifest last; a forced one is written beside
        the old one and merged in as above, so it never resumes the old run's checkpoints.
        """
        refuse_undecodable(self.path)
        refuse_overlap(self.path, self.reads)
        with output_lock(self.path):
            occupied = is_occupied(self.path)
            if occupied and not (self.force or self.resume):
                raise VeilError("already exists; refusing to overwrite it (add --force to replace it)", self.path)
            if self.resume or (self.in_place and not occupied):
                with _in_place_dir(self.path, self.writer) as out:
                    yield out
            elif self.folder:
                with atomic_dir(self.path, self.writer, self.prefill) as tmp:
                    yield tmp
            else:
                with atomic_path(self.path) as tmp:
                    yield tmp


def claim_output(path, force: bool = False, **options):
    """`OutputClaim(path, force, **options).open()`: for a command that claims its output where it names it."""
    return OutputClaim(path, force, **options).open()
