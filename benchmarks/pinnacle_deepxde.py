"""Baseline: PINNacle's vanilla PINN on its two inverse tasks (PoissonInv, HeatInv), with DeepXDE.

    pip install 'mollifier[compare]'          # DeepXDE (optional extra; LGPL-2.1)
    python benchmarks/pinnacle_deepxde.py --task both --seed 0                     # 20,000 Adam steps each
    python benchmarks/pinnacle_deepxde.py --task heat --seed 0 --time-budget 300 --json --out runs/dde.jsonl

For each task it builds the problem the way PINNacle (Hao et al., NeurIPS 2024 Datasets
and Benchmarks; repository i207M/PINNacle, MIT) configures its vanilla PINN, trains it
with DeepXDE's PyTorch backend, and scores the recovered coefficient ``a`` against the
analytic truth: relative L2 error (L2RE) and Pearson correlation on a 50 x 50 grid
(``linspace(0, 1, 50)^2`` for PoissonInv; ``linspace(-1, 1, 50)^2`` in (x, y) for HeatInv,
whose ``a`` network does not see ``t``; it is evaluated at ``t = 0.5``). One JSON object
per run goes to stdout (``--json``: only those; DeepXDE's progress goes to stderr) and is
appended to ``--out``.

Where each setting comes from (PINNacle source read: ``src/pde/inverse.py``,
``src/pde/baseclass.py``, ``src/model/fnn.py``, ``benchmark.py``, ``trainer.py``,
``src/utils/callbacks.py``):

- PDE, truth, source, data sites and noise: ``src/pde/inverse.py`` (classes ``PoissonInv``,
  ``HeatInv``); restated, with the PoissonInv source corrected, in ``pinnacle_tasks.py``.
  PoissonInv's published source has ``(2x + 1)``, ``(2y + 1)`` where the truth needs
  ``(2x - 1)``, ``(2y - 1)``; this baseline trains with the consistent source (so does any
  comparison with our own examples). HeatInv's source is consistent and used as published.
- Data (``'type': 'pointset'``, a ``dde.PointSetBC`` on output 0): ``u`` at the 50 x 50
  points of ``linspace(0, 1, 50)^2`` (PoissonInv) or the 2,500 points of
  ``heatinv_points.dat`` (HeatInv) plus ``N(0, 0.1^2)`` noise. PINNacle draws the noise
  from NumPy's global state; here from ``numpy.random.default_rng(seed)``.
- ``a`` on the boundary (``'type': 'dirichlet'``, a ``dde.DirichletBC`` on output 1 with
  ``on_boundary``): the exact ``a`` at the training points that lie on the boundary (the
  spatial boundary for HeatInv: DeepXDE's ``GeometryXTime.on_boundary`` tests space only).
- Collocation counts: ``baseclass.py`` defaults ``DEFAULT_NUM_DOMAIN_POINTS = 8192``,
  ``DEFAULT_NUM_BOUNDARY_POINTS = 2048``, ``DEFAULT_NUM_INITIAL_POINTS = 2048``,
  ``DEFAULT_NUM_TEST_POINTS = 8192``; ``PoissonInv`` calls ``self.training_points()``
  (x1): 8,192 domain + 2,048 boundary points, 8,192 test points; ``HeatInv`` calls
  ``self.training_points(mul=4)``: 32,768 domain + 8,192 boundary + 8,192 initial points,
  32,768 test points. They go to ``dde.data.PDE`` / ``dde.data.TimePDE`` (DeepXDE's default
  ``train_distribution="Hammersley"``), whose PDE loss is the residual on all those
  domain + boundary (+ initial) points. No initial condition is imposed in HeatInv (the
  t = 0 points only carry the PDE residual). No resampling.
- Loss: three MSE terms (PDE residual, data, ``a`` boundary) with weights 1, 1, 1
  (``benchmark.py``: ``loss_weights = np.ones(pde.num_loss)`` when ``--loss-weight`` is
  empty, its default).
- Network: ``recommend_net`` in ``inverse.py``: a parallel MLP, one sub-network per output
  (``u``, ``a``), 5 hidden layers of 50, ``tanh``, ``Glorot normal`` weights, zero biases
  (PoissonInv: ``dde.nn.PFNN([2] + 5 * [[50, 50]] + [2], ...)``; HeatInv: PINNacle's own
  ``PFNN`` with ``split_mask=[[[1, 1, 1]], [[1, 1, 0]]]``: the ``a`` sub-network gets
  ``(x, y, 0)``, i.e. it is blind to ``t``; re-implemented here as ``MaskedPFNN``).
- Optimiser: Adam, learning rate 1e-3 (``benchmark.py`` ``--lr`` default), 20,000
  iterations (``--iter`` default); float32 (``trainer.py``: ``set_default_float('float32')``).
- Seeds: ``dde.config.set_random_seed(seed)`` (Python, NumPy, torch), as ``trainer.py``
  (which draws a fresh random seed per task; here the ``--seed`` is used throughout).

What differs from PINNacle's runs, and why:

- ``benchmark.py``'s task list does not include the inverse problems, and its generic
  network is ``dde.nn.FNN`` with ``--hidden-layers 100*5``; this baseline uses the tasks'
  ``recommend_net`` (the parallel 5 x 50 networks) as stated for the vanilla PINN on these
  tasks.
- PINNacle evaluates its metrics every 100 iterations (``TesterCallback``) and plots every
  2,000; here DeepXDE's own loss display runs every ``--display-every`` (1,000) iterations
  and the metrics are computed once, after training, so the timing carries less overhead.
- PINNacle's L2RE (``TesterCallback``) pools ``u`` and ``a`` on 2,500 (2-D) or 20,000
  (3-D) uniform points; the metric here is the L2RE of ``a`` alone on the 50 x 50 grid
  (and of ``u`` against the noise-free truth at the data sites, for reference).
- CPU (whatever this machine has) instead of PINNacle's GPUs; DeepXDE version as reported.

``--time-budget S`` stops training (a DeepXDE callback setting ``model.stop_training``)
once the wall-clock time since ``model.train`` started reaches ``S`` seconds; the JSON
records the iterations done. ``train_seconds`` is the wall-clock time of ``model.train``
(including DeepXDE's loss evaluations on the training and test points every
``--display-every`` iterations). ``peak_rss_bytes`` is the process's peak resident memory
(``VmHWM``), reset before each run where Linux allows it (``peak_rss_scope: "run"``),
else the process-wide peak. On a CPU shared with other jobs use ``--threads 1``: with more
torch threads than free cores a step can take several times longer (measured: 5.0 s
against 0.8 s per PoissonInv step on a 2-core machine at load 6).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "examples"))  # pinnacle_tasks
import pinnacle_tasks as tasks  # noqa: E402

INSTALL_HINT = ("pinnacle_deepxde: DeepXDE is not installed; install the optional extra with "
                "pip install 'mollifier[compare]'")

# PINNacle's settings (see the module docstring for where each comes from)
ITERATIONS = 20_000
LEARNING_RATE = 1e-3
HIDDEN = 50
DEPTH = 5
LOSS_WEIGHTS = [1.0, 1.0, 1.0]  # PDE residual, data (u), a on the boundary
POISSON_POINTS = {"num_domain": 8192, "num_boundary": 2048, "num_test": 8192}
HEAT_POINTS = {"num_domain": 4 * 8192, "num_boundary": 4 * 2048, "num_initial": 4 * 2048,
               "num_test": 4 * 8192}
HEAT_EVAL_T = 0.5  # the a network is blind to t; any t gives the same a


def import_deepxde():
    """``(dde, torch)`` with DeepXDE on its PyTorch backend; exits with the install hint if missing."""
    os.environ["DDE_BACKEND"] = "pytorch"
    try:
        import deepxde as dde
    except ModuleNotFoundError as exc:
        if exc.name != "deepxde":
            raise
        print(INSTALL_HINT, file=sys.stderr)
        raise SystemExit(1)
    import torch

    if dde.backend.backend_name != "pytorch":  # imported earlier in this process with another backend
        raise SystemExit(f"pinnacle_deepxde: DeepXDE runs on {dde.backend.backend_name!r}, not pytorch")
    return dde, torch


def masked_pfnn(dde, torch, input_masks, hidden=HIDDEN, depth=DEPTH):
    """PINNacle's parallel MLP with a per-output input mask (its ``PFNN(split_mask=...)``).

    One sub-network per output, each ``depth`` tanh layers of ``hidden`` units and a linear
    output of 1; sub-network ``i`` sees ``x * input_masks[i]``. Glorot-normal weights, zero
    biases, layers created depth by depth as in PINNacle.
    """

    class MaskedPFNN(dde.nn.NN):
        def __init__(self):
            super().__init__()
            masks = torch.as_tensor(np.asarray(input_masks), dtype=dde.config.real(torch))
            self.register_buffer("masks", masks)
            n_in, n_out = masks.shape[1], masks.shape[0]
            init_w, init_b = dde.nn.initializers.get("Glorot normal"), dde.nn.initializers.get("zeros")
            sizes = [n_in] + [hidden] * depth + [1]
            self.layers = torch.nn.ModuleList()
            for k in range(1, len(sizes)):
                level = torch.nn.ModuleList()
                for _ in range(n_out):
                    lin = torch.nn.Linear(sizes[k - 1], sizes[k], dtype=dde.config.real(torch))
                    init_w(lin.weight)
                    init_b(lin.bias)
                    level.append(lin)
                self.layers.append(level)
            self.activation = dde.nn.activations.get("tanh")

        def forward(self, inputs):
            x = inputs
            if self._input_transform is not None:
                x = self._input_transform(x)
            outs = []
            for i in range(self.masks.shape[0]):
                h = x * self.masks[i]
                for level in self.layers[:-1]:
                    h = self.activation(level[i](h))
                outs.append(self.layers[-1][i](h))
            y = torch.cat(outs, dim=1)
            if self._output_transform is not None:
                y = self._output_transform(inputs, y)
            return y

    return MaskedPFNN()


def build_poisson(dde, torch, seed):
    """PoissonInv as PINNacle sets it up: ``(model, eval_x, a_true, data_x, u_clean)``."""
    xy, u_noisy = tasks.poisson_data(seed)
    geom = dde.geometry.Rectangle(xmin=[0.0, 0.0], xmax=[1.0, 1.0])

    def pde(x, ua):
        u, a = ua[:, 0:1], ua[:, 1:2]
        u_x = dde.grad.jacobian(u, x, i=0, j=0)
        u_y = dde.grad.jacobian(u, x, i=0, j=1)
        div = dde.grad.jacobian(a * u_x, x, i=0, j=0) + dde.grad.jacobian(a * u_y, x, i=0, j=1)
        xd = x.detach()
        return div + tasks.poisson_f(xd[:, 0:1], xd[:, 1:2], xp=torch)

    bcs = [
        dde.icbc.PointSetBC(xy, u_noisy[:, None], component=0),
        dde.icbc.DirichletBC(geom, lambda X: tasks.poisson_a(X[:, 0:1], X[:, 1:2]),
                             lambda _, on_boundary: on_boundary, component=1),
    ]
    data = dde.data.PDE(geom, pde, bcs, **POISSON_POINTS)
    net = dde.nn.PFNN([2] + DEPTH * [[HIDDEN, HIDDEN]] + [2], "tanh", "Glorot normal")
    model = dde.Model(data, net)
    grid = tasks.poisson_grid()
    return model, grid, tasks.poisson_a(grid[:, 0], grid[:, 1]), xy, tasks.poisson_u(xy[:, 0], xy[:, 1])


def build_heat(dde, torch, seed, points_path=tasks.HEAT_POINTS_PATH):
    """HeatInv as PINNacle sets it up: ``(model, eval_x, a_true, data_x, u_clean)``."""
    xyt, u_noisy = tasks.heat_data(seed, points_path)
    geom = dde.geometry.Rectangle(xmin=[-1.0, -1.0], xmax=[1.0, 1.0])
    geomtime = dde.geometry.GeometryXTime(geom, dde.geometry.TimeDomain(0.0, 1.0))

    def pde(x, ua):
        u, a = ua[:, 0:1], ua[:, 1:2]
        u_x = dde.grad.jacobian(u, x, i=0, j=0)
        u_y = dde.grad.jacobian(u, x, i=0, j=1)
        u_t = dde.grad.jacobian(u, x, i=0, j=2)
        div = dde.grad.jacobian(a * u_x, x, i=0, j=0) + dde.grad.jacobian(a * u_y, x, i=0, j=1)
        xd = x.detach()
        return u_t - div - tasks.heat_f(xd[:, 0:1], xd[:, 1:2], xd[:, 2:3], xp=torch)

    bcs = [
        dde.icbc.PointSetBC(xyt, u_noisy[:, None], component=0),
        dde.icbc.DirichletBC(geomtime, lambda X: tasks.heat_a(X[:, 0:1], X[:, 1:2]),
                             lambda _, on_boundary: on_boundary, component=1),
    ]
    data = dde.data.TimePDE(geomtime, pde, bcs, **HEAT_POINTS)
    net = masked_pfnn(dde, torch, [[1, 1, 1], [1, 1, 0]])
    model = dde.Model(data, net)
    grid = tasks.heat_grid()
    eval_x = np.column_stack([grid, np.full(len(grid), HEAT_EVAL_T)])
    return model, eval_x, tasks.heat_a(grid[:, 0], grid[:, 1]), xyt, tasks.heat_u(*xyt.T)


BUILDERS = {"poisson": build_poisson, "heat": build_heat}


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux ``clear_refs`` 5); ``True`` on success."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """Peak resident memory of this process: ``VmHWM`` from /proc, else ``getrusage`` (kB on Linux)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def machine_info(torch) -> dict:
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {"cpu_model": model, "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "usable_cores": usable, "torch_threads": torch.get_num_threads(),
            "platform": platform.platform()}


