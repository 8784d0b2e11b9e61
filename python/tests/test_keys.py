"""The API-key lifecycle through the Python binding."""

import os
import pathlib
import subprocess
import sys
import threading

import pytest

import irontoken
from irontoken import (
    ConflictError,
    InvalidArgumentError,
    IronTokenError,
    KeyNotFoundError,
    KeyRevokedError,
    TokenManager,
)

from conftest import T0, key_vectors, store_target


@pytest.mark.parametrize("case", key_vectors(), ids=lambda c: c["name"])
def test_shared_vectors(tm, case):
    assert irontoken.is_well_formed(case["key"]) is case["well_formed"]
    v = tm.verify_key(case["key"])
    assert not v.valid and not v
    assert v.reason == ("NOT_FOUND" if case["well_formed"] else "MALFORMED")
    assert v.record is None


def test_lifecycle(tm):
    c = tm.create_key(
        "alice", name="ci", scopes=["read", "write"], metadata={"team": "core", "n": [1, 2]}, actor="py"
    )
    assert c.key.startswith("itk_") and len(c.key) >= 32
    rec = c.record
    assert (rec.owner, rec.name, rec.status, rec.version) == ("alice", "ci", "active", 1)
    assert rec.metadata == {"team": "core", "n": [1, 2]}
    assert rec.scopes == ["read", "write"]

    v = tm.verify_key(c.key)
    assert v.valid and v.reason == "VALID"
    assert v.record.id == rec.id and v.record.owner == "alice"

    assert tm.disable_key(rec.id, actor="ops").status == "disabled"
    assert tm.verify_key(c.key).reason == "DISABLED"
    assert tm.enable_key(rec.id).status == "active"
    assert tm.verify_key(c.key).valid
    r = tm.revoke_key(rec.id, reason="leaked", actor="ops")
    assert r.status == "revoked" and r.revoked_reason == "leaked"
    v = tm.verify_key(c.key)
    assert v.reason == "REVOKED" and v.record.id == rec.id

    with pytest.raises(KeyRevokedError) as e:
        tm.enable_key(rec.id)
    assert e.value.code == "KEY_REVOKED"
    with pytest.raises(KeyRevokedError):
        tm.rotate_key(rec.id)

    actions = [f"{e.action}:{e.outcome}" for e in reversed(tm.list_audit(key_id=rec.id).items)]
    assert actions == [
        "key.create:ok",
        "key.disable:ok",
        "key.verify:DISABLED",
        "key.enable:ok",
        "key.revoke:ok",
        "key.verify:REVOKED",
    ]
    first = tm.list_audit(key_id=rec.id, action="key.create").items[0]
    assert first.actor == "py" and first.detail["owner"] == "alice"


def test_usage_counts(tm):
    c = tm.create_key("u")
    for _ in range(5):
        assert tm.verify_key(c.key)
    r = tm.get_key(c.record.id)
    assert r.usage_count == 5 and r.last_used_at == T0
    tm.flush()
    assert tm.get_key(c.record.id).usage_count == 5


def test_answered_records_show_the_last_use(tm):
    # A refused verification shows the last use as it was; a valid one counts itself.
    c = tm.create_key("u", scopes=["read"])
    assert tm.verify_key(c.key).record.last_used_at == T0
    tm.advance_clock(100)
    refused = tm.verify_key(c.key, ["admin"])
    assert refused.reason == "INSUFFICIENT_SCOPE"
    assert (refused.record.usage_count, refused.record.last_used_at) == (1, T0)
    tm.advance_clock(100)
    r = tm.verify_key(c.key, ["read"]).record
    assert (r.usage_count, r.last_used_at) == (2, T0 + 200)


def test_expiry_with_injected_clock(tm):
    c = tm.create_key("bob", expires_in=60)
    assert c.record.expires_at == T0 + 60
    tm.advance_clock(59)
    assert tm.verify_key(c.key).valid
    assert tm.advance_clock(1) == T0 + 60
    assert tm.verify_key(c.key).reason == "EXPIRED"
    assert tm.get_key(c.record.id).status == "expired"
    assert tm.update_key(c.record.id, expires_at=T0 + 3600).status == "active"
    assert tm.update_key(c.record.id, clear_expiry=True).expires_at is None
    with pytest.raises(InvalidArgumentError):
        tm.create_key("bob", expires_at=T0)


