/* qwen2_tok.h — Qwen2's byte-level BPE tokenizer, identical to Hugging Face's Qwen2Tokenizer /
 * tokenizer.json: added (special) tokens split out first and never merged, NFC on the rest,
 * the Qwen2 pre-tokenizer regex, GPT-2 byte mapping, BPE by merge rank.
 *
 * A loaded tokenizer is immutable: any number of threads may encode with it at once.
 *
 *    tok_qwen2 *q; gl_err e;
 *    if (tok_qwen2_load("model_dir", &q, &e)) return e.code;
 *    size_t n; tok_qwen2_encode(q, text, strlen(text), NULL, 0, &n, &e);   // size query
 *    int32_t *ids = malloc(n * sizeof *ids);
 *    tok_qwen2_encode(q, text, strlen(text), ids, n, &n, &e);
 *    tok_qwen2_free(q);
 */
#ifndef TOK_QWEN2_TOK_H
#define TOK_QWEN2_TOK_H

#include <stddef.h>
#include <stdint.h>

#include "core/common.h"

typedef struct tok_qwen2 tok_qwen2;

/* Loads dir/vocab.json, dir/merges.txt and the added tokens from dir/added_tokens.json (or, if
 * that file is absent, "added_tokens_decoder" in dir/tokenizer_config.json). */
int tok_qwen2_load(const char *dir, tok_qwen2 **out, gl_err *err);
/* The same from explicit paths; added_tokens_json may be NULL (no added tokens). */
int tok_qwen2_load_files(const char *vocab_json, const char *merges_txt, const char *added_tokens_json,
                         tok_qwen2 **out, gl_err *err);
void tok_qwen2_free(tok_qwen2 *t);

/* The vocabulary as llama.cpp's GGUF keeps it (tokenizer.ggml.tokens / token_type / merges):
 * regular tokens as vocab.json spells them (GPT-2 byte-level), added tokens as their text with
 * type 3 (CONTROL), ids without a token up to n_rows as "[PAD<id>]" with type 5 (UNUSED),
 * merges "a b" in rank order. Free with tok_qwen2_export_free. */
int tok_qwen2_export(const tok_qwen2 *t, size_t n_rows, char ***tokens, int32_t **types, size_t *n, char ***merges,
                     size_t *nm, gl_err *err);
void tok_qwen2_export_free(char **tokens, int32_t *types, size_t n, char **merges, size_t nm);
/* The inverse: token i has id i; types 1/2/6 are regular (byte-level), 3/4 added (split out
 * whole), 5 unused. name is used in messages. */
int tok_qwen2_load_lists(const char *const *tokens, const size_t *tlen, const int32_t *types, size_t n,
                         const char *const *merges, const size_t *mlen, size_t nm, const int32_t *merge_ids,
                         const char *name, tok_qwen2 **out, gl_err *err);
/* The merges as id triples (left, right, merged), 3 * nm int32 in rank order (the order of
 * tok_qwen2_export's merges): stored beside them in converted files, merge_ids above lets a
 * load skip decoding and looking up every merge string (each triple is checked against the
 * strings instead: a stale or corrupt table is an error). Free with gl_free. */
int tok_qwen2_merge_ids(const tok_qwen2 *t, int32_t **ids, size_t *nm, gl_err *err);

/* Encodes len bytes of UTF-8 text. Always sets *n to the full token count and writes the first
 * min(cap, *n) ids. Returns GLIMPSE_OK if they all fit (ids == NULL with cap == 0 is a size
 * query and also returns GLIMPSE_OK), GLIMPSE_ERR_TOO_LARGE if cap was too small, and
 * GLIMPSE_ERR_INVALID_ARG for invalid UTF-8 (the message gives the byte offset). */
int tok_qwen2_encode(const tok_qwen2 *t, const char *text, size_t len, int32_t *ids, size_t cap,
                     size_t *n, gl_err *err);

/* The raw bytes of a token (not NUL-terminated; a token may end inside a UTF-8 sequence, so
 * streaming callers should hold back incomplete sequences). NULL for ids out of range. */
const uint8_t *tok_qwen2_token_bytes(const tok_qwen2 *t, int32_t id, size_t *len);
/* The id of a token given by its raw bytes (e.g. "<|im_end|>"), or -1. */
int32_t tok_qwen2_token_id(const tok_qwen2 *t, const char *bytes, size_t len);
/* One more than the largest id. */
int32_t tok_qwen2_n_vocab(const tok_qwen2 *t);

#endif
