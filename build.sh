#!/usr/bin/env bash
# build.sh — builds, demonstrates and tests any.
#
#   ./build.sh setup   install what this machine lacks (wasm target, wasm-bindgen-cli,
#                      Python test packages; Chromium and the X desktop tools of the
#                      headed tests via apt when run as root)
#   ./build.sh build   build the `any` binary and the extension into dist/extension
#   ./build.sh demo    build, then run the demo: server, headless Chromium with the
#                      extension, a call on a bundled page, the result printed
#   ./build.sh test    build, then run every test (Rust, Python, end to end)
set -euo pipefail
cd "$(dirname "$0")"

# Must equal the `wasm-bindgen = "=…"` pin in Cargo.toml.
WASM_BINDGEN_VERSION=0.2.130
DIST=dist/extension
ANY=target/release/any

say() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }
die() { printf 'build.sh: %s\n' "$*" >&2; exit 1; }

ensure_wasm_toolchain() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "installing the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  if [[ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]]; then
    say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 2 minutes, once)"
    # Not --locked: the registry here lacks one locked transitive version.
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
}

chromium_path() {
  local c
  for c in chromium chromium-browser google-chrome; do
    if command -v "$c" >/dev/null; then command -v "$c"; return 0; fi
  done
  return 1
}

ensure_chromium() {
  chromium_path >/dev/null && return 0
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing Chromium from apt"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    die "Chromium is needed: install it (Debian/Ubuntu: sudo apt-get install chromium)"
  fi
}

# The headed tests (tests/test_desktop.py) run Chromium on an X server of their own, with
# a window manager, and read the windows' state with xdotool, xprop and wmctrl.
DESKTOP_TOOLS=(Xvfb openbox xdotool xprop wmctrl)
DESKTOP_PACKAGES=(xvfb openbox xdotool x11-utils wmctrl)

ensure_desktop_tools() {
  local t missing=0
  for t in "${DESKTOP_TOOLS[@]}"; do command -v "$t" >/dev/null || missing=1; done
  [[ $missing == 0 ]] && return 0
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    say "installing the X desktop tools for the headed tests"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${DESKTOP_PACKAGES[@]}" >/dev/null
  else
    say "the headed desktop tests will be skipped: install ${DESKTOP_PACKAGES[*]} (e.g. sudo apt-get install ${DESKTOP_PACKAGES[*]})"
  fi
}

ensure_python_packages() {
  # Cheap when everything is present; installs what a requirement added since lacks.
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r tests/requirements.txt
}

setup() {
  ensure_wasm_toolchain
  ensure_chromium
  ensure_desktop_tools
  ensure_python_packages
}

build() {
  ensure_wasm_toolchain
  say "building the any binary"
  cargo build --release --bin any --bin fake-extension
  say "building the extension"
  cargo build --profile wasm --target wasm32-unknown-unknown -p any-ext-core
  rm -rf "$DIST"
  mkdir -p "$DIST"
  cp -r extension/. "$DIST/"
  # Without the name and producers sections the wasm is 316 kB instead of 430 kB
  # (bench/README.md); a panic's stack trace then lacks function names.
  wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section \
    --out-dir "$DIST/wasm" target/wasm32-unknown-unknown/wasm/any_ext_core.wasm
  say "built $ANY and $DIST ($(du -k "$DIST/wasm/any_ext_core_bg.wasm" | cut -f1) kB wasm)"
}

demo() {
  build
  ensure_chromium
  python3 examples/demo.py --any "$ANY" --extension "$DIST"
}

test_all() {
  build
  ensure_chromium
  ensure_python_packages
  say "Rust tests"
  cargo test --workspace --release
  say "Python and end-to-end tests"
  python3 -m pytest -q
}

case "${1:-}" in
  setup) setup ;;
  build) build ;;
  demo) demo ;;
  test) test_all ;;
  *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
