"""``ganzoo eval`` and its maths: Fréchet distance, KID, digit and toy scores, Inception weight handling."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import write_png_images


def random_gaussian(rng: np.random.Generator, dim: int, count: int, shift: float) -> np.ndarray:
    mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    return rng.normal(size=(count, dim)) @ mixing + shift


def test_frechet_distance_matches_scipy_sqrtm():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    from ganzoo.metrics.frechet import frechet_distance, frechet_distance_to, gaussian_stats

    rng = np.random.default_rng(0)
    for dim, count in ((8, 500), (32, 200), (64, 40)):  # the last has fewer samples than features: singular covariance
        fake = random_gaussian(rng, dim, count, 0.3)
        a, b = gaussian_stats(random_gaussian(rng, dim, count + 100, 0.0)), gaussian_stats(fake)
        covmean = scipy_linalg.sqrtm(a.cov @ b.cov).real
        diff = a.mean - b.mean
        expected = diff @ diff + np.trace(a.cov) + np.trace(b.cov) - 2 * np.trace(covmean)
        assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6, abs=1e-6)
        assert frechet_distance_to(fake, a) == pytest.approx(expected, rel=1e-6, abs=1e-6)
        assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_running_stats_match_the_whole_matrix_even_far_from_zero():
    from ganzoo.metrics.frechet import RunningStats, gaussian_stats

    features = random_gaussian(np.random.default_rng(5), 12, 1000, 1e4)  # a large mean, unit-scale spread
    running = RunningStats()
    for start in range(0, 1000, 128):
        running.update(features[start : start + 128])
    whole = gaussian_stats(features)
    assert running.stats().count == 1000
    assert np.allclose(running.stats().mean, whole.mean) and np.allclose(running.stats().cov, whole.cov, atol=1e-8)


def test_kid_unbiased_estimator_matches_the_direct_formula():
    from ganzoo.metrics.frechet import kernel_distance, mmd2_unbiased

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(7, 5)), rng.normal(0.5, 1.0, size=(9, 5))

    def k(u, v):
        return (u @ v / 5 + 1) ** 3

    within_x = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    within_y = sum(k(y[i], y[j]) for i in range(9) for j in range(9) if i != j) / (9 * 8)
    across = sum(k(xi, yj) for xi in x for yj in y) / (7 * 9)
    assert mmd2_unbiased(x, y) == pytest.approx(within_x + within_y - 2 * across, rel=1e-10)
    same = rng.normal(size=(400, 5))
    kid = kernel_distance(same[:200], same[200:], subsets=20, subset_size=100)
    assert abs(kid.mean) < 0.05 and kid.subset_size == 100
    assert kernel_distance(x, y, subsets=3).subset_size == 7


def digit_images(count: int, seed: int) -> np.ndarray:
    """uint8 (N, 1, 28, 28): bright strokes (a bar and a ring) at random places on black."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    images = np.zeros((count, 1, 28, 28), dtype=np.uint8)
    for image in images:
        cy, cx = rng.integers(9, 19, size=2)
        ring = np.abs(np.hypot(yy - cy, xx - cx) - rng.uniform(4, 8)) < 1.2
        image[0][ring] = 255
        image[0, rng.integers(4, 24), 4:24] = 200
    return images


def test_frechet_distance_grows_with_noise_on_real_images():
    from ganzoo.metrics.frechet import frechet_distance, gaussian_stats

    real = digit_images(600, seed=2).reshape(600, -1)[:, ::4].astype(np.float64)  # 196 pixels as features
    reference, held_out = gaussian_stats(real[:300]), real[300:]
    rng = np.random.default_rng(3)
    distances = [frechet_distance(reference, gaussian_stats(np.clip(held_out + rng.normal(0, sigma, held_out.shape), 0, 255)))
                 for sigma in (0, 20, 60, 120)]
    assert distances == sorted(distances) and distances[-1] > 4 * distances[0]


def test_class_statistics_histogram_kl_confidence():
    from ganzoo.metrics.digits import class_statistics, conditional_accuracy

    one_class = class_statistics(np.tile([[9.0] + [0.0] * 9], (20, 1)))
    assert one_class.histogram[0] == 1.0 and one_class.kl_to_uniform == pytest.approx(np.log(10))
    assert one_class.mean_confidence > 0.99
    balanced = class_statistics(np.eye(10).repeat(3, axis=0) * 50)
    assert balanced.kl_to_uniform == pytest.approx(0.0) and balanced.histogram == (0.1,) * 10
    assert conditional_accuracy(np.eye(10) * 5, np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 0])) == pytest.approx(0.9)


