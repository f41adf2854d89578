"""Markdown report (tables, plain statements of losses, PNG plots) from sweep results.

Input: the JSONL rows written by :func:`mollifier.bench.suite.run_sweep`. Rows that did
not run (timeout, out of memory, error, skipped) appear in the tables with their status.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .suite import read_rows

__all__ = ["find_losses", "render_report", "robustness_cells", "write_report"]

MIB = 2**20
_ENGINE_ORDER = ("mollifier", "autodiff", "autodiff-forward", "fd")


def _engines(rows: Iterable[dict[str, Any]]) -> list[str]:
    names = {r["engine"] for r in rows}
    return [e for e in _ENGINE_ORDER if e in names] + sorted(names - set(_ENGINE_ORDER))


def _ok(row: dict[str, Any] | None) -> bool:
    return row is not None and row.get("status") == "ok"


def _num(value: Any, fmt: str = ".3g") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def _mib(value: Any) -> str:
    return "-" if value is None else f"{value / MIB:.1f}"


def _ratio(num: Any, den: Any) -> str:
    if not (num and den):
        return "-"
    ratio = num / den
    return f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.2g}x"


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(cells) + " |" for cells in body]


def _index(rows: list[dict[str, Any]], kind: str) -> dict[tuple, dict[str, Any]]:
    """Latest row per (order, grid, backbone, device, engine) or per accuracy setting."""
    out = {}
    for r in rows:
        if r.get("kind") != kind:
            continue
        if kind == "scaling":
            key = (r["order"], r["grid"], r.get("backbone"), r.get("device"), r["engine"])
        else:
            key = (r["problem"], r["grid"], r.get("backbone"), r["noise"], r["seed"], r.get("device"), r["engine"])
        out[key] = r
    return out


# ---------------------------------------------------------------- losses


NETWORK_FREE_MATCH = 0.01
"""A network-free estimate within this much Pearson of the network counts as matching it."""


def find_losses(rows: list[dict[str, Any]]) -> list[str]:
    """Plain sentences for every comparison mollifier does not win against autodiff.

    Compared: time and memory per step at derivative order >= 2 and grid >= 64, and
    accuracy (Pearson and relative L2) at noise >= 1 % on 4th-order problems. Also listed:
    accuracy rows where a derivative-free baseline beats the mollifier, and where a
    network-free estimate matches or beats it (Pearson within ``NETWORK_FREE_MATCH``).
    """
    out = []
    scaling = _index(rows, "scaling")
    for (order, grid, backbone, device, engine), mol in sorted(scaling.items(), key=lambda kv: str(kv[0])):
        if engine != "mollifier" or order < 2 or grid < 64:
            continue
        auto = scaling.get((order, grid, backbone, device, "autodiff"))
        where = f"order {order}, grid {grid}^2 ({backbone}, {device})"
        if auto is None:
            continue
        if not _ok(mol):
            out.append(f"Scaling, {where}: mollifier did not run ({mol['status']}); autodiff: {auto['status']}.")
            continue
        if not _ok(auto):
            continue
        for label, field, unit in (("time per step", "step_seconds", "s"), ("peak memory", "peak_memory_bytes", "B")):
            m, a = mol.get(field), auto.get(field)
            if m is not None and a is not None and m >= a:
                fmt = (lambda v: f"{v:.4g} s") if unit == "s" else (lambda v: f"{v / MIB:.1f} MiB")
                out.append(f"Scaling, {where}: mollifier {label} {fmt(m)} is not below autodiff's {fmt(a)}.")
    accuracy = _index(rows, "accuracy")
    for key, mol in sorted(accuracy.items(), key=lambda kv: str(kv[0])):
        problem, grid, backbone, noise, seed, device, engine = key
        if engine != "mollifier" or noise is None or noise < 0.01:
            continue
        where = f"{problem} {_grid(grid)}, {backbone}, noise {noise:g}, seed {seed}"
        if _ok(mol):
            for name, base in (mol.get("baselines") or {}).items():
                if base.get("pearson", -math.inf) > mol["parameter_pearson"]:
                    out.append(f"Accuracy, {where}: the derivative-free baseline {name} (Pearson {base['pearson']:.3f}) "
                               f"beats mollifier (Pearson {mol['parameter_pearson']:.3f}).")
            for other_key, other in sorted(accuracy.items(), key=lambda kv: str(kv[0])):
                if other_key[:-1] != key[:-1] or not other_key[-1].startswith("direct") or not _ok(other):
                    continue
                if other["parameter_pearson"] >= mol["parameter_pearson"] - NETWORK_FREE_MATCH:
                    out.append(
                        f"Accuracy, {where}: the network-free estimate {other_key[-1]} (Pearson "
                        f"{other['parameter_pearson']:.3f}, rel. L2 {other['parameter_relative_l2']:.3f}, "
                        f"{other['train_seconds']:.1f} s) matches or beats the trained mollifier network (Pearson "
                        f"{mol['parameter_pearson']:.3f}, rel. L2 {mol['parameter_relative_l2']:.3f}, "
                        f"{mol['train_seconds']:.0f} s) at a fraction of the cost."
                    )
        if mol.get("order", 0) < 4:
            continue
        auto = accuracy.get((*key[:-1], "autodiff"))
        if auto is None:
            continue
        if not _ok(mol):
            out.append(f"Accuracy, {where}: mollifier did not finish ({mol['status']}); autodiff: {auto['status']}.")
        elif _ok(auto):
            if mol["parameter_pearson"] < auto["parameter_pearson"]:
                out.append(f"Accuracy, {where}: mollifier Pearson {mol['parameter_pearson']:.3f} < autodiff "
                           f"{auto['parameter_pearson']:.3f}.")
            if mol["parameter_relative_l2"] > auto["parameter_relative_l2"]:
                out.append(f"Accuracy, {where}: mollifier rel. L2 {mol['parameter_relative_l2']:.3f} > autodiff "
                           f"{auto['parameter_relative_l2']:.3f}.")
    return out


# ---------------------------------------------------------------- tables


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "-"
    if not _ok(row):
        return f"**{row['status']}**"
    return f"{_num(row.get('step_seconds'), '.3g')} s / {_mib(row.get('peak_memory_bytes'))} MiB"


def scaling_tables(rows: list[dict[str, Any]]) -> list[str]:
    """One table per (order, backbone, device): per grid, each engine's time / memory and the ratios."""
    index = _index(rows, "scaling")
    engines = _engines(r for r in rows if r.get("kind") == "scaling")
    lines: list[str] = []
    for order, backbone, device in sorted({(k[0], k[2], k[3]) for k in index}, key=str):
        pde = next(r["pde"] for r in rows if r.get("kind") == "scaling" and r["order"] == order)
        lines += ["", f"### Order {order} ({pde}), {backbone}, {device}", ""]
        header = ["grid", *[f"{e} (s / MiB)" for e in engines], "autodiff ÷ mollifier time", "autodiff ÷ mollifier memory"]
        body = []
        for grid in sorted({k[1] for k in index if k[0] == order and k[2] == backbone and k[3] == device}):
            got = {e: index.get((order, grid, backbone, device, e)) for e in engines}
            mol, auto = got.get("mollifier"), got.get("autodiff")
            both = _ok(mol) and _ok(auto)
            body.append([f"{grid}^2", *[_cell(got[e]) for e in engines],
                         _ratio(auto["step_seconds"], mol["step_seconds"]) if both else "-",
                         _ratio(auto["peak_memory_bytes"], mol["peak_memory_bytes"]) if both else "-"])
        lines += _table(header, body)
    return lines