def run_task(task: str, seed: int, iterations: int | None = None, time_budget: float | None = None,
             display_every: int = 1000, heat_points=tasks.HEAT_POINTS_PATH, log=None,
             progress_every: int = 0, threads: int | None = None) -> dict:
    """Train one task and return the result record (see the module docstring).

    ``iterations=None`` means PINNacle's 20,000, or no limit when ``time_budget`` is set.
    ``log`` is where DeepXDE's progress goes (a file object; default stdout);
    ``progress_every > 0`` adds a line there every that many steps with the elapsed time
    (no evaluation, so no cost). ``threads`` sets ``torch.set_num_threads``.
    """
    if task not in BUILDERS:
        raise ValueError(f"task must be one of {sorted(BUILDERS)}, got {task!r}")
    if iterations is None:
        iterations = ITERATIONS if time_budget is None else 10**12
    if iterations < 1:
        raise ValueError("iterations must be >= 1")
    if time_budget is not None and not time_budget > 0:
        raise ValueError("time_budget must be > 0 seconds")
    dde, torch = import_deepxde()
    if threads is not None:
        torch.set_num_threads(threads)
    log = sys.stdout if log is None else log
    rss_scope = "run" if _reset_peak_rss() else "process"
    load_start = os.getloadavg()[0]

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    dde.config.set_random_seed(seed)

    with contextlib.redirect_stdout(log):
        kwargs = {"points_path": heat_points} if task == "heat" else {}
        model, eval_x, a_true, data_x, u_clean = BUILDERS[task](dde, torch, seed, **kwargs)
        model.compile("adam", lr=LEARNING_RATE, loss_weights=LOSS_WEIGHTS)

        start = time.perf_counter()

        class TimeBudget(dde.callbacks.Callback):
            def on_epoch_end(self):
                elapsed = time.perf_counter() - start
                step = self.model.train_state.step
                if progress_every and step % progress_every == 0:
                    print(f"[{task}] step {step}  {elapsed:.1f} s  ({elapsed / step:.3f} s/step)",
                          file=log, flush=True)
                if time_budget is not None and elapsed >= time_budget:
                    self.model.stop_training = True

        model.train(iterations=iterations, display_every=display_every, callbacks=[TimeBudget()])
        train_seconds = time.perf_counter() - start
        hist = model.losshistory
        if not hist.steps or hist.steps[-1] != model.train_state.step:
            # stopped by the budget between displays: log the final losses (outside the timing)
            model._test(verbose=0)

    pred = model.predict(eval_x)
    a_pred = pred[:, 1]
    u_pred = model.predict(data_x)[:, 0]
    data = model.data
    n_pde = len(data.train_x_all)
    record = {
        "task": task,
        "framework": "deepxde",
        "seed": seed,
        "iterations": int(model.train_state.step),
        "iterations_requested": None if iterations >= 10**12 else iterations,
        "time_budget_s": time_budget,
        "train_seconds": round(train_seconds, 3),
        "seconds_per_iteration": round(train_seconds / max(model.train_state.step, 1), 5),
        "parameter_relative_l2": tasks.relative_l2(a_pred, a_true),
        "parameter_pearson": tasks.pearson(a_pred, a_true),
        "u_relative_l2_at_data": tasks.relative_l2(u_pred, u_clean),
        "final_loss": {"step": int(hist.steps[-1]),
                             "pde": float(hist.loss_train[-1][0]),
                             "data": float(hist.loss_train[-1][1]),
                             "a_boundary": float(hist.loss_train[-1][2])} if hist.steps else None,
        "collocation": {"pde_residual": n_pde, "data": int(data.num_bcs[0]),
                        "a_boundary": int(data.num_bcs[1]), "test": int(len(data.test_x))},
        "eval_grid": "linspace(0,1,50)^2" if task == "poisson"
                     else f"linspace(-1,1,50)^2 at t={HEAT_EVAL_T}",
        "peak_rss_bytes": peak_rss_bytes(),
        "peak_rss_scope": rss_scope,
        "loadavg_1min_start": round(load_start, 2),
        "loadavg_1min_end": round(os.getloadavg()[0], 2),
        "dtype": str(dde.config.real(torch)).replace("torch.", ""),
        "torch_version": torch.__version__,
        "deepxde_version": dde.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        **machine_info(torch),
    }
    return record


