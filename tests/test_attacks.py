"""The attacks and their threat models: the ITN works when it should and fails when it must, threat models grant
only what they name, and `veil attack` / `veil report privacy` refuse what they must in one line."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from veil.attacks import ATTACKS, Budget, Knowledge, run_attack
from veil.attacks.itn import ITNAttack, predict
from veil.attacks.scoring import blocks_correct, per_image
from veil.cli import main
from veil.data import ImageSet
from veil.errors import VeilError
from veil.masked import MaskedSet
from veil.maskers.base import Masker

SMALL = Budget(train_images=600, epochs=2, batch_size=32, aae_images=400, aae_epochs=2, gan_steps=10,
               semantic_train=400, semantic_epochs=1)


def textures(n: int, seed: int) -> np.ndarray:
    """Smooth random images with nothing in common between them (upsampled 8x8 noise): a predictor that ignores
    its input can do no better than the flat mean image, whose SSIM is near 0."""
    coarse = np.random.default_rng(seed).random((n, 3, 8, 8), dtype=np.float32)
    return np.repeat(np.repeat(coarse, 4, axis=2), 4, axis=3)


class Identity(Masker):
    method = "identity"

    def transform(self, images):
        return np.asarray(images, np.float32)


class FreshNoise(Masker):
    """Outputs new random noise on every call: it carries no information about the image."""
    method = "noise"

    def __init__(self):
        self.rng = np.random.default_rng(5)

    def transform(self, images):
        return self.rng.random(np.shape(images), dtype=np.float32)


def itn_median_ssim(oracle: Masker) -> float:
    victim, public = textures(80, 1), textures(600, 2)
    masked = MaskedSet(oracle.transform(victim), None, [], oracle.method, "test")
    knowledge = Knowledge("b", masked, ImageSet(public), oracle=oracle, budget=SMALL)
    return float(np.median(per_image(victim, ITNAttack().reconstruct(knowledge))["ssim"]))


def test_itn_inverts_an_identity_masker():
    assert itn_median_ssim(Identity()) > 0.9


def test_itn_learns_nothing_from_fresh_noise():
    assert abs(itn_median_ssim(FreshNoise())) < 0.1


def test_threat_models_grant_only_what_they_name():
    masked = MaskedSet(textures(4, 0), None, [], "pe", "x")
    public = ImageSet(textures(4, 1))
    with pytest.raises(VeilError, match="threat b only"):
        Knowledge("a", masked, public, oracle=Identity())
    with pytest.raises(VeilError, match="threat b needs it"):
        Knowledge("b", masked, public)
    with pytest.raises(VeilError, match="threat c"):
        Knowledge("a", masked, public, pairs=(textures(2, 3), textures(2, 3)))
    with pytest.raises(VeilError, match="does not run under threat b"):
        run_attack("fr", "b", masked, ImageSet(textures(4, 0)), public, oracle=Identity())


def test_blocks_correct_counts_exact_blocks_only():
    images = textures(2, 0)
    recon = images.copy()
    recon[0, :, :16, :16] += 0.01  # one of the 2 x 4 blocks of 16 x 16 is off by about 2.5 levels
    assert blocks_correct(images, recon, 16) == pytest.approx(7 / 8)


@pytest.fixture(scope="module")
def pe_files(tmp_path_factory):
    """digits split in two: victim (masked with PE under a key file) and public, as npz files."""
    from veil.data import load, stratified_split
    from veil.io.write import save_npz

    root = tmp_path_factory.mktemp("pe")
    digits = load("digits")
    public_idx, victim_idx = stratified_split(digits.labels, 0.5, 0)
    for name, index in (("public", public_idx), ("victim", victim_idx[:120])):
        part = digits.subset(index)
        save_npz(root / f"{name}.npz", images=part.images, labels=part.labels,
                 class_names=np.array(part.class_names))
    key = root / "secret.key"
    key.write_text("0123456789abcdef0123456789abcdef\n")
    key.chmod(0o600)
    assert main(["mask", "--method", "pe", "--key-file", str(key), "--data", str(root / "victim.npz"),
                 "--out", str(root / "masked.npz")]) == 0
    return root


def attack_args(root, *extra) -> list[str]:
    return ["attack", "--masked", str(root / "masked.npz"), "--victim", str(root / "victim.npz"), "--public",
            str(root / "public.npz"), "--quick", *extra]


def test_fr_on_pe_from_the_command_line(pe_files, tmp_path, capsys):
    """FR folds away PE's per-pixel negative-positive and colour orders whatever the key: its reconstruction is the
    folded grey image of the plain image, so the scored figures are those of that grey image, far above the masked
    images' own."""
    from veil.attacks.fr import fold_grey
    from veil.data import load

    assert main(attack_args(pe_files, "--method", "fr", "--threat", "a", "--out", str(tmp_path / "fr"))) == 0
    doc = json.loads((tmp_path / "fr" / "attack.json").read_text())
    assert doc["config"]["threat"] == "a" and doc["config"]["scheme"] == "pe"
    victim = load(str(pe_files / "victim.npz")).images
    expected = per_image(victim, fold_grey(victim))
    figures = doc["figures"]
    assert figures["ssim_median"] == pytest.approx(float(np.median(expected["ssim"])), abs=1e-6)
    assert figures["mse_median"] == pytest.approx(float(np.median(expected["mse"])), rel=1e-5)
    assert figures["ssim_median"] > figures["masked_ssim_median"] + 0.1
    assert figures["n_scored"] == len(victim) and 0 <= figures["semantic_accuracy"] <= 1
    assert (tmp_path / "fr" / "grid.png").stat().st_size > 0
    assert "0123456789abcdef" not in json.dumps(doc)  # the key never reaches the output


