#!/bin/bash
# llama_compare.sh — glimpse vs llama.cpp on the same Qwen2 GGUF files (as `glimpse convert`
# writes them for FastVLM), same threads, alternating runs so both see the same machine load.
#
#   bench/llama_compare.sh LLAMA_BENCH [ROUNDS=2] [THREADS=2] FILE.gguf...
#
# LLAMA_BENCH is a llama-bench binary you built yourself from llama.cpp's public source (this
# repository never builds or ships it). Per file and round: llama-bench prefill of 280 tokens
# (pp280) and decode of 128 (tg128, from an empty cache), then bench_fastvlm --llm-only with the
# same shapes: decode from an empty cache (--prompt 0), then a 280-position prefill followed by
# decode at that context. The GGUF is only read: llama.cpp loading it is part of the check.
set -eu
LB=$1; shift
ROUNDS=${1:-2}; THREADS=${2:-2}
case "$ROUNDS" in *[!0-9]*) ROUNDS=2 ;; *) shift ;; esac
case "$THREADS" in *[!0-9]*) THREADS=2 ;; *) shift ;; esac
B=$(dirname "$0")/../build/bench_fastvlm
[ -x "$LB" ] || { echo "no llama-bench at $LB" >&2; exit 2; }
[ -x "$B" ] || { echo "build first: $B" >&2; exit 2; }
uptime
for f in "$@"; do
  for r in $(seq 1 "$ROUNDS"); do
    echo "== $(basename "$f") round $r"
    "$LB" -m "$f" -p 280 -n 128 -t "$THREADS" -r 2 2>&1 | grep -E "pp280|tg128" || echo "llama-bench failed on $f"
    "$B" "$f" --llm-only --prompt 0 -n 128 -r 2 -t "$THREADS" | grep llm-only | sed 's/^/glimpse ctx 0: /'
    "$B" "$f" --llm-only --prompt 280 -n 128 -r 2 -t "$THREADS" | grep llm-only | sed 's/^/glimpse ctx 280: /'
  done
done
uptime
