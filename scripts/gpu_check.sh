#!/usr/bin/env bash
# A facilitator's check of one workshop machine (an NVIDIA L4), the day before: set-up, the plan of the profile,
# its model started with the profile's settings, one short call per layer, the measured figures beside the ones
# the machine should show. Exit 0: ready; 1: a figure to look at; 2: a step failed. A few minutes on an L4.
#   scripts/gpu_check.sh            # the full profile (download its models first: README, "The GPU path")
#   scripts/gpu_check.sh quick      # any other profile
set -euo pipefail
cd "$(dirname "$0")/.."
make -s setup
exec .venv/bin/evalkit check-gpu --profile "${1:-full}"
