"""Sub-commands `compare` and `gallery` (a gan_bench.cli plug-in)."""
from __future__ import annotations

import argparse

from gan_bench import args


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("compare", help="tables (Markdown, CSV, HTML) and plots over run folders")
    c.add_argument("results", type=args.path, help="folder holding run folders (searched recursively)")
    c.add_argument("--metric", help="column of the data set x model pivot (fd, kid, img_per_sec, ...; default: "
                                    "the first key metric the runs are evaluated with, else img_per_sec)")
    c.add_argument("--out", type=args.path, required=True, help="folder for the tables and plots")
    c.add_argument("--no-plots", action="store_true", help="tables only")
    c.add_argument("--target", action="append", default=[], metavar="[DATASET:]METRIC=VALUE",
                   help="quality of the time-to-quality table, e.g. cond_acc=0.8 or mnist:fd=20 (repeatable; "
                        "default per data set: the final value of its worst model)")
    c.set_defaults(func=cmd_compare)

    g = sub.add_parser("gallery", help="a static HTML page of every run's samples, GIFs and numbers")
    g.add_argument("results", type=args.path, help="folder holding run folders (searched recursively)")
    g.add_argument("--out", type=args.path, required=True, help="gallery folder; open <out>/index.html")
    g.add_argument("--title", help="page title (default: the results folder's name)")
    g.set_defaults(func=cmd_gallery)


def cmd_compare(a: argparse.Namespace) -> int:
    from gan_bench.report.compare import compare

    files = compare(results=a.results, out=a.out, metric=a.metric, plots=not a.no_plots, targets=a.target,
                    say=print, check_targets=True)
    print(f"wrote {len(files)} files to {a.out}/: " + ", ".join(f.name for f in files))
    return 0


def cmd_gallery(a: argparse.Namespace) -> int:
    from gan_bench.report.gallery import build_gallery

    page = build_gallery(results=a.results, out=a.out, title=a.title)
    print(f"gallery: {page} (open it in a browser; no server needed)")
    return 0
