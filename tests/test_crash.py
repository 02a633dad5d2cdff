"""Crash safety: `kill -9` during training, then `--resume`, reaches the same weights as an uninterrupted run."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from veil.data import load


def veil(*args) -> list[str]:
    return [sys.executable, "-m", "veil.cli", *map(str, args)]


def env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "VEIL_NO_PROGRESS": "1"}


def kill_after_first_checkpoint(command, out_dir, timeout=300):
    process = subprocess.Popen(command, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + timeout
    while not list((out_dir / "checkpoints").glob("*.pt")):
        assert process.poll() is None, process.stderr.read().decode()
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "training finished before it could be killed"


def assert_same_weights(a, b):
    left, right = load_file(str(a)), load_file(str(b))
    assert left.keys() == right.keys()
    for name in left:
        assert torch.equal(left[name], right[name]), name


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    digits = load("digits").subset(slice(0, 240))
    path = tmp_path_factory.mktemp("small") / "small.npz"
    np.savez(path, images=digits.images, labels=digits.labels)
    return path


def test_masker_training_survives_kill_9(small_set, tmp_path):
    args = ["train-masker", "--data", small_set, "--epochs", "4", "--batch-size", "16", "--seed", "5"]
    subprocess.run(veil(*args, "--out", tmp_path / "straight"), env=env(), check=True, capture_output=True)
    kill_after_first_checkpoint(veil(*args, "--out", tmp_path / "crashed"), tmp_path / "crashed")
    assert not (tmp_path / "crashed" / "manifest.json").exists()  # nothing that looks finished
    subprocess.run(veil(*args, "--out", tmp_path / "crashed", "--resume"), env=env(), check=True, capture_output=True)
    for part in ("encoder", "decoder"):
        assert_same_weights(tmp_path / "straight" / f"{part}.safetensors", tmp_path / "crashed" / f"{part}.safetensors")


def test_classifier_training_survives_kill_9(trained_masker, small_set, tmp_path):
    masker_dir, _ = trained_masker
    subprocess.run(veil("mask", "--masker", masker_dir, "--data", "digits", "--out", tmp_path / "m.npz"), env=env(),
                   check=True, capture_output=True)
    args = ["train", "--masked", tmp_path / "m.npz", "--model", "nn", "--epochs", "4", "--seed", "2"]
    subprocess.run(veil(*args, "--out", tmp_path / "straight"), env=env(), check=True, capture_output=True)
    kill_after_first_checkpoint(veil(*args, "--out", tmp_path / "crashed"), tmp_path / "crashed")
    assert not (tmp_path / "crashed" / "model.json").exists()
    subprocess.run(veil(*args, "--out", tmp_path / "crashed", "--resume"), env=env(), check=True, capture_output=True)
    assert_same_weights(tmp_path / "straight" / "model.safetensors", tmp_path / "crashed" / "model.safetensors")
