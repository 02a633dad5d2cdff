"""Issue 25, item 2: sharded masked sets. `veil mask --out DIR` reads, masks and writes a chunk at a time into
WebDataset tar shards; they read back as the .npz path's arrays, a killed run resumes, and train, evaluate and the
other readers take the folder where they take an .npz."""
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

import veil.streaming
from veil.cli import main
from veil.data.stream import open_stream
from veil.errors import VeilError
from veil.masked import MaskedSet
from veil.shards import ShardedSet, load_masked

from conftest import random_pixels, write_archives

KEY = "7" * 64


@pytest.fixture()
def folder(tmp_path):
    """class/NNN.png: 23 images of 32x32 in two classes (a last chunk shorter than the others)."""
    root = tmp_path / "images"
    for i, pixels in enumerate(random_pixels(23, seed=3)):
        (root / ("ant" if i % 2 else "bee")).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / ("ant" if i % 2 else "bee") / f"{i:03d}.png")
    return root


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("VEIL_TEST_KEY", KEY)


def mask(data, out, method="pe", *extra):
    keyed = ["--key-env", "VEIL_TEST_KEY"] if method != "blur" else []
    return main(["--quiet", "mask", "--method", method, *keyed, "--data", str(data), "--out", str(out), *extra])


@pytest.mark.parametrize("method, extra, ext", [("pe", [], "png"), ("etc", ["--lossless"], "png"),
                                                ("blur", [], "npy")])
def test_shards_read_back_as_the_npz_of_the_same_images(folder, tmp_path, method, extra, ext):
    assert mask(folder, tmp_path / "set.npz", method) == 0
    assert mask(folder, tmp_path / "shards", method, "--chunk-size", "5", *extra) == 0
    whole, sharded = MaskedSet.load(tmp_path / "set.npz"), load_masked(tmp_path / "shards")
    assert np.array_equal(sharded.data, whole.data) and np.array_equal(sharded.labels, whole.labels)
    assert (sharded.class_names, sharded.method, sharded.fingerprint) == (whole.class_names, whole.method,
                                                                         whole.fingerprint)
    assert sharded.meta["config"] == whole.meta["config"]
    with tarfile.open(tmp_path / "shards" / "shard-000000.tar") as shard:  # WebDataset's layout, read by tarfile
        assert shard.getnames()[:2] == [f"000000000.{ext}", "000000000.cls"]
    assert len(sorted((tmp_path / "shards").glob("shard-*.tar"))) == 5  # 23 images in chunks of 5


def test_etc_shards_are_jpeg_and_the_manifest_says_lossy(tmp_path):
    """On digits (smooth pictures, where JPEG is meant to work; noise would not compress)."""
    assert mask("digits", tmp_path / "set.npz", "etc", "--limit", "64") == 0
    assert mask("digits", tmp_path / "shards", "etc", "--limit", "64", "--jpeg-quality", "90") == 0
    manifest = json.loads((tmp_path / "shards" / "manifest.json").read_text())
    assert manifest["storage"] == {"ext": "jpg", "quality": 90, "lossy": True} and manifest["complete"]
    whole, sharded = MaskedSet.load(tmp_path / "set.npz"), load_masked(tmp_path / "shards")
    error = np.abs(sharded.data - whole.data)
    assert 0 < error.mean() < 0.02  # compressed, not another image


def test_no_secret_in_the_shard_folder(folder, tmp_path):
    key_file = tmp_path / "key"
    assert main(["keygen", "--out", str(key_file)]) == 0
    secret = key_file.read_text().strip()
    assert main(["--quiet", "mask", "--method", "randfilter", "--key-file", str(key_file), "--data", str(folder),
                 "--out", str(tmp_path / "shards")]) == 0
    for path in (tmp_path / "shards").iterdir():
        content = path.read_bytes()
        assert secret.encode() not in content and bytes.fromhex(secret) not in content, path.name
    manifest = json.loads((tmp_path / "shards" / "manifest.json").read_text())
    assert "seed" not in json.dumps(manifest) and "key" not in manifest["meta"].get("config", {})


