#!/usr/bin/env bash
# The main job of irontoken across languages, on one SQLite file:
# a key created from Python is verified from Node, C and the CLI, then revoked
# from Node and seen revoked from Python, C and the CLI. Run by `make demo`.
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

step "The CLI rotates the signing key with no overlap: the old token is refused"
"$CLI" --db "$DB" jwt keys rotate --overlap 0 > /dev/null
refused=$("$CLI" --db "$DB" jwt keys jwks > "$DEMO_DIR/jwks2.json"; "$CVERIFY" --jwt "$DEMO_DIR/jwks2.json" || true)
expect JWT_KEY_NOT_FOUND "$refused" "C against the new JWKS"

step "The database holds no plaintext"
if grep -q -a -F "${IRONTOKEN_KEY#*_}" "$DB"* ; then echo "FAILED: plaintext found in the database" >&2; exit 1; fi
echo "ok: no plaintext key in $DB"

printf '\ndemo: all steps passed\n'
