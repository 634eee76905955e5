"""The zone tree: a site holds zones, zones hold zones (facility ⊃ pool ⊃ sauna).

A gate stands between a zone and one of its ancestors (or the outside, ``None``). Passing
inward *enters* every zone on the way down; passing outward *leaves* every zone on the way
up. Occupancy is counted inclusively: someone in the sauna is also in the pool.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from controller.rules.errors import RulesInputError


@dataclass(frozen=True)
class Zone:
    id: str
    parent: str | None = None
    capacity: int | None = None  # people at once, inner zones included; None = no limit
    name: str = ""


@dataclass(frozen=True)
class ZoneTree:
    zones: Mapping[str, Zone] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, zone in self.zones.items():
            if key != zone.id:
                raise RulesInputError(f"zone {zone.id!r} is filed under {key!r}")
            if zone.parent is not None and zone.parent not in self.zones:
                raise RulesInputError(f"zone {zone.id!r} has unknown parent {zone.parent!r}")
            if zone.capacity is not None and zone.capacity < 0:
                raise RulesInputError(f"zone {zone.id!r} has a negative capacity")
        for key in self.zones:
            self.path(key)  # raises on a cycle

    @classmethod
    def of(cls, *zones: Zone) -> ZoneTree:
        return cls({z.id: z for z in zones})

    def path(self, zone: str | None) -> tuple[str, ...]:
        """Zones from the root down to ``zone`` (empty for the outside)."""
        chain: list[str] = []
        current = zone
        while current is not None:
            if current not in self.zones:
                raise RulesInputError(f"unknown zone {current!r}")
            if current in chain:
                raise RulesInputError(f"zone {current!r} is its own ancestor")
            chain.append(current)
            current = self.zones[current].parent
        return tuple(reversed(chain))

    def is_within(self, inner: str, outer: str | None) -> bool:
        """``inner`` is ``outer`` or inside it (everything is within the outside)."""
        return outer is None or outer in self.path(inner)

    def entered(self, zone_from: str | None, zone_to: str | None) -> tuple[str, ...]:
        """Zones a passage from ``zone_from`` to ``zone_to`` enters, outermost first."""
        before = set(self.path(zone_from))
        return tuple(z for z in self.path(zone_to) if z not in before)

    def left(self, zone_from: str | None, zone_to: str | None) -> tuple[str, ...]:
        """Zones a passage from ``zone_from`` to ``zone_to`` leaves, innermost first."""
        after = set(self.path(zone_to))
        return tuple(z for z in reversed(self.path(zone_from)) if z not in after)

    def full(self, zone: str, occupancy: Mapping[str, int]) -> bool:
        """Whether ``zone`` is at capacity (unknown occupancy counts as empty)."""
        capacity = self.zones[zone].capacity
        return capacity is not None and occupancy.get(zone, 0) >= capacity
