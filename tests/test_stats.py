"""Tests of gan_bench.metrics.stats against closed forms, scipy and known-answer cases."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from gan_bench.errors import ConfigError
from gan_bench.metrics.stats import (feature_stats, frechet_distance, frechet_distance_from_stats, kid,
                                     precision_recall)


def _random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# ---------------------------------------------------------------- feature_stats / Frechet distance

def test_feature_stats_matches_numpy_and_accepts_torch():
    x = np.random.default_rng(0).standard_normal((50, 7)).astype(np.float32)
    mu, sigma = feature_stats(torch.from_numpy(x))
    assert mu.dtype == sigma.dtype == np.float64 and sigma.shape == (7, 7)
    np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-10)


def test_fd_closed_form_commuting_covariances():
    # S1 = Q diag(a) Q^T, S2 = Q diag(b) Q^T commute, so Tr sqrt(S1 S2) = sum sqrt(a b) and
    # FD = |mu1 - mu2|^2 + sum (sqrt a - sqrt b)^2 exactly.
    rng = np.random.default_rng(1)
    d = 40
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    a, b = rng.uniform(0.5, 3.0, d), rng.uniform(0.5, 3.0, d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance_from_stats(mu1, (q * a) @ q.T, mu2, (q * b) @ q.T)
    assert abs(got - expected) < 1e-8
    # Diagonal case, by hand: d=2, means 1 apart, variances (1, 4) and (4, 1): 1 + 2 * (2 - 1)^2.
    assert abs(frechet_distance_from_stats([0, 0], np.diag([1.0, 4.0]), [1, 0], np.diag([4.0, 1.0])) - 3.0) < 1e-12


def test_fd_matches_scipy_sqrtm_on_non_commuting_spd():
    rng = np.random.default_rng(2)
    for d in (3, 20, 64):
        s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
        mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
        covmean = scipy.linalg.sqrtm(s1 @ s2)
        ref = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real
        assert frechet_distance_from_stats(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-6)


def test_fd_of_a_set_with_itself_is_zero_and_same_distribution_is_small():
    rng = np.random.default_rng(3)
    d = 32
    x = rng.standard_normal((4000, d)) * rng.uniform(0.1, 3.0, d)
    scale = np.trace(np.cov(x, rowvar=False))
    assert frechet_distance(x, x) < 1e-6 * scale
    same = frechet_distance(x[:2000], x[2000:])
    other = frechet_distance(x[:2000], x[2000:] * 1.5 + 0.5)
    assert 0 < same < 0.05 * other  # `same` is the O(D^2 / N) estimation bias only


def test_fd_too_few_samples_raises():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((100, 64)), rng.standard_normal((63, 64))
    with pytest.raises(ConfigError, match="fd needs at least 64 samples .* got 63; raise --samples"):
        frechet_distance(x, y)
    with pytest.raises(ConfigError):
        frechet_distance(y, x)
    frechet_distance(x, rng.standard_normal((64, 64)))  # N == D is allowed
    with pytest.raises(ConfigError, match="feature dimensions differ"):
        frechet_distance(x, rng.standard_normal((100, 32)))


# ---------------------------------------------------------------- KID

def _mmd2_reference(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 written out pair by pair (torch-fidelity's kernel and estimator)."""
    m, d = x.shape
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (xx + yy) / (m * (m - 1)) - 2 * xy / m ** 2


def test_kid_matches_pairwise_reference():
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((20, 5)), rng.standard_normal((20, 5)) + 0.5
    # One subset of all rows: a permutation only, and MMD^2 does not depend on the order.
    mean, std = kid(x, y, subsets=1, subset_size=20)
    assert mean == pytest.approx(_mmd2_reference(x, y), rel=1e-10) and std == 0.0


def test_kid_unbiased_near_zero_for_same_distribution():
    # 30 independent pairs of samples of one distribution: the estimates scatter around 0, some below.
    # (subset_size=n: every subset is the whole set, so one subset per pair is enough.)
    d, n = 16, 200
    means = np.array([kid(np.random.default_rng(100 + s).standard_normal((n, d)),
                          np.random.default_rng(200 + s).standard_normal((n, d)), subsets=1, subset_size=n)[0]
                      for s in range(30)])
    assert (means < 0).any() and (means > 0).any()
    assert abs(means.mean()) < 3 * means.std(ddof=1) / np.sqrt(len(means))
    shifted = kid(np.random.default_rng(0).standard_normal((n, d)),
                  np.random.default_rng(1).standard_normal((n, d)) + 0.5, subsets=1, subset_size=n)[0]
    assert shifted > 20 * np.abs(means).max()


def test_kid_subsets_deterministic_and_positive_for_different_distributions():
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((1000, 32)), rng.standard_normal((1000, 32))
    z = rng.standard_normal((1000, 32)) * 1.3 + 0.2
    same, same_std = kid(x, y, subsets=10, subset_size=300)
    diff, diff_std = kid(x, z, subsets=10, subset_size=300)
    assert abs(same) < 3 * same_std and diff > 5 * diff_std > 0 and diff > 20 * abs(same)
    assert kid(x, z, subsets=10, subset_size=300) == (diff, diff_std)
    assert kid(x, z, subsets=10, subset_size=300, seed=1) != (diff, diff_std)
    assert kid(torch.from_numpy(x).float(), z, subsets=3, subset_size=100)[0] == pytest.approx(
        kid(x.astype(np.float32), z, subsets=3, subset_size=100)[0], rel=1e-12)


def test_kid_clamps_subset_size_and_raises_below_two():
    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((50, 8)), rng.standard_normal((300, 8))
    assert kid(x, y, subsets=4, subset_size=1000) == kid(x, y, subsets=4, subset_size=50)
    with pytest.raises(ConfigError, match="at least 2 samples"):
        kid(x[:1], y)
    with pytest.raises(ConfigError):
        kid(x, y, subsets=0)


# ---------------------------------------------------------------- precision / recall

def test_pr_identical_sets_and_far_away_fakes():
    x = np.random.default_rng(8).standard_normal((500, 32)).astype(np.float32)
    assert precision_recall(x, x.copy()) == (1.0, 1.0)
    assert precision_recall(x, x + 1000.0) == (0.0, 0.0)


def test_pr_fakes_from_one_of_two_modes():
    rng = np.random.default_rng(9)
    d, n = 4, 1000  # low D: with k=3 the k-NN balls then cover nearly all of a mode
    centre = np.zeros(d)
    centre[0] = 20.0
    real = np.concatenate([rng.standard_normal((n, d)) + centre, rng.standard_normal((n, d)) - centre])
    fake = rng.standard_normal((n, d)) + centre
    p, r = precision_recall(torch.from_numpy(real), fake, k=3)
    assert p > 0.9 and 0.4 < r <= 0.5
    assert precision_recall(real, fake, k=3, batch=333) == (p, r)  # blocking does not change the result


def test_pr_too_few_samples_raises():
    x = np.random.default_rng(10).standard_normal((20, 4))
    with pytest.raises(ConfigError, match="k=3 needs more than 3 fake samples"):
        precision_recall(x, x[:3], k=3)
    with pytest.raises(ConfigError, match="real"):
        precision_recall(x[:5], x, k=5)
    precision_recall(x[:4], x, k=3)
