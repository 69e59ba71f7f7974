"""The one trainer: importable, used by the CLI, tests and suites alike."""
from __future__ import annotations

import math
import platform
import random
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from gan_bench import run_folder as rf
from gan_bench.config import Config, build_config
from gan_bench.data import load_data
from gan_bench.errors import GanBenchError
from gan_bench.models import GAN, build_model
from gan_bench.train import distributed, memory
from gan_bench.train.batches import BatchSource
from gan_bench.train.fast import AsyncScalars, Levers, adam, apply_levers, gan_step, match_state_layout
from gan_bench.train.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from gan_bench.train.watch import Watch


# one metrics.jsonl line, in this order
RECORD_KEYS = ("step", "epoch", "loss_d", "loss_g", "d_x", "d_g_z", "sigma", "sec_per_step", "img_per_sec")


class TrainingFailed(Exception):
    """The run stopped on its own (NaN/Inf loss); the reason is in summary.json (exit status 1)."""


class Interrupted(Exception):
    def __init__(self, signum: int, run_dir: Path) -> None:
        super().__init__(signum)
        self.signum, self.run_dir = signum, run_dir


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GanBenchError(f"train.device is {name!r} but no CUDA device is available; use auto or cpu")
    return torch.device(name)


def fixed_inputs(gan: GAN, cfg: Config, device: torch.device) -> tuple[torch.Tensor, Optional[torch.Tensor], int]:
    """The latent grid rendered at every snapshot: one row per class, or 8 x 8 without labels."""
    g = torch.Generator().manual_seed(cfg.train.seed + 12345)
    if gan.conditional or gan.per_class:
        k, n = gan.num_classes, cfg.train.grid_per_class
        z = torch.randn(k * n, gan.nz, generator=g)
        # row-major grid (row = class); per-class models want class-fastest order, see sample()
        return z.to(device), torch.arange(k).repeat_interleave(n).to(device), n
    return torch.randn(64, gan.nz, generator=g).to(device), None, 8


