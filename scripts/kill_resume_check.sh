#!/usr/bin/env bash
# SIGKILL during the demo's distillation (SST-2, N=1000, 4 epochs), then the same command again:
# the rerun must resume after the last finished epoch and reach the dev accuracy of an
# uninterrupted run to within 0.5 points. Needs a trained teacher (default runs/demo/teacher,
# from `make demo`); takes about three distillations' time.
#
#   scripts/kill_resume_check.sh [teacher_dir] [out_dir]
set -euo pipefail
cd "$(dirname "$0")/.."
TEACHER=${1:-runs/demo/teacher}
OUT=${2:-runs/kill_resume_check}
PY=${PY:-.venv/bin/python}
DATA=$($PY -c "from apps.common import default_dataset; print(default_dataset())")
ARGS=(--dataset="$DATA" --num_labels=1000 --seed=0 --teacher_dir="$TEACHER")
STATE="$OUT/killed/student/backup/state.npz"
rm -rf "$OUT"

echo "== uninterrupted run"
$PY -m apps.distill "${ARGS[@]}" --out_dir="$OUT/straight"

echo "== run to be killed during epoch 3 of 4"
$PY -m apps.distill "${ARGS[@]}" --out_dir="$OUT/killed" > "$OUT/killed.log" 2>&1 &
PID=$!
finished_epochs() { [ -f "$STATE" ] && $PY -c "import numpy as np; print(int(np.load('$STATE')['epoch']))" || echo 0; }
until [ "$(finished_epochs)" -ge 2 ]; do
  kill -0 "$PID" 2>/dev/null || { echo "the run ended before epoch 3"; exit 1; }
  sleep 2
done
sleep "${KILL_DELAY:-20}"  # well into epoch 3
kill -9 "$PID"
wait "$PID" || true
echo "killed after $(finished_epochs) finished epochs"

echo "== the same command again"
$PY -m apps.distill "${ARGS[@]}" --out_dir="$OUT/killed" | tee "$OUT/resumed.log"
grep '^\[resume\] distillation resumes after epoch' "$OUT/resumed.log"

$PY - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
straight, resumed = (json.load(open(f"{out}/{run}/student/metrics.json"))["student_dev_acc"] for run in ("straight", "killed"))
print(f"dev accuracy: uninterrupted {straight:.4f}, killed and resumed {resumed:.4f}, difference {abs(straight - resumed) * 100:.2f} points")
sys.exit(0 if abs(straight - resumed) <= 0.005 else 1)
PY
