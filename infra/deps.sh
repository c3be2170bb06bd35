#!/usr/bin/env bash
# Native build/test dependencies of the SAML crate, installed WITHOUT root.
#
#   eval "$(infra/deps.sh)"      # then cargo build / cargo test as usual
#
# Why:
#   * samael (SAML 2.0, default feature `xmlsec`) has a build script that runs
#     bindgen over `xmlsec1-config --cflags`. bindgen dlopens libclang (plus the
#     clang resource headers such as stddef.h). Debian bookworm images here have
#     libLLVM but not libclang, so we fetch libclang1-14 + libclang-common-14-dev.
#   * The tests sign SAML responses with the `xmlsec1` CLI: an independent C
#     implementation, so our verifier is never checked against itself.
#   * samael links libxmlsec1 and libxml2, and the SAML function OpenSSL, all
#     three carried statically: infra/xmlsec-static.sh builds them once from
#     source into $DEPS_DIR/xmlsec-static (section 2 below).
#
# How: missing pieces are fetched with `apt-get download` (no root needed) into
# $DEPS_DIR/debs and unpacked with `dpkg-deb -x` into $DEPS_DIR/root
# (DEPS_DIR defaults to ~/.cache/saas-platform/deps, outside the clone, so CI
# runs on the same machine reuse it). Nothing is installed system-wide.
# Whatever the system already provides is used as is and nothing is printed for it.
#
# Output: shell `export` lines on stdout (only those that are needed):
#   LIBCLANG_PATH + BINDGEN_EXTRA_CLANG_ARGS=-resource-dir=... (only for the
#   local libclang: it would not find its own stddef.h otherwise), PATH (the
#   static build's xmlsec1-config; the local xmlsec1 CLI), PKG_CONFIG_PATH (the
#   static build's .pc files), OPENSSL_DIR + OPENSSL_STATIC (its OpenSSL, for
#   openssl-sys) and LD_LIBRARY_PATH (only for missing runtime libs). Messages
#   go to stderr. Idempotent; when everything is present it runs no apt at all
#   and takes about 0.1 s.
#
# Env knob: DEPS_DIR.
set -euo pipefail

DEPS_DIR="${DEPS_DIR:-$HOME/.cache/saas-platform/deps}"
DEBS="$DEPS_DIR/debs"
ROOT="$DEPS_DIR/root"
MULTIARCH="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)"
LOCAL_LIB="$ROOT/usr/lib/$MULTIARCH"
LLVM_VER=14

log() { echo "deps.sh: $*" >&2; }

EXPORTS=()
add_path=()      # dirs to prepend to PATH
add_ld=()        # dirs to prepend to LD_LIBRARY_PATH
add_pkgconfig=() # dirs to prepend to PKG_CONFIG_PATH

# soname -> Debian package (bookworm), for runtime libs a local binary may lack.
pkg_for_soname() {
  case "$1" in
    libLLVM-14.so*) echo libllvm14 ;;
    libxmlsec1.so*) echo libxmlsec1 ;;
    libxmlsec1-openssl.so*) echo libxmlsec1-openssl ;;
    libxslt.so*) echo libxslt1.1 ;;
    libexslt.so*) echo libxslt1.1 ;;
    libxml2.so*) echo libxml2 ;;
    libicuuc.so.72*|libicudata.so.72*|libicui18n.so.72*) echo libicu72 ;;
    libltdl.so*) echo libltdl7 ;;
    libssl.so.3*|libcrypto.so.3*) echo libssl3 ;;
    libgcrypt.so*) echo libgcrypt20 ;;
    libstdc++.so*) echo libstdc++6 ;;
    *) return 1 ;;
  esac
}

