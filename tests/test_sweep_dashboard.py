"""`gan-bench sweep FILE --dashboard`: optuna-dashboard serves the sweep's studies (its JSON API), and the page
lists them in a real headless Chromium (skipped, as the gallery's browser test is, where Chromium is not
installed)."""
from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from test_sweep import write_sweep
from conftest import cli, cli_env, make_sweep_studies

pytest.importorskip("optuna_dashboard", reason="optuna-dashboard is not installed (pip install -e '.[dev]')")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory) -> str:
    """`gan-bench sweep s.yaml --dashboard` over a sweep whose study exists (as its first run makes it): its URL."""
    tmp = tmp_path_factory.mktemp("dashboard")
    write_sweep(tmp)
    make_sweep_studies(tmp)
    port = _free_port()
    p = subprocess.Popen(cli("sweep", "s.yaml", "--dashboard", "--port", str(port)),
                         cwd=tmp, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and p.poll() is None:
        try:
            _get(f"{url}/api/studies")
            break
        except OSError:
            time.sleep(0.5)
    try:
        assert p.poll() is None, p.stdout.read()
        yield url
    finally:
        p.terminate()
        p.communicate(timeout=30)


def test_dashboard_serves_the_sweeps_studies(dashboard: str):
    studies = json.loads(_get(f"{dashboard}/api/studies"))
    assert [s["study_name"] for s in studies["study_summaries"]] == ["s/t"]


def test_dashboard_page_in_headless_chromium(dashboard: str):
    from selenium.webdriver.support.ui import WebDriverWait

    from test_gallery_browser import _driver

    d = _driver()  # skips where Chromium is not installed
    try:
        d.get(f"{dashboard}/dashboard/")
        WebDriverWait(d, 30).until(lambda _: "s/t" in d.find_element("tag name", "body").text)
        assert [e for e in d.get_log("browser") if e["level"] == "SEVERE"] == []
    finally:
        d.quit()


def test_dashboard_refuses_a_sweep_that_has_not_run(tmp_path: Path, monkeypatch, capsys):
    from test_sweep import sweep_cli

    monkeypatch.chdir(tmp_path)
    write_sweep(tmp_path)
    assert sweep_cli("sweep", "s.yaml", "--dashboard") == 2
    assert "no study in sw yet" in capsys.readouterr().err
    assert not (tmp_path / "sw").exists()
