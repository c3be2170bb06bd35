#!/usr/bin/env bash
# Derives the invoice fonts compiled into the billing function
# (functions/billing/assets/) from DejaVu Sans 2.37 as Debian's
# fonts-dejavu-core ships it. Run it to upgrade DejaVu: change the checksums
# of the inputs with it, then commit the outputs.
#
# Why derive instead of copying: the two fonts are most of what keeps the
# billing zip over the 6 MB target (issue 19). What is taken out is what the
# renderer (src/pdf.rs) cannot use or an invoice does not print:
# - TrueType hinting: PDF viewers scale outlines themselves;
# - GSUB, GPOS, GDEF, kern and MATH: glyphs are placed one per character from
#   their advances, so no table of ligatures, kerning or positioning is read,
#   and glyphs reachable only through them go too;
# - pictographs, not text: Miscellaneous Symbols and Dingbats
#   (U+2600-U+27BF), Braille (U+2800-U+28FF) and everything from U+1F000
#   (mahjong and domino tiles, playing cards, emoji). They print as U+FFFD
#   like any character the fonts lack. Every script's letters, digits,
#   punctuation, currency signs and mathematical operators stay.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source_dir="${DEJAVU_DIR:-/usr/share/fonts/truetype/dejavu}"
fonttools_version="4.68.0"
declare -A input_sha256=(
  [DejaVuSans.ttf]="abdc775b21b1bc470d50c97e790d276f2054b7504e56e5bd3e64f48d68582322"
  [DejaVuSans-Bold.ttf]="0d977336a6d5fba34eab8e3199eb218327161b5143749f802982c2bc34df0c96"
)

venv="${HOME}/.cache/saas-platform/fonttools-venv"
if ! "$venv/bin/pyftsubset" --help >/dev/null 2>&1; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "fonttools==$fonttools_version"
fi

for font in DejaVuSans.ttf DejaVuSans-Bold.ttf; do
  echo "${input_sha256[$font]}  $source_dir/$font" | sha256sum --check --quiet
  "$venv/bin/pyftsubset" "$source_dir/$font" \
    --unicodes='U+0000-25FF,U+27C0-27FF,U+2900-1EFFF' \
    --no-hinting --layout-features='' \
    --drop-tables+=kern,GSUB,GPOS,GDEF,MATH,FFTM \
    --name-IDs='*' --name-languages='*' --notdef-outline \
    --output-file="$repo/functions/billing/assets/$font"
  echo "$font: $(stat -c %s "$source_dir/$font") -> $(stat -c %s "$repo/functions/billing/assets/$font") bytes"
done
