#!/bin/sh
# FastVLM: glimpse (bench_fastvlm) against PyTorch f32 (bench/fastvlm_torch.py) on the same
# machine, threads and image, alternating runs so both see the same load; prints each run and
# the medians with ratios. The machine is shared: read the ratios, not the absolute times.
#
#   bench/fastvlm_compare.sh MODEL_DIR [ROUNDS=3] [THREADS=2] [DECODE_TOKENS=16]
#
# Env: BUILD (default build), OBLAS (OpenBLAS library folder for torch; default the one
# tools/reference/fastvlm/gen_full.py describes: /tmp/oblas/usr/lib/x86_64-linux-gnu/openblas-pthread).
set -eu
dir=$1; rounds=${2:-3}; th=${3:-2}; ntok=${4:-16}
here=$(dirname "$0")
build=${BUILD:-build}
oblas=${OBLAS:-/tmp/oblas/usr/lib/x86_64-linux-gnu/openblas-pthread}
[ -e "$oblas/libblas.so.3" ] || { echo "fastvlm_compare: no OpenBLAS at $oblas (see tools/reference/fastvlm/gen_full.py)" >&2; exit 1; }
out=$(mktemp)
i=0
while [ $i -lt "$rounds" ]; do
    "$build/bench_fastvlm" "$dir" -t "$th" -n "$ntok" -r 1 --json | sed 's/^/glimpse /' | tee -a "$out"
    LD_LIBRARY_PATH=$oblas OPENBLAS_NUM_THREADS=$th /usr/bin/python3 "$here/fastvlm_torch.py" "$dir" \
        --threads "$th" --tokens "$ntok" | sed 's/^/torch /' | tee -a "$out"
    i=$((i + 1))
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
rows = {"glimpse": [], "torch": []}
for line in open(sys.argv[1]):
    who, js = line.split(" ", 1)
    rows[who].append(json.loads(js))
med = {w: {k: statistics.median(r[k] for r in v) for k in ("preprocess_ms", "vision_ms", "prefill_ms", "ttft_ms", "decode_tok_s")}
       for w, v in rows.items()}
print("median of %d rounds        glimpse      torch   glimpse/torch" % len(rows["glimpse"]))
for k in ("preprocess_ms", "vision_ms", "prefill_ms", "ttft_ms", "decode_tok_s"):
    g, t = med["glimpse"][k], med["torch"][k]
    print("%-22s %10.1f %10.1f   %6.3f" % (k, g, t, g / t if t else float("nan")))
PY
rm -f "$out"
