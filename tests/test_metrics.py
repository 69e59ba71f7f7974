"""Evaluation: the evaluation network, domain metrics behaving as they must, the metric registry,
Inception metrics (with a weights file of the right shapes written here: these machines cannot
download the real one), and evaluation during training."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from unittest import mock

import pytest
import torch
from torch import nn

from gan_bench.config import DataConfig, build_config
from gan_bench.data import load_data
from gan_bench.data.base import ImageData, Splits
from gan_bench.errors import ConfigError, GanBenchError
from gan_bench.metrics import classifier as C
from gan_bench.metrics import inception, stats
from gan_bench.metrics.evaluate import evaluate, in_training
from gan_bench.run import RunFolder
from gan_bench.metrics.registry import METRICS, higher_is_better
from gan_bench.models import build_model
from gan_bench.models.base import GAN


# ---- fixtures: shapes, its evaluation network, generators made of real images ------------------

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def splits() -> Splits:
    # 240 train / 160 test images per class: the test split has >= 128 (the feature width) per class
    return load_data(DataConfig(name="shapes", per_class=400, test_fraction=0.4))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("eval_nets")


@pytest.fixture(scope="session")
def clf(splits: Splits, cache_dir: Path) -> C.Classifier:
    return C.train_classifier(splits, epochs=2, cache_dir=cache_dir, log=lambda s: None)


class RealImageG(nn.Module):
    """A 'generator' that returns real test images: of class label_map(y) for label y (or of a
    random class when label_map is None), picked by z, so it is deterministic in (z, y)."""

    def __init__(self, data: ImageData, label_map=lambda y, k: y, conditional: bool = True) -> None:
        super().__init__()
        self.data, self.label_map, self.conditional = data, label_map, conditional
        self.pools = [(data.y == c).nonzero().flatten() for c in range(data.num_classes)]
        self.anchor = nn.Parameter(torch.zeros(1))  # so the GAN has a device

    def forward(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        k = len(self.pools)
        pick = (z[:, 0].abs() * 1e6).long()
        target = (pick // 7) % k if y is None or self.label_map is None else self.label_map(y.cpu(), k)
        idx = torch.stack([self.pools[t][p % len(self.pools[t])] for t, p in zip(target.tolist(), pick.tolist())])
        return self.data.x[idx].float().to(z.device) / 127.5 - 1.0


def fake_gan(splits: Splits, **kw) -> GAN:
    g = RealImageG(splits.test, **kw)
    return GAN(g, nn.Identity(), nz=4, spec=splits.spec, conditional=g.conditional)


def noise_images(n: int, like: ImageData, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *like.x.shape[1:]), generator=g, dtype=torch.uint8)


def blob_images(n: int, like: ImageData, seed: int = 0) -> torch.Tensor:
    """Another data set: one bright square at a random place on dark noise (tests/conftest's npz style)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 30, (n, *like.x.shape[1:]), generator=g, dtype=torch.uint8)
    for i, (r, c) in enumerate(torch.randint(0, like.resolution - 6, (n, 2), generator=g).tolist()):
        x[i, :, r:r + 6, c:c + 6] = 255
    return x


def silent(_: str) -> None:
    pass


# ---- the evaluation network ----------------------------------------------------------------------

def test_classifier_reaches_high_accuracy_on_shapes(clf: C.Classifier, splits: Splits):
    assert clf.test_acc >= 0.95
    assert set(clf.info["per_class_acc"]) == set(splits.train.classes)
    assert clf.info["train_images"] == len(splits.train) and clf.info["test_images"] == len(splits.test)


def test_classifier_is_cached_by_fingerprint(clf: C.Classifier, splits: Splits, cache_dir: Path):
    lines = []
    again = C.train_classifier(splits, epochs=2, cache_dir=cache_dir, log=lines.append)
    assert lines == [] and again.fingerprint == clf.fingerprint  # loaded, not trained
    assert again.path == cache_dir / f"shapes-{clf.fingerprint}.pt" and again.path.exists()
    x = splits.test.x[:64]
    assert torch.equal(C.features(again, x), C.features(clf, x))
    changed = Splits("shapes", ImageData(splits.train.x.clone(), splits.train.y, splits.train.classes), splits.test)
    changed.train.x[0, 0, 0, 0] ^= 1
    recipe = C.default_recipe(splits.train, epochs=2, seed=0)
    assert C.fingerprint(changed, recipe) != clf.fingerprint
    assert C.fingerprint(splits, C.default_recipe(splits.train, epochs=3, seed=0)) != clf.fingerprint
    # another test split reuses the network and measures its accuracy there
    half = Splits("shapes", splits.train, ImageData(splits.test.x[:800], splits.test.y[:800], splits.test.classes))
    other = C.train_classifier(half, epochs=2, cache_dir=cache_dir, log=lines.append)
    assert lines == [] and other.fingerprint == clf.fingerprint and other.info["test_images"] == 800


def test_features_are_float32_of_the_feature_width(clf: C.Classifier, splits: Splits):
    f = C.features(clf, splits.test.x[:10])
    assert f.shape == (10, C.FEATURE_DIM) and f.dtype == torch.float32


def test_unlabelled_data_gets_a_rotation_network_and_a_corrupt_cache_file_is_replaced(splits: Splits,
                                                                                     tmp_path: Path):
    unl = Splits("faces", ImageData(splits.train.x[:1500], None, []), ImageData(splits.test.x[:200], None, []))
    fp = C.fingerprint(unl, C.default_recipe(unl.train, epochs=2, seed=0))
    (tmp_path / f"faces-{fp}.pt").write_bytes(b"truncated")
    lines: list[str] = []
    net = C.train_classifier(unl, epochs=2, cache_dir=tmp_path, log=lines.append)
    assert "is unreadable" in lines[0] and lines[0].endswith("training it again")
    assert C.train_classifier(unl, epochs=2, cache_dir=tmp_path, log=lines.append).test_acc == net.test_acc
    assert len(lines) == 2  # the second call loaded the rewritten file
    assert net.info["task"] == "rotation" and set(net.info["per_class_acc"]) == {"rot0", "rot90", "rot180", "rot270"}
    assert net.test_acc > 0.4  # chance is 0.25 (circles, plus and cross signs look alike rotated)


# ---- domain metrics behave as they must -----------------------------------------------------------

def test_fd_self_is_zero_and_real_vs_real_is_far_below_noise_and_other_data(clf: C.Classifier, splits: Splits):
    test = C.features(clf, splits.test.x)
    train = C.features(clf, splits.train.x)
    assert stats.frechet_distance(test, test) < 1e-6 * stats.frechet_distance(test, train) + 1e-9
    real = stats.frechet_distance(train, test)
    noise = stats.frechet_distance(test, C.features(clf, noise_images(1000, splits.test)))
    other = stats.frechet_distance(test, C.features(clf, blob_images(1000, splits.test)))
    assert real < 0.1 * noise and real < 0.1 * other, (real, noise, other)


def test_kid_is_unbiased_on_identical_distributions(clf: C.Classifier, splits: Splits):
    f = C.features(clf, splits.test.x)
    perm = torch.randperm(len(f), generator=torch.Generator().manual_seed(0))
    a, b = f[perm[:800]], f[perm[800:]]  # two halves of one distribution
    mean, std = stats.kid(a, b, subsets=50, subset_size=400)
    noise_mean, _ = stats.kid(a, C.features(clf, noise_images(800, splits.test)), subsets=50, subset_size=400)
    assert abs(mean) < 0.01 * noise_mean and abs(mean) < 3 * std, (mean, std, noise_mean)


def test_cond_acc_correct_shifted_and_random_labels(clf: C.Classifier, splits: Splits, cache_dir: Path):
    k = splits.train.num_classes
    run = lambda gan: evaluate(gan, splits, metrics=["cond_acc", "gan_test"], samples=1000,  # noqa: E731
                               cache_dir=cache_dir, log=silent)
    right = run(fake_gan(splits))
    shifted = run(fake_gan(splits, label_map=lambda y, k: (y + 1) % k))
    random = run(fake_gan(splits, label_map=None))
    assert right["cond_acc"]["cond_acc"] >= clf.test_acc - 0.05
    assert shifted["cond_acc"]["cond_acc"] < 0.05
    assert abs(random["cond_acc"]["cond_acc"] - 1 / k) < 0.05
    assert set(right["cond_acc"]["per_class"]) == set(splits.train.classes)
    assert right["cond_acc"]["real_per_class"] == clf.info["per_class_acc"]
    for r in (right, shifted, random):  # GAN-test is cond_acc's overall value by construction
        assert r["gan_test"]["gan_test"] == r["cond_acc"]["cond_acc"]


def test_combined_evaluate_equals_each_metric_alone(splits: Splits, cache_dir: Path):
    gan = fake_gan(splits, label_map=lambda y, k: torch.where(y == 0, torch.ones_like(y), y))  # class 0 is wrong
    names = ["fd", "kid", "precision", "recall", "cond_acc", "intra_fd", "gan_test"]
    together = evaluate(gan, splits, metrics=names, samples=1300, cache_dir=cache_dir, log=silent)
    for name in names:
        alone = evaluate(gan, splits, metrics=[name], samples=1300, cache_dir=cache_dir, log=silent)
        assert alone[name] == together[name], name
    rec = together["intra_fd"]
    assert rec["per_class"]["circle"] > 10 * rec["per_class"]["square"]  # the wrong class stands out
    assert together["fd"]["samples"] == 1300 and together["fd"]["classifier_test_acc"] > 0.9
    assert 0.0 <= together["precision"]["precision"] <= 1.0 and together["kid"]["kid_std"] >= 0.0


def test_more_real_than_generated_images_change_nothing_in_pr(splits: Splits, cache_dir: Path):
    out = evaluate(fake_gan(splits), splits, metrics=["precision", "recall"], samples=500, cache_dir=cache_dir,
                   log=silent)
    assert out["precision"]["pr_images"] == 500  # real set subsampled to the generated count
    assert out["precision"]["precision"] > 0.7 and out["recall"]["recall"] > 0.5


class NoiseG(nn.Module):
    """A 'generator' of noise images, deterministic in z (a fixed random projection)."""

    def __init__(self, like: ImageData, nz: int = 4) -> None:
        super().__init__()
        self.shape = tuple(like.x.shape[1:])
        self.proj = nn.Parameter(torch.randn(nz, math.prod(self.shape), generator=torch.Generator().manual_seed(0)))

    def forward(self, z: torch.Tensor, y) -> torch.Tensor:
        return torch.tanh(z @ self.proj).reshape(len(z), *self.shape)


def test_every_line_holds_its_real_data_floor_beside_its_number(splits: Splits, cache_dir: Path):
    gan = GAN(NoiseG(splits.test), nn.Identity(), nz=4, spec=splits.spec, conditional=False)
    names = ["fd", "kid", "fd_inf", "precision", "recall", "density", "coverage"]
    out = evaluate(gan, splits, metrics=names, samples=600, cache_dir=cache_dir, log=silent)
    for name in names:  # the record names the field, the line holds it
        assert METRICS.info(name).floor in out[name], name
    fd, kid, inf = out["fd"], out["kid"], out["fd_inf"]
    assert fd["real_images"] == kid["real_images"] == inf["real_images"] == 600  # the same N as the generated
    assert fd["real_fd"] < 0.1 * fd["fd"] and kid["real_kid_mean"] < 0.1 * kid["kid_mean"]
    # FD-infinity removes the small-sample bias: real images' is below their FD at 600, noise's stays far
    assert inf["real_fd_inf"] < fd["real_fd"] and inf["fd_inf"] > 0.5 * fd["fd"]
    assert inf["fd_inf_sizes"] == [128, 600, 15] and inf["fd_inf_err"] > 0
    d, c = out["density"], out["coverage"]
    assert d["density"] < 0.1 < d["real_density"] and c["coverage"] < 0.1 < 0.7 < c["real_coverage"]
    assert d["pr_images"] == 600 and out["precision"]["real_precision"] > out["precision"]["precision"]


# ---- errors a user can cause --------------------------------------------------------------------

def test_too_few_samples_is_an_error(splits: Splits, cache_dir: Path):
    with pytest.raises(ConfigError, match=r"fd needs at least 128 generated images.*raise --samples"):
        evaluate(fake_gan(splits), splits, metrics=["fd"], samples=100, cache_dir=cache_dir, log=silent)
    with pytest.raises(ConfigError, match=r"intra_fd needs at least 128 generated images of every class"):
        evaluate(fake_gan(splits), splits, metrics=["intra_fd"], samples=1000, cache_dir=cache_dir, log=silent)


def test_small_test_split_error_when_named_skip_line_otherwise(splits: Splits, cache_dir: Path, monkeypatch,
                                                               tmp_path: Path):
    offline(monkeypatch, tmp_path)
    small = Splits("shapes", splits.train, ImageData(splits.test.x[:100], splits.test.y[:100], splits.test.classes))
    gan = fake_gan(splits, conditional=False)
    with pytest.raises(ConfigError, match="needs at least 128 real test images.*test split"):
        evaluate(gan, small, metrics=["fd"], samples=200, cache_dir=cache_dir, log=silent)
    lines: list[str] = []
    out = evaluate(gan, small, metrics=None, samples=200, cache_dir=cache_dir, log=lines.append)
    # unconditional: no class metrics; fd skipped; the Inception metrics are opt-in
    assert list(out) == ["kid", "precision", "recall", "density", "coverage"]
    assert [s.split(":")[0] for s in lines] == ["fd skipped"]  # nothing retrained


def test_unknown_or_inapplicable_metric_names(splits: Splits):
    with pytest.raises(ConfigError, match=r"unknown metric 'fid'.*Valid:.*\bfd\b"):
        evaluate(fake_gan(splits), splits, metrics=["fid"], samples=100, log=silent)
    with pytest.raises(ConfigError, match="cond_acc.*conditional or per-class model"):
        evaluate(fake_gan(splits, conditional=False), splits, metrics=["cond_acc"], samples=100, log=silent)
    assert higher_is_better("precision") and not higher_is_better("fd")
    assert all(e.info.key for e in METRICS)


# ---- Inception metrics (torch-fidelity) -------------------------------------------------------------

def offline(monkeypatch, tmp_path: Path) -> None:
    """No cached weights and no `inception` extra (as on machines without it)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(inception.N, "wheel_file", lambda: None)


@pytest.fixture(scope="module")
def fake_weights(tmp_path_factory) -> Path:
    """torch-fidelity's InceptionV3 state dict with random weights (the real file cannot be downloaded
    here). Conv weights are scaled by sqrt(6) so activations neither vanish nor explode."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    torch.manual_seed(0)
    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: None), \
            mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None):
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    sd = {k: v * math.sqrt(6) if k.endswith("conv.weight") else v for k, v in net.state_dict().items()}
    path = tmp_path_factory.mktemp("weights") / "inception-test-weights.pth"  # not the real file's name: its hash
    torch.save(sd, path)
    return path