def test_class_folders_are_read_as_the_digits_they_name():
    """Folders sort by name (eight, five, zero), so index 0 is the class named eight: the classifier's 8."""
    from ganzoo.metrics.digits import digit_labels

    labels = np.array([0, 1, 2, 2])
    assert digit_labels(labels, ("eight", "five", "zero")).tolist() == [8, 5, 0, 0]
    assert digit_labels(labels, ("3", "Seven", "9")).tolist() == [3, 7, 9, 9]
    assert digit_labels(labels, ("cats", "dogs", "zero")) is None
    assert digit_labels(labels, None) is labels  # samples written without names: their indices are the digits


def test_a_generator_of_named_classes_is_scored_against_the_digits_its_classes_name(cli, tmp_path):
    import torch

    from ganzoo.metrics.classifier import DigitClassifier, save_classifier

    torch.manual_seed(0)
    classifier = tmp_path / "random-classifier.safetensors"
    save_classifier(classifier, DigitClassifier().eval(), test_accuracy=0.1)
    for folders in (("eight", "five"), ("cats", "dogs")):
        data = tmp_path / "-".join(folders)
        for seed, name in enumerate(folders):
            write_png_images(data / name, 8, size=28, mode="L", seed=seed)
        run = tmp_path / f"run-{folders[0]}"
        cli("train", "cgan", "--data", data, "--epochs", "1", "--batch-size", "8", "--set", "hidden_dims=[16]", "--out", run,
            "--no-progress", "--device", "cpu")
        out = tmp_path / f"{folders[0]}.json"
        result = cli("eval", "cgan", "--weights", run, "--data", data, "--metrics", "digits", "--num", "20",
                     "--classifier", classifier, "--json", out)
        metrics = json.loads(out.read_text())["metrics"]
        note = ("note: digits_conditional_accuracy is left out: the generator's classes (cats, dogs) do not name the "
                "digits 0 to 9")
        if folders[0] == "eight":
            assert 0 <= metrics["digits_conditional_accuracy"] <= 1 and note[:40] not in result.output
        else:
            assert "digits_conditional_accuracy" not in metrics and note in " ".join(result.output.split())
        # samples written to a file keep their class names, and the file's scores read each class by its name
        cli("sample", "cgan", "--weights", run, "--class", folders[1].upper(), "--num", "20", "--out",
            tmp_path / "drawn.npz")  # a name in another case than its folder's, unique: taken
        with np.load(tmp_path / "drawn.npz", allow_pickle=False) as drawn:
            assert drawn["class_names"].tolist() == list(folders) and drawn["labels"].tolist() == [1] * 20
        result = cli("eval", "--samples", tmp_path / "drawn.npz", "--data", data, "--metrics", "digits",
                     "--classifier", classifier, "--json", out)
        metrics = json.loads(out.read_text())["metrics"]
        if folders[0] == "eight":
            assert 0 <= metrics["digits_conditional_accuracy"] <= 1
        else:
            assert "digits_conditional_accuracy" not in metrics and note in \
                " ".join(result.output.split())


def write_points(path: Path, points: np.ndarray) -> Path:
    np.savez(path, samples=points.astype(np.float32))
    return path


def test_toy_scores_through_the_command(cli, tmp_path):
    from ganzoo.data.toy import RING8

    rng = np.random.default_rng(4)
    means = np.asarray(RING8.means)
    everywhere = means[np.arange(800) % 8] + rng.normal(0, RING8.std, (800, 2))
    one_mode = means[[0]] + rng.normal(0, RING8.std, (800, 2))
    off = rng.uniform(-0.5, 0.5, (800, 2))  # near the centre: far from every mode
    scores = {}
    for name, points in (("all", everywhere), ("one", one_mode), ("off", off)):
        out = tmp_path / f"{name}.json"
        result = cli("eval", "--samples", write_points(tmp_path / f"{name}.npz", points), "--data", "ring8", "--json", out)
        assert "modes" in result.output
        scores[name] = json.loads(out.read_text())["metrics"]
    assert scores["all"]["modes"] == 8 and scores["all"]["high_quality"] > 0.95 and scores["all"]["reverse_kl"] < 0.02
    assert scores["one"]["modes"] == 1 and scores["one"]["reverse_kl"] == pytest.approx(np.log(8))
    assert scores["off"]["modes"] == 0 and scores["off"]["high_quality"] == 0.0
    elsewhere = cli("eval", "--samples", tmp_path / "all.npz", "--data", "line-2d", ok=False)
    assert elsewhere.exit_code == 1 and " ".join(elsewhere.output.split()) == (
        "Error: No metric scores the points of 'line-2d': the toy scores are defined for ring8 and grid25 only, and "
        "no plugin registers a metric for it; evaluate a model trained on one of those.")
    asked = cli("eval", "--samples", tmp_path / "all.npz", "--data", "line-2d", "--metrics", "toy", ok=False)
    assert asked.exit_code == 2 and ("--metrics toy (of plugin 'datasets') scores samples against ring8, grid25 only, "
                                     "not line-2d; give one of those as --data.") in " ".join(asked.output.split())
    document = json.loads((tmp_path / "all.json").read_text())  # scored by the built-in plugin, through the hook
    assert document["protocol"]["plugin_metrics"]["toy"].startswith("ganzoo ")
    assert isinstance(document["metrics"]["modes"], int)


