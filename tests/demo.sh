#!/usr/bin/env bash
# The main job of irontoken across languages, on one SQLite file:
# a key created from Python is verified from Node, C and the CLI, then revoked
# from Node and seen revoked from Python, C and the CLI; then JWTs, quotas,
# usage, a capability token minted in Python, narrowed in Node,
# authorized in C and revoked from the CLI, a refresh token whose stolen
# copy revokes its family, and an LLM key's token limit and model policy.
# Run by `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_DIR=.demo
DB="$DEMO_DIR/demo.db"
PY=.venv/bin/python
CLI=target/release/irontoken
CVERIFY=target/c/itk_verify
mkdir -p "$DEMO_DIR"
rm -f "$DB" "$DB-wal" "$DB-shm"

step() { printf '\n== %s\n' "$*"; }
expect() { # expect WANT GOT WHAT
  if [[ "$1" != "$2" ]]; then echo "FAILED: $3: expected $1, got $2" >&2; exit 1; fi
  echo "ok: $3 -> $2"
}

step "Python creates a key"
created=$("$PY" - "$DB" <<'PY'
import json, sys
from irontoken import TokenManager
with TokenManager(sys.argv[1]) as tm:
    c = tm.create_key("demo-user", name="demo", scopes=["read"], metadata={"plan": "pro"}, actor="demo:python")
    print(json.dumps({"key": c.key, "id": c.record.id, "display": c.record.display_prefix}))
PY
)
# The key travels in an environment variable, not on command lines.
export IRONTOKEN_KEY
IRONTOKEN_KEY=$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["key"])' <<<"$created")
KEY_ID=$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$created")
DISPLAY=$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["display"])' <<<"$created")
echo "created key $DISPLAY… (id $KEY_ID); the plaintext was shown once, to this script"

node_verify() {
  node -e '
    const { TokenManager } = require("./node");
    const tm = new TokenManager(process.argv[1]);
    console.log(tm.verifyKey(process.env.IRONTOKEN_KEY, ["read"]).reason);
    tm.close();' "$DB"
}
py_verify() {
  "$PY" -c '
import os, sys
from irontoken import TokenManager
with TokenManager(sys.argv[1]) as tm:
    print(tm.verify_key(os.environ["IRONTOKEN_KEY"]).reason)' "$DB"
}
c_verify() { "$CVERIFY" "$DB" || true; }
cli_verify() { "$CLI" --db "$DB" keys verify | head -n1 || true; }

step "Node, C and the CLI verify it"
expect VALID "$(node_verify)" "Node verifyKey"
expect VALID "$(c_verify)" "C itk_key_verify"
expect VALID "$(cli_verify)" "CLI keys verify"

step "Node revokes it"
node -e '
  const { TokenManager } = require("./node");
  const tm = new TokenManager(process.argv[1]);
  console.log("status:", tm.revokeKey(process.argv[2], { reason: "demo", actor: "demo:node" }).status);
  tm.close();' "$DB" "$KEY_ID"

step "Python, C and the CLI see it revoked"
expect REVOKED "$(py_verify)" "Python verify_key"
expect REVOKED "$(c_verify)" "C itk_key_verify"
expect REVOKED "$(cli_verify)" "CLI keys verify"

step "The audit trail (CLI)"
"$CLI" --db "$DB" audit list --key-id "$KEY_ID"

step "JWT: Python mints a signing key and trades an API key for an access token"
export IRONTOKEN_MASTER_KEY
IRONTOKEN_MASTER_KEY=$("$PY" -c 'import secrets; print(secrets.token_hex(32))')
second=$("$PY" - "$DB" <<'PY'
import json, sys
from irontoken import TokenManager
with TokenManager(sys.argv[1]) as tm:   # master key from IRONTOKEN_MASTER_KEY
    tm.create_signing_key("ES256", actor="demo:python")
    key = tm.create_key("svc-billing", scopes=["read"], actor="demo:python")
    access = tm.exchange_api_key(key.key, required_scopes=["read"])
    print(json.dumps({"jwt": access["token"], "jwks": tm.jwks()}))
PY
)
export IRONTOKEN_JWT
IRONTOKEN_JWT=$("$PY" -c 'import json,sys; print(json.load(sys.stdin)["jwt"])' <<<"$second")
"$PY" -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["jwks"]))' <<<"$second" > "$DEMO_DIR/jwks.json"
echo "issued an ES256 access token; public JWKS in $DEMO_DIR/jwks.json"

