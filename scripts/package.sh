#!/usr/bin/env bash
# Builds every deployable function of template.yaml (each
# AWS::Serverless::Function) with cargo-lambda into a Lambda zip, then prints
# a table of the zip sizes and their total.
#
#   make package                 # x86_64 (what this kind of machine can build)
#   ARCH=arm64 make package      # where the aarch64-unknown-linux-gnu target is installed
#
# Variables:
#   ARCH           x86_64 (default) or arm64
#   PACKAGE_DIR    where the zips go (default $CARGO_TARGET_DIR/lambda-zips/$ARCH),
#                  one folder per binary: <dir>/<binary>/bootstrap.zip
#   MAX_ZIP_BYTES  a zip above this is reported and the script exits 1
#                  (default 6 MB = 6,000,000 bytes; 0 turns the check off)
#
# The function -> crate mapping is the template's: CodeUri is the crate's folder
# and Metadata.BuildProperties.Binary the bin (what SAM's rust-cargolambda
# builder builds). The zig-linked functions are built in one cargo invocation
# (shared dependencies compile once); a crate that asks for the system
# toolchain ([package.metadata.lambda.build.compiler] type = "cargo": saml,
# which links the libxmlsec1 and libxml2 that infra/deps.sh builds) is built
# on its own, always x86_64 (its template Architectures), in a target dir of
# its own so the two toolchains' C-compiler settings do not rebuild each
# other's dependencies.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

ARCH="${ARCH:-x86_64}"
case "$ARCH" in
  x86_64|amd64) ARCH=x86_64; arch_flag=--x86-64; triple=x86_64-unknown-linux-gnu ;;
  arm64|aarch64) ARCH=arm64; arch_flag=--arm64; triple=aarch64-unknown-linux-gnu ;;
  *) echo "package.sh: ARCH must be x86_64 or arm64, not $ARCH" >&2; exit 2 ;;
esac
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/saas-platform/target-lambda}"
export CARGO_INCREMENTAL=0
PACKAGE_DIR="${PACKAGE_DIR:-$CARGO_TARGET_DIR/lambda-zips/$ARCH}"
MAX_ZIP_BYTES="${MAX_ZIP_BYTES:-6000000}"

# cargo-lambda + zig (pinned in infra/venv.sh; no pip work when present),
# the SAML crate's native deps (libxmlsec1 headers, infra/deps.sh).
venv="$(infra/venv.sh --lambda | tail -n 1)"
export PATH="$venv/bin:$PATH"
eval "$(infra/deps.sh)"

host="$(rustc -vV | sed -n 's/^host: //p')"
if [[ "$triple" != "$host" && ! -d "$(rustc --print sysroot)/lib/rustlib/$triple" ]]; then
  echo "package.sh: the Rust standard library for $triple is not installed" \
       "(rustup target add $triple); build $ARCH on a machine that has it" >&2
  exit 1
fi

