"""Trust: nothing veil loads can run code, tampering is refused, and bad input gets one clear line.

Threat model: artifacts (maskers, models, masked sets, checkpoints, datasets) may come from another party and be
crafted. Loading must never unpickle; every file a manifest lists must match its sha256.
"""
import hashlib
import json
import os
import pickle
import shutil

import numpy as np
import pytest
import torch

from veil.cli import main
from test_cli import assert_clean_error, run


class Payload:
    """A pickle that would create a marker file when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def payload_bytes(marker) -> bytes:
    return pickle.dumps(Payload(marker))


def plant(directory, manifest_name, file_name, data: bytes) -> None:
    """Replace a listed file and update its manifest checksum, as a careful attacker would."""
    (directory / file_name).write_bytes(data)
    manifest = json.loads((directory / manifest_name).read_text())
    manifest["files"][file_name] = hashlib.sha256(data).hexdigest()
    (directory / manifest_name).write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def models(trained_masker, tmp_path_factory):
    masker_dir, _ = trained_masker
    out = tmp_path_factory.mktemp("models")
    assert main(["mask", "--masker", str(masker_dir), "--data", "digits", "--out", str(out / "m.npz")]) == 0
    for model, extra in (("nn", ["--epochs", "1"]), ("rf", ["--params", '{"n_estimators": 3}'])):
        assert main(["train", "--masked", str(out / "m.npz"), "--model", model, "--out", str(out / model), *extra]) == 0
    return out


#: what loading says when a masker file holds a pickle (its checksum updated, so the loader itself must refuse it)
MASKER_SLOT_ERRORS = {"encoder.safetensors": "not a valid safetensors file (",
                      "decoder.safetensors": "not a valid safetensors file (",
                      "manifest.json": "not valid JSON ("}


def copy_masker(trained_masker, tmp_path):
    masker_dir, _ = trained_masker
    copy = tmp_path / "masker"
    shutil.copytree(masker_dir, copy, ignore=shutil.ignore_patterns("checkpoints"))
    return copy


def unmask_args(masker, models, out):
    return ["unmask", "--masker", masker, "--masked", models / "m.npz", "--out", out, "--limit", "2"]


@pytest.mark.parametrize("slot", ["encoder.safetensors", "decoder.safetensors", "manifest.json"])
def test_masker_slots_never_unpickle(slot, trained_masker, models, tmp_path, capsys):
    """A pickle planted in each masker file, with the manifest checksum updated, reaches that file's loader (the
    error names the file and the loader's refusal), and never runs."""
    copy = copy_masker(trained_masker, tmp_path)
    assert run(capsys, *unmask_args(copy, models, tmp_path / "before"))[0] == 0  # the untouched copy unmasks
    marker = tmp_path / "pwned"
    if slot == "manifest.json":
        (copy / slot).write_bytes(payload_bytes(marker))
    else:
        plant(copy, "manifest.json", slot, payload_bytes(marker))
    message = f"{copy / slot}: {MASKER_SLOT_ERRORS[slot]}"
    assert_clean_error(capsys, unmask_args(copy, models, tmp_path / "o"), message, leftover=tmp_path / "o")
    mask = ["mask", "--masker", copy, "--data", "digits", "--classes", "0,1", "--out", tmp_path / "o.npz"]
    if slot == "decoder.safetensors":  # mask never reads the decoder
        assert run(capsys, *mask)[0] == 0 and (tmp_path / "o.npz").exists()
    else:
        assert_clean_error(capsys, mask, message, leftover=tmp_path / "o.npz")
    assert not marker.exists()


@pytest.mark.parametrize("slot", ["encoder.safetensors", "decoder.safetensors"])
def test_tampered_masker_weights_fail_their_checksum(slot, trained_masker, models, tmp_path, capsys):
    """One flipped byte in a weights file, the manifest left alone: unmask refuses it with the checksum error that
    names the file. The same command on the untouched copy succeeds, so nothing else is at fault."""
    copy = copy_masker(trained_masker, tmp_path)
    assert run(capsys, *unmask_args(copy, models, tmp_path / "before"))[0] == 0
    data = bytearray((copy / slot).read_bytes())
    data[-5] ^= 0xFF
    (copy / slot).write_bytes(bytes(data))
    code, out, err = run(capsys, *unmask_args(copy, models, tmp_path / "o"))
    assert (code, out) == (2, "")
    assert err == f"veil: error: {copy / slot}: checksum mismatch: the file was modified or truncated\n"
    assert not (tmp_path / "o").exists()


#: what loading says when a model file holds a pickle (checksum updated)
MODEL_SLOT_ERRORS = {"model.safetensors": "not a valid safetensors file (",
                     "model.skops": "not a valid skops model (",
                     "model.json": "not valid JSON ("}


