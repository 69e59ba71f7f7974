"""CIFAR-10, CelebA and image_folder on tiny files written here in the real formats; shared-data checks."""
from __future__ import annotations

import functools
import hashlib
import http.server
import pickle
import struct
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gan_bench.data.celeba as celeba
from gan_bench.config import DataConfig, build_config
from gan_bench.data import DATASETS, load_data
from gan_bench.errors import ConfigError, DataError
from gan_bench.models import check_compatible
from conftest import SHARED

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# ---- CIFAR-10 ---------------------------------------------------------------------------------

def _cifar_rows(n: int, first: int) -> tuple[np.ndarray, list[int]]:
    """n rows of 3072 bytes: R plane = a ramp (orientation check), G = image number, B = 255 - that."""
    ramp = (np.arange(1024) % 256).astype(np.uint8)
    rows = [np.concatenate([ramp, np.full(1024, first + i, np.uint8), np.full(1024, 255 - first - i, np.uint8)])
            for i in range(n)]
    return np.stack(rows), [(first + i) % 10 for i in range(n)]


class _Py2Pickler(pickle._Pickler):
    """Pickles str as Python 2 byte strings, as in the official files (written by Python 2): Python 3
    reads those keys back as b'data' with encoding='bytes' and as 'data' with encoding='latin1'."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: str | bytes) -> None:  # py2 had one byte-string type for both
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data if len(data) < 256
                   else pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = dispatch[bytes] = save_py2_str


def _dump(path: Path, entry: dict, py2: bool) -> None:
    if py2:
        with open(path, "wb") as f:
            _Py2Pickler(f, protocol=2).dump(entry)
    else:  # a Python 3 re-pickle of what pickle.load(encoding='bytes') returns: real bytes keys
        path.write_bytes(pickle.dumps({k.encode(): [v.encode() for v in x] if k == "label_names" else x
                                       for k, x in entry.items()}, protocol=2))


def write_cifar(root: Path, *, per_batch: int = 3, n_test: int = 4, py2: bool = True) -> Path:
    """The python-batches folder of cifar-10-python.tar.gz with a few images per file."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        data, labels = _cifar_rows(per_batch, first=10 * i)
        names = [f"img_{i}_{j}.png" for j in range(per_batch)]
        _dump(folder / f"data_batch_{i}", {"batch_label": f"training batch {i} of 5", "labels": labels,
                                           "data": data, "filenames": names}, py2)
    data, labels = _cifar_rows(n_test, first=100)
    _dump(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "labels": labels, "data": data}, py2)
    _dump(folder / "batches.meta", {"label_names": CIFAR_CLASSES, "num_cases_per_batch": per_batch,
                                    "num_vis": 3072}, py2)
    return folder


def test_cifar_writer_matches_the_official_pickle_format(tmp_path):
    folder = write_cifar(tmp_path)
    with open(folder / "data_batch_1", "rb") as f:
        entry = pickle.load(f, encoding="bytes")  # how the CIFAR-10 page says to read the files
    assert entry[b"data"].shape == (3, 3072) and entry[b"data"].dtype == np.uint8 and entry[b"labels"] == [0, 1, 2]
    with open(folder / "batches.meta", "rb") as f:
        assert pickle.load(f, encoding="bytes")[b"label_names"][:2] == [b"airplane", b"automobile"]


@pytest.mark.parametrize("py2", [True, False])
def test_cifar10_reads_local_python_batches(tmp_path, py2):
    write_cifar(tmp_path, py2=py2)
    s = load_data(DataConfig(name="cifar10", root=str(tmp_path), download=False))
    assert s.train.x.shape == (15, 3, 32, 32) and s.test.x.shape == (4, 3, 32, 32)
    assert s.train.x.dtype == torch.uint8 and s.train.classes == CIFAR_CLASSES
    assert s.spec.num_classes == 10 and s.spec.channels == 3 and s.spec.resolution == 32
    # rows are R, G, B planes in row-major order: pixel (r, c) of the red plane is (32 r + c) % 256
    assert s.train.x[0, 0, 1, 3].item() == (32 + 3) % 256 and s.train.x[0, 0, 7, 31].item() == (7 * 32 + 31) % 256
    assert s.train.x[:, 1, 0, 0].tolist()[:4] == [10, 11, 12, 20] and s.train.y.tolist()[:4] == [0, 1, 2, 0]
    assert s.test.x[0, 2, 5, 5].item() == 155 and s.test.y.tolist() == [0, 1, 2, 3]