def test_digit_scores_through_the_command_with_a_random_classifier(cli, tmp_path):
    """Plumbing: image folder as data, npz samples with labels, a randomly initialised classifier, JSON, cache."""
    import torch

    from ganzoo.metrics.classifier import DigitClassifier, save_classifier

    torch.manual_seed(0)
    classifier = tmp_path / "random-classifier.safetensors"
    save_classifier(classifier, DigitClassifier().eval(), test_accuracy=0.1)
    folder = tmp_path / "digits"
    write_png_images(folder, 48, size=28, mode="L")
    images = digit_images(40, seed=5)
    np.savez(tmp_path / "fake.npz", images=images, labels=np.arange(40) % 10)
    out = tmp_path / "scores.json"
    args = ("eval", "--samples", tmp_path / "fake.npz", "--data", folder, "--metrics", "digits",
            "--classifier", classifier, "--json", out)
    cli(*args)
    report = json.loads(out.read_text())
    metrics, protocol = report["metrics"], report["protocol"]
    assert metrics["digits_frechet"] > 0 and 0 <= metrics["digits_kl_to_uniform"] <= np.log(10) + 1e-9
    assert sum(metrics["digits_histogram"]) == pytest.approx(1.0) and 0.1 <= metrics["digits_confidence"] <= 1
    assert 0 <= metrics["digits_conditional_accuracy"] <= 1
    assert protocol == {**protocol, "samples": 40, "digits_reference": 48, "digits_reference_cached": False,
                        "resolution": [1, 28, 28], "split": "train"}
    cli(*args)
    again = json.loads(out.read_text())
    assert again["protocol"]["digits_reference_cached"] is True
    assert again["metrics"]["digits_frechet"] == pytest.approx(metrics["digits_frechet"], rel=1e-6)


def test_a_damaged_feature_cache_is_rebuilt_and_an_unwritable_one_costs_only_time(cli, tmp_path, monkeypatch):
    """Truncated or NaN cached features are computed again (not a LinAlgError); a cache that cannot be written
    is a note beside the scores, not a failure, and its advice names the cache, not an --out eval lacks."""
    import torch
    from safetensors.torch import load_file, save_file

    from ganzoo.metrics.classifier import DigitClassifier, save_classifier

    torch.manual_seed(0)
    classifier = tmp_path / "random-classifier.safetensors"
    save_classifier(classifier, DigitClassifier().eval(), test_accuracy=0.1)
    write_png_images(tmp_path / "digits", 24, size=28, mode="L")
    np.savez(tmp_path / "fake.npz", images=digit_images(20, seed=5))
    out = tmp_path / "scores.json"
    args = ("eval", "--samples", tmp_path / "fake.npz", "--data", tmp_path / "digits", "--metrics", "digits",
            "--classifier", classifier, "--json", out)

    def score() -> tuple[float, bool]:
        cli(*args)
        report = json.loads(out.read_text())
        return report["metrics"]["digits_frechet"], report["protocol"]["digits_reference_cached"]

    def cached_numbers() -> dict[str, torch.Tensor]:
        # copies, not views of a mapped file the test then truncates; and not bytes: the metadata has no fixed order
        return {name: tensor.clone() for name, tensor in load_file(str(cache)).items()}

    first, cached = score()
    [cache] = (Path(os.environ["GANZOO_CACHE"]) / "eval-stats").iterdir()
    assert not cached and score() == (pytest.approx(first, rel=1e-6), True)
    intact = cached_numbers()
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 2])
    assert score() == (pytest.approx(first, rel=1e-6), False)
    assert all(torch.allclose(cached_numbers()[name], intact[name], rtol=1e-5, atol=1e-6) for name in intact)
    damaged = {name: tensor.clone() for name, tensor in intact.items()}
    damaged["cov"][0, 0] = float("nan")
    save_file(damaged, str(cache), metadata={"format": "ganzoo.eval-stats/1", "count": "24"})
    assert score() == (pytest.approx(first, rel=1e-6), False)
    assert all(torch.allclose(cached_numbers()[name], intact[name], rtol=1e-5, atol=1e-6) for name in intact)

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("GANZOO_CACHE", str(blocker))
    result = cli(*args)
    message = "".join(result.output.split())  # rich wraps long paths anywhere
    assert "".join(f"note: the real features could not be cached in {blocker / 'eval-stats'} (Not a directory); the "
                   "next eval computes them again unless GANZOO_CACHE points at a writable folder".split()) in message
    assert "--out" not in message and json.loads(out.read_text())["metrics"]["digits_frechet"] == pytest.approx(first)


