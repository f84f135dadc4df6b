#!/usr/bin/env bash
# Speed history: run the asv suite on every commit of a range, then publish HTML.
#
#   benchmarks/asv/history.sh [RANGE] [extra `asv run` options...]
#
# RANGE is a git revision range (default: the last 10 commits reachable from
# HEAD). asv's `continuous` and `run RANGE` refuse "existing" environments, so
# each commit is exported with `git archive` (no checkout, no worktree: the
# repository and the .venv are left as they are) and benchmarked with
# `asv run --set-commit-hash`, importing unlearnbench from the export
# (UNLEARNBENCH_SOURCE, see benchmarks/asv/__init__.py). The benchmark code
# itself is always the current benchmarks/asv, so every commit runs the same
# measurements. Results: .asv/results; HTML: .asv/html (asv preview serves it).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
asv=${ASV:-.venv/bin/asv}
range=${1:-}
if [ $# -gt 0 ]; then shift; fi
if [ -z "$range" ]; then
  commits=$(git rev-list --reverse --max-count=10 HEAD)
else
  commits=$(git rev-list --reverse "$range")
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$asv" machine --yes >/dev/null
for commit in $commits; do
  rm -rf "$work/src" && mkdir -p "$work/src"
  git archive "$commit" unlearnbench | tar -x -C "$work/src"
  echo "== $(git log -1 --format='%h %s' "$commit")" >&2
  UNLEARNBENCH_SOURCE="$work/src" "$asv" run --set-commit-hash "$commit" "$@" \
    || echo "commit $commit: some benchmarks failed (recorded as failed)" >&2
done
"$asv" publish
echo "HTML history in .asv/html; view it with: $asv preview" >&2
