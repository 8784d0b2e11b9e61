"""Side-by-side: verifying RS256 and ES256 tokens against a remote JWKS from
Python, set cached (one fetch): irontoken's PyJWKClient (get_signing_key_from_jwt
then decode, and the one-call client.decode) vs PyJWT's PyJWKClient.
Run: `.venv/bin/python bench/remote_jwks_python.py` (after `make python`)."""

from __future__ import annotations

import json
import pathlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization

from irontoken import jwt

from _measure import median_us as measure

KEYS = pathlib.Path(__file__).resolve().parents[1] / "tests" / "vectors" / "jwt" / "keys"
NOW = int(time.time())




def main() -> None:
    pairs = [("RS256", "rsa"), ("ES256", "ec_p256")]
    keys = []
    for alg, name in pairs:
        pub = serialization.load_pem_public_key((KEYS / f"{name}_public.pem").read_bytes())
        keys.append({**json.loads(pyjwt.get_algorithm_by_name(alg).to_jwk(pub)), "kid": name, "alg": alg, "use": "sig"})
    body = json.dumps({"keys": keys}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    ours = jwt.PyJWKClient(url)
    theirs = pyjwt.PyJWKClient(url, cache_keys=True)
    print("Remote JWKS verify from Python, set cached, median µs per call")
    print(f"  {'alg':<6} {'irontoken key+decode':>21} {'irontoken client.decode':>24} {'PyJWT key+decode':>17}")
    for alg, name in pairs:
        token = pyjwt.encode({"sub": "u", "exp": NOW + 3600}, (KEYS / f"{name}_private.pem").read_bytes(), algorithm=alg, headers={"kid": name})

        def ours_two_step() -> object:
            return jwt.decode(token, ours.get_signing_key_from_jwt(token).key, algorithms=[alg])

        def theirs_two_step() -> object:
            return pyjwt.decode(token, theirs.get_signing_key_from_jwt(token).key, algorithms=[alg])

        ours_two_step()
        theirs_two_step()
        a = measure(ours_two_step, 4000)
        b = measure(lambda: ours.decode(token, algorithms=[alg]), 4000)
        c = measure(theirs_two_step, 4000)
        print(f"  {alg:<6} {a:21.2f} {b:24.2f} {c:17.2f}")
    server.shutdown()


if __name__ == "__main__":
    main()