def test_the_reader_never_yields_more_than_a_chunk(folder, tree_archives):
    """Memory holds a chunk: every chunk a reader hands out, from a folder or an archive, is at most that long."""
    for source in (folder, tree_archives["tar.gz"], tree_archives["zip"]):
        split = None if source == folder else "train"
        stream = open_stream(str(source), split=split, require_labels=False, chunk_size=4)
        sizes = [len(chunk) for chunk in stream.raw_chunks()]
        assert max(sizes) <= 4 and sum(sizes) == len(stream) and len(sizes) == stream.n_chunks


def interrupt_after(shards: int, monkeypatch) -> list:
    """`veil mask` killed (Ctrl-C) as it starts shard number `shards`; the names of the shards it wrote."""
    written = []
    real = veil.streaming.write_shard

    def write_then_crash(path, *args):
        if len(written) == shards:
            raise KeyboardInterrupt
        written.append(path.name)
        return real(path, *args)

    monkeypatch.setattr(veil.streaming, "write_shard", write_then_crash)
    return written


def test_an_interrupted_run_resumes_skipping_its_finished_shards(folder, tmp_path, monkeypatch):
    assert mask(folder, tmp_path / "straight", "pe", "--chunk-size", "5") == 0
    real = veil.streaming.write_shard
    written = interrupt_after(2, monkeypatch)
    assert mask(folder, tmp_path / "shards", "pe", "--chunk-size", "5") == 130
    manifest = json.loads((tmp_path / "shards" / "manifest.json").read_text())
    assert not manifest["complete"] and [s["name"] for s in manifest["shards"]] == written
    with pytest.raises(VeilError, match="unfinished"):
        ShardedSet(tmp_path / "shards")
    written.clear()
    monkeypatch.setattr(veil.streaming, "write_shard",
                        lambda path, *args: written.append(path.name) or real(path, *args))
    assert mask(folder, tmp_path / "shards", "pe", "--chunk-size", "5") == 0
    assert written == [f"shard-00000{i}.tar" for i in (2, 3, 4)]
    for shard in (tmp_path / "straight").glob("shard-*.tar"):
        assert (tmp_path / "shards" / shard.name).read_bytes() == shard.read_bytes()


def test_an_unfinished_run_of_other_settings_or_a_finished_set_is_not_overwritten(folder, tmp_path, capsys,
                                                                                 monkeypatch):
    interrupt_after(1, monkeypatch)
    assert mask(folder, tmp_path / "shards", "pe", "--chunk-size", "5") == 130
    monkeypatch.undo()
    monkeypatch.setenv("VEIL_TEST_KEY", KEY)
    capsys.readouterr()
    assert mask(folder, tmp_path / "shards", "pe", "--chunk-size", "10") == 2
    assert "unfinished masking run with another chunk_size" in capsys.readouterr().err
    assert mask(folder, tmp_path / "shards", "pe", "--chunk-size", "10", "--force") == 0
    assert mask(folder, tmp_path / "shards", "pe", "--chunk-size", "10") == 2
    assert "already exists" in capsys.readouterr().err


def test_two_processes_write_the_shards_of_one(folder, tmp_path):
    assert mask(folder, tmp_path / "one", "pe", "--chunk-size", "5") == 0
    assert mask(folder, tmp_path / "two", "pe", "--chunk-size", "5", "--nproc", "2") == 0
    for shard in (tmp_path / "one").glob("shard-*.tar"):
        assert (tmp_path / "two" / shard.name).read_bytes() == shard.read_bytes()


def test_train_and_evaluate_from_shards_predict_as_from_the_npz(tmp_path, capsys):
    """A seeded random forest trained on a shard folder is the one trained on the .npz of the same vectors."""
    from veil.classifiers import load_classifier

    for name in ("train", "test"):
        source = ["--data", "digits", "--limit", "400" if name == "train" else "600"]
        assert main(["--quiet", "mask", "--method", "pe", "--key-env", "VEIL_TEST_KEY", *source,
                     "--out", str(tmp_path / f"{name}.npz")]) == 0
        assert main(["--quiet", "mask", "--method", "pe", "--key-env", "VEIL_TEST_KEY", *source, "--chunk-size",
                     "128", "--out", str(tmp_path / name)]) == 0
    for kind in ("npz", "dir"):
        masked = tmp_path / ("train.npz" if kind == "npz" else "train")
        assert main(["--quiet", "train", "--masked", str(masked), "--model", "rf", "--params",
                     '{"n_estimators": 20}', "--out", str(tmp_path / f"rf-{kind}")]) == 0
    test = MaskedSet.load(tmp_path / "test.npz").data
    predictions = [load_classifier(tmp_path / f"rf-{kind}").predict(test) for kind in ("npz", "dir")]
    assert np.array_equal(*predictions)
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "rf-dir"), "--masked", str(tmp_path / "test")]) == 0
    from_shards = capsys.readouterr().out
    assert main(["evaluate", "--model", str(tmp_path / "rf-dir"), "--masked", str(tmp_path / "test.npz")]) == 0
    assert capsys.readouterr().out == from_shards and "n          600" in from_shards