def _finite_or_none(obj):
    """JSON cannot hold NaN/inf: map them to None (recursively)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    return obj


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=["poisson", "heat", "both"], default="both")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iterations", type=int, default=None,
                        help=f"Adam iterations (default {ITERATIONS}; no limit with --time-budget)")
    parser.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                        help="stop training once this much wall-clock training time has passed")
    parser.add_argument("--display-every", type=int, default=1000,
                        help="DeepXDE's loss display/evaluation interval (default 1000)")
    parser.add_argument("--progress-every", type=int, default=100, metavar="N",
                        help="log the elapsed time every N steps (no evaluation; 0: never; default 100)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's own choice)")
    parser.add_argument("--heat-points", default=str(tasks.HEAT_POINTS_PATH),
                        help="PINNacle's heatinv_points.dat (default: the copy in docs/examples/data)")
    parser.add_argument("--json", action="store_true",
                        help="stdout: only one JSON object per run (DeepXDE's progress goes to stderr)")
    parser.add_argument("--out", default=None, metavar="FILE.jsonl", help="append each run's JSON here")
    args = parser.parse_args(argv)

    import_deepxde()  # fail early, with the install hint, before any work
    task_list = ["poisson", "heat"] if args.task == "both" else [args.task]
    for task in task_list:
        record = _finite_or_none(run_task(task, args.seed, args.iterations, args.time_budget,
                                          args.display_every, args.heat_points,
                                          log=sys.stderr if args.json else sys.stdout,
                                          progress_every=args.progress_every, threads=args.threads))
        record["command"] = " ".join(["python", "benchmarks/pinnacle_deepxde.py", *sys.argv[1:]]) \
            if argv is None else None
        line = json.dumps(record)
        if args.json:
            print(line, flush=True)
        else:
            print(f"\n{task}: {record['iterations']} iterations in {record['train_seconds']:.1f} s, "
                  f"L2RE(a) {record['parameter_relative_l2']:.4g}, Pearson(a) "
                  f"{record['parameter_pearson']:.4g}, peak RSS {record['peak_rss_bytes'] / 2**20:.0f} MiB")
            print(line, flush=True)
        if args.out:
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("a") as fh:
                fh.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
