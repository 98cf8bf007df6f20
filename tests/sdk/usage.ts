// Compiled by tests/test_sdk.py with `tsc --strict --noEmit` next to `darkroom.d.ts`, which
// openapi-typescript generates from the live document. Each line leans on a generated type, so a
// type the document loses or changes breaks the compile.
import type { components, operations, paths } from "./darkroom";

type Envelope<Op extends keyof operations, Status extends keyof operations[Op]["responses"]> =
  operations[Op]["responses"][Status] extends { content: { "application/json": infer Body } } ? Body : never;

// createAlbum answers 201 with the album in `data`.
type CreatedAlbum = NonNullable<Envelope<"createAlbum", 201>["data"]>;
const album: CreatedAlbum = {
  album_id: 1,
  user_id: 1,
  album_name: "Holidays",
  description: null,
  cover_asset_id: null,
  asset_count: 0,
  created_at: "2026-11-28T10:00:00Z",
  updated_at: "2026-11-28T10:00:00Z",
};
const albumId: number = album.album_id;

// The request body of createAlbum: album_name is required, the rest optional.
type NewAlbum = NonNullable<operations["createAlbum"]["requestBody"]>["content"]["application/json"];
const newAlbum: NewAlbum = { album_name: "Holidays" };

// The Asset schema's fields, with their types.
type Asset = components["schemas"]["AssetDTO"];
function describe(asset: Asset): string {
  const id: string = asset.asset_id;
  const size: number = asset.file_size;
  const name: string = asset.original_filename;
  const rating: number = asset.rating;
  const liked: boolean = asset.liked;
  const kind: string = asset.type;
  return `${id} ${name} ${size} ${rating} ${liked} ${kind}`;
}

// register answers 201 with a token and the user.
type Registered = NonNullable<Envelope<"register", 201>["data"]>;
function bearer(auth: Registered): { Authorization: string; user: number } {
  return { Authorization: `Bearer ${auth.token}`, user: auth.user.user_id };
}

// Paths and their verbs: the original of an asset is a GET with an `id` path parameter.
type OriginalParams = paths["/api/v1/assets/{id}/original"]["get"]["parameters"]["path"];
const original: OriginalParams = { id: "6f1c1c2e-2f51-4f1d-9a4e-8f0a3b2c1d0e" };

// Every failure shares one error envelope.
type Failure = components["schemas"]["Error"];
const failure: Failure = { code: 404, message: "not found" };

// searchAssets takes a search type from a closed set.
type Search = NonNullable<operations["searchAssets"]["requestBody"]>["content"]["application/json"];
const search: Search = { query: "IMG_", search_type: "filename" };

export { albumId, newAlbum, describe, bearer, original, failure, search };