def test_inception_metrics_with_a_test_written_weights_file(splits: Splits, fake_weights: Path):
    # Inception-v3 at 299 px is slow on a CPU: 8 generated and 8 reference images only.
    import torch_fidelity

    gan = fake_gan(splits, conditional=False)
    out = evaluate(gan, splits, metrics=["inception_kid", "inception_is"], samples=8,
                   inception_weights=fake_weights, log=silent)
    kid, isc = out["inception_kid"], out["inception_is"]
    assert kid["reference_images"] == 8 and all(math.isfinite(v) for v in (kid["inception_kid_mean"],
                                                                             isc["inception_is_mean"]))
    assert kid["inception_net"] == "inception-v3-compat" and kid["inception_sha256"] == hashlib.sha256(
        fake_weights.read_bytes()).hexdigest() and "torch-fidelity" in kid["inception_resize"]
    assert kid["real_images"] == 8 and math.isfinite(kid["real_inception_kid_mean"])  # the floor
    assert isc["inception_is_mean"] >= 1.0  # exp(KL) >= 1
    # the same numbers as torch-fidelity called directly on the same uint8 images
    from gan_bench.metrics.context import generate_images

    fake = generate_images(gan, n=8, seed=0, device=torch.device("cpu")).x
    real = splits.train.x[torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(0))[:8]]
    direct = torch_fidelity.calculate_metrics(
        input1=inception.N.UInt8Images(fake), input2=inception.N.UInt8Images(real), kid=True, isc=True,
        feature_extractor_weights_path=str(fake_weights), kid_subset_size=8, isc_splits=8, rng_seed=0,
        cuda=False, cache=False, save_cpu_ram=True, verbose=False)
    assert kid["inception_kid_mean"] == pytest.approx(direct["kernel_inception_distance_mean"], rel=1e-6, abs=1e-12)
    assert isc["inception_is_mean"] == pytest.approx(direct["inception_score_mean"], rel=1e-6)