@pytest.mark.parametrize("model,slot", [("nn", "model.safetensors"), ("rf", "model.skops"), ("nn", "model.json")])
def test_model_slots_never_unpickle(model, slot, models, tmp_path, capsys):
    copy = tmp_path / model
    shutil.copytree(models / model, copy, ignore=shutil.ignore_patterns("checkpoints"))
    assert run(capsys, "evaluate", "--model", copy, "--masked", models / "m.npz")[0] == 0  # the untouched copy works
    marker = tmp_path / "pwned"
    if slot == "model.json":
        (copy / slot).write_bytes(payload_bytes(marker))
    else:
        plant(copy, "model.json", slot, payload_bytes(marker))
    assert_clean_error(capsys, ["evaluate", "--model", copy, "--masked", models / "m.npz"],
                       f"{copy / slot}: {MODEL_SLOT_ERRORS[slot]}")
    assert not marker.exists()


def test_masked_set_and_dataset_npz_never_unpickle(tmp_path, capsys, trained_masker, models):
    marker = tmp_path / "pwned"
    (tmp_path / "pickle.npz").write_bytes(payload_bytes(marker))
    np.savez(tmp_path / "objects.npz", data=np.array([Payload(marker)], dtype=object), labels=np.zeros(1, int))
    np.savez(tmp_path / "images.npz", images=np.array([Payload(marker)], dtype=object))
    # a raw pickle is refused by name (its wording is another case of issue 10); object arrays by their reason
    reasons = {"pickle.npz": "", "objects.npz": ": contains object arrays", "images.npz": ": contains object arrays"}
    for name in ("pickle.npz", "objects.npz"):
        assert_clean_error(capsys, ["evaluate", "--model", models / "nn", "--masked", tmp_path / name],
                           f"{tmp_path / name}{reasons[name]}")
    masker_dir, _ = trained_masker
    for name in ("pickle.npz", "images.npz"):
        assert_clean_error(capsys, ["mask", "--masker", masker_dir, "--data", tmp_path / name, "--out", tmp_path / "o.npz"],
                           f"{tmp_path / name}{reasons[name]}", leftover=tmp_path / "o.npz")
    assert not marker.exists()


def test_checkpoint_never_unpickles(tmp_path, capsys):
    marker = tmp_path / "pwned"
    (tmp_path / "m" / "checkpoints").mkdir(parents=True)
    torch.save({"trainer": Payload(marker)}, tmp_path / "m" / "checkpoints" / "checkpoint_1.pt")
    (tmp_path / "m" / "training-seed.json").write_text('{"seed": 12345678901}')  # as a run of today keeps it
    assert_clean_error(capsys, ["train-masker", "--data", "digits", "--out", tmp_path / "m", "--epochs", "2", "--resume"],
                       f"{tmp_path / 'm' / 'checkpoints' / 'checkpoint_1.pt'}: cannot resume from this checkpoint "
                       "(UnpicklingError: Weights only load failed")
    assert not marker.exists()


def test_cifar_pickle_with_code_is_refused(cifar_folder, tmp_path, capsys, trained_masker):
    masker_dir, _ = trained_masker
    marker = tmp_path / "pwned"
    bad = tmp_path / "cifar"
    shutil.copytree(cifar_folder, bad)
    (bad / "test_batch").write_bytes(payload_bytes(marker))
    assert_clean_error(capsys, ["mask", "--masker", masker_dir, "--data", bad, "--split", "test", "--out", tmp_path / "o.npz"],
                       f"{bad / 'test_batch'}: not a valid CIFAR batch (UnpicklingError: refused to load {os.system.__module__}.system)",
                       leftover=tmp_path / "o.npz")
    assert not marker.exists()


# ---------------------------------------------------------------- bad-input catalogue


def test_cifar_pickle_with_wrong_keys(cifar_folder, tmp_path, capsys, trained_masker):
    masker_dir, _ = trained_masker
    bad = tmp_path / "cifar"
    shutil.copytree(cifar_folder, bad)
    with open(bad / "test_batch", "wb") as f:
        pickle.dump({b"pixels": np.zeros((2, 3072), np.uint8)}, f)
    assert_clean_error(capsys, ["mask", "--masker", masker_dir, "--data", bad, "--split", "test", "--out", tmp_path / "o.npz"],
                       f"{bad / 'test_batch'}: not a valid CIFAR file: key 'data' missing")


@pytest.mark.parametrize("damage,message", [("magic", "wrong magic"), ("count", "promises shape")])
def test_idx_with_wrong_magic_or_count(damage, message, mnist_folder, tmp_path, capsys, trained_masker):
    import gzip

    masker_dir, _ = trained_masker
    bad = tmp_path / "mnist"
    shutil.copytree(mnist_folder, bad)
    raw = bytearray(gzip.decompress((bad / "t10k-images-idx3-ubyte.gz").read_bytes()))
    if damage == "magic":
        raw[2] = 0x0D
    else:
        raw[7] += 1
    (bad / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(raw)))
    assert_clean_error(capsys, ["mask", "--masker", masker_dir, "--data", bad, "--split", "test", "--out", tmp_path / "o.npz"],
                       message, leftover=tmp_path / "o.npz")


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_random_bytes_named_as_images(suffix, tmp_path, capsys, trained_masker):
    masker_dir, _ = trained_masker
    for cls in ("a", "b"):
        (tmp_path / "set" / cls).mkdir(parents=True)
        (tmp_path / "set" / cls / f"x{suffix}").write_bytes(np.random.default_rng(0).bytes(500))
    assert_clean_error(capsys, ["mask", "--masker", masker_dir, "--data", tmp_path / "set", "--out", tmp_path / "o.npz"],
                       f"x{suffix}: corrupt or unreadable image (", leftover=tmp_path / "o.npz")


