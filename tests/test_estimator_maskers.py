"""Every masker is a scikit-learn estimator (issue 11): parameters stored as given, `clone`, `get_params` and
`set_params`, `fit(X, y)`, both image layouts, uint8 or float, `Pipeline`; keys never shown by a repr; and
`import veil` stays free of torch until a torch object is used."""
from __future__ import annotations

import copy
import functools
import logging
import pickle
import pprint
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import get_tags

import veil
from veil.data import load, to_uint8_images
from veil.errors import VeilError
from veil.maskers.base import MASKERS, Masker, masker_class
from veil.maskers.keyed import KeyedMasker, SecretMasker
from veil.keys import Secret

SECRET = b"estimator-test-secret-0123456789"
TINY_AAE = {"gauss_dim": 6, "cat_dim": 2, "channels": 4, "epochs": 1, "batch_size": 32, "device": "cpu"}
#: each trained masker's small settings (the keyed AAE's base network: `tiny_base`)
TINY = {"aae": TINY_AAE, "obfuscator": {"latent_dim": 6, "channels": 4, "epochs": 1, "batch_size": 32,
                                        "adversaries": 1, "device": "cpu"}}


@functools.cache
def tiny_base() -> str:
    """A tiny AAE trained once, in a folder of its own: the shared network of a keyed AAE."""
    folder = Path(tempfile.mkdtemp()) / "base"
    masker_class("aae")(**TINY_AAE).fit(load("digits").images[:64], progress=False).save(folder)
    return str(folder)


def make(method: str, **overrides) -> Masker:
    """A small masker of each kind, with non-default parameters (so that a repr shows them)."""
    cls = masker_class(method)
    if cls.fits_on_data and cls.keyed:
        return cls(SECRET, **{"base": tiny_base(), **overrides})
    if cls.fits_on_data:
        return cls(**{**TINY[method], **overrides})
    strength = {"block": cls.allowed_blocks[0]} if "block" in cls.options else {"kernel": 3}
    return cls(SECRET, **strength, **overrides) if cls.keyed else cls(**{**strength, **overrides})


def flatten(X: np.ndarray) -> np.ndarray:
    return X.reshape(len(X), -1)


@pytest.fixture(scope="module")
def digits():
    """A few hundred digits, channels-first float, with labels."""
    images = load("digits")
    return images.images[:300], images.labels[:300]


@pytest.fixture(scope="module")
def fitted_aae(digits):
    return make("aae").fit(digits[0], digits[1], progress=False)


# ---------------------------------------------------------------- the estimator contract


@pytest.mark.parametrize("method", MASKERS.names())
def test_init_only_stores_parameters_and_clone_round_trips(method):
    masker = make(method)
    params = masker.get_params()
    public = {name for name in vars(masker) if not name.startswith("_")}  # a key parameter lives in `_<name>`
    assert public <= set(params), "__init__ sets nothing but its parameters"
    twin = clone(masker)
    assert type(twin) is type(masker) and twin is not masker
    assert twin.get_params() == params
    assert not any(name.endswith("_") for name in vars(twin)), "a clone is not fitted"


@pytest.mark.parametrize("method", MASKERS.names())
def test_set_params_is_seen(method):
    masker = make(method)
    name = next(name for name in ("epochs", *masker.options, "base") if name in masker.get_params())
    value = masker.allowed_blocks[-1] if name == "block" else 7
    assert masker.set_params(**{name: value}) is masker
    assert masker.get_params()[name] == value


@pytest.mark.parametrize("method", [m for m in MASKERS.names() if not masker_class(m).fits_on_data])
def test_stateless_maskers_follow_set_params_after_fit(method, digits):
    """A keyed or filter masker's state follows from its parameters: changed parameters are used at once."""
    x = digits[0][:4]
    masker = make(method).fit(x)
    before = masker.transform(x)
    changed = {"block": masker.allowed_blocks[-1]} if "block" in masker.options else {"kernel": 5}
    if "block" in masker.options and len(masker.allowed_blocks) == 1:
        changed = {"secret": b"another-secret-entirely"}
    masker.set_params(**changed)
    assert "another" not in repr(masker)
    assert not np.array_equal(masker.transform(x), before)
    assert np.array_equal(masker.transform(x), clone(masker).fit(x).transform(x))


