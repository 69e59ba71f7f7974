"""The gallery: one static HTML page over many runs (no JavaScript, no server, relative paths only).

Every image a run made (final grid, progress GIF, per-class GIFs, loss plot) is copied next to the
page under runs/<run path>/, so the gallery folder can be zipped, moved or served by any static
server. Images carry their sizes and loading="lazy", so a page of many runs opens quickly.
"""
from __future__ import annotations

import html
import re
import shutil
import time
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import quote

from PIL import Image

from gan_bench.report.compare import compute_of, pivot_grid, pivot_long, runs_table
from gan_bench.report import timing
from gan_bench.report.format import fmt
from gan_bench.report.plots import loss_curves, run_curves, throughput
from gan_bench.atomic import atomic_path, output_folder, write_text
from gan_bench.errors import GanBenchError
from gan_bench.metrics.registry import METRICS
from gan_bench.report.records import RunRecord, recorded_metrics, runs_under, to_stderr
from gan_bench.run import RunFolder
from gan_bench.run.files import PAD


def key_metrics() -> list[tuple[str, str]]:
    """(label, column) of the registry's key metrics, shown in the index and on the cards."""
    return [(e.info.label or e.name, e.info.key) for e in METRICS if e.info.headline]


def build_gallery(*, results: Path, out: Path, title: Optional[str] = None,
                  warn: Callable[[str], None] = to_stderr) -> Path:
    """Write out/index.html (and the images it shows) for every run under results; returns the page.
    warn: where the runs that cannot be read are named (load_runs)."""
    runs = runs_under(Path(results), warn=warn)
    with recorded_metrics(runs), output_folder(Path(out)) as out:  # recorded: a plugin's metric, unloaded
        return _write(runs, results, out, title)


def _write(runs: list[RunRecord], results: Path, out: Path, title: Optional[str]) -> Path:
    (out / "overview").mkdir(parents=True, exist_ok=True)
    table = runs_table(runs)
    overview = [p for p in (loss_curves([r for r in runs if r.history], out / "overview" / "losses.png")
                            if any(r.history for r in runs) else None,
                            throughput(table, out / "overview" / "throughput.png"),
                            _quality_vs_time(runs, out / "overview" / "quality_vs_time.png")) if p]
    title = title or f"gan-bench gallery: {Path(results).resolve().name}"
    metrics = [(label, col) for label, col in key_metrics() if any(col in r.evals for r in runs)]
    devices = sorted({str(r.summary.get("device")) for r in runs if r.summary.get("device")})
    datasets = sorted({r.dataset for r in runs})
    sub = (f"{len(runs)} runs · {len(datasets)} data sets · generated {time.strftime('%Y-%m-%d %H:%M')}"
           + (f" · {devices[0]}" if len(devices) == 1 else ""))
    nav = "".join(f"<a class=chip href='#{_id('ds', d)}'>{_e(d)}</a>" for d in datasets)
    sections = []
    for d in datasets:
        cards = "".join(_card(r, _copy_assets(r, out), metrics, out) for r in runs if r.dataset == d)
        sections.append(f"<section id='{_id('ds', d)}'><h2>{_e(d)}</h2>{cards}</section>")
    figures = "".join(_img(p, out, alt=p.stem, cls="plot") for p in overview)
    page = TEMPLATE.format(title=_e(title), sub=_e(sub), nav=nav, index=_index(runs, metrics),
                           pivot=_pivot(table, metrics), overview=figures, sections="".join(sections), css=CSS)
    write_text(out / "index.html", page)  # last: a page only over images that are all there
    return out / "index.html"


def _quality_vs_time(runs: list[RunRecord], path: Path) -> Optional[Path]:
    """compare's plot of the headline metric against training time, when runs were evaluated in training."""
    key = timing.curve_key(runs, None)
    return timing.plot(runs, key, path) if key else None


def _copy_assets(r: RunRecord, out: Path) -> dict:
    """Copy the run's images under out/runs/<rel>/, named as in the run folder (the final grid as
    final.png); returns {kind: path} of the copies."""
    dest = out / "runs" / r.rel
    (dest / RunFolder.GIFS).mkdir(parents=True, exist_ok=True)
    frames = r.folder.snapshots()
    pairs = {"final": frames[-1] if frames else None, "progress": r.folder.progress_path}
    found = {}
    for kind, src in pairs.items():
        if src is not None and src.exists():
            found[kind] = _copy(src, dest / (src.name if kind != "final" else "final.png"))
    plot, records = dest / RunFolder.LOSSES, r.folder.records_path("metrics")
    if r.history and not (plot.exists() and plot.stat().st_mtime >= records.stat().st_mtime):
        run_curves(r.history, plot)  # drawn for the card's size; the run's own losses.png is twice as wide
    if plot.exists():
        found["losses"] = plot
    found["classes"] = [(name, _copy(src, dest / RunFolder.GIFS / src.name)) for name, src in r.class_gifs()]
    return found


