#!/usr/bin/env bash
# Issue 21, round 3, in ONE command (~8 min on one H200): four plain-CNN teachers from scratch at once on
# FER+'s vote distributions, each with a second head taught FER2013's own labels (models/label_sets.py);
# then `accurate` (plain CNN) and `fast` (small plain CNN) distilled from them through simulated video
# calls, with the unreadable head; exported with flip TTA and measured on PublicTest (both label sets).
# Everything a session needs back lands in $OUT (<= 8 files, each < 16 MiB):
#   accurate.onnx (mean of the two students, as shipped) accurate_single.onnx fast.onnx
#   teachers.onnx (the four teachers' mean, for later CPU distillation with teacher_onnx)
#   metrics.json train.log runs.tgz (configs, per-epoch metrics, run.json, the students' checkpoints)
# The package's own weights are never touched: install locally (calibrate, quantize) if they win.
#
# Usage:  OUT=/path bash recipes/gpu/round3/run.sh              on the GPU (compact arrays in data/fer2013)
#         REHEARSAL=1 OUT=/tmp/r3 bash recipes/gpu/round3/run.sh   on the CPU: 300 images, 1 epoch, same steps
set -euo pipefail
cd "$(dirname "$0")/../../.."
PY=${PYTHON:-python3}
OUT=${OUT:-runs/round3-out}
DATA=${DATA:-data/fer2013}
r=recipes/gpu/round3
mkdir -p "$OUT"
export CLASSMOOD_NO_PROGRESS=1 PYTHONUNBUFFERED=1
extra=(--data "$DATA")
if [ -n "${REHEARSAL:-}" ]; then extra+=(--limit 300 --epochs 1 --device cpu); fi
log="$OUT/train.log"
start=$(date +%s)
pack() {  # what has been trained so far travels back even if a later step fails or runs out of time
  tar czf "$OUT/runs.tgz" runs/round3-*/config.json runs/round3-*/metrics.jsonl $(ls runs/round3-*/run.json \
    runs/round3-accurate/best.pt runs/round3-fast/best.pt 2>/dev/null) 2>/dev/null || true
}
{
  echo "== teachers $(date -u +%FT%TZ)"; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
  $PY -m classmood.cli train --no-export "${extra[@]}" \
    --recipe $r/teacher_plain_cnn_s1.toml --recipe $r/teacher_plain_cnn_s2.toml \
    --recipe $r/teacher_plain_cnn_s3.toml --recipe $r/teacher_plain_cnn_s4.toml
  pack
  echo "== students $(date -u +%FT%TZ) after $(( $(date +%s) - start )) s"
  $PY -m classmood.cli train --no-export "${extra[@]}" --recipe $r/accurate.toml --recipe $r/fast.toml
  pack
  echo "== export, measure $(date -u +%FT%TZ) after $(( $(date +%s) - start )) s"
  t=runs/round3-teacher_plain_cnn
  $PY -m classmood.cli export runs/round3-accurate/best.pt --average-with runs/round3-fast/best.pt --out "$OUT/accurate.onnx"
  $PY -m classmood.cli export runs/round3-accurate/best.pt --out "$OUT/accurate_single.onnx"
  $PY -m classmood.cli export runs/round3-fast/best.pt --out "$OUT/fast.onnx"
  $PY -m classmood.cli export ${t}_s1/best.pt --average-with ${t}_s2/best.pt --average-with ${t}_s3/best.pt \
    --average-with ${t}_s4/best.pt --out "$OUT/teachers.onnx"
  for name in accurate accurate_single fast teachers; do
    $PY -m classmood.cli evaluate --data "$DATA" --split PublicTest --model "$OUT/$name.onnx" --json > "$OUT/$name.json" &
  done
  wait
  echo "== done in $(( $(date +%s) - start )) s"
} 2>&1 | tee "$log"
# one metrics file: every run's final PublicTest figures and the exported models' evaluations
$PY - "$OUT" <<'PYEOF'
import glob, json, os, sys
out = sys.argv[1]
runs = {}
for path in sorted(glob.glob("runs/round3-*/run.json")):
    run = json.load(open(path))
    runs[path.split("/")[1]] = {k: run.get(k) for k in ("arch", "epochs", "best_epoch", "train_seconds", "hardware", "val", "unreadable")}
models = {}
for n in ("accurate", "accurate_single", "fast", "teachers"):
    p = f"{out}/{n}.json"
    if os.path.isfile(p) and os.path.getsize(p):
        models[n] = json.load(open(p))
        os.remove(p)
json.dump({"runs": runs, "models": models}, open(f"{out}/metrics.json", "w"), indent=1)
PYEOF
for f in runs/round3-*/train.log; do [ -f "$f" ] && cat "$f" >> "$OUT/train.log"; done
pack
ls -la "$OUT"
