"""No secret in what the third party holds (issue 23): for every masking method, a masked file, read as an attacker
who knows veil would read it, does not give back the masking function that made it.

The attacker rebuilds the masker from everything the file holds (data, meta, configuration, fingerprint) and from
the defaults anyone can guess: no key, an empty or all-zero key, any string the file holds used as a key, veil's
stand-in experiment keys for seeds 0 to 49, or, for a trained masker, one of the recipe the file records trained with
the default seed or a seed from 0 to 7 (on the victim's own images, more than a threat-a attacker has). The victim is
made as users make theirs: a trained masker with its default seed, a keyed one with a random key. None may reproduce
the victim's masked data, and no value in the file may hold the secret.
"""
from __future__ import annotations

import functools
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

from veil.data import ImageSet
from veil.errors import VeilError
from veil.masked import MaskedSet
from veil.maskers.base import masker_class
from veil.keyfiles import experiment_secret
from veil.registry import MASKERS
from veil.workflows import mask_images

#: a method with no secret at all, which anyone rebuilds from its configuration by design (its docstring says so)
UNKEYED = {"blur"}
#: the victim's non-default options, as a user would type them
OPTIONS = {"etc": {"block": 8}, "le": {"block": 4}, "ele": {"block": 4}, "scramble": {"block": 8},
           "randfilter": {"kernel": 7}, "iidfilter": {"kernel": 3}}
TINY_AAE = {"gauss_dim": 6, "cat_dim": 2, "channels": 4, "epochs": 1, "batch_size": 8, "device": "cpu"}
#: the training seeds 0, 1, ... an attacker tries, as a user may have typed one (`veil attack --method seed-guess`)
GUESSED_SEEDS = 8
#: each trained masker's tiny recipe (the keyed AAE's shared network is a tiny AAE, `tiny_base`)
TINY = {"aae": TINY_AAE, "obfuscator": {"latent_dim": 6, "channels": 4, "epochs": 1, "batch_size": 8,
                                        "adversaries": 1, "device": "cpu"}}


@functools.cache
def tiny_base() -> str:
    """A tiny AAE trained once, in a folder of its own: the network a keyed AAE shares (public by design)."""
    folder = Path(tempfile.mkdtemp()) / "base"
    masker_class("aae")(**TINY_AAE).fit(tiny_images(), progress=False).save(folder)
    return str(folder)


def tiny_images(n: int = 24) -> ImageSet:
    pixels = np.random.default_rng(5).integers(0, 256, (n, 3, 32, 32)).astype(np.float32) / np.float32(255)
    return ImageSet(pixels, labels=np.arange(n) % 2, class_names=["a", "b"], source="tiny")


def victim_masker(method: str, images: ImageSet):
    """The victim's masker and the secret it holds: a fresh random key (as `veil keygen` writes one: 64 hex
    characters), or a tiny trained masker with the default seed, whose secret is its encoder."""
    cls = masker_class(method)
    if cls.fits_on_data and not cls.keyed:
        masker = cls(**TINY[method]).fit(images, progress=False)
        first_weights = next(iter(masker.encoder_.state_dict().values())).detach().cpu().numpy()
        return masker, first_weights.tobytes()[:64]
    secret = os.urandom(32).hex().encode()
    options = {"base": tiny_base()} if cls.fits_on_data else OPTIONS.get(method, {})
    return cls(secret, **options), secret


def file_strings(masked: MaskedSet) -> list[str]:
    """Every string and number the masked file holds besides its data: the fingerprint and each meta value."""
    found = [masked.fingerprint, masked.method, *masked.class_names]

    def walk(value):
        if isinstance(value, dict):
            for key, item in value.items():
                found.append(str(key))
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        else:
            found.append(str(value))

    walk(masked.meta)
    return found


def attacker_outputs(masked: MaskedSet, images: ImageSet):
    """(what was tried, its masked data) for every masking function an attacker can build from the file and veil's
    defaults; one the file does not hold enough to build is skipped."""
    cls, config = masker_class(masked.method), dict(masked.meta.get("config", {}))
    if cls.fits_on_data and not cls.keyed:  # the recipe is public (threat a); the seed is guessed
        for seed in (None, *range(GUESSED_SEEDS)):
            guess = cls(**TINY[masked.method], seed=seed).fit(images, progress=False)
            yield f"the recipe, seed {seed}", guess.transform(images.images)
        return
    guesses = [b"", bytes(32), b"0" * 64, *(experiment_secret(seed) for seed in range(50)),
               *(text.encode() for text in file_strings(masked))]
    builds = {"the file's configuration alone": lambda: cls(**config)}
    builds.update({f"the key {guess!r}": lambda guess=guess: cls(guess, **config) for guess in guesses})
    for tried, build in builds.items():
        try:
            yield tried, as_floats(np.asarray(build().transform(images.images)))
        except (VeilError, TypeError, ValueError):
            continue


def as_floats(data: np.ndarray) -> np.ndarray:
    return data.astype(np.float32) / np.float32(255) if data.dtype == np.uint8 else data


