"""Memory after verifying every key of a 1M-key store once, default options.

Four fresh processes on the database bench/keys_sweep_python.py built:
irontoken from Python, sha256 + sqlite3 from Python, irontoken from Node,
sha256 + better-sqlite3 from Node. Each reads the keys the same way (Python
line by line, Node the whole file), verifies each once, then reports its
resident set (VmRSS) and its peak (VmHWM) from /proc/self/status.
Run: `make bench-compare` (or `.venv/bin/python bench/memory_sweep.py [N]`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from irontoken import SCHEMA_VERSION

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "target", "bench")

PY_CHILD = r"""
import hashlib, json, sqlite3, sys
from irontoken import TokenManager
kind, d = sys.argv[1], sys.argv[2]
def status():
    out = {}
    for line in open("/proc/self/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) / 1024
    return out
valid = 0
with open(d + "/keys.txt") as f:
    if kind == "irontoken":
        tm = TokenManager(d + "/irontoken.db", durability="normal")
        for line in f:
            valid += tm.verify_key(line.rstrip("\n")).valid
        tm.flush()
    else:
        con = sqlite3.connect(d + "/plain.db")
        for line in f:
            h = hashlib.sha256(line.rstrip("\n").encode()).digest()
            valid += con.execute("SELECT owner, scopes FROM k WHERE h = ?", (h,)).fetchone() is not None
print(json.dumps({"valid": valid, **status()}))
"""

NODE_CHILD = r"""
const fs = require('node:fs'), crypto = require('node:crypto'), path = require('node:path')
const [kind, d, root] = process.argv.slice(1)
const keys = fs.readFileSync(path.join(d, 'keys.txt'), 'utf8').split('\n')
let valid = 0
if (kind === 'irontoken') {
  const { TokenManager } = require(path.join(root, 'node'))
  const tm = new TokenManager(path.join(d, 'irontoken.db'), { durability: 'normal' })
  for (const k of keys) valid += tm.verifyKey(k).valid ? 1 : 0
  tm.flush()
} else {
  const Database = require(path.join(root, 'target', 'bench-node', 'node_modules', 'better-sqlite3'))
  const db = new Database(path.join(d, 'plain.db'), { readonly: true })
  const stmt = db.prepare('SELECT owner, scopes FROM k WHERE h = ?')
  for (const k of keys) valid += stmt.get(crypto.createHash('sha256').update(k).digest()) ? 1 : 0
}
const s = fs.readFileSync('/proc/self/status', 'utf8')
const kb = (name) => Number(new RegExp(name + ':\\s+(\\d+)').exec(s)[1]) / 1024
console.log(JSON.stringify({ valid, VmRSS: kb('VmRSS'), VmHWM: kb('VmHWM') }))
"""


def run(cmd: list[str]) -> dict:
    """The child's report."""
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    d = os.path.join(ROOT, f"keys-v{SCHEMA_VERSION}-{n}")
    if not os.path.exists(os.path.join(d, "keys.txt")):
        print(f"  (no database of {n} keys: run bench/keys_sweep_python.py {n} first)")
        return
    root = os.path.join(HERE, "..")
    print(f"memory after verifying each of {n:,} keys once, default options (MB: resident / peak)")
    print(f"  {'binding':<8} {'irontoken':>16} {'by hand':>16} {'ratio (resident)':>17}")
    for binding, child in (
        ("Python", lambda kind: [sys.executable, "-c", PY_CHILD, kind, d]),
        ("Node", lambda kind: ["node", "-e", NODE_CHILD, kind, d, root]),
    ):
        ours, theirs = run(child("irontoken")), run(child("plain"))
        assert ours["valid"] == theirs["valid"] == n, (ours, theirs)
        ratio = ours["VmRSS"] / theirs["VmRSS"]
        print(
            f"  {binding:<8} {ours['VmRSS']:>7.0f} / {ours['VmHWM']:<6.0f} "
            f"{theirs['VmRSS']:>7.0f} / {theirs['VmHWM']:<6.0f} {ratio:>15.2f}x"
        )


if __name__ == "__main__":
    main()
