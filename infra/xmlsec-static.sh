#!/usr/bin/env bash
# OpenSSL, libxml2 and libxmlsec1 (OpenSSL back-end) as static libraries,
# for the SAML function to link into its own binary. libxml2 and xmlsec1
# come from Debian bookworm's current source packages (upstream + Debian's
# security patches); OpenSSL is the upstream release of the 3.0 LTS series
# that Debian bookworm currently carries (its orig tarball, see below).
#
#   infra/xmlsec-static.sh PREFIX     # builds into PREFIX once; prints PREFIX
#
# Why: linked dynamically, the SAML function's process start loaded
# libxmlsec1, libxmlsec1-openssl, libxslt, libxml2, ICU, libstdc++, libssl
# and libcrypto, and bound ~7,300 symbols before `main`: its init was
# 2.8-6.4x the hello-world floor (docs/performance.md, "Where init goes",
# "The SAML function's libraries, linked in"). Linked statically, those
# bindings are resolved at link time, and the zip carries everything but
# glibc, so no layer has to match the Lambda image's libraries. OpenSSL is
# built with only what SAML sign-in needs: Debian's full libcrypto.a took
# the zip over the 6 MB bound.
#
# What is left out, on purpose (smaller, and less to attack):
#   OpenSSL: TLS before 1.2 and DTLS, the engine and module loaders, the
#     legacy provider, every cipher, digest and key type SAML does not use
#     (DES, DSA, DH, RIPEMD-160, MD4, Blowfish, CAST, IDEA, SEED, RC2/4/5,
#     Camellia, ARIA, SM2/3/4, ChaCha20-Poly1305, Whirlpool, binary curves,
#     GOST), CMS, OCSP, CT, TS, SRP, error strings (our refusals carry
#     their own). Its OPENSSLDIR is /usr/local/ssl, which neither Lambda's
#     image nor Debian has: xmlsec asks OpenSSL to load its openssl.cnf,
#     and the host's, written for the host's OpenSSL, must not be read;
#     nor its CA directory (the verifier trusts the connection's
#     certificate alone).
#   libxml2: ICU (its data alone is 31 MB; UTF-8 and Latin-1 are built in,
#     glibc's iconv does the rest), zlib/lzma (no compressed XML), the HTTP
#     and FTP clients (a document never fetches anything), the legacy API.
#   libxmlsec1: XSLT transforms (a signature may not run a stylesheet: no
#     libxslt at all), DES, DSA, HMAC, MD5, RIPEMD-160 and GOST (the
#     verifier allows RSA-SHA256/384/512 and ECDSA-SHA256 only), the
#     crypto back-end loader (the OpenSSL back-end is linked in), the CLI,
#     docs.
#
# Why OpenSSL's upstream tarball and not Debian's patched source: Debian's
# OpenSSL patches are its packaging (build targets, man sections, the
# system-wide config) and security backports that the next upstream 3.0.x
# release carries, and this machine's mirror serves the newest version's
# orig tarball but not always its Debian diff (3.0.22-1~deb12u2's was
# missing on 2026-12-04). So between two upstream releases the function can
# lag a Debian backport; a rebuild after the release catches up. The
# tarball is still fetched through apt: its SHA-256 is checked against
# Debian's signed index.
#
# Needs: a C compiler, make, perl and pkg-config. The sources come from
# deb.debian.org through apt with a private source list and state dir (no
# root). About 2 min on 2 cores (OpenSSL is most of it), once. A newer
# release is picked up by deleting PREFIX
# (`rm -rf ~/.cache/saas-platform/deps/xmlsec-static`); a change to this
# recipe rebuilds by itself (RECIPE below).
set -euo pipefail

prefix="${1:?usage: infra/xmlsec-static.sh PREFIX}"
stamp="$prefix/.built"
# Bumped whenever what this script builds changes, so that a cache built by
# an older recipe is rebuilt instead of linked.
RECIPE=3
if [ "$(cat "$stamp" 2>/dev/null)" = "$RECIPE" ]; then
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
log "fetching the OpenSSL, libxml2 and xmlsec1 source packages (deb.debian.org, bookworm)"
apt-get "${apt_opts[@]}" update -qq >&2
(cd "$work/src" && apt-get "${apt_opts[@]}" source --download-only -qq libxml2 xmlsec1 >/dev/null 2>&1) || {
  log "apt-get source failed"; exit 1; }
