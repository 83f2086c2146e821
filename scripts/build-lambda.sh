#!/usr/bin/env bash
# Builds the rotation Lambda package into build/rotation-lambda: the handler plus its pinned
# dependencies as manylinux wheels for the Lambda runtime (components/lambda_package.py RUNTIME, x86_64), whatever machine
# runs it. Reproducible: pinned versions, binary wheels only, fixed file times. Needs PyPI; the
# offline preview does not need this, `pulumi up` does.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build/rotation-lambda
pip=${PIP:-.venv/bin/pip}
python=${PYTHON_BIN:-.venv/bin/python}
version=$("$python" -m components.lambda_package --runtime-version)
rm -rf "$out"
mkdir -p "$out"
# -c constraints.txt pins what the requirements pull in too (cffi, typing_extensions, ...). pip takes a
# wheel only for a platform named here (manylinux2014 also admits 2010 and 1; a manylinux_2_28 wheel
# needs its own tag); the runtime's Amazon Linux 2023 has glibc 2.34, which runs both.
"$pip" install --quiet --disable-pip-version-check --no-compile \
  --target "$out" --platform manylinux2014_x86_64 --platform manylinux_2_28_x86_64 \
  --implementation cp --python-version "$version" \
  --only-binary=:all: -c constraints.txt -r rotation/requirements.txt >&2
mkdir -p "$out/rotation"
cp -r rotation/*.py rotation/strategies "$out/rotation/"
# The CA bundle that verifies database certificates (rotation/README.md, TLS), when one is configured.
if [ -f rotation/ca-bundle.pem ]; then cp rotation/ca-bundle.pem "$out/rotation/"; fi
find "$out" -name '__pycache__' -prune -exec rm -rf {} +
# Bytecode for the runtime (Lambda cannot write it to the read-only /var/task), made by an interpreter
# of the runtime's version: LAMBDA_PYTHON, default python<version> on PATH; without one, a warning.
"$python" -m components.lambda_package --compile-with "${LAMBDA_PYTHON:-python$version}" "$out"
# The digest of the sources packaged, which the program compares with rotation/ before `pulumi up`.
"$python" -m components.lambda_package "$out"
find "$out" -exec touch -h -d '1980-01-01T00:00:00Z' {} +
echo "built $out ($(du -sh "$out" | cut -f1))" >&2