# apt-get download PKG... into $DEBS, then unpack every new .deb into $ROOT.
# No root needed. If the package lists are empty/stale (fresh machine), an
# update is done: system-wide when root, else into a private lists dir.
APT_OPTS=()
fetch_debs() {
  mkdir -p "$DEBS" "$ROOT"
  log "downloading: $*"
  if ! (cd "$DEBS" && apt-get "${APT_OPTS[@]}" download "$@" >/dev/null 2>"$DEBS/.apt.err"); then
    log "apt-get download failed ($(grep -m1 '^E:' "$DEBS/.apt.err" || true)); refreshing package lists"
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq >&2
    else
      local st="$DEPS_DIR/apt"
      mkdir -p "$st/lists/partial" "$st/cache/archives/partial"
      APT_OPTS=(-o "Dir::State::Lists=$st/lists" -o "Dir::Cache=$st/cache" -o "Debug::NoLocking=1")
      apt-get "${APT_OPTS[@]}" update -qq >&2
    fi
    (cd "$DEBS" && apt-get "${APT_OPTS[@]}" download "$@" >/dev/null 2>"$DEBS/.apt.err") || {
      cat "$DEBS/.apt.err" >&2; log "cannot download $*"; exit 1; }
  fi
  local p deb
  for p in "$@"; do
    # apt-get download names files PKG_VERSION_ARCH.deb (':' escaped as %3a)
    for deb in "$DEBS/${p}"_*.deb; do
      [ -e "$deb" ] || continue
      [ -e "$deb.x" ] && continue
      dpkg-deb -x "$deb" "$ROOT"
      touch "$deb.x"
    done
  done
}

# Names of libraries that `ldd FILE` cannot resolve (with our local lib dir).
missing_libs() {
  LD_LIBRARY_PATH="$LOCAL_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$1" 2>/dev/null |
    awk '/not found/ {print $1}'
}

# Download the packages providing whatever FILE's ldd reports missing.
fix_missing_libs() {
  local file="$1" miss pkgs=() s p
  miss="$(missing_libs "$file")"
  [ -z "$miss" ] && return 0
  for s in $miss; do
    p="$(pkg_for_soname "$s")" || { log "$file needs $s and no package is known for it"; exit 1; }
    pkgs+=("$p")
  done
  fetch_debs $(printf '%s\n' "${pkgs[@]}" | sort -u)
  miss="$(missing_libs "$file")"
  [ -z "$miss" ] || { log "$file still misses: $miss"; exit 1; }
  return 0
}

# --------------------------------------------------------------------------
# 1. libclang for bindgen
# --------------------------------------------------------------------------
# A directory is usable when it holds a libclang shared object whose deps
# resolve, and clang's resource headers (stddef.h) sit where libclang looks
# for them (<dir>/clang/<ver>/include).
has_libclang() { compgen -G "$1/libclang.so*" >/dev/null || compgen -G "$1/libclang-[0-9]*.so*" >/dev/null; }
has_resource_headers() { compgen -G "$1/clang/*/include/stddef.h" >/dev/null; }

