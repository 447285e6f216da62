#!/bin/bash
# `glimpse convert`: a tiny MobileCLIP2 to q8_0 and back through embed with nothing beside the
# file; usage errors exit 2, bad models exit 1 with a one-line message naming the input.
set -u
G="$1"; D=tests/data/mobileclip/s0_tiny; V=../shared/data/clip/bpe_simple_vocab_16e6.txt.gz
T=$(mktemp -d); fail=0
err() { echo "FAIL: $*"; fail=1; }
"$G" convert -m "$D/openclip" -o "$T/s0.gguf" --type q8_0 --vocab "$V" 2>/dev/null || err "convert exit $?"
"$G" info "$T/s0.gguf" | grep -q '^v.s3.b0.ffn.fc1.weight Q8_0 \[96, 32\]$' || err "q8_0 tensor in info"
"$G" embed -m "$T/s0.gguf" --image "$D/img0.png" --npy "$T/e.npy" || err "embed from the gguf alone"
[ -s "$T/e.npy" ] || err "no embedding written"
"$G" convert -m "$D/openclip" -o "$T/v.gguf" --type q4_0 --vision-type f16 --vocab "$V" 2>/dev/null || err "--vision-type exit $?"
"$G" info "$T/v.gguf" | grep -q '^v.s3.b0.ffn.fc1.weight F16 \[96, 32\]$' || err "vision tower at f16"
"$G" info "$T/v.gguf" | grep -Eq '^text.transformer.resblocks.0.mlp.c_proj.weight Q(4|8)_0 ' || err "text tower quantized"
"$G" embed -m "$T/v.gguf" --image "$D/img0.png" >/dev/null || err "embed from the mixed gguf"
"$G" convert -m "$D/openclip" -o "$T/x.gguf" --vision-type q3 2>/dev/null; [ $? -eq 2 ] || err "bad --vision-type exit"
"$G" convert -m "$D/openclip" -o "$T/x.gguf" --type q5_1 2>/dev/null; [ $? -eq 2 ] || err "bad --type exit"
"$G" convert -m "$D/openclip" 2>/dev/null; [ $? -eq 2 ] || err "no -o exit"
e=$("$G" convert -m /nonexistent -o "$T/x.gguf" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && [ "$(echo "$e" | wc -l)" -eq 1 ] && echo "$e" | grep -q nonexistent || err "missing model: $rc $e"
e=$("$G" convert -m "$T/s0.gguf" -o "$T/x.gguf" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && echo "$e" | grep -q "already" || err "re-conversion: $rc $e"
e=$("$G" caption -m "$T/s0.gguf" "$D/img0.png" 2>&1 >/dev/null); [ $? -eq 1 ] || err "caption with a CLIP gguf"
"$G" convert --help | grep -q usage || err "help"
rm -rf "$T"
exit $fail
