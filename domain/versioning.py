"""Event versions and the registry of every stored event class, found by walking the domain.

Every event class has a version: eventsourcing's `class_version`, 1 when a class does not say.
A class whose shape changes raises its `class_version` to N and gains `upcast_v1_v2` ...
`upcast_v{N-1}_vN` static methods that turn an old stored state into the next shape; the
mapper applies them on read (and `projections.replay` hands old shapes to the mapper), so the
log is never rewritten. `event_classes()` walks every aggregate of every module under
`domain/`, so classes added later are versioned, catalogued and checked with no edit here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from functools import lru_cache
from types import ModuleType

from eventsourcing.domain import Aggregate, CanInitAggregate, DomainEvent

import domain


def version_of(event_class: type) -> int:
    """The event class's version (eventsourcing's `class_version`; 1 when it does not say)."""
    return int(getattr(event_class, "class_version", 1))


def missing_upcasters(event_class: type) -> list[str]:
    """The `upcast_vN_vM` methods a class of version > 1 lacks (none: it reads every old shape)."""
    return [
        f"upcast_v{v}_v{v + 1}" for v in range(1, version_of(event_class))
        if not callable(getattr(event_class, f"upcast_v{v}_v{v + 1}", None))
    ]


def _domain_modules() -> list[ModuleType]:
    names = sorted(m.name for m in pkgutil.iter_modules(domain.__path__, "domain."))
    return [importlib.import_module(name) for name in names]


def aggregates() -> list[type[Aggregate]]:
    """Every aggregate class defined in a module under `domain/`."""
    found = []
    for module in _domain_modules():
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, Aggregate) and value is not Aggregate and value.__module__ == module.__name__:
                found.append(value)
    return found


def _events_of(aggregate: type[Aggregate]) -> list[type[DomainEvent]]:
    own = [
        value for name, value in vars(aggregate).items()
        if isinstance(value, type) and issubclass(value, DomainEvent) and name != "Event"
        and value.__qualname__ == f"{aggregate.__qualname__}.{name}"
    ]
    # eventsourcing defines a default `Created` on every aggregate; it is stored only when the
    # aggregate names no creation event of its own (an `@event("...")` on `__init__`).
    creations = [e for e in own if issubclass(e, CanInitAggregate)]
    if len(creations) > 1:
        own = [e for e in own if not (e.__name__ == "Created" and issubclass(e, CanInitAggregate))]
    return own


@lru_cache(maxsize=1)
def event_classes() -> dict[str, type[DomainEvent]]:
    """Every event class that the domain stores, by public type name (`Asset.RatingChanged`)."""
    return {e.__qualname__: e for a in aggregates() for e in _events_of(a)}


def event_topic(event_class: type) -> str:
    """The topic eventsourcing stores the class under (`domain.asset:Asset.RatingChanged`)."""
    return f"{event_class.__module__}:{event_class.__qualname__}"
