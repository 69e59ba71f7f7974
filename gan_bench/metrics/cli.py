"""`gan-bench eval RUN`, `gan-bench score FAKE REAL` and `gan-bench classifier train`: thin wrappers over
evaluate.py, score.py and classifier.py."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from gan_bench import args
from gan_bench.errors import GanBenchError
from gan_bench.metrics import classifier as C
from gan_bench.registry import first_doc_line


WEIGHTS_HELP = ("torch-fidelity's pt_inception-2015-12-05-6726825d.pth, which also gives inception_is (default: "
                "the offline network of the `inception` extra)")


def register(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("eval", help="metrics of a trained run, appended to its eval records")
    e.add_argument("run", type=args.path, nargs="?", help="a run folder, results/<config>/<id>")
    e.add_argument("--metrics", help="comma-separated names (default: all that apply); "
                                     "see `gan-bench eval --list`")
    e.add_argument("--samples", type=args.samples, default=None,
                   help="generated images, class-balanced (default 10000); the real reference is the test split")
    e.add_argument("--checkpoint", default="last", choices=["last", "best"])
    e.add_argument("--g", default="ema", choices=["ema", "raw"],
                   help="a train.ema run's G: the weight average (default) or the raw G")
    e.add_argument("--inception-weights", type=args.path, metavar="PATH", help=WEIGHTS_HELP)
    e.add_argument("--device", type=args.device, default="auto", help="auto, cpu, cuda or cuda:N")
    e.add_argument("--seed", type=args.seed, default=0, help="seed of the generated latents")
    e.add_argument("--classifier-epochs", type=_epochs, default=C.EPOCHS, help="training epochs of the evaluation network")
    e.add_argument("--cache-dir", type=args.path, help="evaluation networks (default: <data.root>/.eval_nets)")
    e.add_argument("--list", action="store_true", help="list the metrics and exit")
    e.set_defaults(func=cmd_eval)

    s = sub.add_parser("score", help="metrics of two image sets (folders or .npz), e.g. the Inception FID of "
                                     "images made by another tool")
    s.add_argument("fake", type=args.path, help="the images to score: a folder of images or an .npz (x uint8)")
    s.add_argument("real", type=args.path, help="the reference images: a folder or an .npz")
    s.add_argument("--metrics", help="comma-separated names (default: inception_fid,inception_kid; with --dataset "
                                     "that data set's default metrics); see `gan-bench eval --list`")
    s.add_argument("--samples", type=args.samples, default=None, help="images of each set (seeded subset; default all)")
    s.add_argument("--dataset", help="compute the domain metrics (fd, kid, ...) in this data set's evaluation network")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a data key of --dataset, e.g. data.path=x.npz")
    s.add_argument("--json", action="store_true", help="print one JSON object of the numbers on stdout")
    s.add_argument("--inception-weights", type=args.path, metavar="PATH", help=WEIGHTS_HELP)
    s.add_argument("--device", type=args.device, default="auto", help="auto, cpu, cuda or cuda:N")
    s.add_argument("--seed", type=args.seed, default=0, help="seed of the --samples subsets and of KID's subsets")
    s.add_argument("--classifier-epochs", type=_epochs, default=C.EPOCHS, help="training epochs of the evaluation network")
    s.add_argument("--cache-dir", type=args.path,
                   help="evaluation networks and REAL's Inception features (default: <data.root>/.eval_nets with "
                        "--dataset, else no cache)")
    s.set_defaults(func=cmd_score)

    c = sub.add_parser("classifier", help="the evaluation networks of data sets")
    csub = c.add_subparsers(dest="classifier_command", required=True)
    t = csub.add_parser("train", help="train (or load from cache) a data set's evaluation network")
    t.add_argument("--dataset", help="data set name (data.name), e.g. quickdraw, mnist, shapes")
    t.add_argument("--config", type=args.path, help="a run config whose data section to use")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key, e.g. data.path=x.npz")
    t.add_argument("--epochs", type=_epochs, default=C.EPOCHS, help="training epochs of the network")
    t.add_argument("--device", type=args.device, default="auto", help="auto, cpu, cuda or cuda:N")
    t.add_argument("--cache-dir", type=args.path, help="default: <data.root>/.eval_nets")
    t.set_defaults(func=cmd_classifier_train)


MAX_EPOCHS = 1000  # an evaluation network converges in a few epochs (C.EPOCHS); more than this is a typo


def _epochs(text: str) -> int:
    value = args.positive(text)
    if value > MAX_EPOCHS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_EPOCHS:,}, got {value:,} (the default is {C.EPOCHS})")
    return value


def cmd_eval(a: argparse.Namespace) -> int:
    from gan_bench.metrics import METRICS
    from gan_bench.metrics.evaluate import DEFAULT_SAMPLES, eval_run
    from gan_bench.run import RunFolder

    if a.list:
        given = [w for w, on in (("RUN", a.run is not None), ("--metrics", a.metrics is not None)) if on]
        if given:
            raise GanBenchError(f"--list lists the metrics and evaluates nothing, so {' and '.join(given)} would be "
                                f"ignored; drop --list to evaluate")
        for entry in METRICS:
            m = entry.info
            needs = "class model" if m.needs_draws_class else "labels" if m.needs_labels else ""
            doc = first_doc_line(entry.obj)  # a plugin's may have none
            print(f"  {entry.name:19s} {m.kind:9s} {m.better + ' is better':17s} "
                  f"{needs or '-':12s} {'' if m.default else '(opt-in) '}{doc}")
        return 0
    if a.run is None:
        raise GanBenchError("give a run folder, e.g. `gan-bench eval results/demo/<id>` (or --list)")
    if a.inception_weights is not None:
        from gan_bench.metrics.inception import check_weights

        check_weights(a.inception_weights)  # a corrupt file fails now, before any network is trained
    unwritable = RunFolder(a.run).cannot_append("eval") if RunFolder(a.run).is_run() else None
    if unwritable:  # before minutes of evaluation networks and metrics, not after
        raise GanBenchError(f"cannot add evaluation records to {RunFolder(a.run).records_path('eval')} ({unwritable}); "
                            f"make it writable, or evaluate a copy of the run folder in a writable place")
    samples = DEFAULT_SAMPLES if a.samples is None else a.samples
    names = [n.strip() for n in a.metrics.split(",") if n.strip()] if a.metrics is not None else None
    if names == []:
        raise GanBenchError("--metrics is empty; give names such as fd,kid or leave it out for all that apply")
    skipped: list[str] = []
    records = eval_run(a.run, metrics=names, samples=samples, checkpoint=a.checkpoint, seed=a.seed,
                       device=a.device, cache_dir=a.cache_dir, inception_weights=a.inception_weights,
                       classifier_epochs=a.classifier_epochs, g=a.g, skipped=skipped.append)
    if names and not records and skipped:  # every metric asked for by name was skipped: the command failed
        raise GanBenchError("; ".join(skipped))
    for line in skipped:
        print(line, file=sys.stderr)
    print_table(records)
    print(f"{len(records)} metric line(s) appended to {RunFolder(a.run).records_path('eval')}")
    return 0


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def print_table(records: list[dict[str, Any]]) -> None:
    """One row per metric: headline number, then its other scalar numbers (per-class ones are in the file)."""
    from gan_bench.metrics.evaluate import headline
    from gan_bench.metrics.registry import METRICS

    if not records:
        print("no metric applied")
        return
    meta_keys = {"metric", "step", "checkpoint", "g", "samples", "classifier", "classifier_test_acc"}
    print(f"{'metric':14s} {'value':>10s}  details")
    for r in records:
        key = METRICS.info(r["metric"]).key
        rest = ", ".join(f"{k}={_fmt(v)}" for k, v in r.items()
                         if k not in meta_keys and k != key and not isinstance(v, dict))
        print(f"{r['metric']:14s} {_fmt(headline(r['metric'], r)):>10s}  {rest}")
    r = records[0]
    clf = next((x for x in records if "classifier" in x), None)
    n = next((x["samples"] for x in records if "samples" in x), None)
    net = (f"; evaluation network {clf['classifier']} (test accuracy {clf['classifier_test_acc']:.2%})"
           if clf else "")
    g = {"ema": ", G's weight average", "raw": ", the raw G"}.get(r.get("g"), "")
    print(f"step {r['step']} ({r['checkpoint']}{g})" + (f", {n} generated images" if n else "") + net)


def cmd_score(a: argparse.Namespace) -> int:
    from gan_bench.config import load_config
    from gan_bench.metrics.evaluate import default_cache_dir
    from gan_bench.metrics.inception import check_weights
    from gan_bench.metrics.registry import METRICS
    from gan_bench.metrics.score import score
    from gan_bench.run.world import pick_device

    if a.set and a.dataset is None:
        raise GanBenchError("--set changes the data set of --dataset; name it with --dataset NAME")
    if a.inception_weights is not None:
        check_weights(a.inception_weights)
    names = [n.strip() for n in a.metrics.split(",") if n.strip()] if a.metrics is not None else None
    if names == []:
        raise GanBenchError("--metrics is empty; give names such as inception_fid,fd or leave it out")
    data, cache = None, a.cache_dir
    if a.dataset is not None:
        cfg = load_config(None, [f"data.name={a.dataset}", *a.set])
        data, cache = cfg.data, a.cache_dir or default_cache_dir(cfg)
    skipped: list[str] = []
    results = score(a.fake, a.real, metrics=names, samples=a.samples, data=data, seed=a.seed,
                    device=pick_device(a.device), cache_dir=cache, inception_weights=a.inception_weights,
                    classifier_epochs=a.classifier_epochs, skipped=skipped.append)
    for line in skipped:
        print(line, file=sys.stderr)
    if a.json:
        print(json.dumps({"fake": str(a.fake), "real": str(a.real), "dataset": a.dataset, "metrics": results}))
        return 0
    print(f"{'metric':20s} {'value':>10s}  details")
    for name, r in results.items():
        key = METRICS.info(name).key
        rest = ", ".join(f"{k}={_fmt(v)}" for k, v in r.items() if k != key and not isinstance(v, (dict, list)))
        print(f"{name:20s} {_fmt(r[key]):>10s}  {rest}")
    return 0


def cmd_classifier_train(a: argparse.Namespace) -> int:
    from gan_bench.config import load_config
    from gan_bench.data import load_data
    from gan_bench.metrics.classifier import train_classifier
    from gan_bench.metrics.context import stderr_line
    from gan_bench.metrics.evaluate import default_cache_dir
    from gan_bench.run.world import pick_device

    if a.dataset is None and a.config is None and not any(s.startswith("data.") for s in a.set):
        raise GanBenchError("say which data: --dataset NAME, --config FILE or --set data.name=...")
    other = next((s for s in a.set if not s.strip().startswith("data.")), None)
    if other is not None:  # the network is of a data set: any other key would be read and ignored
        raise GanBenchError(f"--set {other!r}: an evaluation network reads only the data section; give data.* keys "
                            f"(data.path=x.npz, data.resolution=32, ...)")
    overrides = ([f"data.name={a.dataset}"] if a.dataset is not None else []) + list(a.set)
    cfg = load_config(a.config, overrides)
    splits = load_data(cfg.data)
    clf = train_classifier(splits, epochs=a.epochs, device=pick_device(a.device),
                           cache_dir=a.cache_dir or default_cache_dir(cfg), log=stderr_line)
    info = clf.info
    what = "rotation-prediction accuracy" if info["task"] == "rotation" else "test accuracy"
    print(f"{splits.name}: {what} {info['test_acc']:.2%} on {info['test_images']} test images "
          f"(trained on {info['train_images']}, {a.epochs} epochs)")
    print("  per class: " + ", ".join(f"{k} {v:.1%}" for k, v in info["per_class_acc"].items()))
    print(f"  cached as {clf.path}")
    return 0
