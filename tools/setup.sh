#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install dependencies, build, and run a first job.
# Real weights come from the Hugging Face hub (see README); this machine may have no network,
# so the first job runs on random-weight models that glimpse-gen writes in the same layouts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
echo
build/glimpse --version
demo=${GLIMPSE_DEMO_DIR:-/tmp/glimpse-demo}
mkdir -p "$demo"
shared=../shared/data
img=tests/data/mobileclip/s0_tiny/img0.png
if [ -d "$shared" ]; then
  build/glimpse-gen mobileclip2-s0 "$demo/MobileCLIP2-S0-random" --clip-vocab "$shared/clip/bpe_simple_vocab_16e6.txt.gz" >/dev/null
  echo "== glimpse classify (MobileCLIP2-S0 shapes, random weights)"
  build/glimpse classify -m "$demo/MobileCLIP2-S0-random" --labels "cat,dog,car,beach" -k 3 "$img"
  build/glimpse-gen fastvlm-tiny "$demo/FastVLM-tiny-random" --tokenizer "$shared/qwen2" >/dev/null
  echo "== glimpse caption (tiny FastVLM, random weights: the text is gibberish by design)"
  build/glimpse caption -m "$demo/FastVLM-tiny-random" "$img" -n 16 --json
fi
