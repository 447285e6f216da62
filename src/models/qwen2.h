/* qwen2.h — the Qwen2 decoder of FastVLM (transformers' Qwen2ForCausalLM): GQA attention with
 * q/k/v biases, rotate-half RoPE, RMSNorm, SwiGLU MLP, KV cache. Weights are used as stored
 * (BF16/F16/F32, zero-copy from the mapping). */
#ifndef GL_QWEN2_H
#define GL_QWEN2_H

#include "models/ops.h"
#include "models/wload.h"

typedef struct qwen2_config {
    int n_head, n_kv_head;   /* num_attention_heads, num_key_value_heads */
    float rope_theta;        /* rope_theta */
    float rms_eps;           /* rms_norm_eps */
    int tie_embeddings;      /* tie_word_embeddings: use embed_tokens as the output head */
    int gguf_names;          /* tensors named as llama.cpp's qwen2 GGUF files (blk.N.attn_q, ...) */
} qwen2_config;

/* llama.cpp's name for a Qwen2 tensor given its transformers name without "model." (and
 * "lm_head.weight" for the head): "layers.3.self_attn.q_proj.bias" -> "blk.3.attn_q.bias".
 * Returns 0, or -1 for names it does not know. */
int qwen2_gguf_name(const char *hf, char *out, size_t n);

typedef struct qwen2_model qwen2_model;
typedef struct qwen2_state qwen2_state;

/* prefix: "model." for the decoder tensors; the head is read from "lm_head.weight" (or tied). */
int qwen2_load(const gl_weights *w, const qwen2_config *cfg, const char *file, qwen2_model **out, gl_err *err);
void qwen2_free(qwen2_model *m);
int qwen2_hidden(const qwen2_model *m);
int qwen2_vocab(const qwen2_model *m);
/* The head is the token embedding (tied). */
int qwen2_tied(const qwen2_model *m);
const qwen2_config *qwen2_get_config(const qwen2_model *m);

int qwen2_n_layer(const qwen2_model *m);
int qwen2_n_head(const qwen2_model *m);
int qwen2_head_dim(const qwen2_model *m);
/* Layer l's matrices as stored, in the order q, k, v, o, gate, up, down (benchmarks). */
void qwen2_layer_mats(const qwen2_model *m, int l, wl_mat out[7]);
wl_mat qwen2_head(const qwen2_model *m);

/* A KV cache for up to n_ctx positions and scratch for prefill chunks of up to n_batch tokens. */
int qwen2_state_new(const qwen2_model *m, int n_ctx, int n_batch, int n_threads, qwen2_state **out, gl_err *err);
void qwen2_state_free(qwen2_state *s);
int qwen2_state_pos(const qwen2_state *s);
int qwen2_state_ctx(const qwen2_state *s);
/* Drops cached positions >= pos (to rewind a conversation). */
void qwen2_state_truncate(qwen2_state *s, int pos);

/* Token embeddings: out[n, hidden]. */
int qwen2_embed(const qwen2_model *m, const int32_t *ids, int n, float *out, gl_err *err);
/* Runs n input embeddings [n, hidden] at positions pos..pos+n-1 (appending to the cache) and,
 * if logits is not NULL, writes the logits of the last position [vocab]. */
int qwen2_forward(const qwen2_model *m, qwen2_state *s, const kn_env *env, const float *x, int n, float *logits,
                  gl_err *err);

#endif
