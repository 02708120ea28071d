#!/usr/bin/env bash
# Build the worker Lambda package: messenger_widgets (without its front-end dependencies) and
# infra/lambda-requirements.txt, as manylinux wheels for x86_64 / CPython 3.11 (the
# python3.11 runtime of worker.yaml), zipped. Usage: infra/build_lambda.sh [OUT.zip]
# Works on any build host (wheels are selected by --platform, nothing is compiled).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-build/worker.zip}
PY_VERSION=${LAMBDA_PYTHON_VERSION:-3.11}
PYTHON=${PYTHON:-python3}
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

"$PYTHON" -m pip install --quiet --no-compile --target "$STAGE" \
  --platform manylinux2014_x86_64 --implementation cp --python-version "$PY_VERSION" \
  --only-binary=:all: -r infra/lambda-requirements.txt
rm -rf "$STAGE/bin"  # console scripts of the dependencies: nothing runs them in Lambda
# The package itself, pure Python: no dependencies (the list above is the worker's).
"$PYTHON" -m pip install --quiet --no-compile --no-deps --target "$STAGE" .

# Nothing but code: no caches, no metadata of the build host, never a .env.
find "$STAGE" -name '__pycache__' -type d -prune -exec rm -rf {} +
find "$STAGE" -name '.env' -delete
rm -rf "$STAGE/bin"
mkdir -p "$(dirname "$OUT")"
rm -f "$OUT"
OUT_ABS=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")
(cd "$STAGE" && zip -q -r -X "$OUT_ABS" .)
echo "$OUT_ABS"
