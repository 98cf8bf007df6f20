"""People endpoints: faces grouped by identity, named, hidden, merged and corrected.

Reads come from the `people` projection; each change is a command on the owner's `PeopleBook`,
so it survives a rebuild. Another user's person or face is not found (404), like an unknown one.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.envelope import ok
from api.files import serve_file
from api.models import (
    EXAMPLE_FACE_ID, EXAMPLE_PERSON_ID, FaceDTO, FacePersonBody, MergePeopleBody, PeoplePage, PersonAssets,
    PersonDTO, PersonUpdateBody,
)
from api.registry import Ctx, PathParam, QueryParam, page_params, route
from domain.errors import InvalidInput, NotFound
from projections.people import People

PERSON_ID = PathParam("id", description="a person id (a UUID)", format="uuid", max_length=64,
                      example=EXAMPLE_PERSON_ID)
FACE_ID = PathParam("face_id", description="a face id: `<asset id>:<index>`", max_length=64,
                    pattern=r"^[0-9a-fA-F-]{36}:[0-9]{1,4}$", example=EXAMPLE_FACE_ID)


def _people(ctx: Ctx) -> People:
    return People(ctx.services.db)


async def _person(ctx: Ctx, person_id: str) -> dict[str, Any]:
    person = await ctx.run(_people(ctx).person, ctx.user_id, person_id)
    if person is None:
        raise NotFound(f"person {person_id} not found")
    return person


@route("GET", "/people", operation_id="listPeople", summary="The user's people, most faces first",
       tag="People", response=PeoplePage, params=(
           QueryParam("include_hidden", "boolean", "also the people hidden by the user", default=False),
           *page_params()))
async def list_people(ctx: Ctx) -> web.Response:
    """The people found in the caller's photos (faces grouped by identity), most faces first, a page
    at a time, with the total. Hidden people only with `include_hidden=true`."""
    limit, offset = ctx.query_int("limit", 20, 1, 100), ctx.query_int("offset", 0)
    people, total = await ctx.run(_people(ctx).people, ctx.user_id, ctx.query_bool("include_hidden", False),
                                  limit, offset)
    return ok({"people": people, "limit": limit, "offset": offset, "total": total})


@route("GET", "/people/{id}", operation_id="getPerson", summary="One person", tag="People",
       response=PersonDTO, params=(PERSON_ID,))
async def get_person(ctx: Ctx) -> web.Response:
    """One of the caller's people; another user's, an unknown or a merged-away person is 404."""
    return ok(await _person(ctx, ctx.request.match_info["id"]))


@route("PUT", "/people/{id}", operation_id="updatePerson", summary="Name or hide a person", tag="People",
       body=PersonUpdateBody, response=PersonDTO, params=(PERSON_ID,))
async def update_person(ctx: Ctx) -> web.Response:
    """Changes the fields sent: `name` ("" clears it), `hidden`. A rebuild keeps them (they are
    events). Answers the person."""
    person_id = ctx.request.match_info["id"]
    await _person(ctx, person_id)
    body: PersonUpdateBody = ctx.body
    position = await ctx.run(ctx.services.app.update_person, ctx.user_id, person_id, body.name, body.hidden)
    await ctx.settle(position)
    return ok(await _person(ctx, person_id), "person updated")


@route("POST", "/people/{id}/merge", operation_id="mergePeople", summary="Merge people into this one",
       tag="People", body=MergePeopleBody, response=PersonDTO, params=(PERSON_ID,))
async def merge_people(ctx: Ctx) -> web.Response:
    """Folds the faces of `person_ids` into this person; those people answer 404 afterwards. Merging
    a person into itself is 400; an unknown or another user's person 404."""
    person_id = ctx.request.match_info["id"]
    body: MergePeopleBody = ctx.body
    if person_id in body.person_ids:
        raise InvalidInput("a person cannot be merged into itself", "person_ids")
    await _person(ctx, person_id)
    for other in body.person_ids:
        await _person(ctx, other)
    position = await ctx.run(ctx.services.app.merge_people, ctx.user_id, person_id, body.person_ids)
    await ctx.settle(position)
    return ok(await _person(ctx, person_id), f"{len(set(body.person_ids))} merged")


async def _assets_of(ctx: Ctx, asset_ids: list[str]) -> list[dict[str, Any]]:
    def load() -> list[dict[str, Any]]:
        found = (ctx.services.catalog.get(ctx.user_id, a) for a in asset_ids)
        return [a for a in found if a is not None and not a["is_deleted"]]

    return await ctx.run(load)


@route("GET", "/people/{id}/assets", operation_id="listPersonAssets", summary="The assets a person is in",
       tag="People", response=PersonAssets, params=(PERSON_ID, *page_params()))
async def person_assets(ctx: Ctx) -> web.Response:
    """The caller's assets that show this person, newest taken first, with the total."""
    person_id = ctx.request.match_info["id"]
    await _person(ctx, person_id)
    limit, offset = ctx.query_int("limit", 20, 1, 100), ctx.query_int("offset", 0)
    assets = await _assets_of(ctx, await ctx.run(_people(ctx).asset_ids, ctx.user_id, person_id))
    assets.sort(key=lambda a: (a.get("taken_time") or a["upload_time"] or "", a["asset_id"]), reverse=True)
    return ok({"assets": assets[offset:offset + limit], "total": len(assets)})


@route("GET", "/people/{id}/thumbnail", operation_id="getPersonThumbnail",
       summary="The person's cover face, cropped (WebP)", tag="People", binary=("image/webp",),
       params=(PERSON_ID,))
async def person_thumbnail(ctx: Ctx) -> web.StreamResponse:
    """The cover face (the most confident one), cut out by the face task with a margin, as WebP;
    404 when the face task made no crop (a result recorded before crops existed)."""
    person = await _person(ctx, ctx.request.match_info["id"])
    face = await ctx.run(_people(ctx).face, ctx.user_id, person["cover_face_id"] or "")
    if face is None or not face["crop"]:
        raise NotFound("the person has no face crop to show")
    path = ctx.services.settings.data_dir / "derived" / face["crop"]
    if not path.is_file():
        raise NotFound("the person's face crop is gone (reprocess the photo to make it again)")
    return await serve_file(ctx.request, path, "image/webp", f"face-{face['face_id']}")


@route("PUT", "/faces/{face_id}/person", operation_id="moveFace",
       summary="Move a face to another (or a new) person", tag="People", body=FacePersonBody,
       response=FaceDTO, params=(FACE_ID,))
async def set_face_person(ctx: Ctx) -> web.Response:
    """Says whose face this is: `{person_id}` (one of the caller's people) or `{new_person: true}`.
    The correction is an event: a rebuild, and a later detection of the photo, keep it."""
    face_id = ctx.request.match_info["face_id"]
    body: FacePersonBody = ctx.body
    if (body.person_id is None) == (not body.new_person):
        raise InvalidInput("send either person_id or new_person: true", "person_id")
    face = await ctx.run(_people(ctx).face, ctx.user_id, face_id)
    if face is None:
        raise NotFound(f"face {face_id} not found")
    if body.person_id is not None:
        await _person(ctx, body.person_id)
    person_id, position = await ctx.run(ctx.services.app.move_face, ctx.user_id, face_id, body.person_id)
    await ctx.settle(position)
    moved = await ctx.run(_people(ctx).face, ctx.user_id, face_id)
    return ok({k: v for k, v in (moved or {}).items() if k != "crop"}, f"face now belongs to person {person_id}")
