"""The shape of the package: the import floors hold, no run-folder file name is typed outside the run
layer, no code asks a registered name what its record knows, and the summary reports what was measured."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gan_bench.config import build_config
from gan_bench.run import RunFolder
from gan_bench.train.loop import train
from conftest import ROOT, tiny_overrides

PACKAGE = ROOT / "gan_bench"


def test_import_floors_hold():
    """`lint-imports` with the contract in pyproject.toml: no module imports from a floor above its own."""
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    r = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 kept, 0 broken" in r.stdout


def _code_lines(path: Path):
    """(line number, line) of a module without its docstrings and comments (what the code does)."""
    text = re.sub(r'"""(?:.|\n)*?"""', lambda m: "\n" * m.group(0).count("\n"), path.read_text())
    for i, line in enumerate(text.splitlines(), 1):
        yield i, line.split("#")[0]


def test_no_run_folder_file_name_outside_the_run_layer():
    names = [RunFolder.CONFIG, RunFolder.SUMMARY, *RunFolder.RECORDS.values(), RunFolder.PROGRESS,
             "last.pt", "best.pt", "epoch_"]
    found = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in PACKAGE.rglob("*.py")
             if p.parent.name != "run" for i, line in _code_lines(p)
             if any(f'"{n}' in line or f"'{n}" in line for n in names)]
    assert not found, "\n".join(found)


def test_no_code_asks_a_registered_name_what_its_record_knows():
    pattern = re.compile(r"\.name\s*==\s*['\"]|\.get\(\"name\"\)\s*==|\.meta\[|\.meta\.get\(|\[\"kind\"\]")
    found = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in PACKAGE.rglob("*.py")
             for i, line in _code_lines(p) if pattern.search(line)]
    assert not found, "\n".join(found)


def test_images_seen_counts_the_batches_drawn(tmp_path: Path):
    """33 images and batch 16: an epoch is the 2 whole batches (the last partial one is dropped), so 2 epochs
    are 4 steps that see 64 images, not the 66 of two passes over the data."""
    npz = tmp_path / "few.npz"
    x = np.random.default_rng(0).integers(0, 255, (33, 28, 28), dtype=np.uint8)
    np.savez(npz, x=x)
    over = tiny_overrides(npz, model="convdcgan", epochs=2, batch_size=16)
    over["data"]["test_path"] = str(npz)  # all 33 images train
    run = train(build_config([over, {"out": str(tmp_path / "res")}], name="few"))
    s = json.loads((run / "summary.json").read_text())
    assert s["steps"] == 4 and s["images_seen"] == 64
    assert s["img_per_sec"] == pytest.approx(64 / s["train_seconds"])


def test_images_seen_survives_a_resume(tmp_path: Path, tiny_npz: Path):
    over = tiny_overrides(tiny_npz, model="classdcgan", epochs=2, batch_size=4, checkpoint_every=1)
    cfg = build_config([over, {"out": str(tmp_path / "res")}], name="k")
    run = train(cfg)
    whole = json.loads((run / "summary.json").read_text())
    assert whole["images_seen"] == whole["steps"] * 4 * 3  # 4 images of each of the 3 classes a step
    ckpt = RunFolder(run).load_checkpoint(cfg)
    assert ckpt["images_seen"] == whole["images_seen"]


def _manual_examples() -> dict[str, str]:
    """{file name: code} of the manual's plugin examples: docs/*.md's ```python blocks headed `# file: NAME.py`
    (tests/test_docs_examples.py runs each through the CLI)."""
    found = {m.group(2): m.group(1) for page in sorted((ROOT / "docs").glob("*.md"))
             for m in re.finditer(r"```python\n(# file: (\S+\.py)\n.*?)```", page.read_text(), re.S)}
    assert {"stripes.py", "tinymlp.py"} <= set(found), "docs/plugins.md lost its data set or model example"
    return found


def test_the_manuals_examples_add_a_data_set_and_a_model(tmp_path: Path, isolated_registries):
    """The manual's data set and model examples (docs/plugins.md), saved as plugin files as written: a data set
    and a model through the public API, each a short file, then a two-step run of the new model on the new data
    through the ordinary trainer."""
    from gan_bench.data import DATASETS
    from gan_bench.models import MODELS

    files = []
    for name in ("stripes.py", "tinymlp.py"):
        code = _manual_examples()[name]
        assert len([line for line in code.splitlines() if line.strip()]) <= 25, name
        (tmp_path / name).write_text(code)
        files.append(str(tmp_path / name))
    build_config([], plugins=files)
    assert "stripes" in DATASETS and "tinymlp" in MODELS
    cfg = build_config([{"data": {"name": "stripes", "per_class": 8}, "model": {"name": "tinymlp", "nz": 8},
                         "train": {"max_steps": 2, "batch_size": 8, "progress": False},
                         "out": str(tmp_path / "res")}], name="ext")
    s = json.loads((train(cfg) / "summary.json").read_text())
    assert s["status"] == "completed" and s["dataset"] == "stripes" and s["model"] == "tinymlp"
    with pytest.raises(Exception, match="per_class: must be >= 1"):
        build_config([{"data": {"name": "stripes", "per_class": 0}}])


def test_plugins_need_only_the_public_api():
    """The example plugin and every example of the manual import nothing of gan-bench but `gan_bench`
    (api.py), and every name the API lists is there."""
    import ast

    import gan_bench

    for name, code in (("examples/resnet_gan.py", (ROOT / "examples" / "resnet_gan.py").read_text()),
                       *_manual_examples().items()):
        modules = {n.module for n in ast.walk(ast.parse(code)) if isinstance(n, ast.ImportFrom)}
        modules |= {a.name for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Import) for a in n.names}
        assert {m for m in modules if m and m.startswith("gan_bench")} == {"gan_bench"}, name
    assert all(hasattr(gan_bench, n) for n in gan_bench.__all__)
