"""One-time ids from Python: the first claim wins, in another process too."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

import irontoken
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