def test_a_torch_classifier_trains_from_shards_a_shard_at_a_time(tmp_path, capsys, monkeypatch):
    """The folder is never loaded whole (`ShardedSet.load` would raise), and the model learns."""
    assert mask("digits", tmp_path / "train", "pe", "--limit", "600", "--chunk-size", "128") == 0
    monkeypatch.setattr(ShardedSet, "load", lambda *args: pytest.fail("the whole set was loaded"))
    assert main(["--quiet", "train", "--masked", str(tmp_path / "train"), "--model", "nn", "--epochs", "3",
                 "--out", str(tmp_path / "nn")]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "nn"), "--masked", str(tmp_path / "train")]) == 0
    accuracy = float(capsys.readouterr().out.split()[1])
    assert accuracy > 0.6  # ten classes: chance is 0.1


def test_part_batches_visit_each_chosen_sample_once_per_epoch_within_a_part():
    from veil.training import PartBatches

    sizes = [5, 3, 4]
    samples = np.arange(12, dtype=np.float32)[:, None]
    edges = np.cumsum([0, *sizes])
    read_part = lambda i: (samples[edges[i]:edges[i + 1]], np.arange(edges[i], edges[i + 1]))  # noqa: E731
    chosen = np.ones(12, bool)
    chosen[[1, 7]] = False
    batches = PartBatches(read_part, sizes, chosen, batch_size=2, shuffle=True)
    seen = [batch for batch in batches]
    assert len(seen) == len(batches) and max(len(x) for x, _ in seen) <= 2
    labels = np.concatenate([y.numpy() for _, y in seen])
    assert sorted(labels) == sorted(np.flatnonzero(chosen))
    parts = [np.searchsorted(edges, y.numpy(), side="right") - 1 for _, y in seen]
    assert all(len(set(part)) == 1 for part in parts)  # a batch never spans two parts


def square_folder(root, sizes, count=6):
    """class/NNN.png of smooth RGB pictures, the i-th of size sizes[i % len(sizes)]."""
    for i in range(count):
        side = sizes[i % len(sizes)]
        ramp = np.linspace(0, 255, side, dtype=np.float32)
        pixels = np.stack([np.add.outer(ramp, ramp) / 2, np.add.outer(ramp, ramp[::-1]) / 2,
                           np.full((side, side), 37.0 * i % 255)], axis=-1).astype(np.uint8)
        (root / f"c{side}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / f"c{side}" / f"{i:03d}.png")
    return root


def test_a_64px_folder_masks_to_lossless_etc_shards_and_unmasks_bit_exactly(tmp_path):
    images = square_folder(tmp_path / "images", [64])
    assert mask(images, tmp_path / "shards", "etc", "--lossless", "--chunk-size", "4") == 0
    manifest = json.loads((tmp_path / "shards" / "manifest.json").read_text())
    assert manifest["sample_shape"] == [3, 64, 64] and manifest["meta"]["image_shape"] == [3, 64, 64]
    assert main(["--quiet", "unmask", "--masked", str(tmp_path / "shards"), "--key-env", "VEIL_TEST_KEY",
                 "--out", str(tmp_path / "plain")]) == 0
    originals = sorted((tmp_path / "images").rglob("*.png"))
    for i, original in enumerate(originals):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "plain" / f"{i:06d}.png")),
                              np.asarray(Image.open(original)))