def test_bad_requests_get_one_clear_sentence(cli, tmp_path):
    points = write_points(tmp_path / "p.npz", np.zeros((10, 2)))
    assert "choose among" in cli("eval", "--samples", points, "--data", "ring8", "--metrics", ",", ok=False).output
    unused = cli("eval", "--samples", points, "--data", "ring8", "--real-num", "5", ok=False)
    assert unused.exit_code == 2 and ("Error: --real-num sets how many real images the fid, kid, pr and digits "
                                      "references hold, but the default --metrics toy uses none; drop --real-num.") in unused.output
    empty = cli("eval", "--samples", points, "--data", "ring8", "--metrics", "", ok=False)  # not the default metrics
    assert empty.exit_code == 1 and "No metric in ''; choose among fid, kid, is, pr, digits, toy" in empty.output
    assert "need images" in cli("eval", "--samples", points, "--data", "ring8", "--metrics", "fid", ok=False).output
    assert "ring8 and grid25 only" in cli("eval", "--samples", points, "--data", "line-2d", ok=False).output
    seeded = cli("eval", "--samples", points, "--data", "ring8", "--seed", "4", ok=False)  # a file has no seed
    assert seeded.exit_code == 2 and "drop MODEL, --weights, --pretrained, --num and --seed" in seeded.output
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert "Cannot read samples" in cli("eval", "--samples", tmp_path / "bad.npz", "--data", "ring8", ok=False).output


def test_sample_files_that_cannot_be_scored_get_one_clear_sentence(cli, tmp_path):
    import io
    import zipfile

    header = io.BytesIO()  # an .npy header claiming 10**7 64x64 RGB images (about 114 GiB) over 100 bytes of data
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": (10**7, 3, 64, 64)})
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as archive:
        archive.writestr("images.npy", header.getvalue() + bytes(100))
    np.savez(tmp_path / "labels.npz", images=digit_images(10, seed=1), labels=np.arange(3))
    np.savez(tmp_path / "one.npz", samples=np.zeros((1, 2), np.float32))
    np.savez(tmp_path / "empty-images.npz", images=np.zeros((4, 1, 0, 0), np.uint8))
    np.savez(tmp_path / "nan.npz", samples=np.array([[0.0, np.nan], [np.inf, 1.0], [1.0, 1.0]], np.float32))
    np.savez(tmp_path / "negative.npz", images=digit_images(10, seed=1), labels=np.arange(10) - 1)
    np.savez(tmp_path / "cats.npz", images=digit_images(10, seed=1), labels=np.arange(10) + 3)  # another set's classes
    for name, data, message in (
        ("huge", "mnist", "Cannot read samples from {}: its arrays claim more memory than this machine has, so it is "
                          "damaged or was not written by 'ganzoo sample'; write it again."),
        ("labels", "mnist", "{}: 'labels' must hold one whole number per sample (10), got int64 (3,); write the file "
                            "again with 'ganzoo sample --class ... --out x.npz'."),
        ("one", "ring8", "{} holds 1 sample; scores need at least 2 (thousands for stable ones), so write more with "
                         "'ganzoo sample --num N --out x.npz'."),
        ("empty-images", "mnist", "{}: 'images' must be uint8 (N, C, H, W) with C = 1 or 3 and H, W at least 1, got "
                                  "uint8 (4, 1, 0, 0)."),
        ("nan", "ring8", "{}: 2 of the sample values are NaN or infinite, so they cannot be scored; sample again from "
                         "a generator that had not diverged."),
        ("negative", "mnist", "{}: 'labels' must be class indices (0 or more), but one is -1; write the file again "
                              "with 'ganzoo sample --class ... --out x.npz'."),
        ("cats", "mnist", "{}: its labels go up to 12, but the digit classifier knows the 10 digits (0 to 9) only, so "
                          "it cannot tell whether samples match their labels; score them with other --metrics, or "
                          "write the file without its 'labels'."),
    ):
        path = tmp_path / f"{name}.npz"
        result = cli("eval", "--samples", path, "--data", data, "--metrics", "toy" if data == "ring8" else "digits",
                     ok=False)
        assert result.exit_code == 1 and " ".join(result.output.split()) == "Error: " + message.format(path)


def test_json_never_replaces_a_file_the_evaluation_reads(cli, tmp_path):
    points = write_points(tmp_path / "p.npz", np.zeros((10, 2)))
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"a generator")
    for args, target in ((["--samples", points], points), (["gan", "--weights", weights], weights),
                         (["gan", "--weights", tmp_path], None)):  # a folder stands for its generator.safetensors
        target = target or tmp_path / "generator.safetensors"
        if not target.exists():
            target.write_bytes(b"a generator")
        before = target.read_bytes()
        result = cli("eval", *args, "--data", "ring8", "--json", target, ok=False)
        assert result.exit_code == 1 and " ".join(result.output.split()).endswith(
            f"Error: --json {target} is a file this command reads, and its output would replace it; choose another "
            "--json file.")
        assert target.read_bytes() == before


