"""``mollifier run PROBLEM``: recover the parameter of a built-in problem or of your own.

PROBLEM is a built-in name (:data:`mollifier.problems.PROBLEMS`) or a Python file that
defines ``problem(...)`` returning an :class:`~mollifier.inverse.InverseProblem`
(:mod:`mollifier.problems.files`); both get every flag and output.

Under ``torchrun --nproc_per_node N -m mollifier run ...`` the grid is tiled over the N
processes (:mod:`mollifier.distributed`); rank 0 logs, writes the results and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

from ..core.engines import ENGINES
from ..distributed.context import DistributedContext, session
from ..inverse import TrainConfig, recover
from ..inverse.callbacks import LOGGERS
from ..inverse.training import RECOVERIES
from ..network_free import SMOOTHERS
from ..problems import PROBLEMS, ProblemSpec, make_problem
from ..problems.files import accepted_options, is_problem_file, load_problem_file
from ..problems.synthetic import PRIORS
from ..runtime.files import nan_to_none
from .arguments import positive_number

_PROBLEM_KEYS = ("grid", "noise", "density", "seed", "prior")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="recover a hidden parameter on a benchmark problem",
        description="Make synthetic noisy data with an independent forward solver, train a backbone "
        "with derivatives from the chosen engine, and recover the parameter. Results go to --out: "
        "config.json, metrics.json, arrays.npz, history.json, figures/, checkpoint.pt. "
        "Under `torchrun --nproc_per_node N -m mollifier run ...` the grid is split over the N processes "
        "(docs/distributed.md).",
    )
    add_run_arguments(p)


def add_run_arguments(p: argparse.ArgumentParser, problem_required: bool = True) -> None:
    """Arguments shared by ``run`` and ``demo``."""
    if problem_required:
        p.add_argument("problem", metavar="PROBLEM",
                       help=f"one of: {', '.join(PROBLEMS)}; or a Python file defining problem() (docs/inverse.md)")
    p.add_argument(
        "--engine",
        choices=[*ENGINES, "direct"],
        help="derivative engine (default: mollifier); 'direct' = network-free: smooth the data, "
        "differentiate, apply the recovery formula (no training)",
    )
    p.add_argument("--smoother", choices=list(SMOOTHERS), help="smoother of --engine direct (default: mollifier)")
    p.add_argument("--backbone", choices=["mlp", "piratenet", "pinnsformer"], help="field backbone (default: mlp)")
    p.add_argument("--noise", type=float, help="relative noise level, e.g. 0.05 for 5 %% (default: 0.05)")
    p.add_argument("--density", type=float, help="fraction of grid points observed (default: 1)")
    p.add_argument("--prior", choices=PRIORS,
                   help="built-in problems: the unknown field's representation, gp (a Gaussian-process prior whose "
                        "settings come from the data; the default) or network (an MLP)")
    p.add_argument("--grid", type=int, help="samples per axis (default: the problem's)")
    p.add_argument("--steps", type=int, help="Adam steps")
    p.add_argument("--lbfgs-steps", type=int, help="L-BFGS iterations after Adam")
    p.add_argument("--radius", type=positive_number("radius (physical units)", "auto"),
                   help="mollifier support radius in physical units, or 'auto' (default: chosen from the data; "
                   "for training a fraction of the network-free bias-variance optimum)")
    p.add_argument("--warm-start", choices=["auto", "none", "anchor"],
                   help="start from what the data say (default: auto: if the field network misses the data's detail a "
                   "quarter of the way in, anchor it to the smoothed data and restart the unknowns at the network-free "
                   "estimate; anchor: do that from the first step; none: never)")
    p.add_argument("--recovery", choices=list(RECOVERIES),
                   help="which recovery of the unknown the headline metrics report (default: the problem's; auto: "
                   "direct where the problem has a direct formula)")
    p.add_argument("--time-budget", type=float, help="stop training after this many seconds (equal-cost comparisons)")
    p.add_argument("--seed", type=int, help="seed of data and initialisation (default: 0)")
    p.add_argument("--engine-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of the engine, e.g. kernel=polynomial, learnable_radius=true, method=fft "
                   "(mollifier) or accuracy=4 (fd); repeat for several")
    p.add_argument("--device", help="'auto' (default: CUDA, then MPS, then CPU), 'cpu', 'cuda', 'cuda:N' or 'mps'")
    p.add_argument("--log", metavar="NAMES", help=f"loggers writing under OUT/logs, comma-separated: {', '.join(LOGGERS)}")
    p.add_argument("--out", type=Path, help="results folder (default: runs/<problem>-<engine>-<backbone>-...)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--config", type=Path, help="TOML or JSON file; flags given here win over it")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument("--json", action="store_true", help="end with one JSON object of metrics on stdout")


def load_config(path: Path | None) -> dict[str, Any]:
    """Read a TOML or JSON configuration file."""
    if path is None:
        return {}
    if not path.exists():
        raise FileNotFoundError(f"`--config` file not found: {path}")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"`--config` {path} is not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}") from None
    allowed = {"problem", "training", "problem_options", "out", *_PROBLEM_KEYS}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"`--config` has unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    return data


def parse_options(items: list[str], flag: str) -> dict[str, Any]:
    """``["kernel=polynomial", "accuracy=4"]`` -> ``{"kernel": "polynomial", "accuracy": 4}``
    (values read as JSON where they parse: numbers, true/false; else as strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"`{flag}` takes KEY=VALUE; got {item!r}")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        out[key.strip()] = value
    return out


