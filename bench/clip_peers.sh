#!/usr/bin/env bash
# MobileCLIP2-S0 image and text tower speed: glimpse vs ONNX Runtime vs PyTorch, measured in the
# same run (the machine is shared and noisy: the rounds interleave the engines so each sees the
# same load, and the table reports medians over rounds and ratios).
#
#   bench/clip_peers.sh [ROUNDS=3] [THREADS=2]       (CLIP_PEERS_TORCH=0: skip PyTorch, the slow one;
#                                                      CLIP_PEERS_PEAK: the GFLOP/s for "% peak", default 176)
#
# Needs: build/bench_clip (cmake --build build), /usr/bin/python3 with torch (Debian), node with
# onnxruntime-node on NODE_PATH (default /tmp/ortnode/node_modules; install with
#   mkdir -p /tmp/ortnode && cd /tmp/ortnode && npm install --ignore-scripts onnxruntime-node).
# The model (random weights, released OpenCLIP layout) and its ONNX export are written once to
# $CLIP_BENCH_DIR (default /tmp/clipperf/peers) by bench/clip_peers.py prepare (~2 min).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
threads=${2:-2}
dir=${CLIP_BENCH_DIR:-/tmp/clipperf/peers}
export NODE_PATH=${NODE_PATH:-/tmp/ortnode/node_modules}
py=/usr/bin/python3
[ -x build/bench_clip ] || { echo "clip_peers: build/bench_clip missing (cmake --build build)" >&2; exit 1; }
[ -d "$NODE_PATH/onnxruntime-node" ] || { echo "clip_peers: onnxruntime-node not found in NODE_PATH=$NODE_PATH" >&2; exit 1; }
[ -f "$dir/text.onnx" ] || nice "$py" bench/clip_peers.py prepare "$dir"
# glimpse with q8_0 weights (what `glimpse convert --type q8_0` writes) and ONNX Runtime's int8
# counterpart (bench/ort_quantize.py: quantize_dynamic's rewrite; needs Debian's python3-onnx)
[ -f "$dir/s0-q8_0.gguf" ] || build/glimpse convert -m "$dir/openclip" -o "$dir/s0-q8_0.gguf" --type q8_0 >&2
int8=1
if [ ! -f "$dir/text_int8.onnx" ]; then
  "$py" bench/ort_quantize.py "$dir" >&2 || { int8=0; echo "clip_peers: no int8 ONNX Runtime peer (apt-get install python3-onnx)" >&2; }
fi

# Debian's python3-torch runs its Linear layers (and some convolutions) through the system BLAS;
# with only the reference libblas3 that is ~4 GFLOP/s (the text tower took 1.7 s): PyTorch
# figures need an optimised BLAS (apt-get install libopenblas0-pthread).
if [ "${CLIP_PEERS_TORCH:-1}" != 0 ] && ! readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 | grep -q openblas; then
  echo "clip_peers: the system BLAS is not OpenBLAS (apt-get install libopenblas0-pthread): PyTorch would be measured crippled" >&2
  exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, $threads threads, load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do
  echo "# round $r"
  build/bench_clip "$dir/openclip" -t "$threads" -r 7 -b 8 | tee -a "$log"
  build/bench_clip "$dir/s0-q8_0.gguf" -t "$threads" -r 7 -b 8 | sed 's/^glimpse /glimpse-q8_0 /' | tee -a "$log"
  node bench/clip_ort.mjs "$dir" 7 8 "$threads" | tee -a "$log"
  [ "$int8" = 1 ] && node bench/clip_ort.mjs "$dir" 7 8 "$threads" int8 | tee -a "$log"
  [ "${CLIP_PEERS_TORCH:-1}" = 0 ] && continue
  "$py" bench/clip_peers.py torch "$dir" --form reparam --reps 3 --batch 8 --threads "$threads" | tee -a "$log"
  # OpenBLAS's own threads next to PyTorch's: one each is faster for the text tower's Linears
  OPENBLAS_NUM_THREADS=1 "$py" bench/clip_peers.py torch "$dir" --form reparam --reps 3 --batch 8 --threads "$threads" |
    sed 's/^torch-reparam /torch-reparam-ob1 /' | tee -a "$log"
  "$py" bench/clip_peers.py torch "$dir" --form train --reps 2 --batch 1 --threads "$threads" | tee -a "$log"
done
"$py" - "$log" "${CLIP_PEERS_PEAK:-176}" <<'PY'
import collections, statistics, sys
gflop = {"image": 4.75, "text": 5.8}
med = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) > 4 and f[3] == "median":
        med[(f[0], f[1], int(f[2][1:]))].append(float(f[4]))
ms = {k: statistics.median(v) for k, v in med.items()}
peak = float(sys.argv[2]) if len(sys.argv) > 2 else 2 * 88.0
print(f"\nmedians over rounds (ms per call; a call at batch 8 embeds 8 images or texts); % of peak: of {peak:.0f} GFLOP/s")
print("peer time / glimpse time (> 1: glimpse is faster), for glimpse f32 and glimpse q8_0")
print(f"{'case':<9}{'engine':<15}{'ms':>9}{'items/s':>9}{'GFLOP/s':>9}{'% peak':>8}{'vs f32':>8}{'vs q8_0':>9}")
for what in ("image", "text"):
    for b in (1, 8):
        ours, oq = ms.get(("glimpse", what, b)), ms.get(("glimpse-q8_0", what, b))
        for eng in ("glimpse", "glimpse-q8_0", "ort", "ort-int8", "torch-reparam", "torch-reparam-ob1", "torch-train"):
            t = ms.get((eng, what, b))
            if t is None:
                continue
            gf = gflop[what] * b / (t * 1e-3)
            peer = not eng.startswith("glimpse")
            r1 = f"{t / ours:.2f}" if ours and peer else ""
            r2 = f"{t / oq:.2f}" if oq and peer else ""
            print(f"{what + ' b' + str(b):<9}{eng:<15}{t:9.1f}{b / t * 1e3:9.2f}{gf:9.1f}{100 * gf / peak:7.0f}%{r1:>8}{r2:>9}")
PY
