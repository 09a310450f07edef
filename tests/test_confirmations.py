"""/forget's confirmation window, at its edges: the deadline itself counts, a moment later not."""

from bot.confirmations import FORGET_VALID_S, deadline, expired


def test_a_confirmation_counts_for_ten_minutes_to_the_second():
    assert FORGET_VALID_S == 600
    until = deadline(1000.25)
    assert until == 1600  # whole seconds, rounded down: never longer than promised
    assert not expired(until, 1000.25) and not expired(until, 1600.0)
    assert expired(until, 1600.001) and expired(until, 10**9)
    assert deadline(50.0, valid_s=5) == 55
