#!/usr/bin/env bash
# The offline preview, set up on first use, exiting with the preview's own status: 0 clean, 1 a
# mandatory policy violation, 2 a user mistake, 3 the setup itself failed. (`make preview` runs the
# same, but make reports any failure of a recipe as 2, so CI and scripts call this instead.)
# Usage: bash scripts/preview.sh <stack> [--format json] [--config-file FILE] ...
set -uo pipefail
cd "$(dirname "$0")/.."
if ! make --no-print-directory -s .venv/.runtime >&2; then
  echo "error: setting up .venv failed (see above)" >&2
  exit 3
fi
exec .venv/bin/python -m preview "$@"