@torch.no_grad()
def generate(gan: GAN, z: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
    """G in eval mode (running BN statistics), so sampling never disturbs training state."""
    was = gan.G.training
    gan.G.eval()
    try:
        if gan.per_class:  # pairs take class-fastest batches: reorder row-major input, then restore
            k = gan.num_classes
            idx = torch.arange(len(y), device=y.device).view(k, -1).T.reshape(-1)
            return gan.G(z[idx], y[idx])[torch.argsort(idx)]
        return gan.G(z, y)
    finally:
        gan.G.train(was)


def train(cfg: Config, *, run_dir: Optional[Path] = None, resume: Optional[Path] = None) -> Path:
    """Train one run. A new run folder is made under cfg.out unless resuming one. Returns the folder.

    Under torchrun every process calls this with the same arguments and trains a shard of each global
    batch (train/distributed.py); rank 0 alone writes the run folder, whose path every rank returns.
    """
    with distributed.joined(pick_device(cfg.train.device)) as (world, device):
        return _train(cfg, run_dir=run_dir, resume=resume, world=world, device=device)


def _train(cfg: Config, *, run_dir: Optional[Path], resume: Optional[Path], world: distributed.World,
           device: torch.device) -> Path:
    # ---- setup: data, model, optimisers, run folder ------------------------------------------
    cpu_peak_reset = memory.reset_peaks(device)  # this run's peaks, not those of earlier runs in the process
    torch.manual_seed(cfg.train.seed), np.random.seed(cfg.train.seed), random.seed(cfg.train.seed)
    data = load_data(cfg.data)
    gan = build_model(cfg.model, data.spec).to(device)
    # speed levers for this device (bf16, channels_last, fused Adam, ...; fast.py)
    levers = Levers.for_device(device, compile=cfg.train.compile) if cfg.train.fast else Levers()
    apply_levers(gan, levers)  # in place: parameters, and state-dict keys, stay the same
    opt_g = adam(gan.G.parameters(), lr=cfg.train.lr_g, betas=cfg.train.betas, levers=levers)
    opt_d = adam(gan.D.parameters(), lr=cfg.train.lr_d, betas=cfg.train.betas, levers=levers)
    source = BatchSource(data.train, batch_size=cfg.train.batch_size, seed=cfg.train.seed,
                         per_class=gan.per_class, device=device, rank=world.rank, ranks=world.size)
    if not source.resident and world.is_main:
        print(f"gan-bench: the training data ({source.nbytes / 2**30:.1f} GiB) does not fit beside training "
              f"on {device}: each batch is copied from host memory (slower)", file=sys.stderr)
    total = source.steps_per_epoch * cfg.train.epochs
    total = min(total, cfg.train.max_steps) if cfg.train.max_steps else total
    step, prior_time, best = 0, 0.0, [math.inf]  # best: the primary metric of best.pt (lower is better)
    if resume is not None:
        run = Path(resume)  # rank 0 reads the checkpoint and hands it to the others
        ckpt = world.on_main(lambda: load_checkpoint(run / "checkpoints" / "last.pt", config_hash=cfg.hash()))
        gan.G.load_state_dict(ckpt["G"]), gan.D.load_state_dict(ckpt["D"])
        opt_g.load_state_dict(ckpt["opt_g"]), opt_d.load_state_dict(ckpt["opt_d"])
        match_state_layout(opt_g), match_state_layout(opt_d)
        step, prior_time, best[0] = ckpt["step"], ckpt.get("train_time", 0.0), ckpt.get("best", math.inf)
        set_rng_state(ckpt["rng"], device)
        if world.is_main:
            rf.remove_stale_temp_files(run)
            for records in ("metrics.jsonl", "events.jsonl", "eval.jsonl"):  # what will be logged again
                rf.truncate_jsonl(run / records, max_step=step)
    else:
        run = world.on_main(lambda: _new_run(cfg, run_dir))  # every rank learns rank 0's folder
    # G and D in DDP under torchrun; `gan` keeps the single-process modules the checkpoints hold
    step_gan = distributed.data_parallel(gan, world, sync_bn=cfg.train.sync_bn)
    z_fix, y_fix, nrow = fixed_inputs(gan, cfg, device)
    classes = data.spec.classes if (gan.conditional or gan.per_class) else None
    tb = _tensorboard(run) if cfg.train.tensorboard and world.is_main else None
    watch = Watch(run)
    per_pair = gan.num_classes if gan.per_class else 1

    def checkpoint() -> None:
        if not world.is_main:
            return
        save_checkpoint(run / "checkpoints" / "last.pt", {
            "G": gan.G.state_dict(), "D": gan.D.state_dict(), "opt_g": opt_g.state_dict(),
            "opt_d": opt_d.state_dict(), "step": step, "rng": rng_state(device), "config_hash": cfg.hash(),
            "config": cfg.to_dict(), "spec": vars(data.spec), "train_time": train_time(), "best": best[0]})

    def snapshot(epoch: int) -> None:
        if not world.is_main:
            return
        images = generate(gan, z_fix, y_fix)
        rf.save_png(run / "samples" / f"epoch_{epoch:04d}.png", rf.grid(images, nrow))
        watch.samples(step, images, bar.write)

    def evaluate(epoch: int) -> None:
        """Every eval.every epochs: metrics on the current G; the best by eval.primary -> best.pt.
        Every rank takes part (generation and features are sharded); rank 0 writes."""
        from gan_bench.metrics.evaluate import in_training

        # evaluation draws its own noise; fork_rng keeps the training trajectory (and resume) unchanged
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            values = in_training(gan, data, cfg, run, step)
        value = values.get(cfg.eval.primary)
        if value is not None and value < best[0]:
            best[0] = value
            if not world.is_main:
                return
            checkpoint()
            with rf.run_file(run / "checkpoints" / "best.pt") as tmp:
                shutil.copyfile(run / "checkpoints" / "last.pt", tmp)

    scalars = AsyncScalars(device if levers.async_log else torch.device("cpu"))
    failure: list[str] = []

    def flush(wait: bool = False) -> bool:
        """Write the records whose values reached the host; False on a non-finite loss."""
        for rec in scalars.ready(wait=wait):
            rec["loss_d"], rec["loss_g"] = rec["loss_d"] / per_pair, rec["loss_g"] / per_pair
            if not (math.isfinite(rec["loss_d"]) and math.isfinite(rec["loss_g"])):
                failure.append(f"non-finite loss at step {rec['step']} (loss_d={rec['loss_d']}, loss_g={rec['loss_g']})")
                return False
            if not world.is_main:
                continue
            rec = {k: rec[k] for k in RECORD_KEYS}
            rf.append_jsonl(run / "metrics.jsonl", rec)
            watch.record(rec, bar.write)
            bar.set_postfix(epoch=rec["epoch"], D=f"{rec['loss_d']:.3f}", G=f"{rec['loss_g']:.3f}",
                            img_s=f"{rec['img_per_sec'] or 0:.0f}", refresh=False)  # drawn at the next update
            if tb is not None:
                for k in ("loss_d", "loss_g", "d_x", "d_g_z", "img_per_sec"):
                    tb.add_scalar(k, rec[k] or 0.0, rec["step"])
        return True

    t_start = time.perf_counter()
    train_time = lambda: prior_time + time.perf_counter() - t_start  # noqa: E731

    # ---- signals: finish the step, checkpoint, say how to resume ------------------------------
    stop: list[int] = []
    # a signal inherited as ignored stays ignored: nohup, or a shell's background job, which a Ctrl-C at
    # the terminal must not stop (what Python does for SIGINT before any handler is installed)
    handlers = {s: signal.signal(s, lambda signum, _f: stop.append(signum)) for s in (signal.SIGINT, signal.SIGTERM)
                if signal.getsignal(s) is not signal.SIG_IGN}
    status, reason = "completed", None
    bar = _progress(cfg, total, step, show=world.is_main)
    last_log_t, last_log_step = time.perf_counter(), step
    try:
        gan.train()
        while step < total:
            epoch, i = divmod(step, source.steps_per_epoch)
            x, y = source.batch(epoch, i)
            b = len(x) * world.size  # images per step, all ranks (b * K for per-class pairs)
            sigma = _sigma(cfg, step)
            try:
                out = gan_step(step_gan, opt_d, opt_g, levers.input(x), y, sigma=sigma,
                               real_label_range=cfg.train.real_label_range, label_flip=cfg.train.label_flip,
                               amp_dtype=levers.amp_dtype, rank=world.rank, ranks=world.size)
            except torch.cuda.OutOfMemoryError:
                if world.distributed:  # the other ranks wait in a collective: end the job (torchrun stops them)
                    raise
                status, reason = "failed", _out_of_memory(cfg, data.spec.resolution, step + 1)
                break
            step += 1
            bar.update(1)
            # ---- records: scalars leave the device asynchronously on CUDA (no sync in the loop) ----
            if step % cfg.train.log_every == 0 or step == total:
                now = time.perf_counter()
                dt = (now - last_log_t) / max(1, step - last_log_step)
                last_log_t, last_log_step = now, step
                values = dict(loss_d=out.loss_d, loss_g=out.loss_g, d_x=torch.sigmoid(out.d_real).mean(),
                              d_g_z=torch.sigmoid(out.d_fake).mean())
                if world.distributed:  # means over equal shards: the global batch's numbers
                    values = dict(zip(values, world.mean(torch.stack([v.detach().float() for v in values.values()]))))
                scalars.push({"step": step, "epoch": epoch + 1, "sigma": sigma, "sec_per_step": dt,
                              "img_per_sec": b / dt if dt > 0 else None}, **values)
            healthy, stopping = flush(), bool(stop)
            if world.distributed:  # a signal or a NaN seen by one rank stops every rank at this same step
                healthy, stopping = world.agree(healthy, stopping)
                if stopping and not stop:
                    stop.append(signal.SIGTERM)
            if not healthy:
                break
            end_of_epoch = step % source.steps_per_epoch == 0 or step == total
            if end_of_epoch and ((epoch + 1) % cfg.train.snapshot_every == 0 or step == total):
                snapshot(epoch + 1)
            if end_of_epoch and cfg.eval.every and ((epoch + 1) % cfg.eval.every == 0 or step == total):
                evaluate(epoch + 1)
            if end_of_epoch or step % cfg.train.checkpoint_every == 0 or stopping:
                if not flush(wait=True):  # records up to the checkpoint are on disk before it is
                    break
                if not all(torch.isfinite(p).all() for p in gan.parameters()):
                    status, reason = "failed", f"non-finite weights at step {step}"
                    break
                checkpoint()
            if stopping:
                status = "interrupted"
                break
    except BaseException as e:
        for s, h in handlers.items():
            signal.signal(s, h)
        if world.distributed and distributed.peer_lost(e):
            raise distributed.PeerLost(
                f"rank {world.rank}: another process of this torchrun job died or stopped answering "
                f"({distributed.first_line(e)}); the checkpoints in {run / 'checkpoints'} are intact: resume with "
                f"`torchrun ... -m gan_bench run --resume {run}`") from None
        raise
    finally:
        bar.close()
    if failure:
        status, reason = "failed", failure[0]
    elif status != "failed" and not flush(wait=True):
        status, reason = "failed", failure[0]
    # ---- finish (rank 0): GIFs, plot, summary -----------------------------------------------
    if world.is_main:
        records = rf.read_jsonl(run / "metrics.jsonl")
        rf.write_gifs(run, classes, data.spec.resolution)
        if gan.per_class and status == "completed":  # per-class checkpoints, one pair each
            from gan_bench.models.classdcgan import export_pairs

            export_pairs(gan, run / "checkpoints" / "classes")
        rf.write_loss_plot(run, records)
        summary = _summary(cfg, gan, data, device, step, total, train_time(), records, status, reason)
        summary.update(memory.peaks(device, cpu_reset=cpu_peak_reset))
        summary["warnings"] = sorted(watch.warned)
        summary["best_" + cfg.eval.primary] = best[0] if math.isfinite(best[0]) else None
        summary["processes"] = world.size
        summary["levers"] = levers.record()  # precision and layout: say how the figures were made
        summary["data_on_device"] = source.resident
        rf.write_json(run / "summary.json", summary)
    for s, h in handlers.items():  # restored only now: a second Ctrl-C still gets a summary written
        signal.signal(s, h)
    if tb is not None:
        tb.close()
    if status == "failed":
        kept = (f"the last good checkpoint is kept in {run / 'checkpoints'}"
                if (run / "checkpoints" / "last.pt").exists() else "no checkpoint was written before it")
        raise TrainingFailed(f"run stopped: {reason}; {kept}")
    if stop:
        raise Interrupted(stop[0], run)
    return run


def _out_of_memory(cfg: Config, resolution: int, step: int) -> str:
    """The reason a run that ran out of GPU memory gives, with what to change."""
    return (f"out of GPU memory at step {step} (batch {cfg.train.batch_size}, {resolution}x{resolution}, "
            f"model width {cfg.model.width}): lower train.batch_size or model.width")


def _sigma(cfg: Config, step: int) -> float:
    s0, n = cfg.train.instance_noise, cfg.train.instance_noise_steps
    return s0 if n == 0 else s0 * max(0.0, 1.0 - step / n)


def _new_run(cfg: Config, run_dir: Optional[Path]) -> Path:
    run = run_dir or rf.new_run_dir(Path(cfg.out), cfg.name)
    rf.atomic_write_text(run / "config.yaml", cfg.to_yaml())
    return run


def _progress(cfg: Config, total: int, initial: int, *, show: bool = True):
    from tqdm import tqdm

    # into a log file or a pipe (nohup, a cluster job) a bar redrawn ten times a second is megabytes of
    # carriage returns: there, one update every 30 s
    return tqdm(total=total, initial=initial, desc=cfg.name, unit="step", disable=not (cfg.train.progress and show),
                dynamic_ncols=True, file=sys.stderr, mininterval=0.1 if sys.stderr.isatty() else 30)


def _tensorboard(run: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise GanBenchError("train.tensorboard is on but tensorboard is not installed; "
                            "pip install 'gan-bench[tensorboard]' or set train.tensorboard=false") from None
    return SummaryWriter(str(run / "tensorboard"))


def _summary(cfg: Config, gan: GAN, data, device, step, total, seconds, records, status, reason) -> dict[str, Any]:
    imgs = step * cfg.train.batch_size * (gan.num_classes if gan.per_class else 1)
    last = records[-1] if records else {}
    return {
        "status": status, "reason": reason, "name": cfg.name, "dataset": cfg.data.name, "model": cfg.model.name,
        "seed": cfg.train.seed, "config_hash": cfg.hash(), "steps": step, "total_steps": total,
        "epochs": step / max(1, total) * cfg.train.epochs if not cfg.train.max_steps else None,
        "train_seconds": seconds, "images_seen": imgs, "img_per_sec": imgs / seconds if seconds > 0 else None,
        "final_loss_d": last.get("loss_d"), "final_loss_g": last.get("loss_g"),
        "params_G": sum(p.numel() for p in gan.G.parameters()),
        "params_D": sum(p.numel() for p in gan.D.parameters()),
        "resolution": data.spec.resolution, "num_classes": data.spec.num_classes, "classes": data.spec.classes,
        "train_images": len(data.train), "device": _device_name(device), "torch": torch.__version__,
        "python": platform.python_version(),
    }


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def resume_config(run: Path) -> Config:
    """The config a run folder was started with (config.yaml), re-validated."""
    from gan_bench.config import read_yaml

    path = Path(run) / "config.yaml"
    if not path.exists():
        raise GanBenchError(f"{run} is not a run folder (no config.yaml); pass results/<config>/<id>")
    try:
        d = read_yaml(path)
    except GanBenchError:
        raise GanBenchError(f"{path} is malformed; this run folder cannot be resumed") from None
    return build_config([d])
