"""One-time ids from Python: the first claim wins, in another process too."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

import irontoken
from irontoken.jwt import InvalidTokenError, TokenReplayedError
from irontoken import TokenManager


def test_claim_jti_once_across_processes(tmp_path: Path) -> None:
    db = str(tmp_path / "jti.db")
    tm = TokenManager(db)
    exp = int(time.time()) + 600
    assert tm.claim_jti("jti-1", expires_at=exp) is True
    assert tm.claim_jti("jti-1", expires_at=exp) is False
    child = "import irontoken, sys; print(irontoken.TokenManager(sys.argv[1]).claim_jti(sys.argv[2], expires_at=int(sys.argv[3])))"
    run = lambda jti: subprocess.run(  # noqa: E731
        [sys.executable, "-c", child, db, jti, str(exp)], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert run("jti-1") == "False"
    assert run("jti-2") == "True"
    assert tm.claim_jti("jti-2", expires_at=exp) is False
    with pytest.raises(irontoken.InvalidArgumentError):
        tm.claim_jti("", expires_at=exp)
    with pytest.raises(irontoken.InvalidArgumentError):
        tm.claim_jti("x", expires_at=exp + 400 * 86400)


def test_verify_jwt_require_fresh_jti() -> None:
    tm = TokenManager(":memory:", master_key="07" * 32)
    tm.create_signing_key("EdDSA")
    token = tm.issue_jwt({"sub": "alice"}, ttl_seconds=600)
    assert tm.verify_jwt(token, algorithms=["EdDSA"], require_fresh_jti=True)["sub"] == "alice"
    with pytest.raises(TokenReplayedError) as e:
        tm.verify_jwt(token, algorithms=["EdDSA"], require_fresh_jti=True)
    assert e.value.code == "JWT_REPLAYED"
    assert isinstance(e.value, InvalidTokenError)
    # Without the option the same token still verifies.
    assert tm.verify_jwt(token, algorithms=["EdDSA"])["sub"] == "alice"
