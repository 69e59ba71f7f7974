"""Spine loaders on tiny files in their real formats, including downloads from a local server."""
from __future__ import annotations

import functools
import gzip
import http.server
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

import gan_bench.data.download as dl
import gan_bench.data.quickdraw as qd
from gan_bench.config import DataConfig
from gan_bench.data import load_data
from gan_bench.errors import ConfigError, DataError
from conftest import SHARED, write_npz


def _category(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 784), dtype=np.uint8)


@pytest.fixture
def bucket(tmp_path: Path, monkeypatch):
    """A local stand-in for Google's bucket serving full_numpy_bitmap files; `truncate` cuts bodies."""
    files = {"cat": _category(30, 1), "baseball bat": _category(20, 2)}
    state = {"requests": [], "truncate": False}

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            state["requests"].append(self.path)
            name = self.path.rsplit("/", 1)[-1].replace("%20", " ").removesuffix(".npy")
            if name not in files:
                self.send_error(404)
                return
            import io
            buf = io.BytesIO()
            np.save(buf, files[name])
            body = buf.getvalue()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if state["truncate"] else body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    monkeypatch.setattr(qd, "URL", f"http://127.0.0.1:{srv.server_port}/full/numpy_bitmap/{{}}.npy")
    monkeypatch.setattr(dl, "download", functools.partial(dl.download, backoff=0.01, timeout=2, retries=1, progress=False))
    yield files, state
    srv.shutdown()


def test_quickdraw_downloads_missing_categories_in_config_order(tmp_path, bucket):
    files, state = bucket
    cfg = DataConfig(name="quickdraw", root=str(tmp_path), categories=["cat", "baseball bat"],
                     max_per_class=10, test_fraction=0.2)
    s = load_data(cfg)
    assert (tmp_path / "quickdraw" / "baseball bat.npy").exists()
    assert s.train.classes == ["cat", "baseball bat"] and s.spec.resolution == 28
    assert len(s.train) == 16 and len(s.test) == 4 and s.train.x.shape[1:] == (1, 28, 28)
    # label 1 is 'baseball bat' whatever the file system's order; its rows come from that file
    rows = {bytes(r) for r in files["baseball bat"].reshape(-1, 28, 28)}
    assert all(bytes(x[0].numpy()) in rows for x in s.train.x[s.train.y == 1])
    # second load uses the files on disk: no new requests
    n = len(state["requests"])
    again = load_data(cfg)
    assert len(state["requests"]) == n and bool((again.train.x == s.train.x).all())


def test_interrupted_download_leaves_nothing_behind(tmp_path, bucket):
    _, state = bucket
    state["truncate"] = True
    with pytest.raises(DataError) as e:
        load_data(DataConfig(name="quickdraw", root=str(tmp_path), categories=["cat"]))
    assert "\n" not in str(e.value)
    assert not (tmp_path / "quickdraw").exists()  # no half file, and no empty folder either


def test_offline_quickdraw_names_every_missing_file_and_leaves_no_folder(tmp_path, bucket, monkeypatch):
    monkeypatch.setattr(qd, "URL", "http://127.0.0.1:9/{}.npy")  # nothing listens there
    cats = ["cat", "envelope", "star"]
    with pytest.raises(DataError) as e:
        load_data(DataConfig(name="quickdraw", root=str(tmp_path / "datasets"), categories=cats))
    assert "3 of 3 Quick, Draw! files (cat.npy, envelope.npy, star.npy)" in str(e.value)
    assert not (tmp_path / "datasets").exists()


