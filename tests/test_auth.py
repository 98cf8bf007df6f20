"""Auth through HTTP: register, login, refresh, logout, me, on both backends.

Every scenario drives the API as a client would, good inputs and bad ones, and checks the
envelope `{code, message, data, error}` and the real status of each answer. A rejected call
must leave nothing behind: no id consumed, no name claimed, no event written.
"""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
import pytest

from tests.helpers import API, User, register

PASSWORD = "correct horse battery"
USER_FIELDS = {"user_id", "username", "email", "created_at", "last_login", "is_active"}
AUTH_FIELDS = {"token", "refreshToken", "expiresAt", "user"}


# -- small helpers -----------------------------------------------------------------------------


async def call(client: Any, method: str, path: str, json_body: Any = None, *, raw: bytes | None = None,
               headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """Send one request; return (status, envelope). Every answer must be a JSON envelope."""
    kwargs: dict[str, Any] = {"headers": dict(headers or {})}
    if raw is not None:
        kwargs["data"] = raw
        kwargs["headers"].setdefault("Content-Type", "application/json")
    elif json_body is not None:
        kwargs["json"] = json_body
    resp = await client.request(method, API + path, **kwargs)
    assert resp.content_type == "application/json", (resp.status, await resp.text())
    body = await resp.json()
    assert isinstance(body, dict) and "code" in body and "message" in body, body
    return resp.status, body


def assert_failure(status: int, body: dict[str, Any], expected: int, field: str | None = None) -> None:
    """A failure envelope: real status, code == status, no data, `error` naming the field."""
    assert status == expected, (status, body)
    assert body["code"] == expected, body
    assert "data" not in body, body
    assert isinstance(body.get("message"), str) and body["message"], body
    if field is not None:
        assert field in body.get("error", ""), (field, body)


def assert_success(status: int, body: dict[str, Any], expected: int = 200) -> dict[str, Any]:
    assert status == expected, (status, body)
    assert body["code"] == 0, body
    assert "error" not in body, body
    return body.get("data", {})


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"timestamp without a time zone: {value}"
    return parsed


def access_claims(services: Any, token: str) -> dict[str, Any]:
    return jwt.decode(token, services.settings.jwt_secret, algorithms=["HS256"])


def craft_access_token(secret: str, sub: str = "1", *, exp_in: int = 600, **overrides: Any) -> str:
    """An access token shaped like infra/tokens.py issues, signed with `secret`."""
    now = datetime.now(timezone.utc)
    claims: dict[str, Any] = {
        "sub": sub,
        "adm": False,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=exp_in)).timestamp()),
        "typ": "access",
    }
    claims.update(overrides)
    return jwt.encode(claims, secret, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(client: Any, username: str, password: str = PASSWORD) -> dict[str, Any]:
    status, body = await call(client, "POST", "/auth/login", {"username": username, "password": password})
    return assert_success(status, body)


async def refresh(client: Any, token: str) -> tuple[int, dict[str, Any]]:
    return await call(client, "POST", "/auth/refresh", {"refreshToken": token})


async def me(client: Any, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    return await call(client, "GET", "/auth/me", headers=headers)


async def event_head(admin: User) -> int:
    """Position of the newest event in the store, read through the admin API."""
    page = await admin.call("GET", "/admin/events?limit=1000")
    assert page["data"]["has_more"] is False, page
    return page["data"]["next_after"]


# -- register ----------------------------------------------------------------------------------


async def test_register_returns_tokens_and_user(client, services):
    """A new account answers 201 with an access token, a refresh token, its expiry and the user."""
    before = datetime.now(timezone.utc)
    status, body = await call(client, "POST", "/auth/register", {
        "username": "alice", "email": "Alice@Example.org", "password": PASSWORD,
    })
    data = assert_success(status, body, 201)
    assert set(data) == AUTH_FIELDS
    user = data["user"]
    assert set(user) == USER_FIELDS
    assert user["user_id"] == 1
    assert user["username"] == "alice"
    assert user["email"] == "alice@example.org"  # e-mail addresses are kept lower-case
    assert user["is_active"] is True
    created = parse_time(user["created_at"])
    assert before - timedelta(seconds=5) <= created <= datetime.now(timezone.utc) + timedelta(seconds=5)

    claims = access_claims(services, data["token"])
    assert claims["sub"] == "1" and claims["typ"] == "access"
    expires = parse_time(data["expiresAt"])
    assert int(expires.timestamp()) == claims["exp"]
    ttl = services.settings.access_token_ttl_seconds
    assert timedelta(0) < expires - datetime.now(timezone.utc) <= timedelta(seconds=ttl + 5)

    assert data["refreshToken"] and data["refreshToken"] != data["token"]
    status, body = await me(client, bearer(data["token"]))
    assert assert_success(status, body) == user | {"is_admin": True, "quota_bytes": 0, "usage_bytes": 0}


async def test_first_user_is_admin_and_second_is_not(client, services):
    """User 1 may read /admin/events; user 2 gets 403, and their tokens say so."""
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    assert (alice.user_id, bob.user_id) == (1, 2)
    assert access_claims(services, alice.token)["adm"] is True
    assert access_claims(services, bob.token)["adm"] is False

    page = await alice.call("GET", "/admin/events")
    assert page["code"] == 0 and page["data"]["events"], page
    status, body = await call(client, "GET", "/admin/events", headers=bob.headers)
    assert_failure(status, body, 403)

    # The event stream shown to the admin never carries a password or its hash.
    dump = json.dumps(page["data"]["events"])
    assert PASSWORD not in dump
    assert "$argon2" not in dump


async def test_admin_stays_with_first_user_after_logins(client, services):
    """Logging in again or refreshing keeps each user's admin flag as it was."""
    await register(client, "alice")
    await register(client, "bob")
    bob_login = await login(client, "bob")
    assert access_claims(services, bob_login["token"])["adm"] is False
    status, body = await refresh(client, bob_login["refreshToken"])
    assert access_claims(services, assert_success(status, body)["token"])["adm"] is False
    alice_login = await login(client, "alice")
    assert access_claims(services, alice_login["token"])["adm"] is True


@pytest.mark.parametrize("username,email,field", [
    pytest.param("ALICE", "other@example.org", "username", id="same-name-other-case"),
    pytest.param("alice", "other@example.org", "username", id="same-name"),
    pytest.param("carol", "alice@example.org", "email", id="same-email"),
    pytest.param("carol", "ALICE@EXAMPLE.ORG", "email", id="same-email-other-case"),
])
async def test_duplicate_registration_is_409(client, username, email, field):
    """A taken username (any case) or e-mail (any case) is a 409 naming the field."""
    await register(client, "alice")
    status, body = await call(client, "POST", "/auth/register",
                              {"username": username, "email": email, "password": PASSWORD})
    assert_failure(status, body, 409, field)

    # The rejected call took nothing: the next user is number 2 and may use the other half.
    if field == "email":
        carol = await register(client, username)
        assert carol.user_id == 2
    else:
        status, body = await call(client, "POST", "/auth/register",
                                  {"username": "dave", "email": email, "password": PASSWORD})
        assert assert_success(status, body, 201)["user"]["user_id"] == 2


LONG = "x" * 65

BAD_REGISTER_BODIES = [
    # missing fields
    pytest.param({}, "username", id="empty-object"),
    pytest.param({"email": "alice@example.org", "password": PASSWORD}, "username", id="no-username"),
    pytest.param({"username": "alice", "password": PASSWORD}, "email", id="no-email"),
    pytest.param({"username": "alice", "email": "alice@example.org"}, "password", id="no-password"),
    # extra fields (a typo, or a try at privilege escalation)
    pytest.param({"username": "alice", "email": "alice@example.org", "password": PASSWORD,
                  "is_admin": True}, "is_admin", id="extra-is_admin"),
    pytest.param({"username": "alice", "email": "alice@example.org", "password": PASSWORD,
                  "user_id": 7}, "user_id", id="extra-user_id"),
    pytest.param({"username": "alice", "email": "alice@example.org", "passwd": PASSWORD},
                 "passwd", id="typo-passwd"),
    # wrong types
    pytest.param({"username": 12345, "email": "alice@example.org", "password": PASSWORD},
                 "username", id="username-int"),
    pytest.param({"username": None, "email": "alice@example.org", "password": PASSWORD},
                 "username", id="username-null"),
    pytest.param({"username": ["alice"], "email": "alice@example.org", "password": PASSWORD},
                 "username", id="username-list"),
    pytest.param({"username": "alice", "email": {"a": 1}, "password": PASSWORD}, "email", id="email-object"),
    pytest.param({"username": "alice", "email": "alice@example.org", "password": 12345678},
                 "password", id="password-int"),
    pytest.param({"username": "alice", "email": "alice@example.org", "password": True},
                 "password", id="password-bool"),
    # password length
    pytest.param({"username": "alice", "email": "alice@example.org", "password": "short"},
                 "password", id="password-too-short"),
    pytest.param({"username": "alice", "email": "alice@example.org", "password": "1234567"},
                 "password", id="password-7-chars"),
    pytest.param({"username": "alice", "email": "alice@example.org", "password": ""},
                 "password", id="password-empty"),
    pytest.param({"username": "alice", "email": "alice@example.org", "password": "p" * 1025},
                 "password", id="password-too-long"),
    # username shape
    pytest.param({"username": "", "email": "alice@example.org", "password": PASSWORD}, "username",
                 id="username-empty"),
    pytest.param({"username": "al", "email": "alice@example.org", "password": PASSWORD}, "username",
                 id="username-too-short"),
    pytest.param({"username": LONG, "email": "alice@example.org", "password": PASSWORD}, "username",
                 id="username-too-long"),
    pytest.param({"username": "al ice", "email": "alice@example.org", "password": PASSWORD}, "username",
                 id="username-space"),
    pytest.param({"username": " alice", "email": "alice@example.org", "password": PASSWORD}, "username",
                 id="username-leading-space"),
    pytest.param({"username": "alice\n", "email": "alice@example.org", "password": PASSWORD}, "username",
                 id="username-newline"),
    pytest.param({"username": "ali/ce", "email": "alice@example.org", "password": PASSWORD}, "username",
                 id="username-slash"),
    pytest.param({"username": "alice!", "email": "alice@example.org", "password": PASSWORD}, "username",
                 id="username-bang"),
    pytest.param({"username": "ålice", "email": "alice@example.org", "password": PASSWORD}, "username",
                 id="username-non-ascii"),
    pytest.param({"username": "ali\u0000ce", "email": "alice@example.org", "password": PASSWORD},
                 "username", id="username-nul"),
    pytest.param({"username": "<script>", "email": "alice@example.org", "password": PASSWORD},
                 "username", id="username-markup"),
    # e-mail shape
    pytest.param({"username": "alice", "email": "not-an-email", "password": PASSWORD}, "email",
                 id="email-no-at"),
    pytest.param({"username": "alice", "email": "alice@localhost", "password": PASSWORD}, "email",
                 id="email-no-domain-dot"),
    pytest.param({"username": "alice", "email": "alice@@example.org", "password": PASSWORD}, "email",
                 id="email-double-at"),
    pytest.param({"username": "alice", "email": "al ice@example.org", "password": PASSWORD}, "email",
                 id="email-space"),
    pytest.param({"username": "alice", "email": "", "password": PASSWORD}, "email", id="email-empty"),
    pytest.param({"username": "alice", "email": "ali\u0000ce@example.org", "password": PASSWORD},
                 "email", id="email-nul"),
    pytest.param({"username": "alice", "email": "a" * 250 + "@example.org", "password": PASSWORD},
                 "email", id="email-too-long"),
]


@pytest.mark.parametrize("payload,field", BAD_REGISTER_BODIES)
async def test_register_rejects_bad_fields(client, payload, field):
    """Each malformed field is a 400 naming it, and the rejected call leaves no trace."""
    status, body = await call(client, "POST", "/auth/register", payload)
    assert_failure(status, body, 400, field)

    # Nothing was taken: alice can still register and is user number 1.
    alice = await register(client, "alice")
    assert alice.user_id == 1


async def test_register_missing_fields_are_all_reported(client):
    """An empty object names every missing field in `error`, not just the first."""
    status, body = await call(client, "POST", "/auth/register", {})
    assert_failure(status, body, 400)
    for field in ("username", "email", "password"):
        assert field in body["error"], body


BAD_RAW_BODIES = [
    pytest.param(b'{"username": "alice", "email": ', "application/json", id="truncated-json"),
    pytest.param(b"{'username': 'alice'}", "application/json", id="single-quotes"),
    pytest.param(json.dumps([{"username": "alice", "email": "alice@example.org",
                              "password": PASSWORD}]).encode(), "application/json", id="json-array"),
    pytest.param(b'"alice"', "application/json", id="json-string"),
    pytest.param(b"42", "application/json", id="json-number"),
    pytest.param(b"null", "application/json", id="json-null"),
    pytest.param(b"true", "application/json", id="json-true"),
    pytest.param(b"", "application/json", id="empty-body"),
    pytest.param(b"   \n", "application/json", id="whitespace-body"),
    pytest.param(b"username=alice&email=alice%40example.org&password=correct+horse+battery",
                 "application/x-www-form-urlencoded", id="form-encoded"),
    pytest.param(b"\xff\xfe\xfa\xfb", "application/json", id="not-utf8"),
    pytest.param(b"<xml/>", "text/xml", id="xml"),
]


@pytest.mark.parametrize("raw,content_type", BAD_RAW_BODIES)
async def test_register_rejects_bodies_that_are_not_a_json_object(client, raw, content_type):
    """Malformed JSON, a JSON array/scalar, or no body at all is a 400 about the body."""
    status, body = await call(client, "POST", "/auth/register", raw=raw,
                              headers={"Content-Type": content_type})
    assert_failure(status, body, 400, "body")
    alice = await register(client, "alice")
    assert alice.user_id == 1


async def test_register_deeply_nested_json_is_400(client):
    """A small body nested very deep is bad input (400), not a server crash (500)."""
    raw = b"[" * 100_000 + b"]" * 100_000
    assert len(raw) < 1024 * 1024
    status, body = await call(client, "POST", "/auth/register", raw=raw)
    assert_failure(status, body, 400, "body")


async def test_register_huge_integer_is_400(client):
    """A field holding a 5000-digit number is bad input (400), not a server crash (500)."""
    raw = b'{"username": ' + b"1" * 5000 + b', "email": "alice@example.org", "password": "x"}'
    status, body = await call(client, "POST", "/auth/register", raw=raw)
    assert_failure(status, body, 400)


async def test_rejected_calls_write_no_events(client, services):
    """Bad registrations, failed logins and bad refresh tokens leave the event store as it was."""
    admin = await register(client, "alice")
    head = await event_head(admin)

    await call(client, "POST", "/auth/register", {"username": "alice", "email": "x@example.org",
                                                  "password": PASSWORD})
    await call(client, "POST", "/auth/register", {"username": "bob", "email": "alice@example.org",
                                                  "password": PASSWORD})
    await call(client, "POST", "/auth/register", {"username": "bob", "email": "bob@example.org",
                                                  "password": "short"})
    await call(client, "POST", "/auth/register", raw=b"[]")
    await call(client, "POST", "/auth/login", {"username": "alice", "password": "wrong password"})
    await call(client, "POST", "/auth/login", {"username": "nobody", "password": PASSWORD})
    await refresh(client, "garbage")
    token_id = admin.refresh_token.split(".")[1]
    await refresh(client, f"1.{token_id}.wrong-secret")
    await call(client, "POST", "/auth/logout", {"refreshToken": "99.abc.def"})
    assert await event_head(admin) == head

    # And bob's name and the next id are still free.
    bob = await register(client, "bob")
    assert bob.user_id == 2


async def test_concurrent_registrations_get_distinct_ids_and_one_admin(client, services):
    """Eight sign-ups at once: ids 1..8, each once, and exactly one admin, user 1."""
    names = [f"user{i}" for i in range(8)]
    users = await asyncio.gather(*(register(client, n) for n in names))
    assert sorted(u.user_id for u in users) == list(range(1, 9))
    admins = [u.user_id for u in users if access_claims(services, u.token)["adm"]]
    assert admins == [1]


async def test_double_submitted_registration_is_one_201_and_one_409(client):
    """The same sign-up sent twice at once creates one account; the other answer is a 409."""
    payload = {"username": "alice", "email": "alice@example.org", "password": PASSWORD}
    results = await asyncio.gather(*(call(client, "POST", "/auth/register", payload) for _ in range(2)))
    assert sorted(status for status, _ in results) == [201, 409], results
    bob = await register(client, "bob")
    assert bob.user_id == 2


# -- login -------------------------------------------------------------------------------------


async def test_login_returns_tokens_and_updates_last_login(client, services):
    """Login answers 200 with a fresh pair; last_login moves forward and /me shows it."""
    alice = await register(client, "alice")
    status, body = await me(client, alice.headers)
    registered_login = parse_time(assert_success(status, body)["last_login"])

    data = await login(client, "alice")
    assert set(data) == AUTH_FIELDS and set(data["user"]) == USER_FIELDS
    assert data["user"]["user_id"] == alice.user_id
    assert data["refreshToken"] != alice.refresh_token
    assert access_claims(services, data["token"])["sub"] == str(alice.user_id)
    new_login = parse_time(data["user"]["last_login"])
    assert new_login > registered_login

    status, body = await me(client, bearer(data["token"]))
    assert parse_time(assert_success(status, body)["last_login"]) == new_login

    # Both sessions live side by side: the registration's refresh token still works.
    status, body = await refresh(client, alice.refresh_token)
    assert_success(status, body)


async def test_wrong_password_and_unknown_user_look_the_same(client):
    """A wrong password and an unknown user are both 401 with the same message and error."""
    await register(client, "alice")
    wrong = await call(client, "POST", "/auth/login", {"username": "alice", "password": "not the password"})
    unknown = await call(client, "POST", "/auth/login", {"username": "nobody", "password": PASSWORD})
    for status, body in (wrong, unknown):
        assert_failure(status, body, 401)
    assert wrong[1]["message"] == unknown[1]["message"]
    assert wrong[1].get("error") == unknown[1].get("error")


async def test_failed_login_does_not_touch_last_login(client):
    """A wrong password leaves last_login as it was."""
    alice = await register(client, "alice")
    _, before = await me(client, alice.headers)
    status, body = await call(client, "POST", "/auth/login", {"username": "alice", "password": "nope-nope-nope"})
    assert_failure(status, body, 401)
    _, after = await me(client, alice.headers)
    assert after["data"]["last_login"] == before["data"]["last_login"]


async def test_login_401_carries_www_authenticate(client):
    """A 401 tells the client which scheme to use."""
    resp = await client.post(f"{API}/auth/login", json={"username": "nobody", "password": PASSWORD})
    assert resp.status == 401
    assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer")


@pytest.mark.parametrize("payload,field", [
    pytest.param({}, "username", id="empty-object"),
    pytest.param({"username": "alice"}, "password", id="no-password"),
    pytest.param({"password": PASSWORD}, "username", id="no-username"),
    pytest.param({"username": "alice", "password": PASSWORD, "remember": True}, "remember", id="extra-field"),
    pytest.param({"username": "alice", "password": 12345678}, "password", id="password-int"),
    pytest.param({"username": 1, "password": PASSWORD}, "username", id="username-int"),
    pytest.param({"username": None, "password": PASSWORD}, "username", id="username-null"),
    pytest.param({"username": "alice", "password": ""}, "password", id="password-empty"),
    pytest.param({"username": "", "password": PASSWORD}, "username", id="username-empty"),
])
async def test_login_rejects_bad_fields(client, payload, field):
    """Malformed login bodies are 400 naming the field, never a 401 or a 500."""
    await register(client, "alice")
    status, body = await call(client, "POST", "/auth/login", payload)
    assert_failure(status, body, 400, field)


@pytest.mark.parametrize("raw", [
    pytest.param(b'{"username": "alice", "password"', id="truncated-json"),
    pytest.param(b'[{"username": "alice", "password": "correct horse battery"}]', id="json-array"),
    pytest.param(b"", id="empty-body"),
    pytest.param(b"null", id="json-null"),
])
async def test_login_rejects_bodies_that_are_not_a_json_object(client, raw):
    """Login with malformed JSON, an array, or nothing at all is a 400 about the body."""
    await register(client, "alice")
    status, body = await call(client, "POST", "/auth/login", raw=raw)
    assert_failure(status, body, 400, "body")


# -- refresh -----------------------------------------------------------------------------------


async def test_refresh_rotates_the_pair(client, services):
    """Refresh answers a new pair; the new access token works; the old refresh token is spent."""
    alice = await register(client, "alice")
    status, body = await refresh(client, alice.refresh_token)
    data = assert_success(status, body)
    assert set(data) == AUTH_FIELDS and set(data["user"]) == USER_FIELDS
    assert data["user"]["user_id"] == alice.user_id
    assert data["refreshToken"] != alice.refresh_token
    assert data["token"] != alice.token
    assert access_claims(services, data["token"])["sub"] == str(alice.user_id)
    assert parse_time(data["expiresAt"]) > datetime.now(timezone.utc)

    status, body = await me(client, bearer(data["token"]))
    assert assert_success(status, body)["username"] == "alice"

    # Rotation: the spent token is refused.
    status, body = await refresh(client, alice.refresh_token)
    assert_failure(status, body, 401)


async def test_refresh_chain_keeps_working(client):
    """Each refresh token in a chain of rotations works exactly once."""
    alice = await register(client, "alice")
    token = alice.refresh_token
    seen = {token}
    for _ in range(4):
        status, body = await refresh(client, token)
        token = assert_success(status, body)["refreshToken"]
        assert token not in seen
        seen.add(token)


async def test_reusing_a_rotated_token_revokes_every_session(client):
    """A spent refresh token presented again means it leaked: every refresh token of the user dies."""
    alice = await register(client, "alice")
    other_session = (await login(client, "alice"))["refreshToken"]
    bob = await register(client, "bob")

    status, body = await refresh(client, alice.refresh_token)
    newest = assert_success(status, body)["refreshToken"]

    status, body = await refresh(client, alice.refresh_token)  # replay of the spent token
    assert_failure(status, body, 401)

    status, body = await refresh(client, newest)
    assert_failure(status, body, 401)
    status, body = await refresh(client, other_session)
    assert_failure(status, body, 401)

    # Another user's session is untouched, and alice can log in again.
    status, body = await refresh(client, bob.refresh_token)
    assert_success(status, body)
    fresh = await login(client, "alice")
    status, body = await refresh(client, fresh["refreshToken"])
    assert_success(status, body)


async def test_double_submitted_refresh_is_one_200_and_one_401(client):
    """The same refresh token sent twice at once: one new pair, one 401, never a 500."""
    alice = await register(client, "alice")
    results = await asyncio.gather(refresh(client, alice.refresh_token), refresh(client, alice.refresh_token))
    assert sorted(status for status, _ in results) == [200, 401], results


@pytest.mark.parametrize("token", [
    pytest.param("garbage", id="garbage"),
    pytest.param("1.2", id="two-parts"),
    pytest.param("1.a.b.c", id="four-parts"),
    pytest.param("..", id="empty-parts"),
    pytest.param("1..secret", id="empty-token-id"),
    pytest.param("-1.a.b", id="negative-user"),
    pytest.param("x.a.b", id="non-numeric-user"),
    pytest.param("0.a.b", id="user-zero"),
    pytest.param("\u00b2.a.b", id="superscript-digit-user"),
    pytest.param("\u0661.a.b", id="arabic-digit-user"),
    pytest.param("9" * 400 + ".a.b", id="huge-user-id"),
    pytest.param("1.a.b ", id="trailing-space"),
])
async def test_refresh_rejects_garbage_tokens(client, token):
    """Any string that is not a live refresh token is a 401, never a 400 or a 500."""
    alice = await register(client, "alice")
    status, body = await refresh(client, token)
    assert_failure(status, body, 401)
    # The real token is unaffected.
    status, body = await refresh(client, alice.refresh_token)
    assert_success(status, body)


async def test_refresh_rejects_forged_tokens(client):
    """A wrong secret, another user's id, an unknown user or an access token is a 401."""
    alice = await register(client, "alice")
    await register(client, "bob")
    user_id, token_id, secret = alice.refresh_token.split(".")
    assert user_id == "1"

    forged = [
        f"1.{token_id}.{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}",  # wrong secret
        f"1.{token_id}.",  # no secret
        f"2.{token_id}.{secret}",  # someone else's id
        f"999.{token_id}.{secret}",  # a user that does not exist
        f"1.{'0' * 32}.{secret}",  # an unknown token id
        alice.token,  # the access token in place of the refresh token
    ]
    for token in forged:
        status, body = await refresh(client, token)
        assert_failure(status, body, 401)

    # None of those counted as a replay: the genuine token still works.
    status, body = await refresh(client, alice.refresh_token)
    assert_success(status, body)


@pytest.mark.parametrize("path", ["/auth/refresh", "/auth/logout"])
@pytest.mark.parametrize("payload,field", [
    pytest.param({}, "refreshToken", id="missing"),
    pytest.param({"refresh_token": "1.a.b"}, "refresh_token", id="snake-case-name"),
    pytest.param({"refreshToken": 12345}, "refreshToken", id="int"),
    pytest.param({"refreshToken": None}, "refreshToken", id="null"),
    pytest.param({"refreshToken": ""}, "refreshToken", id="empty"),
    pytest.param({"refreshToken": "1." + "a" * 600 + ".b"}, "refreshToken", id="too-long"),
    pytest.param({"refreshToken": "1.a.b", "extra": 1}, "extra", id="extra-field"),
])
async def test_refresh_and_logout_reject_bad_fields(client, path, payload, field):
    """A refresh/logout body of the wrong shape is a 400 naming the field."""
    status, body = await call(client, "POST", path, payload)
    assert_failure(status, body, 400, field)


@pytest.mark.parametrize("path", ["/auth/refresh", "/auth/logout"])
@pytest.mark.parametrize("raw", [
    pytest.param(b"", id="empty-body"),
    pytest.param(b'["1.a.b"]', id="json-array"),
    pytest.param(b'"1.a.b"', id="bare-string"),
    pytest.param(b'{"refreshToken": ', id="truncated-json"),
])
async def test_refresh_and_logout_reject_bodies_that_are_not_a_json_object(client, path, raw):
    """A refresh/logout body that is not a JSON object is a 400 about the body."""
    status, body = await call(client, "POST", path, raw=raw)
    assert_failure(status, body, 400, "body")


# -- logout ------------------------------------------------------------------------------------


async def test_logout_revokes_that_refresh_token_only(client):
    """Logout kills its own refresh token; the user's other session keeps working."""
    alice = await register(client, "alice")
    other = await login(client, "alice")

    status, body = await call(client, "POST", "/auth/logout", {"refreshToken": alice.refresh_token})
    assert_success(status, body)
    assert body["message"]

    status, body = await refresh(client, other["refreshToken"])
    assert_success(status, body)

    status, body = await refresh(client, alice.refresh_token)
    assert_failure(status, body, 401)


async def test_logout_twice_is_401(client):
    """A refresh token can be logged out once; the second logout is a 401."""
    alice = await register(client, "alice")
    status, body = await call(client, "POST", "/auth/logout", {"refreshToken": alice.refresh_token})
    assert_success(status, body)
    status, body = await call(client, "POST", "/auth/logout", {"refreshToken": alice.refresh_token})
    assert_failure(status, body, 401)


async def test_logout_with_a_rotated_or_bogus_token_is_401(client):
    """Logout with a spent, unknown or malformed token is a 401 and revokes nothing."""
    alice = await register(client, "alice")
    status, body = await refresh(client, alice.refresh_token)
    live = assert_success(status, body)["refreshToken"]
    user_id, token_id, secret = live.split(".")

    for token in (alice.refresh_token, "garbage", f"1.{token_id}.wrong", f"42.{token_id}.{secret}"):
        status, body = await call(client, "POST", "/auth/logout", {"refreshToken": token})
        assert_failure(status, body, 401)

    status, body = await refresh(client, live)
    assert_success(status, body)


# -- me ----------------------------------------------------------------------------------------


async def test_me_with_a_valid_token(client):
    """/auth/me returns the caller, with or without the scheme in capitals."""
    alice = await register(client, "alice")
    await register(client, "bob")
    status, body = await me(client, alice.headers)
    user = assert_success(status, body)
    assert set(user) == USER_FIELDS | {"is_admin", "quota_bytes", "usage_bytes"}
    assert (user["user_id"], user["username"], user["email"]) == (1, "alice", "alice@example.org")

    status, body = await me(client, {"Authorization": f"bearer {alice.token}"})
    assert assert_success(status, body)["user_id"] == 1


async def test_me_accepts_a_hand_crafted_valid_token(client, services):
    """Control for the forged-token cases below: a token crafted the same way with a live `exp` works."""
    await register(client, "alice")
    token = craft_access_token(services.settings.jwt_secret, "1")
    status, body = await me(client, bearer(token))
    assert assert_success(status, body)["username"] == "alice"


def _tamper_payload(token: str, **changes: Any) -> str:
    """Change claims in the payload but keep the original signature."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    new_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{new_payload}.{signature}"


async def test_me_rejects_missing_and_bad_tokens(client, services):
    """No header, a wrong scheme, garbage, a foreign signature, a tampered payload, alg=none,
    an expired token, a non-access token or a refresh token are all 401 with the envelope."""
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    secret = services.settings.jwt_secret

    cases = {
        "no header": {},
        "empty header": {"Authorization": ""},
        "basic scheme": {"Authorization": "Basic YWxpY2U6cGFzc3dvcmQ="},
        "token scheme": {"Authorization": f"Token {alice.token}"},
        "bare token": {"Authorization": alice.token},
        "bearer without token": {"Authorization": "Bearer"},
        "bearer and spaces": {"Authorization": "Bearer    "},
        "garbage": bearer("garbage"),
        "three garbage parts": bearer("abc.def.ghi"),
        "other secret": bearer(craft_access_token("another-secret-" + "x" * 32, "1")),
        "tampered sub": bearer(_tamper_payload(bob.token, sub="1", adm=True)),
        "truncated signature": bearer(alice.token[:-4]),
        "alg none": bearer(jwt.encode({"sub": "1", "adm": True, "typ": "access",
                                       "exp": int(datetime.now(timezone.utc).timestamp()) + 600},
                                      None, algorithm="none")),
        "expired": bearer(craft_access_token(secret, "1", exp_in=-60)),
        "refresh typ": bearer(craft_access_token(secret, "1", typ="refresh")),
        "no typ": bearer(craft_access_token(secret, "1", typ=None)),
        "non-numeric sub": bearer(craft_access_token(secret, "alice")),
        "refresh token as bearer": bearer(alice.refresh_token),
    }
    for name, headers in cases.items():
        resp = await client.get(f"{API}/auth/me", headers=headers)
        body = await resp.json()
        assert resp.status == 401, (name, resp.status, body)
        assert body["code"] == 401 and "data" not in body, (name, body)
        assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer"), name

    # The tampered token did not let bob become alice (nor an admin).
    status, body = await call(client, "GET", "/admin/events",
                              headers=bearer(_tamper_payload(bob.token, sub="1", adm=True)))
    assert_failure(status, body, 401)


async def test_me_with_an_expired_token_says_expired(client, services):
    """An expired token is a 401 whose message tells the client to refresh."""
    await register(client, "alice")
    token = craft_access_token(services.settings.jwt_secret, "1", exp_in=-5)
    status, body = await me(client, bearer(token))
    assert_failure(status, body, 401)
    assert "expired" in body["message"]


async def test_me_with_a_token_for_a_user_that_does_not_exist_is_401(client, services):
    """A correctly signed token naming no known user is a bad token: 401, not 404 or 500."""
    await register(client, "alice")
    token = craft_access_token(services.settings.jwt_secret, "999")
    status, body = await me(client, bearer(token))
    assert_failure(status, body, 401)


# -- limits and routing ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/auth/register", "/auth/login", "/auth/refresh"])
async def test_oversized_json_body_is_413(client, services, path):
    """A JSON body past max_json_body_bytes is a 413 in the envelope, and nothing is created."""
    limit = services.settings.max_json_body_bytes
    assert limit == 1024 * 1024
    payload = {"username": "alice", "email": "alice@example.org", "password": "p" * (limit + 1)}
    raw = json.dumps(payload).encode()
    assert len(raw) > limit
    status, body = await call(client, "POST", path, raw=raw)
    assert_failure(status, body, 413)

    alice = await register(client, "alice")
    assert alice.user_id == 1


async def test_body_just_under_the_limit_is_judged_on_its_content(client, services):
    """A body under the size limit is parsed: an over-long password is a 400, not a 413."""
    limit = services.settings.max_json_body_bytes
    payload = {"username": "alice", "email": "alice@example.org", "password": "p" * (limit - 200)}
    status, body = await call(client, "POST", "/auth/register", payload)
    assert_failure(status, body, 400, "password")


@pytest.mark.parametrize("method,path", [
    ("GET", "/no-such-thing"),
    ("POST", "/auth/signup"),
    ("GET", "/auth/me/extra"),
    ("GET", "/auth"),
])
async def test_unknown_route_is_404_envelope(client, method, path):
    """An unknown path under /api/v1 is a 404 in the envelope."""
    status, body = await call(client, method, path)
    assert_failure(status, body, 404)


@pytest.mark.parametrize("method,path", [
    ("GET", "/auth/login"),
    ("GET", "/auth/register"),
    ("POST", "/auth/me"),
    ("DELETE", "/auth/logout"),
])
async def test_wrong_method_is_405_envelope(client, method, path):
    """A known path with the wrong method is a 405 in the envelope."""
    status, body = await call(client, method, path)
    assert_failure(status, body, 405)
