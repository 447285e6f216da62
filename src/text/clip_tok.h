/* clip_tok.h — the CLIP BPE tokenizer as OpenCLIP's SimpleTokenizer runs it (clean='lower'),
 * used by MobileCLIP / MobileCLIP2 text towers.
 *
 * Text cleaning: "ftfy-lite" (the parts of ftfy.fix_text's defaults that matter for real
 * text: C1 controls read as Windows-1252, Latin ligatures split, full/half-width forms folded,
 * curly quotes straightened, terminal escapes and stray control characters removed, NFC),
 * then html.unescape twice, whitespace collapse and strip, Python str.lower(). Not replicated
 * from ftfy: mojibake repair (fix_encoding, restore_byte_a0, replace_lossy_sequences,
 * decode_inconsistent_utf8) and ftfy's own HTML unescaping (which, when the text has no '<',
 * repeats until nothing changes); text that needs those tokenizes differently.
 *
 * A loaded tokenizer is immutable and may be shared between threads.
 *
 *    tok_clip *c; gl_err e; int32_t ids[77];
 *    if (tok_clip_load_gz("bpe_simple_vocab_16e6.txt.gz", &c, &e)) return e.code;
 *    tok_clip_encode(c, "a photo of a cat", 16, ids, 77, &e);   // [49406, ..., 49407, 0, ...]
 *    tok_clip_free(c);
 */
#ifndef TOK_CLIP_TOK_H
#define TOK_CLIP_TOK_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

#define TOK_CLIP_CONTEXT 77
#define TOK_CLIP_SOT 49406 /* ids in the standard vocabulary; use tok_clip_sot/eot for others */
#define TOK_CLIP_EOT 49407

typedef struct tok_clip tok_clip;

/* OpenCLIP's merges file (gzip or plain): line 1 a header, then 48,894 merges are used. */
int tok_clip_load_gz(const char *path, tok_clip **out, gl_err *err);
/* Hugging Face CLIPTokenizer files (vocab.json + merges.txt), as the timm OpenCLIP repos ship. */
int tok_clip_load_hf(const char *vocab_json, const char *merges_txt, tok_clip **out, gl_err *err);
/* From string lists (GGUF tokenizer.ggml.tokens / .merges): token i has id i; merges are
 * "a b" in rank order. name is used in messages. */
int tok_clip_load_lists(const char *const *tokens, const size_t *tlen, size_t n, const char *const *merges,
                        const size_t *mlen, size_t nm, const char *name, tok_clip **out, gl_err *err);
void tok_clip_free(tok_clip *t);
/* The vocabulary as loaded, for export: token strings by id (not NUL-terminated; "" for ids
 * no entry names) and the merges used, "a b" in rank order. NULL when out of range. */
size_t tok_clip_n_tokens(const tok_clip *t);
const char *tok_clip_token_str(const tok_clip *t, size_t id, size_t *len);
size_t tok_clip_n_merges(const tok_clip *t);
const char *tok_clip_merge_str(const tok_clip *t, size_t i, size_t *len);

/* Encodes UTF-8 text into exactly ctx_len ids (ctx_len >= 2; 77 for CLIP models):
 * start-of-text, the tokens, end-of-text, then 0 padding; too-long texts are cut so that
 * end-of-text is the last id. GLIMPSE_ERR_INVALID_ARG for invalid UTF-8. */
int tok_clip_encode(const tok_clip *t, const char *text, size_t len, int32_t *ids, int ctx_len, gl_err *err);
/* All tokens of the text, without start/end tokens or truncation; two-call sizing as in
 * tok_qwen2_encode (sets *n to the full count, writes min(cap, *n) ids, TOO_LARGE if cut). */
int tok_clip_encode_raw(const tok_clip *t, const char *text, size_t len, int32_t *ids, size_t cap,
                        size_t *n, gl_err *err);

int32_t tok_clip_sot(const tok_clip *t);
int32_t tok_clip_eot(const tok_clip *t);
int32_t tok_clip_n_vocab(const tok_clip *t);

#endif
