"""Which event fields hold personal data, so erasing a person destroys a key, not history.

Each listed field is sealed (encrypted with its owner's key) when the event is stored and opened
on read while the key exists; once the owner is erased the key is gone and the field reads as
`erased_value` of its type. The owner of an event is the user its aggregate belongs to (the
asset's owner, the album's user, the account itself). A new event type that carries a person's
words, names, places, file names or biometrics adds its fields here (tests/test_erasure.py
checks that every listed field exists).
"""

from __future__ import annotations

from typing import Any

ERASED = "[erased]"

PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "User.Registered": ("username", "email"),
    "UsernameClaimed.Claimed": ("username",),
    "EmailClaimed.Claimed": ("email",),
    "Asset.Uploaded": ("original_filename",),
    "Asset.DescriptionChanged": ("description",),
    "Asset.MetadataUpdated": ("changes",),  # GPS, titles, descriptions the owner typed
    "Asset.MetadataExtracted": ("specific_metadata",),  # GPS, serial numbers, owner names
    "Asset.EmbeddingRecorded": ("vector",),
    "Asset.SpeciesRecorded": ("predictions",),
    "Asset.TextRecognised": ("text", "lines"),
    "Asset.FacesDetected": ("faces",),  # face embeddings: biometric data
    "Asset.CaptionRecorded": ("caption",),
    "Asset.LabelsRecorded": ("labels",),  # what the photos show
    "Asset.Located": ("latitude", "longitude", "place"),  # where the owner was
    "PeopleBook.PersonNamed": ("name",),  # the names the owner gives the people in the photos
    "Album.Created": ("album_name", "description"),
    "Album.Updated": ("changes",),
}


def kind_of(value: Any) -> str:
    """The kind of a sealed value, kept beside it in clear so an erased one keeps its kind."""
    if value is None:
        return "null"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "number"
    return "text"


def erased_value(kind: str) -> Any:
    """What an erased field reads as: of the kind its value was, so readers need no special case
    (text says it was erased; lists and objects are empty; a number and nothing become nothing)."""
    return {"null": None, "number": None, "list": [], "object": {}}.get(kind, ERASED)
