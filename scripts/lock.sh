#!/usr/bin/env bash
# Rewrite requirements.lock from the current .venv (after adding a dependency with an exact pin).
set -euo pipefail
cd "$(dirname "$0")/.."
{
  echo "# Exact pins of every package in the project's environment (Python 3.11, Linux x86_64)."
  echo "# Regenerate with: bash scripts/lock.sh   (torch is installed first and alone by scripts/setup.sh)"
  .venv/bin/pip freeze 2>/dev/null | grep -v -e "^-e" -e "^georeset" | sed 's/^torch==\([0-9.]*\)+cpu$/torch==\1/'
} > requirements.lock
echo "requirements.lock: $(grep -c '==' requirements.lock) pins"
