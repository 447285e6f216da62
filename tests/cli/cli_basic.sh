#!/usr/bin/env bash
# End-to-end CLI checks on random-weight models made by glimpse-gen: every subcommand's --help,
# real jobs (embed, classify, tokenize, caption, ask, chat), and bad input that must give a
# one-line error and a non-zero exit (never a crash). Usage: cli_basic.sh path/to/glimpse
set -u
G=$1
GEN=$(dirname "$G")/glimpse-gen
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=$ROOT/../shared/data
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }
# expect_fail NAME PATTERN CMD...: exit 1 or 2 (not a signal), one stderr line matching PATTERN
expect_fail() {
  local name=$1 pat=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ $rc -ne 1 ] && [ $rc -ne 2 ]; then bad "$name: exit $rc (want 1 or 2)"; cat "$T/err"; return; fi
  if ! grep -q -- "$pat" "$T/err"; then bad "$name: stderr lacks '$pat':"; cat "$T/err"; return; fi
  [ "$(wc -l <"$T/err")" -le 2 ] || { bad "$name: more than 2 stderr lines"; cat "$T/err"; return; }
  ok
}
expect_ok() {
  local name=$1; shift
  if "$@" >"$T/out" 2>"$T/err"; then ok; else bad "$name: exit $?"; cat "$T/err"; fi
}

"$GEN" mobileclip2-tiny "$T/clip" --clip-vocab "$SHARED/clip/bpe_simple_vocab_16e6.txt.gz" >/dev/null || bad "gen clip"
"$GEN" fastvlm-tiny "$T/vlm" --tokenizer "$SHARED/qwen2" >/dev/null || bad "gen vlm"
IMG=$ROOT/tests/data/mobileclip/s0_tiny/img0.png

expect_ok version "$G" --version
grep -q "^glimpse " "$T/out" || bad "--version output"
for c in caption ask chat embed classify tokenize info; do expect_ok "help $c" "$G" $c --help; done
expect_fail "unknown command" "unknown command" "$G" frobnicate

# real jobs
expect_ok "embed" "$G" embed -m "$T/clip" --image "$IMG" --text "a photo of a cat" --json -t 2
python3 - "$T/out" <<'PY' || bad "embed json"
import json, sys, math
d = json.load(open(sys.argv[1]))
assert d["dim"] == 32 and len(d["embeddings"]) == 2
for e in d["embeddings"]:
    n = math.sqrt(sum(x * x for x in e["embedding"]))
    assert abs(n - 1) < 1e-4, n
PY
expect_ok "embed npy" "$G" embed -m "$T/clip" --text "x" --text "y" --npy "$T/e.npy"
[ -s "$T/e.npy" ] || bad "npy written"
expect_ok "classify" "$G" classify -m "$T/clip" --labels "cat,dog,car" -k 2 --json "$IMG"
grep -q '"labels"' "$T/out" || bad "classify json"
# the ViT towers (MobileCLIP2-B conv stem, L-14 patch conv): two images in one batch + a text
for v in b l14; do
  "$GEN" mobileclip2-$v-tiny "$T/vit_$v" --clip-vocab "$SHARED/clip/bpe_simple_vocab_16e6.txt.gz" >/dev/null || bad "gen $v"
  expect_ok "embed vit $v" "$G" embed -m "$T/vit_$v" --image "$IMG" --image "$ROOT/tests/data/mobileclip/s0_tiny/img1.png" \
    --text "a photo of a cat" --json -t 2
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["dim"]==32 and len(d["embeddings"])==3' "$T/out" \
    || bad "embed vit $v json"
  expect_ok "classify vit $v" "$G" classify -m "$T/vit_$v" --labels "cat,dog,car" -k 2 "$IMG"
done
expect_ok "tokenize clip" "$G" tokenize -m "$T/clip" "a photo of a cat"
[ "$(wc -w <"$T/out")" -eq 77 ] || bad "clip tokenize gives 77 ids"
expect_ok "tokenize qwen2" "$G" tokenize -m "$T/vlm" "<|im_start|>user"
[ "$(cat "$T/out")" = "151644 872" ] || bad "qwen2 tokenize ids: $(cat "$T/out")"
expect_ok "caption" "$G" caption -m "$T/vlm" "$IMG" -n 8 --json -t 2
python3 - "$T/out" <<'PY' || bad "caption json"
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["tokens"]) == 8 and d["prompt_tokens"] > 4
for k in ("load_ms", "preprocess_ms", "vision_ms", "prefill_ms", "ttft_ms", "decode_tokens_per_s"):
    assert k in d["timings"], k
PY
expect_ok "ask" "$G" ask -m "$T/vlm" "$IMG" "What is this?" -n 4
expect_ok "caption dump" "$G" caption -m "$T/vlm" "$IMG" -n 2 --dump "$T"
for f in pixels vision_features image_embeds logits; do [ -s "$T/$f.npy" ] || bad "dump $f.npy"; done
printf 'What is this?\n/image %s\nAnd now?\n/quit\n' "$IMG" | "$G" chat -m "$T/vlm" "$IMG" -n 3 >"$T/out" 2>"$T/err" && ok || bad "chat"

# bad input
expect_fail "no model" "no such file" "$G" embed -m "$T/nope" --text x
expect_fail "vlm to embed" "FastVLM" "$G" embed -m "$T/vlm" --text x
expect_fail "clip to caption" "CLIP" "$G" caption -m "$T/clip" "$IMG"
expect_fail "missing image" "missing.png" "$G" embed -m "$T/clip" --image "$T/missing.png"
head -c 300 "$IMG" >"$T/trunc.png"
expect_fail "truncated image" "trunc.png" "$G" embed -m "$T/clip" --image "$T/trunc.png"
echo "not an image" >"$T/text.jpg"
expect_fail "not an image" "text.jpg" "$G" caption -m "$T/vlm" "$T/text.jpg"
expect_fail "invalid utf-8" "UTF-8" "$G" embed -m "$T/clip" --text "$(printf 'bad \xff\xfe text')"
mkdir -p "$T/clip2" && cp "$T/clip/open_clip_config.json" "$T/clip2/"
head -c 100000 "$T/clip/open_clip_model.safetensors" >"$T/clip2/open_clip_model.safetensors"
expect_fail "truncated safetensors" "open_clip_model.safetensors" "$G" embed -m "$T/clip2" --text x
mkdir -p "$T/vlm2" && cp "$T/vlm/config.json" "$T/vlm/model.safetensors" "$T/vlm2/"
expect_fail "missing tokenizer" "vocab.json" "$G" caption -m "$T/vlm2" "$IMG"
mkdir -p "$T/clip3" && cp "$T/clip/open_clip_config.json" "$T/clip/open_clip_model.safetensors" "$T/clip3/"
expect_fail "missing clip vocab" "vocabulary" "$G" embed -m "$T/clip3" --text x
long=$(python3 -c "print('word ' * 5000)")
expect_fail "prompt too long" "context" "$G" ask -m "$T/vlm" "$IMG" "$long" -n 2
expect_fail "bad option" "unknown option" "$G" caption -m "$T/vlm" --frob "$IMG"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
