"""Bulk key creation into a growing store: keys/s per batch of 50 000.

`create_keys` of N keys (default 1 000 000) in batches of 50 000 into one
file (durability normal), with the page cache given on the command line
(default: the manager's default). Prints the overall rate and each
batch's. The goal of issue 10 is 50 000 keys/s for the bulk path.
Run: `.venv/bin/python bench/bulk_python.py [N] [page_cache_mib]`.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time

from irontoken import TokenManager

BATCH = 50_000


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    opts = {"page_cache_mib": int(sys.argv[2])} if len(sys.argv) > 2 else {}
    d = tempfile.mkdtemp(prefix="itk-bulk-")
    try:
        tm = TokenManager(os.path.join(d, "k.db"), durability="normal", **opts)
        rates = []
        t0 = time.perf_counter()
        for _ in range(0, n, BATCH):
            t = time.perf_counter()
            tm.create_keys([{"owner": f"o{i % 1000}", "scopes": ["read"]} for i in range(BATCH)])
            rates.append(BATCH / (time.perf_counter() - t))
        total = len(rates) * BATCH / (time.perf_counter() - t0)
        tm.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print(f"create_keys, {len(rates) * BATCH:,} keys in batches of {BATCH:,}: {total:,.0f} keys/s overall")
    print("  per batch (k keys/s): " + " ".join(f"{r / 1000:.0f}" for r in rates))


if __name__ == "__main__":
    main()
