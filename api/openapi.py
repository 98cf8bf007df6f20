"""The OpenAPI 3.1 document, generated from the route declarations and their pydantic models."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.registry import PREFIX, ROUTES

REF = "#/components/schemas/{model}"


def _envelope(data_schema: dict[str, Any] | None) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "code": {"type": "integer", "description": "0 on success, else the HTTP status"},
        "message": {"type": "string"},
        "error": {"type": "string", "description": "details for developers"},
    }
    if data_schema is not None:
        properties["data"] = data_schema
    return {"type": "object", "required": ["code", "message"], "properties": properties}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    models: list[type[BaseModel]] = []
    for spec in ROUTES:
        for model in (spec.body, spec.response):
            if isinstance(model, type) and issubclass(model, BaseModel) and model not in models:
                models.append(model)
    keys, schemas = models_json_schema(
        [(m, "validation" if any(s.body is m for s in ROUTES) else "serialization") for m in models],
        ref_template=REF,
    )
    refs = {model: keys[(model, mode)] for (model, mode) in keys}

    error_response = {
        "description": "failure, in the envelope",
        "content": {"application/json": {"schema": _envelope(None)}},
    }
    paths: dict[str, Any] = {}
    for spec in ROUTES:
        operation: dict[str, Any] = {
            "summary": spec.summary,
            "tags": [spec.tag],
            "operationId": f"{spec.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', spec.path.lower()).strip('_')}",
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in re.findall(r"{(\w+)}", spec.path)
            ] + [
                {"name": q.name, "in": "query", "required": q.required,
                 "schema": {"type": q.type}, "description": q.description}
                for q in spec.query
            ],
            "responses": {"4XX": error_response},
        }
        if spec.auth:
            operation["security"] = [{"bearer": []}]
        if spec.body is not None:
            operation["requestBody"] = {
                "required": any(f.is_required() for f in spec.body.model_fields.values()),
                "content": {"application/json": {"schema": refs[spec.body]}},
            }
        if spec.multipart:
            operation["requestBody"] = {
                "required": True,
                "content": {"multipart/form-data": {"schema": {
                    "type": "object",
                    "properties": {
                        name: {"type": "string", "format": "binary"} if name == "file" else {"type": "string"}
                        for name in spec.multipart
                    },
                }}},
            }
        if spec.binary:
            ok_response = {"description": "the file", "content": {spec.binary: {"schema": {"type": "string", "format": "binary"}}}}
        else:
            data_schema = refs.get(spec.response) if spec.response is not None else None
            ok_response = {"description": "success, in the envelope",
                           "content": {"application/json": {"schema": _envelope(data_schema)}}}
        operation["responses"]["200"] = ok_response
        paths.setdefault(PREFIX + spec.path, {})[spec.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Darkroom",
            "version": "1",
            "description": "Self-hosted media library: upload, organise and find photos, videos, audio and documents.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
