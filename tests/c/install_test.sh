#!/usr/bin/env bash
# `make install` into a scratch DESTDIR, then a C program built only through
# pkg-config, against the shared library (run through its SONAME) and,
# with --static, against the static one.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v pkg-config >/dev/null; then
  echo "skipped: no pkg-config on this machine (make install itself is not tested)"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
make --no-print-directory install DESTDIR="$work/root" PREFIX=/opt/itk >/dev/null
lib="$work/root/opt/itk/lib"
soname=$(readelf -d "$lib/libirontoken.so" | sed -n 's/.*SONAME.*\[\(.*\)\].*/\1/p')
test "$soname" = "libirontoken.so.$(sed -n 's/^version = "\([0-9]*\)\..*/\1/p' Cargo.toml | head -1)" \
  || { echo "unexpected SONAME: $soname"; exit 1; }
test -L "$lib/libirontoken.so" && test -L "$lib/libirontoken.so.${soname##*.so.}"
cat > "$work/use.c" <<'C'
#include <irontoken.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    itk_manager *m = NULL;
    char *key = NULL;
    itk_verify_reason reason;
    if (itk_manager_open(":memory:", NULL, &m) != ITK_STATUS_OK) return 1;
    if (itk_key_create(m, "{\"owner\": \"c\"}", &key, NULL) != ITK_STATUS_OK) return 2;
    if (itk_key_verify(m, key, NULL, 0, &reason, NULL) != ITK_STATUS_OK) return 3;
    printf("%s\n", reason == ITK_VERIFY_REASON_VALID ? "VALID" : "refused");
    itk_string_free(key);
    itk_manager_free(m);
    return reason == ITK_VERIFY_REASON_VALID ? 0 : 4;
}
C
# The .pc file names /opt/itk; point pkg-config at the staged copy.
export PKG_CONFIG_PATH="$lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$work/root"
cc -std=c11 -Wall -Werror "$work/use.c" $(pkg-config --cflags --libs irontoken) -o "$work/use_shared"
LD_LIBRARY_PATH="$lib" "$work/use_shared" | grep -qx VALID
cc -std=c11 -Wall -Werror "$work/use.c" $(pkg-config --cflags irontoken) "$lib/libirontoken.a" \
  $(pkg-config --libs-only-other --libs-only-l --static irontoken | sed 's/-lirontoken//') -o "$work/use_static"
"$work/use_static" | grep -qx VALID
! ldd "$work/use_static" | grep -q irontoken
echo "install: SONAME $soname, shared and static builds through pkg-config run"
