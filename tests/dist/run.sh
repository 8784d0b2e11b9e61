#!/usr/bin/env bash
# make test-dist: what `make dist` wrote, installed the way users install it,
# from dist/ only, in scratch directories outside the repository, with cargo
# and rustc off PATH (except for the sdist, which builds from source):
#   - every shipped ELF file needs at most GLIBC_$GLIBC_FLOOR, the wheel is
#     what auditwheel says its tag is;
#   - Python: a fresh venv installs the wheel and runs smoke.py; another
#     builds the sdist and runs it too;
#   - Node: a fresh npm project installs the main and the platform tarball,
#     runs the smoke as CommonJS, ESM and TypeScript --strict, and a platform
#     without an addon gets an error naming it;
#   - C: a program builds through pkg-config from the unpacked prefix, shared
#     and --static, and runs; the CLI tarball's binary creates and verifies;
#   - the release workflow validates against the GitHub workflow schema.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/tests/dist"
DIST="$ROOT/dist"
TOOLS="$ROOT/target/dist-tools/bin"
GLIBC_FLOOR=${GLIBC_FLOOR:-2.17}
PYTHON=${PYTHON:-python3}

shopt -s nullglob
wheels=("$DIST"/irontoken-*-abi3-*.whl)
sdists=("$DIST"/irontoken-[0-9]*.tar.gz)
mains=("$DIST"/irontoken-[0-9]*.tgz)
platforms=("$DIST"/irontoken-linux-x64-gnu-*.tgz)
clis=("$DIST"/irontoken-cli-*.tar.gz)
clibs=("$DIST"/libirontoken-*.tar.gz)
shopt -u nullglob
for v in wheels sdists mains platforms clis clibs; do
  declare -n arr=$v
  [ ${#arr[@]} -eq 1 ] || { echo "test-dist: expected one $v file in dist/, found ${#arr[@]} (run make dist)"; exit 1; }
done

# A PATH without cargo or rustc (rustup's proxies live in ~/.cargo/bin).
NO_RUST_PATH=$(tr ':' '\n' <<<"$PATH" | while read -r d; do
  [ -n "$d" ] && [ ! -e "$d/cargo" ] && [ ! -e "$d/rustc" ] && printf '%s:' "$d"
done)
NO_RUST_PATH=${NO_RUST_PATH%:}
PYTHON_BIN=$(command -v "$PYTHON")
# pyenv shims find their interpreter through PATH: resolve the real one now.
PYTHON_REAL=$("$PYTHON_BIN" -c 'import sys; print(sys.executable)')

work=$(mktemp -d /tmp/irontoken-dist.XXXXXX)
trap 'rm -rf "$work"' EXIT
step() { printf '\n== %s\n' "$*"; }
norust() { env PATH="$NO_RUST_PATH" "$@"; }
! norust bash -c 'command -v cargo || command -v rustc' >/dev/null || { echo "cargo still on PATH"; exit 1; }

step "unpack"
mkdir -p "$work/wheel" "$work/npm-platform" "$work/cli" "$work/c"
"$PYTHON_REAL" -m zipfile -e "${wheels[0]}" "$work/wheel"
tar xzf "${platforms[0]}" -C "$work/npm-platform"
tar xzf "${clis[0]}" -C "$work/cli"
tar xzf "${clibs[0]}" -C "$work/c"
cli_bin=$(echo "$work"/cli/*/irontoken)
cprefix=$(echo "$work"/c/libirontoken-*)

step "glibc floor: every shipped ELF file needs at most GLIBC_$GLIBC_FLOOR"
"$PYTHON_REAL" "$ROOT/tools/check_glibc.py" --floor "$GLIBC_FLOOR" \
  "$work"/wheel/irontoken/*.so "$work"/npm-platform/package/*.node "$cli_bin" "$cprefix"/lib/libirontoken.so.*.*.*
step "auditwheel"
norust "$TOOLS/auditwheel" show "${wheels[0]}" | tee "$work/auditwheel.txt"
tag=$(basename "${wheels[0]}" .whl | awk -F- '{print $NF}')
tr '\n' ' ' <"$work/auditwheel.txt" | grep -q 'consistent with the following platform tag: *"manylinux_2_17_x86_64"' ||
  { echo "auditwheel does not agree with the wheel's tag $tag"; exit 1; }

step "Python: wheel into a fresh venv (no cargo, no index)"
"$PYTHON_REAL" -m venv "$work/venv"
norust "$work/venv/bin/pip" install --quiet --disable-pip-version-check --no-index "${wheels[0]}"
(cd "$work" && norust "$work/venv/bin/python" "$HERE/smoke.py" "$work/keys.db")
norust "$work/venv/bin/python" - <<'PY'
from importlib.metadata import metadata
m = metadata("irontoken")
for field in ("License-Expression", "Requires-Python", "Description-Content-Type"):
    assert m[field], field
assert m["Requires-Python"] == ">=3.9", m["Requires-Python"]
assert m.get_all("Project-URL"), "no project URLs"
assert "irontoken" in m["Description"] or m.get_payload(), "no readme"
PY

step "Python: sdist builds from source in a fresh venv (Rust + a C compiler)"
"$PYTHON_REAL" -m venv "$work/venv-sdist"
# The build is a release build of the core: cold on a fresh machine.
CARGO_TARGET_DIR=${SDIST_TARGET_DIR:-$ROOT/target/sdist-check} \
  "$work/venv-sdist/bin/pip" install --quiet --disable-pip-version-check "${sdists[0]}"
(cd "$work" && norust "$work/venv-sdist/bin/python" "$HERE/smoke.py")

step "Node: npm project installs the packed tarballs"
mkdir -p "$work/npm"
cp "$HERE/smoke.cjs" "$HERE/smoke.mjs" "$HERE/smoke.ts" "$work/npm/"
cd "$work/npm"
cat > package.json <<'JSON'
{ "name": "dist-smoke", "version": "1.0.0", "private": true }
JSON
norust npm install --no-audit --no-fund --loglevel=error "${platforms[0]}" "${mains[0]}"
test -f node_modules/@irontoken/linux-x64-gnu/package.json
norust node smoke.cjs
norust node smoke.mjs
norust npm install --no-audit --no-fund --loglevel=error typescript@5 @types/node@20
cat > tsconfig.json <<'JSON'
{ "compilerOptions": { "strict": true, "module": "commonjs", "target": "es2022", "esModuleInterop": true,
  "types": ["node"], "outDir": "out", "skipLibCheck": false }, "files": ["smoke.ts"] }
JSON
norust npx --no-install tsc -p tsconfig.json
norust node out/smoke.js
for fake in "platform freebsd" "arch arm64"; do
  set -- $fake
  out=$(norust node -e "Object.defineProperty(process, '$1', { value: '$2' }); require('irontoken')" 2>&1) && {
    echo "require('irontoken') with process.$1 = $2 loaded"; exit 1; }
  grep -q "no native addon for this platform" <<<"$out" && grep -q "make node" <<<"$out" ||
    { echo "unhelpful loader error for process.$1 = $2:"; echo "$out"; exit 1; }
  echo "loader with process.$1 = $2: $(grep -o 'no native addon for this platform, [a-z0-9-]*' <<<"$out")"
done
cd "$work"

step "C: pkg-config from the unpacked prefix, shared and static"
export PKG_CONFIG_PATH="$cprefix/lib/pkgconfig"
cc -std=c11 -Wall -Werror "$HERE/use.c" $(pkg-config --cflags --libs irontoken) -o "$work/use_shared"
norust env LD_LIBRARY_PATH="$cprefix/lib" "$work/use_shared"
readelf -d "$work/use_shared" | grep -q 'NEEDED.*libirontoken.so.[0-9]' || { echo "not linked by SONAME"; exit 1; }
cc -std=c11 -Wall -Werror "$HERE/use.c" $(pkg-config --cflags irontoken) "$cprefix/lib/libirontoken.a" \
  $(pkg-config --libs-only-l --static irontoken | sed 's/-lirontoken//') -o "$work/use_static"
norust "$work/use_static"
! ldd "$work/use_static" | grep -q irontoken

step "CLI tarball"
norust "$cli_bin" --version
key=$(norust "$cli_bin" --db "$work/cli.db" --json keys create --owner dist --scope read |
  "$PYTHON_REAL" -c 'import json,sys; print(json.load(sys.stdin)["key"])')
norust env IRONTOKEN_KEY="$key" "$cli_bin" --db "$work/cli.db" keys verify --scope read
cli_dir=$(dirname "$cli_bin")
for f in completions/irontoken.bash completions/_irontoken completions/irontoken.fish man/man1/irontoken.1 man/man1/irontoken-keys-create.1; do
  test -s "$cli_dir/$f" || { echo "CLI tarball: $f is missing"; exit 1; }
done
# The shipped bash completion loads in an interactive bash and completes a subcommand.
PATH="$cli_dir:$PATH" bash --norc --noprofile -i -c \
  "source '$cli_dir/completions/irontoken.bash'; COMP_WORDS=(irontoken ke); COMP_CWORD=1; _irontoken irontoken ke irontoken; echo \"\${COMPREPLY[*]}\"" 2>/dev/null | grep -qx keys
man -l "$cli_dir/man/man1/irontoken.1" >/dev/null 2>&1 || grep -q '^\.TH' "$cli_dir/man/man1/irontoken.1"

step "release workflow"
"$TOOLS/check-jsonschema" --builtin-schema vendor.github-workflows "$ROOT/.github/workflows/release.yml"

printf '\ntest-dist: every artifact in dist/ installs and runs outside the repository\n'
