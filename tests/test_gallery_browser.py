"""The gallery page over two real (tiny) runs: its HTML, then the page in a real headless Chromium,
loaded from file:// and from a static HTTP server."""
from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_bench.config import build_config
from gan_bench.report.gallery import build_gallery
from gan_bench.train.loop import train
from conftest import tiny_overrides


@pytest.fixture(scope="module")
def gallery(tmp_path_factory) -> Path:
    """Two runs (conditional cdcgan with per-class GIFs, unconditional convdcgan) and their gallery."""
    from conftest import write_npz

    tmp = tmp_path_factory.mktemp("gallery")
    npz = write_npz(tmp / "tiny.npz", classes=("cat", "baseball bat", "t-shirt"))
    results = tmp / "results"
    for name, model in (("tiny_cdcgan", "cdcgan"), ("tiny_convdcgan", "convdcgan")):
        cfg = build_config([tiny_overrides(npz, model=model), {"out": str(results)}], name=name)
        run = train(cfg)
        if model == "cdcgan":
            (run / "eval.jsonl").write_text(json.dumps({"metric": "fd", "step": 8, "checkpoint": "last",
                                                        "samples": 30, "fd": 12.5}) + "\n")
    page = build_gallery(results=results, out=tmp / "site" / "gallery", title="tiny <suite>")
    return page


def _srcs(text: str) -> list[str]:
    return re.findall(r"<img [^>]*src='([^']+)'", text)


def test_page_uses_relative_lazy_images_that_exist(gallery: Path):
    text = gallery.read_text()
    srcs = _srcs(text)
    assert len(srcs) == 2 * 3 + 3 + 2  # final + progress + loss plot per run, 3 class GIFs, 2 overview plots
    for src in srcs:
        assert not src.startswith(("/", "file:", "http")) and ".." not in src, src
        assert (gallery.parent / src).is_file(), src
    assert text.count("loading=lazy") == len(srcs)
    assert "image-rendering:pixelated" in text
    assert "tiny &lt;suite&gt;" in text and "<suite>" not in text  # names are escaped


def test_page_has_index_links_class_names_and_numbers(gallery: Path):
    text = gallery.read_text()
    anchors = set(re.findall(r"id='([^']+)'", text))
    links = re.findall(r"href='#([^']+)'", text)
    assert any(x.startswith("run-tiny_cdcgan-") for x in links) and any(x.startswith("run-tiny_convdcgan-") for x in links)
    assert all(link in anchors or link == "index" for link in links)
    # per-class GIFs follow the data set's label order (summary.json's classes), not the alphabet
    assert re.findall(r"<figcaption>([^<]+?) <a href='[^']+'>▶</a></figcaption>", text)[:3] == \
        ["cat", "baseball bat", "t-shirt"]
    assert ">12.5<" in text and "FD by data set and model" in text
    # every card shows the run's peak memory from its summary (CPU runs: the CPU's alone)
    peaks = re.findall(r"<dt>peak memory</dt><dd>CPU ([0-9,]+) MiB</dd>", text)
    assert len(peaks) == 2 and all(int(v.replace(",", "")) > 50 for v in peaks)


def test_gallery_folder_can_be_moved(gallery: Path, tmp_path: Path):
    moved = tmp_path / "elsewhere"
    shutil.copytree(gallery.parent, moved)
    assert all((moved / src).is_file() for src in _srcs((moved / "index.html").read_text()))


# ---- a real headless browser -------------------------------------------------------------------

def _driver():
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    driver = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[dev]'); browser test skipped")
    if not (browser and driver):
        pytest.skip("chromium and chromium-driver are not installed (.ci/run installs them with apt-get; "
                    "it could not here); browser test skipped")
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--hide-scrollbars", "--window-size=1500,1000", f"--user-data-dir={tempfile.mkdtemp()}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=opts)


def _check_page(d, url: str, shot: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    d.get(url)
    images = d.find_elements("tag name", "img")
    assert len(images) == 11
    closed = d.find_elements("css selector", "details:not([open]) img")
    assert len(closed) == 2  # the progress animations wait for a click; the page opens on final frames
    for summary in d.find_elements("css selector", "details > summary"):
        d.execute_script("arguments[0].scrollIntoView({block: 'center'})", summary)
        summary.click()
    for img in images:  # lazy images load once they come into view
        d.execute_script("arguments[0].scrollIntoView({block: 'center'})", img)
        WebDriverWait(d, 10).until(lambda _: d.execute_script("return arguments[0].complete", img))
    broken = d.execute_script("return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))"
                              ".map(i => i.getAttribute('src'))")
    assert broken == []
    assert [e for e in d.get_log("browser") if e["level"] == "SEVERE"] == []
    d.execute_script("window.scrollTo(0, 0)")
    assert d.save_screenshot(str(shot))
    px = np.asarray(Image.open(shot).convert("RGB"))
    assert px.shape[0] > 500 and px.std() > 20 and len(np.unique(px.reshape(-1, 3), axis=0)) > 50  # not blank


def test_gallery_in_headless_chromium_from_file_and_http(gallery: Path, tmp_path: Path):
    d = _driver()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(gallery.parent))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _check_page(d, gallery.resolve().as_uri(), tmp_path / "file.png")
        _check_page(d, f"http://127.0.0.1:{server.server_address[1]}/index.html", tmp_path / "http.png")
    finally:
        d.quit()
        server.shutdown()
