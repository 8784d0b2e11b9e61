"""What a user does first with the installed wheel: create and verify a key,
decode a JWT, spend a quota. Run from a fresh venv outside the repository."""

import sys
import time

import irontoken
from irontoken import KeyNotFoundError, TokenManager, jwt

assert "site-packages" in irontoken.__file__, f"not the installed package: {irontoken.__file__}"
db = sys.argv[1] if len(sys.argv) > 1 else ":memory:"
with TokenManager(db) as tm:
    created = tm.create_key("alice", scopes=["read"], expires_in=3600)
    ok = tm.verify_key(created.key, ["read"])
    assert ok.valid and ok.record is not None and ok.record.owner == "alice", ok
    assert not tm.verify_key(created.key, ["write"]).valid
    tm.revoke_key(created.record.id, reason="smoke", actor="dist")
    assert tm.verify_key(created.key).reason == "REVOKED"
    try:
        tm.get_key("nope")
        raise AssertionError("get_key of an unknown id succeeded")
    except KeyNotFoundError as e:
        assert e.code == "KEY_NOT_FOUND"

    kid = tm.create_key("bob").record.id
    tm.set_quota(kid, metric="requests", period="day", limit=2)
    assert tm.consume_quota(kid, requests=1)["allowed"]
    assert tm.consume_quota(kid, requests=1)["allowed"]
    assert not tm.consume_quota(kid, requests=1)["allowed"]

secret = b"a-32-byte-secret-for-hs256-tests!"
token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, secret, "HS256")
claims = jwt.decode(token, secret, algorithms=["HS256"])
assert claims["sub"] == "alice", claims
try:
    jwt.decode(token, b"another-32-byte-secret-for-hs256", algorithms=["HS256"])
    raise AssertionError("a token with a wrong signature was accepted")
except jwt.InvalidSignatureError:
    pass
print(f"python smoke: irontoken {irontoken.__version__} from {irontoken.__file__}: ok")
