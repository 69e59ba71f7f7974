"""Sample-set statistics for evaluation: Frechet distance, KID, precision/recall, density/coverage, FD-infinity.

Pure functions on feature matrices of shape (N, D), given as numpy arrays or torch tensors.
Means, covariances and kernel sums are accumulated in float64; only the k-NN distances of
precision/recall/density/coverage use float32 (see prdc).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import scipy.stats
import torch

from gan_bench.errors import ConfigError

Features = Union[np.ndarray, torch.Tensor]


def _as_f64(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu", torch.float64).numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ConfigError(f"{name} must be a 2-D feature matrix (N, D), got shape {a.shape}")
    return a


def _same_dim(a_shape: tuple, b_shape: tuple) -> None:
    if a_shape[1] != b_shape[1]:
        raise ConfigError(f"feature dimensions differ: {a_shape[1]} vs {b_shape[1]}; "
                          "both sets must come from the same feature extractor")


def feature_stats(feats: Features) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased (divide by N-1) covariance (D, D) of `feats`, both float64."""
    x = _as_f64(feats, "feats")
    if x.shape[0] < 2:
        raise ConfigError(f"a covariance needs at least 2 samples, got {x.shape[0]}; raise --samples")
    mu = x.mean(axis=0)
    xc = x - mu  # centre first: the textbook E[xx^T] - mu mu^T form cancels catastrophically
    return mu, (xc.T @ xc) / (x.shape[0] - 1)


def frechet_distance_from_stats(mu1: np.ndarray, sigma1: np.ndarray,
                                mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)), computed in float64.

    Tr sqrt(S1 S2) is taken as the sum of the square roots of the eigenvalues of
    M = sqrt(S1) S2 sqrt(S1): AB and BA have the same non-zero eigenvalues, so with
    A = sqrt(S1), B = sqrt(S1) S2 the product S1 S2 has the spectrum of M, which is symmetric
    PSD. Two `eigh` calls are thus exact up to rounding, real-valued and much faster than
    scipy.linalg.sqrtm (a Schur decomposition of a non-symmetric matrix that returns complex
    noise and can fail on near-singular covariances). Rounding can make tiny eigenvalues
    slightly negative; they are clipped to 0.
    """
    mu1, mu2 = np.asarray(mu1, np.float64).ravel(), np.asarray(mu2, np.float64).ravel()
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    d = mu1.shape[0]
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ConfigError(f"inconsistent stats shapes: mu {mu1.shape}/{mu2.shape}, "
                          f"sigma {s1.shape}/{s2.shape}")
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2  # eigh reads one triangle only: force symmetry
    w, v = np.linalg.eigh(s1)
    sqrt_s1 = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    m = sqrt_s1 @ s2 @ sqrt_s1
    ev = np.linalg.eigvalsh((m + m.T) / 2)
    tr_covmean = np.sqrt(np.clip(ev, 0.0, None)).sum()
    diff = mu1 - mu2
    fd = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    # The exact value is a squared Wasserstein-2 distance (>= 0); a negative one is rounding.
    return max(fd, 0.0)


def frechet_distance(feats1: Features, feats2: Features) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (FID on Inception features).

    Raises ConfigError if a set has fewer samples than the feature dimension D: with N < D the
    covariance is rank-deficient and the distance is dominated by estimation noise.
    """
    x1, x2 = _as_f64(feats1, "feats1"), _as_f64(feats2, "feats2")
    _same_dim(x1.shape, x2.shape)
    d = x1.shape[1]
    for x in (x1, x2):
        if x.shape[0] < max(d, 2):
            raise ConfigError(f"fd needs at least {d} samples per set for a {d}-dimensional "
                              f"covariance, got {x.shape[0]}; raise --samples")
    return frechet_distance_from_stats(*feature_stats(x1), *feature_stats(x2))


