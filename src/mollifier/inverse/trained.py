"""A finished run's networks, back from its results folder, evaluable anywhere.

Training writes ``model.pt`` beside ``checkpoint.pt``: the field's network (scaled to the
data), the unknown and latent fields' networks and scalar unknowns, and what they need
to be evaluated again (the grid, each field's axes, the engine and its radius).
:func:`load` reads it back as a :class:`TrainedModel`:

- :meth:`TrainedModel.field` / :meth:`TrainedModel.unknown`: the networks at any
  coordinates ``(N, ndim)``;
- :meth:`TrainedModel.derivatives`: named derivatives of any field on any grid, from any
  engine (by default the run's own, with its radius);
- :meth:`TrainedModel.evaluate`: everything on a new grid, as NumPy arrays.

The problem itself (its residual, its data) is not needed, so a run can be evaluated on
a machine that never saw its data. Your own network classes must be importable where you
load (``torch.load`` unpickles them).

Example:
    >>> import tempfile, mollifier
    >>> from mollifier.inverse import TrainConfig, train
    >>> from mollifier.problems import make_problem
    >>> folder = tempfile.mkdtemp()
    >>> _ = train(make_problem("heat", grid=24, seed=0), TrainConfig(steps=3, log_every=0), folder)
    >>> run = mollifier.load(folder)
    >>> out = run.evaluate(mollifier.Grid.from_bounds([(0.0, 1.0), (0.0, 1.0)], (40, 40)))
    >>> out["u"].shape, out["lambda"].shape
    ((1, 40, 40), (40, 40))
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.engines import ENGINES, engine_options, make_engine
from ..core.grid import Grid
from ..core.operators import DerivativeSpec
from ..runtime.files import write_torch
from .model import InverseModel, subgrid

__all__ = ["MODEL_NAME", "TrainedModel", "load", "save_networks"]

MODEL_NAME = "model.pt"
"""File name of the trained networks inside a results folder."""


def save_networks(path: str | os.PathLike[str], model: InverseModel, config: Any) -> Path:
    """Atomically write the trained networks of ``model`` (and how to evaluate them) to ``path``."""
    problem = model.problem
    record = {
        "grid": problem.grid,
        "field": model.field,
        "unknowns": dict(model.field_unknowns.items()),
        "scalars": {name: float(m().detach()) for name, m in model.scalar_unknowns.items()},
        "axes": dict(model.axes),
        "channels": problem.channels,
        "field_names": list(problem.field_names),
        "parameter": problem.parameter,
        "engine": config.engine,
        "engine_options": dict(config.engine_options),
        "radius": model.radius(),
        "boundary": problem.boundary,
    }
    return write_torch(path, record)


class TrainedModel:
    """The trained networks of a run (see :func:`load`)."""

    def __init__(self, record: Mapping[str, Any], folder: Path) -> None:
        self.folder = folder
        self.grid: Grid = record["grid"]
        self.networks: dict[str, nn.Module] = {"u": record["field"], **record["unknowns"]}
        for net in self.networks.values():
            net.eval()
        self.scalars: dict[str, float] = dict(record["scalars"])
        self.axes: dict[str, tuple[int, ...]] = {"u": tuple(range(self.grid.ndim)), **record["axes"]}
        self.engine: str = record["engine"]
        self.engine_options: dict[str, Any] = dict(record["engine_options"])
        self.radius: list[float] | None = record["radius"]
        self.boundary: str = record["boundary"]
        self.parameter: str = record["parameter"]
        self.field_names: list[str] = list(record["field_names"])
        metrics = folder / "metrics.json"
        self.metrics: dict[str, Any] = json.loads(metrics.read_text()) if metrics.is_file() else {}

    @property
    def fields(self) -> list[str]:
        """``"u"`` (the observed field) and the unknown and latent fields, by name."""
        return list(self.networks)

    def _network(self, name: str) -> nn.Module:
        if name not in self.networks:
            raise ValueError(f"`name` must be one of the run's fields {self.fields}; got {name!r}")
        return self.networks[name]

    def _coords(self, name: str, coords: Any) -> torch.Tensor:
        params = list(self._network(name).parameters())
        dtype = params[0].dtype if params else torch.float32
        coords = torch.as_tensor(np.asarray(coords) if not isinstance(coords, torch.Tensor) else coords, dtype=dtype)
        k = len(self.axes[name])
        if coords.ndim == 1 and k == 1:
            coords = coords[:, None]
        if coords.ndim != 2 or coords.shape[1] != k:
            raise ValueError(f"`coords` for field {name!r} must have shape (N, {k}) (its axes {list(self.axes[name])}); got {tuple(coords.shape)}")
        return coords

    @torch.no_grad()
    def field(self, coords: Any) -> np.ndarray:
        """The observed field's network at ``coords`` ``(N, ndim)``: ``(N, C)`` (not mollified)."""
        return self._network("u")(self._coords("u", coords)).double().numpy()

    @torch.no_grad()
    def unknown(self, name: str, coords: Any | None = None) -> np.ndarray | float:
        """An unknown or latent field's network at ``coords`` ``(N, len(axes))``: ``(N,)``; or a
        scalar unknown's value."""
        if name in self.scalars:
            return self.scalars[name]
        if name == "u":
            raise ValueError("`name` 'u' is the observed field: use field()")
        return self._network(name)(self._coords(name, coords)).double().numpy()[:, 0]

    def derivatives(
        self,
        name: str,
        grid: Grid,
        derivatives: Mapping[str, DerivativeSpec],
        *,
        engine: str | None = None,
        radius: Any = None,
        **options: Any,
    ) -> dict[str, np.ndarray]:
        """Named derivatives of field ``name`` on ``grid`` (over the field's own axes), by an engine.

        Args:
            name: ``"u"`` or an unknown or latent field.
            grid: Where (its axes are the field's own: for a field on axes ``(0, 1)`` of a
                3-D problem, a 2-D grid).
            derivatives: ``name -> multi-index`` (or linear combination) over ``grid``'s axes.
            engine: One of :data:`~mollifier.core.engines.ENGINES` (default: the run's).
            radius: Mollifier radius (default: the run's, for the ``mollifier`` engine).
            **options: More engine options (default: the run's ``engine_options`` when
                the engine is the run's).

        Returns:
            ``name -> (C, *grid.shape)`` arrays, with the field itself under ``name``.
        """
        net = self._network(name)
        engine = engine or self.engine
        if engine not in ENGINES:
            raise ValueError(f"`engine` must be one of {list(ENGINES)}; got {engine!r}")
        takes = engine_options(engine)
        chosen = dict(self.engine_options) if engine == self.engine else {}
        chosen.update(options)
        if "boundary" in takes:
            chosen.setdefault("boundary", "valid")
        if "radius" in takes:
            if radius is None:
                if self.radius is None:
                    raise ValueError("`radius` is needed: the run used no mollifier engine")
                axes = self.axes[name]
                radius = [self.radius[a] for a in axes] if grid.ndim == len(axes) else list(self.radius)
            chosen["radius"] = radius
        if name != "u":
            chosen["field_name"] = name
        eng = make_engine(engine, grid, derivatives, **chosen)
        dtype = next(net.parameters()).dtype
        with torch.set_grad_enabled(engine.startswith("autodiff")):
            out = eng(net, dtype=dtype)
        return {k: v.detach().double().numpy()[0] for k, v in out.items()}

    @torch.no_grad()
    def evaluate(self, grid: Grid | None = None) -> dict[str, np.ndarray]:
        """Every field's network on ``grid`` (default: the training grid): ``"u"`` ``(C, *shape)``,
        each unknown or latent field on its own axes, scalars as 0-d arrays, and the axes."""
        grid = grid or self.grid
        if grid.ndim != self.grid.ndim:
            raise ValueError(f"`grid` must have the run's {self.grid.ndim} axes; got {grid.ndim}")
        out: dict[str, np.ndarray] = {}
        for name in self.networks:
            own = subgrid(grid, self.axes[name])
            values = self._network(name)(self._coords(name, own.coords(dtype=torch.float64).numpy())).double().numpy()
            out[name] = values.T.reshape(values.shape[1], *own.shape) if name == "u" else values[:, 0].reshape(own.shape)
        for name, value in self.scalars.items():
            out[name] = np.asarray(value)
        for axis, coords in enumerate(grid.axes(dtype=torch.float64)):
            out[f"axis{axis}"] = coords.numpy()
        return out


def load(run_dir: str | os.PathLike[str]) -> TrainedModel:
    """The trained networks of a finished (or checkpointed) run, from its results folder.

    Raises:
        FileNotFoundError: The folder has no ``model.pt`` (a network-free estimate, a run
            from before this file existed, or not a results folder).
        ValueError: ``model.pt`` is unreadable.
    """
    folder = Path(run_dir)
    path = folder / MODEL_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{folder} has no {MODEL_NAME}: not the results folder of a training run (network-free estimates have no networks)"
        )
    try:
        record = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure: say which file
        raise ValueError(f"{path} is unreadable ({type(exc).__name__}: {exc}); if it holds your own network class, import it first") from exc
    return TrainedModel(record, folder)