def accuracy_table(rows: list[dict[str, Any]]) -> list[str]:
    """Every accuracy row, with each setting's derivative-free baselines beside it."""
    acc = [r for r in rows if r.get("kind") == "accuracy"]
    if not acc:
        return ["No accuracy rows."]
    header = ["problem", "grid", "backbone", "noise", "seed", "engine", "status", "Pearson", "rel. L2",
              "train [s]", "step [s]", "steps", "peak [MiB]"]
    body = []
    rank = {e: i for i, e in enumerate(_engines(acc))}
    settings = sorted({(r["problem"], r["grid"], r["backbone"], r["noise"], r["seed"]) for r in acc}, key=str)
    for setting in settings:
        group = sorted((r for r in acc if (r["problem"], r["grid"], r["backbone"], r["noise"], r["seed"]) == setting),
                       key=lambda r: rank[r["engine"]])
        lead = [setting[0], _grid(setting[1]), setting[2], f"{setting[3]:g}", str(setting[4])]
        for r in group:
            status = r["status"] if _ok(r) else f"**{r['status']}**"
            body.append([*lead, r["engine"], status, _num(r.get("parameter_pearson")), _num(r.get("parameter_relative_l2")),
                         _num(r.get("train_seconds"), ".1f"), _num(r.get("step_seconds"), ".3g"), _num(r.get("steps"), "d"),
                         _mib(r.get("peak_memory_bytes"))])
        baselines = next((r["baselines"] for r in group if r.get("baselines")), {})
        for name, scores in baselines.items():
            body.append([*lead, f"baseline: {name} (no derivatives)", "-", _num(scores.get("pearson")),
                         _num(scores.get("relative_l2")), "-", "-", "-", "-"])
    return _table(header, body)


