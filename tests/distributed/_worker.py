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

from mollifier.distributed import RankFailedError, map_inputs, session
from mollifier.inverse import LossWeights, TrainConfig, train
from mollifier.inverse.model import InverseModel
from mollifier.inverse.objective import Objective, TiledObjective
from mollifier.problems import make_problem

DTYPE = torch.float64


def _problem(name: str, engine: str = "mollifier"):
    if name == "heat":  # valid boundary, a known field, sparse observations
        return make_problem("heat", grid=20, noise=0.05, density=0.7, seed=1)
    return make_problem("chromatin", grid=32, noise=0.05, seed=0)  # periodic, order 4


def _loss_and_grads(problem, engine: str, ctx) -> dict:
    weights = LossWeights.resolve(problem)
    torch.manual_seed(0)
    model = InverseModel(problem, engine=engine).to(dtype=DTYPE)
    whole = Objective(problem, model, weights, torch.device("cpu"), DTYPE)
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
    return {
        "loss": parts["loss"], "tiled_loss": tparts["loss"],
        "data": parts["data"], "tiled_data": tparts["data"],
        "residual": parts["residual"], "tiled_residual": tparts["residual"],
        "grad_max_abs_diff": max(float((a - b).abs().max()) for a, b in zip(grads, reference)),
        "grad_max_abs": max(float(a.abs().max()) for a in reference),
        "field_max_abs_diff": max(float((full_d[k] - whole_d[k].detach()).abs().max()) for k in whole_d),
        "rows": tiled.slab.rows, "halo": tiled.slab.halo,
    }


def equivalence(out: Path) -> None:
    with session(timeout=120) as ctx:
        report: dict = {"rank": ctx.rank, "world_size": ctx.world_size}
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
