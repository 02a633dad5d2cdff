"""Runs of several processes (issue 13): `--nproc N` spawned here and `torchrun` launches on "several machines" (two
node ranks on this one) train as one process does, resume after a kill at their world size, and `veil mask --nproc`
writes the very bytes one process writes.

Kept to one multi-process run per thing checked (each spawned or launched process imports torch, about 3 s of a
core): the two-node torchrun run is the reference of both the tolerance test and the resume test."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file
from sklearn.datasets import load_digits

import veil
from veil.cli import main
from veil.data import load
from veil.masked import MaskedSet
from veil.workflows import score, train_classifier, train_masker

EPOCHS = 8
NN_PARAMS = {"hidden": [64, 32], "batch_size": 32}
NN_ARGS = ["--model", "nn", "--epochs", str(EPOCHS), "--params", '{"hidden": [64, 32], "batch_size": 32}']
#: accuracy on the 597 held-out digits. Two processes see every epoch in another order (each its own shard of a
#: DistributedSampler), which changes a run about as much as another seed does: seeds 0-3 scored 0.884-0.901 in one
#: process, and each seed's two-process run was within 0.012 of it. 0.03 is about two standard errors of an accuracy
#: near 0.89 on 597 samples: it allows another order, not a run whose processes learn apart.
ACCURACY_TOLERANCE = 0.03
#: relative, on the AAE's held-out reconstruction MSE: seeds 0-2 gave 0.028-0.031 in one process (+-6% about their
#: mean), each seed's two-process run within 1.3% of its one-process twin; 10% allows another seed's worth of change.
MSE_TOLERANCE = 0.10


#: the veil under test, for new processes started in other folders
SRC = str(Path(veil.__file__).resolve().parents[1])


def env() -> dict:
    return {**os.environ, "PYTHONPATH": SRC, "VEIL_THREADS": "1", "VEIL_NO_PROGRESS": "1"}


def veil(*args) -> list[str]:
    return [sys.executable, "-m", "veil", *map(str, args)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def same_weights(a, b) -> bool:
    left, right = load_file(str(a)), load_file(str(b))
    return left.keys() == right.keys() and all(np.array_equal(left[k], right[k]) for k in left)


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    """scikit-learn's 8x8 digits as 64 features: 1200 to train on (also as a file), the other 597 to score."""
    digits = load_digits()
    X, y, names = (digits.data / 16).astype(np.float32), digits.target, [str(d) for d in range(10)]
    train, test = (MaskedSet(X[part], y[part], names, "aae", "aae:digits") for part in (slice(0, 1200),
                                                                                       slice(1200, None)))
    path = tmp_path_factory.mktemp("vectors") / "train.npz"
    train.save(path)
    return path, train, test


@pytest.fixture(scope="module")
def two_nodes(vectors, tmp_path_factory):
    """(b) Two `torchrun --nnodes 2 --nproc-per-node 1` launches, node ranks 0 and 1, as on two machines."""
    path, _, _ = vectors
    work = tmp_path_factory.mktemp("two-nodes")
    port = free_port()
    launches = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node",
                                  "1", "--node-rank", str(rank), "--master-addr", "127.0.0.1", "--master-port",
                                  str(port), "-m", "veil", "train", "--masked", str(path), *NN_ARGS, "--out",
                                  str(work / "model")], env=env(), cwd=work, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    outputs = [launch.communicate(timeout=300) for launch in launches]
    for launch, (_, err) in zip(launches, outputs):
        assert launch.returncode == 0, err
    return work, [out for out, _ in outputs]


def test_two_torchrun_nodes_train_one_model(two_nodes):
    work, stdouts = two_nodes
    assert sorted(p.name for p in work.iterdir()) == ["model"]  # rank 1 wrote nothing, not even a folder
    assert (work / "model" / "model.json").exists() and (work / "model" / "model.safetensors").exists()
    assert "nn model trained on 1200 masked samples" in stdouts[0] and stdouts[1] == ""


def test_two_processes_reach_the_accuracy_of_one(vectors, two_nodes, tmp_path):
    _, train, test = vectors
    one = train_classifier(train, "nn", tmp_path / "one", epochs=EPOCHS, progress=False, **NN_PARAMS)
    from veil.classifiers import load_classifier

    two = load_classifier(two_nodes[0] / "model")
    assert abs(score(one, test)["accuracy"] - score(two, test)["accuracy"]) <= ACCURACY_TOLERANCE