# ---------------------------------------------------------------- robustness


FLOOR_MARGIN = 0.005
"""Target 1: the network's Pearson is never below the best network-free estimate's minus this."""

WIN_MARGIN = 0.02
"""Target 2: where the noise is at least ``WIN_NOISE`` and the best network-free Pearson is
under ``WIN_CEILING``, the network beats it by at least this much."""

WIN_NOISE = 0.05
WIN_CEILING = 0.97


def robustness_cells(rows: list[dict[str, Any]], ceilings: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One entry per (problem, grid, correlation length, noise, seed) of the robustness rows:
    the network's scores, each smoother's, the targets and, where one is missed, why.

    Each comparison is made on the smoother's support (the points where it gives an
    estimate, within the metric mask): the network's ``pearson_on_support[label]``
    against the smoother's own Pearson. The network's headline Pearson (whole metric
    mask) is reported beside them. ``ceilings``: rows of ``benchmarks/robustness_ceiling.py
    --json`` (an estimate that knows how the data were made); the one of the same cell adds
    what the data allow (``ceiling``: that estimate's Pearson on the best smoother's support,
    ``headroom``: its margin over that smoother) to the cell and its reasons.
    """
    latest: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        if r.get("kind") == "robustness":
            latest[(r["problem"], r["grid"], r.get("correlation_length"), r["noise"], r["seed"], r["engine"])] = r
    bounds = {(r["problem"], r["grid"], r.get("correlation_length"), r["noise"], r["seed"]): r for r in ceilings or []}
    cells: dict[tuple, dict[str, Any]] = {}
    for key, r in latest.items():
        bound = bounds.get(key[:-1]) or {}
        on_support = ((bound.get("smoothers") or {}).get(bound.get("best_smoother")) or {}).get("oracle_on_support")
        cell = cells.setdefault(key[:-1], {"problem": key[0], "grid": key[1], "correlation_length": key[2], "noise": key[3],
                                           "seed": key[4], "network": None, "free": {},
                                           "ceiling": on_support if on_support is not None else bound.get("oracle_pearson"),
                                           "headroom": bound.get("headroom")})
        if key[-1].startswith("direct"):
            if _ok(r):
                cell["free"][key[-1]] = r
        else:
            cell["network"] = r
    out = []
    for key in sorted(cells, key=lambda k: (k[0], k[1], -(k[2] or 0), k[3], k[4])):
        cell = cells[key]
        net, free = cell["network"], cell["free"]
        cell.update(best=None, best_pearson=None, net_on_best=None, gap=None, worst=None, worst_gap=None,
                    floor=None, win=None, why="")
        if free:
            best = max(free, key=lambda label: free[label]["parameter_pearson"])
            cell.update(best=best, best_pearson=free[best]["parameter_pearson"])
        if not _ok(net) or not free:
            cell["why"] = "the network did not run" if not _ok(net) else "no network-free estimate"
            if net is not None and not _ok(net):
                cell["why"] += f" ({net['status']})"
            out.append(cell)
            continue
        on = net.get("pearson_on_support") or {}
        gaps = {label: on[label] - r["parameter_pearson"] for label, r in free.items() if on.get(label) is not None}
        if gaps:
            worst = min(gaps, key=gaps.get)
            cell.update(worst=worst, worst_gap=gaps[worst], floor=gaps[worst] >= -FLOOR_MARGIN)
        if cell["best"] in gaps:
            cell.update(net_on_best=on[cell["best"]], gap=gaps[cell["best"]])
            if cell["noise"] >= WIN_NOISE and cell["best_pearson"] < WIN_CEILING:
                cell["win"] = gaps[cell["best"]] >= WIN_MARGIN
        if cell["floor"] is False or cell["win"] is False:
            cell["why"] = _why(net, cell)
        out.append(cell)
    return out


COLLAPSE_MARGIN = 0.1
"""A headline recovery this far (Pearson) below the other recovery of the same run has collapsed."""


def _why(net: dict[str, Any], cell: dict[str, Any]) -> str:
    """Why a robustness target is missed: what the data allow (where a ceiling row says),
    then the network row's own diagnostics."""
    parts = []
    if cell.get("headroom") is not None:
        if cell["win"] is False and cell["headroom"] < WIN_MARGIN:
            parts.append(f"beyond these data: the estimate that knows how they were made beats the best smoother by only "
                         f"{cell['headroom']:+.3f}, under the {WIN_MARGIN} asked")
        elif cell["ceiling"] is not None and cell["net_on_best"] is not None and cell["ceiling"] > cell["net_on_best"]:
            parts.append(f"not the data: the estimate that knows how they were made reaches {cell['ceiling']:.3f} "
                         f"({cell['headroom']:+.3f} over the best smoother); the network leaves that on the table")
    fit = net.get("fit_check") or {}
    codes = net.get("diagnostics") or []
    warm = net.get("warm_start") or {}
    check = warm.get("check") or {}
    if "derivative-misfit" in codes:
        parts.append(f"the field misses the data's highest derivative ({fit.get('derivative_misfit', float('nan')):.2g} x the noise)")
    if "fit-above-noise" in codes:
        parts.append(f"the data misfit stays at {fit.get('misfit_over_noise', float('nan')):.2g} x the noise variance")
    if warm.get("anchored"):
        parts.append(f"field anchored at step {warm.get('anchored_at_step')}")
    elif check:
        parts.append(f"field check {check.get('derivative_misfit', float('nan')):.2g} x noise: not anchored")
    if "time-budget" in codes:
        parts.append("stopped at its time budget")
    recoveries = net.get("recoveries") or {}
    other = {"learned": "direct", "direct": "learned"}.get(net.get("recovery") or "", "")
    if recoveries.get(other) is not None and recoveries[other] - net["parameter_pearson"] > COLLAPSE_MARGIN:
        parts.append(f"the {net['recovery']} recovery collapsed (Pearson {net['parameter_pearson']:.3g}; the {other} "
                     f"recovery from the same trained field scores {recoveries[other]:.3g})")
    if not parts and "network-free-better" in codes:
        parts.append("the run flagged that the network-free estimate scores higher; its fit reaches the noise "
                     "level, so no capacity or noise finding explains the gap")
    if not codes:
        parts.append("the fit reaches the noise level: the network's smoothing prior is no stronger than the best "
                     "smoother's here")
    return "; ".join(parts)