def test_images_of_other_sizes_in_a_later_chunk_are_refused_naming_both(tmp_path, capsys):
    images = square_folder(tmp_path / "images", [48, 64], count=2)  # c48/000.png, then c64/001.png
    assert mask(images, tmp_path / "shards", "pe", "--chunk-size", "1") == 2
    err = capsys.readouterr().err
    assert "(3, 64, 64)" in err and "(3, 48, 48)" in err and "--size" in err
    assert mask(images, tmp_path / "resized", "pe", "--chunk-size", "1", "--size", "32") == 0
    assert load_masked(tmp_path / "resized").data.shape == (2, 3, 32, 32)


def test_streamed_chunks_are_the_images_load_gives(folder, tmp_path):
    """A folder, and a tar.gz and zip of it written in sorted order, stream the very pixels and labels of `load`."""
    from veil.data import load

    archives = write_archives(folder, tmp_path)
    whole = load(str(folder), pixels=True)
    for source in (folder, archives["tar.gz"], archives["zip"]):
        stream = open_stream(str(source), chunk_size=4)
        chunks = list(stream.chunks(pixels=True))
        assert stream.order == "sorted" and max(len(chunk) for chunk in chunks) <= 4
        assert np.array_equal(np.concatenate([chunk.images for chunk in chunks]), whole.images)
        assert np.array_equal(np.concatenate([chunk.labels for chunk in chunks]), whole.labels)


def test_training_from_shards_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path, monkeypatch):
    from veil.training import PartBatches

    assert mask("digits", tmp_path / "train", "pe", "--limit", "300", "--chunk-size", "128") == 0
    train = ["--quiet", "train", "--masked", str(tmp_path / "train"), "--model", "nn", "--epochs", "3", "--out"]
    assert main([*train, str(tmp_path / "straight")]) == 0
    real_iter, epochs = PartBatches.__iter__, []

    def stop_in_the_third_epoch(self):
        if self.shuffle:  # the training batches, not the evaluations'
            epochs.append(1)
            if len(epochs) == 3:
                raise KeyboardInterrupt
        return real_iter(self)

    monkeypatch.setattr(PartBatches, "__iter__", stop_in_the_third_epoch)
    assert main([*train, str(tmp_path / "resumed")]) == 130
    monkeypatch.setattr(PartBatches, "__iter__", real_iter)
    assert main([*train, str(tmp_path / "resumed"), "--resume"]) == 0
    weights = [(tmp_path / name / "model.safetensors").read_bytes() for name in ("straight", "resumed")]
    assert weights[0] == weights[1]


