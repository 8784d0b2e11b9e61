#!/usr/bin/env python3
"""Checks that core's modules import one way: each module may use only
modules of its own layer or below (DESIGN.md "Storage"). Prints the
offending edges and exits 1 if any module reaches above its layer."""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "core", "src")

# Lowest first. A module is matched by its longest listed prefix.
LAYERS = [
    ["error"],
    ["clock", "fork", "model", "ratelimit", "metrics", "signals", "validate", "jwt::crypto", "jwt::json",
     "jwt::keys", "jwt::material", "jwt::sign", "jwt::verify", "jwt::remote", "jwt"],
    ["store"],
    ["store::sqlite", "store::postgres", "store::redis"],
    ["manager"],
    ["keys", "sessions", "usage", "jwt::managed", "audit_trail", "limiter"],
    ["lib"],
]


def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, "::")
    if rel.endswith("::mod"):
        rel = rel[: -len("::mod")]
    return rel


def layer(module):
    best = None
    for i, names in enumerate(LAYERS):
        for n in names:
            if (module == n or module.startswith(n + "::")) and (best is None or len(n) > best[1]):
                best = (i, len(n))
    return None if best is None else best[0]


def references(text):
    text = re.sub(r"//[^\n]*", "", text)  # comments and doc comments
    out = set()
    for m in re.finditer(r"\bcrate::((?:[a-z_][a-z0-9_]*)(?:::[a-z_][a-z0-9_]*)*)", text):
        out.add(m.group(1))
    for m in re.finditer(r"\buse crate::\{([^}]*)\}", text):
        for part in m.group(1).split(","):
            part = part.strip().split("::")[0]
            if part and part[0].islower():
                out.add(part)
    return out


def main():
    bad = []
    for dirpath, _, files in os.walk(ROOT):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            me = module_of(path)
            mine = layer(me)
            if mine is None:
                bad.append(f"{me}: not in any layer (add it to tools/layers.py)")
                continue
            text = open(path, encoding="utf-8").read()
            # Unit tests may reach anywhere.
            text = text.split("#[cfg(test)]\nmod tests")[0]
            for ref in sorted(references(text)):
                target = layer(ref)
                if target is not None and target > mine:
                    bad.append(f"{me} (layer {mine}) uses crate::{ref} (layer {target})")
    for b in bad:
        print(b)
    if bad:
        sys.exit(1)
    print("layers: every module of core imports only its own layer or below")


main()