@pytest.mark.parametrize("extra, message", [
    (["--method", "itn", "--threat", "a", "--key-file", "KEY"], "threat b only"),
    (["--method", "itn", "--threat", "b"], "needs the victim's key"),
    (["--method", "itn", "--threat", "a", "--pairs", "10"], "threat c"),
    (["--method", "itn", "--threat", "c"], "--pairs N"),
    (["--method", "itn", "--threat", "c", "--pairs", "120"], "between 1 and 119"),
    (["--method", "mismatch", "--threat", "a"], "does not apply to 'pe'"),
    (["--method", "jigsaw", "--threat", "a"], "does not apply to 'pe'"),
])
def test_attack_refusals_are_one_line(pe_files, tmp_path, capsys, extra, message):
    extra = [str(pe_files / "secret.key") if arg == "KEY" else arg for arg in extra]
    assert main(attack_args(pe_files, *extra, "--out", str(tmp_path / "out"))) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_attack_refuses_an_existing_output(pe_files, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    assert main(attack_args(pe_files, "--method", "fr", "--threat", "a", "--out", str(tmp_path / "out"))) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


def test_known_pairs_are_not_scored(pe_files, tmp_path):
    assert main(attack_args(pe_files, "--method", "itn", "--threat", "c", "--pairs", "20",
                            "--out", str(tmp_path / "c"))) == 0
    doc = json.loads((tmp_path / "c" / "attack.json").read_text())
    assert doc["figures"]["n_scored"] == 100 and doc["config"]["known_pairs"] == 20


def test_the_encoder_lets_an_attacker_decode_aae_vectors(trained_masker, tmp_path):
    """Threat b against the AAE: a decoder trained on (public digit, encoder output) pairs reconstructs the victim's
    digits far better than another run's decoder (threat a), and is recognised by the public classifier."""
    from veil.data import load, stratified_split
    from veil.workflows import mask_images

    masker_dir, masker = trained_masker
    digits = load("digits")
    public_idx, victim_idx = stratified_split(digits.labels, 0.5, 0)  # the masker trained on the public half
    public, victim = digits.subset(public_idx), digits.subset(victim_idx[:200])
    masked = mask_images(masker, victim)
    budget = Budget(aae_images=400, aae_epochs=3, batch_size=32)
    with_encoder = run_attack("itn", "b", masked, victim, public, oracle=masker, budget=budget)
    other_run = run_attack("mismatch", "a", masked, victim, public, budget=budget)
    assert with_encoder.figures["ssim_median"] > other_run.figures["ssim_median"] + 0.1


def test_veil_attack_work_keeps_the_attackers_aae_for_the_next_attack(trained_masker, pe_files, tmp_path,
                                                                      monkeypatch):
    """`veil attack --work W`: a later attack (a new process) with the same public images, recipe, budget and seed
    loads the attacker's AAE from W instead of training it, and scores the same."""
    from veil.attacks import own_aae

    masker_dir, _ = trained_masker
    masked = tmp_path / "aae.npz"
    assert main(["mask", "--masker", str(masker_dir), "--data", str(pe_files / "victim.npz"), "--out",
                 str(masked)]) == 0
    args = ["attack", "--method", "mismatch", "--threat", "a", "--masked", str(masked), "--victim",
            str(pe_files / "victim.npz"), "--public", str(pe_files / "public.npz"), "--quick", "--work",
            str(tmp_path / "work")]
    monkeypatch.setattr(own_aae, "_TRAINED", {})
    assert main([*args, "--out", str(tmp_path / "first")]) == 0
    assert len(list((tmp_path / "work" / "own-aae").glob("*/trained.json"))) == 1

    monkeypatch.setattr(own_aae, "_TRAINED", {})  # a new process
    monkeypatch.setattr(own_aae.AAEMasker, "fit", lambda *a, **k: pytest.fail("trained again"))
    assert main([*args, "--out", str(tmp_path / "again")]) == 0
    first, again = (json.loads((tmp_path / name / "attack.json").read_text())["figures"] for name in ("first", "again"))
    assert again["ssim_median"] == first["ssim_median"]


def test_veil_attack_seed_guess_finds_the_seed_a_masker_was_trained_with(trained_masker, pe_files, tmp_path):
    """From the command line: the suite's masker was trained with --seed 0, the first guess, and seed-guess names it
    and decodes through it."""
    masker_dir, _ = trained_masker
    masked = tmp_path / "aae.npz"
    assert main(["mask", "--masker", str(masker_dir), "--data", str(pe_files / "victim.npz"), "--out",
                 str(masked)]) == 0
    assert main(["attack", "--method", "seed-guess", "--threat", "a", "--masked", str(masked), "--victim",
                 str(pe_files / "victim.npz"), "--public", str(pe_files / "public.npz"), "--quick", "--out",
                 str(tmp_path / "guess")]) == 0
    doc = json.loads((tmp_path / "guess" / "attack.json").read_text())
    assert doc["details"]["guessed_seed"] == 0 and set(doc["details"]["seed_scores"]) == {"0", "1", "2"}
    assert doc["figures"]["ssim_median"] > 0.3


def test_the_canonical_frame_does_not_depend_on_the_run():
    """Two AAE runs may differ by a rotation of the latent space; the NeuraCrypt-style attack's canonical frame
    must be the same for both (distinct variances and skewed axes make it unique)."""
    from veil.attacks.neuracrypt import canonical

    rng = np.random.default_rng(0)
    latents = rng.exponential(size=(2000, 6)) * np.arange(1, 7)
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    np.testing.assert_allclose(canonical(latents @ rotation + 3.0), canonical(latents), atol=1e-4)


def test_neuracrypt_attack_checks_transfer_on_an_encoder_it_never_saw(trained_masker):
    from veil.data import load, stratified_split
    from veil.workflows import mask_images

    _, masker = trained_masker
    digits = load("digits")
    public_idx, victim_idx = stratified_split(digits.labels, 0.5, 0)
    public, victim = digits.subset(public_idx), digits.subset(victim_idx[:100])
    budget = Budget(aae_images=300, aae_epochs=12, batch_size=32, simulated_encoders=2)
    outcome = run_attack("neuracrypt", "a", mask_images(masker, victim), victim, public, budget=budget)
    details = outcome.details
    assert outcome.reconstructions.shape == (100, 3, 32, 32)
    assert details["encoders_trained_on"] == 1 and len(set(details["encoder_seeds"])) == 2
    # the decoder learnt the encoder it trained on (far better than the flat mean image), and the held-out figure is
    # a real transfer check: through an encoder it never saw it reads far worse (on these budgets: 0.007, 0.045, 0.107)
    assert details["seen_encoder_train_mse"] < 0.5 * details["mean_image_mse"], details
    assert details["held_out_encoder_mse"] > 2 * details["seen_encoder_train_mse"], details
    with pytest.raises(VeilError, match="does not run under threat b"):
        run_attack("neuracrypt", "b", mask_images(masker, victim), victim, public, oracle=masker, budget=budget)


def test_privacy_report_quick(tmp_path):
    out = tmp_path / "privacy"
    assert main(["report", "privacy", "--quick", "--data", "digits", "--schemes", "pe,blur3", "--out", str(out),
                 "--work", str(tmp_path / "work"), "--skip", "gan_a,itn-prior_c20"]) == 0
    doc = json.loads((out / "privacy.json").read_text())
    figures = doc["figures"]
    for name in ("pe_accuracy", "pe_fr_a_ssim", "pe_itn_a_ssim", "pe_itn_b_ssim", "pe_itn_c_ssim",
                 "pe_best_a_ssim", "pe_itn-prior_c100_semantic"):
        assert name in figures, name
    assert "pe_gan_a_ssim" not in figures  # skipped, and so listed as missing below
    assert (tmp_path / "work" / "victim.key").stat().st_mode & 0o777 == 0o600  # a random key, not the seed's
    # one CNN for plain and masked images: utility kept is the ratio of its two accuracies, inside its interval
    assert 0.1 < figures["plain_accuracy_cnn"] <= 1 and "plain_accuracy_mlp" not in figures  # no vector scheme
    for scheme in ("pe", "blur3"):
        kept = figures[f"{scheme}_utility_kept"]
        assert kept == pytest.approx(figures[f"{scheme}_accuracy"] / figures["plain_accuracy_cnn"])
        assert figures[f"{scheme}_utility_kept_low"] <= kept <= figures[f"{scheme}_utility_kept_high"]
    assert abs(figures["blur3_utility_kept"] - 1) < 0.1  # a 3x3 blur barely changes what the CNN sees
    linkages = {name: value for name, value in figures.items() if name.endswith("_linkage") and "leakage" not in name}
    assert len(linkages) >= 8 and all(0 <= value <= 1 for value in linkages.values())
    assert figures["pe_itn_b_linkage"] > 0.9  # the masking oracle inverts PE's affine map
    assert figures["pe_leakage_b"] >= max(figures["pe_itn_b_ssim"], figures["pe_itn_b_linkage"])
    saturated_b = [value for name, value in figures.items() if re.fullmatch(r"pe_.+_b_saturated", name)]
    assert saturated_b and figures["pe_leakage_b_lower_bound"] == int(min(saturated_b) != 1)
    assert set(doc["details"]["pareto"]["b"]) <= {"pe", "blur3"} and doc["details"]["pareto"]["b"]
    assert {figures[f"{s}_on_front_b"] for s in ("pe", "blur3")} <= {0, 1}
    report = (out / "report.md").read_text()
    assert "| pe |" in report and "Paper 003" in report and "same utility classifier" not in report
    assert f"judge on plain images {figures['semantic_accuracy_plain']:.3f}" in report
    missing = json.loads((out / "privacy.json").read_text())["config"]["missing_runs"]
    skipped = [name for name in missing if name.startswith("pe/")]
    assert "blur/itn_a" in missing and skipped == ["pe/gan_a", "pe/itn-prior_c20"]
    (out / "runs" / "pe" / "fr_a.json").unlink()
    assert main(["report", "privacy", "--quick", "--out", str(out), "--assemble"]) == 0
    assert "`pe/fr_a`" in (out / "report.md").read_text()  # a missing run is named, not hidden
    assert "pe_fr_a_ssim" not in json.loads((out / "privacy.json").read_text())["figures"]
    for png in ("frontier_a.png", "frontier_b.png", "frontier_c.png", "ssim_boxes.png"):
        assert (out / png).stat().st_size > 0


def test_privacy_report_refuses_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "report.md").write_text("my own notes")
    assert main(["report", "privacy", "--quick", "--out", str(tmp_path), "--assemble"]) == 2
    assert "not a privacy report folder" in capsys.readouterr().err
    assert (tmp_path / "report.md").read_text() == "my own notes"