ensure_libclang() {
  local d
  # a) caller's LIBCLANG_PATH (unless it is ours: then fall through to the cache)
  if [ -n "${LIBCLANG_PATH:-}" ] && [[ "$LIBCLANG_PATH" != "$ROOT"* ]] && has_libclang "$LIBCLANG_PATH"; then
    return 0
  fi
  # b) the system: where clang-sys looks by itself (llvm-config --libdir, /usr/lib/llvm-*/lib, multiarch dir)
  for d in /usr/lib/llvm-*/lib /usr/local/lib "/usr/lib/$MULTIARCH"; do
    if has_libclang "$d" && { has_resource_headers "$d" || compgen -G "/usr/lib/llvm-*/lib/clang/*/include/stddef.h" >/dev/null; }; then
      return 0
    fi
  done
  # c) our cached copy, else download it
  d="$ROOT/usr/lib/llvm-$LLVM_VER/lib"
  if ! has_libclang "$d" || ! has_resource_headers "$d"; then
    fetch_debs "libclang1-$LLVM_VER" "libclang-common-$LLVM_VER-dev"
  fi
  has_libclang "$d" && has_resource_headers "$d" || { log "libclang not usable under $d"; exit 1; }
  local so
  so="$(readlink -f "$d/libclang.so.1")"
  if [ -n "$(missing_libs "$so")" ]; then
    fix_missing_libs "$so"
    add_ld+=("$LOCAL_LIB")   # e.g. a downloaded libLLVM-14.so.1
  fi
  EXPORTS+=("export LIBCLANG_PATH=$(printf %q "$d")")
  # Loaded from our tree, libclang does not find its resource dir (stddef.h,
  # stdarg.h, ...): without this bindgen fails with "'stddef.h' file not found"
  # (seen with samael's build script). -resource-dir points clang at it.
  local res arg
  res="$(compgen -G "$d/clang/*/include/stddef.h" | head -n1)"
  res="${res%/include/stddef.h}"
  arg="-resource-dir=$res"
  case " ${BINDGEN_EXTRA_CLANG_ARGS:-} " in
    *" $arg "*) EXPORTS+=("export BINDGEN_EXTRA_CLANG_ARGS=$(printf %q "$BINDGEN_EXTRA_CLANG_ARGS")") ;;
    *) EXPORTS+=("export BINDGEN_EXTRA_CLANG_ARGS=$(printf %q "$arg${BINDGEN_EXTRA_CLANG_ARGS:+ $BINDGEN_EXTRA_CLANG_ARGS}")") ;;
  esac
}

# --------------------------------------------------------------------------
# 2. OpenSSL, libxml2 + libxmlsec1 as static libraries (infra/xmlsec-static.sh)
# --------------------------------------------------------------------------
# The SAML function links them into its binary (no shared libraries to load
# at its start, no layer to match the Lambda image). They are built once from
# source into the cache; PATH gets a directory holding only their
# `xmlsec1-config` (samael's build script runs it), PKG_CONFIG_PATH their .pc
# files, whose lib dir holds archives only; OPENSSL_DIR + OPENSSL_STATIC make
# the `openssl` crate (openssl-sys) link the same OpenSSL, statically.
ensure_xmlsec_static() {
  local prefix="$DEPS_DIR/xmlsec-static"
  command -v pkg-config >/dev/null || { log "pkg-config is missing (Debian package pkgconf); cannot continue"; exit 1; }
  # A no-op once built (the script checks its own stamp).
  "$(dirname "${BASH_SOURCE[0]}")/xmlsec-static.sh" "$prefix" >/dev/null
  add_path+=("$prefix/config-bin")
  add_pkgconfig+=("$prefix/lib/pkgconfig")
  EXPORTS+=("export OPENSSL_DIR=$(printf %q "$prefix")" "export OPENSSL_STATIC=1")
}

# --------------------------------------------------------------------------
# 3. xmlsec1 CLI (test signer)
# --------------------------------------------------------------------------
ensure_xmlsec_cli() {
  if command -v xmlsec1 >/dev/null && [[ "$(command -v xmlsec1)" != "$ROOT"* ]]; then
    return 0
  fi
  local bin="$ROOT/usr/bin/xmlsec1"
  [ -x "$bin" ] || fetch_debs xmlsec1
  fix_missing_libs "$bin"   # downloads libs the system lacks, if any
  if ldd "$bin" 2>/dev/null | grep -q 'not found'; then
    add_ld+=("$LOCAL_LIB")   # ...and then they are found through LD_LIBRARY_PATH
  fi
  add_path+=("$ROOT/usr/bin")
}

ensure_libclang
ensure_xmlsec_static
ensure_xmlsec_cli

# Prepend dirs to a :-list, without duplicating entries already in front
# (keeps repeated `eval "$(infra/deps.sh)"` idempotent).
prepend() {
  local var="$1"; shift
  local cur="${!var:-}" d out=""
  for d in "$@"; do
    case ":$out:" in *":$d:"*) continue ;; esac
    out="${out:+$out:}$d"
  done
  [ -z "$out" ] && return 0
  # drop our dirs from the current value, then put them in front
  local rest="" e
  IFS=: read -r -a parts <<<"$cur"
  for e in "${parts[@]}"; do
    [ -z "$e" ] && continue
    case ":$out:" in *":$e:"*) continue ;; esac
    rest="${rest:+$rest:}$e"
  done
  EXPORTS+=("export $var=$(printf %q "$out${rest:+:$rest}")")
}
prepend PATH "${add_path[@]}"
prepend PKG_CONFIG_PATH "${add_pkgconfig[@]}"
prepend LD_LIBRARY_PATH "${add_ld[@]}"

if [ ${#EXPORTS[@]} -gt 0 ]; then
  printf '%s\n' "${EXPORTS[@]}"
fi
