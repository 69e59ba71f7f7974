"""The `gan-bench` command: parses arguments, calls the library, turns errors into one line."""
from __future__ import annotations

import argparse
import importlib
import math
import sys
from pathlib import Path
from typing import Optional, Sequence

from gan_bench import args
from gan_bench.errors import GanBenchError, Interrupted, TrainingFailed


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, status 2
        raise GanBenchError(f"{message} (see `{self.prog} --help`)")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="gan-bench", description="Train and compare GANs across data sets.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="train one config")
    r.add_argument("config", nargs="?", type=args.path, help="YAML config (deltas over the defaults)")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a key, e.g. train.epochs=5")
    r.add_argument("--out", type=args.path_text, help="results folder (default: the config's `out`, results/)")
    r.add_argument("--resume", type=args.path, metavar="RUN",
                   help="continue a run folder from its last checkpoint; with --set train.epochs=N (or train.max_steps, "
                        "train.max_minutes), train a run longer, complete ones included")
    r.add_argument("--dry-run", action="store_true", help="check the config, print it and the run plan, and exit")

    sub.add_parser("list", help="data sets, models, metrics, losses, augmentations, trackers and shipped configs")

    s = sub.add_parser("sample", help="draw images from a trained run")
    s.add_argument("run", type=args.path)
    s.add_argument("--label", help="class name (conditional and per-class models)")
    s.add_argument("-n", type=int, default=64, help="images (per class when no --label is given)")
    s.add_argument("--out", type=args.path, required=True, help="a .png grid or an .npz (x, y, classes)")
    s.add_argument("--seed", type=args.seed, default=0)
    s.add_argument("--checkpoint", default="last", help="last or best")
    r.set_defaults(func=cmd_run)
    sub.choices["list"].set_defaults(func=cmd_list)
    s.set_defaults(func=cmd_sample)
    # Other command groups live beside the code they drive; each module adds its own sub-commands.
    for module in COMMAND_MODULES:
        importlib.import_module(module).register(sub)
    _add_plugin_option(p)
    return p


def _add_plugin_option(p: argparse.ArgumentParser) -> None:
    """--plugin on every command (for `run` and `suite` it is recorded in the runs' configs too)."""
    groups = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
    for child in (c for g in groups for c in dict.fromkeys(g.choices.values())):
        _add_plugin_option(child)
    if not groups:
        p.add_argument("--plugin", action="append", default=[], metavar="FILE_OR_MODULE",
                       help="a .py file or module registering data sets, models, metrics, ... (repeatable)")


def cmd_run(a: argparse.Namespace) -> int:
    from gan_bench.config import load_config
    from gan_bench.run import RunFolder
    from gan_bench.train.budget import extend
    from gan_bench.train.loop import train
    from gan_bench.train.plan import make_plan

    if a.resume is not None:
        if a.config is not None or a.plugin or a.out:
            raise GanBenchError("--resume continues a run in its own folder, with its own config and the plugins it "
                                "records; drop the config file, --out and --plugin (--set may raise its budget: "
                                "train.epochs=N)")
        run = RunFolder(a.resume)
        cfg = run.read_config()
        if a.set:  # train longer: a larger budget only, checked against the steps trained when loaded
            cfg = extend(cfg, a.set)
        summary = run.read_summary() if run.has_summary() else {}
        if summary.get("status") == "completed" and not a.set and not a.dry_run:
            print(f"{run} is complete ({summary.get('steps')} steps); nothing to resume. Evaluate it with "
                  f"`gan-bench eval {run}`, or train it longer with `gan-bench run --resume {run} --set "
                  f"train.epochs=N`")
            return 0
    else:
        if a.config is None:
            raise GanBenchError("give a config file, e.g. `gan-bench run configs/demo.yaml`, or --resume RUN")
        cfg = load_config(a.config, a.set, plugins=a.plugin)
        if a.out:
            cfg.out = a.out
    plan = make_plan(cfg)  # every check that needs no data, before anything is read or written
    if a.dry_run:
        print(plan.describe(), end="")
        return 0
    run = train(plan, resume=a.resume)
    print(f"run finished: {run}")
    return 0


def catalog() -> dict[str, list[dict]]:
    """What `gan-bench list` shows of each registry, one row (a dict) per entry; the documentation's
    reference pages render the same rows, so the listing and the manual cannot disagree."""
    from gan_bench import plugins
    from gan_bench.data import DATASETS
    from gan_bench.models import MODELS
    from gan_bench.metrics import METRICS
    from gan_bench.registry import first_doc_line
    from gan_bench.train.augment import AUGMENTS
    from gan_bench.train.losses import LOSSES
    from gan_bench.train.trackers import TRACKERS

    def row(e, obj=None, **columns) -> dict:  # plugin: the file or module an entry comes from ("" built in)
        return {"name": e.name, **columns, "plugin": plugins.origin(e.obj if obj is None else obj) or ""}

    return {
        "data sets": [row(e, resolutions="/".join(str(r) for r in e.info.resolutions) or "any",
                          labels={True: "labelled", False: "unlabelled", None: "labels optional"}[e.info.labelled],
                          description=e.info.description, options=e.info.options) for e in DATASETS],
        "models": [row(e, resolutions="/".join(str(r) for r in e.info.resolutions),
                       kind="per-class pairs" if e.info.per_class else "conditional" if e.info.conditional
                       else "unconditional", description=e.info.description, options=e.info.options) for e in MODELS],
        "metrics": [row(e, kind=e.info.kind, better=e.info.better, default=e.info.default,
                        needs_draws_class=e.info.needs_draws_class, needs_labels=e.info.needs_labels,
                        floor=e.info.floor, headline=e.info.headline, description=first_doc_line(e.obj))
                    for e in METRICS],
        "losses": [row(e, e.obj.d, description=e.info.description) for e in LOSSES],
        "augmentations": [row(e, description=e.info.description) for e in AUGMENTS],
        "trackers": [row(e, description=e.info.description) for e in TRACKERS],
    }


