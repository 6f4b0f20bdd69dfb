#!/usr/bin/env bash
# buf breaking: the protos of this tree against those of a base revision (default: origin/main
# when this tree is not main itself, else the previous commit). Both sides are built as images
# with tools/protogen.py, because buf cannot fetch buf/validate from its registry here.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BUF=${BUF:-.venv/bin/buf}
base=${BUF_BREAKING_AGAINST:-}
if [ -z "$base" ]; then
  if git rev-parse -q --verify origin/main >/dev/null && [ "$(git rev-parse HEAD)" != "$(git rev-parse origin/main)" ]; then
    base=origin/main
  else
    base=HEAD~1
  fi
fi
if ! git rev-parse -q --verify "$base^{commit}" >/dev/null; then
  echo "buf breaking: no base revision $base (first commit or shallow clone); nothing to compare"
  exit 0
fi
if ! git cat-file -e "$base:protos" 2>/dev/null; then
  echo "buf breaking: $base has no protos/; nothing to compare"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git archive "$base" protos | tar -x -C "$tmp"
"$PY" tools/protogen.py --image "$tmp/protos" "$tmp/base.binpb"
[ -f build/gaitpay.binpb ] || "$PY" tools/protogen.py
"$BUF" breaking build/gaitpay.binpb --against "$tmp/base.binpb" --path gaitpay
echo "buf breaking: no breaking change against $base ($(git rev-parse --short "$base"))"
