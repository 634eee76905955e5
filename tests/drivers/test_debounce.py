import pytest

from drivers.debounce import Debouncer


@pytest.mark.parametrize(
    ("edges", "accepted"),
    [
        ([("a", 0.0)], [True]),
        ([("a", 0.0), ("a", 0.04), ("a", 0.05)], [True, False, True]),
        ([("a", 0.0), ("b", 0.01), ("a", 0.02)], [True, True, False]),
        ([("a", 0.0), ("a", 0.03), ("a", 0.06)], [True, False, True]),  # from the last accepted
    ],
)
def test_debounce_per_key(edges, accepted):
    now = [0.0]
    d = Debouncer(0.05, clock=lambda: now[0])
    result = []
    for key, t in edges:
        now[0] = t
        result.append(d.accept(key))
    assert result == accepted


def test_zero_bounce_accepts_everything():
    d = Debouncer(0.0, clock=lambda: 1.0)
    assert [d.accept() for _ in range(3)] == [True, True, True]
