"""Outputs (issue 10, part 1 and the output side of part 2): no command overwrites an existing output unless
--force, --force replaces a file whole and, in a folder, only what the same command writes or wrote there (the
user's files and other commands' outputs stay), no command writes into the masker/model folder it reads, secrets are
owner-only,
exposed key files are refused, a second writer is refused while the first holds the lock, half-trained folders are
named as such, and a failure at any point of a write leaves no output."""
import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from veil.cli import build_parser, main

FORCE_HINT = "add --force to replace it"


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, *args, message=FORCE_HINT):
    code, out, err = run(capsys, *args)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("veil: error:") and "Traceback" not in err, err
    assert message in err, err
    return err


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def tree(path: Path) -> dict:
    """Every file under `path` with its bytes: what must survive a refused command unchanged."""
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def masker_copy(trained_masker, tmp_path) -> Path:
    masker_dir, _ = trained_masker
    copy = tmp_path / "masker"
    shutil.copytree(masker_dir, copy)
    return copy


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """A key file, a small plain set (digit 0 and 1 only) and its etc-masked set."""
    root = tmp_path_factory.mktemp("keyed")
    assert main(["keygen", "--out", str(root / "key")]) == 0
    assert main(["mask", "--method", "etc", "--block", "8", "--key-file", str(root / "key"), "--data", "digits",
                 "--classes", "0,1", "--out", str(root / "m.npz")]) == 0
    return root


@pytest.fixture(scope="module")
def rf_model(trained_masker, tmp_path_factory):
    masker_dir, _ = trained_masker
    root = tmp_path_factory.mktemp("rf")
    assert main(["mask", "--masker", str(masker_dir), "--data", "digits", "--out", str(root / "m.npz")]) == 0
    assert main(["train", "--masked", str(root / "m.npz"), "--model", "rf", "--params", '{"n_estimators": 5}',
                 "--out", str(root / "model")]) == 0
    return root


# ------------------------------------------------------------------ no silent overwrite


def test_every_writing_command_takes_force():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    writers = [name for name, p in sub.choices.items()
               if any(a.dest in ("out", "json") for a in p._actions)]
    assert set(writers) == {"train-masker", "export-encoder", "mask", "unmask", "train", "evaluate",
                            "compress-report", "bench", "keygen", "attack", "report", "demo", "reproduce",
                            "transform-model"}
    for name in writers:
        assert any(a.dest == "force" for a in sub.choices[name]._actions), name