def test_json_replaces_earlier_results_but_no_other_kind_of_file(cli, tmp_path):
    points = write_points(tmp_path / "p.npz", np.zeros((10, 2)))
    other = {"discriminator.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ", "losses.png": b"\x89PNG\r\n\x1a\n...",
             "notes.json": "r\u00e9sum\u00e9: not JSON".encode()}
    for name, content in other.items():  # a run's other files, given to --json by mistake, stay as they were
        (tmp_path / name).write_bytes(content)
        result = cli("eval", "--samples", points, "--data", "ring8", "--json", tmp_path / name, ok=False)
        assert result.exit_code == 1 and " ".join(result.output.split()) == (
            f"Error: --json {tmp_path / name} already exists and is not a .json file, so writing there would destroy "
            "it; choose another --json file, or remove that one first if it is not needed.")
        assert (tmp_path / name).read_bytes() == content
    results = tmp_path / "scores.json"
    for _ in range(2):  # written, then written again
        cli("eval", "--samples", points, "--data", "ring8", "--json", results)
        assert "metrics" in json.loads(results.read_text())


def test_unknown_metric_gets_a_did_you_mean_like_unknown_models(cli, tmp_path):
    points = write_points(tmp_path / "p.npz", np.zeros((10, 2)))
    result = cli("eval", "--samples", points, "--data", "ring8", "--metrics", "toy,fdi", ok=False)
    assert result.exit_code == 1 and " ".join(result.output.split()) == (
        "Error: Unknown metric 'fdi'. Did you mean 'fid'? Known metrics: digits, fid, is, kid, pr, toy.")
    model = cli("eval", "dcgn", "--weights", tmp_path / "w.safetensors", "--data", "ring8", ok=False)
    assert model.output.startswith("Error: Unknown model 'dcgn'. Did you mean 'dcgan'")  # the same phrasing


@pytest.mark.parametrize("command, extra", [("eval", ["--data", "horse2zebra"]), ("sample", ["--out", "x.png"])])
@pytest.mark.parametrize("model", ["cyclegan", "pix2pix"])
def test_translators_are_pointed_to_translate_before_their_weights_are_opened(cli, tmp_path, command, extra, model):
    missing = tmp_path / "missing.safetensors"  # named after the model: the model is the first thing wrong
    result = cli(command, model, "--weights", missing, *extra, ok=False)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert " ".join(result.output.split()).endswith(
        f"Error: Model '{model}' translates images rather than sampling noise, so 'ganzoo {command}' has nothing to "
        f"draw from it; use 'ganzoo translate {model} --weights FILE --input IMAGES --out DIR'.")


def test_a_picture_passed_as_samples_is_refused_without_pickle_advice(cli, tmp_path):
    picture = write_png_images(tmp_path / "pictures", 1)[0]
    npy = tmp_path / "points.npy"
    np.save(npy, np.zeros((10, 2), dtype=np.float32))
    truncated = tmp_path / "truncated.npz"
    write_points(tmp_path / "whole.npz", np.zeros((10, 2)))
    truncated.write_bytes((tmp_path / "whole.npz").read_bytes()[:60])
    for path in (picture, npy, truncated):
        result = cli("eval", "--samples", path, "--data", "ring8", ok=False)
        assert result.exit_code == 1 and " ".join(result.output.split()) == (
            f"Error: Cannot read samples from {path}: it is not an .npz written by 'ganzoo sample'; "
            f"pass the file that 'ganzoo sample MODEL --out x.npz' writes."), result.output


def test_missing_dataset_fails_before_generating_and_cached_features_need_none(cli, tmp_path, monkeypatch):
    """The dataset is looked for before a sample is made; with its features cached it is not needed at all."""
    import dataclasses
    import socket

    from ganzoo.data import idx

    empty = tmp_path / "empty-root"
    with socket.socket() as closed:  # bound but not listening: the download is refused at once, offline or not
        closed.bind(("127.0.0.1", 0))
        mirror = f"http://127.0.0.1:{closed.getsockname()[1]}/"
        monkeypatch.setattr(idx, "MNIST", dataclasses.replace(idx.MNIST, mirrors=(mirror,)))
        # 10**13 samples cannot be generated (their noise alone is 4 PB): the command must fail before it tries
        result = cli("eval", "dcgan", "--pretrained", "dcgan-mnist", "--data", "mnist", "--metrics", "digits",
                     "--num", 10**13, "--data-root", empty, "--device", "cpu", ok=False)
        message = " ".join(result.output.split())
        assert result.exit_code == 1 and message.startswith(
            f"Error: MNIST is not in {empty / 'MNIST' / 'raw'} and could not be downloaded (from {mirror}: ")
        assert message.endswith("); put train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz there, or point "
                                "--data-root / GANZOO_DATA at a folder that has MNIST/raw/.")
        from conftest import write_tiny_mnist

        write_tiny_mnist(tmp_path / "root")
        out = tmp_path / "scores.json"
        args = ("eval", "dcgan", "--pretrained", "dcgan-mnist", "--data", "mnist", "--metrics", "digits",
                "--num", 20, "--device", "cpu", "--json", out)
        cli(*args, "--data-root", tmp_path / "root")
        first = json.loads(out.read_text())
        assert first["protocol"]["digits_reference"] == 64 and first["protocol"]["digits_reference_cached"] is False
        shutil.rmtree(tmp_path / "root" / "MNIST")
        cli(*args, "--data-root", tmp_path / "root")  # the reference features are cached: no dataset needed
        again = json.loads(out.read_text())
        assert again["protocol"]["digits_reference_cached"] is True and not (tmp_path / "root" / "MNIST").exists()
        assert again["metrics"]["digits_frechet"] == pytest.approx(first["metrics"]["digits_frechet"], rel=1e-6)


