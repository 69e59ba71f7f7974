"""Writing a file so that no reader, crash or full disk ever sees half of it."""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Optional

from gan_bench.errors import GanBenchError


@contextmanager
def atomic_path(path: Path, *, suffix: str = "",
                error: Optional[Callable[[OSError], Exception]] = None) -> Iterator[Path]:
    """A temporary name beside path, .NAME.tmp-PID<suffix>, for the block to write; renamed over path
    in one step when the block ends, deleted if it fails (path keeps its previous version).

    suffix keeps the extension a library picks the format from (Pillow, matplotlib, numpy's .npz).
    An OSError (full disk, lost permission) comes out as error(e), a one-line GanBenchError by default.
    The PID in the name lets run.files.remove_stale_temp_files tell a dead writer's leftovers apart.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise (error(e) if error else GanBenchError(
            f"could not write {path} ({e.strerror or e}); free disk space or choose a writable folder, "
            f"then run the command again")) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def fsynced(f) -> None:
    """Flush a file object to the disk before its rename, so a power cut cannot leave an empty file."""
    f.flush()
    os.fsync(f.fileno())


def cannot_write_under(folder: Path) -> Optional[str]:
    """Why files could not be made in folder (made first if missing), or None when they could; checked
    without making anything: the nearest existing folder above gets a file made and removed at once,
    since os.access says yes to root even where nothing can be made (/proc, a read-only mount)."""
    there = Path(folder)
    try:  # exists() itself fails where a folder on the way cannot be entered
        while not there.exists() and there != there.parent:
            there = there.parent
        if not there.is_dir():
            return f"{there} is a file"
        with tempfile.TemporaryFile(dir=there):
            return None
    except OSError as e:
        return f"{there}: {e.strerror or e}"


@contextmanager
def output_folder(path: Path, *, flag: str = "--out") -> Iterator[Path]:
    """A folder a command writes its outputs into (tables, a gallery), made if missing.

    A folder that cannot be made or written is one line naming `flag`; so is an OSError while the
    block writes (full disk, lost permission). If the command fails, the folders this call made are
    removed again, so a failed command leaves nothing behind (files that were there stay)."""
    path = Path(path)
    made = [p for p in (path, *path.parents) if not p.exists()]  # the folders this call creates
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK):
            raise PermissionError(13, "Permission denied")
        yield path
    except OSError as e:
        _remove_made(made)
        raise GanBenchError(f"cannot write to {flag} {str(path)!r} ({e.strerror or e}); choose a folder "
                            f"you can write to") from None
    except BaseException:
        _remove_made(made)
        raise


def _remove_made(made: list[Path]) -> None:
    """Remove the outermost folder output_folder made, with what the failed command put in it."""
    if made:
        shutil.rmtree(made[-1], ignore_errors=True)


def write_text(path: Path, text: str) -> None:
    """A text file written whole or not at all (the previous version survives a failure)."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)
        fsynced(f)