def robustness_section(rows: list[dict[str, Any]], ceilings: list[dict[str, Any]] | None = None) -> list[str]:
    """The robustness tables (one per problem) and the cell-by-cell target summary
    (``ceilings``: as in :func:`robustness_cells`)."""
    cells = robustness_cells(rows, ceilings)
    if not cells:
        return []
    lines = ["", "## Robustness: the trained network beside every network-free smoother", "",
             "Defaults a user gets (`radius=\"auto\"`, `warm_start=\"auto\"`, the problem's steps), seed 0, over "
             "grid size, correlation length of the parameter field (smooth to rough) and noise. Each comparison "
             "is on the smoother's support (the points where it gives an estimate, inside the metric mask): "
             "\"network on support\" is the network's Pearson there. Targets: (1) the network is never below any "
             f"smoother's Pearson minus {FLOOR_MARGIN}; (2) where the noise is at least {WIN_NOISE:.0%} and the best "
             f"smoother is under {WIN_CEILING}, the network beats it by at least {WIN_MARGIN}.", ""]
    met = {"floor": [0, 0], "win": [0, 0]}
    for cell in cells:
        for name in met:
            if cell[name] is not None:
                met[name][1] += 1
                met[name][0] += bool(cell[name])
    lines += [f"- Target 1 (never below a smoother minus {FLOOR_MARGIN}): met in {met['floor'][0]} of {met['floor'][1]} cells.",
              f"- Target 2 (beat the best smoother by {WIN_MARGIN} at noise >= {WIN_NOISE:.0%} where it is under "
              f"{WIN_CEILING}): met in {met['win'][0]} of {met['win'][1]} cells where it applies.", ""]
    header = ["grid (per axis)", "corr. length", "noise", "network P (mask)", "best smoother (P)", "network on its support", "Δ",
              "worst Δ (smoother)", "target 1", "target 2", "why missed", "train [s]"]
    bounded = any(c["headroom"] is not None for c in cells)
    if bounded:
        header.insert(8, "data allow: P (headroom)")
        lines += ["\"Data allow\" is the Pearson of an estimate that knows how the data were made (the generator's "
                  "prior, forward model and noise level; `benchmarks/robustness_ceiling.py`) on the best smoother's "
                  "support and, in brackets, its margin over that smoother: target 2 asks for more than the data hold "
                  f"where that is under {WIN_MARGIN}.", ""]
    for problem in sorted({c["problem"] for c in cells}):
        body = []
        for c in (c for c in cells if c["problem"] == problem):
            net = c["network"] or {}
            mark = {True: "met", False: "**missed**", None: "-"}
            row = [
                str(c["grid"]), _num(c["correlation_length"], "g"), f"{c['noise']:g}",
                _num(net.get("parameter_pearson")) if _ok(net) else f"**{net.get('status', 'missing')}**",
                f"{c['best']} ({c['best_pearson']:.3f})" if c["best"] else "-",
                _num(c["net_on_best"]), _num(c["gap"], "+.3f"),
                f"{c['worst_gap']:+.3f} ({c['worst']})" if c["worst"] else "-",
                mark[c["floor"]], mark[c["win"]], c["why"] or "", _num(net.get("train_seconds"), ".0f"),
            ]
            if bounded:
                row.insert(8, f"{c['ceiling']:.3f} ({c['headroom']:+.3f})" if c["headroom"] is not None else "-")
            body.append(row)
        lines += ["", f"### {problem}", ""] + _table(header, body)
    return lines


