"""Tests of gan_bench.data.shapes: format, determinism, look, and that the classes are learnable."""
from __future__ import annotations

import numpy as np
import pytest

from gan_bench.data.shapes import CLASSES, make_shapes


@pytest.fixture(scope="module")
def small() -> tuple[np.ndarray, np.ndarray, list[str]]:
    return make_shapes(per_class=20, seed=0)


def test_format(small: tuple[np.ndarray, np.ndarray, list[str]]) -> None:
    x, y, classes = small
    assert classes == CLASSES and len(classes) >= 10 and len(set(classes)) == len(classes)
    assert x.shape == (20 * len(classes), 28, 28) and x.dtype == np.uint8
    assert y.shape == (len(x),) and y.dtype == np.int64
    assert y.min() >= 0 and y.max() < len(classes)
    assert np.array_equal(np.bincount(y, minlength=len(classes)), np.full(len(classes), 20))
    # Shuffled: the first per_class labels are not all one class.
    assert len(set(y[:20].tolist())) > 1


def test_other_size() -> None:
    x, y, _ = make_shapes(per_class=3, seed=0, size=32)
    assert x.shape == (3 * len(CLASSES), 32, 32)


def test_deterministic() -> None:
    a = make_shapes(per_class=5, seed=7)
    b = make_shapes(per_class=5, seed=7)
    c = make_shapes(per_class=5, seed=8)
    assert a[0].tobytes() == b[0].tobytes() and np.array_equal(a[1], b[1])
    assert a[0].tobytes() != c[0].tobytes()


def test_ink_on_black(small: tuple[np.ndarray, np.ndarray, list[str]]) -> None:
    x = small[0].reshape(len(small[0]), -1)
    assert (x.max(1) > 200).all(), "every image has a stroke"
    assert (x.mean(1) < 80).all(), "mostly background"
    # The drawing is kept on the canvas: at most faint anti-aliasing on the outermost pixels.
    img = small[0]
    assert max(img[:, 0].max(), img[:, -1].max(), img[:, :, 0].max(), img[:, :, -1].max()) < 128


def _softmax_regression(a: np.ndarray, y: np.ndarray, b: np.ndarray, k: int, steps: int = 300) -> np.ndarray:
    """Plain full-batch gradient descent on standardised pixels; returns predictions for b."""
    mu, sd = a.mean(0), a.std(0) + np.float32(1e-3)
    a, b = (a - mu) / sd, (b - mu) / sd
    w, bias = np.zeros((a.shape[1], k), np.float32), np.zeros(k, np.float32)
    onehot = np.eye(k, dtype=np.float32)[y]
    for _ in range(steps):
        z = a @ w + bias
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = (p - onehot) / len(a)
        w -= np.float32(0.5) * (a.T @ g + np.float32(1e-3) * w)
        bias -= np.float32(0.5) * g.sum(0)
    return (b @ w + bias).argmax(1)


def test_classes_learnable() -> None:
    # A linear classifier trained on one seed must tell the classes apart on another seed:
    # this is the check that no two classes collapse into each other under the jitter.
    xa, ya, classes = make_shapes(per_class=300, seed=1)
    xb, yb, _ = make_shapes(per_class=300, seed=2)
    flat = lambda x: x.reshape(len(x), -1).astype(np.float32) / np.float32(255)  # noqa: E731
    pred = _softmax_regression(flat(xa), ya, flat(xb), len(classes))
    acc = float((pred == yb).mean())
    per_class = [float((pred[yb == k] == k).mean()) for k in range(len(classes))]
    assert acc > 0.90, f"accuracy {acc:.3f}"
    assert min(per_class) > 0.75, dict(zip(classes, per_class))