@pytest.mark.parametrize("method", [m for m in MASKERS.names() if not masker_class(m).fits_on_data])
def test_fit_takes_y_and_both_layouts_agree(method, digits):
    x, y = digits[0][:8], digits[1][:8]
    masker = make(method)
    assert masker.fit(x, y) is masker
    first = masker.transform(x)
    last = masker.transform(x.transpose(0, 2, 3, 1))
    assert first.shape == x.shape and last.shape == (8, 32, 32, 3)
    np.testing.assert_array_equal(last, first.transpose(0, 2, 3, 1))
    pixels = to_uint8_images(x)  # uint8 (N, 32, 32, 3)
    np.testing.assert_allclose(masker.transform(pixels) / np.float32(255) if masker.exact_uint8
                               else masker.transform(pixels), last, atol=1e-6)


@pytest.mark.parametrize("method", [m for m in MASKERS.names() if issubclass(masker_class(m), KeyedMasker)])
def test_keyed_inverse_is_exact_in_both_layouts_and_dtypes(method, digits):
    masker = make(method)
    pixels = to_uint8_images(digits[0][:5])
    for images in (pixels, pixels.transpose(0, 3, 1, 2), pixels / np.float32(255)):
        masked = masker.transform(images)
        assert masked.dtype == (np.uint8 if images.dtype == np.uint8 else np.float32)
        np.testing.assert_array_equal(masker.inverse_transform(masked), images)
    np.testing.assert_array_equal(masker.transform(pixels), masker.encrypt(pixels))


def test_an_unfitted_aae_is_not_fitted_for_sklearn_and_the_cli():
    masker = make("aae")
    for call in (lambda: masker.transform(np.zeros((1, 3, 32, 32), np.float32)), lambda: masker.fingerprint):
        with pytest.raises(NotFittedError):
            call()
        with pytest.raises(VeilError, match="not fitted"):
            call()


def test_aae_fit_takes_y_and_both_layouts(fitted_aae, digits):
    x = digits[0][:10]
    vectors = fitted_aae.transform(x)
    assert vectors.shape == (10, 8)
    np.testing.assert_array_equal(fitted_aae.transform(x.transpose(0, 2, 3, 1)), vectors)
    np.testing.assert_allclose(fitted_aae.transform(to_uint8_images(x)), vectors, atol=1e-2)
    assert fitted_aae.inverse_transform(vectors).shape == x.shape
    assert {"encoder_", "decoder_", "device_"} <= set(vars(fitted_aae))


def test_capabilities_are_declared_on_the_classes():
    """Generic code reads these class attributes instead of sniffing instances."""
    for method in MASKERS.names():
        cls = masker_class(method)
        assert cls.keyed == issubclass(cls, SecretMasker)
        assert cls.output in ("images", "vectors")
        assert not (cls.exact_uint8 and cls.output == "vectors")
        assert issubclass(cls, KeyedMasker) <= (cls.invertible and cls.exact_uint8)
        assert cls.structure in ("blocks", "filter", "latent")  # what the attacks' rules read (veil.attacks)
        assert cls.puzzle is None or cls.structure == "blocks"
    assert masker_class("aae").fits_on_data and masker_class("aae").output == "vectors"
    assert not masker_class("blur").invertible and not masker_class("blur").fits_on_data


@pytest.mark.parametrize("method", MASKERS.names())
def test_tags_say_the_input_is_images(method):
    tags = get_tags(make(method))
    assert not tags.input_tags.two_d_array
    assert not tags.target_tags.required
    assert tags.requires_fit == masker_class(method).fits_on_data


# ---------------------------------------------------------------- composition


def test_etc_pipeline_fits_and_predicts_on_digits(digits):
    x, y = digits
    # a ridge classifier: a logistic regression on 3072 features takes tens of seconds on two cores
    pipe = Pipeline([("mask", veil.EtCMasker(SECRET, block=8)), ("flat", FunctionTransformer(flatten)),
                     ("clf", RidgeClassifier())])
    pipe.fit(x[:200], y[:200])
    assert pipe.predict(x[200:]).shape == (100,)
    assert pipe.score(x[200:], y[200:]) > 0.5  # ten classes: chance is 0.1
    scores = cross_val_score(pipe, x, y, cv=2, n_jobs=2)  # the masker, key included, travels to worker processes
    assert scores.shape == (2,) and (scores > 0.3).all()
    search = GridSearchCV(pipe, {"mask__block": [4, 8], "clf__alpha": [1.0, 10.0]}, cv=2).fit(x, y)
    assert search.best_params_["mask__block"] in (4, 8)
    assert "Secret(<redacted>)" in repr(search.best_estimator_) and not leaks(repr(search.best_estimator_))