def last_frame(gif: Path) -> Path:
    """A PNG still of a GIF's last frame beside it (<name>.last.png): the page shows where training
    ended, with the animation, which starts from noise, one click away."""
    still = gif.with_suffix(".last.png")
    if not (still.exists() and still.stat().st_mtime >= gif.stat().st_mtime):
        with Image.open(gif) as im:
            im.seek(im.n_frames - 1)
            frame = im.convert("RGB")
        with atomic_path(still, suffix=".png") as tmp:
            frame.save(tmp)
    return still


def _copy(src: Path, dst: Path) -> Path:
    """An image of a run folder copied into the gallery (unless the copy is up to date). The source is
    checked first, so one that is not an image is named as the input it is; an OSError of the copy
    itself is the unwritable --out that output_folder reports."""
    try:
        s = src.stat()
        fresh = dst.exists() and dst.stat().st_size == s.st_size and dst.stat().st_mtime == s.st_mtime
        if not fresh:
            with Image.open(src) as im:  # a folder, an empty or a truncated file fails here
                im.verify()
    except (OSError, SyntaxError, ValueError) as e:
        raise GanBenchError(f"{src} is not a readable image ({type(e).__name__}); delete it, or rerun the run that "
                            f"made it") from None
    if not fresh:  # whole or not at all: a disk that fills mid-copy leaves the previous copy, or none
        with atomic_path(dst, suffix=dst.suffix) as tmp:
            shutil.copy2(src, tmp)
    return dst


def _memory(s: dict) -> str:
    """Peak memory of the run: "GPU 1,234 MiB, CPU 790 MiB" (what the summary has)."""
    parts = [f"{name} {s[key]:,.0f} MiB" for name, key in (("GPU", "peak_gpu_mb"), ("CPU", "peak_cpu_mb"))
             if isinstance(s.get(key), (int, float))]
    return ", ".join(parts) or "-"


