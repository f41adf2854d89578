"""A training run in its own process, for the fault-injection tests.

``python _train_child.py OUT [--resume] [--kill-in-checkpoint-write K] [--pace SECONDS]``

Trains the Langevin benchmark (grid 64, 5 % noise, seed 3) for 240 Adam steps with a
checkpoint every 20 steps and 20 L-BFGS iterations, into OUT. With
``--kill-in-checkpoint-write K`` the process SIGKILLs itself in the middle of writing its
K-th checkpoint (after the temporary file is written, before it replaces the old one):
the fault the atomic writer must survive.

With ``--pace SECONDS`` each Adam step lasts at least that long (a callback that sleeps;
the numbers are untouched), so the run lasts long enough on any CPU for kills at random
moments to land inside it.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import torch

torch.set_num_threads(1)

from mollifier.inverse import Callback, TrainConfig, train  # noqa: E402
from mollifier.problems import make_problem  # noqa: E402

CONFIG = TrainConfig(steps=240, lbfgs_steps=20, checkpoint_every=20, log_every=40, device="cpu")


class Pace(Callback):
    """Stretch each step to at least ``seconds`` of wall-clock time."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.last = time.perf_counter()

    def on_step_end(self, state, entry) -> None:
        left = self.seconds - (time.perf_counter() - self.last)
        if left > 0:
            time.sleep(left)
        self.last = time.perf_counter()


def main(argv: list[str]) -> int:
    out = argv[0]
    resume = "--resume" in argv
    if "--kill-in-checkpoint-write" in argv:
        target = int(argv[argv.index("--kill-in-checkpoint-write") + 1])
        import mollifier.runtime.files as files

        real_replace = files.os.replace
        seen = {"n": 0}

        def replace(src, dst):
            if str(dst).endswith("checkpoint.pt"):
                seen["n"] += 1
                if seen["n"] == target:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real_replace(src, dst)

        files.os.replace = replace
    problem = make_problem("langevin", grid=64, noise=0.05, seed=3)
    pace = [Pace(float(argv[argv.index("--pace") + 1]))] if "--pace" in argv else []
    train(problem, CONFIG, out, resume=resume, callbacks=pace)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