def test_linkage_singles_out_an_identity_reconstruction_and_not_fresh_noise():
    from veil.attacks.scoring import linkage
    from veil.data import load

    digits = load("digits")
    exact = linkage(digits.images, digits.images, digits.labels)
    assert exact["linkage"] == 1.0 and exact["linkage_chance"] == pytest.approx(0.01)
    noise = np.random.default_rng(3).random(digits.images.shape, dtype=np.float32)
    chance = linkage(digits.images, noise, digits.labels)
    assert chance["linkage_low"] <= 0.01 <= chance["linkage_high"] and chance["linkage"] < 0.03


def test_linkage_without_labels_draws_from_the_whole_set_and_states_chance_per_image():
    from veil.attacks.scoring import linkage

    images = textures(30, 0)
    unlabelled = linkage(images, images, None)
    assert unlabelled["linkage"] == 1.0 and unlabelled["linkage_chance"] == pytest.approx(1 / 30)
    small_classes = linkage(images, images, np.repeat([0, 1], [10, 20]))
    assert small_classes["linkage_chance"] == pytest.approx((10 * 1 / 10 + 20 * 1 / 20) / 30)


class NoisyProjection:
    """A masker that projects images to 10 numbers, with fresh Gaussian noise of `noise` on every call."""

    def __init__(self, noise: float):
        self.noise, self.calls = noise, 0
        self.weights = np.random.default_rng(0).normal(size=(3 * 32 * 32, 10)) / 32
        self.rng = np.random.default_rng(1)

    def transform(self, images):
        self.calls += 1
        vectors = images.reshape(len(images), -1) @ self.weights
        return vectors + self.noise * self.rng.normal(size=vectors.shape)