def _card(r: RunRecord, assets: dict, metrics: list[tuple[str, str]], root: Path) -> str:
    s = r.summary
    res = int(s.get("resolution") or 64)
    scale = max(1, 64 // res)  # 28- and 32-pixel samples are shown at 2x, with sharp pixels
    facts = [("status", _badge(r.status)), ("steps", f"{fmt(s.get('steps'))} / {fmt(s.get('total_steps'))}"),
             *[(label, _e(fmt(r.evals.get(col)))) for label, col in metrics if col in r.evals],
             ("images / s", _e(fmt(s.get("img_per_sec")))), ("wall time", _e(_duration(s.get("train_seconds")))),
             ("params G / D", _e(f"{fmt(s.get('params_G'), 'params_G')} / {fmt(s.get('params_D'), 'params_D')}")),
             ("loss D / G, last step", _e(f"{fmt(s.get('final_loss_d'))} / {fmt(s.get('final_loss_g'))}")),
             *([(f"loss D / G, mean of steps {s['mean_loss_steps'][0]}-{s['mean_loss_steps'][1]}",
                 _e(f"{fmt(s.get('mean_loss_d'))} / {fmt(s.get('mean_loss_g'))}"))] if s.get("mean_loss_steps") else []),
             ("images seen", _e(fmt(s.get("images_seen")))),
             ("peak memory", _e(_memory(s))),
             ("device", _e(", ".join(str(v) for v in (s.get("device", ""), compute_of(s)) if v)))]
    if s.get("reason"):
        facts.append(("note", _e(str(s["reason"]))))
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    media = ""
    if "final" in assets:
        final_w = Image.open(assets["final"]).size[0]
        media += _fig(assets["final"], root, f"final samples, step {fmt(s.get('steps'))}", width=final_w * scale)
        if "progress" in assets:  # the animation starts from noise: it opens on a click, below the final grid
            media = (f"<div>{media}<details><summary>progress over {len(r.folder.snapshots())} snapshots "
                     f"(animation)</summary>{_img(assets['progress'], root, alt='progress', width=final_w * scale)}"
                     f"</details></div>")
    classes = "".join(_class_fig(p, root, name, width=_strip_width(p, res, scale)) for name, p in assets["classes"])
    classes = f"<div class=classes>{classes}</div>" if classes else ""
    loss = _img(assets["losses"], root, alt="losses", cls="plot") if "losses" in assets else ""
    return (f"<article class=run id='{_id('run', r.rel)}'><header><h3>{_e(r.model)} <span class=seed>seed "
            f"{r.seed}</span></h3><code>{_e(r.rel)}</code><a class=top href='#index'>index ↑</a></header>"
            f"<div class=body>{media}<div class=side><dl>{dl}</dl>{loss}</div></div>{classes}</article>")


def _strip_width(path: Path, res: int, scale: int) -> int:
    """Display width of a per-class strip: write_gifs enlarged it; show it at `scale` x the samples."""
    w, h = Image.open(path).size
    enlarged = max(1, round(h / (res + 2 * PAD)))
    return w // enlarged * scale


def _class_fig(gif: Path, root: Path, name: str, *, width: int) -> str:
    """A class's last frame, linked to its animation."""
    url = quote(gif.relative_to(root).as_posix())
    return (f"<figure><a href='{url}' title='play the animation'>{_img(last_frame(gif), root, alt=name, width=width)}"
            f"</a><figcaption>{_e(name)} <a href='{url}'>▶</a></figcaption></figure>")


def _fig(path: Path, root: Path, caption: str, *, width: int) -> str:
    return f"<figure>{_img(path, root, alt=caption, width=width)}<figcaption>{_e(caption)}</figcaption></figure>"


def _img(path: Path, root: Path, *, alt: str, width: Optional[int] = None, cls: str = "px") -> str:
    """An <img> with a URL relative to the gallery root, its display size, and lazy loading."""
    w, h = Image.open(path).size
    show_w = width or w
    url = quote(path.relative_to(root).as_posix())
    return (f"<img class={cls} src='{url}' alt='{_e(alt)}' width={show_w} height={round(h * show_w / w)} "
            f"loading=lazy decoding=async>")


def _pivot(table, metrics: list[tuple[str, str]]) -> str:
    """The headline metric (the first one the runs have) as data set x model, mean ± std over seeds."""
    if not metrics:
        return ""
    label, col = metrics[0]
    long = pivot_long(table, col)
    if long.empty:
        return ""
    grid = pivot_grid(long, col, style="html")  # cells and names already escaped
    head = "".join(f"<th>{m}</th>" for m in grid.columns)
    body = "".join(f"<tr><td>{ds}</td>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>"
                   for ds, row in zip(grid.index, grid.itertuples(index=False)))
    grid = f"<table><thead><tr><th>data set</th>{head}</tr></thead><tbody>{body}</tbody></table>"
    return (f"<section class=pivot><h2>{_e(label)} by data set and model</h2><p class=note>mean ± standard "
            f"deviation over seeds of completed runs; the best of each data set in bold</p>"
            f"<div class='scroll fit'>{grid}</div></section>")


def _index(runs: list[RunRecord], metrics: list[tuple[str, str]]) -> str:
    head = ["data set", "model", "seed", "status", "steps", *[label for label, _ in metrics],
            "images / s", "wall time", "params G + D"]
    rows = []
    for i, r in enumerate(runs):
        s = r.summary
        first = i == 0 or runs[i - 1].dataset != r.dataset  # a rule between data sets
        params = (s.get("params_G") or 0) + (s.get("params_D") or 0)
        cells = [_e(r.dataset) if first else "", f"<a href='#{_id('run', r.rel)}'>{_e(r.model)}</a>", str(r.seed), _badge(r.status),
                 _e(fmt(s.get("steps"))), *[_e(fmt(r.evals.get(col))) for _, col in metrics],
                 _e(fmt(s.get("img_per_sec"))), _e(_duration(s.get("train_seconds"))),
                 _e(fmt(params, "params_") if params else "")]
        rows.append(f"<tr{' class=first' if first else ''}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return ("<table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _badge(status: str) -> str:
    return f"<span class='badge {_e(status)}'>{_e(status)}</span>"


def _duration(seconds) -> str:
    if seconds is None:
        return ""
    s = float(seconds)
    return f"{s:.1f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def _id(kind: str, name: str) -> str:
    return f"{kind}-" + re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


TEMPLATE = """<!doctype html>
<html lang=en><head><meta charset=utf-8><meta name=viewport content="width=device-width, initial-scale=1">
<title>{title}</title><link rel=icon href="data:,"><style>{css}</style></head>
<body><header class=page><h1>{title}</h1><p>{sub}</p><nav>{nav}</nav></header>
<main><section id=index><h2>Runs</h2><div class=scroll>{index}</div></section>{pivot}
<section class=overview><h2>Training at a glance</h2><div class=plots>{overview}</div></section>{sections}</main>
<footer>made by <code>gan-bench gallery</code>; every number comes from the run folders' summaries and
records</footer></body></html>
"""

CSS = """
:root{--bg:#f4f5f7;--card:#fff;--ink:#1d2330;--muted:#6b7280;--line:#e3e6eb;--accent:#2f6fdf}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif}
header.page{background:#161b26;color:#f3f4f6;padding:28px 28px 18px}
header.page h1{margin:0;font-size:26px;font-weight:650;letter-spacing:-.01em}
header.page p{margin:6px 0 14px;color:#aab1bf}
nav{display:flex;flex-wrap:wrap;gap:8px}
.chip{color:#e5e9f2;background:#2a3142;border-radius:999px;padding:3px 12px;text-decoration:none;font-size:13px}
.chip:hover{background:var(--accent)}
main{max-width:1640px;margin:0 auto;padding:8px 28px 40px}
h2{font-size:20px;margin:34px 0 14px;padding-bottom:6px;border-bottom:2px solid var(--line)}
.scroll{overflow-x:auto;background:var(--card);border-radius:10px;box-shadow:0 1px 3px #0001}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:6px 10px;text-align:right;border-bottom:1px solid var(--line);white-space:nowrap}
th{background:#f9fafb;color:var(--muted);font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.03em}
#index th:nth-child(-n+4),#index td:nth-child(-n+4),.pivot th:first-child{text-align:left}
tbody tr:hover{background:#f5f8ff}
a{color:var(--accent);text-decoration:none}
.plots{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
.plots img.plot{background:#fff;border-radius:10px;box-shadow:0 1px 3px #0001;padding:8px;max-width:calc(50% - 8px);height:auto}
@media (max-width:1100px){.plots img.plot{max-width:100%}}
tr.first td{border-top:2px solid #cfd4dc}
.fit{display:inline-block;max-width:100%}
.pivot th{text-transform:none;font-size:13px;color:var(--ink);text-align:right}
.pivot td{padding:7px 22px}.pivot td:first-child{font-weight:600;text-align:left}
.note{color:var(--muted);margin:-8px 0 10px;font-size:13px}
article.run{background:var(--card);border-radius:12px;box-shadow:0 1px 3px #0002;margin:0 0 22px;padding:16px 20px}
article.run header{display:flex;align-items:baseline;gap:14px;border-bottom:1px solid var(--line);padding-bottom:10px;margin-bottom:14px}
article.run h3{margin:0;font-size:18px}
.seed{color:var(--muted);font-weight:400;font-size:15px}
article.run code{color:var(--muted);font-size:12px}
.top{margin-left:auto;font-size:12px}
.body{display:flex;flex-wrap:wrap;gap:22px;align-items:flex-start}
.side{flex:1 1 400px;max-width:560px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 16px;margin:0 0 12px}
dt{color:var(--muted)}dd{margin:0;font-variant-numeric:tabular-nums}
figure{margin:0}
figcaption{color:var(--muted);font-size:12.5px;margin-top:4px;text-align:center}
img.px{image-rendering:pixelated;display:block;background:#000;border-radius:4px}
img.plot{display:block;max-width:100%;height:auto}
.classes{display:flex;flex-wrap:wrap;gap:14px 22px;margin-top:16px;padding-top:14px;border-top:1px dashed var(--line)}
.classes figcaption{font-size:13.5px;color:var(--ink);font-weight:550}
.badge{display:inline-block;border-radius:999px;padding:1px 9px;font-size:12px;font-weight:600}
.badge.completed{background:#dcf5e4;color:#176b36}.badge.interrupted{background:#fdf0d2;color:#8a5a00}
.badge.failed{background:#fde0e0;color:#a32020}
footer{color:var(--muted);font-size:12px;text-align:center;padding:20px}
details summary{cursor:pointer;color:var(--accent);font-size:12.5px;margin:6px 0}
figcaption a{margin-left:4px}
"""
