"""Refresh-token families from Python: rotation, reuse detection that revokes
the family (in another process too), four processes racing one refresh,
lifetimes, revocation, the async manager, and PyJWT reading the access
tokens through the exported JWKS."""

import asyncio
import subprocess
import sys
from pathlib import Path

import jwt as pyjwt
import pytest

import irontoken
from irontoken import TokenManager
from irontoken.aio import AsyncTokenManager

MASTER = "07" * 32
NOW = 1_700_000_000

# A child process: refreshes argv[2] on the store argv[1] and prints "OK"
# or the error code.
CHILD = """
import sys, irontoken
tm = irontoken.TokenManager(sys.argv[1], master_key=sys.argv[3])
try:
    tm.refresh_token_pair(sys.argv[2])
    print("OK")
except irontoken.IronTokenError as e:
    print(e.code)
"""


def child(db: str, token: str) -> "subprocess.Popen[str]":
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, db, token, MASTER], stdout=subprocess.PIPE, text=True
    )


def test_pair_rotation_and_reuse_revokes_the_family(tmp_path: Path) -> None:
    db = str(tmp_path / "r.db")
    tm = TokenManager(db, master_key=MASTER)
    tm.create_signing_key("ES256")
    first = tm.issue_token_pair(
        "alice", scopes=["read", "write"], ttl_seconds=600, claims={"aud": "api"}
    )
    assert first["token_type"] == "Bearer" and first["expires_in"] == 600
    assert first["refresh_token"].startswith("itkrt_")
    # The access token is a JWT any verifier reads through the JWKS (PyJWT here).
    public = pyjwt.PyJWK(tm.jwks()["keys"][0])
    claims = pyjwt.decode(first["access_token"], public.key, algorithms=["ES256"], audience="api")
    assert (claims["sub"], claims["scope"], claims["fid"]) == ("alice", "read write", first["family_id"])

    # Another process refreshes; this one presents the spent token again.
    p = child(db, first["refresh_token"])
    assert p.communicate()[0].strip() == "OK"
    tm.drain_events()
    with pytest.raises(irontoken.RefreshTokenReusedError) as e:
        tm.refresh_token_pair(first["refresh_token"])
    assert e.value.code == "REFRESH_TOKEN_REUSED"
    assert isinstance(e.value, irontoken.RefreshTokenError)
    assert first["refresh_token"] not in str(e.value)
    family = tm.get_token_family(first["family_id"])
    assert family["status"] == "revoked" and family["revoke_reason"] == "reuse_detected"
    assert family["generation"] == 1
    assert [ev["kind"] for ev in tm.drain_events()] == ["refresh_token_reused"]
    audit = tm.list_audit(action="token_family.revoke")
    assert [a.outcome for a in audit] == ["reuse_detected"]


def test_four_processes_racing_one_refresh(tmp_path: Path) -> None:
    db = str(tmp_path / "race.db")
    tm = TokenManager(db, master_key=MASTER)
    tm.create_signing_key("EdDSA")
    pair = tm.issue_token_pair("racer")
    procs = [child(db, pair["refresh_token"]) for _ in range(4)]
    got = sorted(p.communicate()[0].strip() for p in procs)
    assert got.count("OK") == 1, got
    assert "REFRESH_TOKEN_REUSED" in got
    assert set(got) <= {"OK", "REFRESH_TOKEN_REUSED", "REFRESH_TOKEN_REVOKED"}
    assert tm.get_token_family(pair["family_id"])["status"] == "revoked"


def test_lifetimes_and_revocation() -> None:
    tm = TokenManager(":memory:", master_key=MASTER, manual_clock_start=NOW)
    tm.create_signing_key("EdDSA")
    p = tm.issue_token_pair("bob", refresh_ttl_seconds=100, family_ttl_seconds=150, ttl_seconds=3600)
    assert p["expires_at"] == NOW + 150 and p["refresh_expires_at"] == NOW + 100
    tm.advance_clock(101)
    with pytest.raises(irontoken.RefreshTokenExpiredError):
        tm.refresh_token_pair(p["refresh_token"])
    assert tm.get_token_family(p["family_id"])["status"] == "expired"

    a = tm.issue_token_pair("carol")
    b = tm.issue_token_pair("carol")
    assert tm.revoke_token_family(a["family_id"], reason="logout") is True
    assert tm.revoke_token_family(a["family_id"]) is False
    with pytest.raises(irontoken.RefreshTokenRevokedError):
        tm.refresh_token_pair(a["refresh_token"])
    assert tm.revoke_token_families("carol") == 1
    with pytest.raises(irontoken.RefreshTokenRevokedError):
        tm.refresh_token_pair(b["refresh_token"])


def test_hostile_input() -> None:
    tm = TokenManager(":memory:", master_key=MASTER)
    tm.create_signing_key("EdDSA")
    for bad in ["", "garbage", "itkrt_" + "A" * 49, "itkrt_\x00", "x" * 100_000]:
        with pytest.raises(irontoken.RefreshTokenInvalidError):
            tm.refresh_token_pair(bad)
    with pytest.raises(TypeError):
        tm.refresh_token_pair(b"itkrt_abc")  # type: ignore[arg-type]
    for claim in ["sub", "exp", "fid", "jti"]:
        with pytest.raises(irontoken.InvalidArgumentError):
            tm.issue_token_pair("x", claims={claim: 1})
    with pytest.raises(TypeError):
        tm.issue_token_pair("x", scopes="read")  # type: ignore[arg-type]
    with pytest.raises(irontoken.InvalidArgumentError):
        tm.issue_token_pair("", ttl_seconds=60)
    with pytest.raises(irontoken.InvalidArgumentError):
        tm.issue_token_pair("x", ttl_seconds=0)
    with pytest.raises(irontoken.NotFoundError):
        tm.get_token_family("nope")
    # Nothing was stored by the refused calls.
    assert len(tm.list_audit(action="token_family.create")) == 0


def test_async_manager() -> None:
    async def main() -> None:
        tm = AsyncTokenManager(":memory:", master_key=MASTER)
        await tm.create_signing_key("EdDSA")
        p = await tm.issue_token_pair("dave", scopes=["read"])
        q = await tm.refresh_token_pair(p["refresh_token"])
        assert q["family_id"] == p["family_id"]
        with pytest.raises(irontoken.RefreshTokenReusedError):
            await tm.refresh_token_pair(p["refresh_token"])
        assert (await tm.get_token_family(p["family_id"]))["status"] == "revoked"

    asyncio.run(main())
