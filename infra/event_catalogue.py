"""The event catalogue: a JSON Schema for each public event record, generated from the domain.

One source: the event classes found by `domain.versioning.event_classes()` and their field
annotations. The same schemas type the Parquet export's columns (`infra.parquet_export`), are
served at `GET /admin/events/schema`, written by `darkroom events schema`, and carried by the
AsyncAPI document of the Kafka topics (`asyncapi_document`). A new event class appears here with
no edit; a field whose annotation this module cannot type is an error, not a silent `{}`.
"""

from __future__ import annotations

import inspect
import json
import sys
import typing
import types
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.personal import PERSONAL_FIELDS
from domain.versioning import event_classes, version_of

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Fields of stored events that analytics never gets in clear (see infra.event_stream).
REDACTED_FIELDS = frozenset({"password_hash", "secret_hash"})
REDACTED = "***"
# The library's own bookkeeping in stored events: not part of any public record.
INTERNAL_FIELDS = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})

ENVELOPE: dict[str, Any] = {
    "position": {"type": "integer", "minimum": 1, "description": "place in the log (total order)"},
    "timestamp": {"type": "string", "format": "date-time", "description": "when the event happened (UTC)"},
    "aggregate": {"type": "string", "description": "the kind of thing that changed"},
    "aggregate_id": {"type": "string", "format": "uuid", "description": "which one"},
    "type": {"type": "string", "description": "<aggregate>.<event>, the catalogue's key"},
    "version": {"type": "integer", "minimum": 1, "description": "the aggregate's version after this event"},
    "event_version": {"type": "integer", "minimum": 1,
                      "description": "the event's shape version (old shapes are upcast on read)"},
}


def _type_schema(hint: Any) -> dict[str, Any]:
    if hint is Any:
        return {}
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        non_null = [a for a in args if a is not type(None)]
        inner = _type_schema(non_null[0]) if len(non_null) == 1 else {"anyOf": [_type_schema(a) for a in non_null]}
        if type(None) not in args:
            return inner
        if set(inner) == {"type"} or (set(inner) <= {"type", "format", "items"} and "type" in inner):
            return {**inner, "type": [inner["type"], "null"]}
        return {"anyOf": [inner, {"type": "null"}]}
    if origin in (list, tuple):
        args = typing.get_args(hint)
        return {"type": "array", "items": _type_schema(args[0]) if args else {}}
    if origin is dict or hint is dict:
        return {"type": "object"}
    simple = {bool: {"type": "boolean"}, int: {"type": "integer"}, float: {"type": "number"},
              str: {"type": "string"}, datetime: {"type": "string", "format": "date-time"},
              UUID: {"type": "string", "format": "uuid"}}
    if hint in simple:
        return dict(simple[hint])
    raise TypeError(f"no JSON Schema for annotation {hint!r}")


def event_fields(event_class: type) -> dict[str, Any]:
    """The event's own fields and their Python types, in declaration order (no library fields)."""
    module = sys.modules[event_class.__module__]
    namespace = {**vars(typing), **vars(module)}
    fields: dict[str, Any] = {}
    # eventsourcing subclasses a class written out in the aggregate: its fields are on the base.
    for klass in reversed(event_class.__mro__):
        if klass.__module__ != event_class.__module__:
            continue
        for name, annotation in klass.__dict__.get("__annotations__", {}).items():
            if name in INTERNAL_FIELDS or name.startswith("_") or name == "class_version":
                continue
            fields[name] = eval(annotation, namespace) if isinstance(annotation, str) else annotation  # noqa: S307
    return fields


def _description(event_class: type) -> str:
    # A class written out has its own docstring; one made by `@event("Name")` has a generated
    # signature as `__doc__` and its meaning in the decorated method's docstring.
    for klass in event_class.__mro__:
        doc = klass.__dict__.get("__doc__") or ""
        if klass.__module__ == event_class.__module__ and doc and not doc.startswith(f"{klass.__name__}("):
            return inspect.cleandoc(doc)
    aggregate: Any = sys.modules[event_class.__module__]
    for part in event_class.__qualname__.split(".")[:-1]:
        aggregate = getattr(aggregate, part)
    for value in vars(aggregate).values():
        # eventsourcing's method decorator knows the name of the event class it triggers.
        if getattr(value, "event_cls_name", None) == event_class.__name__:
            doc = getattr(getattr(value, "decorated_func", None), "__doc__", None)
            if doc:
                return inspect.cleandoc(doc)
    return inspect.cleandoc(getattr(aggregate, "__doc__", "") or "")


def event_schema(name: str, event_class: type) -> dict[str, Any]:
    """The JSON Schema of one event type's public record (`infra.event_stream.event_record`)."""
    properties = {}
    for field, hint in event_fields(event_class).items():
        if field in REDACTED_FIELDS:
            properties[field] = {"const": REDACTED, "description": "a secret: redacted in every public record"}
        else:
            properties[field] = _type_schema(hint)
    aggregate = name.split(".")[0]
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": f"urn:darkroom:event:{name}:v{version_of(event_class)}",
        "title": name,
        "description": _description(event_class),
        "type": "object",
        "required": list(ENVELOPE) + ["payload"],
        "additionalProperties": False,
        "properties": {
            **ENVELOPE,
            "aggregate": {**ENVELOPE["aggregate"], "const": aggregate},
            "type": {**ENVELOPE["type"], "const": name},
            "event_version": {**ENVELOPE["event_version"], "const": version_of(event_class)},
            "payload": {"type": "object", "required": list(properties), "additionalProperties": False,
                        "properties": properties},
        },
    }