def test_features_cached_from_one_data_root_never_stand_in_for_another(cli, tmp_path):
    """Two data roots may hold different files under one dataset name (a 64-digit subset, the whole set): the
    reference features read from one are never taken as the other's."""
    from conftest import write_tiny_mnist

    write_tiny_mnist(tmp_path / "subset", count=64)
    write_tiny_mnist(tmp_path / "whole", count=96)
    out = tmp_path / "scores.json"
    args = ("eval", "dcgan", "--pretrained", "dcgan-mnist", "--data", "mnist", "--metrics", "digits", "--num", 20,
            "--device", "cpu", "--json", out)
    counts = []
    for root in ("subset", "whole", "subset"):
        cli(*args, "--data-root", tmp_path / root)
        protocol = json.loads(out.read_text())["protocol"]
        counts.append((protocol["digits_reference"], protocol["digits_reference_cached"]))
    assert counts == [(64, False), (96, False), (64, True)]


def test_a_real_num_beyond_the_dataset_says_the_reference_holds_all_of_it(cli, tmp_path):
    from conftest import write_tiny_mnist

    write_tiny_mnist(tmp_path / "root", count=64)
    args = ("eval", "dcgan", "--pretrained", "dcgan-mnist", "--data", "mnist", "--metrics", "digits", "--num", 20,
            "--device", "cpu", "--data-root", tmp_path / "root", "--json", tmp_path / "scores.json")
    for cached in (False, True):
        result = cli(*args, "--real-num", 100)
        assert ("note: --real-num 100 is more than the 64 training images of mnist; the reference holds all of them"
                in " ".join(result.output.split()))
        protocol = json.loads((tmp_path / "scores.json").read_text())["protocol"]
        assert (protocol["digits_reference"], protocol["digits_reference_cached"]) == (64, cached)
        computing = "computing the features of 64 real images, to keep in"  # told, as no bar shows when piped
        assert (computing in " ".join(result.output.split())) is not cached
    assert "--real-num" not in cli(*args, "--real-num", 64).output


def test_a_generator_scored_against_another_dataset_than_its_own_says_so(cli, tmp_path):
    from conftest import write_tiny_mnist

    write_tiny_mnist(tmp_path / "root")
    write_png_images(tmp_path / "letters", 12, size=28, mode="L")
    args = ("eval", "dcgan", "--pretrained", "dcgan-mnist", "--metrics", "digits", "--num", 20, "--device", "cpu")
    other = cli(*args, "--data", tmp_path / "letters")
    assert (f"note: the generator was trained on mnist, not on {tmp_path / 'letters'}, which it is scored "
            "against") in " ".join(other.output.split())
    assert "trained on" not in cli(*args, "--data", "mnist", "--data-root", tmp_path / "root").output


def test_data_root_help_reads_as_in_train(cli):
    def data_root_help(command: str) -> str:
        text = " ".join(cli(command, "--help").output.split())
        start = text.index("--data-root")
        return text[start : text.index("]", start) + 1]

    assert data_root_help("eval") == data_root_help("train")
    assert data_root_help("eval").endswith("[default: $GANZOO_DATA, else ~/.cache/ganzoo/data]")