def _poly3(g: np.ndarray, d: int) -> np.ndarray:
    """Kernel (g / d + 1)^3 from a Gram matrix g, which is overwritten."""
    g /= d
    g += 1.0
    k = g * g
    k *= g  # not g ** 3: numpy has no fast path for that power and falls back to pow()
    return k


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel k(a, b) = (a.b / D + 1)^3."""
    m, d = x.shape
    # x @ x.T on one buffer lets numpy use a symmetric rank-k update (half the flops).
    kxx, kyy, kxy = _poly3(x @ x.T, d), _poly3(y @ y.T, d), _poly3(x @ y.T, d)
    # Unbiased: drop the diagonal (k(x_i, x_i)) of the within-set terms.
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.sum() / (m * m))


def kid(feats1: Features, feats2: Features, *, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018), as in torch-fidelity.

    The unbiased MMD^2 estimate with kernel (x.y / D + 1)^3 is averaged over `subsets` pairs
    of random subsets of `subset_size` rows, each drawn without replacement with
    np.random.default_rng(seed). Returns (mean, std) over the subsets (std with ddof=0, as
    torch-fidelity). The mean is unbiased, so it can be slightly negative for equal
    distributions.

    If a set has fewer than `subset_size` rows, subset_size is clamped to min(N1, N2): the
    estimate stays unbiased, only noisier. ConfigError if that leaves fewer than 2 rows.
    """
    x1, x2 = _as_f64(feats1, "feats1"), _as_f64(feats2, "feats2")
    _same_dim(x1.shape, x2.shape)
    if subsets < 1 or subset_size < 2:
        raise ConfigError(f"kid needs subsets >= 1 and subset_size >= 2, got {subsets}, {subset_size}")
    n1, n2 = x1.shape[0], x2.shape[0]
    m = min(subset_size, n1, n2)
    if m < 2:
        raise ConfigError(f"kid needs at least 2 samples per set, got {n1} and {n2}; raise --samples")
    rng = np.random.default_rng(seed)
    mmds = np.empty(subsets)
    for i in range(subsets):
        a = x1[rng.choice(n1, m, replace=False)]
        b = x2[rng.choice(n2, m, replace=False)]
        mmds[i] = _mmd2_unbiased(a, b)
    return float(mmds.mean()), float(mmds.std())


def _as_f32_torch(x, centre: np.ndarray, device: torch.device) -> torch.Tensor:
    # Centre (in float64) before casting: cdist's matmul path computes |a|^2 + |b|^2 - 2a.b,
    # which loses float32 precision when the features share a large common offset.
    return torch.from_numpy((_as_f64(x, "features") - centre).astype(np.float32)).to(device)


def _knn_radii(x: torch.Tensor, k: int, batch: int) -> torch.Tensor:
    """Distance of each row of x to its k-th nearest other row of x."""
    r = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for i in range(0, x.shape[0], batch):
        d = torch.cdist(x[i:i + batch], x)
        # k + 1 smallest: the row itself (distance ~0) is always the first of them.
        r[i:i + batch] = d.topk(k + 1, dim=1, largest=False).values[:, -1]
    return r