def test_aae_pipeline_fits_and_predicts_on_digits(digits):
    x, y = digits
    pipe = Pipeline([("mask", make("aae")), ("clf", LogisticRegression(max_iter=200))])
    pipe.fit(x[:250], y[:250], mask__progress=False)
    assert pipe.predict(x[250:]).shape == (50,)
    assert clone(pipe).get_params()["mask__gauss_dim"] == 6


# ---------------------------------------------------------------- secrets stay out of reprs


def shown(value) -> list[str]:
    """Every way a value might be printed."""
    return [repr(value), str(value), f"{value}", pprint.pformat(value)]


def leaks(text: str, secret: bytes = SECRET) -> bool:
    return any(form in text for form in (secret.decode(), secret.hex(), repr(secret)))


@pytest.mark.parametrize("method", [m for m in MASKERS.names() if masker_class(m).keyed])
def test_a_keyed_masker_never_shows_its_key(method, caplog):
    masker = make(method)
    masker.fit()
    texts = [*shown(masker), *shown(masker.get_params()), *shown(masker.secret), *shown(clone(masker))]
    with caplog.at_level(logging.INFO):
        logging.getLogger("veil.test").info("masker %r params %s", masker, masker.get_params())
    texts.append(caplog.text)
    assert "Secret(<redacted>)" in repr(masker)
    assert not any(leaks(text) for text in texts)


def test_errors_never_show_the_key(tmp_path):
    bad = veil.EtCMasker(SECRET, block=3)
    with pytest.raises(VeilError) as refused:
        bad.fit()
    assert not leaks(str(refused.value))
    veil.EtCMasker(SECRET).save(tmp_path / "m")
    with pytest.raises(VeilError) as wrong:
        veil.EtCMasker.load(tmp_path / "m", secret=b"not-the-right-secret")
    assert not leaks(str(wrong.value), b"not-the-right-secret")
    with pytest.raises(VeilError) as typed:
        veil.EtCMasker(12345678).fit()
    assert "12345678" not in str(typed.value)


def test_a_key_table_is_secret_too():
    table = veil.EtCMasker.key_table(SECRET, 8)
    masker = veil.EtCMasker.from_table(table, 8)
    assert "K1" not in repr(masker) and "array" not in repr(masker)
    assert isinstance(masker.table, Secret) and masker.secret is None


@pytest.mark.parametrize("copier", [clone, copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))])
def test_a_copy_keeps_the_key_and_masks_identically(copier, digits):
    masker = veil.EtCMasker(SECRET, block=8)
    twin = copier(masker)
    assert twin.secret == masker.secret and twin.secret.reveal() == SECRET
    assert twin.fingerprint == masker.fingerprint
    np.testing.assert_array_equal(twin.transform(digits[0][:6]), masker.transform(digits[0][:6]))


def test_a_bytes_key_is_wrapped_and_a_secret_passed_on_unchanged():
    secret = Secret(SECRET)
    assert veil.EtCMasker(secret).secret is secret
    assert veil.EtCMasker(SECRET).secret == secret
    assert Secret(SECRET) != Secret(b"other") and Secret(SECRET) != SECRET


def test_the_aae_decoder_is_never_in_a_repr(fitted_aae):
    assert fitted_aae.decoder is not None
    assert "decoder" not in repr(fitted_aae).lower() and "Decoder" not in pprint.pformat(fitted_aae.get_params())
    assert "decoder" not in fitted_aae.get_params()


# ---------------------------------------------------------------- the public API


def test_import_veil_and_a_keyed_masker_leave_torch_unimported():
    code = ("import sys, numpy as np, veil; m = veil.EtCMasker(b'0123456789', block=8); "
            "m.transform(np.zeros((1, 32, 32, 3), np.uint8)); veil.BlurMasker(); veil.Secret; veil.MaskedSet; "
            "veil.load_images; assert 'torch' not in sys.modules, 'torch imported'; "
            "veil.AAEMasker; assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_public_names_resolve_and_are_documented():
    assert veil.__doc__
    for name in veil.__all__:
        value = getattr(veil, name)
        theirs = getattr(value, "__module__", "").startswith("veil.classifiers")  # checked with the classifiers
        documented = name == "__version__" or theirs or value.__doc__
        assert documented, f"veil.{name} has no docstring"
    with pytest.raises(AttributeError):
        veil.NoSuchThing  # noqa: B018
