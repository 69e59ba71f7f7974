"""Procedural doodles: a small, offline, deterministic stand-in for Quick, Draw! bitmaps.

Every class is a few polylines in unit coordinates ([-1, 1], y down). Each sample gets its own
jitter (scale, small rotation, position, stroke width, vertex wobble) and is drawn with PIL at
4x the target size, then downsampled, which gives anti-aliased white strokes on black like the
Quick, Draw! numpy bitmaps. The classes are chosen so that no jitter turns one into another:
no square/diamond pair (rotation), no plus/cross confusion (rotation is at most +-15 degrees).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

Stroke = np.ndarray  # (K, 2) float points, drawn as one connected polyline
_SS = 4  # supersampling factor: strokes are drawn at _SS x size, then downsampled


def _circle(rng: np.random.Generator) -> list[Stroke]:
    # Slightly elliptical, and the end overshoots the start a bit, as when drawn by hand.
    t = np.linspace(0.0, 2 * math.pi + rng.uniform(0.0, 0.4), 40) + rng.uniform(0, 2 * math.pi)
    ry = rng.uniform(0.85, 1.0)
    return [np.stack([np.cos(t), ry * np.sin(t)], axis=1)]


def _square(rng: np.random.Generator) -> list[Stroke]:
    h = rng.uniform(0.8, 1.0)  # mild aspect jitter; stays clearly a box
    return [np.array([[-1, -h], [1, -h], [1, h], [-1, h], [-1, -h]], float)]


def _triangle(rng: np.random.Generator) -> list[Stroke]:
    return [np.array([[0, -1], [1, 0.8], [-1, 0.8], [0, -1]], float)]


def _plus(rng: np.random.Generator) -> list[Stroke]:
    return [np.array([[0, -1], [0, 1]], float), np.array([[-1, 0], [1, 0]], float)]


def _cross(rng: np.random.Generator) -> list[Stroke]:
    return [np.array([[-0.9, -0.9], [0.9, 0.9]], float), np.array([[0.9, -0.9], [-0.9, 0.9]], float)]


def _star(rng: np.random.Generator) -> list[Stroke]:
    # Five-pointed star drawn in one stroke (pentagram order), the classic doodle.
    a = -math.pi / 2 + np.arange(6) * 4 * math.pi / 5
    return [np.stack([np.cos(a), np.sin(a) + 0.1], axis=1)]


def _heart(rng: np.random.Generator) -> list[Stroke]:
    t = np.linspace(0.0, 2 * math.pi, 48)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    return [np.stack([x / 16.0, (y + 2.5) / 15.0], axis=1)]


def _arrow(rng: np.random.Generator) -> list[Stroke]:
    # Points right or left, so it is a direction-free "arrow" class but never a plain line.
    s = 1.0 if rng.random() < 0.5 else -1.0
    head = np.array([[0.35, -0.6], [1, 0], [0.35, 0.6]], float)
    return [np.array([[-1, 0], [1, 0]], float), head * [s, 1]]


def _zigzag(rng: np.random.Generator) -> list[Stroke]:
    n = int(rng.integers(4, 6))  # 4 or 5 segments
    x = np.linspace(-1, 1, n + 1)
    y = np.where(np.arange(n + 1) % 2 == 0, 0.45, -0.45)
    return [np.stack([x, y], axis=1)]


def _house(rng: np.random.Generator) -> list[Stroke]:
    body = np.array([[-0.75, -0.15], [-0.75, 1], [0.75, 1], [0.75, -0.15]], float)
    roof = np.array([[-0.95, -0.05], [0, -1], [0.95, -0.05]], float)
    return [body, roof, np.array([[-0.75, -0.15], [0.75, -0.15]], float)]


_MAKERS: dict[str, Callable[[np.random.Generator], list[Stroke]]] = {
    "circle": _circle, "square": _square, "triangle": _triangle, "plus": _plus, "cross": _cross,
    "star": _star, "heart": _heart, "arrow": _arrow, "zigzag": _zigzag, "house": _house,
}
CLASSES: list[str] = list(_MAKERS)


def _render(strokes: list[Stroke], rng: np.random.Generator, size: int) -> np.ndarray:
    big = size * _SS
    frac = rng.uniform(0.55, 0.85)  # drawing extent as a fraction of the canvas
    scale = frac * big / 2  # half-extent in pixels of the [-1, 1] box
    # 2-3 px strokes, thinner on the largest drawings so dense ones (house, star) stay < ~1/3 ink.
    width = rng.uniform(2.0, 3.0 - 0.8 * (frac - 0.55) / 0.3) * _SS
    rot = math.radians(rng.uniform(-15.0, 15.0))
    c, s = math.cos(rot), math.sin(rot)
    m = np.array([[c, -s], [s, c]]) * scale
    # Wobble each vertex a little (hand-drawn look), small relative to the shape.
    pts = [(p + rng.normal(0.0, 0.035, p.shape)) @ m.T for p in strokes]
    # Centre the drawing's bounding box, then shift by a few px but keep the ink on the canvas.
    # A large, rotated drawing could overrun the edge: shrink it to fit, as Quick, Draw! does.
    margin = width / 2 + _SS
    allp = np.concatenate(pts)
    fit = min(1.0, (big - 2 * margin) / float((allp.max(0) - allp.min(0)).max()))
    pts, allp = [p * fit for p in pts], allp * fit
    lo, hi = allp.min(0), allp.max(0)
    room = np.maximum(0.0, (big - (hi - lo)) / 2 - margin)
    shift = np.clip(rng.uniform(-3.0, 3.0, 2) * _SS, -room, room)
    off = big / 2 - (lo + hi) / 2 + shift
    img = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(img)
    r = width / 2
    for p in pts:
        q = p + off
        draw.line(q.ravel().tolist(), fill=255, width=int(round(width)))
        # Round caps and joins (PIL's are square/notched). A dot per vertex is much faster than
        # joint="curve"; dense curves (circle, heart) turn so little that only their ends need one.
        for x, y in (q if len(q) < 10 else q[[0, -1]]):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    return np.asarray(img.resize((size, size), Image.Resampling.BOX), dtype=np.uint8)


def make_shapes(*, per_class: int, seed: int, size: int = 28) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Returns x (N, size, size) uint8, y (N,) int64, class names; N = per_class * len(CLASSES).

    Byte-identical for the same (per_class, seed, size); samples are shuffled so classes interleave.
    """
    if per_class < 0 or size < 8:
        raise ValueError(f"need per_class >= 0 and size >= 8, got {per_class}, {size}")
    rng = np.random.default_rng(seed)
    n = per_class * len(CLASSES)
    y = np.repeat(np.arange(len(CLASSES), dtype=np.int64), per_class)
    x = np.empty((n, size, size), dtype=np.uint8)
    for i, label in enumerate(y):
        x[i] = _render(_MAKERS[CLASSES[label]](rng), rng, size)
    order = rng.permutation(n)
    return x[order], y[order], list(CLASSES)


# ---- registry entry ---------------------------------------------------------------------------
from dataclasses import dataclass  # noqa: E402  (kept beside the loader it serves)

from gan_bench.config import DataConfig, option  # noqa: E402
from gan_bench.data.base import DATASETS, Splits, from_numpy, split  # noqa: E402


@dataclass
class ShapesOptions:
    per_class: int = option(1000, lo=1, help="images generated per class")


@DATASETS.register("shapes", resolutions=(28,), channels=1, labelled=True, options=ShapesOptions,
                   description=f"procedural doodles, {len(CLASSES)} classes, generated offline")
def load_shapes(cfg: DataConfig) -> Splits:
    """data.per_class images of every class, deterministic by data.split_seed, then split."""
    x, y, classes = make_shapes(per_class=cfg.per_class, seed=cfg.split_seed)
    train, test = split(from_numpy(x, y, classes, source="shapes"), test_fraction=cfg.test_fraction,
                        seed=cfg.split_seed)
    return Splits("shapes", train, test)
