"""Runs every fenced example of README.md (`make test-docs`, part of
`make test`): Python with the package as installed in .venv, JavaScript in a
scratch project that depends on the package folder (`npm install
<repo>/node`, the way a user installs a local package), C compiled against
include/irontoken.h and linked with the library, shell with the `irontoken`
binary on PATH, each in a fresh scratch directory.

An example that uses names defined elsewhere in the README (a token, a key
id) gets a named prelude through an HTML comment right above its fence,
`<!-- docs: prelude=NAME -->`; an example that cannot run here says why,
`<!-- docs: skip=REASON -->` (reported, never silent); one that needs a
service runs when it answers, `<!-- docs: needs=redis -->` (tools/services.py
names), and is reported skipped otherwise. Preludes are below.

Usage: python3 tests/docs/run_readme.py [README.md]
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[2]
VENV_PY = ROOT / ".venv" / "bin" / "python"
RELEASE = ROOT / "target" / "release"
KEYS = ROOT / "tests" / "vectors" / "jwt" / "keys"
MASTER = "11" * 32

# Preludes: code run before an example (same language), defining what the
# README's surrounding text assumes.
PY_MANAGER = f"""
import os
os.environ["IRONTOKEN_MASTER_KEY"] = "{MASTER}"
from irontoken import TokenManager
tm = TokenManager("keys.db", master_key="{MASTER}")
_created = tm.create_key("acme", scopes=["read", "chat"])
api_key = key = _created.key
api_key_id = kid = _created.record.id
t0 = 0
"""

PY_JWT = f"""
import pathlib, time
from irontoken import jwt
_k = pathlib.Path("{KEYS}")
private_pem = (_k / "rsa_private.pem").read_text()
public_pem = (_k / "rsa_public.pem").read_text()
exp = int(time.time()) + 600
token = jwt.encode({{"sub": "alice", "exp": exp, "aud": "api", "iss": "https://idp"}}, private_pem, "RS256", headers={{"kid": "2026-11"}})
_n = jwt.get_unverified_header(token)
import json as _json
from cryptography.hazmat.primitives import serialization as _ser
import jwt as _pyjwt
_jwk = _json.loads(_pyjwt.algorithms.RSAAlgorithm.to_jwk(_ser.load_pem_public_key(public_pem.encode())))
jwks_json = _json.dumps({{"keys": [dict(_jwk, kid="2026-11")]}})
"""

PY_REMOTE = PY_JWT + """
import http.server, threading
class _H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = jwks_json.encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
_srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _H)
threading.Thread(target=_srv.serve_forever, daemon=True).start()
IDP = f"http://127.0.0.1:{_srv.server_address[1]}/.well-known/jwks.json"
"""

JS_JWT = f"""
const fs = require('fs')
const _k = '{KEYS}'
const privatePem = fs.readFileSync(_k + '/rsa_private.pem', 'utf8')
const publicPem = fs.readFileSync(_k + '/rsa_public.pem', 'utf8')
const crypto = require('crypto')
const jwksJson = JSON.stringify({{ keys: [{{ ...crypto.createPublicKey(publicPem).export({{ format: 'jwk' }}), kid: '2026-11' }}] }})
const exp = Math.floor(Date.now() / 1000) + 600
const token = require('irontoken').jwtSign({{ sub: 'alice', exp, aud: 'api' }}, privatePem, {{ algorithm: 'RS256', kid: '2026-11' }})
"""

JS_REMOTE = JS_JWT + """
const http = require('http')
const _srv = http.createServer((q, r) => r.end(jwksJson))
"""

JS_MANAGER = """
const { TokenManager } = require('irontoken')
const tm = new TokenManager('keys.db')
const _c = tm.createKey({ owner: 'acme', scopes: ['read'] })
const keyId = _c.record.id
const apiKey = _c.key
"""

C_MANAGER = """
itk_manager *m = NULL;
itk_manager_open("keys.db", NULL, &m);
char *key = NULL, *_rec = NULL;
itk_key_create(m, "{\\"owner\\": \\"acme\\"}", &key, &_rec);
/* the new key's id, from its record JSON */
static char key_id[64] = "";
{
    const char *at = strstr(_rec, "\\"id\\":\\"");
    if (at) { at += 6; size_t n = strcspn(at, "\\""); memcpy(key_id, at, n < 63 ? n : 63); }
}
"""

C_JWT = C_MANAGER + r"""
char *token = NULL;
{
    FILE *f = fopen(PEM_DIR "/rsa_private.pem", "rb"); static char pem[8192]; size_t n = fread(pem, 1, sizeof pem - 1, f); pem[n] = 0; fclose(f);
    itk_jwt_encode("{\"sub\": \"alice\", \"exp\": 4102444800, \"aud\": \"api\"}", pem, "RS256", NULL, "2026-11", &token);
}
static char public_pem[8192];
{
    FILE *f = fopen(PEM_DIR "/rsa_public.pem", "rb"); size_t n = fread(public_pem, 1, sizeof public_pem - 1, f); public_pem[n] = 0; fclose(f);
}
"""

SH_JWT = f"""
cp {KEYS}/rsa_public.pem public.pem
cp {KEYS}/rsa_private.pem private.pem
TOKEN=$(irontoken jwt sign --key-file private.pem --alg RS256 --sub alice --expires-in 600 --claims '{{"aud": "api"}}')
"""

SH_REMOTE = SH_JWT + f"""
irontoken jwt sign --key-file private.pem --alg RS256 --sub x --kid k1 > /dev/null
python3 - > jwks.json <<'PY'
import json, subprocess
pub = subprocess.run(["openssl", "rsa", "-pubin", "-in", "public.pem", "-noout", "-modulus"], capture_output=True, text=True).stdout
import base64
n = bytes.fromhex(pub.strip().split("=", 1)[1])
b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
print(json.dumps({{"keys": [{{"kty": "RSA", "n": b(n), "e": "AQAB"}}]}}))
PY
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server "$PORT" --bind 127.0.0.1 > /dev/null 2>&1 &
trap 'kill $!' EXIT
IDP="http://127.0.0.1:$PORT/jwks.json"
for _ in $(seq 50); do python3 -c "import urllib.request; urllib.request.urlopen('$IDP')" 2>/dev/null && break; sleep 0.1; done
"""

SH_KEYS = f"""
export IRONTOKEN_MASTER_KEY={MASTER}
export IRONTOKEN_DB=keys.db
irontoken keys create --owner acme > /dev/null 2>&1
KEY_ID=$(irontoken --json keys list | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
"""

PRELUDES = {
    "python": {
        "manager": PY_MANAGER,
        "jwt": PY_JWT,
        "remote": PY_REMOTE,
        "jwt+manager": PY_JWT + PY_MANAGER,
        "limits": 'from irontoken import RateLimiter\nlimits = [{"name": "per_second", "count": 10, "period_ms": 1000}]',
        "env": "import os\nfrom irontoken import TokenManager",
        "cert": f'import pathlib\nclient_pem = (pathlib.Path("{KEYS}") / "rsa_cert.pem").read_text()',
    },
    "js": {"jwt": JS_JWT, "remote": JS_REMOTE, "manager": JS_MANAGER},
    "c": {"manager": C_MANAGER, "jwt": C_JWT},
    "sh": {"keys": SH_KEYS, "jwt": SH_JWT, "remote": SH_REMOTE},
    "rust": {},
}


def blocks(text: str):
    """(line, language, directives, code) for every fenced block."""
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w+)\s*$", lines[i])
        if not m:
            i += 1
            continue
        lang = m.group(1)
        directives = {}
        j = i - 1
        while j >= 0 and lines[j].strip().startswith("<!-- docs:"):
            for part in re.findall(r"(\w+)=([^;>]+?)(?:;|\s*-->)", lines[j]):
                directives[part[0]] = part[1].strip()
            j -= 1
        end = i + 1
        while not lines[end].startswith("```"):
            end += 1
        yield i + 1, lang, directives, "\n".join(lines[i + 1 : end])
        i = end + 1


def run(cmd, cwd, env=None, stdin=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=timeout)


def js_project(tmp: pathlib.Path) -> None:
    (tmp / "package.json").write_text('{"name": "docs-example", "version": "1.0.0", "private": true}\n')
    r = run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", str(ROOT / "node")], tmp)
    if r.returncode != 0:
        raise RuntimeError("npm install of the package failed:\n" + r.stderr)


def run_block(lang: str, prelude: str, code: str, tmp: pathlib.Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{RELEASE}:{os.environ['PATH']}")
    env.pop("IRONTOKEN_DB", None)
    if lang == "python":
        src = prelude + "\n" + code
        if "IDP" in prelude:
            src = src.replace('"https://idp.example/.well-known/jwks.json"', "IDP")
        (tmp / "example.py").write_text(src)
        return run([str(VENV_PY), "example.py"], tmp, env)
    if lang == "js":
        js_project(tmp)
        body = prelude + "\n" + code
        if "_srv" in prelude:
            body = body.replace("'https://idp.example/.well-known/jwks.json'", "IDP")
            body = "(async () => {\n" + body.replace(
                "const _srv = http.createServer((q, r) => r.end(jwksJson))",
                "const _srv = http.createServer((q, r) => r.end(jwksJson)); await new Promise((r) => _srv.listen(0, '127.0.0.1', r)); const IDP = `http://127.0.0.1:${_srv.address().port}/.well-known/jwks.json`",
            ) + "\n_srv.close()\n})().catch((e) => { console.error(e); process.exit(1) })"
        elif "await " in code:
            body = "(async () => {\n" + body + "\n})().catch((e) => { console.error(e); process.exit(1) })"
        (tmp / "example.js").write_text(body)
        # The web frameworks the adapter examples use (express, fastify) come
        # from node/'s dev dependencies; irontoken itself from the scratch install.
        env["NODE_PATH"] = str(ROOT / "node" / "node_modules")
        return run(["node", "example.js"], tmp, env)
    if lang == "c" and "int main(" in code:
        # A complete program, compiled as printed (the library found by rpath).
        (tmp / "app.c").write_text(code + "\n")
        cc = run(
            ["cc", "-std=c11", "-Wall", "-Werror", f"-I{ROOT / 'include'}", "app.c", f"-L{RELEASE}", "-lirontoken", f"-Wl,-rpath,{RELEASE}", "-o", "app"],
            tmp,
            env,
        )
        return cc if cc.returncode != 0 else run(["./app"], tmp, env)
    if lang == "rust":
        # A program against the crate in core/ (one shared target directory).
        (tmp / "src").mkdir()
        (tmp / "src" / "main.rs").write_text(code + "\n")
        (tmp / "Cargo.toml").write_text(
            '[package]\nname = "docs-example"\nversion = "0.0.0"\nedition = "2024"\npublish = false\n\n'
            f'[dependencies]\nirontoken = {{ path = "{ROOT / "core"}" }}\n\n[workspace]\n'
        )
        shutil.copy(ROOT / "Cargo.lock", tmp / "Cargo.lock")
        env["CARGO_TARGET_DIR"] = str(ROOT / "target" / "docs-examples")
        return run(["cargo", "run", "--quiet"], tmp, env, timeout=1200)
    if lang == "c":
        includes = [l for l in code.split("\n") if l.startswith("#include")]
        rest = [l for l in code.split("\n") if not l.startswith("#include")]
        src = "\n".join(
            ["#include <stdbool.h>", "#include <stdio.h>", "#include <string.h>", '#include "irontoken.h"', *includes, f'#define PEM_DIR "{KEYS}"', "int main(void) {", textwrap.indent(prelude, "    "), *("    " + l for l in rest), "    return 0;", "}"]
        )
        (tmp / "example.c").write_text(src)
        cc = run(
            ["cc", "-std=c11", "-Wall", "-Wno-unused-variable", "-Wno-unused-but-set-variable", f"-I{ROOT / 'include'}", "example.c", f"-L{RELEASE}", "-lirontoken", "-lpthread", "-ldl", "-lm", f"-Wl,-rpath,{RELEASE}", "-o", "example"],
            tmp,
            env,
        )
        if cc.returncode != 0:
            return cc
        return run(["./example"], tmp, env)
    if lang == "sh":
        if "IDP=" in prelude:
            code = code.replace("https://idp.example/.well-known/jwks.json", '"$IDP"')
        (tmp / "example.sh").write_text("set -euo pipefail\n" + prelude + "\n" + code + "\n")
        return run(["bash", "example.sh"], tmp, env, stdin="")
    raise ValueError(lang)


def main() -> int:
    files = [pathlib.Path(a) for a in sys.argv[1:]] or [ROOT / "README.md"]
    ran = skipped = failed = 0
    for readme, (line, lang, d, code) in ((f, b) for f in files for b in blocks(f.read_text())):
        lang = {"javascript": "js", "ts": "js", "typescript": "js", "bash": "sh", "shell": "sh"}.get(lang, lang)
        where = f"{readme}:{line} ({lang})"
        if "skip" in d:
            skipped += 1
            print(f"skip  {where}: {d['skip']}")
            continue
        need = d.get("needs")
        if need and subprocess.run([sys.executable, str(ROOT / "tools" / "services.py"), need], capture_output=True).returncode != 0:
            skipped += 1
            print(f"skip  {where}: no {need} server answers here (CI has one)")
            continue
        if lang not in PRELUDES:
            skipped += 1
            print(f"skip  {where}: no runner for this language")
            continue
        prelude = PRELUDES[lang].get(d.get("prelude", ""), "")
        if d.get("prelude") and not prelude:
            print(f"FAIL  {where}: unknown prelude {d['prelude']!r}")
            failed += 1
            continue
        with tempfile.TemporaryDirectory(prefix="itk-docs-") as tmp:
            r = run_block(lang, prelude, code, pathlib.Path(tmp))
        if r.returncode == 0:
            ran += 1
            print(f"ok    {where}")
        else:
            failed += 1
            print(f"FAIL  {where} (exit {r.returncode})\n{textwrap.indent((r.stdout + r.stderr)[-2000:], '      ')}")
    print(f"examples in {len(files)} file(s): {ran} ran, {skipped} skipped (with their reasons above), {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    if shutil.which("node") is None:
        print("node is needed")
    sys.exit(main())
