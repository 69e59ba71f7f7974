"""FD-infinity against the closed-form Frechet distance of Gaussians, and density/coverage against the
`prdc` package (Naeem et al.'s reference implementation) on the same features."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from gan_bench.errors import ConfigError
from gan_bench.metrics import stats


def gaussians(d: int = 32, seed: int = 1):
    """Two Gaussians whose Frechet distance is known in closed form: N(0, S) and N(0.1, 1.3 S)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    s1 = a @ a.T + 0.5 * np.eye(d)
    mu2, s2 = np.full(d, 0.1), 1.3 * s1
    # ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)), with (S1 S2)^(1/2) = sqrt(1.3) S1 here
    true = float(mu2 @ mu2 + np.trace(s1) * (1 + 1.3 - 2 * np.sqrt(1.3)))
    return (np.zeros(d), s1), (mu2, s2), true


def test_fd_infinity_removes_the_small_sample_bias_of_gaussians():
    (m1, s1), (m2, s2), true = gaussians()
    assert stats.frechet_distance_from_stats(m1, s1, m2, s2) == pytest.approx(true, rel=1e-9)
    bias, err = [], []
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        x, y = rng.multivariate_normal(m1, s1, size=1000), rng.multivariate_normal(m2, s2, size=1000)
        e = stats.fd_infinity(x, y, seed=seed)
        assert e.sizes == tuple(sorted(e.sizes)) and e.sizes[0] == 100 and e.sizes[-1] == 1000 and len(e.sizes) == 15
        assert e.slope > 0 and e.stderr > 0
        bias.append(stats.frechet_distance(x, y) - true)
        err.append(e.value - true)
    # FD at 1,000 samples of 32 dimensions is ~70% too high; the extrapolation removes most of that
    assert np.mean(bias) > 0.5 * true
    assert abs(np.mean(err)) < 0.2 * np.mean(bias) and np.mean(np.abs(err)) < 0.3 * np.mean(bias), (bias, err)


def test_fd_infinity_of_one_distribution_is_about_zero():
    (m1, s1), _, _ = gaussians()
    rng = np.random.default_rng(7)
    x, y = rng.multivariate_normal(m1, s1, size=1000), rng.multivariate_normal(m1, s1, size=1000)
    e = stats.fd_infinity(x, y)
    assert min(e.values) > 0.5 and abs(e.value) < 0.2 * min(e.values), e  # every FD_N > 0 is bias
    record = e.record("fd_inf")
    assert set(record) == {"fd_inf", "fd_inf_err", "fd_inf_slope", "fd_inf_sizes"}
    assert record["fd_inf_sizes"] == [100, 1000, 15]


def test_fd_infinity_needs_twice_the_dimension():
    x = np.random.default_rng(0).normal(size=(63, 32))
    with pytest.raises(ConfigError, match=r"fd_inf fits FD against 1/N for N from 32 .* at least 64 images per "
                                          r"set, got 63; raise --samples"):
        stats.fd_infinity(x, x)
    sizes = stats.fd_infinity_sizes(64, 32)  # from D (a full-rank covariance) to all, 15 points
    assert sizes[0] == 32 and sizes[-1] == 64 and len(sizes) == 15


@pytest.mark.parametrize("k", [3, 5])
def test_precision_recall_density_coverage_equal_the_prdc_package(k):
    from prdc import compute_prdc

    rng = np.random.default_rng(1)
    real = rng.normal(size=(300, 16)).astype(np.float32)
    fake = (1.2 * rng.normal(size=(250, 16)) + 0.3).astype(np.float32)
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        ref = compute_prdc(real, fake, nearest_k=k)
    got = stats.prdc(real, fake, k=k)
    for name in ("precision", "recall", "density", "coverage"):
        assert got[name] == pytest.approx(float(ref[name]), abs=1e-12), name
    assert got["density"] != got["precision"]  # density counts balls, precision only whether one holds it


def test_density_is_robust_to_a_real_outlier_where_precision_is_not():
    """Naeem et al.'s point: one far real sample has a huge k-NN ball that swallows bad fakes."""
    rng = np.random.default_rng(2)
    real = rng.normal(size=(400, 8))
    fake = rng.normal(size=(400, 8)) + 4.0  # far from the real data
    clean = stats.prdc(real, fake, k=5)
    outlier = np.vstack([real[:-1], np.full((1, 8), 4.0)])  # one real sample among the fakes
    dirty = stats.prdc(outlier, fake, k=5)
    assert clean["precision"] < 0.05 and dirty["precision"] > 0.95  # its ball swallows every fake
    assert dirty["density"] < clean["density"] + 1 / 5 + 0.01  # one ball counts 1/k per fake at most
    assert dirty["coverage"] < clean["coverage"] + 1 / 400 + 1e-9  # one ball of 400