def _masked_like(source, tmp_path, name, **changes):
    from veil.masked import MaskedSet

    masked = MaskedSet.load(source)
    for key, value in changes.items():
        setattr(masked, key, value)
    np.savez(tmp_path / name, data=masked.data, labels=masked.labels, class_names=np.array(masked.class_names),
             meta=np.array(json.dumps({"format": "veil-masked/1", "method": masked.method,
                                       "fingerprint": masked.fingerprint})))
    return tmp_path / name


def test_bad_vectors_and_labels(models, tmp_path, capsys, trained_masker):
    masker_dir, _ = trained_masker
    source = models / "m.npz"
    from veil.masked import MaskedSet

    base = MaskedSet.load(source)
    nan = base.data.copy()
    nan[0, 0] = np.nan
    cases = {"nan.npz": ({"data": nan}, "masked data contain NaN or infinite values"),
             "short.npz": ({"data": base.data[:, :403]}, "data have shape (403,) per sample, the model expects (404,)"),
             "labels.npz": ({"labels": base.labels + 5}, "labels out of range for 10 classes")}
    for name, (changes, message) in cases.items():
        path = _masked_like(source, tmp_path, name, **changes)
        assert_clean_error(capsys, ["evaluate", "--model", models / "rf", "--masked", path, "--json", tmp_path / "e.json"],
                           f"{path}: {message}", leftover=tmp_path / "e.json")
    short = _masked_like(source, tmp_path, "short2.npz", data=base.data[:, :403])
    assert_clean_error(capsys, ["unmask", "--masker", masker_dir, "--masked", short, "--out", tmp_path / "r"],
                       "masked vectors must have shape (N, 404), got (1797, 403)", leftover=tmp_path / "r")


def test_npz_dataset_labels_out_of_range(tmp_path, capsys, trained_masker):
    masker_dir, _ = trained_masker
    np.savez(tmp_path / "d.npz", images=np.zeros((4, 32, 32, 3), np.uint8), labels=np.array([0, 1, 2, 3]),
             class_names=np.array(["a", "b"]))
    assert_clean_error(capsys, ["mask", "--masker", masker_dir, "--data", tmp_path / "d.npz", "--out", tmp_path / "o.npz"],
                       f"{tmp_path / 'd.npz'}: labels out of range for 2 class names", leftover=tmp_path / "o.npz")


def test_unwritable_output(tmp_path, capsys, trained_masker, monkeypatch):
    masker_dir, _ = trained_masker
    (tmp_path / "file").write_text("x")
    assert_clean_error(capsys, ["mask", "--masker", masker_dir, "--data", "digits", "--out", tmp_path / "file" / "o.npz"],
                       "cannot write")
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o500)
    if os.geteuid() == 0:  # root ignores permissions: simulate the refusal the kernel would give
        import tempfile

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    assert_clean_error(capsys, ["mask", "--masker", masker_dir, "--data", "digits", "--out", readonly / "o.npz"],
                       "cannot write", leftover=readonly / "o.npz")


def test_full_disk_leaves_no_partial_file(tmp_path, capsys, trained_masker, monkeypatch):
    masker_dir, _ = trained_masker
    real_savez = np.savez

    def full_disk(handle, **arrays):
        real_savez(handle, **arrays)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    assert_clean_error(capsys, ["mask", "--masker", masker_dir, "--data", "digits", "--out", tmp_path / "o.npz"],
                       "No space left", leftover=tmp_path / "o.npz")


def test_empty_npz_and_odd_shapes(tmp_path, capsys, trained_masker):
    masker_dir, _ = trained_masker
    np.savez(tmp_path / "empty.npz", images=np.zeros((0, 32, 32, 3), np.uint8), labels=np.zeros(0, int))
    np.savez(tmp_path / "odd.npz", images=np.zeros((3, 7, 32, 32, 3), np.uint8))
    assert_clean_error(capsys, ["mask", "--masker", masker_dir, "--data", tmp_path / "empty.npz", "--out", tmp_path / "o.npz"],
                       f"{tmp_path / 'empty.npz'}: empty dataset", leftover=tmp_path / "o.npz")
    assert_clean_error(capsys, ["mask", "--masker", masker_dir, "--data", tmp_path / "odd.npz", "--out", tmp_path / "o.npz"],
                       "got shape (3, 7, 32, 32, 3)", leftover=tmp_path / "o.npz")
