"""Writing a file so that no reader, crash or full disk ever sees half of it."""
from __future__ import annotations

import errno
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
        _discard(tmp)
        raise (error(e) if error else GanBenchError(
            f"could not write {path} ({e.strerror or e}); {fix_for(e)}, or choose another folder, "
            f"then run the command again")) from None
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: Path) -> None:
    """Remove a temporary file if it is there; where nothing could be written (a read-only file system
    answers EROFS even for a file that is not there) there is nothing to remove."""
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass


def fix_for(e: OSError) -> str:
    """What to do about a failed write, by its cause: a read-only file or folder is not a full disk."""
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "make the file and its folder writable (or work on a copy in a writable place)"
    return "free disk space"


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
        while not there.exists() and not there.is_symlink() and there != there.parent:
            there = there.parent
        if there.is_symlink() and not there.exists():  # a link to nothing, or to itself: nothing can go under it
            return f"{there} is a symbolic link to nothing reachable"
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
    block writes (full disk, lost permission). If the command fails, what it made is removed again:
    the folders this call made, and in a folder that was there the files and folders the block added,
    so a failed command leaves no half report (files that were there stay; write them atomically)."""
    path = Path(path)
    made = [p for p in (path, *path.parents) if not p.exists()]  # the folders this call creates
    before = _contents(path) if not made else set()
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK):
            raise PermissionError(13, "Permission denied")
        yield path
    except OSError as e:
        _remove_made(made, path, before)
        fix = "choose a folder you can write to" if e.errno != errno.ENOSPC else "free disk space or choose another folder"
        raise GanBenchError(f"cannot write to {flag} {str(path)!r} ({e.strerror or e}); {fix}") from None
    except BaseException:
        _remove_made(made, path, before)
        raise


def _contents(folder: Path) -> set[Path]:
    try:
        return set(folder.rglob("*")) if folder.is_dir() else set()
    except OSError:  # a sub-folder that cannot be read: what can be removed later is what could be listed
        return set()


def _remove_made(made: list[Path], path: Path, before: set[Path]) -> None:
    """Remove the outermost folder output_folder made, with what the failed command put in it; in a
    folder that was there, what the command added to it."""
    if made:
        shutil.rmtree(made[-1], ignore_errors=True)
        return
    for p in sorted(_contents(path) - before, key=lambda p: len(p.parts), reverse=True):
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
        except OSError:
            pass


def write_text(path: Path, text: str) -> None:
    """A text file written whole or not at all (the previous version survives a failure)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        fsynced(f)