def test_inception_fid_needs_2048_images(splits: Splits, fake_weights: Path):
    with pytest.raises(ConfigError, match="inception_fid needs at least 2048 generated images"):
        evaluate(fake_gan(splits), splits, metrics=["inception_fid"], samples=100, inception_weights=fake_weights,
                 log=silent)


def test_weights_are_found_in_a_cache_folder_or_named_path(tmp_path: Path, monkeypatch):
    offline(monkeypatch, tmp_path)
    (tmp_path / "cache").mkdir()
    f = tmp_path / "cache" / inception.WEIGHT_NAMES[0]
    torch.save({"conv.weight": torch.zeros(2)}, f)  # a state dict: what a real weights file holds
    assert inception.find_network(None, [tmp_path / "cache"]).path == f
    named = tmp_path / "my-weights.pth"  # a name without torch hub's hash suffix: not hashed
    named.write_bytes(f.read_bytes())
    assert inception.find_network(named, []).path == named
    with pytest.raises(GanBenchError, match="has sha256 .*, not the 6726825d... its name promises"):
        inception.find_network(f, [])
    with pytest.raises(GanBenchError, match="no such file"):
        inception.find_network(tmp_path / "typo.pth", [])
    (tmp_path / "cut.pth").write_bytes(f.read_bytes()[:40])  # a named file that is not weights: said at once
    with pytest.raises(GanBenchError, match="cut.pth' is corrupt or not a PyTorch weights file"):
        inception.find_network(tmp_path / "cut.pth", [])


