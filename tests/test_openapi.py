"""The OpenAPI document as an SDK generator reads it, and side by side with the handlers.

The first tests read the served document: verb-style unique operation ids, a description and an
example per operation, every failure in the one Error schema, 201 and links on creations, typed
parameters, binary answers with real media types. The last test holds each declared parameter
constraint against what the real handler does with values on both sides of it, so the document
and the validation cannot drift apart.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from api.registry import PREFIX, ROUTES
from tests.helpers import API, register

VERBS = ("list", "get", "create", "update", "delete", "upload", "download", "add", "remove", "move",
         "rate", "like", "describe", "reprocess", "filter", "search", "register", "login", "logout",
         "refresh", "restore", "empty", "resolve", "dismiss", "merge", "scan")
CREATING = {"register": "201", "createAlbum": "201", "uploadAsset": "201"}


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the document and the validation are the same on every backend


@pytest.fixture
async def doc(client: Any) -> dict[str, Any]:
    resp = await client.get(f"{API}/openapi.json")
    assert resp.status == 200 and resp.content_type == "application/json"
    return await resp.json()


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]


async def test_operations_have_unique_verb_style_ids_descriptions_and_examples(doc):
    ops = operations(doc)
    assert len(ops) == len(ROUTES)
    ids = [op["operationId"] for _, _, op in ops]
    assert len(set(ids)) == len(ids)
    tags = {t["name"] for t in doc["tags"]}
    assert all(t["description"] for t in doc["tags"]) and doc["servers"]
    for path, method, op in ops:
        assert re.fullmatch(r"[a-z]+(?:[A-Z][a-z]*)*", op["operationId"]), op["operationId"]
        assert op["operationId"].startswith(VERBS), op["operationId"]
        assert len(op["description"]) > 20 and op["summary"], (method, path)
        assert set(op["tags"]) <= tags
        examples = [p["example"] for p in op.get("parameters", []) if "example" in p]
        examples += [m["example"] for m in op.get("requestBody", {}).get("content", {}).values() if "example" in m]
        examples += [m["example"] for r in op["responses"].values() for m in r.get("content", {}).values()
                     if "example" in m]
        if op["operationId"] != "getOpenApiDocument":
            assert examples, (method, path)


async def test_every_failure_is_the_one_error_schema_and_5xx_is_declared(doc):
    error_responses = doc["components"]["responses"]
    for name, response in error_responses.items():
        assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}, name
    for path, method, op in operations(doc):
        responses = op["responses"]
        assert "4XX" not in responses and "500" in responses and "503" in responses, (method, path)
        for status, response in responses.items():
            if int(status) >= 400 and not (op["operationId"] == "getHealth" and status == "503"):
                assert response["$ref"].startswith("#/components/responses/"), (method, path, status)
        if op.get("security"):
            assert "401" in responses, (method, path)
        if any(p["in"] == "path" for p in op.get("parameters", [])):
            assert "404" in responses, (method, path)


async def test_creations_answer_201_with_links_to_where_the_new_id_is_used(doc):
    by_id = {op["operationId"]: op for _, _, op in operations(doc)}
    for op_id, status in CREATING.items():
        responses = by_id[op_id]["responses"]
        assert status in responses and "200" not in responses or op_id == "uploadAsset", op_id
        for link in responses[status].get("links", {}).values():
            assert link["operationId"] in by_id
    album_links = by_id["createAlbum"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in album_links.values()} >= {"getAlbum", "addAssetToAlbum"}
    assert all(link["parameters"] == {"id": "$response.body#/data/album_id"} for link in album_links.values())
    assert "getAsset" in {link["operationId"] for link in by_id["uploadAsset"]["responses"]["201"]["links"].values()}


async def test_parameters_are_typed_and_bounded(doc):
    for path, method, op in operations(doc):
        for param in op.get("parameters", []):
            schema = param["schema"]
            where = (method, path, param["name"])
            if param["in"] == "path":
                # ids are UUIDs or integers; a public link's key is a string of a declared shape
                assert param["required"] and (schema.get("format") == "uuid" or schema["type"] == "integer"
                                              or "pattern" in schema), where
            if schema["type"] == "integer":
                assert "minimum" in schema and "maximum" in schema, where
            if param["name"] in ("limit", "offset"):
                assert "default" in schema, where
            if schema["type"] == "string" and param["in"] == "query":
                assert schema.keys() & {"enum", "pattern", "maxLength"}, where
    schemas = doc["components"]["schemas"]
    assert schemas["UserDTO"]["properties"]["email"]["format"] == "email"
    assert schemas["AssetDTO"]["properties"]["asset_id"]["format"] == "uuid"
    assert schemas["AlbumDTO"]["properties"]["created_at"]["format"] == "date-time"
    assert schemas["AssetDTO"]["properties"]["type"]["enum"] == ["PHOTO", "VIDEO", "AUDIO", "DOCUMENT"]
    assert schemas["FilterBody"]["properties"]["limit"]["maximum"] == 100


async def test_files_and_forms_are_declared_as_a_generator_needs_them(doc):
    by_id = {op["operationId"]: op for _, _, op in operations(doc)}
    thumbnail = by_id["getThumbnail"]["responses"]
    assert list(thumbnail["200"]["content"]) == ["image/webp"] and {"206", "304", "416"} <= thumbnail.keys()
    assert "application/octet-stream" not in by_id["downloadOriginal"]["responses"]["200"]["content"]
    assert by_id["getOpenApiDocument"]["responses"]["200"]["content"]["application/json"]["schema"] == {"type": "object"}
    for op_id, form in (("uploadAsset", "UploadForm"), ("uploadBatch", "BatchUploadForm")):
        body = by_id[op_id]["requestBody"]["content"]["multipart/form-data"]
        assert body["schema"] == {"$ref": f"#/components/schemas/{form}"}
        fields = doc["components"]["schemas"][form]
        assert "file" in fields["required"] and fields["properties"]["file"]["format"] == "binary"


# -- the declarations against the handlers ------------------------------------------------------------

# Query a route needs besides the parameter under test (the listing needs a type or an owner).
BASE_QUERY = {"listAssets": {"type": "PHOTO"}}


def probes(param: dict[str, Any]) -> list[tuple[str, bool]]:
    """(value, refused?) pairs on both sides of what the document allows."""
    schema = param["schema"]
    if schema["type"] == "integer":
        low, high = schema["minimum"], schema["maximum"]
        out = [(str(low), False), (str(low - 1), True), (f"{low}.0", False), ("1.5", True), ("x", True)]
        out.append((str(high + 1), "larger values are lowered" not in param.get("description", "")))
        return out
    if schema["type"] == "boolean":
        return [("true", False), ("false", False), ("maybe", True)]
    if "enum" in schema:
        return [*((value, False) for value in schema["enum"]), ("not-a-member", True)]
    if "maxLength" in schema:
        return [("x" * (schema["maxLength"] + 1), True)]
    return []


async def test_each_declared_constraint_is_what_the_handler_enforces(client, doc, media):
    admin = await register(client, "admin")  # the first user: admin routes answer too
    asset_id = (await admin.upload(media / "photo" / "kodak_dx4330.jpg"))["data"]["asset_id"]
    album_id = (await admin.call("POST", "/albums", {"album_name": "a"}, expect=201))["data"]["album_id"]
    path_values = {"id": None, "assetId": asset_id, "albumId": str(album_id), "rating": "3", "key": "k" * 43}
    checked = 0
    for path, method, op in operations(doc):
        if method != "get":
            continue
        base = path.removeprefix(PREFIX)
        ids = {"id": asset_id if "/assets/{id}" in base else str(album_id) if "/albums/{id}" in base else "1"}
        url = base
        for name in re.findall(r"{(\w+)}", base):
            url = url.replace(f"{{{name}}}", ids.get(name) or path_values[name])
        for param in op.get("parameters", []):
            if param["in"] != "query":
                continue
            for value, refused in probes(param):
                query = {**BASE_QUERY.get(op["operationId"], {}), param["name"]: value}
                resp = await client.get(API + url, params=query, headers=admin.headers)
                where = (op["operationId"], param["name"], value, resp.status)
                assert (resp.status == 400) == refused, where
                if refused:
                    assert param["name"] in (await resp.json())["error"], where
                checked += 1
    assert checked > 60


async def test_a_declared_path_id_outside_its_bounds_is_400(client):
    admin = await register(client, "admin")
    for url in ("/albums/0", "/albums/x", f"/albums/{2**63}", "/assets/rating/6", "/admin/river/jobs/0"):
        body = await admin.call("GET", url, expect=400)
        assert body["code"] == 400 and body["error"]
    assert (await admin.call("GET", "/albums/1.0", expect=404))["code"] == 404  # 1.0 is album 1: not found