def test_torchvision_refuses_these_files_so_the_local_reader_exists(tmp_path):
    # torchvision checks the md5 of every batch against the official files; a re-packed copy fails
    import torchvision.datasets as tvd

    write_cifar(tmp_path)
    with pytest.raises(RuntimeError, match="not found or corrupted"):
        tvd.CIFAR10(str(tmp_path), train=True, download=False)


def test_cifar10_resolution_64_and_cap(tmp_path):
    write_cifar(tmp_path)
    s = load_data(DataConfig(name="cifar10", root=str(tmp_path), download=False, resolution=64, max_per_class=1))
    assert s.train.x.shape[1:] == (3, 64, 64) and s.test.x.shape == (4, 3, 64, 64)
    assert s.train.y.bincount().max().item() == 1


def test_cifar10_missing_offline_is_one_line_pointing_at_the_readme(tmp_path):
    with pytest.raises(DataError) as e:
        load_data(DataConfig(name="cifar10", root=str(tmp_path), download=False))
    msg = str(e.value)
    assert "\n" not in msg and "datasets/README.md" in msg and "cifar-10-batches-py" in msg


def test_cifar10_truncated_batch_names_the_file(tmp_path):
    folder = write_cifar(tmp_path)
    p = folder / "data_batch_3"
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(DataError, match="data_batch_3 is truncated or corrupt"):
        load_data(DataConfig(name="cifar10", root=str(tmp_path), download=False))


@pytest.fixture
def cifar_server(tmp_path, monkeypatch):
    """cifar-10-python.tar.gz built from write_cifar, served locally; torchvision's URL and md5s point at it."""
    import torchvision.datasets as tvd

    src = write_cifar(tmp_path / "src")
    serve = tmp_path / "serve"
    serve.mkdir()
    with tarfile.open(serve / "cifar-10-python.tar.gz", "w:gz") as t:
        t.add(src, arcname="cifar-10-batches-py")
    md5 = lambda p: hashlib.md5(p.read_bytes()).hexdigest()  # noqa: E731

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(serve)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    monkeypatch.setattr(tvd.CIFAR10, "url", f"http://127.0.0.1:{srv.server_port}/cifar-10-python.tar.gz")
    monkeypatch.setattr(tvd.CIFAR10, "tgz_md5", md5(serve / "cifar-10-python.tar.gz"))
    monkeypatch.setattr(tvd.CIFAR10, "train_list",
                        [[f"data_batch_{i}", md5(src / f"data_batch_{i}")] for i in range(1, 6)])
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [["test_batch", md5(src / "test_batch")]])
    monkeypatch.setattr(tvd.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                              "md5": md5(src / "batches.meta")})
    yield srv
    srv.shutdown()


def test_cifar10_download_through_torchvision_matches_the_local_reader(tmp_path, cifar_server):
    root = tmp_path / "root"
    downloaded = load_data(DataConfig(name="cifar10", root=str(root)))  # missing -> torchvision downloads
    assert (root / "cifar-10-batches-py" / "data_batch_5").is_file()
    local = load_data(DataConfig(name="cifar10", root=str(root), download=False))  # now read locally
    assert torch.equal(downloaded.train.x, local.train.x) and torch.equal(downloaded.test.y, local.test.y)
    assert downloaded.train.classes == CIFAR_CLASSES == local.train.classes