# OpenSSL: only the upstream tarball is needed (see the top); apt checks each
# file it fetches, so a partial fetch still leaves only checked files.
(cd "$work/src" && apt-get "${apt_opts[@]}" source --download-only -qq openssl >/dev/null 2>&1) || true
openssl_tar="$(ls "$work/src"/openssl_*.orig.tar.gz 2>/dev/null | head -n 1)"
[ -n "$openssl_tar" ] || { log "apt-get source openssl fetched no upstream tarball"; exit 1; }

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
# For size, like the Rust code (opt-level "s"): the zip must stay under 6 MB
# with OpenSSL inside. OpenSSL's assembly (AES-NI, SHA, bignum) is kept.
cflags="-Os -fPIC"
build() {
  local name="$1"; shift
  local out="$work/$name.log"
  (cd "$work/src/$name" && CFLAGS="$cflags" ./configure --prefix="$prefix" --disable-shared --enable-static --with-pic "$@" >"$out" 2>&1 &&
    make -j"$jobs" >>"$out" 2>&1 && make install >>"$out" 2>&1) || {
    tail -n 30 "$out" >&2; log "building $name failed"; exit 1; }
}

rm -rf "$prefix"
# OpenSSL first: xmlsec1 builds against its headers and pkg-config files.
mkdir -p "$work/src/openssl"
tar -xzf "$openssl_tar" -C "$work/src/openssl" --strip-components=1
basename "$openssl_tar" .orig.tar.gz >&2
(cd "$work/src/openssl" && CFLAGS="$cflags" ./config --prefix="$prefix" --libdir=lib --openssldir=/usr/local/ssl \
  no-shared no-module no-legacy no-engine no-dso no-autoload-config no-ui-console no-tests \
  no-ssl3 no-tls1 no-tls1_1 no-dtls no-nextprotoneg no-psk no-srp no-srtp no-ct no-ocsp no-cms no-ts no-cmp \
  no-des no-dsa no-dh no-rmd160 no-md4 no-bf no-cast no-idea no-seed no-rc2 no-rc4 no-rc5 no-camellia no-aria \
  no-sm2 no-sm3 no-sm4 no-chacha no-poly1305 no-whirlpool no-siphash no-blake2 no-scrypt no-ocb no-siv no-ec2m \
  no-gost no-comp no-err >"$work/openssl.log" 2>&1 &&
  make -j"$jobs" build_libs >>"$work/openssl.log" 2>&1 && make install_dev >>"$work/openssl.log" 2>&1) || {
  tail -n 30 "$work/openssl.log" >&2; log "building openssl failed"; exit 1; }
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

unpack libxml2
build libxml2 --without-icu --without-zlib --without-lzma --without-python --without-http \
  --without-ftp --without-legacy --without-debug --without-modules --without-readline --without-history
unpack xmlsec1
build xmlsec1 --with-libxml="$prefix" --with-openssl="$prefix" --without-libxslt --without-nss --without-gnutls \
  --without-gcrypt --disable-des --disable-dsa --disable-hmac --disable-md5 --disable-ripemd160 --disable-gost \
  --disable-crypto-dl --disable-apps-crypto-dl --disable-apps --disable-docs --disable-mans --disable-skm

# samael's build script runs `xmlsec1-config` from PATH: a directory with
# that script alone, so the prefix's xmllint and friends stay off PATH.
mkdir -p "$prefix/config-bin"
ln -sf ../bin/xmlsec1-config "$prefix/config-bin/xmlsec1-config"
# Only archives in lib/: the linker, searching this directory first, can
# only pick the static libraries.
rm -f "$prefix"/lib/*.la
echo "$RECIPE" >"$stamp"
echo "$prefix"
