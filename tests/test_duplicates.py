"""Near-duplicates over HTTP on both backends: resized, re-encoded, lightly cropped and rotated
copies of corpus photos (made at test time) group with their original and different photos do
not; resolve carries albums, rating and like over and trashes the rest; dismiss; both survive a
rebuild with the same group ids; bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pyvips

from infra.fingerprints import grey_of, group
from processors.fingerprint import grey16
from projections.registry import PROJECTIONS
from projections.runner import rebuild
from tests.helpers import register
from tests.scenario import settle_jobs

ORIGINALS = ("photo/nikon_d5000.jpg", "photo/kodak_dx4330.jpg", "photo/sony_dsc-hx5v_gps.jpg")
DIFFERENT = ("photo/olympus_e-420_lens.jpg", "photo/casio_ex-z3.jpg", "photo/fujifilm_finepix_s5500.jpg")
GONE = "0b9a3c4e-1111-4222-8333-944455556666"


def copies(source: Path, out: Path) -> dict[str, Path]:
    """Resized to half, re-encoded at quality 40, cropped by 5% on each side, rotated by 90°."""
    image = pyvips.Image.new_from_file(str(source)).autorot()
    w, h = image.width, image.height
    made = {
        "resized": image.resize(0.5),
        "reencoded": image,
        "cropped": image.crop(int(w * 0.05), int(h * 0.05), int(w * 0.9), int(h * 0.9)),
        "rotated": image.rot90(),
    }
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, variant in made.items():
        path = out / f"{source.stem}-{name}.jpg"
        variant.jpegsave(str(path), Q=40 if name == "reencoded" else 85, keep="none")
        paths[name] = path
    return paths


async def test_copies_group_with_their_original_and_reviews_survive_a_rebuild(
        client: Any, services: Any, media: Path, tmp_path: Path) -> None:
    services.start_processing()
    alice, bob = await register(client, "alice"), await register(client, "bob")
    family: dict[str, dict[str, str]] = {}
    for original in ORIGINALS:
        ids = {"original": (await alice.upload(media / original))["data"]["asset_id"]}
        for name, path in copies(media / original, tmp_path / Path(original).stem).items():
            ids[name] = (await alice.upload(path))["data"]["asset_id"]
        family[original] = ids
    others = [(await alice.upload(media / p))["data"]["asset_id"] for p in DIFFERENT]
    bobs = (await bob.upload(media / ORIGINALS[0]))["data"]["asset_id"]
    settle_jobs(services, timeout=180)

    listed = (await alice.call("GET", "/duplicates"))["data"]
    assert listed["total"] == 3
    groups = {frozenset(a["asset_id"] for a in g["assets"]): g for g in listed["groups"]}
    assert set(groups) == {frozenset(ids.values()) for ids in family.values()}
    assert all(0.82 <= g["similarity"] <= 1 for g in listed["groups"])
    assert not any(o in members for o in others for members in groups)
    assert (await bob.call("GET", "/duplicates"))["data"]["total"] == 0
    nikon = family[ORIGINALS[0]]
    nikon_group = groups[frozenset(nikon.values())]["group_id"]
    kodak_group = groups[frozenset(family[ORIGINALS[1]].values())]["group_id"]

    # Bad input changes nothing.
    for gid, body, status in ((GONE, {"keep_asset_ids": [nikon["original"]]}, 404),
                              ("not-a-uuid", {"keep_asset_ids": [nikon["original"]]}, 404),
                              (nikon_group, {"keep_asset_ids": [others[0]]}, 400),
                              (nikon_group, {"keep_asset_ids": []}, 400),
                              (nikon_group, {"keep_asset_ids": ["x"]}, 400),
                              (nikon_group, {"keep_asset_ids": [nikon["original"], nikon["original"]]}, 400),
                              (nikon_group, {}, 400)):
        await alice.call("POST", f"/duplicates/{gid}/resolve", body, expect=status)
    await bob.call("POST", f"/duplicates/{nikon_group}/resolve", {"keep_asset_ids": [bobs]}, expect=404)
    await bob.call("POST", f"/duplicates/{nikon_group}/dismiss", expect=404)
    await alice.call("POST", f"/duplicates/{GONE}/dismiss", expect=404)
    assert (await alice.call("GET", "/duplicates"))["data"]["total"] == 3

    # Resolve: keep the original; it gains the album, the best rating and the like.
    album = (await alice.call("POST", "/albums", {"album_name": "Trip"}, expect=201))["data"]["album_id"]
    await alice.call("POST", f"/albums/{album}/assets/{nikon['resized']}", {})
    await alice.call("PUT", f"/assets/{nikon['reencoded']}/rating", {"rating": 4})
    await alice.call("PUT", f"/assets/{nikon['cropped']}/like", {"liked": True})
    resolved = (await alice.call("POST", f"/duplicates/{nikon_group}/resolve",
                                 {"keep_asset_ids": [nikon["original"]]}))["data"]
    assert resolved["kept"] == [nikon["original"]]
    assert set(resolved["trashed"]) == set(nikon.values()) - {nikon["original"]}
    kept = (await alice.call("GET", f"/assets/{nikon['original']}"))["data"]
    assert kept["rating"] == 4 and kept["liked"] is True
    assert [a["album_id"] for a in kept["albums"]] == [album]
    trash = {a["asset_id"] for a in (await alice.call("GET", "/trash"))["data"]["assets"]}
    assert trash == set(resolved["trashed"])

    await alice.call("POST", f"/duplicates/{kodak_group}/dismiss")
    after = (await alice.call("GET", "/duplicates"))["data"]
    assert after["total"] == 1 and after["groups"][0]["group_id"] == groups[frozenset(family[ORIGINALS[2]].values())]["group_id"]

    for cls in PROJECTIONS.values():
        rebuild(services.app, services.db, cls)
    assert (await alice.call("GET", "/duplicates"))["data"] == after
    # Restored copies do not bring the resolved group back.
    await alice.call("POST", "/trash/restore")
    assert (await alice.call("GET", "/duplicates"))["data"] == after


def test_grouping_ignores_flat_pictures_and_respects_decisions() -> None:
    """Pictures with no structure never group; a pair said apart is not linked."""
    flat = grey_of(bytes([128] * 256))
    assert group([flat, flat, flat]) == []
    image = pyvips.Image.new_from_file(str(Path(__file__).parent / "media" / ORIGINALS[0]))
    g = grey_of(grey16(image))
    assert [x.members for x in group([g, g])] == [[0, 1]]
    assert group([g, g], apart={frozenset((0, 1))}) == []


@pytest.mark.parametrize("n", [10])
def test_grouping_is_order_stable(n: int) -> None:
    """The same fingerprints in the same order group the same way (group ids follow)."""
    image = pyvips.Image.new_from_file(str(Path(__file__).parent / "media" / ORIGINALS[1]))
    g = grey_of(grey16(image))
    assert [x.members for x in group([g] * n)] == [list(range(n))]


def test_clip_embeddings_refine_groups() -> None:
    """Two pictures alike in grey levels but far apart in meaning (CLIP) are not duplicates;
    alike in both, they are; without embeddings the pictures decide alone."""
    import numpy as np

    image = pyvips.Image.new_from_file(str(Path(__file__).parent / "media" / ORIGINALS[2]))
    g = grey_of(grey16(image))
    same, other = np.array([1.0, 0.0], dtype=np.float32), np.array([0.0, 1.0], dtype=np.float32)
    assert group([g, g], embeddings=[same, other]) == []
    assert [x.members for x in group([g, g], embeddings=[same, same])] == [[0, 1]]
    assert [x.members for x in group([g, g], embeddings=[same, None])] == [[0, 1]]
