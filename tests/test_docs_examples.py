"""The manual's plugin examples, run as a user runs them: every ```python block of docs/*.md whose first line
is `# file: NAME.py` is saved under that name as written, listed with `gan-bench list --plugin NAME.py`, and
used by a few-step `gan-bench run` on tiny data, whose records show it was used. A new example without a
check here fails, so no example in the manual goes unrun."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import yaml

from gan_bench.cli import main
from conftest import ROOT, records, tiny_overrides, write_npz

pytestmark = pytest.mark.usefixtures("one_torch_thread", "isolated_registries")

EXAMPLE = re.compile(r"```python\n(# file: (\S+\.py)\n.*?)```", re.S)
REGISTERS = re.compile(r"register_(dataset|model|metric|loss|augment|tracker)\(\s*[\"'](\w+)[\"']")


def examples() -> dict[str, str]:
    """{file name: code} of every example in the manual, each name once."""
    found: dict[str, str] = {}
    for page in sorted((ROOT / "docs").glob("*.md")):
        for m in EXAMPLE.finditer(page.read_text()):
            assert m.group(2) not in found, f"{page.name}: a second example named {m.group(2)}"
            found[m.group(2)] = m.group(1)
    return found


def registered(code: str) -> list[tuple[str, str]]:
    """(registry, name) of each register_* call in an example."""
    return REGISTERS.findall(code)


def save(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_text(examples()[name])
    return path


def train(tmp_path: Path, plugins: list[Path], *sets: str, data: Path | None = None, name: str = "c") -> Path:
    """`gan-bench run` of a tiny config (write_npz's data unless a --set names another data set) with the
    plugins and --set keys given; returns the run folder."""
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(tiny_overrides(data or write_npz(tmp_path / "tiny.npz"), model="convdcgan",
                                                    max_steps=4, log_every=1)))
    args = ["run", str(config), "--out", str(tmp_path / "res")]
    for p in plugins:
        args += ["--plugin", str(p)]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 0
    runs = sorted((tmp_path / "res" / name).iterdir())
    summary = json.loads((runs[-1] / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["plugins"][0]["source"] == str(plugins[0].resolve())
    return runs[-1]


def summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


# ---- what each example must do, checked through its run's records -----------------------------------

def check_stripes(tmp_path: Path, plugin: Path, capsys, monkeypatch) -> None:
    run = train(tmp_path, [plugin], "data.name=stripes", "data.per_class=8", "data.path=null")
    s = summary(run)
    assert s["dataset"] == "stripes" and s["classes"] == ["horizontal", "vertical"] and s["resolution"] == 28
    assert 8 <= s["train_images"] < 16  # data.per_class=8 of each class, a test split held out by split()
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["per_class"] == 8


def check_tinymlp(tmp_path: Path, plugin: Path, capsys, monkeypatch) -> None:
    run = train(tmp_path, [plugin], "model.name=tinymlp")
    assert summary(run)["model"] == "tinymlp"


def check_cmlp(tmp_path: Path, plugin: Path, capsys, monkeypatch) -> None:
    run = train(tmp_path, [plugin], "model.name=cmlp")
    assert summary(run)["model"] == "cmlp"
    # conditional: drawn class by class, from the run's own record of its plugin (no --plugin)
    assert main(["sample", str(run), "--label", "b", "-n", "4", "--out", str(tmp_path / "b.npz")]) == 0
    import numpy as np

    drawn = np.load(tmp_path / "b.npz")
    assert drawn["x"].shape[0] == 4 and set(drawn["y"].tolist()) == {1} and list(drawn["classes"]) == ["a", "b", "c"]


def check_pixel_hist(tmp_path: Path, plugin: Path, capsys, monkeypatch) -> None:
    run = train(tmp_path, [plugin], "eval.every_steps=2", "eval.metrics=[pixel_hist]", "eval.samples=24",
                "eval.primary=pixel_hist")
    lines = [json.loads(s) for s in (run / "eval.jsonl").read_text().splitlines()]
    assert [e["step"] for e in lines] == [2, 4] and {e["metric"] for e in lines} == {"pixel_hist"}
    assert all(0 <= e["hist_l1"] <= 2 and 0 <= e["real_hist_l1"] <= 2 for e in lines)
    assert (run / "checkpoints" / "best.pt").exists()  # better="lower" picked the best checkpoint
    capsys.readouterr()
    assert main(["eval", str(run), "--metrics", "pixel_hist", "--samples", "12"]) == 0
    assert "pixel_hist" in capsys.readouterr().out
    # as the page shows it, without --plugin: the eval lines carry the metric's direction and floor
    assert main(["compare", str(tmp_path / "res"), "--metric", "hist_l1", "--no-plots",
                 "--out", str(tmp_path / "rep")]) == 0
    table = (tmp_path / "rep" / "runs.csv").read_text().splitlines()[0].split(",")
    assert "hist_l1" in table and "real_hist_l1" in table  # the floor beside the number


def check_wgan(tmp_path: Path, plugin: Path, capsys, monkeypatch) -> None:
    run = train(tmp_path, [plugin], "train.loss=wgan", "model.spectral_norm=true", name="w")
    base = train(tmp_path, [plugin], "model.spectral_norm=true", name="b")  # the same run with bce
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["loss"] == "wgan"
    assert records(run) != records(base) and records(run)[0][0] == records(base)[0][0] == 1
    # soft_targets=False: smoothing is refused by the plan, as for hinge
    assert main(["run", str(tmp_path / "w.yaml"), "--plugin", str(plugin), "--set", "train.loss=wgan",
                 "--set", "train.real_label_range=[0.9, 1.0]", "--dry-run"]) == 2
    assert "takes only hard targets" in capsys.readouterr().err


def check_flip(tmp_path: Path, plugin: Path, capsys, monkeypatch) -> None:
    run = train(tmp_path, [plugin], "train.diffaug=flip", name="f")
    base = train(tmp_path, [plugin], name="b")
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["diffaug"] == "flip"
    assert records(run) != records(base)  # D saw mirrored images


def check_csv_tracker(tmp_path: Path, plugin: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("CSV_TRACKER_DIR", str(tmp_path / "csv"))
    run = train(tmp_path, [plugin], "train.trackers=[csv]")
    assert summary(run)["trackers"] == ["csv"]
    with open(tmp_path / "csv" / f"c-{run.name}.csv", newline="") as f:
        rows = list(csv.reader(f))
    logged = [(int(r[0]), float(r[2])) for r in rows if r[1] == "loss_d"]
    assert logged == [(r["step"], r["loss_d"]) for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())]
    assert rows[-1] == ["4", "status", "completed"]


CHECKS = {"stripes.py": check_stripes, "tinymlp.py": check_tinymlp, "cmlp.py": check_cmlp,
          "pixel_hist.py": check_pixel_hist, "wgan.py": check_wgan, "flip.py": check_flip,
          "csv_tracker.py": check_csv_tracker}


def test_every_example_has_a_check_and_every_registry_an_example():
    found = examples()
    assert set(found) == set(CHECKS), "an example of docs/ without a check here, or a check without its example"
    kinds = {kind for code in found.values() for kind, _ in registered(code)}
    assert kinds == {"dataset", "model", "metric", "loss", "augment", "tracker"}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_the_example_is_listed_and_used_by_a_run(name: str, tmp_path: Path, capsys, monkeypatch):
    plugin = save(tmp_path, name)
    names = registered(plugin.read_text())
    assert names, f"{name} registers nothing"
    assert main(["list", "--plugin", str(plugin)]) == 0
    listed = capsys.readouterr().out.splitlines()
    for _, entry in names:
        line = next((s for s in listed if s.strip().startswith(entry + " ")), "")
        assert f"(plugin {plugin.resolve()})" in line, f"{entry} not listed as a plugin: {line!r}"
    CHECKS[name](tmp_path, plugin, capsys, monkeypatch)
