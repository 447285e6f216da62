#!/bin/bash
# glimpse tokenize: ids for known texts, exit codes for bad input. $1 = path to the CLI.
set -u
G=$1
CLIP=../shared/data/clip/bpe_simple_vocab_16e6.txt.gz
QWEN=../shared/data/qwen2
fail() { echo "tokenize.sh: $*" >&2; exit 1; }
[ "$("$G" tokenize --clip-vocab $CLIP --raw "A photo of a cat")" = "320 1125 539 320 2368" ] || fail "clip raw"
[ "$("$G" tokenize --clip-vocab $CLIP --ctx 8 "A photo of a cat")" = "49406 320 1125 539 320 2368 49407 0" ] || fail "clip ctx"
[ "$(printf 'Hello world' | "$G" tokenize --qwen2-dir $QWEN -)" = "9707 1879" ] || fail "qwen2 stdin"
[ "$("$G" tokenize --qwen2-dir $QWEN "<|im_start|>user")" = "151644 872" ] || fail "qwen2 special"
"$G" tokenize --qwen2-dir $QWEN $'\xff' 2>/dev/null; [ $? -eq 1 ] || fail "invalid utf-8 should exit 1"
"$G" tokenize "x" 2>/dev/null; [ $? -eq 2 ] || fail "missing model or vocabulary should exit 2"
"$G" tokenize --qwen2-dir /nonexistent "x" 2>/dev/null; [ $? -eq 1 ] || fail "bad dir should exit 1"
echo "tokenize.sh: ok"