def catalogue() -> dict[str, Any]:
    """Every event type's schema, by type name, with the shape versions."""
    return {
        "description": "Darkroom's public event records: one JSON Schema per event type. Records "
                       "come from `darkroom events export`, GET /admin/events and the <prefix>.events "
                       "Kafka topic; secrets are redacted and library internals left out.",
        "events": {name: event_schema(name, cls) for name, cls in sorted(event_classes().items())},
    }


# A personal field as the events topic carries it (infra.personal_data): [owner user id, kind of
# value, base64 of nonce + AES-256-GCM ciphertext]. Only a holder of the owner's key opens it.
SEALED_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["_sealed_"], "additionalProperties": False,
    "description": "personal data, sealed with its owner's key; unreadable once the owner is erased",
    "properties": {"_sealed_": {"type": "array", "prefixItems": [
        {"type": "integer"}, {"enum": ["text", "list", "object", "null"]}, {"type": "string"}],
        "minItems": 3, "maxItems": 3}},
}


def _kafka_record(schema: dict[str, Any]) -> dict[str, Any]:
    """A record of the events topic: the public record plus the stored `topic`; a record too big
    for the broker goes with an empty payload and `payload_omitted` (processors.relay)."""
    schema = json.loads(json.dumps(schema))
    schema.pop("$schema", None)
    schema["properties"]["topic"] = {"type": "string", "description": "the stored event class (module:Class)"}
    schema["properties"]["payload_omitted"] = {
        "type": "integer", "description": "present when the payload was left out: the record's size in bytes"}
    schema["required"] = [*schema["required"], "topic"]
    payload = schema["properties"]["payload"]
    for field in PERSONAL_FIELDS.get(schema["title"], ()):
        payload["properties"][field] = {"anyOf": [payload["properties"][field], SEALED_SCHEMA]}
    schema["properties"]["payload"] = {"anyOf": [payload, {"type": "object", "maxProperties": 0}]}
    return schema


def asyncapi_document(prefix: str = "darkroom", queues: tuple[str, ...] | None = None) -> dict[str, Any]:
    """AsyncAPI 3.0 for the Kafka topics: `<prefix>.events` (every public event record, keyed by
    aggregate id) and `<prefix>.jobs.<queue>` (a job to run, keyed by asset id)."""
    from domain.asset import OPTIONAL_TASKS, REQUIRED_TASKS

    queues = queues or REQUIRED_TASKS + OPTIONAL_TASKS
    schemas = {name.replace(".", "_"): _kafka_record(schema) for name, schema in catalogue()["events"].items()}
    event_messages = {
        key: {"name": schema["title"], "title": schema["title"], "summary": schema["description"].split("\n")[0],
              "contentType": "application/json", "payload": {"$ref": f"#/components/schemas/{key}"}}
        for key, schema in schemas.items()
    }
    job_payload = {
        "type": "object", "required": ["job_id", "queue", "key", "not_before"], "additionalProperties": False,
        "properties": {
            "job_id": {"type": "integer", "minimum": 1, "description": "the job (GET /admin/river/jobs/{id})"},
            "queue": {"type": "string", "enum": list(queues)},
            "key": {"type": "string", "description": "the asset id; also the Kafka key"},
            "not_before": {"type": "number", "description": "epoch seconds: do not start earlier"},
        },
    }
    channels: dict[str, Any] = {
        "events": {
            "address": f"{prefix}.events",
            "description": "Every stored event in log order, as its public record plus `topic` (the stored "
                           "class name); keyed by aggregate id. A record over the size limit has an empty "
                           "payload and `payload_omitted` (its size); the export has it whole.",
            "messages": {key: {"$ref": f"#/components/messages/{key}"} for key in event_messages},
        },
    }
    # Operations from Darkroom's side (AsyncAPI 3 describes one application): it sends every
    # event; it sends jobs (the relay) and receives them (the workers' consumer groups).
    operations: dict[str, Any] = {
        "sendEvents": {"action": "send", "channel": {"$ref": "#/channels/events"},
                       "summary": "The relay publishes every event in log order (analysts consume them)"},
    }
    for queue in queues:
        key = f"jobs_{queue}"
        channels[key] = {"address": f"{prefix}.jobs.{queue}", "description": f"Jobs of the {queue} queue.",
                         "messages": {"job": {"$ref": "#/components/messages/job"}}}
        operations[f"send_{queue}"] = {"action": "send", "channel": {"$ref": f"#/channels/{key}"},
                                       "summary": f"The relay queues {queue} jobs"}
        operations[f"receive_{queue}"] = {"action": "receive", "channel": {"$ref": f"#/channels/{key}"},
                                          "summary": f"Workers of {queue} (consumer group {prefix}.workers.{queue})"}
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Darkroom Kafka topics", "version": "1.0.0",
                 "description": "The events topic (public event records) and the job topics."},
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": {**schemas, "job": job_payload},
            "messages": {**event_messages, "job": {"name": "job", "contentType": "application/json",
                                                    "payload": {"$ref": "#/components/schemas/job"}}},
        },
    }
