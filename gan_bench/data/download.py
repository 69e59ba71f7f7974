"""Download a file robustly: retries with back-off, integrity checks, atomic replace.

Only the standard library (urllib) and tqdm, so downloading data never needs extra packages.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Optional

from tqdm import tqdm

from gan_bench.errors import DataError

_CHUNK = 1 << 20
UNREACHABLE = "cannot reach the host"  # how a DataError of a download says the network is not there
# errno values that mean "this machine cannot reach the host at all", as opposed to a flaky server.
_UNREACHABLE_ERRNOS = {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}


class _Retry(Exception):
    """A failure worth another try (server hiccup, stall, truncation, bad checksum)."""

    def __init__(self, reason: str, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.unreachable = unreachable


def _one_line(text: object) -> str:
    # The CLI prints DataError as a single line, so squash any newlines from exception texts.
    return " ".join(str(text).split())


def _is_unreachable(err: BaseException) -> bool:
    if isinstance(err, socket.gaierror):  # DNS failure: typically no network at all
        return True
    return isinstance(err, OSError) and err.errno in _UNREACHABLE_ERRNOS


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks so large files do not fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch_once(url: str, dest: Path, tmp: Path, sha256: Optional[str], size: Optional[int],
                timeout: float, progress: bool) -> None:
    """One attempt: stream url into tmp and verify it. Raises _Retry or DataError."""
    try:
        resp = urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        if err.code == 429 or err.code >= 500:
            raise _Retry(f"HTTP {err.code} {_one_line(err.reason)}") from err
        hint = f"check the URL, or place the file at {dest} by hand (see datasets/README.md)"
        if err.code == 404:
            raise DataError(f"{url} was not found (HTTP 404); {hint}") from err
        raise DataError(f"{url} was refused with HTTP {err.code} {_one_line(err.reason)}; {hint}") from err
    except urllib.error.URLError as err:
        raise _Retry(_one_line(err.reason), unreachable=_is_unreachable(err.reason)) from err
    except (OSError, http.client.HTTPException) as err:  # e.g. a timeout while waiting for headers
        raise _Retry(f"{type(err).__name__}: {_one_line(err)}", unreachable=_is_unreachable(err)) from err

    digest = hashlib.sha256()
    received = 0
    with resp:
        header = resp.headers.get("Content-Length")
        expected = int(header) if header and header.isdigit() else None
        try:
            with open(tmp, "wb") as f, tqdm(total=expected, unit="B", unit_scale=True,
                                            desc=dest.name, disable=not progress) as bar:
                # http.client returns b"" (not an error) when the server closes early,
                # so truncation is detected below by counting bytes.
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    f.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                f.flush()
                os.fsync(f.fileno())  # the data must be on disk before the rename makes it visible
        except (OSError, http.client.HTTPException) as err:  # stall (read timeout), reset, ...
            raise _Retry(f"{type(err).__name__} after {received} bytes: {_one_line(err)}") from err

    if expected is not None and received != expected:
        raise _Retry(f"truncated: got {received} of {expected} bytes")
    if size is not None and received != size:
        raise _Retry(f"size mismatch: got {received} bytes, expected {size}")
    if sha256 is not None and digest.hexdigest() != sha256.lower():
        raise _Retry(f"sha256 mismatch: got {digest.hexdigest()}, expected {sha256.lower()}")


def download(url: str, dest: Path, *, sha256: Optional[str] = None, size: Optional[int] = None,
             retries: int = 4, timeout: float = 30.0, backoff: float = 1.0,
             progress: bool = True) -> Path:
    """Download url to dest and return dest.

    Makes 1 + `retries` tries, sleeping backoff * 2**attempt seconds between them, on connection
    errors, timeouts (`timeout` seconds without data), HTTP 5xx/429, truncation and size/sha256
    mismatches. Other HTTP 4xx fail at once. The body goes to a temporary file next to dest that
    replaces dest only when complete and verified, so dest is never left half-written or touched
    on failure. Raises DataError (one line) when the file cannot be obtained.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Same folder as dest so os.replace is an atomic rename (never a cross-device copy);
    # the pid keeps two processes downloading the same file from clobbering each other.
    tmp = dest.parent / f".{dest.name}.part-{os.getpid()}"
    tries = max(1, retries + 1)
    failure: Optional[_Retry] = None
    try:
        for attempt in range(tries):
            if attempt:
                time.sleep(backoff * 2 ** (attempt - 1))
            try:
                _fetch_once(url, dest, tmp, sha256, size, timeout, progress)
            except _Retry as err:
                failure = err
                continue
            os.replace(tmp, dest)
            return dest
    finally:
        tmp.unlink(missing_ok=True)  # on any failure (or Ctrl-C) no partial file stays behind

    assert failure is not None
    manual = f"place the file at {dest} by hand (see datasets/README.md)"
    if failure.unreachable:
        raise DataError(f"{UNREACHABLE} of {url} (no network?) after {tries} tries: {failure}; "
                        f"download it on a machine with network access and {manual}")
    raise DataError(f"download of {url} failed after {tries} tries: {failure}; try again later or {manual}")


@contextlib.contextmanager
def folders_kept_only_if_used(path: Path) -> Iterator[None]:
    """Folders a download makes (path and its missing parents) are removed again if the block fails and
    leaves them empty, so a failed download leaves no empty datasets/<name> folders behind."""
    path = Path(path)
    made = [p for p in (path, *path.parents) if not p.exists()]  # deepest first
    try:
        yield
    except BaseException:
        for p in made:
            with contextlib.suppress(OSError):  # not empty (a file arrived) or already gone: keep it
                p.rmdir()
        raise
