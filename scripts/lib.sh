# scripts/lib.sh - shared helpers for the zbridge scripts. Source it, do not run it:
#     . "$(dirname "$0")/lib.sh"
# Sourcing cds to the repository root, so every script works from any directory.

ZB_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ZB_ROOT" || exit 1

# Debian packages needed to build zbridge and run its tests.
ZB_PACKAGES=(meson ninja-build pkg-config gcc libzmq3-dev libsodium-dev libczmq-dev libmsgpack-dev
             libjson-c-dev libcmocka-dev liblmdb-dev libmicrohttpd-dev python3-zmq python3-msgpack python3-pytest
             clang libclang-rt-14-dev)

# Python with the test modules (python3-zmq, python3-msgpack, python3-pytest).
# Another python3 first on PATH may lack them, so always use Debian's.
ZB_PYTHON=/usr/bin/python3

zb_log() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; }

# The packages of ZB_PACKAGES that are not installed, space separated.
zb_missing_packages() {
    local pkg status missing=()
    for pkg in "${ZB_PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
        [ "$status" = "installed" ] || missing+=("$pkg")
    done
    echo "${missing[*]}"
}

# Install what is missing. As root: apt-get update once, then install.
# Otherwise print the exact command to run and exit 1.
zb_deps() {
    local missing
    missing="$(zb_missing_packages)"
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" -eq 0 ]; then
        zb_log "installing missing packages: $missing"
        apt-get update || return 1
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing || return 1
    else
        zb_log "missing packages: $missing"
        echo "sudo apt-get install -y $missing" >&2
        exit 1
    fi
}

# Configure a build directory once, then build everything in it.
#   zb_build                       build/ with the project's defaults
#   zb_build DIR [SETUP_OPTION...] DIR, set up with "meson setup DIR SETUP_OPTION..."
zb_build() {
    local dir="${1:-build}"
    [ $# -gt 0 ] && shift
    if [ ! -f "$dir/build.ninja" ] || [ ! -d "$dir/meson-private" ]; then
        meson setup "$dir" "$@" || return 1
    fi
    ninja -C "$dir"
}

# The sanitized build: AddressSanitizer (with LeakSanitizer) and UBSan.
ZB_ASAN_BUILD=build-asan
ZB_ASAN_SETUP=(-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug -Db_lto=false)

zb_build_asan() {
    zb_build "$ZB_ASAN_BUILD" "${ZB_ASAN_SETUP[@]}"
}

# The fuzz build: clang with ASan and UBSan, and the libFuzzer targets of
# tests/fuzz (meson option "fuzz"). Only those are built there (alias "fuzz");
# "meson test --suite fuzz" runs them (tests/fuzz/meson.build).
ZB_FUZZ_BUILD=build-fuzz
ZB_FUZZ_SETUP=(-Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false -Db_lto=false)

zb_build_fuzz() {
    if [ ! -f "$ZB_FUZZ_BUILD/build.ninja" ] || [ ! -d "$ZB_FUZZ_BUILD/meson-private" ]; then
        CC=clang meson setup "$ZB_FUZZ_BUILD" "${ZB_FUZZ_SETUP[@]}" || return 1
    fi
    ninja -C "$ZB_FUZZ_BUILD" fuzz
}

# Export the sanitizer options that make every report fatal: a leak or an
# ASan error aborts the program, a UBSan "runtime error:" stops it with a stack
# trace. Options already in the environment come last, so they win.
zb_sanitizer_env() {
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
}

# A free TCP port on 127.0.0.1 (bind port 0, let the OS choose).
zb_free_port() {
    "$ZB_PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
