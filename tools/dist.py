#!/usr/bin/env python3
"""Packs what `make dist` ships from binaries already built for one target.

    tools/dist.py --target x86_64-unknown-linux-gnu --build-dir target/x86_64-unknown-linux-gnu/release

writes into dist/:
  irontoken-<version>.tgz                      the npm main package (JavaScript, loader, types)
  irontoken-<platform>-<version>.tgz           the npm package with this platform's addon
  irontoken-cli-<version>-<target>.tar.gz      the CLI binary, shell completions, man pages
  libirontoken-<version>-<target>.tar.gz       the C library as an installed prefix
                                               (relocatable irontoken.pc)

The npm platform table lives in node/binding.js (the loader) so that the
loader, the packages and the release workflow name the same platforms. The
Python wheel and sdist are written by maturin directly (see the Makefile).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE = ROOT / "node"
LICENSES = ["LICENSE", "LICENSE-APACHE", "LICENSE-MIT"]


def version() -> str:
    m = re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M)
    assert m, "no version in Cargo.toml"
    return m.group(1)


def platforms() -> dict[str, dict[str, str | None]]:
    out = subprocess.run(
        ["node", "-p", "JSON.stringify(require('./node/binding.js').PLATFORMS)"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def npm_pack(stage: Path, dest: Path) -> Path:
    out = subprocess.run(
        ["npm", "pack", "--json", "--pack-destination", str(dest)],
        cwd=stage, check=True, capture_output=True, text=True,
    ).stdout
    return dest / json.loads(out)[0]["filename"]


def copy_licenses(to: Path) -> None:
    for name in LICENSES:
        shutil.copy2(ROOT / name, to / name)


def node_main(dest: Path, ver: str, table: dict) -> Path:
    """The `irontoken` package: JavaScript only, one optional dependency per platform."""
    pkg = json.loads((NODE / "package.json").read_text())
    for field in ("devDependencies", "scripts"):
        pkg.pop(field, None)
    pkg["version"] = ver
    pkg["optionalDependencies"] = {f"@irontoken/{name}": ver for name in table}
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp)
        for name in pkg["files"] + ["README.md"]:
            if (NODE / name).is_dir():  # lib/: the JavaScript modules
                shutil.copytree(NODE / name, stage / name, ignore=shutil.ignore_patterns("*.d.ts.map"))
            else:
                shutil.copy2(NODE / name, stage / name)
        copy_licenses(stage)
        (stage / "package.json").write_text(json.dumps(pkg, indent=2) + "\n")
        return npm_pack(stage, dest)


def node_platform(dest: Path, ver: str, name: str, spec: dict, addon: Path) -> Path:
    """`@irontoken/<platform>`: the addon alone, with os/cpu/libc so npm installs it only there."""
    main = json.loads((NODE / "package.json").read_text())
    binary = f"irontoken.{name}.node"
    pkg = {
        "name": f"@irontoken/{name}",
        "version": ver,
        "description": f"The native addon of irontoken for {name}",
        "main": binary,
        "files": [binary],
        "license": main["license"],
        "os": [spec["os"]],
        "cpu": [spec["cpu"]],
        "engines": main["engines"],
    }
    if spec.get("libc"):
        pkg["libc"] = [spec["libc"]]
    if "repository" in main:
        pkg["repository"] = main["repository"]
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp)
        shutil.copy2(addon, stage / binary)
        copy_licenses(stage)
        (stage / "README.md").write_text(
            f"# @irontoken/{name}\n\nThe prebuilt native addon of "
            f"[irontoken](https://www.npmjs.com/package/irontoken) for {name} "
            f"(Rust target `{spec['target']}`). Install `irontoken`; npm picks this "
            "package when it matches the machine.\n"
        )
        (stage / "package.json").write_text(json.dumps(pkg, indent=2) + "\n")
        return npm_pack(stage, dest)


def shared_library(build: Path, stem: str, os_name: str) -> Path:
    """Where cargo leaves the cdylib `stem` for an OS (lib<stem>.so, lib<stem>.dylib, <stem>.dll)."""
    name = {"win32": f"{stem}.dll", "darwin": f"lib{stem}.dylib"}.get(os_name, f"lib{stem}.so")
    return build / name


def tar_dir(src: Path, out: Path) -> Path:
    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(out, "w:gz") as tar:
        tar.add(src, arcname=src.name, filter=clean)
    return out


def cli(dest: Path, ver: str, target: str, build: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp) / f"irontoken-cli-{ver}-{target}"
        top.mkdir()
        binary = top / "irontoken"
        shutil.copy2(build / "irontoken", binary)
        shutil.copy2(ROOT / "README.md", top / "README.md")
        copy_licenses(top)
        # Shell completions and man pages, written by the binary itself (the
        # dist target is this machine's architecture).
        comp = top / "completions"
        comp.mkdir()
        for shell, name in [("bash", "irontoken.bash"), ("zsh", "_irontoken"), ("fish", "irontoken.fish")]:
            script = subprocess.run([str(binary), "completions", shell], check=True, capture_output=True).stdout
            (comp / name).write_bytes(script)
        subprocess.run([str(binary), "man-pages", str(top / "man" / "man1")], check=True)
        return tar_dir(top, dest / f"{top.name}.tar.gz")


def c_library(dest: Path, ver: str, target: str, build: Path) -> Path:
    """The prefix `make install` would write, with an irontoken.pc that finds its own directory."""
    major = ver.split(".")[0]
    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp) / f"libirontoken-{ver}-{target}"
        lib, inc, pc = top / "lib", top / "include", top / "lib" / "pkgconfig"
        for d in (lib, inc, pc):
            d.mkdir(parents=True)
        shutil.copy2(build / "libirontoken.so", lib / f"libirontoken.so.{ver}")
        os.symlink(f"libirontoken.so.{ver}", lib / f"libirontoken.so.{major}")
        os.symlink(f"libirontoken.so.{major}", lib / "libirontoken.so")
        shutil.copy2(build / "libirontoken.a", lib / "libirontoken.a")
        shutil.copy2(ROOT / "include" / "irontoken.h", inc / "irontoken.h")
        template = (ROOT / "bindings" / "c" / "irontoken.pc.in").read_text()
        (pc / "irontoken.pc").write_text(
            template.replace("@PREFIX@", "${pcfiledir}/../..")
            .replace("@LIBDIR@", "${prefix}/lib")
            .replace("@INCLUDEDIR@", "${prefix}/include")
            .replace("@VERSION@", ver)
        )
        copy_licenses(top)
        return tar_dir(top, dest / f"{top.name}.tar.gz")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", required=True, help="Rust target triple the binaries were built for")
    ap.add_argument("--build-dir", required=True, type=Path, help="where cargo left them")
    ap.add_argument("--dist", default=ROOT / "dist", type=Path)
    ap.add_argument("--only", choices=["node-main", "platform", "cli", "c"], action="append")
    args = ap.parse_args()
    ver, table = version(), platforms()
    names = [n for n, s in table.items() if s["target"] == args.target]
    if len(names) != 1:
        print(f"{args.target} is not a platform of node/binding.js", file=sys.stderr)
        return 2
    args.dist.mkdir(parents=True, exist_ok=True)
    build = args.build_dir.resolve()
    only = set(args.only or ["node-main", "platform", "cli", "c"])
    made = []
    if "node-main" in only:
        made.append(node_main(args.dist, ver, table))
    if "platform" in only:
        spec = table[names[0]]
        addon = shared_library(build, "irontoken_node", spec["os"])
        made.append(node_platform(args.dist, ver, names[0], spec, addon))
    if "cli" in only:
        made.append(cli(args.dist, ver, args.target, build))
    if "c" in only:
        made.append(c_library(args.dist, ver, args.target, build))
    for p in made:
        print(f"  {p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
