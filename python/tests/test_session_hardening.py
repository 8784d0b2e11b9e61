"""Session hijacking defences from Python: rotation refuses the old id at
once, a fingerprint-bound session refuses another client, a per-owner limit
(refuse or evict, exact across four processes), sign-out everywhere."""

import subprocess
import sys
from pathlib import Path

import pytest

import irontoken
from irontoken import TokenManager


def test_rotation_and_fingerprints() -> None:
    tm = TokenManager(":memory:")
    s = tm.create_session("alice", ttl_seconds=3600, fingerprint="ua=firefox|key=k1", metadata={"role": "guest"})
    assert s["fingerprint_bound"] is True
    assert tm.verify_session(s["id"], fingerprint="ua=firefox|key=k1")["id"] == s["id"]
    with pytest.raises(irontoken.SessionFingerprintMismatchError) as e:
        tm.verify_session(s["id"], fingerprint="ua=curl|key=k1")
    assert e.value.code == "SESSION_FINGERPRINT_MISMATCH"
    with pytest.raises(irontoken.SessionFingerprintMismatchError):
        tm.verify_session(s["id"])
    new = tm.rotate_session(s["id"], fingerprint="ua=firefox|key=k1")
    assert new["id"] != s["id"] and new["metadata"] == {"role": "guest"} and new["expires_at"] == s["expires_at"]
    with pytest.raises(irontoken.SessionEndedError):
        tm.verify_session(s["id"], fingerprint="ua=firefox|key=k1")
    assert tm.get_session(s["id"])["end_reason"] == "rotated"
    assert [a.action for a in tm.list_audit(action="session.rotate")] == ["session.rotate"]


def test_limits_and_sign_out_everywhere() -> None:
    tm = TokenManager(":memory:")
    first = tm.create_session("bob", max_concurrent=2)
    second = tm.create_session("bob", max_concurrent=2)
    with pytest.raises(irontoken.SessionLimitExceededError):
        tm.create_session("bob", max_concurrent=2)
    third = tm.create_session("bob", max_concurrent=2, evict_oldest=True)
    assert tm.get_session(first["id"])["end_reason"] == "evicted"
    assert tm.end_sessions("bob", reason="password changed", except_session_id=third["id"]) == 1
    assert tm.get_session(second["id"])["end_reason"] == "password changed"
    assert tm.get_session(third["id"])["status"] == "active"
    with pytest.raises(irontoken.InvalidArgumentError):
        tm.create_session("bob", evict_oldest=True)


def test_four_processes_on_one_limit(tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    TokenManager(db).close()
    child = (
        "import irontoken, sys\n"
        "tm = irontoken.TokenManager(sys.argv[1])\n"
        "ok = 0\n"
        "for _ in range(3):\n"
        "    try:\n"
        "        tm.create_session('carol', max_concurrent=5); ok += 1\n"
        "    except irontoken.SessionLimitExceededError:\n"
        "        pass\n"
        "print(ok)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", child, db], stdout=subprocess.PIPE, text=True) for _ in range(4)]
    assert sum(int(p.communicate()[0]) for p in procs) == 5
    assert len(TokenManager(db).list_sessions(owner="carol", status="active")) == 5
