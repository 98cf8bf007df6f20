"""The OpenAPI 3.1 document, generated from the route declarations and their pydantic models.

What a generated SDK needs and what this makes sure of: every status an operation can answer is
declared (success, each failure, 5xx), one `Envelope` schema that every JSON answer extends
(`data` typed per operation) and one `Error` schema for every failure, parameters with the very
constraints the registry enforces (`api.registry.Param`), binary answers with their real media
types, multipart bodies as models, verb-style operation ids, a description (the handler's
docstring) and an example per operation, and links from creating operations to those that use
the new id.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.registry import PREFIX, ROUTES, RouteSpec

REF = "#/components/schemas/{model}"

TAGS = [
    ("Auth", "Accounts and tokens: register, log in, refresh (rotation), log out, who am I."),
    ("Assets", "Uploading one file, reading, rating, liking, describing, deleting and reprocessing "
               "assets, and their files (original, thumbnails, web versions)."),
    ("Batch upload", "Many files in one request, or one file in resumable chunks, with progress."),
    ("Search", "Structured filters over the catalog, their facets, and filename, full-text or semantic search."),
    ("Albums", "Ordered collections of the user's assets."),
    ("Trash", "Deleted assets: list, restore into their albums, purge (also automatic after trash_days)."),
    ("Duplicates", "Near-duplicate photos: review, resolve (keep some, trash the rest), dismiss."),
    ("Places", "Where photos were taken (offline reverse geocoding), the map, and memories."),
    ("People", "Faces in the user's photos grouped by identity: names, hiding, merges, corrections."),
    ("Sharing", "Albums shared with other users (viewers, editors), public links, and what a "
                "link shows without a token."),
    ("Libraries", "External libraries: folders indexed in place, scanned and watched (administrators)."),
    ("Stats", "Aggregates over the user's library."),
    ("Jobs", "Processing jobs and queues (administrators)."),
    ("Admin", "The event log and user accounts, for administrators and analysts."),
    ("System", "Health and this document."),
]

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "invalid input: `error` names the offending field"),
    401: ("Unauthorized", "missing, expired or revoked token, or bad credentials"),
    403: ("Forbidden", "authenticated, but not allowed (administrators only)"),
    404: ("NotFound", "no such object for this user (another user's objects are not found either)"),
    409: ("Conflict", "conflicts with the current state (a duplicate, a finished session, a "
                      "concurrent change that could not be retried)"),
    413: ("PayloadTooLarge", "the body or file is larger than the server accepts"),
    415: ("UnsupportedMediaType", "not a supported photo, video, audio file or PDF"),
    416: ("RangeNotSatisfiable", "the Range lies outside the file"),
    422: ("UnprocessableContent", "an Idempotency-Key reused with a different body"),
    429: ("TooManyRequests", "a rate limit was passed, or the server is busy; see `Retry-After`"),
    500: ("InternalError", "a fault of the server; details are in its log, never in the answer"),
    503: ("ServiceUnavailable", "a backend the request needs is down or busy; retry later"),
}

_ENVELOPE = {
    "type": "object",
    "description": "Every JSON answer, success or failure.",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "integer", "description": "0 on success, else the HTTP status"},
        "message": {"type": "string", "description": "what happened, for people"},
        "error": {"type": "string", "description": "details for developers (failures only)"},
    },
}

_ERROR = {
    "type": "object",
    "description": "A failure: `code` is the HTTP status, `error` names the field or the cause.",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "integer", "minimum": 400, "maximum": 599},
        "message": {"type": "string"},
        "error": {"type": "string"},
    },
}


def _models() -> list[tuple[type[BaseModel], str]]:
    seen: dict[type[BaseModel], str] = {}
    for spec in ROUTES:
        for model, mode in ((spec.body, "validation"), (spec.multipart, "validation"),
                            (spec.response, "serialization")):
            if isinstance(model, type) and issubclass(model, BaseModel) and model not in seen:
                seen[model] = mode
    return list(seen.items())


def _example_of(model: Any) -> Any:
    examples = (getattr(model, "model_config", None) or {}).get("json_schema_extra", {}) if model else {}
    found = examples.get("examples") if isinstance(examples, dict) else None
    return found[0] if found else None


def _envelope_of(data_ref: dict[str, Any] | None) -> dict[str, Any]:
    if data_ref is None:
        return {"$ref": REF.format(model="Envelope")}
    return {"allOf": [
        {"$ref": REF.format(model="Envelope")},
        {"type": "object", "required": ["data"], "properties": {"data": data_ref}},
    ]}


def _json_answer(spec: RouteSpec, refs: dict[type[BaseModel], dict[str, Any]], status: int) -> dict[str, Any]:
    data_ref = refs.get(spec.response) if spec.response is not None else None
    media: dict[str, Any] = {"schema": _envelope_of(data_ref)}
    data_example = _example_of(spec.response)
    media["example"] = {"code": 0, "message": "success", **({"data": data_example} if data_example else {})}
    return {"description": "success, in the envelope" if status < 300 else "answered, in the envelope",
            "content": {"application/json": media}}


def _binary_answers(spec: RouteSpec) -> dict[str, Any]:
    content = {media: {"schema": {"type": "string", "format": "binary"}} for media in spec.binary}
    cache = {"ETag": {"description": "a strong validator for If-None-Match / If-Range",
                      "schema": {"type": "string"}}}
    return {
        "200": {"description": "the file", "headers": cache, "content": content},
        "206": {"description": "the requested byte range (`Range: bytes=...`)",
                "headers": {**cache, "Content-Range": {"schema": {"type": "string"}}}, "content": content},
        "304": {"description": "not modified: the `If-None-Match` ETag still matches", "headers": cache},
    }


def _statuses(spec: RouteSpec) -> list[int]:
    """The failures this operation can answer, from what its declaration says it checks."""
    statuses = {500, 503, *spec.also}
    checked_params = [p for p in spec.params if p.format != "uuid"]
    if spec.body is not None or spec.multipart is not None or checked_params:
        statuses.add(400)
    if spec.body is not None or spec.multipart is not None:
        statuses.add(413)
    if spec.auth:
        statuses.add(401)
    if spec.admin:
        statuses.add(403)
    if any(p.where == "path" for p in spec.params):
        statuses.add(404)
    if spec.binary:
        statuses.add(416)
    return sorted(s for s in statuses if s not in spec.ok_also)


def _request_body(spec: RouteSpec, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any] | None:
    if spec.body is not None:
        media: dict[str, Any] = {"schema": refs[spec.body]}
        example = _example_of(spec.body)
        if example is not None:
            media["example"] = example
        extra = spec.body.model_config.get("json_schema_extra")
        required = any(f.is_required() for f in spec.body.model_fields.values()) or (
            isinstance(extra, dict) and "else" in extra)  # if/then/else: one of its fields is due
        return {"required": required, "content": {"application/json": media}}
    if spec.multipart is not None:
        binary = {name for name, f in spec.multipart.model_fields.items() if f.annotation is bytes}
        return {"required": True, "content": {"multipart/form-data": {
            "schema": refs[spec.multipart],
            "encoding": {name: {"contentType": "application/octet-stream"} for name in sorted(binary)},
        }}}
    return None


def _operation(spec: RouteSpec, refs: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": spec.operation_id,
        "summary": spec.summary,
        "description": spec.description,
        "tags": [spec.tag],
    }
    if spec.params:
        operation["parameters"] = [p.document() for p in spec.params]
    body = _request_body(spec, refs)
    if body is not None:
        operation["requestBody"] = body
    responses: dict[str, Any] = {}
    if spec.binary:
        responses.update(_binary_answers(spec))
    elif spec.response is dict:  # a bare JSON object (this document)
        responses["200"] = {"description": "the OpenAPI 3.1 document",
                            "content": {"application/json": {"schema": {"type": "object"}}}}
    else:
        for status in (spec.status, *spec.ok_also):
            responses[str(status)] = _json_answer(spec, refs, status)
    if spec.links:
        responses[str(spec.status)]["links"] = {
            link.operation_id[0].upper() + link.operation_id[1:]: {
                "operationId": link.operation_id,
                "parameters": {link.parameter: link.source},
                **({"description": link.description} if link.description else {}),
            }
            for link in spec.links
        }
    for status in _statuses(spec):
        responses[str(status)] = {"$ref": f"#/components/responses/{_ERRORS[status][0]}"}
    operation["responses"] = responses
    if spec.auth:
        operation["security"] = [{"bearer": []}]
    else:
        operation["security"] = []
    return operation


def _name_repositories(schemas: dict[str, Any], repositories: tuple[str, ...]) -> None:
    """The configured repositories are the only `repository_id` values an upload takes."""
    if not repositories:
        return
    for form in ("UploadForm", "BatchUploadForm"):
        schemas[form]["properties"]["repository_id"]["enum"] = list(repositories)


@lru_cache(maxsize=4)
def openapi_document(repositories: tuple[str, ...] = ()) -> dict[str, Any]:
    """The document; `repositories` are this server's repository ids (its configuration)."""
    models = _models()
    keys, schemas = models_json_schema(models, ref_template=REF)
    refs = {model: keys[(model, mode)] for (model, mode) in keys}

    paths: dict[str, Any] = {}
    for spec in ROUTES:
        paths.setdefault(PREFIX + spec.path, {})[spec.method.lower()] = _operation(spec, refs)

    components_schemas = {**schemas.get("$defs", {}), "Envelope": _ENVELOPE, "Error": _ERROR}
    _name_repositories(components_schemas, repositories)
    responses = {
        name: {"description": description, "content": {"application/json": {
            "schema": {"$ref": REF.format(model="Error")},
            "example": {"code": status, "message": description.split(":")[0], "error": "..."},
        }}}
        for status, (name, description) in _ERRORS.items()
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Darkroom",
            "version": "1",
            "summary": "Self-hosted media library server",
            "description": (
                "Upload, organise and find photos, videos, audio and documents. Every JSON answer "
                "is the envelope `{code, message, data, error}`; failures carry a real HTTP status "
                "and the `Error` schema. Authenticate with `Authorization: Bearer <token>` from "
                "`register` or `login`."
            ),
            "license": {"name": "Proprietary"},
        },
        "servers": [{"url": "/", "description": "this server"}],
        "tags": [{"name": name, "description": description} for name, description in TAGS],
        "paths": paths,
        "components": {
            "schemas": components_schemas,
            "responses": responses,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
