"""A training run in its own process, for the fault-injection tests.

``python _train_child.py OUT [--resume] [--kill-in-checkpoint-write K]``

Trains the Langevin benchmark (grid 64, 5 % noise, seed 3) for 240 Adam steps with a
checkpoint every 20 steps and 20 L-BFGS iterations, into OUT. With
``--kill-in-checkpoint-write K`` the process SIGKILLs itself in the middle of writing its
K-th checkpoint (after the temporary file is written, before it replaces the old one):
the fault the atomic writer must survive.
"""

from __future__ import annotations

import os
import signal
import sys

import torch

torch.set_num_threads(1)

from mollifier.inverse import TrainConfig, train  # noqa: E402
from mollifier.problems import make_problem  # noqa: E402

CONFIG = TrainConfig(steps=240, lbfgs_steps=20, checkpoint_every=20, log_every=40, device="cpu")


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
    train(problem, CONFIG, out, resume=resume)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