def test_mask_refuses_an_unrelated_existing_file_and_force_replaces_it(keyed, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    args = ["mask", "--method", "etc", "--key-file", keyed / "key", "--data", "digits", "--classes", "0",
            "--out", notes]
    err = refused(capsys, *args)
    assert str(notes) in err
    assert notes.read_text() == "my notes"
    assert run(capsys, *args, "--force")[0] == 0
    assert notes.read_bytes()[:2] == b"PK"  # now the .npz, whole


def test_an_output_name_that_is_not_utf8_is_refused(keyed, tmp_path, capsys):
    out = Path(os.fsdecode(bytes(tmp_path) + b"/\xff.npz"))
    refused(capsys, "mask", "--method", "etc", "--key-file", keyed / "key", "--data", "digits", "--classes", "0",
            "--out", out, message="name is not valid UTF-8")
    assert not os.listdir(tmp_path)


def test_evaluate_json_refuses_an_existing_file(rf_model, keyed, tmp_path, capsys):
    target = tmp_path / "key-copy"
    shutil.copy(keyed / "key", target)
    refused(capsys, "evaluate", "--model", rf_model / "model", "--masked", rf_model / "m.npz", "--json", target)
    assert target.read_bytes() == (keyed / "key").read_bytes()
    assert run(capsys, "evaluate", "--model", rf_model / "model", "--masked", rf_model / "m.npz", "--json", target,
               "--force")[0] == 0
    assert b'"figures"' in target.read_bytes()


def test_evaluate_json_inside_the_model_folder_is_refused_even_with_force(rf_model, capsys):
    before = tree(rf_model / "model")
    refused(capsys, "evaluate", "--model", rf_model / "model", "--masked", rf_model / "m.npz", "--json",
            rf_model / "model" / "model.json", "--force", message="which this command reads")
    assert tree(rf_model / "model") == before


def test_keygen_refuses_an_existing_key_and_force_replaces_it(tmp_path, capsys):
    key = tmp_path / "key"
    assert run(capsys, "keygen", "--out", key)[0] == 0
    old = key.read_bytes()
    refused(capsys, "keygen", "--out", key)
    assert key.read_bytes() == old
    assert run(capsys, "keygen", "--out", key, "--force")[0] == 0
    assert key.read_bytes() != old and mode(key) == 0o600


@pytest.mark.parametrize("command", ["unmask", "compress-report", "bench", "attack", "demo", "reproduce"])
def test_other_writers_refuse_an_existing_output(command, keyed, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    key = ["--key-file", keyed / "key"]
    args = {"unmask": ["unmask", "--masked", keyed / "m.npz", *key, "--out", out],
            "compress-report": ["compress-report", "--data", "digits", "--classes", "0", "--out", out],
            "bench": ["bench", "encrypt", "--data", "digits", "--classes", "0", "--repeats", "1", "--json", out],
            "attack": ["attack", "--method", "itn", "--threat", "a", "--masked", keyed / "m.npz", "--victim",
                       "digits", "--public", "digits", "--quick", "--out", out],
            "demo": ["demo", "--out", out],
            "reproduce": ["reproduce", "table1", "--quick", "--out", out]}[command]
    err = refused(capsys, *args)
    assert str(out) in err
    assert tree(out) == {"mine.txt": b"mine"}


def _unmask(keyed, out, limit: int) -> list:
    return ["unmask", "--masked", keyed / "m.npz", "--key-file", keyed / "key", "--out", out, "--limit", str(limit)]


def _record(folder: Path) -> dict:
    return json.loads((folder / ".veil-outputs.json").read_text())


def test_unmask_force_removes_its_own_stale_pngs_and_keeps_the_users_files(keyed, tmp_path, capsys):
    out = tmp_path / "png"
    assert run(capsys, *_unmask(keyed, out, 5))[0] == 0
    assert _record(out) == {"unmask": [f"{i:06d}.png" for i in range(5)]}
    (out / "mine.txt").write_text("mine")
    assert run(capsys, *_unmask(keyed, out, 3), "--force")[0] == 0
    assert sorted(p.name for p in out.iterdir()) == [".veil-outputs.json", "000000.png", "000001.png", "000002.png",
                                                     "mine.txt"]
    assert _record(out) == {"unmask": ["000000.png", "000001.png", "000002.png"]}
    assert not list(tmp_path.glob(".png*"))


def test_force_keeps_everything_in_a_folder_without_a_record(keyed, tmp_path, capsys):
    out = tmp_path / "png"
    out.mkdir()
    (out / "000000.png").write_bytes(b"stale")
    (out / "999999.png").write_bytes(b"not known to be unmask's")
    assert run(capsys, *_unmask(keyed, out, 3), "--force")[0] == 0
    assert sorted(p.name for p in out.iterdir()) == [".veil-outputs.json", "000000.png", "000001.png", "000002.png",
                                                     "999999.png"]
    assert (out / "000000.png").read_bytes() != b"stale"  # what the command writes replaces its namesake


def test_compress_report_force_keeps_the_tradeoff_outputs_beside_it(tmp_path, capsys):
    """The accident: `compress-report --out out/baselines --force` once deleted every `reproduce tradeoff` output."""
    out = tmp_path / "baselines"
    assert run(capsys, "reproduce", "tradeoff", "--quick", "--data", "digits", "--parts", "report",
               "--work", tmp_path / "work", "--out", out)[0] == 0
    tradeoff = tree(out)
    assert {"report.md", "claims.json", "examples.png"} <= set(tradeoff)
    assert run(capsys, "compress-report", "--data", "digits", "--classes", "0", "--out", out, "--force")[0] == 0
    after = tree(out)
    assert {name: after[name] for name in tradeoff if name != ".veil-outputs.json"} == {
        name: data for name, data in tradeoff.items() if name != ".veil-outputs.json"}
    assert {"compress.json", "compress.md"} <= set(after)
    assert _record(out) == {"compress-report": ["compress.json", "compress.md"],
                            "reproduce tradeoff": ["claims.json", "examples.png", "report.md"]}


def test_a_failure_at_any_point_of_a_forced_merge_leaves_the_old_folder_as_it_was(keyed, tmp_path, capsys):
    out = tmp_path / "png"
    assert run(capsys, *_unmask(keyed, out, 5))[0] == 0
    (out / "mine.txt").write_text("mine")
    old, old_mode = tree(out), mode(out)
    counting = InjectedFailure(os, "replace", 0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "replace", counting)
        assert run(capsys, *_unmask(keyed, out, 3), "--force")[0] == 0
    replaced = tree(out)
    assert replaced != old
    shutil.rmtree(out)
    assert run(capsys, *_unmask(keyed, out, 5))[0] == 0
    (out / "mine.txt").write_text("mine")
    old = tree(out)
    for n in range(1, counting.calls + 1):  # every os.replace of the forced run, the merge's own included
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(os, "replace", InjectedFailure(os, "replace", n))
            code, _, err = run(capsys, *_unmask(keyed, out, 3), "--force")
        assert code == 2 and "injected" in err, (n, err)
        assert tree(out) == old and mode(out) == old_mode, n
        assert sorted(p.name for p in tmp_path.iterdir()) == ["png"], n  # nothing left beside it
    assert run(capsys, *_unmask(keyed, out, 3), "--force")[0] == 0
    assert tree(out) == replaced


# ------------------------------------------------------------------ the masker or model a command reads


@pytest.mark.parametrize("where", ["same", "inside", "containing"])
def test_export_encoder_never_touches_its_own_masker(masker_copy, capsys, where):
    before = tree(masker_copy)
    out = {"same": masker_copy, "inside": masker_copy / "enc", "containing": masker_copy.parent}[where]
    for extra in ([], ["--force"]):
        refused(capsys, "export-encoder", "--masker", masker_copy, "--out", out, *extra,
                message="which this command reads")
    assert tree(masker_copy) == before and (masker_copy / "decoder.safetensors").exists()


def test_export_encoder_refuses_an_existing_file(masker_copy, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    refused(capsys, "export-encoder", "--masker", masker_copy, "--out", tmp_path / "file")
    assert (tmp_path / "file").read_text() == "x"


def test_library_save_never_deletes_a_decoder(masker_copy):
    from veil.errors import VeilError
    from veil.maskers import load_masker

    with pytest.raises(VeilError, match="refusing to delete it"):
        load_masker(masker_copy, public_only=True).save(masker_copy, include_decoder=False)
    assert (masker_copy / "decoder.safetensors").exists()


@pytest.mark.parametrize("command", ["mask", "unmask"])
def test_mask_and_unmask_never_write_into_the_masker(masker_copy, tmp_path, capsys, command):
    before = tree(masker_copy)
    if command == "mask":
        args = ["mask", "--masker", masker_copy, "--data", "digits", "--out", masker_copy / "decoder.safetensors"]
    else:
        assert main(["mask", "--masker", str(masker_copy), "--data", "digits", "--classes", "0",
                     "--out", str(tmp_path / "m.npz")]) == 0
        args = ["unmask", "--masker", masker_copy, "--masked", tmp_path / "m.npz", "--out", masker_copy]
    refused(capsys, *args, "--force", message="which this command reads")
    assert tree(masker_copy) == before


def test_train_masker_never_replaces_a_decoder_without_force(masker_copy, capsys):
    before = tree(masker_copy)
    err = refused(capsys, "train-masker", "--data", "digits", "--epochs", "1", "--out", masker_copy)
    assert str(masker_copy) in err
    assert tree(masker_copy) == before


def test_train_refuses_an_existing_file_before_training(rf_model, tmp_path, capsys, monkeypatch):
    from veil.classifiers.base import MaskedClassifier

    def no_training(*args, **kwargs):
        raise AssertionError("training started although the output is refused")

    monkeypatch.setattr(MaskedClassifier, "fit", no_training)
    (tmp_path / "file").write_text("x")
    refused(capsys, "train", "--masked", rf_model / "m.npz", "--model", "rf", "--out", tmp_path / "file")
    assert (tmp_path / "file").read_text() == "x"


def test_train_force_over_an_nn_model_leaves_nothing_of_it_but_the_users_file(rf_model, tmp_path, capsys):
    out = tmp_path / "model"
    args = ["train", "--masked", rf_model / "m.npz", "--out", out]
    assert run(capsys, *args, "--model", "nn", "--epochs", "1")[0] == 0
    assert (out / "model.safetensors").exists() and (out / "checkpoints").is_dir()
    assert mode(out / "checkpoints") == 0o700
    assert all(mode(p) == 0o600 for p in (out / "checkpoints").iterdir())
    assert "checkpoints" in _record(out)["train"]  # trained in place, recorded when finished
    (out / "notes.txt").write_text("mine")
    refused(capsys, *args, "--model", "rf", "--params", '{"n_estimators": 5}')
    assert run(capsys, *args, "--model", "rf", "--params", '{"n_estimators": 5}', "--force")[0] == 0
    assert sorted(p.name for p in out.iterdir()) == [".veil-outputs.json", "model.json", "model.skops", "notes.txt"]


# ------------------------------------------------------------------ secrets are owner-only


def test_a_trained_masker_and_its_checkpoints_are_owner_only(tmp_path):
    from veil.data import load
    from veil.workflows import train_masker

    masker_dir = tmp_path / "new" / "masker"
    train_masker(load("digits").subset(slice(0, 40)), masker_dir, epochs=1, batch_size=16, progress=False)
    assert mode(masker_dir) == 0o700
    assert mode(masker_dir / "decoder.safetensors") == 0o600
    assert mode(masker_dir / "checkpoints") == 0o700
    checkpoints = list((masker_dir / "checkpoints").iterdir())
    assert checkpoints and all(mode(p) == 0o600 for p in checkpoints)


def test_a_forced_masker_stays_owner_only_and_does_not_resume_the_old_run(tmp_path):
    from veil.data import load
    from veil.workflows import train_masker

    data, masker_dir = load("digits").subset(slice(0, 40)), tmp_path / "masker"
    train_masker(data, masker_dir, epochs=2, batch_size=16, progress=False)
    masker_dir.chmod(0o755)  # opened up by hand: the forced run closes it again
    (masker_dir / "notes.txt").write_text("mine")
    train_masker(data, masker_dir, epochs=1, batch_size=16, progress=False, force=True)
    [checkpoint] = (masker_dir / "checkpoints").iterdir()
    assert checkpoint.name.endswith("_1.pt")  # a new run of 1 epoch, not the old run of 2 resumed
    assert mode(masker_dir) == 0o700 and mode(masker_dir / "checkpoints") == 0o700
    assert mode(masker_dir / "decoder.safetensors") == 0o600
    assert (masker_dir / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("permissions", [0o644, 0o640, 0o604])
def test_an_exposed_key_file_is_refused(keyed, tmp_path, capsys, permissions):
    key = tmp_path / "key"
    shutil.copy(keyed / "key", key)
    key.chmod(permissions)
    args = ["unmask", "--masked", keyed / "m.npz", "--key-file", key, "--limit", "2"]
    err = refused(capsys, *args, "--out", tmp_path / "a", message=f"chmod 600 {key}")
    assert "readable by group or others" in err and not (tmp_path / "a").exists()
    assert run(capsys, *args, "--out", tmp_path / "b", "--insecure-key-permissions")[0] == 0


# ------------------------------------------------------------------ concurrency and interrupted runs


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(keyed, tmp_path, capsys):
    from veil.io.output import output_lock

    out = tmp_path / "m.npz"
    args = ["mask", "--method", "etc", "--key-file", keyed / "key", "--data", "digits", "--classes", "0",
            "--out", out]
    with output_lock(out):
        refused(capsys, *args, message="another veil command is writing this output")
        refused(capsys, *args, "--force", message="another veil command is writing this output")
    assert not out.exists() and not list(tmp_path.iterdir())  # and no lock file beside the output
    assert run(capsys, *args)[0] == 0


@pytest.mark.parametrize("command", ["mask", "unmask", "export-encoder", "train-masker"])
def test_a_half_trained_masker_is_named_incomplete_with_the_resume_command(keyed, tmp_path, capsys, command):
    half = tmp_path / "half"
    (half / "checkpoints").mkdir(parents=True)
    (half / "checkpoints" / "checkpoint_1.pt").write_bytes(b"weights")
    args = {"mask": ["mask", "--masker", half, "--data", "digits", "--out", tmp_path / "m.npz"],
            "unmask": ["unmask", "--masker", half, "--masked", keyed / "m.npz", "--out", tmp_path / "png"],
            "export-encoder": ["export-encoder", "--masker", half, "--out", tmp_path / "enc"],
            "train-masker": ["train-masker", "--data", "digits", "--out", half]}[command]
    err = refused(capsys, *args, message="incomplete")
    assert "veil train-masker --resume" in err and "file not found" not in err


# ------------------------------------------------------------------ a failure at any point leaves no output


def _small_npz(root: Path) -> Path:
    from veil.data import load

    digits = load("digits").subset(slice(0, 40))
    np.savez(root / "small.npz", images=digits.images, labels=digits.labels)
    return root / "small.npz"


def _commands(root: Path, masker: Path, keyed: Path, rf: Path) -> dict:
    """Each writing command, cheaply: (arguments, output, whether its output is a resumable training folder)."""
    key = ["--key-file", keyed / "key"]
    few = ["--data", "digits", "--classes", "0"]
    return {
        "keygen": (["keygen"], "key", False),
        "mask-etc": (["mask", "--method", "etc", *key, *few], "m.npz", False),
        "mask-aae": (["mask", "--masker", masker, *few], "m.npz", False),
        "unmask-key": (["unmask", "--masked", keyed / "m.npz", *key, "--limit", "3"], "png", False),
        "unmask-aae": (["unmask", "--masker", masker, "--masked", rf / "m.npz", "--limit", "3"], "png", False),
        "export-encoder": (["export-encoder", "--masker", masker], "enc", False),
        "train-rf": (["train", "--masked", rf / "m.npz", "--model", "rf", "--params", '{"n_estimators": 3}'],
                     "model", False),
        "evaluate": (["evaluate", "--model", rf / "model", "--masked", rf / "m.npz", "--json"], "e.json", False),
        "compress-report": (["compress-report", *few], "c", False),
        "bench": (["bench", "encrypt", *few, "--repeats", "1", "--json"], "b.json", False),
        "train-masker": (["train-masker", "--data", root / "small.npz", "--epochs", "1", "--batch-size", "16"],
                         "masker", True),
    }


COMMANDS = ["keygen", "mask-etc", "mask-aae", "unmask-key", "unmask-aae", "export-encoder", "train-rf", "evaluate",
            "compress-report", "bench", "train-masker"]


class InjectedFailure:
    """Make the n-th call of `name` (os.replace or tempfile.mkstemp: every writer goes through them) fail."""

    def __init__(self, module, name: str, n: int):
        self.original, self.n, self.calls = getattr(module, name), n, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.n:
            raise OSError(28, "No space left on device (injected)")
        return self.original(*args, **kwargs)


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(command=st.sampled_from(COMMANDS), where=st.sampled_from(["replace", "mkstemp"]), n=st.integers(1, 4),
       force=st.booleans())
def test_a_failure_at_any_point_leaves_no_output(trained_masker, keyed, rf_model, tmp_path_factory, command, where,
                                                 n, force):
    import tempfile

    root = tmp_path_factory.mktemp("fail")
    _small_npz(root)
    masker, _ = trained_masker
    args, name, training = _commands(root, masker, keyed, rf_model)[command]
    out = root / name
    old = None
    if force:  # replacing an existing output: a failure must leave the old one as it was
        out.write_bytes(b"old output")
        old = out.read_bytes()
    module, attr = (os, "replace") if where == "replace" else (tempfile, "mkstemp")
    failure = InjectedFailure(module, attr, n)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, attr, failure)
        code = main([str(a) for a in args] + _out_flag(args, out) + (["--force"] if force else []))
    failed = failure.calls >= n
    assert (code != 0) == failed, (command, code, failure.calls)
    leftovers = [p.name for p in root.iterdir() if p.name.startswith(f".{name}.")]
    assert not leftovers, leftovers
    if not failed:
        assert out.exists() and (old is None or not out.is_file() or out.read_bytes() != old)
    elif old is not None:
        assert out.read_bytes() == old  # the old output survives a failed replacement
    elif training:
        # a new training run writes where it stands so a crash can be resumed; it never looks finished
        assert not (out / "manifest.json").exists()
    else:
        assert not out.exists()


def _out_flag(args, out) -> list[str]:
    return [str(out)] if args[0] == "evaluate" or args[0] == "bench" else ["--out", str(out)]


def test_a_copied_tree_outside_git_records_the_commit_it_was_copied_from(tmp_path):
    """A checkout copied to another machine without .git (a GPU run) names its source commit, not 'unknown'."""
    import subprocess
    import sys

    import veil

    shutil.copytree(Path(veil.__file__).parent, tmp_path / "veil")
    probe = "from veil.results import git_commit; print(git_commit())"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "GIT_CEILING_DIRECTORIES": str(tmp_path)}
    plain = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    named = subprocess.run([sys.executable, "-c", probe], env={**env, "VEIL_SOURCE_COMMIT": "abc123"},
                           capture_output=True, text=True, check=True)
    assert plain.stdout.strip() == "unknown"
    assert named.stdout.strip() == "abc123 (copied tree, VEIL_SOURCE_COMMIT)"


def test_the_named_source_commit_wins_over_a_stale_git_in_the_copy():
    """The GPU machine's copy carried an old .git: git there named a commit the code did not come from."""
    import subprocess
    import sys

    probe = "from veil.results import git_commit; print(git_commit())"
    named = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "VEIL_SOURCE_COMMIT": "abc123"},
                           capture_output=True, text=True, check=True)
    assert named.stdout.strip() == "abc123 (copied tree, VEIL_SOURCE_COMMIT)"