def test_cifar10_tarball_placed_by_hand_is_unpacked_without_network(tmp_path, cifar_server, monkeypatch):
    import torchvision.datasets as tvd

    root = tmp_path / "root"
    root.mkdir()
    (root / "cifar-10-python.tar.gz").write_bytes((tmp_path / "serve" / "cifar-10-python.tar.gz").read_bytes())
    monkeypatch.setattr(tvd.CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")  # nothing listens
    s = load_data(DataConfig(name="cifar10", root=str(root)))  # md5 of the tarball checked, then unpacked
    assert s.train.x.shape == (15, 3, 32, 32) and (root / "cifar-10-batches-py" / "test_batch").is_file()


def test_cifar10_failed_download_is_one_line(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    monkeypatch.setattr(tvd.CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")  # nothing listens
    with pytest.raises(DataError) as e:
        load_data(DataConfig(name="cifar10", root=str(tmp_path)))
    assert "\n" not in str(e.value) and "download failed" in str(e.value) and "datasets/README.md" in str(e.value)


# ---- CelebA -----------------------------------------------------------------------------------

def _face(i: int) -> Image.Image:
    """A 178x218 'aligned face': a bright 140x140 centre square on a dark border; brightness tells i."""
    a = np.full((218, 178, 3), 20, np.uint8)
    a[39:179, 19:159] = 200 + 5 * i
    return Image.fromarray(a)


def write_celeba_folder(root: Path, n: int = 6) -> Path:
    folder = root / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    for i in range(n):
        _face(i).save(folder / f"{i + 1:06d}.jpg", quality=95)
    return folder


def test_celeba_folder_takes_the_centre_crop_and_resizes(tmp_path):
    write_celeba_folder(tmp_path)
    s = load_data(DataConfig(name="celeba", root=str(tmp_path), download=False, test_fraction=0.5))
    x = torch.cat([s.train.x, s.test.x])
    assert s.train.x.shape == (3, 3, 64, 64) and len(s.test) == 3
    assert s.train.y is None and s.spec.num_classes == 0 and s.spec.classes == []
    # the crop is the bright square: no dark border left (edges blur a little through JPEG and bicubic)
    assert x[:, :, 2:-2, 2:-2].min().item() >= 195 and x.min().item() > 150
    # the whole image, resized, keeps dark corners: the crop above really was taken
    full = load_data(DataConfig(name="celeba", root=str(tmp_path), download=False, crop=178))
    assert full.train.x[:, :, 0, 0].max().item() < 40


def test_celeba_zip_equals_folder_and_128_option(tmp_path):
    folder = write_celeba_folder(tmp_path / "a")
    zroot = tmp_path / "b" / "celeba"
    zroot.mkdir(parents=True)
    with zipfile.ZipFile(zroot / "img_align_celeba.zip", "w") as z:
        for p in sorted(folder.iterdir()):
            z.write(p, f"img_align_celeba/{p.name}")
    a = load_data(DataConfig(name="celeba", root=str(tmp_path / "a"), download=False, resolution=128))
    b = load_data(DataConfig(name="celeba", root=str(tmp_path / "b"), download=False, resolution=128))
    assert b.train.x.shape[1:] == (3, 128, 128) and torch.equal(a.train.x, b.train.x)


def test_celeba_max_per_class_caps_the_total_keeping_the_first_files(tmp_path):
    write_celeba_folder(tmp_path, n=6)
    s = load_data(DataConfig(name="celeba", root=str(tmp_path), download=False, max_per_class=4,
                             test_fraction=0.25))
    x = torch.cat([s.train.x, s.test.x])
    assert len(s.train) == 3 and len(s.test) == 1
    assert sorted(x[:, 0, 32, 32].tolist()) == pytest.approx([200, 205, 210, 215], abs=3)  # files 1..4


def test_celeba_crop_box_matches_the_shared_file_pipeline():
    assert celeba.crop_box(178, 218, 140) == (19, 39, 159, 179)
    assert celeba.crop_box(89, 109, 140) == (9.5, 19.5, 79.5, 89.5)  # celeba64.npz's box on half-size images


@pytest.mark.parametrize("in_zip", [False, True])
def test_celeba_corrupt_image_names_the_file(tmp_path, in_zip):
    folder = write_celeba_folder(tmp_path, n=3)
    (folder / "000002.jpg").write_bytes((folder / "000002.jpg").read_bytes()[:300])  # truncated JPEG
    if in_zip:
        with zipfile.ZipFile(tmp_path / "celeba" / "img_align_celeba.zip", "w") as z:
            for p in sorted(folder.iterdir()):
                z.write(p, f"img_align_celeba/{p.name}")
        for p in folder.iterdir():
            p.unlink()
        folder.rmdir()
    with pytest.raises(DataError) as e:
        load_data(DataConfig(name="celeba", root=str(tmp_path), download=False))
    assert "000002.jpg" in str(e.value) and "\n" not in str(e.value)


def test_celeba_missing_offline_points_at_the_readme(tmp_path):
    with pytest.raises(DataError, match="datasets/README.md"):
        load_data(DataConfig(name="celeba", root=str(tmp_path), download=False))


def test_celeba_falls_back_to_torchvision(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    class FakeCelebA:  # stands in for the Google Drive download: unpacks three faces, lists them
        def __init__(self, root, split, target_type, download):
            assert split == "all" and download
            write_celeba_folder(Path(root), n=3)
            self.filename = ["000001.jpg", "000002.jpg", "000003.jpg"]

    monkeypatch.setattr(tvd, "CelebA", FakeCelebA)
    s = load_data(DataConfig(name="celeba", root=str(tmp_path), test_fraction=0.0))
    assert s.train.x.shape == (3, 3, 64, 64)


def test_celeba_failed_download_is_one_line(tmp_path, monkeypatch):
    import torchvision.datasets.celeba as tvc

    def refuse(*a, **k):
        raise RuntimeError("Too many users have viewed or downloaded this file recently.\nTry later.")

    monkeypatch.setattr(tvc, "download_file_from_google_drive", refuse)
    with pytest.raises(DataError) as e:
        load_data(DataConfig(name="celeba", root=str(tmp_path)))
    assert "\n" not in str(e.value) and "RuntimeError" in str(e.value) and "datasets/README.md" in str(e.value)


def test_conditional_model_on_celeba_is_refused_naming_the_models_that_fit(tmp_path):
    write_celeba_folder(tmp_path, n=4)
    spec = load_data(DataConfig(name="celeba", root=str(tmp_path), download=False)).spec
    with pytest.raises(ConfigError) as e:
        check_compatible("cdcgan", spec)
    fit = str(e.value).split("models that fit:")[1]
    assert "no labels" in str(e.value) and "convdcgan" in fit and "cdcgan," not in fit and "classdcgan" not in fit
    check_compatible("convdcgan", spec)  # an unconditional 64-pixel model is accepted


def test_celeba_crop_is_a_checked_config_key():
    assert build_config([{"data": {"name": "celeba", "crop": 108}}]).data.crop == 108
    with pytest.raises(ConfigError, match="data.crop"):
        build_config([{"data": {"crop": 200}}])


# ---- image_folder -----------------------------------------------------------------------------

def _png(path: Path, value: int, size=(24, 24), mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, value // 2, 0)).save(path)


def test_image_folder_grayscale_classes_in_sorted_folder_order(tmp_path):
    for i in range(4):
        _png(tmp_path / "zebra" / f"{i}.png", 30)
        _png(tmp_path / "ant" / f"{i}.png", 220)
    (tmp_path / "ant" / "notes.txt").write_text("not an image: skipped")
    s = load_data(DataConfig(name="image_folder", path=str(tmp_path), test_fraction=0.25))
    assert s.train.classes == ["ant", "zebra"] and s.spec.channels == 1 and s.spec.resolution == 24
    assert s.train.x.shape == (6, 1, 24, 24) and s.test.y.bincount().tolist() == [1, 1]
    assert (s.train.x[s.train.y == 0] == 220).all() and (s.train.x[s.train.y == 1] == 30).all()


def test_image_folder_any_colour_image_makes_all_rgb_and_odd_modes_are_handled(tmp_path):
    _png(tmp_path / "a" / "gray.png", 100)
    _png(tmp_path / "a" / "rgb.png", 200, mode="RGB")
    (tmp_path / "b").mkdir()
    Image.new("RGBA", (24, 24), (255, 255, 255, 0)).save(tmp_path / "b" / "clear.png")  # fully transparent
    Image.new("P", (24, 24), 3).save(tmp_path / "b" / "palette.gif")
    Image.fromarray(np.full((24, 24), 65535, np.uint16)).save(tmp_path / "b" / "deep.png")  # 16-bit gray
    s = load_data(DataConfig(name="image_folder", path=str(tmp_path), test_fraction=0.0))
    x = {name: s.train.x[i] for i, name in enumerate(["gray", "rgb", "clear", "deep", "palette"])}  # sorted files
    assert s.train.x.shape == (5, 3, 24, 24)
    assert x["gray"][:, 0, 0].tolist() == [100, 100, 100] and x["rgb"][:, 0, 0].tolist() == [200, 100, 0]
    assert x["clear"].max().item() == 0 and x["deep"].min().item() == 255  # transparent -> black; 16 -> 8 bits


def test_image_folder_needs_a_resolution_for_mixed_sizes_then_crops_the_centre(tmp_path):
    _png(tmp_path / "a" / "square.png", 220)
    wide = np.full((20, 30), 10, np.uint8)
    wide[:, 5:25] = 220  # the centre 20x20 square is bright, the side strips dark
    Image.fromarray(wide).save(tmp_path / "a" / "wide.png")
    with pytest.raises(ConfigError, match="data.resolution"):
        load_data(DataConfig(name="image_folder", path=str(tmp_path)))
    s = load_data(DataConfig(name="image_folder", path=str(tmp_path), resolution=16, test_fraction=0.0))
    assert s.train.x.shape == (2, 1, 16, 16) and s.train.x.min().item() > 200  # edges blur slightly


def test_image_folder_unreadable_image_names_the_file(tmp_path):
    _png(tmp_path / "a" / "ok.png", 50)
    (tmp_path / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataError, match="broken.png"):
        load_data(DataConfig(name="image_folder", path=str(tmp_path)))


def test_image_folder_layout_errors(tmp_path):
    _png(tmp_path / "loose.png", 50)
    with pytest.raises(DataError, match="no class sub-folders"):
        load_data(DataConfig(name="image_folder", path=str(tmp_path)))
    with pytest.raises(ConfigError, match="data.path"):
        load_data(DataConfig(name="image_folder"))
    with pytest.raises(DataError, match="not a folder"):
        load_data(DataConfig(name="image_folder", path=str(tmp_path / "nowhere")))


def test_image_folder_caps_each_class_before_decoding(tmp_path):
    for i in range(5):
        _png(tmp_path / "a" / f"{i}.png", 10 * i)
        _png(tmp_path / "b" / f"{i}.png", 100)
    s = load_data(DataConfig(name="image_folder", path=str(tmp_path), max_per_class=2, test_fraction=0.0))
    assert s.train.y.bincount().tolist() == [2, 2]


def test_new_sources_are_listed_with_their_meta():
    info = {e.name: e.info for e in DATASETS}
    assert info["cifar10"].resolutions == (32, 64) and info["cifar10"].labelled is True
    assert info["celeba"].resolutions == (64, 128) and info["celeba"].labelled is False
    assert info["image_folder"].resolutions == () and info["image_folder"].channels is None


# ---- the shared real data (skipped where /work/shared/data is absent) -------------------------

@pytest.mark.skipif(not (SHARED / "cifar10_train.npz").exists(), reason="shared data absent")
def test_shared_cifar10_through_npz_at_64():
    s = load_data(DataConfig(name="npz", path=str(SHARED / "cifar10_train.npz"), max_per_class=20,
                             test_path=str(SHARED / "cifar10_test.npz"), resolution=64))
    assert s.train.x.shape == (200, 3, 64, 64) and s.test.x.shape == (2000, 3, 64, 64)
    assert s.train.classes == CIFAR_CLASSES and s.train.y.bincount().tolist() == [20] * 10


@pytest.mark.skipif(not (SHARED / "celeba64.npz").exists(), reason="shared data absent")
def test_shared_celeba64_through_npz_is_unlabelled():
    s = load_data(DataConfig(name="npz", path=str(SHARED / "celeba64.npz")))
    assert s.train.x.shape[1:] == (3, 64, 64) and len(s.train) + len(s.test) == 5000
    assert s.train.y is None and s.spec.num_classes == 0 and not s.spec.labelled
    with pytest.raises(ConfigError, match="no labels"):
        check_compatible("cdcgan", s.spec)