def _robustness_plot(rows: list[dict[str, Any]], folder: Path, prefix: str) -> list[tuple[str, str]]:
    """Heat maps of the network's margin over the best smoother, per problem and grid."""
    import matplotlib.pyplot as plt
    import numpy as np

    cells = [c for c in robustness_cells(rows) if c["gap"] is not None]
    made = []
    for problem in sorted({c["problem"] for c in cells}):
        sel = [c for c in cells if c["problem"] == problem]
        grids = sorted({c["grid"] for c in sel})
        lengths = sorted({c["correlation_length"] for c in sel}, reverse=True)
        noises = sorted({c["noise"] for c in sel})
        fig, axes = plt.subplots(1, len(grids), figsize=(2.2 + 0.55 * len(noises) * len(grids), 0.5 + 0.45 * len(lengths) + 0.6),
                                 squeeze=False, layout="constrained")
        image = None
        for ax, grid in zip(axes[0], grids):
            values = np.full((len(lengths), len(noises)), np.nan)
            for c in sel:
                if c["grid"] == grid:
                    values[lengths.index(c["correlation_length"]), noises.index(c["noise"])] = c["gap"]
            image = ax.imshow(values, cmap="RdBu", vmin=-0.1, vmax=0.1, aspect="auto")
            for (i, j), v in np.ndenumerate(values):
                if np.isfinite(v):
                    ax.text(j, i, f"{v:+.3f}", ha="center", va="center", fontsize=6)
            ax.set_xticks(range(len(noises)), [f"{n:g}" for n in noises], fontsize=7)
            ax.set_yticks(range(len(lengths)), [f"{ell:g}" for ell in lengths], fontsize=7)
            ax.set_xlabel("noise", fontsize=7)
            ax.set_title(f"{problem} {grid}", fontsize=8)
        axes[0][0].set_ylabel("corr. length (smooth to rough)", fontsize=7)
        if image is not None:
            fig.colorbar(image, ax=list(axes[0]), shrink=0.8).ax.tick_params(labelsize=6)
        name = f"{prefix}robustness_{problem}.png"
        fig.savefig(folder / name, dpi=90)
        plt.close(fig)
        made.append((f"{problem}: network Pearson minus the best network-free smoother's, on that smoother's support "
                     "(blue: the network wins)", name))
    return made


# ---------------------------------------------------------------- plots