def test_encoder_linkage_confirms_a_deterministic_masker_s_images_and_averages_fresh_noise_away():
    from veil.attacks.scoring import encoder_linkage
    from veil.data import load

    digits = load("digits")
    exact = NoisyProjection(0.0)
    found = encoder_linkage(exact, digits.images, exact.transform(digits.images), digits.labels)
    assert found["encoder_linkage"] == 1.0 and exact.calls == 3  # two queries show it deterministic
    noisy = NoisyProjection(0.2)
    masked = noisy.transform(digits.images)
    twice = encoder_linkage(noisy, digits.images, masked, digits.labels, queries=2)["encoder_linkage"]
    averaged = encoder_linkage(noisy, digits.images, masked, digits.labels)["encoder_linkage"]
    assert twice + 0.1 < averaged  # averaging 16 queries removes more of the candidates' own noise
    drowned = NoisyProjection(100.0)
    chance = encoder_linkage(drowned, digits.images, drowned.transform(digits.images), digits.labels)
    assert chance["encoder_linkage_low"] <= 0.01 <= chance["encoder_linkage_high"]


def class_latents(n: int, seed: int, dim: int = 8, classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Latents with class structure: per class its own mean and its own axis scales, mixed by one fixed matrix
    (the same distribution for every seed; `seed` draws the samples)."""
    fixed = np.random.default_rng(100)
    means, scales = fixed.normal(size=(classes, dim)), fixed.uniform(0.3, 2.0, size=(classes, dim))
    mix = fixed.normal(size=(dim, dim))
    rng = np.random.default_rng(seed)
    labels = rng.integers(classes, size=n)
    return (means[labels] + rng.normal(size=(n, dim)) * scales[labels]) @ mix, labels


def relative_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    return float(np.linalg.norm(estimate - truth) / np.linalg.norm(truth - truth.mean(0)))


@pytest.fixture(scope="module")
def linear_victim():
    """The attacker's own latents and a victim whose latents are an exact linear transform (plus a shift) of
    latents of the attacker's kind, with the victim's true own-space latents to score against."""
    own, own_labels = class_latents(2000, 0)
    truth, victim_labels = class_latents(1500, 1)
    transform = np.random.default_rng(2).normal(size=(truth.shape[1],) * 2)
    return own, own_labels, truth @ transform + 3.0, victim_labels, truth


def test_latent_linear_finds_a_linear_map_from_class_moments_alone(linear_victim):
    """Threat a: no pairs, only the labels; the map it finds puts the victim's latents where the attacker's encoder
    would (a random or a shuffled-class estimate is off by about 1 or more)."""
    from veil.attacks.latent_linear import unpaired_map

    own, own_labels, victim, victim_labels, truth = linear_victim
    found, _ = unpaired_map(victim, victim_labels, own, own_labels)
    assert relative_error(found(victim), truth) < 0.25
    blind, _ = unpaired_map(victim, np.random.default_rng(3).permutation(victim_labels), own, own_labels)
    assert relative_error(blind(victim), truth) > 0.5  # the labels are what makes it work


def test_latent_linear_pairs_correct_a_wrong_prior(linear_victim):
    """Threat c: 100 pairs pull the map from a useless prior (everything onto the mean) to the true one, and with
    only 4 pairs (fewer than the 8 dimensions) a good prior is kept rather than overfitted away."""
    from veil.attacks.latent_linear import LatentMap, paired_map, unpaired_map

    own, own_labels, victim, victim_labels, truth = linear_victim
    dim, rng = truth.shape[1], np.random.default_rng(4)
    useless = LatentMap(victim.mean(0), np.zeros((dim, dim)), own.mean(0))
    fitted, _ = paired_map(victim[:100], truth[:100], useless, rng)
    assert relative_error(fitted(victim), truth) < 0.05
    prior, _ = unpaired_map(victim, victim_labels, own, own_labels)
    few, _ = paired_map(victim[:4], truth[:4], prior, rng)
    assert relative_error(few(victim), truth) < relative_error(prior(victim), truth) + 0.05


def test_attacks_apply_by_declared_capabilities():
    """Which schemes each attack applies to follows from the maskers' capabilities (no attack names a scheme):
    the keyed block schemes for FR, the two whose pieces a jigsaw can assemble, the latent ones for the own-AAE
    attacks, and pairs under threat a only from a masker the attacker can build without data."""
    from veil.attacks.base import attack_class
    from veil.registry import MASKERS

    def applies(name, threat=None):
        return {method for method in MASKERS.names() if attack_class(name).applies_to(method, threat)}

    blocks = {"etc", "le", "ele", "pe", "scramble"}
    latent = {"aae", "obfuscator", "aae-keyed"}  # a learnt encoder's vectors
    assert applies("fr") == blocks and applies("jigsaw") == {"etc", "scramble"}
    assert applies("latent-linear") == applies("mismatch") == latent
    assert applies("itn", "a") == set(MASKERS.names()) - latent and latent <= applies("itn", "c")
    assert applies("gan") == set(MASKERS.names()) and not applies("latent-linear", "b")
    assert applies("deconv") == {"randfilter"}  # one keyed filter shared by the set; not the per-image iidfilter
    assert applies("itn-prior", "c") == set(MASKERS.names()) - latent and not applies("itn-prior", "a")
    assert applies("key-procrustes") == {"aae-keyed"}  # a keyed map of a learnt latent


def test_budget_scaled_multiplies_only_the_named_fields():
    from veil.attacks.base import attack_class

    budget = Budget.quick()
    doubled = budget.scaled(2, attack_class("gan").budget_fields)
    assert (doubled.gan_steps, doubled.train_images) == (2 * budget.gan_steps, 2 * budget.train_images)
    assert doubled.aae_epochs == budget.aae_epochs and doubled.batch_size == budget.batch_size
    with pytest.raises(VeilError, match="not budget fields: steps"):
        budget.scaled(2, ["steps"])
    for name in ATTACKS.names():  # every attack's declared fields are budget fields
        budget.scaled(2, attack_class(name).budget_fields)


def test_the_attackers_own_aae_follows_the_recipe_the_masked_set_records():
    """Threat a grants the algorithm: an AAE's masked set records its recipe (never its seed), and the attacker's
    own AAE is built with it; a set without one gets the default recipe, which README's train-masker trains."""
    from veil.attacks.own_aae import victim_recipe
    from veil.maskers.aae_numpy import public_recipe

    vectors = np.zeros((4, 404), np.float32)
    recorded = public_recipe({"channels": 8, "batch_size": 16, "schedule": "constant", "seed": 77, "epochs": 3})
    assert "seed" not in recorded
    masked = MaskedSet(vectors, None, [], "aae", "aae:x", {"recipe": recorded})
    recipe = victim_recipe(Knowledge("a", masked, ImageSet(np.zeros((1, 3, 32, 32), np.float32))))
    assert recipe == {"channels": 8, "batch_size": 16, "schedule": "constant", "gauss_dim": 384, "cat_dim": 20}
    bare = MaskedSet(vectors, None, [], "aae", "aae:x", {})
    assert victim_recipe(Knowledge("a", bare, ImageSet(np.zeros((1, 3, 32, 32), np.float32)))) == {
        "gauss_dim": 384, "cat_dim": 20}


def test_latent_attacks_run_on_vectors_shorter_than_the_aaes_categorical_part():
    """An obfuscator of 8 numbers (the frontier sweeps 8 to 64): every attack that builds an AAE-shaped model of
    the vectors splits them in half instead of asking for 20 categories of 8 numbers (which gave no Gaussian part
    and a failed network). Its 40 victims give latent-linear a map of rank 1 (one direction per 40 vectors), whose
    class covariances must stay matrices."""
    from veil.attacks.own_aae import latent_split
    from veil.data import load
    from veil.maskers.obfuscator import ObfuscatorMasker
    from veil.workflows import mask_images

    assert latent_split(404) == (384, 20) and latent_split(24) == (12, 12) and latent_split(8) == (4, 4)
    with pytest.raises(VeilError, match="too short"):
        latent_split(1)
    data = load("digits")
    public, victim = data.subset(slice(0, 300)), data.subset(slice(300, 340))
    masker = ObfuscatorMasker(latent_dim=8, channels=4, epochs=1, batch_size=32, adversaries=1, seed=0).fit(
        public.images, public.labels, progress=False)
    masked = mask_images(masker, victim)
    for method, threat, oracle in (("gan", "a", None), ("mismatch", "a", None), ("latent-linear", "a", None),
                                   ("itn", "b", masker), ("neuracrypt", "a", None)):
        outcome = run_attack(method, threat, masked, victim, public, oracle=oracle, budget=Budget.quick())
        assert np.isfinite(outcome.figures["ssim_median"]), method


def test_the_attackers_own_aae_is_kept_in_its_model_cache_for_a_resumed_run(tmp_path, monkeypatch):
    """A report resumed in a new process loads the attacker's AAEs from its model cache instead of training them
    again, and gets the same network (the same vectors); a save that was interrupted is never read back, and other
    public images of the same number and source get an AAE of their own."""
    from veil.attacks import own_aae

    monkeypatch.setattr(own_aae, "_TRAINED", {})
    masked = MaskedSet(np.zeros((4, 24), np.float32), None, [], "aae", "aae:x",
                       {"recipe": {"channels": 4, "batch_size": 32}})
    budget = Budget(aae_images=64, aae_epochs=1)
    knowledge = Knowledge("a", masked, ImageSet(textures(64, 2)), budget=budget, model_cache=tmp_path)
    trained = own_aae.own_aae(knowledge)
    (folder,) = (tmp_path / "own-aae").iterdir()

    monkeypatch.setattr(own_aae, "_TRAINED", {})  # a new process
    fit_calls = []
    fit = own_aae.AAEMasker.fit
    monkeypatch.setattr(own_aae.AAEMasker, "fit", lambda self, *a, **k: fit_calls.append(1) or fit(self, *a, **k))
    loaded = own_aae.own_aae(knowledge)
    assert fit_calls == [] and loaded is not trained
    assert np.array_equal(loaded.transform(textures(8, 3)), trained.transform(textures(8, 3)))

    monkeypatch.setattr(own_aae, "_TRAINED", {})
    folder.rename(folder.with_name(f".{folder.name}.partial"))  # as an interrupted save leaves it
    own_aae.own_aae(knowledge)
    assert fit_calls == [1] and (folder / own_aae.TRAINED_FILE).exists()
    other = Knowledge("a", masked, ImageSet(textures(64, 5)), budget=budget, model_cache=tmp_path)
    own_aae.own_aae(other)
    assert fit_calls == [1, 1] and len(list((tmp_path / "own-aae").iterdir())) == 2


def test_the_attackers_own_aae_is_trained_once_for_every_masking_time_noise(monkeypatch):
    """Latent noise acts when masking, not in training: victims that differ only in it (the frontier's noise points)
    share the attacker's trained AAE, and each gets it with its own noise applied."""
    from veil.attacks import own_aae

    monkeypatch.setattr(own_aae, "_TRAINED", {})
    public = ImageSet(textures(64, 2))

    def knowledge(noise):
        recipe = {"channels": 4, "batch_size": 32, "latent_noise": noise}
        masked = MaskedSet(np.zeros((4, 24), np.float32), None, [], "aae", "aae:x", {"recipe": recipe})
        return Knowledge("a", masked, public, budget=Budget(aae_images=64, aae_epochs=1))

    quiet, noisy = own_aae.own_aae(knowledge(0.0)), own_aae.own_aae(knowledge(0.5))
    assert len(own_aae._TRAINED) == 1 and noisy.encoder is quiet.encoder
    assert (quiet.latent_noise, noisy.latent_noise) == (0.0, 0.5)
    images = textures(8, 3)
    assert np.array_equal(quiet.transform(images), quiet.transform(images))
    assert 0.4 < (noisy.transform(images) - quiet.transform(images)).std() < 0.6  # N(0, 0.5^2) added


def test_every_attack_requires_only_declared_capabilities():
    """`Attack.unmet` reads each requirement as a capability flag with no default: a name no masker declares
    (`veil.schemes.base.Capabilities`) would be a typo that silently never matched."""
    from veil.schemes.base import Capabilities

    undeclared = {f"{name}: {flag}" for name in ATTACKS.names() for threat in ATTACKS.get(name).threats
                  for flag in ATTACKS.get(name).requirements(threat) if not hasattr(Capabilities, flag)}
    assert undeclared == set()


def test_the_gan_recovers_an_identity_masker_by_training():
    """Masked data that is the plain images: the GAN attack, with no pairs, must hand them back (median SSIM above
    0.5), and that must come from its training, not its architecture (its untrained generator scores near 0)."""
    from veil.attacks.gan import GANAttack, networks

    victim = textures(48, 1)
    masked = MaskedSet(Identity().transform(victim), None, [], "identity", "test")
    budget = Budget(train_images=256, batch_size=16, gan_steps=48)
    knowledge = Knowledge("a", masked, ImageSet(textures(256, 2)), budget=budget)
    trained = np.median(per_image(victim, GANAttack().reconstruct(knowledge))["ssim"])
    untrained = np.median(per_image(victim, predict(networks(victim.shape[1:])["g"], masked.data))["ssim"])
    assert trained > 0.5 and untrained < 0.2, (trained, untrained)


def test_the_semantic_judge_recognises_plain_images_at_its_stated_accuracy():
    """The judge at a tiny budget (600 digits, 3 epochs, widths 16/32, with its blur/grey/noise augmentation)
    recognises held-out plain digits at 0.715 (measured); below 0.6 it could not tell a reconstruction's class."""
    from veil.attacks.semantic import public_classifier, semantic_accuracy
    from veil.data import load, stratified_split

    digits = load("digits")
    public_idx, victim_idx = stratified_split(digits.labels, 0.5, 0)
    public, victim = digits.subset(public_idx), digits.subset(victim_idx)
    judge = public_classifier(public, Budget(semantic_train=600, semantic_epochs=3, semantic_widths=(16, 32)))
    assert semantic_accuracy(judge, victim.images, victim.labels, victim.class_names) > 0.6


def test_seed_guess_finds_a_typed_training_seed_and_not_a_drawn_one(tmp_path):
    """A victim AAE trained under a small seed its owner typed is found by the seed-guess attacker, whose own AAE of
    that seed, trained on other images, decodes the victim's vectors far better than the best guess against a victim
    whose seed was drawn at random (the default), where no guess can hit."""
    from veil.data import load, stratified_split
    from veil.workflows import mask_images, train_masker

    digits = load("digits")
    public_idx, owner_idx = stratified_split(digits.labels, 0.5, 0)
    public, owner = digits.subset(public_idx), digits.subset(owner_idx)
    victim, owner_train = owner.subset(np.arange(200)), owner.subset(np.arange(200, len(owner)))
    budget = Budget(aae_images=400, aae_epochs=3, batch_size=32, guessed_seeds=3)
    outcomes = {}
    for name, seed in (("typed", 2), ("drawn", None)):
        masker = train_masker(owner_train, tmp_path / name, epochs=3, batch_size=32, seed=seed, progress=False)
        outcomes[name] = run_attack("seed-guess", "a", mask_images(masker, victim), victim, public, budget=budget)
    assert outcomes["typed"].details["guessed_seed"] == 2
    assert outcomes["typed"].figures["ssim_median"] > outcomes["drawn"].figures["ssim_median"] + 0.1
