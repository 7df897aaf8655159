#!/usr/bin/env bash
# Lays out an offline DuckDB extension repository for votewatch's DuckLake mode, from the
# extension wheels on PyPI (duckdb-extension-<name>==1.5.5; each holds one file signed by DuckDB):
#
#   scripts/duckdb-extensions.sh REPO [PIP]
#
# REPO/v1.5.5/linux_amd64/<name>.duckdb_extension is what DuckDB's
# `custom_extension_repository` expects; votewatch installs from it into its
# `extension_directory`. PIP defaults to `python3 -m pip`. Already laid out: nothing to do.
set -euo pipefail
repo=${1:?usage: $0 REPO [PIP]}
pip=${2:-python3 -m pip}
version=1.5.5
dest="$repo/v$version/linux_amd64"
names=(ducklake postgres parquet httpfs icu)
# The postgres extension's file must be named after its entry point.
file_of() { [ "$1" = postgres ] && echo postgres_scanner || echo "$1"; }

missing=0
for n in "${names[@]}"; do
    [ -s "$dest/$(file_of "$n").duckdb_extension" ] || missing=1
done
[ $missing = 0 ] && exit 0

wheels=$(mktemp -d)
trap 'rm -rf "$wheels"' EXIT
$pip download --quiet --disable-pip-version-check --no-deps -d "$wheels" \
    $(for n in "${names[@]}"; do echo "duckdb-extension-$n==$version"; done)
mkdir -p "$dest"
for n in "${names[@]}"; do
    whl=$(ls "$wheels"/duckdb_extension_"$n"-"$version"-*.whl)
    python3 - "$whl" "duckdb_extension_$n/extensions/v$version/$n.duckdb_extension" \
        "$dest/$(file_of "$n").duckdb_extension" <<'PY'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst)
import os
os.replace(out + ".part", out)
PY
done
echo "DuckDB $version extensions in $dest: ${names[*]}"