def _parameter_maps(rows: list[dict[str, Any]], folder: Path, name: str) -> list[tuple[str, str]]:
    """True vs recovered 2-D parameter maps, one panel per engine, at one noise level per problem."""
    import matplotlib.pyplot as plt
    import numpy as np

    made = []
    with_maps = [r for r in rows if r.get("kind") == "accuracy" and _ok(r) and r.get("arrays") and Path(r["arrays"]).exists()]
    for problem in sorted({r["problem"] for r in with_maps}):
        sel = [r for r in with_maps if r["problem"] == problem]
        noises = sorted({r["noise"] for r in sel})
        noise = noises[len(noises) // 2]
        sel = [r for r in sel if r["noise"] == noise]
        maps = [(r["engine"], np.load(r["arrays"])) for r in sel]
        maps = [(e, m) for e, m in maps if m["truth"].ndim == 2]
        if not maps:
            continue
        truth = maps[0][1]["truth"]
        lo, hi = np.nanpercentile(truth, [1, 99])
        fig, axes = plt.subplots(1, len(maps) + 1, figsize=(2.6 * (len(maps) + 1), 2.8), layout="constrained")
        panels = [("true", truth)] + [
            (f"{e} ({r['parameter_pearson']:.3f})", m["estimate"]) for (e, m), r in zip(maps, sel)
        ]
        for ax, (title, img) in zip(axes, panels):
            ax.imshow(np.asarray(img).T, origin="lower", cmap="magma", vmin=lo, vmax=hi)
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        file = f"{name}_{problem}.png"
        fig.savefig(folder / file, dpi=70)
        plt.close(fig)
        made.append((f"{problem}: true and recovered parameter maps at noise {noise:g} (Pearson in brackets)", file))
    return made


def _plots(rows: list[dict[str, Any]], folder: Path, prefix: str) -> list[tuple[str, str]]:
    """Write the PNGs; returns ``(caption, file name)`` pairs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    made = []
    scaling = [r for r in rows if r.get("kind") == "scaling" and _ok(r)]
    engines = _engines(scaling) if scaling else []
    colour = {e: f"C{i}" for i, e in enumerate(_engines(rows))}

    def finish(fig: Any, axes: Any, name: str, xticks: list[int] | None = None) -> None:
        for ax in axes:
            if xticks:
                ax.set_xscale("log", base=2)
                ax.set_xticks(xticks, [str(x) for x in xticks])
                ax.minorticks_off()
        handles = {h.get_label(): h for ax in axes for h in ax.get_lines() if not h.get_label().startswith("_")}
        fig.legend(list(handles.values()), list(handles), loc="outside right center", fontsize=7, frameon=False)
        fig.savefig(folder / name, dpi=80)
        plt.close(fig)
    orders = sorted({r["order"] for r in scaling})
    for field, label, scale in (("step_seconds", "time per step [s]", 1.0), ("peak_memory_bytes", "peak memory [MiB]", MIB)):
        if not orders:
            break
        fig, axes = plt.subplots(1, len(orders), figsize=(2.4 * len(orders) + 1.4, 2.6), squeeze=False, sharey=True,
                                 layout="constrained")
        for ax, order in zip(axes[0], orders):
            for engine in engines:
                pts = sorted((r["grid"], r[field] / scale) for r in scaling if r["order"] == order and r["engine"] == engine and r.get(field))
                if pts:
                    ax.loglog(*zip(*pts), "o-", label=engine, ms=3, color=colour[engine])
            ax.set_title(f"order {order}", fontsize=9)
            ax.set_xlabel("grid (samples per axis)", fontsize=8)
            ax.tick_params(labelsize=7)
        axes[0][0].set_ylabel(label, fontsize=8)
        name = f"{prefix}{'time' if scale == 1.0 else 'memory'}_vs_grid.png"
        finish(fig, axes[0], name, sorted({r["grid"] for r in scaling}))
        made.append((f"{label} vs grid size, per derivative order (log-log)", name))
    grids = sorted({r["grid"] for r in scaling})
    if grids:
        fig, axes = plt.subplots(1, len(grids), figsize=(2.4 * len(grids) + 1.4, 2.6), squeeze=False, sharey=True,
                                 layout="constrained")
        for ax, grid in zip(axes[0], grids):
            for engine in engines:
                pts = sorted((r["order"], r["step_seconds"]) for r in scaling if r["grid"] == grid and r["engine"] == engine)
                if pts:
                    ax.semilogy(*zip(*pts), "o-", label=engine, ms=3, color=colour[engine])
            ax.set_title(f"grid {grid}^2", fontsize=9)
            ax.set_xlabel("derivative order", fontsize=8)
            ax.set_xticks(sorted({r["order"] for r in scaling}))
            ax.tick_params(labelsize=7)
        axes[0][0].set_ylabel("time per step [s]", fontsize=8)
        finish(fig, axes[0], f"{prefix}time_vs_order.png")
        made.append(("time per step vs derivative order, per grid", f"{prefix}time_vs_order.png"))
    acc = [r for r in rows if r.get("kind") == "accuracy" and _ok(r)]
    if acc:
        fig, axes = plt.subplots(1, 2, figsize=(8, 2.8), layout="constrained")
        combos = sorted({(r["problem"], r["backbone"], r["engine"]) for r in acc})
        for (problem, backbone, engine) in combos:
            sel = [r for r in acc if (r["problem"], r["backbone"], r["engine"]) == (problem, backbone, engine)]
            for ax, field in zip(axes, ("parameter_pearson", "parameter_relative_l2")):
                pts = _mean_by_noise((r["noise"], r[field]) for r in sel)
                style = dict(color=colour[engine]) if len({c[:2] for c in combos}) == 1 else {}
                ax.plot(*zip(*pts), "o-", ms=3, label=f"{problem}/{backbone}/{engine}", **style)
        for problem in sorted({r["problem"] for r in acc}):
            sel = [r for r in acc if r["problem"] == problem]
            for name in sorted({n for r in sel for n in (r.get("baselines") or {})}):
                for ax, field in zip(axes, ("pearson", "relative_l2")):
                    pts = _mean_by_noise((r["noise"], r["baselines"][name][field]) for r in sel if name in (r.get("baselines") or {}))
                    ax.plot(*zip(*pts), "k--", lw=1, label=f"{problem}/baseline {name}")
        for ax, label in zip(axes, ("Pearson (higher is better)", "relative L2 (lower is better)")):
            ax.set_xlabel("noise", fontsize=8)
            ax.set_ylabel(label, fontsize=8)
            ax.tick_params(labelsize=7)
        finish(fig, axes, f"{prefix}accuracy_vs_noise.png")
        made.append(("recovered-parameter accuracy vs noise (mean over seeds); dashed: derivative-free baseline",
                     f"{prefix}accuracy_vs_noise.png"))
    made += _parameter_maps(rows, folder, f"{prefix}parameter_maps")
    made += _robustness_plot(rows, folder, prefix)
    return made


def _mean_by_noise(pairs: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    groups: dict[float, list[float]] = {}
    for noise, value in pairs:
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            groups.setdefault(noise, []).append(value)
    return [(n, sum(v) / len(v)) for n, v in sorted(groups.items())]


# ---------------------------------------------------------------- document


def _setup(rows: list[dict[str, Any]], report_command: str | None) -> list[str]:
    machines = {tuple(sorted((r.get("machine") or {}).items())) for r in rows if r.get("machine")}
    commands = sorted({r["command"] for r in rows if r.get("command")})
    lines = ["## Setup", ""]
    for machine in machines:
        m = dict(machine)
        lines.append(f"- Machine: {m.get('device_name')} ({m.get('device')}); CPU {m.get('cpu')}, {m.get('cpu_count')} cores, "
                     f"{m.get('platform')}; OMP_NUM_THREADS={m.get('omp_num_threads')}; mollifier {m.get('mollifier')}, "
                     f"torch {m.get('torch')}, Python {m.get('python')}.")
    if not machines:
        lines.append("- Machine: not recorded in the results.")
    lines += ["", "Commands:", "", "```sh", *commands, *([report_command] if report_command else []), "```"]
    methods = sorted({r["peak_memory_method"] for r in rows if r.get("peak_memory_method")})
    lines += ["", "Time per step is the median of the timed steps after one warm-up step. Peak memory is the "
              f"extra memory one step needs ({', '.join(methods) or 'as recorded'}: torch's own allocations, "
              "not the process RSS). Each row ran in its own process under a per-row time limit; rows that "
              "did not finish are shown with their status (timeout, out of memory, error, skipped), not dropped."]
    if not any(str((r.get("machine") or {}).get("device", r.get("device", "cpu"))).startswith("cuda") for r in rows):
        lines += ["", "**GPU numbers are not yet recorded**: every row here ran on a CPU."]
    return lines


def render_report(rows: list[dict[str, Any]], out_dir: str | os.PathLike[str], *, title: str = "Benchmarks",
                  note: str | None = None, report_command: str | None = None, plots: bool = True,
                  ceilings: list[dict[str, Any]] | None = None) -> str:
    """The Markdown text; plots are written to ``out_dir/figures`` (skipped without matplotlib).
    ``ceilings``: what the data allow per robustness cell (:func:`robustness_cells`)."""
    lines = [f"# {title}", ""]
    if note:
        lines += [note, ""]
    lines += _setup(rows, report_command)
    losses = find_losses(rows)
    lines += ["", "## Where mollifier does not win", "",
              "Checked: time and peak memory per step at derivative order >= 2 and grid >= 64^2; accuracy "
              "(Pearson, relative L2) at noise >= 1 % on the 4th-order problem; accuracy against the "
              "derivative-free baselines; and network-free estimates (no training) that match or beat the "
              f"trained network (Pearson within {NETWORK_FREE_MATCH}).", ""]
    lines += [f"- {text}" for text in losses] or ["- None in these results."]
    lines += ["", "## Scaling: one training step", "",
              "Manufactured residual of order 1/2/4/6 (gradient, Laplacian, biharmonic, triharmonic), "
              "4x128 tanh MLP; a cell is `time per step / peak memory`."]
    lines += scaling_tables(rows)
    lines += ["", "## Accuracy: recovering the hidden parameter", ""]
    settings = sorted({(r["problem"], json.dumps(r.get("problem_options") or {}, sort_keys=True),
                        json.dumps(r.get("training") or {}, sort_keys=True)) for r in rows if r.get("kind") == "accuracy"})
    for problem, options, training in settings:
        budget = "equal wall-clock (`time_budget`)" if "time_budget" in json.loads(training) else "equal Adam steps, not equal wall-clock"
        lines.append(f"- {problem}: problem options {options}; training overrides {training} (the same for every "
                     f"engine: {budget}), otherwise the problem's training defaults; `direct` rows are network-free.")
    lines += [""] if settings else []
    lines += accuracy_table(rows)
    lines += robustness_section(rows, ceilings)
    lines += ["", "## Figures", ""]
    if not plots:
        lines.append("Plots were not requested.")
    else:
        try:
            made = _plots(rows, Path(out_dir) / "figures", "bench_")
        except ImportError:
            made = None
            lines.append("matplotlib is not installed, so this report has no plots (`pip install mollifier[plot]`).")
        for caption, name in made or []:
            lines += [f"![{caption}](figures/{name})", "", f"*{caption}*", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_report(results: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                 ceiling: str | os.PathLike[str] | None = None, **options: Any) -> Path:
    """Read ``results`` (JSONL) and write ``out_dir/benchmarks.md`` (+ ``figures/``).

    ``ceiling``: the JSONL rows of ``benchmarks/robustness_ceiling.py --json`` (what the data
    allow in each robustness cell), shown beside the network's.
    """
    if not Path(results).exists():
        raise FileNotFoundError(f"no results file at {results}")
    rows = read_rows(results)
    if not rows:
        raise ValueError(f"{results} holds no result rows")
    if ceiling is not None:
        if not Path(ceiling).exists():
            raise FileNotFoundError(f"`ceiling`: no file at {ceiling}")
        bounds = read_rows(ceiling)
        if not bounds or any("oracle_pearson" not in r or "headroom" not in r for r in bounds):
            raise ValueError(f"`ceiling`: {ceiling} must hold the JSON lines of benchmarks/robustness_ceiling.py --json "
                             "(each with oracle_pearson and headroom)")
        options["ceilings"] = bounds
    for row in rows:  # parameter maps are stored beside the results file
        if row.get("arrays"):
            row["arrays"] = str(Path(results).parent / row["arrays"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "benchmarks.md"
    path.write_text(render_report(rows, out, **options))
    return path


def _grid(grid: object) -> str:
    """``64^2``, or ``default`` for rows run at the problem's default grid."""
    return "default" if grid is None else f"{grid}^2"
