"""Your own problem from a Python file: ``mollifier run path/to/problem.py``.

The file is imported with its own folder on ``sys.path`` (as Python runs a script, so
modules beside it import) and defines a function ``problem`` (or ``build``) returning an
:class:`~mollifier.inverse.InverseProblem`. The command line passes it the options it
accepts among ``seed``, ``grid``, ``noise`` and ``density`` (and a config file's
``problem_options``); a flag the function does not accept is an error naming it.
Optionally:

- ``TRAINING``: a dict of training settings the file's problem runs with unless the user
  overrides them (the names of :class:`~mollifier.inverse.TrainConfig`);
- ``networks(problem)``: returns ``{field: torch.nn.Module}``, your own networks for the
  observed field (``"u"``) and any unknown or latent field.

Example file::

    import numpy as np
    from mollifier import Grid
    from mollifier.inverse import InverseProblem, Observations, UnknownField

    TRAINING = {"steps": 1500}

    def problem(seed: int = 0, grid: int = 65) -> InverseProblem:
        ...
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

from ..inverse.problem import InverseProblem
from .registry import ProblemSpec

__all__ = ["BUILDER_NAMES", "accepted_options", "is_problem_file", "load_problem_file"]

BUILDER_NAMES = ("problem", "build")
"""Names the problem-building function may have, in order of preference."""


def is_problem_file(name: str) -> bool:
    """Whether a PROBLEM argument names a Python file rather than a built-in problem."""
    return name.endswith(".py") or Path(name).is_file()


def _import(path: Path) -> ModuleType:
    name = f"mollifier_user_problem_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import problem file {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # as Python runs a script: modules beside the file import
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise ValueError(f"problem file {str(path)!r} failed to import: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.path.remove(folder)
    return module


def load_problem_file(path: str | Path) -> ProblemSpec:
    """The problem a file defines, as a :class:`~mollifier.problems.ProblemSpec`.

    Raises:
        FileNotFoundError: No such file.
        ValueError: The file does not import, or defines no ``problem``/``build``
            function, or its ``TRAINING`` is not a dict, or ``networks`` not callable.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"problem file {str(path)!r} not found")
    module = _import(path)
    builder = next((getattr(module, n) for n in BUILDER_NAMES if callable(getattr(module, n, None))), None)
    if builder is None:
        raise ValueError(
            f"problem file {str(path)!r} defines no function {' or '.join(repr(n) for n in BUILDER_NAMES)} "
            "returning an InverseProblem"
        )
    training = getattr(module, "TRAINING", {})
    if not isinstance(training, dict):
        raise ValueError(f"problem file {str(path)!r}: TRAINING must be a dict of training settings; got {type(training).__name__}")
    networks = getattr(module, "networks", None)
    if networks is not None and not callable(networks):
        raise ValueError(f"problem file {str(path)!r}: `networks` must be a function networks(problem) -> dict")

    def build(**options: Any) -> InverseProblem:
        problem = builder(**options)
        if not isinstance(problem, InverseProblem):
            raise ValueError(f"{path.name}: {builder.__name__}() must return an InverseProblem; got {type(problem).__name__}")
        return problem

    build.__signature__ = inspect.signature(builder)  # type: ignore[attr-defined]
    doc = (inspect.getdoc(module) or "").strip().splitlines()
    return ProblemSpec(
        name=path.stem,
        order=None,
        summary=doc[0] if doc else f"problem from {path.name}",
        build=build,
        training=MappingProxyType(dict(training)),
        networks=networks,
    )


def accepted_options(spec: ProblemSpec, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` checked against what ``spec.build`` accepts.

    Raises:
        ValueError: An option the builder does not take (named, with those it takes).
    """
    parameters = inspect.signature(spec.build).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return dict(options)
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        raise ValueError(
            f"problem {spec.name!r} does not take option(s) {unknown} (from flags or the config file); "
            f"its function takes {sorted(parameters)}"
        )
    return dict(options)