# Logical id, crate folder, binary, compiler, architecture: one line per function.
mapfile -t functions < <("$venv/bin/python" - "$ARCH" <<'PY'
import sys, tomllib, yaml
arch = sys.argv[1]
class Loader(yaml.SafeLoader):
    pass
# CloudFormation's short-form intrinsics (!Ref, !Sub, ...): keep the value.
Loader.add_multi_constructor("!", lambda loader, suffix, node:
    loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else
    loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else
    loader.construct_mapping(node))
t = yaml.load(open("template.yaml"), Loader=Loader)
for lid, r in t["Resources"].items():
    if r.get("Type") != "AWS::Serverless::Function":
        continue
    meta, props = r.get("Metadata", {}), r.get("Properties", {})
    if meta.get("BuildMethod") != "rust-cargolambda":
        sys.exit(f"package.sh: {lid} is not built with rust-cargolambda")
    code = props["CodeUri"]
    binary = meta.get("BuildProperties", {}).get("Binary")
    manifest = tomllib.load(open(f"{code}/Cargo.toml", "rb"))
    if not binary:
        binary = manifest["package"]["name"]
    compiler = (manifest.get("package", {}).get("metadata", {}).get("lambda", {})
                .get("build", {}).get("compiler", {}).get("type", "cargo-zigbuild"))
    archs = props.get("Architectures")
    fa = archs[0] if isinstance(archs, list) and archs and archs[0] in ("x86_64", "arm64") else arch
    print(lid, code, binary, compiler, fa)
PY
)
[[ ${#functions[@]} -gt 0 ]] || { echo "package.sh: no functions found in template.yaml" >&2; exit 1; }

zig_bins=() other=()
for line in "${functions[@]}"; do
  read -r _ _ bin compiler farch <<<"$line"
  if [[ "$compiler" == cargo-zigbuild && "$farch" == "$ARCH" ]]; then
    zig_bins+=(--bin "$bin")
  else
    other+=("$line")
  fi
done

mkdir -p "$PACKAGE_DIR"
start=$(date +%s)
echo "package.sh: building ${#functions[@]} functions for $ARCH into $PACKAGE_DIR" >&2
if [[ ${#zig_bins[@]} -gt 0 ]]; then
  cargo lambda build --release --locked "$arch_flag" --output-format zip \
    --lambda-dir "$PACKAGE_DIR" "${zig_bins[@]}"
fi
for line in "${other[@]}"; do
  read -r lid code bin compiler farch <<<"$line"
  case "$farch" in x86_64) f=--x86-64 ;; arm64) f=--arm64 ;; esac
  echo "package.sh: $lid ($bin) with compiler $compiler, $farch" >&2
  CARGO_TARGET_DIR="$CARGO_TARGET_DIR/$compiler-$farch" \
    cargo lambda build --release --locked "$f" --compiler "$compiler" --output-format zip \
      --lambda-dir "$PACKAGE_DIR" --manifest-path "$code/Cargo.toml" --bin "$bin"
done
elapsed=$(( $(date +%s) - start ))

# The table: function, binary, architecture, zip and unzipped bootstrap
# sizes, and the newest glibc symbol version the bootstrap needs (Lambda's
# provided.al2023 has glibc 2.34).
echo "package.sh: built in ${elapsed}s; zips under $PACKAGE_DIR" >&2
FUNCTIONS="$(printf '%s\n' "${functions[@]}")" \
  "$venv/bin/python" - "$PACKAGE_DIR" "$MAX_ZIP_BYTES" <<'PY'
import os, re, sys, zipfile
pkg, limit = sys.argv[1], int(sys.argv[2])
mib = lambda n: f"{n / 1048576:.2f}"
rows, total, over = [], 0, []
for line in os.environ["FUNCTIONS"].split("\n"):
    if not line.strip():
        continue
    lid, _, binary, _, arch = line.split()
    path = os.path.join(pkg, binary, "bootstrap.zip")
    if not os.path.exists(path):
        sys.exit(f"package.sh: {path} is missing")
    size = os.path.getsize(path)
    with zipfile.ZipFile(path) as z:
        raw = z.read("bootstrap")
    versions = {tuple(map(int, v.split(b"."))) for v in re.findall(rb"GLIBC_(2\.[0-9]+)", raw)}
    glibc = ".".join(map(str, max(versions))) if versions else "-"
    total += size
    if limit and size > limit:
        over.append(lid)
    rows.append((lid, binary, arch, size, len(raw), glibc))
print()
print("| function | binary | arch | zip (bytes) | zip (MiB) | bootstrap (MiB) | newest glibc symbol |")
print("|---|---|---|---:|---:|---:|---|")
for lid, binary, arch, size, raw, glibc in sorted(rows, key=lambda r: -r[3]):
    print(f"| {lid} | {binary} | {arch} | {size:,} | {mib(size)} | {mib(raw)} | {glibc} |")
print(f"| **total ({len(rows)} functions)** | | | {total:,} | {mib(total)} | | |")
print()
if over:
    sys.exit(f"package.sh: over {limit:,} bytes: {' '.join(over)}")
PY
