"""Tests of gan_bench.data.download against a real HTTP server on 127.0.0.1 (loopback only)."""
from __future__ import annotations

import hashlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import pytest

from gan_bench.data.download import download, sha256_of
from gan_bench.errors import DataError

BODY = bytes(range(256)) * 400  # 100 KiB, several reads
BODY_SHA = hashlib.sha256(BODY).hexdigest()
FAST = dict(backoff=0.01, timeout=2.0, progress=False)


def serve(h: BaseHTTPRequestHandler, body: bytes = BODY, length: int | None = None) -> None:
    h.send_response(200)
    h.send_header("Content-Length", str(len(body) if length is None else length))
    h.end_headers()
    h.wfile.write(body)


class Server:
    """A scripted server: `behave(handler, n)` answers the n-th request (0-based)."""

    def __init__(self) -> None:
        self.requests = 0
        self.behave: Callable[[BaseHTTPRequestHandler, int], None] = lambda h, n: serve(h)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    n = server.requests
                    server.requests += 1
                try:
                    server.behave(self, n)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (e.g. after its timeout): expected in some tests

            def log_message(self, *args: object) -> None:
                pass

        lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/data.bin"


@pytest.fixture
def server():
    s = Server()
    # A short poll interval makes shutdown() quick, keeping the whole file well under a few seconds.
    thread = threading.Thread(target=s.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def fail(**kwargs) -> DataError:
    """Run download expecting DataError; check its message is one line and return it."""
    with pytest.raises(DataError) as info:
        download(**kwargs)
    assert "\n" not in str(info.value) and "\r" not in str(info.value)
    return info.value


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def test_normal_download(server, tmp_path):
    dest = tmp_path / "sub" / "data.bin"  # parent folder is created
    out = download(server.url, dest, sha256=BODY_SHA, size=len(BODY), progress=True, backoff=0.01)
    assert out == dest and dest.read_bytes() == BODY
    assert sha256_of(dest) == BODY_SHA
    assert leftovers(dest.parent, {"data.bin"}) == []
    assert server.requests == 1


def test_retries_after_server_errors(server, tmp_path):
    def behave(h, n):
        if n < 2:
            h.send_error(500)
        else:
            serve(h)
    server.behave = behave
    dest = tmp_path / "data.bin"
    download(server.url, dest, sha256=BODY_SHA, **FAST)
    assert dest.read_bytes() == BODY and server.requests == 3


def test_retries_after_429(server, tmp_path):
    server.behave = lambda h, n: h.send_error(429) if n == 0 else serve(h)
    download(server.url, tmp_path / "data.bin", **FAST)
    assert server.requests == 2


@pytest.mark.parametrize("where", ["before headers", "mid body"])
def test_retries_after_stall(server, tmp_path, where):
    def behave(h, n):
        if n == 0:
            if where == "mid body":
                h.send_response(200)
                h.send_header("Content-Length", str(len(BODY)))
                h.end_headers()
                h.wfile.write(BODY[:1000])
                h.wfile.flush()
            time.sleep(1.0)  # longer than the client's timeout
        else:
            serve(h)
    server.behave = behave
    dest = tmp_path / "data.bin"
    start = time.monotonic()
    download(server.url, dest, sha256=BODY_SHA, backoff=0.01, timeout=0.3, progress=False)
    assert dest.read_bytes() == BODY and server.requests == 2
    assert time.monotonic() - start < 1.0  # gave up on the stall, did not wait it out
    assert leftovers(tmp_path, {"data.bin"}) == []


def test_truncation_fails_after_retries(server, tmp_path):
    server.behave = lambda h, n: serve(h, BODY[:5000], length=len(BODY))
    dest = tmp_path / "data.bin"
    err = fail(url=server.url, dest=dest, retries=2, **FAST)
    assert "truncated" in str(err) and "data.bin" in str(err)
    assert server.requests == 3
    assert not dest.exists() and leftovers(tmp_path, set()) == []


def test_size_mismatch(server, tmp_path):
    dest = tmp_path / "data.bin"
    err = fail(url=server.url, dest=dest, size=len(BODY) + 1, retries=1, **FAST)
    assert "size mismatch" in str(err)
    assert not dest.exists() and leftovers(tmp_path, set()) == []


def test_sha256_mismatch(server, tmp_path):
    dest = tmp_path / "data.bin"
    err = fail(url=server.url, dest=dest, sha256="0" * 64, retries=1, **FAST)
    assert "sha256 mismatch" in str(err) and server.requests == 2
    assert not dest.exists() and leftovers(tmp_path, set()) == []


def test_failed_download_keeps_existing_dest(server, tmp_path):
    dest = tmp_path / "data.bin"
    dest.write_bytes(b"the old, good file")
    fail(url=server.url, dest=dest, sha256="0" * 64, retries=1, **FAST)
    assert dest.read_bytes() == b"the old, good file"
    assert leftovers(tmp_path, {"data.bin"}) == []


def test_404_is_not_retried(server, tmp_path):
    server.behave = lambda h, n: h.send_error(404)
    dest = tmp_path / "data.bin"
    err = fail(url=server.url, dest=dest, retries=4, **FAST)
    assert "not found" in str(err) and server.url in str(err)
    assert server.requests == 1
    assert not dest.exists() and leftovers(tmp_path, set()) == []


def test_no_network(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dest = tmp_path / "data.bin"
    err = fail(url=f"http://127.0.0.1:{port}/data.bin", dest=dest, retries=2, **FAST)
    msg = str(err)
    assert "cannot reach" in msg and "no network" in msg
    assert str(dest) in msg and "datasets/README.md" in msg
    assert not dest.exists() and leftovers(tmp_path, set()) == []


def test_sha256_of_matches_hashlib(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(BODY * 30)  # > one chunk
    assert sha256_of(path) == hashlib.sha256(BODY * 30).hexdigest()