def resolve(args: argparse.Namespace, defaults: dict[str, Any] | None = None) -> tuple[str, dict[str, Any], dict[str, Any], Path]:
    """Combine defaults, the config file and flags (flags win)."""
    file_config = load_config(getattr(args, "config", None))
    config = {**(defaults or {}), **file_config}
    problem = getattr(args, "problem", None) or config.get("problem")
    if problem is None:
        raise ValueError(f"give a PROBLEM, one of {list(PROBLEMS)}, or a Python file defining one")
    spec = problem_spec(problem)
    if defaults is not None and problem != defaults.get("problem"):
        config = {"problem": problem, **file_config}  # the demo's settings belong to its own problem
    training = spec.training_defaults()
    training.update(config.get("training", {}))
    problem_kwargs = {k: config[k] for k in _PROBLEM_KEYS if k in config}
    problem_kwargs.update(config.get("problem_options", {}))
    for key in _PROBLEM_KEYS:
        value = getattr(args, key, None)
        if value is not None:
            problem_kwargs[key] = value
    flag_map = {"time_budget": "time_budget", "engine": "engine", "backbone": "backbone", "steps": "steps",
                "lbfgs_steps": "lbfgs_steps", "radius": "radius", "device": "device", "smoother": "smoother",
                "warm_start": "warm_start", "recovery": "recovery"}
    for flag, key in flag_map.items():
        value = getattr(args, flag, None)
        if value is not None:
            training[key] = value
    if getattr(args, "log", None):
        training["log"] = [name.strip() for name in args.log.split(",") if name.strip()]
    if getattr(args, "engine_option", None):
        training["engine_options"] = {**training.get("engine_options", {}), **parse_options(args.engine_option, "--engine-option")}
    if "seed" in problem_kwargs:
        training["seed"] = problem_kwargs["seed"]
    noise = problem_kwargs.get("noise", 0.05)
    if noise < 0:
        raise ValueError(f"`--noise` must be >= 0; got {noise}")
    out = getattr(args, "out", None) or config.get("out")
    if out is None:
        out = Path("runs") / (
            f"{spec.name}-{training.get('engine', 'mollifier')}-{training.get('backbone', 'mlp')}"
            + (f"-noise{noise:g}" if "noise" in problem_kwargs or problem in PROBLEMS else "")
            + f"-seed{problem_kwargs.get('seed', 0)}"
            + (f"-{problem_kwargs['prior']}-prior" if "prior" in problem_kwargs else "")
        )
    return problem, problem_kwargs, training, Path(out)


def problem_spec(problem: str) -> ProblemSpec:
    """A built-in problem by name, or the problem a Python file defines."""
    if problem in PROBLEMS:
        return PROBLEMS[problem]
    if is_problem_file(problem):
        return load_problem_file(problem)
    raise ValueError(f"unknown problem {problem!r}; allowed: {', '.join(PROBLEMS)}, or a Python file defining one")