def cmd_list(_: argparse.Namespace) -> int:
    from gan_bench import plugins
    from gan_bench.config import option_lines

    def src(r: dict) -> str:
        return f" (plugin {r['plugin']})" if r["plugin"] else ""

    rows = catalog()
    print("data sets:")
    for r in rows["data sets"]:
        print(f"  {r['name']:14s} {r['resolutions'] + ' px':12s} {r['labels']:16s} {r['description']}{src(r)}")
        for line in option_lines("data", r["options"]):  # its own keys
            print(f"  {'':14s} {line}")
    print("models:")
    for r in rows["models"]:
        print(f"  {r['name']:14s} {r['resolutions'] + ' px':12s} {r['kind']:16s} {r['description']}{src(r)}")
        for line in option_lines("model", r["options"]):
            print(f"  {'':14s} {line}")
    print("metrics (eval.metrics; * opt-in):")
    for r in rows["metrics"]:
        opt = "" if r["default"] else " *"
        print(f"  {r['name'] + opt:20s} {r['kind']:9s} {r['better'] + ' is better':16s} {r['description']}{src(r)}")
    for title, key in (("losses (train.loss)", "losses"), ("augmentations (train.diffaug)", "augmentations"),
                       ("trackers (train.trackers)", "trackers")):
        print(f"{title}:")
        for r in rows[key]:
            print(f"  {r['name']:14s} {r['description']}{src(r)}")
    if plugins.loaded():
        print("plugins:")
        for p in plugins.loaded():
            print(f"  {p.source}" + (f"  sha256 {p.sha256[:12]}" if p.sha256 else ""))
    # the configs beside the package (a clone's configs/), or those of the folder the command runs in
    shipped = Path(__file__).resolve().parents[1] / "configs"
    configs = sorted(Path("configs").glob("*.yaml")) or sorted(shipped.glob("*.yaml"))
    if configs:
        print("configs:")
        for c in configs:
            print(f"  {c}")
    return 0


def cmd_sample(a: argparse.Namespace) -> int:
    from gan_bench.run import RunFolder
    from gan_bench.run.sampling import (check_sample_size, check_samples_path, load_generator, sample_images,
                                        write_samples)

    if a.n < 1:
        raise GanBenchError(f"-n must be at least 1, got {a.n}")
    check_samples_path(a.out)  # before the model is loaded or a single image made
    gan, _ = load_generator(RunFolder(a.run), checkpoint=a.checkpoint)
    check_sample_size(gan, n=a.n, label=a.label, png=Path(a.out).suffix == ".png")
    x, y = sample_images(gan, n=a.n, label=a.label, seed=a.seed)
    labelled = y is not None and a.label is None  # one row per class
    write_samples(a.out, x, y, gan.spec.classes, nrow=a.n if labelled else max(1, math.isqrt(a.n)),
                  row_labels=gan.spec.classes if labelled else None)
    print(f"wrote {len(x)} images to {a.out}")
    return 0


# Modules with a `register(subparsers)` function adding their sub-commands (set_defaults(func=...)).
COMMAND_MODULES: list[str] = ["gan_bench.report.cli", "gan_bench.metrics.cli", "gan_bench.suite.cli", "gan_bench.sweep.cli"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # Ctrl-C outside the training loop (inside it, Ctrl-C ends in a checkpoint)
        print("gan-bench: interrupted; files are written whole or not at all, so nothing is half-written: "
              "run the command again, or continue a run folder with `gan-bench run --resume RUN`", file=sys.stderr)
        return 130


def _main(argv: Optional[Sequence[str]]) -> int:
    try:
        ns = _parser().parse_args(argv)
        from gan_bench import plugins

        plugins.installed()  # installed packages' plugins, as pytest loads its entry points
        plugins.load(ns.plugin)  # before the command: every registry name and config key they add is known
        return ns.func(ns)
    except GanBenchError as e:
        print(f"gan-bench: error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"gan-bench: interrupted; checkpoint saved. Resume with: gan-bench run --resume {e.run_dir}",
              file=sys.stderr)
        return 128 + e.signum
    except TrainingFailed as e:
        print(f"gan-bench: failed: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
