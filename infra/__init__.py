"""Adapters and wiring: settings, event store, read-model database, storage, tokens, CLI."""