def test_the_mask_stream_benchmark_measures_etc_against_the_floor(tmp_path):
    """A tiny run of `veil bench mask-stream` (20 images made from an 8-image set, mirrored past 8), its inputs
    built once into the cache."""
    from veil.experiments.bench.stream import bench_mask_stream, input_folder

    source = tmp_path / "source"
    for i, pixels in enumerate(random_pixels(8, seed=5)):
        (source / ("train" if i < 6 else "test") / f"c{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(source / ("train" if i < 6 else "test") / f"c{i % 2}" / f"{i}.png")
    figures = bench_mask_stream(source, tmp_path / "bench.json", count=20)
    assert {"images_per_s", "pixel_mb_per_s", "peak_rss_mb", "floor_s", "etc_s", "etc_over_floor"} <= set(figures)
    assert figures["etc_over_floor"] == figures["etc_s"] / figures["floor_s"] and figures["peak_rss_mb"] > 10
    folder, build_s = input_folder(source, 20)
    assert build_s is None and len(list(folder.rglob("*.jpg"))) == 20
    mirrored = [np.asarray(Image.open(next(folder.rglob(f"{i:06d}.jpg")))) for i in (0, 8)]
    assert mirrored[0].shape == (224, 224, 3) and np.abs(mirrored[0][:, ::-1].astype(int) - mirrored[1]).mean() < 3


def test_masking_to_shards_reports_each_shard_when_not_on_a_terminal(folder, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("VEIL_NO_PROGRESS")  # the tests' default
    keyed = ["--key-env", "VEIL_TEST_KEY"]
    assert main(["mask", "--method", "pe", *keyed, "--data", str(folder), "--out", str(tmp_path / "s"),
                 "--chunk-size", "10"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mask: shard")]
    assert [line.split(" written")[0] for line in lines] == [f"mask: shard {i}/3" for i in (1, 2, 3)]


def test_an_attack_reads_a_shard_folder_as_the_npz(tmp_path):
    """FR on PE from a shard folder scores what it scores from the .npz of the same images."""
    from veil.data import load
    from veil.io.write import save_npz

    digits = load("digits")
    for name, part in (("victim", slice(0, 60)), ("public", slice(60, 400))):
        chosen = digits.subset(part)
        save_npz(tmp_path / f"{name}.npz", images=chosen.images, labels=chosen.labels,
                 class_names=np.array(chosen.class_names))
    figures = []
    for out in ("masked.npz", "masked"):
        chunks = ["--chunk-size", "16"] if out == "masked" else []
        assert mask(tmp_path / "victim.npz", tmp_path / out, "pe", *chunks) == 0
        assert main(["--quiet", "attack", "--method", "fr", "--threat", "a", "--masked", str(tmp_path / out),
                     "--victim", str(tmp_path / "victim.npz"), "--public", str(tmp_path / "public.npz"), "--quick",
                     "--out", str(tmp_path / f"fr-{out}")]) == 0
        figures.append(json.loads((tmp_path / f"fr-{out}" / "attack.json").read_text())["figures"])
    assert figures[0] == figures[1]


def test_masking_in_two_processes_reads_at_most_two_chunks_per_worker_ahead(folder, tmp_path):
    """Memory holds a bounded number of chunks however many the set has: the reader is never more than two chunks
    per worker ahead of the shards written."""
    from veil.maskers.masking import masking_function
    from veil.shards import Storage
    from veil.streaming import _masked_records

    stream = open_stream(str(folder), chunk_size=2)
    pulled, reader = [], stream.raw_chunks

    def counted(skip=frozenset()):
        for raw in reader(skip):
            pulled.append(raw.index)
            yield raw

    stream.raw_chunks = counted
    masker = masking_function("blur")
    ahead = [len(pulled) - written for written, _ in
             enumerate(_masked_records(stream, masker, Storage.for_masker(masker), tmp_path, frozenset(), 2))]
    assert len(ahead) == stream.n_chunks == 12 and max(ahead) <= 2 * 2


def test_the_default_chunk_holds_about_64_mib_of_pixels_in_multiples_of_128(tmp_path):
    for side, chunk in ((224, 384), (32, 4096)):
        images = square_folder(tmp_path / f"s{side}", [side], count=2)
        assert open_stream(str(images)).chunk_size == chunk


def test_a_224px_folder_masks_unmasks_trains_a_convmixer_and_evaluates_from_shards(tmp_path, capsys):
    """Issue 25's end-to-end check, from the CLI: a 224x224 folder to lossless EtC shards (block 16), back bit-exactly,
    a ConvMixer with patch = block trained on the shards and scored on them; a mixed-size folder is refused."""
    images = tmp_path / "images"
    for i, pixels in enumerate(np.random.default_rng(4).integers(0, 256, (8, 224, 224, 3), dtype=np.uint8)):
        (images / ("ant" if i % 2 else "bee")).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(images / ("ant" if i % 2 else "bee") / f"{i:03d}.png")
    assert mask(images, tmp_path / "shards", "etc", "--lossless", "--chunk-size", "4") == 0
    assert json.loads((tmp_path / "shards" / "manifest.json").read_text())["sample_shape"] == [3, 224, 224]
    assert main(["--quiet", "unmask", "--masked", str(tmp_path / "shards"), "--key-env", "VEIL_TEST_KEY",
                 "--out", str(tmp_path / "plain")]) == 0
    for i, original in enumerate(sorted(images.rglob("*.png"))):
        assert np.array_equal(np.asarray(Image.open(tmp_path / "plain" / f"{i:06d}.png")),
                              np.asarray(Image.open(original)))
    tiny = json.dumps({"dim": 8, "depth": 1, "kernel": 3, "patch": 16})
    assert main(["--quiet", "train", "--masked", str(tmp_path / "shards"), "--model", "convmixer", "--epochs", "1",
                 "--params", tiny, "--out", str(tmp_path / "model")]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "model"), "--masked", str(tmp_path / "shards")]) == 0
    assert "accuracy" in capsys.readouterr().out
    mixed = square_folder(tmp_path / "mixed", [224, 32], count=2)
    assert mask(mixed, tmp_path / "refused", "etc") == 2
    assert "224x224" in capsys.readouterr().err
