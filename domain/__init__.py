"""The domain: aggregates, their events and invariants. Pure Python, no I/O."""
