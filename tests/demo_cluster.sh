#!/usr/bin/env bash
# Two processes standing in for two hosts — a Python service and a Node
# gateway — share one PostgreSQL database and one Redis: a key created on
# one is verified on the other, one per-key rate limit holds across both,
# a quota is never oversold, a revocation on one host is refused on the
# other within milliseconds, and usage from both adds up. Run by
# `make demo-cluster` (needs PostgreSQL and Redis; see tools/services.py).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
CLI=target/release/irontoken
PG=${IRONTOKEN_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/test}
REDIS=${IRONTOKEN_TEST_REDIS_URL:-redis://127.0.0.1:6379}
SCHEMA="itk_demo_$$"
SEP='?'; [[ "$PG" == *\?* ]] && SEP='&'
export ITK_DB="${PG}${SEP}options=-csearch_path%3D${SCHEMA}"
export ITK_RL="${REDIS}?key_prefix=itk-demo-$$:"

step() { printf '\n== %s\n' "$*"; }
expect() { # expect WANT GOT WHAT
  if [[ "$1" != "$2" ]]; then echo "FAILED: $3: expected $1, got $2" >&2; exit 1; fi
  echo "ok: $3 -> $2"
}

"$PY" -c "import psycopg,sys; psycopg.connect(sys.argv[1], autocommit=True).execute('CREATE SCHEMA $SCHEMA')" "$PG"
cleanup() {
  "$PY" -c "import psycopg,sys; psycopg.connect(sys.argv[1], autocommit=True).execute('DROP SCHEMA $SCHEMA CASCADE')" "$PG" || true
}
trap cleanup EXIT

step "host A (Python) creates a key: rate limit 5/minute, quota 8 requests/day"
export IRONTOKEN_KEY
IRONTOKEN_KEY=$("$PY" - <<'PY'
import os
from irontoken import TokenManager
with TokenManager(os.environ["ITK_DB"], rate_limit_store=os.environ["ITK_RL"]) as tm:
    c = tm.create_key("acme", name="cluster-demo",
                      rate_limits=[{"name": "per_minute", "count": 5, "period_ms": 60000, "burst": 5}])
    tm.set_quota(c.record.id, metric="requests", period="day", limit=8)
    print(c.key)
PY
)

step "hosts A and B verify with the key's rate limit at the same time (10 attempts, limit 5)"
"$PY" - >"/tmp/itk-demo-a.$$" <<'PY' &
import os
from irontoken import TokenManager
with TokenManager(os.environ["ITK_DB"], rate_limit_store=os.environ["ITK_RL"]) as tm:
    print(sum(tm.verify_key_with(os.environ["IRONTOKEN_KEY"], rate_limit=True).valid for _ in range(5)))
PY
b=$(node -e '
  const { TokenManager } = require("./node")
  const tm = new TokenManager(process.env.ITK_DB, { rateLimitStore: process.env.ITK_RL })
  let n = 0
  for (let i = 0; i < 5; i++) n += tm.verifyKeyWith(process.env.IRONTOKEN_KEY, { rateLimit: true }).valid ? 1 : 0
  tm.close()
  console.log(n)')
wait
a=$(cat "/tmp/itk-demo-a.$$"); rm -f "/tmp/itk-demo-a.$$"
echo "host A allowed $a, host B allowed $b"
expect 5 $((a + b)) "requests allowed across both hosts"

step "both hosts consume the quota (12 attempts, limit 8)"
qa=$("$PY" -c '
import os
from irontoken import TokenManager
with TokenManager(os.environ["ITK_DB"]) as tm:
    kid = tm.verify_key(os.environ["IRONTOKEN_KEY"]).record.id
    print(sum(tm.consume_quota(kid, requests=1)["allowed"] for _ in range(6)))')
qb=$(node -e '
  const { TokenManager } = require("./node")
  const tm = new TokenManager(process.env.ITK_DB)
  const kid = tm.verifyKey(process.env.IRONTOKEN_KEY).record.id
  let n = 0
  for (let i = 0; i < 6; i++) n += tm.consumeQuota(kid, { requests: 1 }).allowed ? 1 : 0
  tm.close()
  console.log(n)')
expect 8 $((qa + qb)) "quota grants across both hosts"

step "host B (Node) revokes; host A, verifying in a loop, refuses it"
export ITK_READY="/tmp/itk-demo-ready.$$"
rm -f "$ITK_READY"
"$PY" - >"/tmp/itk-demo-lag.$$" <<'PY' &
import os, time
from irontoken import TokenManager
with TokenManager(os.environ["ITK_DB"]) as tm:
    key = os.environ["IRONTOKEN_KEY"]
    assert tm.verify_key(key).valid
    open(os.environ["ITK_READY"], "w").close()
    while tm.verify_key(key).valid:
        pass
    print(time.time())
PY
for _ in $(seq 200); do [[ -e "$ITK_READY" ]] && break; sleep 0.05; done
[[ -e "$ITK_READY" ]] || { echo "FAILED: host A did not start" >&2; exit 1; }
revoked=$(node -e '
  const { TokenManager } = require("./node")
  const tm = new TokenManager(process.env.ITK_DB)
  const kid = tm.verifyKey(process.env.IRONTOKEN_KEY).record.id
  tm.revokeKey(kid, { reason: "cluster demo" })
  console.log(Date.now() / 1000)
  tm.close()')
wait
seen=$(cat "/tmp/itk-demo-lag.$$"); rm -f "/tmp/itk-demo-lag.$$" "$ITK_READY"
lag_ms=$("$PY" -c "print(max(0, round((float('$seen') - float('$revoked')) * 1000, 1)))")
echo "host A refused the key ${lag_ms} ms after host B revoked it"
expect REVOKED "$("$CLI" --db "$ITK_DB" keys verify | head -1 || true)" "the CLI (a third process) sees it revoked"

step "the audit trail, in the shared database"
"$CLI" --db "$ITK_DB" audit list --limit 5
echo
echo "cluster demo passed"