step "Node, C and the CLI verify the access token against the JWKS"
node_jwt() {
  node -e '
    const fs = require("fs");
    const { jwtVerify } = require("./node");
    const { payload } = jwtVerify(process.env.IRONTOKEN_JWT, fs.readFileSync(process.argv[1], "utf8"), { algorithms: ["ES256"] });
    console.log(payload.sub === "svc-billing" ? "VALID" : "WRONG_SUB");' "$DEMO_DIR/jwks.json"
}
expect VALID "$(node_jwt)" "Node jwtVerify"
expect VALID "$("$CVERIFY" --jwt "$DEMO_DIR/jwks.json" || true)" "C itk_jwt_verifier_decode"
cli_jwt=$("$CLI" jwt verify --key-file "$DEMO_DIR/jwks.json" --alg ES256 | "$PY" -c 'import json,sys; print("VALID" if json.load(sys.stdin)["sub"] == "svc-billing" else "WRONG")')
expect VALID "$cli_jwt" "CLI jwt verify"

step "The JWKS over HTTP, as an identity provider serves it: PyJWKClient, createRemoteJWKSet, --jwks-url"
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$PY" -m http.server "$PORT" --bind 127.0.0.1 --directory "$DEMO_DIR" > /dev/null 2>&1 &
HTTP_PID=$!
trap 'kill $HTTP_PID 2>/dev/null || true' EXIT
JWKS_URL="http://127.0.0.1:$PORT/jwks.json"
for _ in $(seq 50); do "$PY" -c "import urllib.request; urllib.request.urlopen('$JWKS_URL')" 2>/dev/null && break; sleep 0.1; done
py_remote=$("$PY" - "$JWKS_URL" <<'PY'
import os, sys
from irontoken import jwt
client = jwt.PyJWKClient(sys.argv[1])
token = os.environ["IRONTOKEN_JWT"]
key = client.get_signing_key_from_jwt(token)
print("VALID" if jwt.decode(token, key.key, algorithms=["ES256"])["sub"] == "svc-billing" else "WRONG")
PY
)
expect VALID "$py_remote" "Python PyJWKClient"
node_remote=$(node -e '
  const { jwtVerify, createRemoteJWKSet } = require("./node");
  jwtVerify(process.env.IRONTOKEN_JWT, createRemoteJWKSet(process.argv[1]), { algorithms: ["ES256"] })
    .then(({ payload }) => console.log(payload.sub === "svc-billing" ? "VALID" : "WRONG"), (e) => console.log(e.irontokenCode))' "$JWKS_URL")
expect VALID "$node_remote" "Node createRemoteJWKSet"
cli_remote=$("$CLI" jwt verify --jwks-url "$JWKS_URL" --alg ES256 | "$PY" -c 'import json,sys; print("VALID" if json.load(sys.stdin)["sub"] == "svc-billing" else "WRONG")')
expect VALID "$cli_remote" "CLI jwt verify --jwks-url"
kill $HTTP_PID 2>/dev/null || true

step "The RS/HS confusion: an HS256 token MACed with the public JWKS bytes is refused"
forged=$("$PY" - "$DEMO_DIR/jwks.json" <<'PY'
import base64, hashlib, hmac, json, sys
from irontoken import jwt
public = open(sys.argv[1], "rb").read()
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
signing_input = b64(b'{"alg":"HS256"}') + "." + b64(json.dumps({"sub": "admin", "exp": 4102444800}).encode())
token = signing_input + "." + b64(hmac.new(public, signing_input.encode(), hashlib.sha256).digest())
try:
    jwt.decode(token, public, algorithms=["HS256"])
    print("ACCEPTED")
except jwt.InvalidKeyError as e:
    print(e.code)
PY
)
expect INVALID_KEY_MATERIAL "$forged" "Python decode with the JWKS bytes as an HMAC key"

step "The CLI rotates the signing key with no overlap: the old token is refused"
"$CLI" --db "$DB" jwt keys rotate --overlap 0 > /dev/null
refused=$("$CLI" --db "$DB" jwt keys jwks > "$DEMO_DIR/jwks2.json"; "$CVERIFY" --jwt "$DEMO_DIR/jwks2.json" || true)
expect JWT_KEY_NOT_FOUND "$refused" "C against the new JWKS"

step "Quotas and rate limits: Python configures a key, Node and C spend it"
IRONTOKEN_KEY=$("$PY" - "$DB" <<'PY'
import sys
from irontoken import TokenManager
with TokenManager(sys.argv[1]) as tm:
    c = tm.create_key("svc-chat", rate_limits=[{"name": "per_minute", "count": 3, "period_ms": 60000, "burst": 3}])
    tm.set_quota(c.record.id, metric="requests", period="day", limit=5)
    tm.set_quota("svc-chat", scope="owner", metric="cost", period="month", limit=2_000_000)
    print(c.key)
PY
)
node_with() {
  node -e '
    const { TokenManager } = require("./node");
    const tm = new TokenManager(process.argv[1]);
    const opts = JSON.parse(process.argv[3]);
    const out = [];
    for (let i = 0; i < Number(process.argv[2]); i++) out.push(tm.verifyKeyWith(process.env.IRONTOKEN_KEY, opts).reason);
    console.log(out.join(" "));
    tm.close();' "$DB" "$@"
}
c_with() { "$CVERIFY" "$DB" "$@" | tr '\n' ' ' | sed 's/ $//'; }
expect "VALID VALID VALID RATE_LIMITED" "$(node_with 4 '{"rateLimit": true, "quota": {"requests": 1}}')" \
  "Node verifyKeyWith: 3 per minute, the 4th is rate-limited (its quota untouched)"
expect "RATE_LIMITED" "$(c_with 1 '{"rate_limit": true, "quota": {"requests": 1}}')" \
  "C itk_key_verify_with: the per-minute limit Node spent is shared through the file (its quota untouched)"
expect "VALID VALID USAGE_EXCEEDED" "$(c_with 3 '{"quota": {"requests": 1}}')" \
  "C itk_key_verify_with, quota only: 3 of the daily 5 were spent by Node, 2 remain"
expect "USAGE_EXCEEDED" "$(node_with 1 '{"quota": {"requests": 1}}')" "Node again: the quota is shared through the file"

step "Usage: Python records LLM calls (one report sent twice), the CLI reports and exports"
"$PY" - "$DB" <<'PY'
import os, sys
from irontoken import TokenManager
with TokenManager(sys.argv[1]) as tm:
    kid = tm.verify_key(os.environ["IRONTOKEN_KEY"]).record.id
    for rid, model, p, c, cost in [("req-1", "gpt-4o", 1200, 300, 4500), ("req-2", "claude", 800, 200, 3100),
                                   ("req-1", "gpt-4o", 1200, 300, 4500)]:
        r = tm.record_usage(request_id=rid, key_id=kid, model=model, prompt_tokens=p,
                            completion_tokens=c, cost_micros=cost)
        print(f"{rid}: {'duplicate, not counted' if r['duplicate'] else 'recorded'}")
PY
"$CLI" --db "$DB" usage report --group-by owner,model
rows=$("$CLI" --db "$DB" usage export --format csv 2>/dev/null | tail -n +2 | wc -l | tr -d ' ')
expect 2 "$rows" "CLI usage export (CSV rows)"

step "Capability tokens: Python mints for an agent, Node narrows it offline, C authorizes and charges, the CLI revokes"
export IRONTOKEN_CAP
IRONTOKEN_CAP=$("$PY" - "$DB" <<'PY'
import sys
from irontoken import TokenManager
with TokenManager(sys.argv[1]) as tm:
    kid = tm.create_key("agent-runner", name="orchestrator", actor="demo:python").record.id
    print(tm.mint_capability(kid, tools=["search", "fetch"], ceiling_micros=5000, ttl_seconds=600))
PY
)
PARENT=$IRONTOKEN_CAP
IRONTOKEN_CAP=$(node -e '
  const { attenuate } = require("./node");
  console.log(attenuate(process.env.IRONTOKEN_CAP, { tools: ["fetch"], ceilingMicros: 2000, ttlSeconds: 60 }))')
c_cap() { "$CVERIFY" --cap "$DB" "$1" || true; }
expect OK "$(c_cap '{"tool": "fetch", "cost_micros": 1500}')" "C itk_cap_authorize (fetch, 1500 of 2000)"
expect CEILING_EXCEEDED "$(c_cap '{"tool": "fetch", "cost_micros": 600}')" "C itk_cap_authorize (600 more)"
expect TOOL_NOT_ALLOWED "$(c_cap '{"tool": "search"}')" "C itk_cap_authorize (search, narrowed away)"
echo "$PARENT" | "$CLI" --db "$DB" cap revoke - --actor demo:cli
expect CAPABILITY_REVOKED "$(c_cap '{"tool": "fetch"}')" "C after the CLI revoked the parent"

step "Refresh tokens: Python issues a pair, Node refreshes it, a stolen copy of the old refresh token comes back to the CLI"
export IRONTOKEN_REFRESH_TOKEN
IRONTOKEN_REFRESH_TOKEN=$("$PY" - "$DB" <<'PY'
import sys
from irontoken import TokenManager
with TokenManager(sys.argv[1]) as tm:
    pair = tm.issue_token_pair("alice", scopes=["read"], ttl_seconds=300)
    print(pair["refresh_token"])
PY
)
NEXT=$(node -e '
  const { TokenManager } = require("./node");
  const tm = new TokenManager(process.argv[1]);
  const p = tm.refreshTokenPair(process.env.IRONTOKEN_REFRESH_TOKEN);
  console.log(p.familyId)' "$DB")
echo "Node refreshed family $NEXT (the old refresh token is spent)"
set +e
"$CLI" --db "$DB" --json jwt refresh 2>"$DEMO_DIR/reuse.err" >/dev/null
code=$?
set -e
expect 51 "$code" "CLI presents the spent refresh token (exit 10 + REFRESH_TOKEN_REUSED)"
status=$("$CLI" --db "$DB" --json jwt family "$NEXT" | "$PY" -c 'import json,sys; f=json.load(sys.stdin); print(f["status"], f["revoke_reason"])')
expect "revoked reuse_detected" "$status" "the whole family is revoked"

step "LLM spend: Python gives a key 1000 tokens a minute and two model families; Node and C spend it; the CLI reports by hour"
IRONTOKEN_KEY=$("$PY" - "$DB" <<'PY'
import sys
from irontoken import TokenManager
with TokenManager(sys.argv[1]) as tm:
    c = tm.create_key("svc-llm", rate_limits=[{"name": "tpm", "count": 1000, "period_ms": 60000, "unit": "tokens"}],
                      models=["gpt-4o*", "claude-*"], max_tokens_per_request=800)
    print(c.key)
PY
)
expect "VALID VALID" "$(node_with 2 '{"rateLimit": true, "model": "gpt-4o-mini", "tokens": 400}')" \
  "Node verifyKeyWith: two requests of 400 tokens on gpt-4o-mini"
expect "RATE_LIMITED" "$(c_with 1 '{"rate_limit": true, "model": "claude-3-opus", "tokens": 400}')" \
  "C itk_key_verify_with: 200 tokens left this minute, shared through the file"
expect "MODEL_NOT_ALLOWED" "$(c_with 1 '{"rate_limit": true, "model": "o3", "tokens": 10}')" \
  "C: a model outside the key's allow-list"
expect "REQUEST_TOO_LARGE" "$(node_with 1 '{"rateLimit": true, "model": "gpt-4o", "tokens": 900}')" \
  "Node: more tokens than the key allows per request"
"$CLI" --db "$DB" usage report --by hour --group-by model

step "The database holds no plaintext"
if grep -q -a -F "${IRONTOKEN_KEY#*_}" "$DB"* ; then echo "FAILED: plaintext found in the database" >&2; exit 1; fi
if grep -q -a -F "${IRONTOKEN_REFRESH_TOKEN#*_}" "$DB"* ; then echo "FAILED: a refresh token found in the database" >&2; exit 1; fi
echo "ok: no plaintext key in $DB"

printf '\ndemo: all steps passed\n'