def test_rotation_overlap(tm):
    old = tm.create_key("carol", scopes=["a"], metadata={"x": 1}, prefix="sp_live")
    new = tm.rotate_key(old.record.id, overlap_seconds=300, actor="ops")
    assert new.key != old.key and new.key.startswith("sp_live_")
    assert new.record.version == 2 and new.record.rotated_from == old.record.id
    assert new.record.scopes == ["a"] and new.record.metadata == {"x": 1}
    assert tm.get_key(old.record.id).rotated_to == new.record.id
    tm.advance_clock(299)
    assert tm.verify_key(old.key).valid and tm.verify_key(new.key).valid
    tm.advance_clock(1)
    assert tm.verify_key(old.key).reason == "EXPIRED"
    assert tm.verify_key(new.key).valid
    third = tm.rotate_key(new.record.id)  # overlap 0: revoked at once
    assert tm.verify_key(new.key).reason == "REVOKED"
    assert third.record.version == 3


def test_rotating_twice_is_a_conflict(tm):
    old = tm.create_key("dan")
    tm.rotate_key(old.record.id, overlap_seconds=60)
    with pytest.raises(ConflictError) as e:
        tm.rotate_key(old.record.id, overlap_seconds=60)
    assert e.value.code == "CONFLICT"


def test_scopes(tm):
    c = tm.create_key("s", scopes=["read", "write"])
    assert tm.verify_key(c.key, ["read"]).valid
    assert tm.verify_key(c.key, ("read", "write")).valid
    v = tm.verify_key(c.key, ["read", "admin"])
    assert not v.valid and v.reason == "INSUFFICIENT_SCOPE"
    assert tm.update_key(c.record.id, scopes=["admin", "admin"]).scopes == ["admin"]
    assert tm.verify_key(c.key, ["admin"]).valid
    with pytest.raises(InvalidArgumentError):
        tm.update_key(c.record.id, scopes=["has space"])


