"""Writing a file so that no reader, crash or full disk ever sees half of it."""
from __future__ import annotations

import os
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
