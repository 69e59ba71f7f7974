"""Writing and reading the files of a run folder: whole or not at all, JSON lines, grids and GIFs.

These are the formats; which file is which, and where it lives, is RunFolder's (run/folder.py).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Optional

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from gan_bench.atomic import atomic_path, cannot_write_under, fix_for, fsynced
from gan_bench.data.base import to_uint8
from gan_bench.errors import GanBenchError

PAD = 2  # grid padding in pixels, needed again to cut class rows out of a grid
LABEL_PX = 11  # row labels' font size: legible beside a 28-pixel cell


def write_error(path: Path, e: OSError) -> GanBenchError:
    """A full disk or a lost permission while writing: one line, and what survives (the write went
    to a temporary file, so the previous version of the file and every checkpoint are intact)."""
    return GanBenchError(f"could not write {path} ({e.strerror or e}); the files written before it, checkpoints "
                         f"included, are intact: {fix_for(e)} and run the command again (a training run "
                         f"continues with `gan-bench run --resume RUN`)")


def run_file(path: Path, *, suffix: str = ""):
    """atomic_path for a file of a run folder (its error says that the checkpoints are intact)."""
    return atomic_path(path, suffix=suffix, error=lambda e: write_error(path, e))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file, fsync, rename: readers never see a half-written file."""
    with run_file(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        fsynced(f)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, obj: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def remove_stale_temp_files(folder: Path) -> list[Path]:
    """Delete the temporary files (.NAME.tmp-PID...) under folder whose writer is gone, as kill -9
    leaves them; a live writer's (another process reading or sampling the run) are kept."""
    removed = []
    for p in Path(folder).rglob(".*.tmp-*"):
        m = re.search(r"\.tmp-(\d+)", p.name)
        if m is None or _alive(int(m.group(1))):
            continue
        try:
            p.unlink()
            removed.append(p)
        except OSError:  # a read-only copy of a run: leave it
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """One record per line, written with a single write() so a crash leaves at most a torn last line."""
    append_jsonl_all(path, [record])


def append_jsonl_all(path: Path, records: list[dict[str, Any]]) -> None:
    """Records that belong together (one evaluation's metrics) as lines of one write(): a failure
    leaves none of them, or at most a torn last line, never some of them whole."""
    text = "".join(json.dumps(r) + "\n" for r in records)  # before the file is opened: a bad value writes nothing
    if not text:
        return
    try:
        with open(path, "a") as f:
            f.write(text)
    except OSError as e:  # a torn line is skipped by read_jsonl and dropped by truncate_jsonl on resume
        raise write_error(path, e) from None


def cannot_append(path: Path) -> Optional[str]:
    """Why records could not be appended to path, or None when they could; the file is opened for
    appending and closed unwritten (its contents and time stamp stay), or its folder probed."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():  # a link to nothing cannot be appended to: tried below
        return cannot_write_under(path.parent)
    try:
        with open(path, "a"):
            return None
    except OSError as e:
        return f"{path}: {e.strerror or e}"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """All complete records (JSON objects, one per line); a torn last line (a killed process) is
    skipped, never fatal. A file that cannot be read as text is a one-line error naming it."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():  # a link to nothing is not "no records yet"
        return []
    try:
        text = path.read_text()
    except PermissionError:
        raise GanBenchError(f"cannot read {path} (permission denied); check its permissions") from None
    except (OSError, UnicodeDecodeError) as e:
        raise GanBenchError(f"{path} is unreadable ({type(e).__name__}): not a JSON-lines record file; delete "
                            f"it, or the run folder it is in") from None
    out = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def truncate_jsonl(path: Path, *, max_step: int) -> None:
    """Keep only complete records up to max_step (what a resumed run will not log again)."""
    if Path(path).exists():
        keep = [r for r in read_jsonl(path) if r.get("step", 0) <= max_step]
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in keep))


def garbage_lines(path: Path) -> list[int]:
    """The numbers (from 1) of the lines of a record file that are not a JSON record, other than a torn
    last line (a process killed mid-write leaves one, without its newline) and blank lines."""
    path = Path(path)
    if not path.exists():
        return []
    read_jsonl(path)  # a file that cannot be read as text at all is its one-line error
    text = path.read_text()
    lines = text.splitlines()
    torn = len(lines) if lines and not text.endswith("\n") else None
    return [i for i, line in enumerate(lines, 1) if i != torn and line.strip() and not _is_record(line)]


