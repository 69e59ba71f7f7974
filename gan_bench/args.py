"""argparse types the sub-commands share: a bad value is argparse's one-line error (exit 2), raised
before any work starts and before anything is written."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

SEED_MAX = 2**32 - 1  # numpy's limit, and train.seed's (config.py)
# generated images and their features are held at once: about 3 GiB at 28x28; the cap is memory's, not
# rigour's (eval --samples and eval.samples)
MAX_SAMPLES = 1_000_000
DEVICE = re.compile(r"auto|cpu|cuda(:\d+)?")


def path(text: str) -> Path:
    """A file or folder argument: an empty one would silently mean the current folder."""
    return Path(path_text(text))


def path_text(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give a file or folder name")
    if "\0" in text:
        raise argparse.ArgumentTypeError("a path with a NUL character; give a file or folder name")
    return text


def device(text: str) -> str:
    """auto, cpu, cuda or cuda:N: the devices gan-bench trains and evaluates on."""
    if not DEVICE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use auto, cpu, cuda or cuda:N")
    return text


def _whole(text: str, noun: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None


def seed(text: str) -> int:
    """A seed numpy and torch both take: 0 .. 2**32 - 1."""
    value = _whole(text, "an integer seed")
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"{value} is out of range; a seed is 0 .. {SEED_MAX}")
    return value


def samples(text: str) -> int:
    """A number of generated images to evaluate: 1 .. MAX_SAMPLES."""
    value = _whole(text, "a whole number of images")
    if not 1 <= value <= MAX_SAMPLES:
        raise argparse.ArgumentTypeError(f"must be 1 .. {MAX_SAMPLES:,}, got {value:,} (10,000 is the default; "
                                         f"50,000 is the FID literature's)")
    return value


def positive(text: str) -> int:
    """A count of at least 1 (epochs, say)."""
    value = _whole(text, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