def prdc(real: Features, fake: Features, *, k: int = 3, batch: int = 4096) -> dict[str, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019), density and coverage (Naeem et al.
    2020), all from one pass of k-NN distances.

    Each real sample's ball has radius = distance to its k-th nearest other real sample (its
    k-NN ball); each fake's likewise among the fakes.
      precision  share of fakes inside at least one real ball
      recall     share of reals inside at least one fake ball
      density    real balls holding a fake, counted with multiplicity, / (k * fakes): about 1 for
                 identical distributions, and a fake in a dense real region cannot inflate it the
                 way one outlier real sample's huge ball inflates precision
      coverage   share of real balls holding at least one fake (about 1 - 2^-k for identical sets)
    A point on a ball's surface counts as inside (<=; the prdc package uses <: the two agree on
    features without exact ties). Distances are float32 (torch.cdist on centred features; only
    compared against radii, so 1e-7 relative error is harmless and halves time and memory), computed
    in row blocks of `batch` so 10,000 x 10,000 needs ~0.2 GB at a time. Runs on the device of `real`
    when it is a torch tensor. ConfigError if a set has <= k samples.
    """
    if k < 1 or batch < 1:
        raise ConfigError(f"precision/recall needs k >= 1 and batch >= 1, got {k}, {batch}")
    device = real.device if isinstance(real, torch.Tensor) else torch.device("cpu")
    r64 = _as_f64(real, "real")
    centre = r64.mean(axis=0)
    with torch.no_grad():
        xr, xf = _as_f32_torch(r64, centre, device), _as_f32_torch(fake, centre, device)
        _same_dim(tuple(xr.shape), tuple(xf.shape))
        for name, x in (("real", xr), ("fake", xf)):
            if x.shape[0] <= k:
                raise ConfigError(f"precision/recall with k={k} needs more than {k} {name} samples, "
                                  f"got {x.shape[0]}; raise --samples")
        r_real, r_fake = _knn_radii(xr, k, batch), _knn_radii(xf, k, batch)
        balls_per_fake = torch.zeros(xf.shape[0], dtype=torch.int64, device=device)
        real_in_fake = torch.empty(xr.shape[0], dtype=torch.bool, device=device)
        covered = torch.empty(xr.shape[0], dtype=torch.bool, device=device)
        # One pass over the real-fake distances serves all four numbers.
        for i in range(0, xr.shape[0], batch):
            d = torch.cdist(xr[i:i + batch], xf)                  # (real block, fakes)
            inside = d <= r_real[i:i + batch, None]               # fake j in real ball i
            balls_per_fake += inside.sum(dim=0)
            covered[i:i + batch] = inside.any(dim=1)
            real_in_fake[i:i + batch] = (d <= r_fake[None, :]).any(dim=1)
    share = lambda b: b.double().mean().item()  # noqa: E731  (float32 would print 0.448000013)
    return {"precision": share(balls_per_fake > 0), "recall": share(real_in_fake),
            "density": balls_per_fake.double().sum().item() / (k * xf.shape[0]), "coverage": share(covered)}


def precision_recall(real: Features, fake: Features, *, k: int = 3, batch: int = 4096
                     ) -> tuple[float, float]:
    """(precision, recall) of prdc()."""
    out = prdc(real, fake, k=k, batch=batch)
    return out["precision"], out["recall"]


# ---- FD-infinity: the Frechet distance extrapolated to infinitely many samples ----------------------

FD_INF_POINTS = 15    # sample sizes of the fit (Chong & Forsyth use 15)
FD_INF_SPAN = 10      # the smallest size is the largest / 10 (their 5,000 .. 50,000) ...
FD_INF_RANGE = 2      # ... but at least D, so the largest must be at least 2 D


@dataclass(frozen=True)
class Extrapolation:
    """A least-squares line of a statistic against 1/N, read at 1/N = 0."""

    value: float                # the intercept: the statistic at infinitely many samples
    stderr: Optional[float]     # the intercept's standard error from the fit's residuals (None: 2 points)
    slope: float                # the bias per 1/N
    sizes: tuple[int, ...]      # N of each point
    values: tuple[float, ...]   # the statistic at each N

    def record(self, name: str) -> dict:
        """{name: value, name_err: stderr, name_slope, name_sizes: [lowest, highest, points]}."""
        return {name: self.value, f"{name}_err": self.stderr, f"{name}_slope": self.slope,
                f"{name}_sizes": [self.sizes[0], self.sizes[-1], len(self.sizes)]}


def fd_infinity_sizes(n: int, dim: int, *, points: int = FD_INF_POINTS, what: str = "fd_inf") -> list[int]:
    """The sample sizes of the fit: `points` evenly spaced from max(dim, n // 10) to n (fewer when
    they round to the same integer). ConfigError when n < 2 dim: a covariance needs dim samples, and
    a line through 1/N needs N to vary at least twofold."""
    if n < FD_INF_RANGE * dim:
        raise ConfigError(f"{what} fits FD against 1/N for N from {dim} (the feature dimension) to at least "
                          f"{FD_INF_RANGE * dim}, so it needs at least {FD_INF_RANGE * dim} images per set, got {n}; "
                          f"raise --samples")
    lo = max(dim, n // FD_INF_SPAN)
    return sorted({int(round(v)) for v in np.linspace(lo, n, points)})


def fd_infinity(feats1: Features, feats2: Features, *, points: int = FD_INF_POINTS, seed: int = 0,
                what: str = "fd_inf", min_size: Optional[int] = None) -> Extrapolation:
    """FD-infinity (Chong & Forsyth 2020): the Frechet distance is biased upwards by about c / N, so
    FD_N is measured at several N (fd_infinity_sizes of the smaller set) and a line fitted against
    1/N (scipy.stats.linregress) is read at 1/N = 0, with the intercept's standard error.

    Unlike the reference code, which draws only generated subsets against fixed statistics of 50,000
    real images, both sets are subsampled to N (without replacement, np.random.default_rng(seed)):
    here the real reference set is finite too, and its covariance is as biased as the generated one.
    The two biases add, each about linear in 1/N, so the one intercept removes both. min_size: the
    smallest N (default the feature dimension D, the fewest samples of a full-rank covariance).
    """
    x1, x2 = _as_f64(feats1, "feats1"), _as_f64(feats2, "feats2")
    _same_dim(x1.shape, x2.shape)
    sizes = fd_infinity_sizes(min(len(x1), len(x2)), min_size or x1.shape[1], points=points, what=what)
    rng = np.random.default_rng(seed)
    fds = []
    for n in sizes:
        a, b = x1[rng.choice(len(x1), n, replace=False)], x2[rng.choice(len(x2), n, replace=False)]
        fds.append(frechet_distance_from_stats(*feature_stats(a), *feature_stats(b)))
    fit = scipy.stats.linregress(1.0 / np.asarray(sizes, np.float64), np.asarray(fds))
    stderr = float(fit.intercept_stderr) if len(sizes) > 2 else None  # two points: no residuals
    return Extrapolation(float(fit.intercept), stderr, float(fit.slope), tuple(sizes), tuple(fds))
