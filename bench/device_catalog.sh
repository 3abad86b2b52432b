#!/usr/bin/env bash
# bench/catalog_commit.py at 1M and 10M documents on a bigger machine (no internet, any Python >= 3.11):
#
#   bash bench/device_catalog.sh WHEELS_DIR          # WHEELS_DIR holds the duckdb wheels listed below
#
# Needs only duckdb and its extension wheels (duckdb, duckdb-extension-spatial, -fts, -ducklake; the pins of
# requirements.lock); installs them into a fresh venv from WHEELS_DIR (--no-index) and runs the bench with
# SIZES (default 1000000,10000000) and BATCH (default 100000). Writes $OUT/catalog_commit.json (OUT defaults to
# bench/results) and the log next to it. Scratch space: TMPDIR (about 6 GB at 10M).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS="${1:?usage: bash bench/device_catalog.sh WHEELS_DIR}"
OUT="${OUT:-bench/results}"
SIZES="${SIZES:-1000000,10000000}"
BATCH="${BATCH:-100000}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
VENV="$(mktemp -d)/venv"
"$PY" -m venv "$VENV"
pins=$(grep -iE '^duckdb(_extension_(spatial|fts|ducklake))?==' requirements.lock | tr '\n' ' ')
echo "[device_catalog] installing $pins from $WHEELS"
"$VENV/bin/pip" install -q --no-index --find-links "$WHEELS" $pins
"$VENV/bin/python" -c "import duckdb, sys; print('[device_catalog] duckdb', duckdb.__version__, 'python', sys.version.split()[0])"
PYTHONPATH="$PWD" "$VENV/bin/python" bench/catalog_commit.py --sizes "$SIZES" --batch "$BATCH" --with-index \
  --out "$OUT/catalog_commit.json" 2> >(tee "$OUT/catalog_commit.log" >&2)
rm -rf "$(dirname "$VENV")"
