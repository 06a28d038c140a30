#!/usr/bin/env bash
# Every GPU run behind docs/runs/gpu-*, in three stages that each keep one H100 busy with several runs
# (a stage's runs share one wall-clock budget each, see time_budget_minutes in the recipes):
#   comparison  the five architectures of the study (three resnet18 seeds), all at once;
#   teachers    four seeds of the plain CNN, the best of the comparison;
#   students    the shipped models distilled from the teachers' averaged probabilities;
#   long        four models from scratch on a schedule twice as long.
# Usage: bash recipes/gpu/run_all.sh [comparison] [teachers] [students] [long]   (default: all, ~24 min)
# Needs the compact FER2013 arrays in data/fer2013 (see README "Training").
set -u
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
export CLASSMOOD_NO_PROGRESS=1 PYTHONUNBUFFERED=1
g=recipes/gpu
stages=${*:-comparison teachers students long}
for stage in $stages; do
  case $stage in
    comparison) $PY -m classmood.cli train --no-export \
      --recipe $g/resnet18.toml --recipe $g/resnet18_s1.toml --recipe $g/resnet18_s2.toml \
      --recipe $g/plain_cnn.toml --recipe $g/dexpression.toml --recipe $g/mobilenet_v2.toml --recipe $g/densenet.toml ;;
    teachers) $PY -m classmood.cli train --no-export \
      --recipe $g/plain_cnn_s1.toml --recipe $g/plain_cnn_s2.toml --recipe $g/plain_cnn_s3.toml --recipe $g/plain_cnn_s4.toml ;;
    students) $PY -m classmood.cli train --recipe $g/accurate_kd.toml --recipe $g/fast_kd.toml ;;
    long) $PY -m classmood.cli train \
      --recipe $g/plain_cnn_long.toml --recipe $g/resnet18_lite_long.toml --recipe $g/dexpression_long.toml --recipe $g/fast_long.toml ;;
    *) echo "unknown stage $stage (comparison, teachers, students)" >&2; exit 2 ;;
  esac
done
