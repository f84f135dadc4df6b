#!/usr/bin/env bash
# The GPU check in one command (at most 8 minutes on one H100-class GPU): training
# throughput of the shared loop vs a bare loop, stacked vs one-by-one training, a small
# suite end to end on CUDA and on Ray with fractional GPUs, and every reproduction's
# suite-gpu.toml --check; a Markdown report lands in benchmarks/results/.
#
#   bash benchmarks/gpu/check.sh              # on a machine with a GPU
#   bash benchmarks/gpu/check.sh --dry-run    # the same steps on the CPU at toy sizes (CI)
#
# Options go to benchmarks/gpu/check.py (--out-dir, --data, --gpus-per-task, --only).
# The interpreter: $PYTHON, else the repository's .venv, else python3.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x "$root/.venv/bin/python" ]; then python="$root/.venv/bin/python"; else python=python3; fi
fi
cd "$root"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" benchmarks/gpu/check.py "$@"