def test_errors_have_codes_and_classes(tm):
    with pytest.raises(InvalidArgumentError) as e:
        tm.create_key("")
    assert isinstance(e.value, ValueError) and isinstance(e.value, IronTokenError)
    assert e.value.code == "INVALID_ARGUMENT"
    with pytest.raises(InvalidArgumentError):
        tm.create_key("a", prefix="Bad")
    with pytest.raises(InvalidArgumentError):
        tm.create_key("a", metadata=["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        tm.create_key("a", metadata={"x": object()})
    with pytest.raises(InvalidArgumentError):
        tm.list_keys(status="bogus")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        tm.list_keys(limit=0)
    with pytest.raises(KeyNotFoundError) as nf:
        tm.get_key("missing")
    assert isinstance(nf.value, LookupError) and nf.value.code == "KEY_NOT_FOUND"
    with pytest.raises(InvalidArgumentError):
        TokenManager(":memory:").advance_clock(1)
    with pytest.raises(InvalidArgumentError):
        TokenManager("")
    with pytest.raises(irontoken.StorageError):
        TokenManager("/nonexistent-dir/x/y.db")
    # Nothing half-written.
    assert len(tm.list_keys()) == 0


def test_pagination(tm):
    ids = [tm.create_key("even" if i % 2 == 0 else "odd").record.id for i in range(25)]
    seen, cursor = [], None
    while True:
        page = tm.list_keys(limit=4, cursor=cursor)
        seen += [r.id for r in page]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == ids
    assert len(tm.list_keys(owner="even", status="active", limit=1000)) == 13


def test_repr_and_errors_hide_the_key(tm):
    c = tm.create_key("secret-owner")
    body = c.key[4:]
    for text in (repr(c), str(c), repr(c.record), repr(tm.verify_key(c.key))):
        assert body not in text and body[8:] not in text
    assert c.record.display_prefix in repr(c)
    near = c.key[:-1] + ("x" if c.key[-1] != "x" else "y")
    assert tm.verify_key(near).reason == "MALFORMED"
    for e in tm.list_audit().items:
        assert body[8:] not in repr(e) and (e.display_prefix or "") in c.key


def test_keys_as_header_bytes(tm):
    """A key read from a header as bytes verifies like the text; bytes that are
    not UTF-8 (or a str with lone surrogates) are a MALFORMED refusal, never an
    exception; other types are a TypeError that does not quote the value."""
    c = tm.create_key("bytes-owner", scopes=["read"])
    # The try_* calls answer None on PostgreSQL until the key is in the
    # notified caches (test_postgres covers when); on SQLite always.
    on_sqlite = os.environ.get("IRONTOKEN_TEST_STORE") != "postgres"
    for raw in (c.key.encode(), bytearray(c.key.encode())):
        v = tm.verify_key(raw, ["read"])
        assert v.valid and v.record.id == c.record.id
        assert tm.verify_key_with(raw, required_scopes=["read"]).valid
        for now in (tm.try_verify_key(raw), tm.try_verify_key_with(raw)):
            if on_sqlite or now is not None:
                assert now is not None and now.valid
        assert irontoken.is_well_formed(raw)
    bad = c.key.encode()[:-1] + b"\xff"
    for junk in (bad, b"\xff\xfe\xfd", b"itk_\xc3\x28" + b"a" * 30, b"", c.key[:-1] + "\udcff"):
        assert tm.verify_key(junk).reason == "MALFORMED"
        assert tm.verify_key_with(junk).reason == "MALFORMED"
        assert not irontoken.is_well_formed(junk)
    for wrong in (12345, None, ["x"], memoryview(c.key.encode())):
        with pytest.raises(TypeError) as e:
            tm.verify_key(wrong)  # type: ignore[arg-type]
        assert c.key[4:] not in str(e.value)
    # A refused byte string is counted like any malformed key.
    line = 'irontoken_key_verifications_total{reason="MALFORMED"} '
    counted = [int(x[len(line):]) for x in tm.metrics().splitlines() if x.startswith(line)]
    assert counted and counted[0] >= 5


def test_database_file_holds_no_plaintext(tmp_path):
    db = tmp_path / "keys.db"
    keys = []
    with TokenManager(str(db)) as m:
        for i in range(10):
            c = m.create_key(f"o{i}", metadata={"i": i})
            keys.append(c.key)
            keys.append(m.rotate_key(c.record.id).key)
            m.verify_key(c.key)
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    for k in keys:
        assert k[4:].encode() not in blob
        assert k[12:34].encode() not in blob


def test_threads_share_one_manager(tmp_path):
    with TokenManager(str(tmp_path / "t.db"), durability="normal") as m:
        c = m.create_key("shared")
        errors = []

        def work():
            try:
                for _ in range(100):
                    assert m.verify_key(c.key).valid
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert m.get_key(c.record.id).usage_count == 400


CHILD = """
import sys
from irontoken import TokenManager
m = TokenManager(sys.argv[1])
action, arg = sys.argv[2], sys.argv[3]
if action == "verify":
    print(m.verify_key(arg).reason)
elif action == "revoke":
    m.revoke_key(arg, actor="child")
    print("revoked")
"""


def test_two_processes_see_each_other(tmp_path):
    db = str(tmp_path / "shared.db")

    def child(action: str, arg: str) -> str:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, db, action, arg], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()

    with TokenManager(db) as m:
        a = m.create_key("p")
        b = m.create_key("p")
        assert child("verify", a.key) == "VALID"
        # Verified here first: its state is in this process's cache, which
        # the child's revocation (a new state epoch) invalidates by the next call.
        assert m.verify_key(a.key).reason == "VALID"
        assert child("revoke", a.record.id) == "revoked"
        assert m.verify_key(a.key).reason == "REVOKED"
        assert child("verify", b.key) == "VALID"
        m.revoke_key(b.record.id)
        assert child("verify", b.key) == "REVOKED"
        # The child's successful verification was flushed when it exited.
        assert m.get_key(b.record.id).usage_count == 1


def test_close(tmp_path):
    m = TokenManager(str(tmp_path / "c.db"))
    c = m.create_key("x")
    m.verify_key(c.key)
    m.close()
    m.close()
    with pytest.raises(InvalidArgumentError):
        m.verify_key(c.key)
    with TokenManager(str(tmp_path / "c.db")) as again:
        assert again.get_key(c.record.id).usage_count == 1


def test_typing_files_are_shipped():
    pkg = pathlib.Path(irontoken.__file__).parent
    assert (pkg / "py.typed").exists() and (pkg / "_native.pyi").exists()


WORKER = """
import sys
from irontoken import TokenManager
db, key, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with TokenManager(db, flush_interval_ms=5) as m:
    ok = 0
    for i in range(n):
        ok += m.verify_key(key).valid
        if i % 25 == 0:
            c = m.create_key("writer", actor="worker")
            m.disable_key(c.record.id)
            m.revoke_key(c.record.id)
    print(ok)
"""


def test_concurrent_writers_lose_no_increment(tmp_path):
    """Four processes verify one key and write at the same time: every use counts."""
    db = str(tmp_path / "busy.db")
    with TokenManager(db) as m:
        c = m.create_key("shared")
    n = 300
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, db, c.key, str(n)], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert [int(o) for o in outs] == [n] * 4
    with TokenManager(db) as m:
        assert m.get_key(c.record.id).usage_count == 4 * n
        writers = m.list_keys(owner="writer", limit=1000)
        assert len(writers) == 4 * (n // 25)
        assert all(r.status == "revoked" for r in writers)
        revokes = m.list_audit(action="key.revoke", actor=None, limit=1000)
        assert len(revokes) == 4 * (n // 25)


def test_every_error_code_has_an_exception_class():
    import json

    from irontoken import errors

    doc = json.loads((pathlib.Path(__file__).resolve().parents[2] / "tests/vectors/error_codes.json").read_text())
    for entry in doc["codes"]:
        exc = errors._from_native(entry["code"], "m")
        assert exc.code == entry["code"]
        assert type(exc) is not errors.IronTokenError, entry["code"]


def test_rate_limiter_shared_vectors():
    import json

    from irontoken import RateLimiter

    doc = json.loads((pathlib.Path(__file__).resolve().parents[2] / "tests/vectors/ratelimit.json").read_text())
    for case in doc["cases"]:
        rl = RateLimiter()
        for step in case["steps"]:
            d = rl.check("key", case["limits"], now_ms=step["now_ms"])
            assert d == {k: step[k] for k in ("allowed", "retry_after_ms", "limits")}, case["name"]
    rl = RateLimiter()
    limit = [{"name": "s", "count": 1, "period_ms": 1000, "burst": 1}]
    assert rl.peek("k", limit, now_ms=0)["allowed"] and rl.peek("k", limit, now_ms=0)["allowed"]
    assert rl.check("k", limit, now_ms=0)["allowed"] and not rl.check("k", limit, now_ms=0)["allowed"]
    assert len(rl) == 1
    with pytest.raises(InvalidArgumentError):
        rl.check("k", [{"name": "s", "count": 0, "period_ms": 1, "burst": 1}])


def test_metrics(tm):
    c = tm.create_key("m")
    tm.verify_key(c.key)
    tm.verify_key("itk_bad")
    text = tm.metrics()
    assert 'irontoken_key_verifications_total{reason="VALID"} 1' in text.splitlines()
    assert 'irontoken_key_verifications_total{reason="MALFORMED"} 1' in text.splitlines()
    assert "# TYPE irontoken_pending_entries gauge" in text


def test_create_keys_in_one_transaction(tm):
    created = tm.create_keys(
        [{"owner": f"o{i}", "scopes": ["read"], "metadata": {"i": i}} for i in range(300)]
    )
    assert len(created) == 300
    assert [c.record.owner for c in created[:3]] == ["o0", "o1", "o2"]
    v = tm.verify_key(created[123].key, ["read"])
    assert v.valid and v.record.metadata == {"i": 123}
    # One bad request: nothing is created, and the error names its index.
    with pytest.raises(InvalidArgumentError, match="key 2:"):
        tm.create_keys([{"owner": "a"}, {"owner": "b"}, {"owner": ""}])
    with pytest.raises(InvalidArgumentError):
        tm.create_keys([{"owner": "a", "no_such_field": 1}])
    assert len(tm.list_keys(limit=1000).items) == 300
    assert tm.create_keys([]) == []


def test_cache_and_memory_options(tmp_path):
    db = str(tmp_path / "o.db")
    with TokenManager(db, key_cache_size=1, page_cache_mib=1, mmap_mib=0) as m:
        a, b = m.create_keys([{"owner": "a"}, {"owner": "b"}])
        for _ in range(3):  # one cached record: every verification evicts the other
            assert m.verify_key(a.key) and m.verify_key(b.key)
        assert m.verify_key(a.key).record.usage_count == 4
    for bad in ({"key_cache_size": 0}, {"page_cache_mib": 0}, {"mmap_mib": 70000}, {"mmap_mib": -1}):
        with pytest.raises(InvalidArgumentError):
            TokenManager(db, **bad)  # type: ignore[arg-type]


def test_flush_threshold_asks_for_an_early_flush(tmp_path):
    """With a flush interval of an hour, only the threshold gets uses written
    before close: a second manager on the file sees them."""
    import time

    db = str(tmp_path / "f.db")

    def uses(ids: "list[str]") -> int:
        other = TokenManager(db)
        try:
            return sum(other.get_key(i).usage_count for i in ids)
        finally:
            other.close()

    for threshold in (1, None):
        opts = {} if threshold is None else {"flush_threshold": threshold}
        with TokenManager(db, flush_interval_ms=3_600_000, **opts) as tm:  # type: ignore[arg-type]
            keys = tm.create_keys([{"owner": "o"}] * 16)
            for c in keys:
                assert tm.verify_key(c.key)
            ids = [c.record.id for c in keys]
            if threshold is None:
                # The default (4096 entries; a counter weighs 1/8) asks for nothing yet.
                time.sleep(0.3)
                assert uses(ids) == 0
            else:
                # Eight counters make one entry: at least the first eight get written.
                deadline = time.monotonic() + 10
                while uses(ids) < 8 and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert uses(ids) >= 8
        assert uses(ids) == 16, "close writes the rest"
    for bad in (0, (1 << 24) + 1, -1, True, 1.5):
        with pytest.raises(InvalidArgumentError):
            TokenManager(db, flush_threshold=bad)  # type: ignore[arg-type]


def test_rate_limiter_with_limits_parsed_once():
    from irontoken import RateDecision, RateLimiter

    limits = [
        {"name": "per_second", "count": 2, "period_ms": 1000, "burst": 2},
        {"name": "per_minute", "count": 3, "period_ms": 60000},  # burst defaults to count
    ]
    rl = RateLimiter(limits=limits, max_buckets=1000)
    got = [rl.check("k", now_ms=0) for _ in range(3)]
    assert [bool(d) for d in got] == [True, True, False]
    assert isinstance(got[0], RateDecision) and got[0].allowed and got[2].retry_after_ms == 500
    assert got[1].limits == [
        {"name": "per_second", "remaining": 0, "reset_ms": 1000},
        {"name": "per_minute", "remaining": 1, "reset_ms": 40000},
    ]
    assert got[2]["allowed"] is False and got[2].to_dict()["retry_after_ms"] == 500
    assert rl.peek("k", now_ms=1000).allowed  # refilled one, not counted
    assert rl.check("k", now_ms=1000).allowed
    assert not rl.check("k", now_ms=1000).allowed  # per_minute: 3 used
    # Per-call limits still work, and the configured ones are not needed for them.
    assert RateLimiter().check("k", limits, now_ms=0).allowed
    with pytest.raises(InvalidArgumentError, match="no limits"):
        RateLimiter().check("k")
    for bad in (
        [],
        [{"name": "a", "count": 1}],
        [{"name": "a", "count": 1, "period_ms": 1, "extra": 1}],
        [{"name": "a", "count": -1, "period_ms": 1}],
        [{"name": "a", "count": 1, "period_ms": 1}, {"name": "a", "count": 2, "period_ms": 1}],
        "not a list",
        [1],
    ):
        with pytest.raises(InvalidArgumentError):
            RateLimiter(limits=bad)  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        got[0]["nope"]


def test_every_limiter_refuses_empty_and_long_keys_and_repeated_names(tmp_path):
    """The standalone in-process limiter once took an empty key (every
    caller without an identity in one bucket), keys of any length and a
    limit name given twice, where a manager's stores refused them."""
    from irontoken import RateLimiter, TokenManager

    one = [{"name": "per_second", "count": 10, "period_ms": 1000}]
    twice = one + one
    limiters = [
        RateLimiter(),
        RateLimiter(manager=TokenManager(str(tmp_path / "rl.db"))),
        RateLimiter(manager=TokenManager(":memory:", rate_limit_store="local")),
    ]
    for rl in limiters:
        for key, limits in (("", one), ("k" * 513, one), ("k", twice)):
            for peek in (False, True):
                call = rl.peek if peek else rl.check
                with pytest.raises(InvalidArgumentError):
                    call(key, limits)
        with pytest.raises(InvalidArgumentError, match="1-512 bytes"):
            rl.check("", one)
        assert rl.check("k" * 512, one).allowed and rl.check("k", one).allowed
    fast = RateLimiter(limits=one)
    with pytest.raises(InvalidArgumentError, match="1-512 bytes"):
        fast.check("")
    with pytest.raises(InvalidArgumentError):
        fast.peek("k" * 513)
    assert fast.check("k").allowed


def test_verify_result_record_is_made_once_when_read(tm):
    c = tm.create_key("lazy", scopes=["read"])
    v = tm.verify_key(c.key, ["read"])
    assert v.record is v.record and v.record.owner == "lazy"
    refused = tm.verify_key(c.key, ["write"])
    assert refused.reason == "INSUFFICIENT_SCOPE" and refused.record.id == c.record.id
    assert tm.verify_key("itk_nope").record is None
    assert "owner='lazy'" in repr(v)


def test_keys_rotate_when_due() -> None:
    with store_target() as target, TokenManager(target, manual_clock_start=1_700_000_000, default_rotation_period=500) as tm:
        own = tm.create_key("a", rotation_period=100)
        other = tm.create_key("b")
        assert own.record.rotation_period == 100 and other.record.rotation_period is None
        assert tm.keys_due() == [] and tm.rotate_due() == []
        tm.advance_clock(100)
        assert [r.id for r in tm.keys_due()] == [own.record.id]
        rotated = tm.rotate_due(overlap_seconds=60, actor="cron")
        assert len(rotated) == 1 and rotated[0].record.rotated_from == own.record.id
        assert rotated[0].record.rotation_period == 100
        assert tm.verify_key(own.key).valid and tm.verify_key(rotated[0].key).valid
        assert tm.rotate_due() == []
        tm.advance_clock(400)
        again = {c.record.owner: c for c in tm.rotate_due()}
        assert sorted(again) == ["a", "b"]
        assert tm.verify_key(other.key).reason == "REVOKED"  # overlap 0
        b = again["b"].record.id
        assert tm.update_key(b, rotation_period=30).rotation_period == 30
        assert tm.update_key(b, clear_rotation_period=True).rotation_period is None
        with pytest.raises(InvalidArgumentError, match="rotation period"):
            tm.update_key(b, rotation_period=30, clear_rotation_period=True)
        with pytest.raises(InvalidArgumentError):
            tm.create_key("c", rotation_period=0)
    with pytest.raises(InvalidArgumentError):
        TokenManager(":memory:", default_rotation_period=-1)


def test_stats_and_list_by_display_prefix(tm):
    """stats() counts keys by state and owner, the window's use, the top keys
    and the most spent quotas; list_keys(prefix=) finds a key from the
    prefix a log line shows."""
    made = [tm.create_key(owner) for owner in ("alice", "alice", "alice", "bob")]
    tm.revoke_key(made[1].record.id)
    tm.disable_key(made[2].record.id)
    tm.set_quota(made[0].record.id, metric="requests", period="day", limit=4)
    for _ in range(3):
        assert tm.verify_key_with(made[0].key, quota={"requests": 1}).valid
    tm.record_usage(key_id=made[3].record.id, model="m", prompt_tokens=5, completion_tokens=7)
    s = tm.stats(window_seconds=3600, top=5)
    assert s["keys"] == {"total": 4, "active": 2, "disabled": 1, "revoked": 1, "expired": 0}
    assert [o["owner"] for o in s["owners"]] == ["alice", "bob"]
    assert s["owners"][0]["keys"]["total"] == 3
    assert s["usage"]["prompt_tokens"] == 5 and s["top_keys"][0]["key_id"] == made[3].record.id
    assert s["quotas"][0]["subject"] == made[0].record.id and s["quotas"][0]["burn"] == 0.75
    assert s["at"] - s["since"] == 3600
    for bad in ({"top": 0}, {"window_seconds": 0}, {"top": 101}):
        with pytest.raises(InvalidArgumentError):
            tm.stats(**bad)
    shown = made[3].record.display_prefix
    page = tm.list_keys(prefix=shown)
    assert [r.id for r in page.items] == [made[3].record.id]
    assert len(tm.list_keys(prefix="itk_").items) == 4
    assert tm.list_keys(prefix="zzz").items == []
    assert [r.id for r in tm.list_keys(prefix="itk_", owner="bob").items] == [made[3].record.id]
    for bad_prefix in ("", "x" * 65, "a\nb"):
        with pytest.raises(InvalidArgumentError):
            tm.list_keys(prefix=bad_prefix)


def test_from_env_opens_the_database_irontoken_db_names(tmp_path, monkeypatch):
    """TokenManager.from_env reads IRONTOKEN_DB (required), and fills
    rate_limit_store / storage_timeout_ms from the environment unless given."""
    from irontoken.aio import AsyncTokenManager

    monkeypatch.delenv("IRONTOKEN_DB", raising=False)
    with pytest.raises(InvalidArgumentError) as e:
        TokenManager.from_env()
    assert "IRONTOKEN_DB" in str(e.value)
    db = tmp_path / "env.db"
    monkeypatch.setenv("IRONTOKEN_DB", str(db))
    monkeypatch.setenv("IRONTOKEN_RATE_LIMIT_STORE", "local")
    with TokenManager.from_env(manual_clock_start=T0) as tm:
        created = tm.create_key("env")
    assert db.exists()
    with TokenManager(str(db)) as other:
        assert other.verify_key(created.key).valid
    # A bad variable is a clear error; an explicit option wins over it.
    monkeypatch.setenv("IRONTOKEN_RATE_LIMIT_STORE", "nowhere")
    with pytest.raises(InvalidArgumentError):
        TokenManager.from_env()
    TokenManager.from_env(rate_limit_store="store").close()
    monkeypatch.setenv("IRONTOKEN_RATE_LIMIT_STORE", "store")
    monkeypatch.setenv("IRONTOKEN_STORAGE_TIMEOUT_MS", "soon")
    with pytest.raises(InvalidArgumentError):
        TokenManager.from_env()
    monkeypatch.delenv("IRONTOKEN_STORAGE_TIMEOUT_MS")
    atm = AsyncTokenManager.from_env()
    assert atm.sync.verify_key(created.key).valid
    atm.sync.close()


def test_the_old_names_of_try_verify_key_warn_and_still_answer(tm: TokenManager) -> None:
    """verify_key_now / verify_key_with_now are kept for one release, deprecated."""
    import warnings

    c = tm.create_key("old-names")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = tm.verify_key_now(c.key)
        old_with = tm.verify_key_with_now(c.key)
    assert [str(w.message) for w in caught if w.category is DeprecationWarning] == [
        "verify_key_now is deprecated: use try_verify_key",
        "verify_key_with_now is deprecated: use try_verify_key_with",
    ]
    if os.environ.get("IRONTOKEN_TEST_STORE") != "postgres":
        assert old is not None and old.valid and old_with is not None and old_with.valid