def test_resume_after_a_kill_at_two_processes(vectors, two_nodes, tmp_path):
    """(c) `--nproc 2` killed (the whole process group, -9) after its first checkpoint, then resumed at 2 processes,
    reaches the weights of the uninterrupted two-node run: spawned or launched, two processes are the same run."""
    path, train, _ = vectors
    out = tmp_path / "crashed"
    run = subprocess.Popen(veil("train", "--masked", path, *NN_ARGS, "--nproc", 2, "--out", out), env=env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while not list((out / "checkpoints").glob("*.pt")):
        assert run.poll() is None, run.stderr.read().decode()
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    assert not (out / "model.json").exists(), "training finished before it could be killed"
    train_classifier(train, "nn", out, epochs=EPOCHS, resume=True, progress=False, nproc=2, **NN_PARAMS)
    assert same_weights(out / "model.safetensors", two_nodes[0] / "model" / "model.safetensors")


@pytest.fixture(scope="module")
def aae_runs(tmp_path_factory):
    """A small AAE trained on 600 digits in two spawned processes and in one, under one fixed seed: MSE_TOLERANCE is
    stated for it. Under a seed drawn afresh each run, the gap between the two twins varies with the seed (3.1%,
    8.8% and 10.3% seen at 63-bit seeds), so the test failed by chance."""
    work = tmp_path_factory.mktemp("aae")
    images = load("digits").subset(slice(0, 600))
    config = {"epochs": 4, "batch_size": 32, "gauss_dim": 16, "cat_dim": 4, "channels": 8, "progress": False,
              "seed": 0}
    return work, {n: train_masker(images, work / f"aae{n}", nproc=n, **config) for n in (1, 2)}


def test_an_aae_in_two_processes_reconstructs_as_in_one(aae_runs):
    _, runs = aae_runs
    one, two = (runs[n].report_["reconstruction_mse"] for n in (1, 2))
    assert two == pytest.approx(one, rel=MSE_TOLERANCE)


@pytest.fixture(scope="module")
def pixels(tmp_path_factory):
    """300 random images in an .npz (which loads without scikit-learn): the AAE encoder's batches of 128 make shards
    of 128 and 172 images, EtC's of 150 and 150."""
    path = tmp_path_factory.mktemp("pixels") / "pixels.npz"
    rng = np.random.default_rng(0)
    np.savez(path, images=rng.integers(0, 256, (300, 32, 32, 3), dtype=np.uint8), labels=np.arange(300) % 3)
    return path


def _mask_in_a_new_process(argv: list[str], cwd) -> list[str]:
    """`veil mask ...` in a new process; the heavy modules it imported."""
    code = ("import sys\nfrom veil.cli import main\nassert main(sys.argv[1:]) == 0\n"
            "print([m for m in ('torch', 'sklearn', 'ignite') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=env(), cwd=cwd,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return eval(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("method", ["aae", "etc", "iidfilter"])
def test_masking_in_two_processes_writes_the_bytes_of_one(method, aae_runs, pixels, tmp_path, monkeypatch):
    """iidfilter included: its filters derive from each image alone, not from the set masked at once."""
    monkeypatch.setenv("VEIL_TEST_KEY", "0" * 64)
    source = ["--masker", str(aae_runs[0] / "aae2")] if method == "aae" else ["--method", method, "--key-env",
                                                                               "VEIL_TEST_KEY"]
    argv = ["mask", *source, "--data", str(pixels), "--out"]
    assert main([*argv, str(tmp_path / "one.npz")]) == 0
    assert _mask_in_a_new_process([*argv, "two.npz", "--nproc", "2"], tmp_path) == []
    assert (tmp_path / "two.npz").read_bytes() == (tmp_path / "one.npz").read_bytes()


def test_a_set_masked_whole_is_not_sharded(tmp_path, capsys, monkeypatch):
    """No `veil mask` method masks a set whole any more; a scheme declared so (as the torch AAEMasker is) stands in."""
    from veil.registry import SCHEMES

    monkeypatch.setattr(SCHEMES.get("blur"), "shard_unit", None)
    assert main(["mask", "--method", "blur", "--data", "digits", "--limit", "300", "--nproc", "2",
                 "--out", str(tmp_path / "m.npz")]) == 2
    assert "masks a set whole, in one process (drop --nproc)" in capsys.readouterr().err
    assert not (tmp_path / "m.npz").exists()


def _children() -> list[str]:
    """States of this process's children (R, S, Z...), the multiprocessing resource tracker aside."""
    states = []
    for status in os.listdir("/proc"):
        try:
            with open(f"/proc/{status}/status") as handle:
                fields = dict(line.split(":\t", 1) for line in handle.read().splitlines() if ":\t" in line)
            with open(f"/proc/{status}/cmdline") as handle:
                command = handle.read()
        except (OSError, ValueError):
            continue
        if fields.get("PPid", "").strip() == str(os.getpid()) and "resource_tracker" not in command:
            states.append(fields["State"][0])
    return states


def test_an_error_in_spawned_processes_is_one_line_and_leaves_no_process(vectors, tmp_path, capfd):
    """The processes meet the error themselves (a batch of 1 cannot be shared by 2); the spawning process says it
    once, exit code 2, after the launcher has stopped and reaped them all."""
    path, _, _ = vectors
    assert main(["train", "--masked", str(path), "--model", "nn", "--epochs", "1", "--params", '{"batch_size": 1}',
                 "--nproc", "2", "--out", str(tmp_path / "m")]) == 2
    assert capfd.readouterr().err.strip().splitlines() == [
        "veil: error: a batch of 1 cannot be shared among 2 processes (each takes batch_size // processes samples "
        "per step)"]
    assert _children() == []


def test_nproc_is_refused_under_torchrun_and_for_models_of_one_process(vectors, tmp_path, capsys, monkeypatch):
    train = ["train", "--masked", str(vectors[0]), "--out", str(tmp_path / "m")]
    assert main([*train, "--model", "rf", "--nproc", "2"]) == 2
    assert main([*train, "--model", "rf", "--bf16"]) == 2
    for name, value in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": "1"}.items():
        monkeypatch.setenv(name, value)
    assert main([*train, "--model", "nn", "--nproc", "2"]) == 2
    monkeypatch.setenv("RANK", "1")  # only rank 0 of a launch says what went wrong
    assert main([*train, "--model", "nn", "--epochs", "0"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert errors == ["veil: error: rf trains in one process (drop --nproc, or run it without torchrun)",
                      "veil: error: --bf16 is for the models trained in epochs; rf is not (drop --bf16)",
                      "veil: error: --nproc starts processes on this machine; under torchrun, give torchrun "
                      "--nproc-per-node instead"]
    assert not list(tmp_path.iterdir())
