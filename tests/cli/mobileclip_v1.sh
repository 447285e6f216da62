#!/usr/bin/env bash
# MobileCLIP v1 (Apple's mobileclip_*.pt naming) through the CLI on the committed tiny goldens:
# image embeddings match the reference (S0: MCi0 + MCt, S2: MCi2 + base text, B: Apple's
# ViT-B/16), the tiny vocabulary refuses real text cleanly, and broken v1 files give a one-line
# error naming the missing tensor. Usage: mobileclip_v1.sh glimpse
set -u
G=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VOCAB=$ROOT/../shared/data/clip/bpe_simple_vocab_16e6.txt.gz
D=$ROOT/tests/data/mobileclip
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }
expect_fail() {
  local name=$1 pat=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ $rc -ne 1 ] && [ $rc -ne 2 ]; then bad "$name: exit $rc (want 1 or 2)"; cat "$T/err"; return; fi
  if ! grep -q -- "$pat" "$T/err"; then bad "$name: stderr lacks '$pat':"; cat "$T/err"; return; fi
  [ "$(wc -l <"$T/err")" -le 2 ] || { bad "$name: more than 2 stderr lines"; cat "$T/err"; return; }
  ok
}

for m in v1_s0_tiny v1_s2_tiny v1_b_tiny; do
  if "$G" embed -m "$D/$m/apple" --vocab "$VOCAB" --image "$D/$m/img0.png" --image "$D/$m/img1.png" \
      --json -t 2 >"$T/out" 2>"$T/err"; then ok; else bad "embed $m: exit $?"; cat "$T/err"; continue; fi
  # compare with image_embeds_norm.npy (float32 [2, E]; read without numpy)
  python3 - "$T/out" "$D/$m/image_embeds_norm.npy" <<'PY' || bad "embed $m parity"
import json, math, struct, sys
d = json.load(open(sys.argv[1]))
raw = open(sys.argv[2], "rb").read()
hl = struct.unpack("<H", raw[8:10])[0]
ref = struct.unpack("<%df" % ((len(raw) - 10 - hl) // 4), raw[10 + hl:])
E = d["dim"]
assert len(d["embeddings"]) == 2 and len(ref) == 2 * E
for i, e in enumerate(d["embeddings"]):
    a, b = e["embedding"], ref[i * E:(i + 1) * E]
    cos = sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
    md = max(abs(x - y) for x, y in zip(a, b))
    assert cos >= 0.99999 and md <= 1e-4, (i, cos, md)
PY
done
# the tiny models have a 64-token vocabulary: real text must be refused, not misread
expect_fail "v1 tiny vocab" "out of range" "$G" embed -m "$D/v1_s0_tiny/apple" --vocab "$VOCAB" --text "a cat"
# one-tensor safetensors files: just enough to be recognised as v1
one_tensor() { # DIR NAME
  mkdir -p "$1"
  python3 - "$1/model.safetensors" "$2" <<'PY'
import json, struct, sys
h = json.dumps({sys.argv[2]: {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + struct.pack("<f", 0.0))
PY
}
# Apple's ViT-B/16 stem conv and nothing else (MobileCLIP-B, B-LT): the missing tensor is named
one_tensor "$T/vitb" image_encoder.model.patch_emb.0.block.conv.weight
expect_fail "v1 ViT-B stem only" "image_encoder.model.patch_emb.0.block.conv.weight" \
  "$G" embed -m "$T/vitb" --vocab "$VOCAB" --text x
# v1 B at an image size the 16-pixel patches do not tile: refused, naming the size
mkdir -p "$T/b72"
ln -s "$D/v1_b_tiny/apple/mobileclip_b.pt" "$T/b72/mobileclip_b.pt"
python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["image_cfg"]["image_size"]=72; json.dump(c,open(sys.argv[2],"w"))' \
  "$D/v1_b_tiny/apple/config.json" "$T/b72/config.json"
expect_fail "v1 ViT-B image size 72" "image size 72" "$G" embed -m "$T/b72" --vocab "$VOCAB" --image "$D/v1_b_tiny/img0.png"
# an MCi stem and nothing else: the error names the missing part, no crash
one_tensor "$T/stem" image_encoder.model.patch_embed.0.rbr_conv.0.conv.weight
expect_fail "v1 stem only" "image_encoder.model." "$G" embed -m "$T/stem" --vocab "$VOCAB" --text x

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
