#!/usr/bin/env bash
# libxml2 and libxmlsec1 (OpenSSL backend) as static libraries, built from
# Debian bookworm's current source packages (upstream + Debian's security
# patches), for the SAML function to link into its own binary.
#
#   infra/xmlsec-static.sh PREFIX     # builds into PREFIX once; prints PREFIX
#
# Why: linked dynamically, the SAML function's process start loaded
# libxmlsec1, libxmlsec1-openssl, libxslt, libxml2 and, through Debian's
# libxml2, ICU and libstdc++, and bound ~7,300 symbols before `main`: its
# init was 2.8x the hello-world floor (docs/performance.md, "Where init
# goes"). Linked statically, those bindings are resolved at link time, and
# the zip carries everything but glibc and OpenSSL (which provided.al2023
# has), so no layer has to match the Lambda image's libxml2.
#
# What is left out, on purpose (smaller, and less to attack):
#   libxml2: ICU (its data alone is 31 MB; UTF-8 and Latin-1 are built in,
#     glibc's iconv does the rest), zlib/lzma (no compressed XML), the HTTP
#     and FTP clients (a document never fetches anything), the legacy API.
#   libxmlsec1: XSLT transforms (a signature may not run a stylesheet: no
#     libxslt at all), GOST, the crypto back-end loader (the OpenSSL
#     back-end is linked in), the CLI, docs.
#
# Needs: a C compiler, make, pkg-config and OpenSSL 3's headers
# (`pkg-config openssl`; infra/deps.sh fetches libssl-dev if absent). The
# sources come from deb.debian.org through apt with a private source list
# and state dir (no root; apt checks them against Debian's signed index).
# About 40 s on 2 cores. A newer Debian security release is picked up by
# deleting PREFIX (`rm -rf ~/.cache/saas-platform/deps/xmlsec-static`).
set -euo pipefail

prefix="${1:?usage: infra/xmlsec-static.sh PREFIX}"
stamp="$prefix/.built"
if [ -e "$stamp" ]; then
  echo "$prefix"
  exit 0
fi

log() { echo "xmlsec-static.sh: $*" >&2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Source packages through apt: a deb-src list of our own, its own lists and
# cache dirs, and no lock (nothing is installed).
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/src"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
{
  echo "deb-src [signed-by=$keyring] http://deb.debian.org/debian bookworm main"
  echo "deb-src [signed-by=$keyring] http://deb.debian.org/debian bookworm-updates main"
  echo "deb-src [signed-by=$keyring] http://deb.debian.org/debian-security bookworm-security main"
} >"$work/apt/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/apt/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache" -o "Debug::NoLocking=1")
# As root apt would hand the downloads to its _apt user, who cannot write
# to our temporary dir (it warns, then downloads as root anyway).
[ "$(id -u)" = 0 ] && apt_opts+=(-o "APT::Sandbox::User=root")
log "fetching the libxml2 and xmlsec1 source packages (deb.debian.org, bookworm)"
apt-get "${apt_opts[@]}" update -qq >&2
(cd "$work/src" && apt-get "${apt_opts[@]}" source --download-only -qq libxml2 xmlsec1 >/dev/null 2>&1) || {
  log "apt-get source failed"; exit 1; }

# Unpack upstream + debian/ and apply Debian's patch series (what
# dpkg-source -x does, without needing dpkg-dev). The patches touch
# Makefile.am files, which would make make rerun automake: the generated
# files are stamped newer instead (the patched Makefile.am changes are to
# docs and tests, not to the library).
unpack() {
  local name="$1" dir="$work/src/$1"
  mkdir -p "$dir"
  tar -xf "$work/src/${name}_"*.orig.tar.* -C "$dir" --strip-components=1
  tar -xf "$work/src/${name}_"*.debian.tar.* -C "$dir"
  local patch
  if [ -f "$dir/debian/patches/series" ]; then
    while read -r patch _; do
      case "$patch" in ''|'#'*) continue ;; esac
      patch -d "$dir" -p1 -s -N <"$dir/debian/patches/$patch" >&2
    done <"$dir/debian/patches/series"
  fi
  touch "$dir/aclocal.m4"
  sleep 1
  touch "$dir/configure"
  find "$dir" -name Makefile.in -exec touch {} +
  touch "$dir/config.h.in" 2>/dev/null || true
  basename "$work/src/${name}_"*.dsc .dsc >&2
}

jobs="$(nproc 2>/dev/null || echo 2)"
build() {
  local name="$1"; shift
  local out="$work/$name.log"
  (cd "$work/src/$name" && ./configure --prefix="$prefix" --disable-shared --enable-static --with-pic "$@" >"$out" 2>&1 &&
    make -j"$jobs" >>"$out" 2>&1 && make install >>"$out" 2>&1) || {
    tail -n 30 "$out" >&2; log "building $name failed"; exit 1; }
}

rm -rf "$prefix"
unpack libxml2
build libxml2 --without-icu --without-zlib --without-lzma --without-python --without-http \
  --without-ftp --without-legacy --without-debug --without-modules --without-readline --without-history
unpack xmlsec1
PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" \
  build xmlsec1 --with-libxml="$prefix" --without-libxslt --without-nss --without-gnutls --without-gcrypt \
  --disable-crypto-dl --disable-apps-crypto-dl --disable-apps --disable-docs --disable-mans --disable-skm

# samael's build script runs `xmlsec1-config` from PATH: a directory with
# that script alone, so the prefix's xmllint and friends stay off PATH.
mkdir -p "$prefix/config-bin"
ln -sf ../bin/xmlsec1-config "$prefix/config-bin/xmlsec1-config"
# Only archives in lib/: the linker, searching this directory first, can
# only pick the static libraries.
rm -f "$prefix"/lib/*.la
touch "$stamp"
echo "$prefix"
