#!/usr/bin/env bash
# SIGKILL during the demo's distillation (SST-2, N=1000, 4 epochs), then the same command again:
# the rerun must resume after the last finished epoch and reach the dev accuracy of an
# uninterrupted run to within 0.5 points. Needs a trained teacher (default runs/demo/teacher,
# from `make demo`; `make test-scale` trains one of its own); takes about three distillations' time.
#
#   scripts/kill_resume_check.sh [teacher_dir] [out_dir]
#
# The kill comes half an epoch after epoch 2 finished, an epoch being as long as epoch 2 took
# (KILL_DELAY=<seconds> overrides), so it lands in epoch 3 however fast the machine is.
set -euo pipefail
cd "$(dirname "$0")/.."
TEACHER=${1:-runs/demo/teacher}
OUT=${2:-runs/kill_resume_check}
PY=${PY:-.venv/bin/python}
EPOCHS=4
DATA=$($PY -c "from kdistill.apps.common import default_dataset; print(default_dataset())")
# The fast recipe: the check is of the training loop's resume, not of the copies or the gold fine-tune.
ARGS=(--dataset="$DATA" --num_labels=1000 --seed=0 --teacher_dir="$TEACHER" --recipe=fast --epochs=$EPOCHS)
STATE="$OUT/killed/student/backup/state.npz"
rm -rf "$OUT"
mkdir -p "$OUT"

echo "== uninterrupted run"
$PY -m apps.distill "${ARGS[@]}" --out_dir="$OUT/straight"

echo "== run to be killed during epoch 3 of $EPOCHS"
$PY -m apps.distill "${ARGS[@]}" --out_dir="$OUT/killed" > "$OUT/killed.log" 2>&1 &
PID=$!
finished_epochs() { [ -f "$STATE" ] && $PY -c "import numpy as np; print(int(np.load('$STATE')['epoch']))" || echo 0; }
EPOCH_1_AT=
until [ "$(finished_epochs)" -ge 2 ]; do
  kill -0 "$PID" 2>/dev/null || { echo "the run ended before epoch 3"; tail -20 "$OUT/killed.log"; exit 1; }
  if [ -z "$EPOCH_1_AT" ] && [ "$(finished_epochs)" -ge 1 ]; then EPOCH_1_AT=$SECONDS; fi
  sleep 1
done
DELAY=${KILL_DELAY:-$(( (SECONDS - ${EPOCH_1_AT:-$SECONDS}) / 2 ))}
echo "epoch 2 finished; killing in ${DELAY} s"
sleep "$DELAY"
kill -0 "$PID" 2>/dev/null || { echo "the run ended before it was killed; set KILL_DELAY lower"; exit 1; }
kill -9 "$PID"
wait "$PID" || true
KILLED_AFTER=$(finished_epochs)
echo "killed after $KILLED_AFTER finished epochs"
if [ "$KILLED_AFTER" -lt 1 ] || [ "$KILLED_AFTER" -ge "$EPOCHS" ] || [ -e "$OUT/killed/student/metrics.json" ]; then
  echo "the kill did not land inside the run's epochs"
  exit 1
fi

echo "== the same command again"
$PY -m apps.distill "${ARGS[@]}" --out_dir="$OUT/killed" | tee "$OUT/resumed.log"
grep "^\[resume\] distillation resumes after epoch $KILLED_AFTER," "$OUT/resumed.log"

$PY - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
straight, resumed = (json.load(open(f"{out}/{run}/student/metrics.json"))["student_dev_acc"] for run in ("straight", "killed"))
print(f"dev accuracy: uninterrupted {straight:.4f}, killed and resumed {resumed:.4f}, difference {abs(straight - resumed) * 100:.2f} points")
sys.exit(0 if abs(straight - resumed) <= 0.005 else 1)
PY
