"""Launch detection, clear errors, and the single-process behaviour of batches and collectives."""

from __future__ import annotations

import pytest
import torch

from mollifier.distributed import DistributedContext, ItemError, assign_ranks, current, init, map_inputs, session
from mollifier.distributed.collectives import all_gather_objects, all_gather_rows, all_reduce_max, all_reduce_sum_
from mollifier.distributed.context import launch_from_env


def test_not_launched_means_one_process():
    assert launch_from_env({}) is None
    ctx = init(env={})
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.is_distributed) == (0, 1, True, False)
    assert current().world_size == 1
    with session() as ctx:
        assert ctx.world_size == 1


def test_launch_variables_are_read():
    assert launch_from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}) == (3, 4, 1)
    assert init(env={"WORLD_SIZE": "1", "RANK": "0"}).world_size == 1  # torchrun with one process


@pytest.mark.parametrize(
    "env, message",
    [
        ({"WORLD_SIZE": "two", "RANK": "0"}, r"`WORLD_SIZE` must be an int >= 1 \(torchrun sets it\); got 'two'"),
        ({"WORLD_SIZE": "2"}, r"`WORLD_SIZE` is 2 but `RANK` is not set"),
        ({"WORLD_SIZE": "2", "RANK": "2"}, r"`RANK` must be an int in \[0, 1\] \(torchrun sets it\); got 2"),
        ({"RANK": "1"}, r"`RANK` is set \('1'\) but `WORLD_SIZE` is not"),
        ({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "-1"}, r"`LOCAL_RANK` must be an int >= 0"),
    ],
)
def test_malformed_launch_variables_are_named(env, message):
    with pytest.raises(ValueError, match=message):
        launch_from_env(env)


def test_init_errors_name_the_setting():
    launched = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}
    with pytest.raises(ValueError, match="`MASTER_ADDR` is not set"):
        init(env=launched)
    with pytest.raises(ValueError, match=r"`backend` must be one of \['gloo', 'nccl'\]; got 'mpi'"):
        init(env={**launched, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}, backend="mpi")
    with pytest.raises(ValueError, match=r"`timeout` must be a number of seconds > 0; got 0"):
        init(env={}, timeout=0)
    with pytest.raises(ValueError, match=r"`MOLLIFIER_DIST_TIMEOUT` must be a number of seconds > 0; got 'soon'"):
        init(env={"MOLLIFIER_DIST_TIMEOUT": "soon"})
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="need CUDA, which is not available"):
            init("cuda", env={**launched, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"})


def test_each_rank_gets_its_local_gpu():
    ctx = DistributedContext(rank=3, world_size=4, local_rank=1, backend="nccl")
    assert ctx.device_for("cuda") == torch.device("cuda", 1)
    assert ctx.device_for("cuda:0") == torch.device("cuda", 0) and ctx.device_for("cpu") == torch.device("cpu")


def test_assign_ranks_round_robin_or_by_key():
    assert assign_ranks(range(5), 2) == [0, 1, 0, 1, 0]
    assert assign_ranks(["a1", "a2", "b1", "c1", "b2"], 2, key=lambda s: s[0]) == [0, 0, 1, 0, 1]
    with pytest.raises(ValueError, match="`world_size` must be an int >= 1; got 0"):
        assign_ranks([1], 0)


def test_map_inputs_in_one_process_keeps_order_and_turns_errors_into_rows():
    def invert(x):
        return 1 / x

    rows = map_inputs([1, 0, 4], invert)
    assert rows[0] == 1 and rows[2] == 0.25
    assert rows[1] == ItemError(0, "ZeroDivisionError: division by zero")
    assert map_inputs([2, 0], invert, on_error=lambda x, e: ("bad", x)) == [0.5, ("bad", 0)]


def test_map_inputs_lets_exits_through_in_one_process():
    def leave(x):
        raise SystemExit(x)

    with pytest.raises(SystemExit):
        map_inputs([1], leave)


def test_collectives_are_identities_in_one_process():
    ctx = DistributedContext()
    t = torch.arange(6.0).reshape(1, 1, 3, 2)
    assert all_gather_rows(ctx, t, [3], 2, "x") is t
    assert all_reduce_max(ctx, 2.5, "x") == 2.5
    assert all_gather_objects(ctx, {"a": 1}, "x") == [{"a": 1}]
    u = torch.ones(3)
    all_reduce_sum_(ctx, [u], "x")
    assert u.tolist() == [1.0, 1.0, 1.0]


def test_docstring_examples_run():
    import doctest

    import mollifier.distributed.batch as batch
    import mollifier.distributed.context as context
    import mollifier.distributed.tiling as tiling

    for module in (batch, context, tiling):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
