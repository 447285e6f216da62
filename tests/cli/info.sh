#!/bin/bash
# `glimpse info`: listing of each weights format, one-line errors on stderr with exit 1, usage 2.
set -u
G="$1"; D=tests/data/io; fail=0
err() { echo "FAIL: $*"; fail=1; }
for f in "$D/model.pt" "$D/nested.pt" "$D/model.safetensors" "$D/sharded"; do
  out=$("$G" info "$f") || err "$f exit $?"
  echo "$out" | grep -q '^tensors: 13$' || err "$f: tensor count"
  echo "$out" | grep -qx 'proj.weight F32 \[4, 3\]' || err "$f: proj.weight line"
  echo "$out" | grep -qx 'scale F32 \[\]' || err "$f: scale line"
done
"$G" info "$D/sharded" | grep -qx 'format: safetensors (sharded)' || err "sharded format line"
"$G" info "$D/model.pt" | grep -qx 'bytes: 392' || err "total bytes"
e=$("$G" info "$D/expected.json" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] || err "bad file exit $rc"
[ "$(echo "$e" | wc -l)" -eq 1 ] && echo "$e" | grep -q "expected.json" || err "bad file message: $e"
# a folder with one .pt and no safetensors (Apple's layout) opens that file; two are ambiguous
"$G" info tests/data/mobileclip/s0_tiny/apple | grep -qx 'format: pytorch-zip' || err "apple folder"
T=$(mktemp -d); cp "$D/model.pt" "$T/a.pt"; cp "$D/nested.pt" "$T/b.bin"
e=$("$G" info "$T" 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && echo "$e" | grep -q "several checkpoints" || err "two checkpoints: $rc $e"
rm -rf "$T"
"$G" info /nonexistent 2>/dev/null; [ $? -eq 1 ] || err "missing file exit"
"$G" info 2>/dev/null; [ $? -eq 2 ] || err "usage exit"
"$G" info --help | grep -q usage || err "help"
exit $fail
