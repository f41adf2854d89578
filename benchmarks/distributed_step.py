"""Time per training step of the tiled (multi-process) trainer: 1 vs N processes, one command.

    OMP_NUM_THREADS=1 python benchmarks/distributed_step.py                  # CPU, 256^2, 1 vs 2 processes
    python benchmarks/distributed_step.py --device cuda --nprocs 1           # the 1-GPU figure

For each repeat and each process count (interleaved, so a change in machine load hits
both), it launches ``torchrun --standalone --nproc_per_node N`` on this file in
``--worker`` mode: the chromatin benchmark problem at ``--grid`` with the mollifier
engine, ``--steps`` Adam steps of :func:`mollifier.inverse.train` (``distributed=True``:
with N > 1 the grid is tiled over the ranks). The time of a step is read from the run's
history (the first two steps are dropped: the first also measures peak memory). It
prints one line per run and a summary, and writes all of it as JSON to ``--out``.
Each process uses ``$OMP_NUM_THREADS`` threads (set it; 1 gives one core per process).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SKIP = 2  # first steps left out of the timing (memory profiling, warm-up)


def _median_time(fn, repeats: int, sync) -> float:
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def halo_probe(model, grid_rows: int, parts: int, sync, repeats: int = 9) -> dict:
    """Field backbone forward + backward on one slab's rows, with and without its halo rows.

    The difference is what the halo costs a rank per step (the layer's valid convolution
    has the same output size either way). The two are timed alternately, so a change in
    machine load affects both.
    """
    from mollifier.distributed import TiledDerivatives, make_slabs

    tile = TiledDerivatives(model.engine, make_slabs(grid_rows, parts, model.engine.stencil_halo[0])[0])
    q = next(model.parameters())
    coords = {h: tile.coords(with_halo=h, dtype=q.dtype, device=q.device) for h in (True, False)}

    def run(with_halo: bool) -> None:
        model.zero_grad(set_to_none=True)
        model.field(coords[with_halo]).sum().backward()

    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(repeats):
        for with_halo in (False, True):
            times[with_halo].append(_median_time(lambda: run(with_halo), 1, sync))
    own, halo = statistics.median(times[False]), statistics.median(times[True])
    return {"parts": parts, "rows": tile.slab.rows, "halo_rows_per_side": tile.slab.halo,
            "backbone_seconds_own_rows": own, "backbone_seconds_with_halo": halo, "halo_seconds": halo - own}


def allreduce_probe(model, ctx, sync, repeats: int = 20) -> float:
    """Time of one all-reduce of a gradient-sized buffer, ranks already in step (no waiting)."""
    import torch
    import torch.distributed as dist

    params = list(model.parameters())
    buf = torch.zeros(sum(q.numel() for q in params), dtype=params[0].dtype, device=params[0].device)
    dist.barrier()
    return _median_time(lambda: dist.all_reduce(buf), repeats, sync)


def worker(args: argparse.Namespace) -> None:
    import torch

    from mollifier.distributed import session
    from mollifier.inverse import TrainConfig, train
    from mollifier.problems import make_problem

    with session(device=args.device) as ctx:
        problem = make_problem("chromatin", grid=args.grid, noise=0.05, seed=0)
        config = TrainConfig(steps=args.steps, engine="mollifier", device=args.device, log_every=0, checkpoint_every=0)
        result = train(problem, config, distributed=True)
        device = next(result.model.parameters()).device
        sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
        probe = allreduce_probe(result.model, ctx, sync) if ctx.is_distributed else None
        if ctx.is_main:
            seconds = [h["seconds"] for h in result.history[SKIP:]]
            record = {
                "nprocs": ctx.world_size,
                "step_seconds_median": statistics.median(seconds),
                "step_seconds": seconds,
                "distributed": result.metrics.get("distributed"),
                "allreduce_seconds_in_step": probe,
                "gradient_numbers": sum(q.numel() for q in result.model.parameters()),
                "threads": torch.get_num_threads(),
            }
            if not ctx.is_distributed:  # what one slab's halo adds, measured in the single process
                record["halo_probe"] = halo_probe(result.model, args.grid, 2, sync)
            Path(args.record).write_text(json.dumps(record))


def launch(nprocs: int, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "record.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nprocs}",
                   __file__, "--worker", "--grid", str(args.grid), "--steps", str(args.steps),
                   "--device", args.device, "--record", str(record)]
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[1] / "src")
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        start = time.perf_counter()
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=args.timeout)
        if proc.returncode != 0 or not record.exists():
            raise SystemExit(f"run with {nprocs} process(es) failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        out = json.loads(record.read_text())
        out["wall_seconds"] = time.perf_counter() - start
        return out


def machine() -> dict:
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    import torch

    return {"cpu": cpu, "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--grid", type=int, default=256)
    p.add_argument("--steps", type=int, default=12, help="Adam steps per run (the first two are not timed)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--nprocs", default="1,2", help="comma-separated process counts (default: 1,2)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    p.add_argument("--out", type=Path, default=Path("results/distributed-step.json"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--record", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return 0
    if args.steps <= SKIP:
        p.error(f"--steps must be > {SKIP} (the first {SKIP} steps are not timed)")
    counts = [int(n) for n in args.nprocs.split(",") if n]
    load_before = os.getloadavg()
    runs = []
    for repeat in range(args.repeats):
        for n in counts:
            run = launch(n, args)
            run["repeat"] = repeat
            runs.append(run)
            extra, halo = run.get("distributed") or {}, run.get("halo_probe")
            print(f"repeat {repeat} nprocs {n}: {run['step_seconds_median'] * 1e3:.1f} ms/step (median of "
                  f"{len(run['step_seconds'])} steps)"
                  + (f"; gradient sync {extra['gradient_sync_seconds_per_step'] * 1e3:.1f} ms/step incl. waiting, "
                     f"all-reduce alone {run['allreduce_seconds_in_step'] * 1e3:.2f} ms "
                     f"({run['gradient_numbers']} numbers), halo rows +{extra['extra_rows_fraction']:.1%}" if extra else "")
                  + (f"; backbone fwd+bwd on one of {halo['parts']} slabs: {halo['rows']} rows "
                     f"{halo['backbone_seconds_own_rows'] * 1e3:.1f} ms, with 2x{halo['halo_rows_per_side']} halo rows "
                     f"{halo['backbone_seconds_with_halo'] * 1e3:.1f} ms (halo adds {halo['halo_seconds'] * 1e3:.1f} ms)"
                     if halo else ""), flush=True)
    summary = {}
    for n in counts:
        medians = [r["step_seconds_median"] for r in runs if r["nprocs"] == n]
        summary[n] = {"step_seconds_median_of_repeats": statistics.median(medians), "repeats": medians}
    base = summary[counts[0]]["step_seconds_median_of_repeats"]
    for n in counts:
        s = summary[n]
        s["speedup_vs_first"] = base / s["step_seconds_median_of_repeats"]
        print(f"{n} process(es): {s['step_seconds_median_of_repeats'] * 1e3:.1f} ms/step "
              f"(repeats: {', '.join(f'{v * 1e3:.1f}' for v in s['repeats'])}); speedup vs {counts[0]}: "
              f"{s['speedup_vs_first']:.2f}x")
    record = {"command": " ".join(["python", *sys.argv]), "grid": args.grid, "steps": args.steps,
              "device": args.device, "machine": machine(), "loadavg_before": load_before,
              "loadavg_after": os.getloadavg(), "runs": runs, "summary": summary,
              "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"load average before/after: {load_before[0]:.2f} / {record['loadavg_after'][0]:.2f}; written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
