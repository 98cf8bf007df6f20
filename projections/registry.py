"""Every projection Darkroom runs, by name."""

from __future__ import annotations

from projections.albums import AlbumsProjection
from projections.base import Projection
from projections.catalog import CatalogProjection
from projections.duplicates import DuplicatesProjection
from projections.facets import FacetsProjection
from projections.jobs import JobsProjection
from projections.libraries import LibrariesProjection
from projections.people import PeopleProjection
from projections.search_index import SearchIndexProjection
from projections.stacks import StacksProjection
from projections.trash import TrashProjection
from projections.tags import TagsProjection
from projections.sharing import AlbumMembersProjection, SharedLinksProjection
from projections.users import UsersProjection

PROJECTIONS: dict[str, type[Projection]] = {
    CatalogProjection.name: CatalogProjection,
    AlbumsProjection.name: AlbumsProjection,
    JobsProjection.name: JobsProjection,
    FacetsProjection.name: FacetsProjection,
    PeopleProjection.name: PeopleProjection,
    SearchIndexProjection.name: SearchIndexProjection,
    TrashProjection.name: TrashProjection,
    StacksProjection.name: StacksProjection,
    DuplicatesProjection.name: DuplicatesProjection,
    TagsProjection.name: TagsProjection,
    AlbumMembersProjection.name: AlbumMembersProjection,
    SharedLinksProjection.name: SharedLinksProjection,
    LibrariesProjection.name: LibrariesProjection,
    UsersProjection.name: UsersProjection,
}
