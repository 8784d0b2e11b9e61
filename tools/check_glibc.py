#!/usr/bin/env python3
"""Fails if an ELF file needs a glibc symbol version newer than --floor.

    tools/check_glibc.py --floor 2.17 FILE...

Reads the versioned dynamic symbols with `objdump -T` (binutils) and prints
the highest GLIBC_x.y each file needs.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys


def needed(path: str) -> tuple[int, ...]:
    out = subprocess.run(["objdump", "-T", path], check=True, capture_output=True, text=True).stdout
    versions = {tuple(int(p) for p in v.split(".")) for v in re.findall(r"\bGLIBC_([0-9]+(?:\.[0-9]+)+)\b", out)}
    return max(versions, default=(0,))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--floor", required=True)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    floor = tuple(int(p) for p in args.floor.split("."))
    bad = 0
    for f in args.files:
        v = needed(f)
        shown = ".".join(map(str, v)) if v != (0,) else "none"
        ok = v <= floor
        bad += not ok
        print(f"  {'ok ' if ok else 'TOO NEW'} GLIBC_{shown:<6} {f}")
    if bad:
        print(f"{bad} file(s) need a glibc newer than {args.floor}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