def test_missing_weights_skip_inception_with_one_line_and_run_the_rest(splits: Splits, cache_dir: Path,
                                                                       monkeypatch, tmp_path: Path):
    offline(monkeypatch, tmp_path)
    lines: list[str] = []
    out = evaluate(fake_gan(splits), splits, metrics=["inception_fid", "fd", "inception_kid", "inception_is"],
                   samples=300, cache_dir=cache_dir, log=lines.append)
    assert list(out) == ["fd"]
    assert len(lines) == 1 and lines[0].startswith("inception metrics skipped: no Inception network; install ")
    assert ".[inception]" in lines[0] and "--inception-weights PATH" in lines[0] and "\n" not in lines[0]


# ---- during training -----------------------------------------------------------------------------

def test_in_training_appends_lines_and_leaves_the_trainer_state(splits: Splits, cache_dir: Path, tmp_path: Path,
                                                                monkeypatch):
    cfg = build_config([{"data": {"name": "shapes", "per_class": 400, "test_fraction": 0.4},
                         "model": {"name": "cdcgan", "width": 4, "nz": 8},
                         "eval": {"every": 1, "metrics": ["fd", "cond_acc"], "samples": 300}}])
    monkeypatch.setattr("gan_bench.metrics.evaluate.default_cache_dir", lambda cfg: cache_dir)
    gan = build_model(cfg.model, splits.spec)
    gan.train()
    rng = torch.get_rng_state()
    got = in_training(gan, splits, cfg, RunFolder(tmp_path), step=7)
    assert torch.equal(rng, torch.get_rng_state()) and gan.G.training
    assert set(got) == {"fd", "cond_acc"} and got["fd"] > 0
    lines = [json.loads(s) for s in (tmp_path / "eval.jsonl").read_text().splitlines()]
    assert [(r["metric"], r["step"], r["checkpoint"]) for r in lines] == [("fd", 7, "training"),
                                                                          ("cond_acc", 7, "training")]
    assert lines[0]["fd"] == got["fd"] and lines[1]["samples"] == 300