def test_missing_inception_weights_offline_say_where_to_put_them(cli, tmp_path, monkeypatch):
    from ganzoo.metrics import inception

    monkeypatch.setattr(inception, "WEIGHTS_URL", "http://127.0.0.1:9/weights-inception-2015-12-05-6726825d.pth")
    np.savez(tmp_path / "fake.npz", images=digit_images(4, seed=6))
    result = cli("eval", "--samples", tmp_path / "fake.npz", "--data", "mnist", "--metrics", "fid", ok=False)
    message = " ".join(result.output.split())
    assert result.exit_code == 1 and "GANZOO_INCEPTION_WEIGHTS" in message and "--inception-weights" in message
    assert str(inception.weights_folder()) in message.replace(" ", "") or "inception" in message
    assert not any(inception.weights_folder().glob("*.part"))
    missing = cli("eval", "--samples", tmp_path / "fake.npz", "--data", "mnist", "--metrics", "is",
                  "--inception-weights", tmp_path / "nope.pth", ok=False)
    assert "does not exist" in missing.output


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory) -> Path:
    """torch-fidelity's Inception network with random weights, saved as safetensors (the real file cannot be fetched)."""
    pytest.importorskip("torch_fidelity")
    import torch
    from safetensors.torch import save_file
    from torch_fidelity import feature_extractor_inceptionv3 as module

    from ganzoo.metrics.inception import NO_FILE, weights_handed_over

    torch.manual_seed(0)
    with pytest.MonkeyPatch.context() as patch, weights_handed_over(module, {}):  # the layers, no weights to load
        patch.setattr(module.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state, strict=True: None)
        network = module.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                     feature_extractor_weights_path=str(NO_FILE))
    path = tmp_path_factory.mktemp("inception") / "random-inception.safetensors"
    save_file({name: tensor.contiguous() for name, tensor in network.state_dict().items()}, str(path))
    return path


def test_inception_metrics_through_the_command_with_random_weights(cli, tmp_path, random_inception):
    """Plumbing of FID, KID, IS and precision/recall: torch-fidelity's network fed from a safetensors file."""
    folder = tmp_path / "real"
    write_png_images(folder, 4, size=16)
    rng = np.random.default_rng(7)
    np.savez(tmp_path / "fake.npz", images=rng.integers(0, 256, (10, 3, 16, 16), dtype=np.uint8))
    out = tmp_path / "scores.json"
    cli("eval", "--samples", tmp_path / "fake.npz", "--data", folder, "--inception-weights", random_inception,
        "--batch-size", 5, "--json", out)
    report = json.loads(out.read_text())
    metrics = report["metrics"]
    assert set(metrics) >= {"fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall"}
    # IS is exp(a mean KL), at least 1; random weights give near-uniform predictions, so allow rounding below it
    assert metrics["fid"] > 0 and metrics["is_mean"] >= 1.0 - 1e-9 and metrics["kid_subset_size"] == 4
    assert 0 <= metrics["precision"] <= 1 and 0 <= metrics["recall"] <= 1 and metrics["pr_samples"] == 4
    assert report["protocol"]["inception_reference"] == 4 and report["protocol"]["inception"].startswith("inception-")
    import torch
    from safetensors.torch import load_file

    pth = tmp_path / "weights-inception-2015-12-05-6726825d.pth"  # the original's form, read without unpickling
    torch.save(load_file(str(random_inception)), pth, _use_new_zipfile_serialization=False)
    cli("eval", "--samples", tmp_path / "fake.npz", "--data", folder, "--inception-weights", pth, "--batch-size", 5,
        "--json", out)
    assert json.loads(out.read_text())["metrics"] == metrics


INSTEAD = ("pass the pt_inception-2015-12-05 weights (weights-inception-2015-12-05-6726825d.pth, or their .safetensors "
           "conversion pt_inception-2015-12-05.safetensors) instead.")


@pytest.mark.parametrize("name, what", [("digits.png", "a PNG image"), ("w.txt", "a text file"),
                                        ("arrays.npz", "a NumPy .npz archive of arrays"),
                                        ("generator.safetensors", "a file ganzoo wrote (ganzoo.generator/1: generator "
                                                                  "weights of a run)")])
