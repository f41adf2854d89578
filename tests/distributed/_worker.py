"""Rank program for tests/distributed: ``python _worker.py SCENARIO OUT_DIR`` in each process.

Launched by ``launch()`` in test_distributed.py with torchrun's environment variables
(WORLD_SIZE, RANK, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). Each rank writes
``OUT_DIR/rank<r>.json`` with what it measured; the tests assert on those files.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the tolerances module

from tolerances import (  # noqa: E402
    EPS64,
    engine_abs_adjoint,
    engine_reordering_bound,
    engine_terms,
    network_abs_vjp,
    network_backward_roundings,
    network_forward_bound,
)

from mollifier.distributed import RankFailedError, map_inputs, session  # noqa: E402
from mollifier.inverse import LossWeights, TrainConfig, train  # noqa: E402
from mollifier.inverse.model import InverseModel  # noqa: E402
from mollifier.inverse.objective import Objective, TiledObjective  # noqa: E402
from mollifier.problems import make_problem  # noqa: E402

DTYPE = torch.float64


def _problem(name: str, engine: str = "mollifier"):
    # the unknown is an MLP here: the rounding model (tests/tolerances.py) covers MLPs
    if name == "heat":  # valid boundary, a known field, sparse observations
        return make_problem("heat", grid=20, noise=0.05, density=0.7, seed=1, prior="network")
    return make_problem("chromatin", grid=32, noise=0.05, seed=0, prior="network")  # periodic, order 4


def _rounding_bounds(problem, model, whole) -> dict:
    """How far the tiled objective may lie from the single-process one, from the arithmetic.

    Tiled and whole compute the same exact quantities; they differ by rounding only: the
    backbones are evaluated in batches of other sizes (each sample within
    ``network_forward_bound``, so two evaluations within twice that), the convolutions
    and sums run over other shapes and in other orders. To first order in eps:

    - field ``k`` (engine output): within ``engine_reordering_bound`` ``B_k``;
    - the residual r (pointwise in the fields) moves by
      ``E_r = sum_k |dr/dd_k| B_k + sum_j |dr/dp_j| dp_j``; a loss term (a sum of N
      squares: relative rounding (N + 4) eps in any order) by sum |dL/dd_k| B_k + ...;
    - gradients: the adjoint at the network outputs is sum_k C_k^T dL/dd_k (+ the data
      term); its change is bounded through |C_k|^T of the adjoint fields' change (first
      and second derivatives of r, pointwise), the backward pass's own rounding by K eps
      times the same chain in absolute values (engine_abs_adjoint, network_abs_vjp), K
      counting the roundings along a chain (stencil taps, network layers, the sum over
      points).
    """
    engine = model.engine
    dtype = DTYPE
    coords_ext = engine.coords(dtype)
    shape = problem.grid.shape
    with torch.no_grad():
        u_ext = model.field(coords_ext)
    du = 2 * network_forward_bound(model.field, coords_ext)  # two evaluations
    u_max = float(u_ext.abs().max())
    loss, parts, d, p = whole(5)
    names = list(d)
    bounds = {k: engine_reordering_bound(engine, k, u_max, dtype, input_difference=float(du.max())) for k in names}
    coords = problem.grid.coords(dtype=dtype)
    dp = {j: 2 * network_forward_bound(m, coords).reshape(1, 1, *shape) for j, m in model.field_unknowns.items()}

    # the loss terms, recomputed from d and p as Objective does
    misfit = (d["u"] - whole.data) ** 2 * whole.mask
    data_loss = misfit.sum() / whole.observed_count / whole.data_scale
    r = problem.residual(d, p, whole.residual_known) / problem.residual_scale
    residual_loss = (r**2).mean()
    n_points = r.numel()
    n_obs = int(whole.observed_count)
    fields = [d[k] for k in names] + [p[j] for j in dp]
    field_bounds = [torch.full_like(d[k], bounds[k]) for k in names] + [dp[j] for j in dp]

    def first_order(value, n_terms):
        grads = torch.autograd.grad(value, fields, retain_graph=True, allow_unused=True)
        spread = sum(float((g.abs() * b).sum()) for g, b in zip(grads, field_bounds) if g is not None)
        return spread + (n_terms + 4) * EPS64 * abs(float(value.detach()))

    data_bound = first_order(data_loss, n_obs)
    residual_bound_ = first_order(residual_loss, n_points)
    w_data, w_res = whole.weights.data, whole.weights.residual
    loss_bound = w_data * data_bound + w_res * residual_bound_ + 4 * EPS64 * abs(float(loss))

    # gradients: pointwise first and second derivatives of r
    dr = torch.autograd.grad(r.sum(), fields, create_graph=True, allow_unused=True)
    dr = [torch.zeros_like(f) if g is None else g for f, g in zip(fields, dr)]
    e_r = sum(g.detach().abs() * b for g, b in zip(dr, field_bounds))
    adjoint_change = []
    for i, g in enumerate(dr):
        second = torch.zeros_like(g)
        if g.requires_grad:
            hs = torch.autograd.grad(g.sum(), fields, retain_graph=True, allow_unused=True)
            second = sum(h.detach().abs() * b for h, b in zip(hs, field_bounds) if h is not None)
        adjoint_change.append(2 * w_res / n_points * (e_r * g.detach().abs() + r.detach().abs() * second))
    adjoints = torch.autograd.grad(loss, fields, retain_graph=True, allow_unused=True)
    adjoints = [torch.zeros_like(f) if a is None else a.detach() for f, a in zip(fields, adjoints)]
    # the data term's adjoint 2 (u - data) mask / (count scale) moves with u
    data_change = 2 * w_data * whole.mask * bounds["u"] / (whole.observed_count * whole.data_scale)
    adjoint_change[names.index("u")] = adjoint_change[names.index("u")] + data_change

    field_shape = (1, u_ext.shape[1], *engine.grid.extended_shape(engine.halo))
    change_ext = torch.zeros(field_shape, dtype=dtype)
    size_ext = torch.zeros(field_shape, dtype=dtype)
    k_conv = 0
    for i, k in enumerate(names):
        change_ext += engine_abs_adjoint(engine, k, adjoint_change[i].expand_as(d[k]), field_shape)
        size_ext += engine_abs_adjoint(engine, k, adjoints[i].abs(), field_shape)
        k_conv = max(k_conv, max(sum(s.numel() + 1 for s in passes) for _, passes in engine_terms(engine, k)) + 4)
    n_ext = coords_ext.shape[0]
    k_field = k_conv + 2 * network_backward_roundings(model.field) + n_ext + 4
    per_point = (change_ext + k_field * EPS64 * size_ext).reshape(field_shape[1], -1).T  # (N_ext, C)
    grad_bounds = network_abs_vjp(model.field, coords_ext, per_point)
    for i, (j, m) in enumerate(model.field_unknowns.items(), start=len(names)):
        k_p = 2 * network_backward_roundings(m) + n_points + 4
        v = (adjoint_change[i] + k_p * EPS64 * adjoints[i].abs()).reshape(-1, 1)
        grad_bounds.update(network_abs_vjp(m, coords, v))
    grad_tol = [grad_bounds.get(id(q)) for q in model.parameters()]
    model.zero_grad(set_to_none=True)
    return {"fields": bounds, "loss": loss_bound, "data": data_bound, "residual": residual_bound_, "grads": grad_tol}


def _loss_and_grads(problem, engine: str, ctx) -> dict:
    weights = LossWeights.resolve(problem)
    torch.manual_seed(0)
    model = InverseModel(problem, engine=engine).to(dtype=DTYPE)
    whole = Objective(problem, model, weights, torch.device("cpu"), DTYPE)
    bounds = _rounding_bounds(problem, model, whole)
    loss, parts, _, _ = whole(5)
    loss.backward()
    reference = [q.grad.clone() for q in model.parameters()]
    model.zero_grad(set_to_none=True)
    tiled = TiledObjective(problem, model, weights, torch.device("cpu"), DTYPE, ctx)
    local, tparts, d, p = tiled(5)
    local.backward()
    tiled.after_backward()
    grads = [q.grad for q in model.parameters()]
    full_d, _ = tiled.full(d, p)
    whole_d, _ = whole.full(*whole(5)[2:])
    ratios = []  # |tiled - whole| / bound per gradient entry (a parameter without a bound has no gradient)
    for a, b, tol in zip(grads, reference, bounds["grads"]):
        if a is None or b is None:
            assert a is None and b is None
            continue
        ratios.append(float(((a - b).abs() / tol).max()))
    return {
        "loss": parts["loss"], "tiled_loss": tparts["loss"],
        "data": parts["data"], "tiled_data": tparts["data"],
        "residual": parts["residual"], "tiled_residual": tparts["residual"],
        "loss_bound": bounds["loss"], "data_bound": bounds["data"], "residual_bound": bounds["residual"],
        "grad_max_abs_diff": max(float((a - b).abs().max()) for a, b in zip(grads, reference)),
        "grad_max_abs": max(float(a.abs().max()) for a in reference),
        "grad_max_ratio": max(ratios),
        "grad_max_relative_bound": max(float(t.max()) for t in bounds["grads"] if t is not None)
        / max(float(a.abs().max()) for a in reference),
        "field_max_abs_diff": max(float((full_d[k] - whole_d[k].detach()).abs().max()) for k in whole_d),
        "field_max_ratio": max(float((full_d[k] - whole_d[k].detach()).abs().max()) / bounds["fields"][k] for k in whole_d),
        "field_bounds": bounds["fields"],
        "rows": tiled.slab.rows, "halo": tiled.slab.halo,
    }


def _prior_share(ctx) -> dict:
    """A Gaussian-process unknown: the tiled loss and gradients count its prior once (rank 0)."""
    from mollifier.inverse.priors import prior_weight, resolve_priors
    from mollifier.inverse.warm_start import network_free_start

    problem = make_problem("heat", grid=20, noise=0.05, density=1.0, seed=1, prior="gp")
    start = network_free_start(problem)
    problem, report = resolve_priors(problem, start)
    weights = LossWeights.resolve(problem)
    torch.manual_seed(0)
    model = InverseModel(problem).to(dtype=DTYPE)
    with torch.no_grad():
        model.field_unknowns["lambda"].net.z.fill_(1.0)   # a prior term far above rounding
    whole = Objective(problem, model, weights, torch.device("cpu"), DTYPE)
    whole.prior_weight = prior_weight(weights.data, float(whole.observed_count), whole.data_scale, report["lambda"]["noise_std"])
    loss, parts, _, _ = whole(5)
    loss.backward()
    z = model.field_unknowns["lambda"].net.z
    reference = z.grad.clone()
    model.zero_grad(set_to_none=True)
    tiled = TiledObjective(problem, model, weights, torch.device("cpu"), DTYPE, ctx)
    tiled.prior_weight = whole.prior_weight
    local, tparts, _, _ = tiled(5)
    local.backward()
    tiled.after_backward()
    return {"loss": parts["loss"], "tiled_loss": tparts["loss"], "prior": parts["prior"],
            "grad_max_abs_diff": float((z.grad - reference).abs().max()), "grad_max_abs": float(reference.abs().max())}


def equivalence(out: Path) -> None:
    with session(timeout=120) as ctx:
        report: dict = {"rank": ctx.rank, "world_size": ctx.world_size}
        report["prior-share"] = _prior_share(ctx)
        for name, engine in (("chromatin", "mollifier"), ("heat", "mollifier"), ("heat", "fd")):
            report[f"objective-{name}-{engine}"] = _loss_and_grads(_problem(name), engine, ctx)
        for name in ("chromatin", "heat"):
            problem = _problem(name)
            config = TrainConfig(steps=4, dtype="float64", log_every=2, checkpoint_every=0, residual_warmup=0)
            tiled = train(problem, config, out / f"run-{name}", distributed=True)
            single = train(problem, config)
            diffs = [float((a - b).detach().abs().max()) for a, b in zip(tiled.model.parameters(), single.model.parameters())]
            report[f"train-{name}"] = {
                "param_max_abs_diff": max(diffs),
                "loss": [h["loss"] for h in tiled.history], "single_loss": [h["loss"] for h in single.history],
                "pearson": tiled.metrics["parameter_pearson"], "single_pearson": single.metrics["parameter_pearson"],
                "distributed": tiled.metrics.get("distributed"),
            }
        items = list(range(11))

        def work(i: int) -> dict:
            if i == 7:
                raise ValueError("input 7 is broken")
            return {"item": i, "rank": ctx.rank}

        rows = map_inputs(items, work, on_error=lambda i, exc: {"item": i, "error": str(exc), "rank": ctx.rank})
        report["batch"] = rows

        def stops_rank_1(i: int) -> dict:
            if ctx.rank == 1 and i == 3:
                raise SystemExit("rank 1 is leaving")
            return {"item": i, "rank": ctx.rank}

        try:
            report["batch_rank_failure"] = map_inputs(
                list(range(8)), stops_rank_1, on_error=lambda i, exc: {"item": i, "error": str(exc)})
            report["batch_rank_failure_raised"] = None
        except RankFailedError as exc:
            report["batch_rank_failure_raised"] = str(exc)
    (out / f"rank{report['rank']}.json").write_text(json.dumps(report))


def raises_in_training(out: Path) -> None:
    """Rank 1's residual raises at its third call; rank 0 must fail with a clear error."""
    with session(timeout=60) as ctx:
        problem = _problem("chromatin")
        original, calls = problem.residual, {"n": 0}

        def residual(d, p, k):
            calls["n"] += 1
            if ctx.rank == 1 and calls["n"] == 3:
                raise ValueError("injected failure in the residual")
            return original(d, p, k)

        problem.residual = residual
        try:
            train(problem, TrainConfig(steps=20, log_every=0, checkpoint_every=0), distributed=True)
            outcome = {"rank": ctx.rank, "error": None}
        except RankFailedError as exc:
            outcome = {"rank": ctx.rank, "error": str(exc), "type": "RankFailedError"}
        except ValueError as exc:
            outcome = {"rank": ctx.rank, "error": str(exc), "type": "ValueError"}
        (out / f"rank{ctx.rank}.json").write_text(json.dumps(outcome))
        if outcome.get("type") == "ValueError":
            raise SystemExit(3)  # the failing rank exits, as it would in a real run


def dies_in_batch(out: Path) -> None:
    """Rank 1 is killed (no Python exception, no report) while rank 0 waits in the gather."""
    with session(timeout=60) as ctx:
        def work(i: int) -> int:
            if ctx.rank == 1:
                os._exit(9)
            return i

        try:
            map_inputs(list(range(4)), work)
            outcome = {"rank": ctx.rank, "error": None}
        except RankFailedError as exc:
            outcome = {"rank": ctx.rank, "error": str(exc)}
        (out / f"rank{ctx.rank}.json").write_text(json.dumps(outcome))


if __name__ == "__main__":
    scenario, folder = sys.argv[1], Path(sys.argv[2])
    {"equivalence": equivalence, "raises_in_training": raises_in_training, "dies_in_batch": dies_in_batch}[scenario](folder)
