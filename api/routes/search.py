"""Finding assets: structured filters, their facets, and filename search.

Answers come from the search index (`infra.search`: Elasticsearch when configured, the embedded
index otherwise, the catalog's SQL while Elasticsearch is down). Semantic search embeds the query
with the configured embedder and ranks the filtered assets by cosine similarity; with no embedder
it answers 503. The filter semantics (glob, dates, lens, camera make) are in `projections.queries`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from api.envelope import fail, ok
from api.models import _ASSET_EXAMPLE, AssetDTO, Body, body_examples, examples
from api.registry import Ctx, route
from domain.errors import InvalidInput, NotFound
from infra.search import SearchUnavailable
from projections.access import Access
from projections.facets import Facets
from projections.queries import AssetFilter, Near, date_bound

MAX_LIMIT = 100
_UNSTORABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def _plain(value: str) -> str:
    """No control characters (PostgreSQL refuses NUL; file names never hold any) and no lone
    surrogates (not encodable for either database)."""
    if _UNSTORABLE.search(value):
        raise ValueError("contains control characters or unpaired surrogates")
    return value


# The document says it too: no control characters (lone surrogates, also refused, cannot be
# said in a pattern that generators of test data understand).
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
Text = Annotated[StrictStr, AfterValidator(_plain), Field(json_schema_extra={"pattern": NO_CONTROL})]
# A date or a datetime (RFC 3339 as JSON Schema's formats mean it; `projections.queries.date_bound`).
DateText = Annotated[StrictStr, AfterValidator(_plain), WithJsonSchema(
    {"type": "string", "maxLength": 64, "anyOf": [{"format": "date"}, {"format": "date-time"}]})]


class FilenameFilter(Body):
    mode: Literal["contains", "startswith", "endswith", "matches"] = Field(
        description="contains, startswith, endswith: literal text; matches: a glob over the whole "
        "name (`*`, `?`, `[abc]`, `[a-z]`, `[!abc]`). All case-insensitive."
    )
    value: Text = Field(max_length=1000)


class DateRange(Body):
    """Inclusive bounds on the taken time. A date as `to` includes that whole day; a datetime
    without an offset is UTC."""

    from_: DateText | None = Field(default=None, alias="from", max_length=64,
                                    description="ISO date or datetime, inclusive")
    to: DateText | None = Field(default=None, max_length=64,
                                 description="ISO date (the whole day) or datetime, inclusive")

    @field_validator("from_")
    @classmethod
    def _check_from(cls, value: str | None) -> str | None:
        if value is not None:
            date_bound(value, end=False)
        return value

    @field_validator("to")
    @classmethod
    def _check_to(cls, value: str | None) -> str | None:
        if value is not None:
            date_bound(value, end=True)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.from_ is not None and self.to is not None:
            if date_bound(self.from_, end=False) > date_bound(self.to, end=True):
                raise ValueError(f"from ({self.from_}) is after to ({self.to})")
        return self

    def bounds(self) -> tuple[str | None, str | None]:
        return (
            date_bound(self.from_, end=False) if self.from_ is not None else None,
            date_bound(self.to, end=True) if self.to is not None else None,
        )



class NearFilter(Body):
    """Within `radius_km` (great-circle distance) of a point; assets without GPS never match."""

    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    radius_km: float = Field(gt=0, le=20_038, allow_inf_nan=False,
                             description="more than 0, at most half the Earth's circumference")

    @field_validator("lat", "lon", "radius_km")
    @classmethod
    def _finite(cls, value: float) -> float:
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return float(value)


class AssetFilterBody(Body):
    """Every field is optional; the given ones are combined with AND."""

    repository_id: Text | None = Field(default=None, max_length=200)
    type: Literal["PHOTO", "VIDEO", "AUDIO", "DOCUMENT"] | None = None
    owner_id: StrictInt | None = Field(default=None, ge=1,
                                       description="only your own id selects anything")
    raw: StrictBool | None = Field(default=None, description="RAW camera files only (or none)")
    rating: StrictInt | None = Field(default=None, ge=0, le=5)
    liked: StrictBool | None = None
    filename: FilenameFilter | None = None
    date: DateRange | None = None
    camera_make: Text | None = Field(
        default=None, min_length=1, max_length=200,
        description="matched on the normalised make: 'NIKON CORPORATION', 'nikon' and 'Nikon' are one",
    )
    lens: Text | None = Field(
        default=None, min_length=1, max_length=500,
        description="the whole lens name, case-insensitively (as listed by /assets/filter-options)",
    )
    tags: list[Annotated[Text, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=50, description="label tags (any of them), as `include_tags` lists them")
    person_ids: list[Annotated[Text, Field(min_length=1, max_length=64)]] | None = Field(
        default=None, max_length=20, description="people (all of them) from GET /people")

    country_code: StrictStr | None = Field(default=None, pattern=r"^[A-Za-z]{2}$",
                                      description="ISO 3166-1 alpha-2 country of the asset's place (any case)")
    city: Text | None = Field(default=None, min_length=1, max_length=200,
                              description="the city of the asset's place, case-insensitively (as /places lists it)")
    near: NearFilter | None = None
    collapse_stacks: StrictBool | None = Field(default=None, description="true: only each stack's primary")
    album_id: StrictInt | None = Field(
        default=None, ge=1, le=2**63 - 1,
        description="only this album's assets: one of yours or one shared with you (404 otherwise); "
        "filters and filename search only",
    )

    @field_validator("type", mode="before")
    @classmethod
    def _upper_type(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    def to_filter(self) -> AssetFilter:
        taken_from, taken_to = self.date.bounds() if self.date is not None else (None, None)
        return AssetFilter(
            repository_id=self.repository_id, type=self.type, owner_id=self.owner_id,
            raw=self.raw, rating=self.rating, liked=self.liked,
            filename_mode=self.filename.mode if self.filename else None,
            filename_value=self.filename.value if self.filename else None,
            taken_from=taken_from, taken_to=taken_to,
            camera_make=self.camera_make, lens=self.lens,
            country_code=self.country_code, city=self.city,
            near=Near(self.near.lat, self.near.lon, self.near.radius_km) if self.near is not None else None,
            collapse_stacks=bool(self.collapse_stacks),
            person_ids=tuple(dict.fromkeys(self.person_ids or ())), tags=tuple(dict.fromkeys(self.tags or ())),
        )


class FilterBody(Body):
    model_config = body_examples({"filter": {"type": "PHOTO", "rating": 5, "liked": True,
                                             "filename": {"mode": "matches", "value": "IMG_*.JPG"},
                                             "date": {"from": "2026-01-01", "to": "2026-12-31"}},
                                  "limit": 20, "offset": 0})

    filter: AssetFilterBody | None = None
    limit: StrictInt = Field(default=20, ge=1, json_schema_extra={"maximum": MAX_LIMIT},
                             description=f"page size (larger values are lowered to {MAX_LIMIT})")
    offset: StrictInt = Field(default=0, ge=0, le=2**62)


class SearchBody(Body):
    model_config = body_examples({"query": "IMG_00", "search_type": "filename", "limit": 20, "offset": 0},
                                 {"query": "a dog on a beach", "search_type": "semantic",
                                  "filter": {"type": "PHOTO"}},
                                 {"query": "notruf 112", "search_type": "text"})

    query: Text = Field(min_length=1, max_length=1000)
    search_type: Literal["filename", "semantic", "text"]
    filter: AssetFilterBody | None = None
    limit: StrictInt = Field(default=20, ge=1, json_schema_extra={"maximum": MAX_LIMIT},
                             description=f"page size (larger values are lowered to {MAX_LIMIT})")
    offset: StrictInt = Field(default=0, ge=0, le=2**62)


class ScoredAsset(AssetDTO):
    score: float | None = Field(default=None, description="semantic search: cosine similarity "
                                "of the asset's image embedding with the query's; text search: the "
                                "relevance (BM25); best first")


class FilteredPage(BaseModel):
    model_config = examples({"assets": [{**_ASSET_EXAMPLE, "score": None}], "limit": 20, "offset": 0, "total": 1})

    assets: list[ScoredAsset]
    limit: int
    offset: int
    total: int


class FacetCount(BaseModel):
    value: str
    count: int


class YearCount(BaseModel):
    value: int
    count: int


class FilterOptions(BaseModel):
    model_config = examples({"camera_makes": [{"value": "Canon", "count": 12}],
                             "lenses": [{"value": "EF24-105mm f/4L IS USM", "count": 7}],
                             "years": [{"value": 2026, "count": 19}]})

    camera_makes: list[FacetCount]
    lenses: list[FacetCount]
    years: list[YearCount]


def _filter_of(body: FilterBody | SearchBody) -> AssetFilter:
    return body.filter.to_filter() if body.filter is not None else AssetFilter()


@route("POST", "/assets/filter", operation_id="filterAssets",
       summary="The user's assets that pass a filter, newest first", tag="Search", body=FilterBody,
       response=FilteredPage, also=(404,))
async def filter_assets(ctx: Ctx) -> web.Response:
    """The caller's assets that pass every given filter field, newest taken first, with the total.
    With `album_id`, the assets of that album instead (one of the caller's, or one shared with
    them: 404 otherwise), whoever owns them."""
    body: FilterBody = ctx.body
    limit = min(body.limit, MAX_LIMIT)
    if body.filter is not None and body.filter.album_id is not None:
        return await _in_album(ctx, body.filter.album_id, _filter_of(body), limit, body.offset, None)
    assets, total = await ctx.run(ctx.services.search.filter, ctx.user_id, _filter_of(body),
                                  limit, body.offset)
    return ok({"assets": assets, "limit": limit, "offset": body.offset, "total": total})


async def _in_album(ctx: Ctx, album_id: int, asset_filter: AssetFilter, limit: int, offset: int,
                    filename: str | None) -> web.Response:
    """Search within one album the caller may see (a shared one too), through the access rule."""
    found = await ctx.run(Access(ctx.services.db).album_search, ctx.user_id, album_id, asset_filter, limit,
                          offset, filename)
    if found is None:
        raise NotFound(f"album {album_id} not found")
    assets, total = found
    return ok({"assets": assets, "limit": limit, "offset": offset, "total": total})


@route("GET", "/assets/filter-options", operation_id="getFilterOptions",
       summary="Camera makes, lenses and years in the user's library, with counts", tag="Search",
       response=FilterOptions)
async def filter_options(ctx: Ctx) -> web.Response:
    """The values worth offering in a filter form: the caller's camera makes, lenses and years,
    each with how many assets have it."""
    return ok(await ctx.run(Facets(ctx.services.db).options, ctx.user_id))


@route("POST", "/assets/search", operation_id="searchAssets",
       summary="Search the user's assets by filename, by their words (OCR, captions, tags...) or by meaning", tag="Search",
       body=SearchBody, response=FilteredPage, also=(404,))
async def search_assets(ctx: Ctx) -> web.Response:
    """`filename`: names containing the query, case-insensitively. `text`: full-text search over
    OCR text, AI caption, description, tags, place names and file name, ranked (BM25) with a
    `score`; a query with no words is 400. `semantic`: assets ranked by how well their image
    matches the text, with a `score` (503 when no embedding model is set). `filter` narrows each;
    `filter.album_id` searches within one album, owned or shared with the caller (all three
    kinds; 404 for an album the caller may not see)."""
    body: SearchBody = ctx.body
    limit = min(body.limit, MAX_LIMIT)
    album_id = body.filter.album_id if body.filter is not None else None
    if album_id is not None:
        if body.search_type == "filename":
            return await _in_album(ctx, album_id, _filter_of(body), limit, body.offset, body.query)
        if await ctx.run(Access(ctx.services.db).album, ctx.user_id, album_id) is None:
            raise NotFound(f"album {album_id} not found")
    if body.search_type == "text":
        from infra.search.embedded import query_words

        if not query_words(body.query):
            raise InvalidInput("query has no words to search for", "query")
        assets, total = await ctx.run(ctx.services.search.text, ctx.user_id, _filter_of(body),
                                      body.query, limit, body.offset, album_id)
        return ok({"assets": assets, "limit": limit, "offset": body.offset, "total": total})
    if body.search_type == "semantic":
        try:
            assets, total = await ctx.run(ctx.services.search.semantic, ctx.user_id, _filter_of(body),
                                          body.query, limit, body.offset, album_id)
        except SearchUnavailable as exc:
            return fail(
                503, f"semantic search is unavailable: {exc}",
                "search_type 'semantic' needs an embedding model that loads, and this server has "
                "none (set DARKROOM_EMBEDDER or configure the CLIP model); use search_type "
                "'filename' or a filter",
            )
        return ok({"assets": assets, "limit": limit, "offset": body.offset, "total": total})
    assets, total = await ctx.run(ctx.services.search.filter, ctx.user_id, _filter_of(body),
                                  limit, body.offset, filename_contains=body.query)
    return ok({"assets": assets, "limit": limit, "offset": body.offset, "total": total})
