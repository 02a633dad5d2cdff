"""Issue 10, part 2: every input problem is one line on stderr, exit 2, no traceback and no output written.

Each test names a case the issue lists (or a close relative of one); before the fix each of them raised a traceback,
wrote something, or said something misleading.
"""
import builtins
import io
import os
import re
import shutil
import tarfile
import warnings
import zipfile

import numpy as np
import pytest
from PIL import Image

from veil.cli import main
from veil.errors import VeilError


def run(capsys, *args):
    code = main([os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def refused(capsys, args, *words, out=None):
    """Run the CLI and check the refusal: exit 2, one line naming the problem, no traceback, nothing written."""
    code, stdout, err = run(capsys, *args)
    assert code == 2, (stdout, err)
    assert err.count("\n") == 1 and err.startswith("veil: error: ") and not err.startswith("veil: error: veil"), err
    assert "Traceback" not in err and stdout == ""
    message = re.sub(r"/\S*?/pytest-\d+/[^/\s]+", "", err)  # test names in tmp paths must not match words
    for word in words:
        assert word in message, err
    if out is not None:
        assert not out.exists() and not list(out.parent.glob(f".{out.name}*"))
    return err


def png_bytes(seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def image_folder(root, layout=("cat/0.png", "cat/1.png", "dog/2.png", "dog/3.png")):
    for i, name in enumerate(layout):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(png_bytes(i))
    return root


def mask_args(data, out, *extra):
    """`veil mask` with a keyless filter: the shortest command that reads --data and writes --out."""
    return ["mask", "--method", "blur", "--data", data, "--out", out, *extra]


@pytest.fixture
def unreadable(monkeypatch):
    """Make files unreadable; as root (who reads anything) open() is made to answer as the kernel would."""
    denied = set()

    def deny(path):
        path.chmod(0)
        denied.add(os.fspath(path))

    if os.geteuid() == 0:
        real_open = builtins.open

        def guarded_open(file, *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and os.fspath(file) in denied:
                raise PermissionError(13, "Permission denied", os.fspath(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", guarded_open)
    return deny


# ---------------------------------------------------------------- data folders


def test_symlink_loop_in_data_folder(tmp_path, capsys):
    data = image_folder(tmp_path / "set")
    (data / "cat" / "loop.png").symlink_to("loop.png")
    refused(capsys, mask_args(data, tmp_path / "o.npz"), "loop.png", "symlink loop", out=tmp_path / "o.npz")


def test_folder_link_back_to_its_parent(tmp_path, capsys):
    data = image_folder(tmp_path / "set")
    (data / "cat" / "up").symlink_to("..")
    refused(capsys, mask_args(data, tmp_path / "o.npz"), "up", "symlink loop", out=tmp_path / "o.npz")


def test_dangling_symlink(tmp_path, capsys):
    data = image_folder(tmp_path / "set")
    (data / "dog" / "gone.png").symlink_to(tmp_path / "missing.png")
    refused(capsys, mask_args(data, tmp_path / "o.npz"), "gone.png", "dangling symlink", out=tmp_path / "o.npz")


def test_links_to_real_files_and_folders_are_followed(tmp_path):
    from veil.data import load

    data = image_folder(tmp_path / "set")
    image_folder(tmp_path / "elsewhere", ("emu/9.png",))
    (data / "emu").symlink_to(tmp_path / "elsewhere" / "emu")
    assert load(str(data)).class_names == ["cat", "dog", "emu"]


def test_name_that_is_not_utf8(tmp_path, capsys):
    data = image_folder(tmp_path / "set")
    os.rename(data / "cat" / "0.png", os.fsencode(data / "cat") + b"/bad\xff.png")
    err = refused(capsys, mask_args(data, tmp_path / "o.npz"), "bad\\xff.png", "not valid UTF-8",
                  out=tmp_path / "o.npz")
    err.encode("utf-8")  # printable: no lone surrogate


def test_fifo_in_data_folder_is_refused_not_read(tmp_path, capsys):
    data = image_folder(tmp_path / "set")
    os.mkfifo(data / "cat" / "pipe.png")
    refused(capsys, mask_args(data, tmp_path / "o.npz"), "pipe.png", "FIFO", out=tmp_path / "o.npz")


def test_unreadable_image(tmp_path, capsys, unreadable):
    data = image_folder(tmp_path / "set")
    unreadable(data / "dog" / "2.png")
    refused(capsys, mask_args(data, tmp_path / "o.npz"), "2.png", "permission denied", out=tmp_path / "o.npz")


def test_data_path_that_is_a_symlink_loop(tmp_path, capsys):
    (tmp_path / "self").symlink_to("self")
    refused(capsys, mask_args(tmp_path / "self", tmp_path / "o.npz"), "self", "symlink loop", out=tmp_path / "o.npz")


# ---------------------------------------------------------------- splits


def test_archive_with_both_splits_needs_split(tmp_path, capsys):
    """The CIFAR-10 JPEG archive has train/ and test/: without --split they were silently merged."""
    tree = image_folder(tmp_path / "tree", ("train/cat/0.png", "train/dog/1.png", "test/cat/2.png", "test/dog/3.png"))
    archive = tmp_path / "cifar.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tree, arcname=".")
    refused(capsys, mask_args(archive, tmp_path / "o.npz"), "cifar.tar.gz", "splits test, train", "--split",
            out=tmp_path / "o.npz")
    assert run(capsys, *mask_args(archive, tmp_path / "o.npz", "--split", "test"))[0] == 0
    assert "2 images" in run(capsys, *mask_args(archive, tmp_path / "p.npz", "--split", "test"))[1]
    assert "4 images" in run(capsys, *mask_args(archive, tmp_path / "q.npz", "--split", "train+test"))[1]


def test_cifar_and_mnist_folders_need_split(cifar_folder, mnist_folder, tmp_path, capsys):
    refused(capsys, mask_args(cifar_folder, tmp_path / "o.npz"), "splits test, train", out=tmp_path / "o.npz")
    refused(capsys, mask_args(mnist_folder, tmp_path / "o.npz"), "splits test, train", out=tmp_path / "o.npz")
    refused(capsys, mask_args(cifar_folder, tmp_path / "o.npz", "--split", "valid"), "no split named 'valid'",
            out=tmp_path / "o.npz")


def test_tree_with_one_split_needs_no_split(tmp_path):
    from veil.data import load

    tree = image_folder(tmp_path / "tree", ("train/cat/0.png", "train/dog/1.png"))
    assert len(load(str(tree))) == 2


# ---------------------------------------------------------------- archive members


def _tar_with(path, member: tarfile.TarInfo, data: bytes = b""):
    good = png_bytes()
    with tarfile.open(path, "w") as tar:
        for name in ("cat/0.png", "dog/1.png"):
            info = tarfile.TarInfo(name)
            info.size = len(good)
            tar.addfile(info, io.BytesIO(good))
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if member.isfile() else None)
    return path


def _member(name, kind=tarfile.REGTYPE, target=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


@pytest.mark.parametrize("name", ["../evil.jpg", "cat/../../evil.png", "/abs/cat/x.png", "..\\evil.png"])
def test_tar_member_that_leaves_the_archive(name, tmp_path, capsys):
    archive = _tar_with(tmp_path / "a.tar", _member(name), png_bytes())
    refused(capsys, mask_args(archive, tmp_path / "o.npz"), "a.tar", "unsafe member name", out=tmp_path / "o.npz")


@pytest.mark.parametrize("kind,word", [(tarfile.SYMTYPE, "symlink"), (tarfile.LNKTYPE, "hard link"),
                                       (tarfile.CHRTYPE, "character device"), (tarfile.BLKTYPE, "block device"),
                                       (tarfile.FIFOTYPE, "FIFO")])
def test_tar_link_and_device_members_are_refused_not_skipped(kind, word, tmp_path, capsys):
    archive = _tar_with(tmp_path / "a.tar", _member("cat/link.png", kind, "cat/0.png"))
    refused(capsys, mask_args(archive, tmp_path / "o.npz"), "cat/link.png", word, out=tmp_path / "o.npz")


def test_tar_member_name_not_utf8(tmp_path, capsys):
    archive = _tar_with(tmp_path / "a.tar", _member(os.fsdecode(b"cat/bad\xff.png")), png_bytes())
    refused(capsys, mask_args(archive, tmp_path / "o.npz"), "not valid UTF-8", out=tmp_path / "o.npz")


def _zip_with(path, name, data, mode=0o100644):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("cat/0.png", png_bytes())
        archive.writestr("dog/1.png", png_bytes(1))
        info = zipfile.ZipInfo(name)
        info.external_attr = mode << 16
        archive.writestr(info, data)
    return path


@pytest.mark.parametrize("name", ["../evil.jpg", "/etc/cat/x.png", "C:/x/cat/y.png"])
def test_zip_member_that_leaves_the_archive(name, tmp_path, capsys):
    archive = _zip_with(tmp_path / "a.zip", name, png_bytes())
    refused(capsys, mask_args(archive, tmp_path / "o.npz"), "unsafe member name", out=tmp_path / "o.npz")


def test_zip_symlink_member(tmp_path, capsys):
    archive = _zip_with(tmp_path / "a.zip", "cat/link.png", png_bytes(), mode=0o120777)
    refused(capsys, mask_args(archive, tmp_path / "o.npz"), "cat/link.png", "symlink", out=tmp_path / "o.npz")


# ---------------------------------------------------------------- arguments


def test_params_that_are_not_an_object(tmp_path, capsys):
    refused(capsys, ["train", "--masked", tmp_path / "m.npz", "--model", "rf", "--out", tmp_path / "rf",
                     "--params", "[1,2]"], "--params", "expected a JSON object", out=tmp_path / "rf")
    refused(capsys, ["train", "--masked", tmp_path / "m.npz", "--model", "rf", "--out", tmp_path / "rf",
                     "--params", "{oops"], "--params", "not valid JSON", out=tmp_path / "rf")


@pytest.fixture
def keyed_set(tmp_path, capsys):
    """A key, a small labelled .npz and its EtC-masked set."""
    key = tmp_path / "key"
    assert run(capsys, "keygen", "--out", key)[0] == 0
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "plain.npz", images=rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8),
             labels=np.array([0, 1] * 3))
    assert run(capsys, "mask", "--method", "etc", "--key-file", key, "--data", tmp_path / "plain.npz",
               "--out", tmp_path / "m.npz")[0] == 0
    return key, tmp_path / "plain.npz", tmp_path / "m.npz"


@pytest.mark.parametrize("limit", ["-1", "0"])
def test_unmask_limit_must_be_positive(limit, keyed_set, tmp_path, capsys):
    """`--limit -1` wrote all images but the last, as a Python slice would."""
    key, _, masked = keyed_set
    refused(capsys, ["unmask", "--key-file", key, "--masked", masked, "--out", tmp_path / "r", "--limit", limit],
            "unmask: argument --limit", "positive integer", out=tmp_path / "r")


def test_library_limit_must_be_positive(keyed_set, tmp_path):
    from veil.keyfiles import read_secret
    from veil.workflows import unmask

    key, _, masked = keyed_set
    with pytest.raises(VeilError, match="positive"):
        unmask(masked, tmp_path / "r", secret=read_secret(key), limit=-1)
    assert not (tmp_path / "r").exists()


COUNTS = [
    ["train-masker", "--data", "digits", "--out", "{out}", "--epochs", "0"],
    ["train-masker", "--data", "digits", "--out", "{out}", "--batch-size", "-4"],
    ["mask", "--method", "etc", "--block", "0", "--data", "digits", "--out", "{out}"],
    ["mask", "--method", "blur", "--kernel", "-3", "--data", "digits", "--out", "{out}"],
    ["mask", "--method", "randfilter", "--seed", "-1", "--data", "digits", "--out", "{out}"],
    ["train", "--masked", "m.npz", "--model", "nn", "--epochs", "0", "--out", "{out}"],
    ["bench", "encrypt", "--repeats", "0", "--json", "{out}"],
    ["attack", "--method", "itn", "--threat", "c", "--masked", "m.npz", "--victim", "digits", "--public", "digits",
     "--pairs", "0", "--out", "{out}"],
    ["attack", "--method", "itn", "--threat", "a", "--masked", "m.npz", "--victim", "digits", "--public", "digits",
     "--train-images", "-5", "--out", "{out}"],
    ["attack", "--method", "itn", "--threat", "a", "--masked", "m.npz", "--victim", "digits", "--public", "digits",
     "--epochs", "0", "--out", "{out}"],
    ["reproduce", "tradeoff", "--jobs", "0", "--out", "{out}"],
]


@pytest.mark.parametrize("args", COUNTS, ids=lambda a: f"{a[0]}{[x for x in a if x.startswith('--')][-2]}")
def test_zero_and_negative_counts_are_refused(args, tmp_path, capsys):
    out = tmp_path / "out"
    err = refused(capsys, [a.replace("{out}", str(out)) for a in args], "argument --", out=out)
    assert "positive integer" in err or "from 0 up" in err


def test_epochs_for_a_model_without_epochs(tmp_path, capsys, keyed_set):
    """`train --model rf --epochs N` blamed --params ("unexpected keyword argument 'epochs'")."""
    _, _, masked = keyed_set
    err = refused(capsys, ["train", "--masked", masked, "--model", "rf", "--epochs", "3", "--out", tmp_path / "rf"],
                  "--epochs", "rf", out=tmp_path / "rf")
    assert "--params" not in err
    refused(capsys, ["train", "--masked", masked, "--model", "rf", "--epochs", "0", "--out", tmp_path / "rf"],
            "--epochs", "positive integer", out=tmp_path / "rf")


@pytest.mark.parametrize("args", [["nosuchcommand"], ["unmask", "--limit", "x"], []])
def test_no_doubled_prefix(args, capsys):
    refused(capsys, args)


# ---------------------------------------------------------------- files


def test_text_file_as_masked_set(tmp_path, capsys):
    """A text file was reported as holding "object arrays (they would need pickle)"."""
    (tmp_path / "notes.npz").write_text("just some notes\n")
    err = refused(capsys, ["evaluate", "--model", tmp_path, "--masked", tmp_path / "notes.npz"], "notes.npz",
                  "not an .npz file")
    assert "pickle" not in err and "object" not in err


def test_npy_file_as_masked_set(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros(3))
    refused(capsys, ["evaluate", "--model", tmp_path, "--masked", tmp_path / "x.npy"], "x.npy", "not an .npz file")


def test_object_arrays_are_still_named(tmp_path, capsys):
    np.savez(tmp_path / "obj.npz", data=np.array([{"a": 1}], dtype=object))
    refused(capsys, ["evaluate", "--model", tmp_path, "--masked", tmp_path / "obj.npz"], "object arrays")


def test_unreadable_masked_file(keyed_set, tmp_path, capsys, unreadable):
    key, _, masked = keyed_set
    unreadable(masked)
    refused(capsys, ["unmask", "--key-file", key, "--masked", masked, "--out", tmp_path / "r"], "m.npz",
            "permission denied", out=tmp_path / "r")


def test_folder_as_masked_file(keyed_set, tmp_path, capsys):
    key, _, _ = keyed_set
    (tmp_path / "dir.npz").mkdir()
    refused(capsys, ["unmask", "--key-file", key, "--masked", tmp_path / "dir.npz", "--out", tmp_path / "r"],
            "dir.npz", "is a directory", out=tmp_path / "r")


def test_unreadable_idx_file_is_not_called_corrupt(mnist_folder, tmp_path, capsys, unreadable):
    data = tmp_path / "mnist"
    shutil.copytree(mnist_folder, data)
    unreadable(data / "t10k-images-idx3-ubyte.gz")
    err = refused(capsys, mask_args(data, tmp_path / "o.npz", "--split", "test"), "permission denied")
    assert "gzip" not in err


def test_unreadable_cifar_batch(cifar_folder, tmp_path, capsys, unreadable):
    data = tmp_path / "cifar"
    shutil.copytree(cifar_folder, data)
    unreadable(data / "test_batch")
    refused(capsys, mask_args(data, tmp_path / "o.npz", "--split", "test"), "test_batch", "permission denied")


def test_changed_tensor_shape_names_the_tensor(tiny_aae, tmp_path, capsys):
    """The message was cut at torch's first line, "Error(s) in loading state_dict for Encoder:", before the name."""
    import json

    from safetensors.numpy import load_file, save_file

    from veil.io.read import sha256_file

    folder = tmp_path / "masker"
    tiny_aae.save(folder)
    weights = load_file(folder / "encoder.safetensors")
    name = sorted(weights)[0]
    weights[name] = np.concatenate([weights[name], weights[name][:1]])
    save_file(weights, folder / "encoder.safetensors")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["encoder.safetensors"] = sha256_file(folder / "encoder.safetensors")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    refused(capsys, ["mask", "--masker", folder, "--data", "digits", "--out", tmp_path / "o.npz"],
            "encoder.safetensors", f"size mismatch for {name}", out=tmp_path / "o.npz")


def test_manifest_config_of_the_wrong_type(tiny_aae, tmp_path, capsys):
    import json

    folder = tmp_path / "masker"
    tiny_aae.save(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["config"]["channels"] = "many"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    refused(capsys, ["mask", "--masker", folder, "--data", "digits", "--out", tmp_path / "o.npz"], "channels",
            out=tmp_path / "o.npz")


def test_exact_unmask_prints_no_warning(keyed_set, tmp_path, capsys):
    """An exact scheme's reconstruction equals the source: scikit-image's PSNR divided by a zero MSE and warned."""
    key, plain, masked = keyed_set
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, out, err = run(capsys, "unmask", "--key-file", key, "--masked", masked, "--data", plain,
                             "--out", tmp_path / "r")
    assert code == 0 and err == "", err
    assert "reconstruction_mse   0.0000" in out and "psnr                 100.0000" in out


@pytest.mark.parametrize("out", ["o.npz", "shards"])
def test_a_link_in_an_archive_is_refused_alike_whole_and_streamed(tmp_path, capsys, out):
    """The .npz reads the archive whole (`veil.data.formats`), a shard folder streams it (`veil.data.stream`): one
    member check serves both, naming the kind of member."""
    archive = tmp_path / "set.tar"
    with tarfile.open(archive, "w") as tar:
        for name in ("cat/0.png", "dog/1.png"):
            info = tarfile.TarInfo(name)
            info.size = len(data := png_bytes())
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("dog/2.png")
        link.type, link.linkname = tarfile.SYMTYPE, "1.png"
        tar.addfile(link)
    refused(capsys, mask_args(archive, tmp_path / out), "dog/2.png", "is a symlink; archives holding links or "
            "special files are refused", out=tmp_path / out)


@pytest.mark.parametrize("out", ["o.npz", "shards"])
def test_a_link_in_a_zip_is_refused_alike_whole_and_streamed(tmp_path, capsys, out):
    """As for a tar: one zip member check (`veil.data.formats.zip_files`) serves the whole and the streamed reader."""
    import stat
    import zipfile

    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("cat/0.png", png_bytes())
        handle.writestr("dog/1.png", png_bytes())
        link = zipfile.ZipInfo("dog/2.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        handle.writestr(link, "1.png")
    refused(capsys, mask_args(archive, tmp_path / out), "dog/2.png", "is a symlink; archives holding links or "
            "special files are refused", out=tmp_path / out)
