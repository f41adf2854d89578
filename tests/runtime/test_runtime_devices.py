"""runtime.devices.seeded: a seeded draw that leaves the caller's RNG as it was."""

import torch

from mollifier.runtime.devices import seeded


def test_seeded_draws_repeat_and_the_callers_stream_is_untouched():
    cpu = torch.device("cpu")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with seeded(7, cpu):
        first = torch.rand(4)
    with seeded(7, cpu):
        second = torch.rand(4)
    assert torch.equal(first, second)
    assert torch.equal(torch.rand(3), expected)  # as if the seeded blocks never ran