def test_a_file_that_holds_no_inception_weights_is_named_for_what_it_is(cli, tmp_path, name, what):
    """Offline, --inception-weights is the way to FID: a file of another kind given there is told by its first bytes
    and named in one sentence that says what to pass, not read by a parser it was never meant for."""
    from PIL import Image

    write_png_images(tmp_path / "real", 4, size=16)
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "fake.npz", images=rng.integers(0, 256, (6, 3, 16, 16), dtype=np.uint8))
    given = tmp_path / name
    if name == "digits.png":
        Image.new("L", (8, 8)).save(given)
    elif name == "w.txt":
        given.write_text("the inception weights\n")
    elif name == "arrays.npz":
        np.savez(given, weights=np.ones(3, dtype=np.float32))
    else:
        cli("train", "gan", "--data", "ring8", "--epochs", "1", "--batch-size", "51200", "--set", "hidden_dims=[8]",
            "--device", "cpu", "--no-progress", "--out", tmp_path / "run")
        (tmp_path / "run" / "generator.safetensors").rename(given)
    result = cli("eval", "--samples", tmp_path / "fake.npz", "--data", tmp_path / "real", "--metrics", "fid",
                 "--inception-weights", given, ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    said = "".join(result.output.split())  # the path may be folded anywhere
    assert said == "".join(f"Error: {given} is {what}, not Inception weights; {INSTEAD}".split())


def test_weights_that_do_not_fit_the_inception_network_say_which_tensors_are_amiss():
    pytest.importorskip("torch_fidelity")
    import torch

    from ganzoo.errors import GanzooError
    from ganzoo.metrics.inception import InceptionFeatures

    with pytest.raises(GanzooError, match=r"^The Inception weights do not fit torch-fidelity's network \(\d+ missing "
                                          r"\(Conv2d_1a_3x3\.conv\.weight, Conv2d_1a_3x3\.bn\.weight, "
                                          r"Conv2d_1a_3x3\.bn\.bias and \d+ more\); 1 of another shape \(fc\.weight\)\); "
                                          r"pass the pt_inception-2015-12-05 weights \(weights-inception-2015"):
        InceptionFeatures({"fc.weight": torch.ones(2, 2)}, "test")


def test_misfit_names_a_count_and_whole_names_of_each_group_of_tensors():
    from ganzoo.metrics.inception import misfit

    message = ('Error(s) in loading state_dict for Net:\n\tMissing key(s) in state_dict: "a.weight", "b.weight", '
               '"c.weight", "d.weight". \n\tUnexpected key(s) in state_dict: "net.0.weight". \n\tsize mismatch for '
               'fc.weight: copying a param with shape torch.Size([2]) from checkpoint.')
    assert misfit(message) == ("4 missing (a.weight, b.weight, c.weight and 1 more); 1 of no use to it (net.0.weight); "
                               "1 of another shape (fc.weight)")
    assert misfit("Error(s) in loading state_dict for Net:\n\tsomething else") == "Error(s) in loading state_dict for Net:"


@pytest.mark.parametrize("loader", ["none", "its own", "another file"])
def test_a_torch_fidelity_that_would_load_the_weights_its_own_way_is_refused(monkeypatch, loader):
    """ganzoo hands the tensors over through torch-fidelity's ``torch.load``; a version that skips it (loading
    nothing, or reading the file by another route, or another file) must not get to unpickle anything, and the
    user is told."""
    import types

    import torch

    from ganzoo.errors import GanzooError
    from ganzoo.metrics import inception

    def build(name, features, feature_extractor_weights_path):
        if loader == "its own":
            torch.serialization.load(feature_extractor_weights_path, weights_only=False)
        if loader == "another file":  # through the module's torch, as 0.4 does, but not the path it was given
            stand_in.torch.load("downloaded-inception.pth", weights_only=False)
        return torch.nn.Linear(1, 1)

    stand_in = types.SimpleNamespace(torch=torch, FeatureExtractorInceptionV3=build)
    monkeypatch.setattr(inception, "_torch_fidelity_inception", lambda: stand_in)
    with pytest.raises(GanzooError, match=r"loads its Inception weights in a way ganzoo does not know, so it cannot be "
                                          r"given them without unpickling; install the version ganzoo supports"):
        inception.InceptionFeatures({"fc.weight": torch.ones(1, 1)}, "test")
    assert stand_in.torch is torch


def test_digit_classifier_judges_larger_digits_as_their_28px_originals():
    import torch

    from ganzoo.metrics.digits import load_digit_features

    torch.manual_seed(0)
    blobs = torch.zeros(16, 1, 28, 28)
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    for image, (cy, cx, radius) in zip(blobs, torch.rand(16, 3) * torch.tensor([12.0, 12.0, 5.0]) + torch.tensor([8.0, 8.0, 3.0])):
        image[0] = torch.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * radius**2))  # smooth, so resizing keeps it
    small = (blobs * 255).round().to(torch.uint8)
    large = small.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # the same images at 56 x 56
    features = load_digit_features()
    expected, got = features(small)["logits"], features(large)["logits"]
    assert torch.equal(expected.argmax(1), got.argmax(1))
    assert (got - expected).norm() / expected.norm() < 0.05
    for wrong in (torch.zeros(2, 3, 28, 28), torch.zeros(2, 1, 28, 20), torch.zeros(2, 28, 28)):
        with pytest.raises(Exception, match="square grayscale"):
            features(wrong.to(torch.uint8))


def test_a_folders_cached_features_are_not_reused_once_its_pictures_decode_another_way(tmp_path, monkeypatch):
    """Reference features of an image folder are keyed by the decoding's version too: after a change in how pictures
    decode (turned by their EXIF orientation, 16-bit range), those of the old decoding no longer match."""
    from ganzoo import evaluation
    from ganzoo.data import decoded_cache

    write_png_images(tmp_path / "photos", 3)
    key = evaluation.dataset_key(str(tmp_path / "photos"), tmp_path)
    assert key == evaluation.dataset_key(str(tmp_path / "photos"), tmp_path / "elsewhere")  # a folder has no root
    monkeypatch.setattr(decoded_cache, "FORMAT", decoded_cache.FORMAT + "-next")
    assert evaluation.dataset_key(str(tmp_path / "photos"), tmp_path) != key