def test_offline_mnist_leaves_no_empty_folders(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    monkeypatch.setattr(tvd.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DataError, match="could not be downloaded"):
        load_data(DataConfig(name="mnist", root=str(tmp_path / "datasets")))
    assert not (tmp_path / "datasets").exists()


def test_quickdraw_rejects_unknown_category_with_suggestion(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'cat'"):
        load_data(DataConfig(name="quickdraw", root=str(tmp_path), categories=["catt"]))


def test_quickdraw_truncated_file_is_a_clear_error(tmp_path):
    (tmp_path / "quickdraw").mkdir()
    np.save(tmp_path / "quickdraw" / "cat.npy", _category(10, 0))
    p = tmp_path / "quickdraw" / "cat.npy"
    p.write_bytes(p.read_bytes()[:500])
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_data(DataConfig(name="quickdraw", root=str(tmp_path), categories=["cat"], download=False))


def _idx(path: Path, arr: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 8, arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape)
    path.write_bytes(header + arr.astype(np.uint8).tobytes())


def test_mnist_reads_local_idx_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 6)):
        _idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
        for suffix in ("images-idx3-ubyte", "labels-idx1-ubyte"):  # torchvision also lists the .gz
            with gzip.open(raw / f"{prefix}-{suffix}.gz", "wb") as f:
                f.write((raw / f"{prefix}-{suffix}").read_bytes())
    s = load_data(DataConfig(name="mnist", root=str(tmp_path), download=False))
    assert s.train.x.shape == (20, 1, 28, 28) and s.test.x.shape == (6, 1, 28, 28)
    assert s.train.classes[:3] == ["0", "1", "2"] and s.train.y.tolist()[:3] == [0, 1, 2]


def test_mnist_missing_offline_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="datasets/README.md"):
        load_data(DataConfig(name="mnist", root=str(tmp_path), download=False))


def test_npz_split_is_seeded_and_stratified(tmp_path):
    p = write_npz(tmp_path / "d.npz", n_per_class=20)
    a = load_data(DataConfig(name="npz", path=str(p), test_fraction=0.25))
    b = load_data(DataConfig(name="npz", path=str(p), test_fraction=0.25))
    assert bool((a.train.x == b.train.x).all()) and len(a.test) == 15
    assert a.test.y.bincount().tolist() == [5, 5, 5]
    c = load_data(DataConfig(name="npz", path=str(p), test_fraction=0.25, split_seed=1))
    assert not bool((a.test.x == c.test.x).all())


@pytest.mark.parametrize("content, words", [
    (dict(y=np.zeros(3)), "no array 'x'"),
    (dict(x=np.zeros((3, 28, 28), np.float32)), "uint8"),
    (dict(x=np.zeros((3, 28), np.uint8)), "N x H x W"),
    (dict(x=np.zeros((3, 28, 28), np.uint8), y=np.array([0, 1, 5]), classes=np.array(["a", "b"])), "labels must lie"),
])
def test_npz_bad_files(tmp_path, content, words):
    p = tmp_path / "bad.npz"
    np.savez(p, **content)
    with pytest.raises(DataError, match=words):
        load_data(DataConfig(name="npz", path=str(p)))


def test_npz_test_file_takes_the_training_file_class_names_and_an_unlabelled_one_drops_test_labels(tmp_path):
    train = write_npz(tmp_path / "train.npz", classes=("cat", "dog"))
    np.savez(tmp_path / "test.npz", x=np.zeros((4, 28, 28), np.uint8), y=np.array([1, 0, 1, 0], np.uint8))
    s = load_data(DataConfig(name="npz", path=str(train), test_path=str(tmp_path / "test.npz")))
    assert s.test.classes == ["cat", "dog"] and s.test.y.tolist() == [1, 0, 1, 0]  # uint8 labels are integers too
    np.savez(tmp_path / "plain.npz", x=np.zeros((6, 28, 28), np.uint8))
    u = load_data(DataConfig(name="npz", path=str(tmp_path / "plain.npz"), test_path=str(tmp_path / "test.npz")))
    assert not u.train.labelled and not u.test.labelled and len(u.test) == 4


def test_npz_truncated(tmp_path):
    p = write_npz(tmp_path / "d.npz")
    p.write_bytes(p.read_bytes()[:300])
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_data(DataConfig(name="npz", path=str(p)))


def test_shapes_data_set_describes_itself():
    s = load_data(DataConfig(name="shapes", per_class=20))
    assert s.spec.resolution == 28 and s.spec.channels == 1 and s.spec.num_classes >= 10
    assert len(s.train) + len(s.test) == 20 * s.spec.num_classes


@pytest.mark.skipif(not (SHARED / "quickdraw10_train.npz").exists(), reason="shared data absent")
def test_shared_quickdraw_through_npz():
    s = load_data(DataConfig(name="npz", path=str(SHARED / "quickdraw10_train.npz"),
                             test_path=str(SHARED / "quickdraw10_test.npz")))
    assert s.train.x.shape == (25000, 1, 28, 28) and len(s.test) == 5000
    assert s.train.classes[3] == "cat" and s.train.y.bincount().tolist() == [2500] * 10
