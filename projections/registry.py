"""Every projection Darkroom runs, by name."""

from __future__ import annotations

from projections.albums import AlbumsProjection
from projections.base import Projection
from projections.catalog import CatalogProjection
from projections.facets import FacetsProjection
from projections.jobs import JobsProjection
from projections.people import PeopleProjection
from projections.search_index import SearchIndexProjection
from projections.users import UsersProjection

PROJECTIONS: dict[str, type[Projection]] = {
    CatalogProjection.name: CatalogProjection,
    AlbumsProjection.name: AlbumsProjection,
    JobsProjection.name: JobsProjection,
    FacetsProjection.name: FacetsProjection,
    PeopleProjection.name: PeopleProjection,
    SearchIndexProjection.name: SearchIndexProjection,
    UsersProjection.name: UsersProjection,
}
