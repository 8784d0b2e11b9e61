#!/usr/bin/env python3
"""Checks that core's modules import one way: each module may use only
modules of its own layer or below (the picture in ARCHITECTURE.md,
"Layers"). Prints the offending edges and exits 1 if any module reaches
above its layer, if a module is in no layer, or if a layer names a module
that does not exist.

A reference is every `crate::`, `super::` and `self::` path of a module
(in `use` trees too, braces nested), resolved to the module that defines
the item: a name re-exported with `pub use` (`crate::TokenManager` is
`manager`'s, `crate::keys::LegacyKeys` is `model::keys`'s) counts for the
module it comes from, so `impl crate::TokenManager` in a domain module is
an arrow down to `manager`, and a re-export cannot hide an arrow up."""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "core", "src")

# Lowest first. A module is matched by its longest listed name.
LAYERS = [
    ["error"],
    ["clock", "fork", "model", "ratelimit", "metrics", "signals", "alerts", "http", "jwt::verifying_key", "jwt::keyring", "jwt::material",
     "jwt::sign", "jwt::verify", "jwt::remote", "jwt"],
    ["store"],
    ["store::sqlite", "store::postgres", "store::redis"],
    ["manager"],
    ["keys", "sessions", "usage", "jwt::managed", "audit_trail", "capability", "replay", "refresh"],
    ["lib"],
]


def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, "::")
    if rel.endswith("::mod"):
        rel = rel[: -len("::mod")]
    return rel


def files():
    for dirpath, _, names in os.walk(ROOT):
        for f in sorted(names):
            if f.endswith(".rs"):
                yield os.path.join(dirpath, f)


def layer(module):
    best = None
    for i, names in enumerate(LAYERS):
        for n in names:
            if (module == n or module.startswith(n + "::")) and (best is None or len(n) > best[1]):
                best = (i, len(n))
    return None if best is None else best[0]


def strip(text):
    """The code of a file without comments, string literals and its unit tests."""
    text = text.split("#[cfg(test)]\nmod tests")[0]
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def use_paths(tree, prefix=()):
    """The paths of a `use` tree (`a::{b, c::{d, e as f}}`), each a tuple;
    `self` inside braces names the prefix itself, `*` stays as a segment."""
    tree = tree.strip()
    out = []
    depth, start, parts = 0, 0, []
    if "{" not in tree:
        path = tuple(s.strip() for s in re.sub(r"\s+as\s+\w+$", "", tree).split("::") if s.strip())
        if path == ("self",):
            return [prefix]
        return [prefix + path]
    head, _, rest = tree.partition("{")
    head = tuple(s.strip() for s in head.split("::") if s.strip())
    body = rest[: rest.rindex("}")]
    for i, ch in enumerate(body):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    for p in parts:
        if p.strip():
            out.extend(use_paths(p, prefix + head))
    return out


class Crate:
    def __init__(self):
        self.modules = {"lib"}
        self.text = {}
        for path in files():
            m = module_of(path)
            self.modules.add(m)
            self.text[m] = strip(open(path, encoding="utf-8").read())
        # (module, name) -> absolute path it re-exports; (module, "*") -> glob sources
        self.exports = {}
        self.globs = {}
        for m, text in self.text.items():
            for stmt in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", text):
                for path in use_paths(stmt.group(1)):
                    absolute = self.absolute(path, m)
                    if absolute is None:
                        continue
                    if absolute[-1] == "*":
                        self.globs.setdefault(m, []).append(absolute[:-1])
                    else:
                        alias = re.search(r"\bas\s+(\w+)", stmt.group(1))
                        self.exports[(m, absolute[-1])] = absolute

    def absolute(self, path, me):
        """`path` as written in module `me`, from the crate root (a tuple of
        segments), or None if it does not start at crate, super or self, or
        at one of `me`'s child modules."""
        if not path:
            return None
        here = [] if me == "lib" else me.split("::")
        first = path[0]
        if first == "crate":
            return tuple(path[1:])
        if first in ("self", "super"):
            base = list(here)
            rest = list(path)
            while rest and rest[0] in ("self", "super"):
                if rest.pop(0) == "super":
                    base = base[:-1]
            return tuple(base + rest)
        child = "::".join(here + [first]) if here else first
        if child in self.modules:
            return tuple(here + list(path))
        return None

    def owner(self, path, seen=()):
        """The module that defines the item at absolute `path`."""
        segs = list(path)
        mod = "lib"
        i = 0
        while i < len(segs):
            cand = "::".join(segs[: i + 1])
            if cand in self.modules:
                mod = cand
                i += 1
            else:
                break
        if i == len(segs):
            return mod
        name = segs[i]
        key = (mod, name)
        if key in self.exports and key not in seen:
            return self.owner(self.exports[key] + tuple(segs[i + 1:]), seen + (key,))
        for source in self.globs.get(mod, []):
            if re.search(rf"\b(?:struct|enum|fn|trait|type|const|static|mod)\s+{re.escape(name)}\b",
                         self.text.get("::".join(source), "")):
                return self.owner(source + tuple(segs[i:]), seen + (key,))
        return mod

    def references(self, me):
        text = self.text[me]
        # A `pub use` only passes a name on: the arrow is counted where the
        # name is used (resolved to its home), not at the facade.
        text = re.sub(r"\bpub(?:\([^)]*\))?\s+use\s+[^;]+;", "", text)
        paths = []
        for stmt in re.finditer(r"\buse\s+([^;]+);", text):
            paths.extend(use_paths(stmt.group(1)))
        body = re.sub(r"\buse\s+[^;]+;", "", text)
        for m in re.finditer(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)", body):
            paths.append((m.group(1),) + tuple(m.group(2).split("::")[1:]))
        out = set()
        for p in paths:
            absolute = self.absolute(p, me)
            if absolute is None:
                continue
            absolute = tuple(s for s in absolute if s != "*")
            out.add(self.owner(absolute))
        return out


def main():
    crate = Crate()
    bad = []
    for names in LAYERS:
        for n in names:
            if n not in crate.modules:
                bad.append(f"tools/layers.py lists {n}, which is not a module of core")
    for me in sorted(crate.modules):
        mine = layer(me)
        if mine is None:
            bad.append(f"{me}: not in any layer (add it to tools/layers.py)")
            continue
        for ref in sorted(crate.references(me)):
            target = layer(ref)
            if target is not None and target > mine:
                bad.append(f"{me} (layer {mine}) uses {ref} (layer {target})")
    for b in bad:
        print(b)
    if bad:
        sys.exit(1)
    print(f"layers: {len(crate.modules)} modules of core import only their own layer or below "
          f"(re-exports and impl blocks resolved)")


main()
