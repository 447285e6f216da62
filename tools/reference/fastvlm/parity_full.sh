#!/bin/sh
# Full-size FastVLM-0.5B parity: glimpse against the float64 reference on random weights in
# the released layout (BF16, F16 and 2-shard BF16 folders written by gen_full.py).
#
#   LD_LIBRARY_PATH=/tmp/oblas/usr/lib/x86_64-linux-gnu/openblas-pthread \
#       nice /usr/bin/python3 tools/reference/fastvlm/gen_full.py        # once: ~4.5 GB in /tmp
#   tools/reference/fastvlm/parity_full.sh [OUT=/tmp/glimpse-fastvlm] [GLIMPSE=build/glimpse] [THREADS=2]
#
# For each folder: `glimpse caption -m DIR expected/image.png --json --dump D -n N` (N = the
# expected greedy token count), then compare_full.py prints cosines, the logits error and the
# tokens, and fails when a tolerance is missed.
set -eu
out=${1:-/tmp/glimpse-fastvlm}; glimpse=${2:-build/glimpse}; th=${3:-2}
here=$(dirname "$0")
ex=$out/expected
[ -f "$ex/expected.json" ] || { echo "parity_full: no $ex/expected.json: run gen_full.py first" >&2; exit 1; }
n=$(/usr/bin/python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['tokens']))" "$ex/expected.json")
rc=0
for v in 0.5b-bf16 0.5b-f16 0.5b-bf16-sharded; do
    [ -d "$out/$v" ] || continue
    d=$out/dump-$v
    mkdir -p "$d"
    echo "== $v"
    "$glimpse" caption -m "$out/$v" "$ex/image.png" --json --dump "$d" -n "$n" -t "$th" > "$d/run.json"
    /usr/bin/python3 "$here/compare_full.py" "$ex" "$d" "$d/run.json" || rc=1
done
exit $rc