def _is_record(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def hwc(images: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) in [-1, 1] -> (B, H, W) or (B, H, W, 3) uint8, as images are saved."""
    x = to_uint8(images).permute(0, 2, 3, 1).numpy()
    return x[..., 0] if x.shape[-1] == 1 else x


def grid(images: torch.Tensor, nrow: int, *, labels: Optional[list[str]] = None) -> np.ndarray:
    """A (rows x nrow) uint8 grid with PAD pixels of black between cells; labels: one name per row
    (a class per row), written in a margin at the left, label_margin(labels) pixels wide."""
    arr = hwc(images)
    n, h, w = arr.shape[:3]
    rows = -(-n // nrow)
    left = label_margin(labels)
    shape = (PAD + rows * (h + PAD), left + PAD + nrow * (w + PAD)) + arr.shape[3:]
    out = np.zeros(shape, np.uint8)
    for i, im in enumerate(arr):
        r, c = divmod(i, nrow)
        top, x0 = PAD + r * (h + PAD), left + PAD + c * (w + PAD)
        out[top: top + h, x0: x0 + w] = im
    if labels:
        canvas = Image.fromarray(out)
        draw = ImageDraw.Draw(canvas)
        white = 230 if out.ndim == 2 else (230, 230, 230)
        for r, name in enumerate(labels[:rows]):  # vertically centred on its row
            draw.text((PAD + 2, PAD + r * (h + PAD) + h / 2), str(name), fill=white, font=_font(), anchor="lm")
        out = np.asarray(canvas)
    return out


def label_margin(labels: Optional[list[str]]) -> int:
    """Width in pixels of the label column grid() draws for these row names (0 without labels)."""
    if not labels:
        return 0
    return int(max(_font().getlength(str(n)) for n in labels)) + 2 * PAD + 6


def _font() -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=LABEL_PX)


def save_png(path: Path, array: np.ndarray) -> None:
    with run_file(path, suffix=".png") as tmp:
        Image.fromarray(array).save(tmp)


def write_gif(path: Path, frames: Iterable[np.ndarray], *, scale: int = 1, ms: int = 400) -> None:
    import imageio.v2 as imageio  # only the runs that write GIFs pay for the import

    frames = [np.kron(f, np.ones((scale, scale) + (1,) * (f.ndim - 2), np.uint8)) if scale > 1 else f
              for f in frames]
    # grey frames go in as RGB: Pillow 13 writes a grey GIF whose later frames (local palettes) it then
    # cannot hand back as greyscale, so imageio.mimread fails on it ("No packer found from P to L")
    frames = [np.repeat(f[..., None], 3, axis=-1) if f.ndim == 2 else f for f in frames]
    if not frames:
        return
    # loop=0: repeat forever; the last frame is held longer so the final state is readable
    durations = [ms] * (len(frames) - 1) + [ms * 4] if len(frames) > 1 else ms
    with run_file(path, suffix=".gif") as tmp:
        imageio.mimsave(tmp, frames, duration=durations, loop=0)


def class_row(frame: np.ndarray, k: int, cell: int, *, left: int = 0) -> np.ndarray:
    """Row k of a grid made by grid() (one row per class), with its padding, without the first `left`
    columns (the label margin)."""
    top = k * (cell + PAD)
    return frame[top: top + cell + 2 * PAD, left:]


def safe_name(name: str) -> str:
    """A class or run name as a file name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "class"


def loss_plot(path: Path, records: list[dict[str, Any]], *, title: str) -> None:
    """The run's losses and D outputs against step, from its metrics.jsonl records."""
    import matplotlib  # only the runs that plot pay for the import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not records:
        return
    steps = [r["step"] for r in records]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    a.plot(steps, [r["loss_d"] for r in records], label="D loss", lw=1)
    a.plot(steps, [r["loss_g"] for r in records], label="G loss", lw=1)
    a.set_xlabel("step"), a.set_title("losses"), a.legend()
    b.plot(steps, [r["d_x"] for r in records], label="D(x)", lw=1)
    b.plot(steps, [r["d_g_z"] for r in records], label="D(G(z))", lw=1)
    b.set_xlabel("step"), b.set_ylim(0, 1), b.set_title("discriminator outputs"), b.legend()
    fig.suptitle(title)
    fig.tight_layout()
    try:
        with run_file(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