def execute(
    problem: str,
    problem_kwargs: dict[str, Any],
    training: dict[str, Any],
    out: Path,
    args: argparse.Namespace,
    ctx: DistributedContext | None = None,
) -> dict[str, Any]:
    """Build the problem, recover its parameter (trained, or ``--engine direct``), write the
    results and figures; return the metrics.

    With a multi-process ``ctx`` the training is tiled over the ranks and only rank 0
    logs, writes and draws (the network-free ``direct`` estimate runs on rank 0 alone).
    """
    ctx = ctx or DistributedContext()
    network_free = training.get("engine") == "direct"
    if network_free and not ctx.is_main:
        return {}
    quiet = bool(args.json) or not ctx.is_main
    config = TrainConfig.from_dict({"progress": not quiet and sys.stderr.isatty(), **training})
    spec = problem_spec(problem)
    instance = make_problem(problem, **problem_kwargs) if problem in PROBLEMS else spec.build(**accepted_options(spec, problem_kwargs))
    networks = spec.networks(instance) if spec.networks is not None else None
    log = None if quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    if log:
        what = (
            f"network-free estimate ({config.smoother})"
            if network_free
            else f"engine {config.engine}, backbone {config.backbone}, {config.steps} steps"
        )
        log(f"{instance.description}: grid {instance.grid.shape}, noise {instance.observations.noise:g}, {what} -> {out}"
            + (f" (tiled over {ctx.world_size} processes, {ctx.backend})" if ctx.is_distributed else ""))
        for note in instance.observations.notes:
            log(f"note: {note}")
    result = recover(
        instance,
        config,
        out,
        resume=args.resume,
        extra_config={"problem_options": problem_kwargs},
        log=log,
        distributed=ctx.is_distributed,
        figures=not args.no_figures,
        networks=networks,
    )
    return result.metrics


def summary(metrics: dict[str, Any]) -> str:
    """Human-readable lines: the headline metrics, the radius and warm start, and what limits the run."""
    from ..inverse.diagnostics import format_findings

    lines = [_headline(metrics)]
    if metrics.get("engine") == "mollifier" and metrics.get("radius_cells") is not None:
        warm = metrics.get("warm_start") or {}
        check = warm.get("check") or {}
        detail = f"radius {metrics['radius_cells']:g} cells ({metrics.get('radius_rule') or 'fixed'})"
        if warm.get("anchored"):
            detail += f"; field anchored to the smoothed data at step {warm.get('anchored_at_step', 0)}"
            if check:
                detail += f" (it missed {check['derivative_misfit']:.3g} x the noise in its highest derivative)"
        elif check:
            detail += f"; field check at step {check['step']}: {check['derivative_misfit']:.3g} x the noise, not anchored"
        lines.append(detail)
    findings = metrics.get("diagnostics") or []
    lines += [f"limit: {line}" for line in format_findings(findings)]
    return "\n".join(lines)


def _headline(metrics: dict[str, Any]) -> str:
    return (
        f"{metrics['problem']} [{metrics['engine']}, {metrics['backbone']}, noise {metrics['noise']:g}]: "
        f"{metrics['parameter']} ({metrics['recovery']}) Pearson {metrics['parameter_pearson']:.4f}, "
        f"relative L2 {metrics['parameter_relative_l2']:.4f}; {metrics['train_seconds']:.1f} s"
        + (
            f", {metrics['step_seconds'] * 1e3:.1f} ms/step, peak memory {metrics['peak_memory_bytes'] / 2**20:.1f} MiB"
            if metrics.get("engine") != "direct"
            else f" (network-free, {metrics.get('smoother')}, radius {metrics.get('radius_cells', 0):.0f} cells, "
            f"peak memory {(metrics.get('peak_memory_bytes') or 0) / 2**20:.1f} MiB)"
        )
        + "".join(
            f"; baseline {name}: Pearson {b['pearson']:.4f}" for name, b in metrics.get("baselines", {}).items()
        )
    )


def report(metrics: dict[str, Any], out: Path, as_json: bool) -> None:
    """Print the metrics: one JSON object last on stdout, or a summary line."""
    if as_json:
        print(json.dumps(nan_to_none(metrics), default=str))
    else:
        print(summary(metrics))
        print(f"results and figures: {out}")


def run(args: argparse.Namespace) -> int:
    problem, problem_kwargs, training, out = resolve(args)
    with session(device=training.get("device", "auto")) as ctx:  # a no-op unless launched by torchrun
        metrics = execute(problem, problem_kwargs, training, out, args, ctx)
        if ctx.is_main:
            report(metrics, out, args.json)
    return 0