def test_every_method_is_either_secret_or_unkeyed_by_design():
    for method in MASKERS.names():
        cls = masker_class(method)
        assert (cls.keyed or cls.fits_on_data) != (method in UNKEYED), method


@pytest.mark.parametrize("method", sorted(set(MASKERS.names()) - UNKEYED))
def test_a_masked_file_does_not_rebuild_its_masking_function(method, tmp_path):
    images = tiny_images()
    masker, secret = victim_masker(method, images)
    mask_images(masker, images).save(tmp_path / "masked.npz")
    masked = MaskedSet.load(tmp_path / "masked.npz")
    held = json.dumps(file_strings(masked))
    assert secret.hex() not in held and secret.decode("latin-1") not in held
    assert secret not in (tmp_path / "masked.npz").read_bytes()
    attempts = list(attacker_outputs(masked, images))
    assert attempts
    for tried, guess in attempts:
        assert not np.allclose(guess.reshape(masked.data.shape), masked.data, atol=1e-3), \
            f"{method}: {tried} rebuilds the masking function"


def test_a_set_that_records_its_filter_seed_is_refused(tmp_path, capsys):
    """Sets an earlier veil masked with a seeded filter hold the seed that rebuilds the filter."""
    from veil.cli import main

    images = tiny_images()
    old = MaskedSet(np.zeros((len(images), 3, 32, 32), np.float32), images.labels, ["a", "b"], "randfilter",
                    "randfilter:k7:0123", {"config": {"kernel": 7, "seed": 12345}})
    old.save(tmp_path / "old.npz")
    with pytest.raises(VeilError, match="carries its filter seed, a secret; mask again with --key-file"):
        MaskedSet.load(tmp_path / "old.npz")
    assert main(["train", "--masked", str(tmp_path / "old.npz"), "--model", "nn", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "filter seed" in err[0] and not (tmp_path / "m").exists()


@pytest.mark.parametrize("method", ["randfilter", "iidfilter"])
def test_a_seed_no_longer_configures_a_random_filter(method, tmp_path, capsys):
    from veil.cli import main

    assert main(["mask", "--method", method, "--seed", "3", "--data", "digits", "--limit", "8",
                 "--out", str(tmp_path / "m.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--key-file" in err[0] and "veil keygen" in err[0]
    assert main(["mask", "--method", method, "--data", "digits", "--limit", "8", "--out", str(tmp_path / "m.npz")]) == 2
    assert "--key-file" in capsys.readouterr().err and not (tmp_path / "m.npz").exists()


def test_an_aae_keeps_its_encoder_secret_too(trained_masker, tmp_path):
    """The encoder lets anyone train a decoder: `train-masker` and `export-encoder` list it as secret and write
    every secret file readable by its owner only."""
    from veil.cli import main

    folder = trained_masker[0]
    exported = tmp_path / "encoder-only"
    assert main(["export-encoder", "--masker", str(folder), "--out", str(exported)]) == 0
    for directory, secret in ((folder, ["encoder.safetensors", "decoder.safetensors"]),
                              (exported, ["encoder.safetensors"])):
        manifest = json.loads((directory / "manifest.json").read_text())
        assert sorted(manifest["secret_files"]) == sorted(secret)
        assert {name: oct((directory / name).stat().st_mode & 0o777) for name in secret} == \
            {name: oct(0o600) for name in secret}


@pytest.mark.parametrize("method", ["randfilter", "iidfilter"])
def test_attackers_of_a_random_filter_simulate_it_with_their_own_key_and_need_the_victims_for_an_oracle(
        method, tmp_path):
    """Threat a simulates the scheme under a key of its own; threat b's oracle is the victim's key, as for EtC."""
    from veil.attacks.base import Knowledge
    from veil.attacks.run import victim_oracle

    images = tiny_images()
    masker, secret = victim_masker(method, images)
    masked = mask_images(masker, images)
    own = Knowledge("a", masked, images).own_masker(np.random.default_rng(0))
    assert own.keyed and own.config == masked.meta["config"] and own.fingerprint != masked.fingerprint
    with pytest.raises(VeilError, match="needs the victim's key"):
        victim_oracle(masked, tmp_path / "m.npz")
    with pytest.raises(VeilError, match="does not match"):
        victim_oracle(masked, tmp_path / "m.npz", secret=os.urandom(32).hex().encode())
    assert victim_oracle(masked, tmp_path / "m.npz", secret=secret).fingerprint == masked.fingerprint


def test_a_blur_set_of_those_days_loads_without_its_unused_seed(tmp_path):
    from veil.attacks.run import victim_oracle

    images = tiny_images()
    masked = mask_images(masker_class("blur")(kernel=3), images)
    masked.meta["config"]["seed"] = 0  # as every filter set recorded one before the random filters took a key
    masked.save(tmp_path / "blur.npz")
    loaded = MaskedSet.load(tmp_path / "blur.npz")
    assert loaded.meta["config"] == {"kernel": 3}
    assert victim_oracle(loaded, tmp_path / "blur.npz").fingerprint == loaded.fingerprint
