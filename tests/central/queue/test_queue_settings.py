"""The [queue] config section: defaults, every error at once, cross-references."""

from __future__ import annotations

import pytest

from central.queue.engine import QueueEngine
from central.queue.policies import PriorityRatioPolicy
from central.queue.settings import QueueSection
from entrada import config
from entrada.config import Section, section
from entrada.errors import ConfigError


class Doc(Section):
    queue: QueueSection = section(QueueSection)


GOOD = """
[queue]
timezone = "Europe/Warsaw"
day_boundary = "03:30"
policy = { name = "priority_ratio", ratio = "1:3", cap = 2 }
max_recalls = 3

[[queue.services]]
id = "reg"
name = "Registration"
prefix = "A"
first = 1
last = 999
target_wait = 600

[[queue.services]]
id = "pay"
prefix = "B"

[[queue.counters]]
id = "c1"
name = "Counter 1"
services = { reg = 2, pay = 1.5 }
"""


def test_a_good_section() -> None:
    q = config.loads(GOOD, Doc).queue
    assert (q.timezone, q.day_boundary, q.max_recalls) == ("Europe/Warsaw", "03:30", 3)
    assert q.service("reg").label(42) == "A042"  # type: ignore[union-attr]
    assert q.service("pay").title == "pay"  # type: ignore[union-attr]
    assert q.counter("c1").services == {"reg": 2.0, "pay": 1.5}  # type: ignore[union-attr]
    assert q.policy.params() == {"ratio": "1:3", "cap": 2}
    engine = QueueEngine(q)
    assert isinstance(engine.policy, PriorityRatioPolicy) and engine.policy.normal == 3
    assert config.loads(config.show(Doc(queue=q)), Doc).queue == q


def test_defaults() -> None:
    q = QueueSection()
    assert (q.timezone, q.day_boundary, q.policy.name, q.lease_size) == ("UTC", "04:00", "fifo", 50)
    assert q.services == [] and q.counters == []


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[queue]\ntimezon = "UTC"', "queue.timezon: unknown key (did you mean 'timezone'?)"),
        ('[queue]\ntimezone = "Mars/Base"', "unknown time zone 'Mars/Base'"),
        ('[queue]\nday_boundary = "4:00"', "queue.day_boundary"),
        ('[queue]\npolicy = { name = "random" }', "queue.policy.name"),
        ('[queue]\npolicy = { name = "priority_ratio", ratio = "0:1" }', "at least 1"),
        ('[queue]\nmax_recalls = "2"', "queue.max_recalls"),
        ('[[queue.services]]\nid = "a b"', "queue.services.0.id"),
        ('[[queue.services]]\nid = "a"\nprefix = "A-"', "queue.services.0.prefix"),
        ('[[queue.counters]]\nid = "c1"\nservices = { x = 0 }', "greater than 0"),
    ],
)
def test_errors(toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config.loads(toml, Doc)
    assert any(message in e for e in err.value.errors), err.value.errors


def test_cross_references_are_all_reported() -> None:
    toml = """
[[queue.services]]
id = "reg"
prefix = "A"
first = 10
last = 9
[[queue.services]]
id = "reg2"
prefix = "a"
[[queue.services]]
id = "reg"
prefix = "R"
[[queue.counters]]
id = "c1"
services = { pay = 1 }
[[queue.counters]]
id = "c1"
services = { reg = 1 }
"""
    with pytest.raises(ConfigError) as err:
        config.loads(toml, Doc)
    (text,) = err.value.errors
    for part in [
        "last (9) is below first (10)",
        "services 'reg' and 'reg2' share the prefix 'a'",
        "service 'reg' is declared twice",
        "counter 'c1' serves unknown service 'pay'",
        "counter 'c1' is declared twice",
    ]:
        assert part in text
