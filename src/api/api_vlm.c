/* api_vlm.c — FastVLM behind glimpse.h: the official prompt (predict.py, conv template qwen_2),
 * the image splice, streaming generation and follow-up turns on the same KV cache. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "io/npy.h"

#define DEFAULT_CTX 4096
#define SYSTEM_PROMPT "You are a helpful assistant."

int api_vlm_open(glimpse_model *m, const char *path, const glimpse_model_params *p) {
    size_t pl = strlen(path);
    if (pl > 5 && !strcmp(path + pl - 5, ".gguf")) return api_vlm_open_gguf(m, path, p);
    const char *base = strrchr(path, '/');
    snprintf(m->name, sizeof m->name, "%s", base && base[1] ? base + 1 : path);
    char v[1024];
    snprintf(v, sizeof v, "%s/vocab.json", path);
    struct stat st;
    if (stat(v, &st) != 0)
        return api_fail(&m->err, GLIMPSE_ERR_MISSING, "%s: no vocab.json: the Qwen2 tokenizer files (vocab.json, "
                                                      "merges.txt, added_tokens.json) must be in the model folder", path);
    int rc = fastvlm_load(path, &m->vlm, &m->err);
    if (!rc) rc = tok_qwen2_load(path, &m->qtok, &m->err);
    if (rc) return rc;
    return api_vlm_finish(m, path);
}

int api_vlm_finish(glimpse_model *m, const char *path) {
    m->image_size = m->vlm->image_size;
    m->im_start = tok_qwen2_token_id(m->qtok, "<|im_start|>", 12);
    m->im_end = tok_qwen2_token_id(m->qtok, "<|im_end|>", 10);
    m->endoftext = tok_qwen2_token_id(m->qtok, "<|endoftext|>", 13);
    if (m->im_start < 0 || m->im_end < 0)
        return api_fail(&m->err, GLIMPSE_ERR_FORMAT, "%s: the tokenizer has no <|im_start|>/<|im_end|> tokens", path);
    /* The official loader resizes the embeddings to len(tokenizer): ids beyond never appear. */
    m->n_vocab_valid = GL_MIN(tok_qwen2_n_vocab(m->qtok), qwen2_vocab(m->vlm->llm));
    return 0;
}

void api_vlm_close(glimpse_model *m) {
    fastvlm_free(m->vlm);
    tok_qwen2_free(m->qtok);
    m->vlm = NULL;
    m->qtok = NULL;
}

void api_vlm_ctx_free(glimpse_ctx *c) {
    qwen2_state_free(c->st);
    gl_free(c->img_embeds);
    gl_free(c->logits);
    c->st = NULL;
}

static int need_vlm(glimpse_ctx *c) {
    if (c->m->kind != GLIMPSE_MODEL_VLM)
        return api_fail(&c->err, GLIMPSE_ERR_MODEL_KIND, "%s is a CLIP model: it cannot caption or answer (use embed/classify)",
                        c->m->name);
    const fastvlm_model *v = c->m->vlm;
    if (!c->st) {
        if (qwen2_state_new(v->llm, DEFAULT_CTX, 512, gl_pool_size(c->pool), &c->st, &c->err)) return c->err.code;
        c->img_embeds = gl_malloc(sizeof(float) * (size_t)v->n_image_tokens * v->hidden);
        c->logits = gl_malloc(sizeof(float) * (size_t)qwen2_vocab(v->llm));
        if (!c->img_embeds || !c->logits) return api_fail(&c->err, GLIMPSE_ERR_NOMEM, "out of memory");
    }
    return 0;
}

static void dump(glimpse_ctx *c, const char *name, const float *x, int nd, int64_t d0, int64_t d1, int64_t d2) {
    if (!c->dump_dir) return;
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", c->dump_dir, name);
    int64_t shape[3] = {d0, d1, d2};
    io_npy_write_f32(p, x, nd, shape, NULL);
}

glimpse_status glimpse_chat_set_image(glimpse_ctx *c, const glimpse_image *img) {
    if (!c) return GLIMPSE_ERR_INVALID_ARG;
    gl_err_clear(&c->err);
    if (need_vlm(c)) return c->err.code;
    const fastvlm_model *v = c->m->vlm;
    qwen2_state_truncate(c->st, 0);
    c->turns = 0;
    c->has_image = 0;
    c->last_token = -1;
    c->t.preprocess_ms = c->t.vision_ms = 0;
    if (!img) return 0;
    if (img->width < 1 || img->height < 1 || !img->rgb) return api_fail(&c->err, GLIMPSE_ERR_INVALID_ARG, "empty image");
    int S = v->image_size;
    size_t npix = 3 * (size_t)S * S, nfeat = (size_t)v->n_image_tokens * v->feat_dim;
    double t0 = api_now_ms();
    if (api_ws(c, fastvlm_ws_floats(v, gl_pool_size(c->pool)) + npix + nfeat)) return c->err.code;
    float *pix = c->ws + c->ws_n - npix - nfeat, *feat = pix + npix;
    if (api_preprocess(c->m, img, pix, &c->err)) return c->err.code;
    double t1 = api_now_ms();
    if (fastvlm_encode_image(v, &c->env, pix, feat, c->img_embeds, c->ws, &c->err)) return c->err.code;
    c->t.preprocess_ms = t1 - t0;
    c->t.vision_ms = api_now_ms() - t1;
    dump(c, "pixels.npy", pix, 3, 3, S, S);
    dump(c, "vision_features.npy", feat, 2, v->n_image_tokens, v->feat_dim, 0);
    dump(c, "image_embeds.npy", c->img_embeds, 2, v->n_image_tokens, v->hidden, 0);
    c->has_image = 1;
    return 0;
}

/* Appends the ids of text to ids[*n] (cap total). */
static int encode_into(glimpse_ctx *c, const char *text, int32_t *ids, size_t cap, size_t *n) {
    size_t k = 0;
    int rc = tok_qwen2_encode(c->m->qtok, text, strlen(text), ids + *n, cap - *n, &k, &c->err);
    if (rc == GLIMPSE_ERR_TOO_LARGE)
        return api_fail(&c->err, GLIMPSE_ERR_CONTEXT_FULL, "the prompt is longer than the context (%zu tokens)", cap);
    *n += k;
    return rc;
}

/* Streams complete UTF-8 characters; holds back an incomplete tail. */
typedef struct { char buf[8]; int n; } utf8_hold;

static size_t utf8_complete(const char *s, size_t n) {
    /* length of the longest prefix that does not end inside a (valid-looking) multi-byte sequence */
    size_t i = n;
    int back = 0;
    while (i > 0 && back < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--, back++;
    if (i == 0) return n;
    unsigned char lead = (unsigned char)s[i - 1];
    int need = lead >= 0xF0 && lead < 0xF8 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (need > 1 && (size_t)back + 1 < (size_t)need) return i - 1;
    return n;
}

static int emit(glimpse_token_fn cb, void *user, int32_t tok, utf8_hold *h, const uint8_t *b, size_t len) {
    char out[512];
    size_t n = 0;
    memcpy(out, h->buf, (size_t)h->n);
    n = (size_t)h->n;
    if (len > sizeof out - n) len = sizeof out - n;
    memcpy(out + n, b, len);
    n += len;
    size_t ok = utf8_complete(out, n);
    h->n = (int)(n - ok);
    memcpy(h->buf, out + ok, (size_t)h->n);
    return cb ? cb(user, tok, out, ok) : 0;
}

glimpse_status glimpse_chat_ask(glimpse_ctx *c, const char *prompt, const glimpse_gen_params *params,
                                 glimpse_token_fn cb, void *user) {
    if (!c || !prompt) return GLIMPSE_ERR_INVALID_ARG;
    gl_err_clear(&c->err);
    if (need_vlm(c)) return c->err.code;
    glimpse_model *m = c->m;
    const fastvlm_model *v = m->vlm;
    glimpse_gen_params p = params ? *params : glimpse_gen_default_params();
    if (p.seed) c->rng = p.seed;
    int n_ctx = qwen2_state_ctx(c->st), pos0 = qwen2_state_pos(c->st);
    size_t cap = (size_t)(n_ctx - pos0), n = 0;
    int32_t *ids = gl_malloc(sizeof(int32_t) * (cap + 1));
    float *seq = NULL;
    int rc = ids ? 0 : api_fail(&c->err, GLIMPSE_ERR_NOMEM, "out of memory");
    /* official template (conv_qwen_2): system, then the user turn with the image first */
    if (!rc && c->turns == 0) {
        rc = encode_into(c, "<|im_start|>system\n" SYSTEM_PROMPT "<|im_end|>\n<|im_start|>user\n", ids, cap, &n);
        if (!rc && c->has_image) {
            if (n >= cap) rc = api_fail(&c->err, GLIMPSE_ERR_CONTEXT_FULL, "the prompt is longer than the context");
            else ids[n++] = FASTVLM_IMAGE_TOKEN;
            if (!rc) rc = encode_into(c, "\n", ids, cap, &n);
        }
    } else if (!rc) {
        /* close the previous answer: its last sampled token (normally <|im_end|>) was not fed */
        if (c->last_token >= 0 && c->last_token != m->im_end && c->last_token != m->endoftext && n < cap)
            ids[n++] = c->last_token;
        if (n < cap) ids[n++] = m->im_end;
        rc = encode_into(c, "\n<|im_start|>user\n", ids, cap, &n);
    }
    if (!rc) rc = encode_into(c, prompt, ids, cap, &n);
    if (!rc) rc = encode_into(c, "<|im_end|>\n<|im_start|>assistant\n", ids, cap, &n);
    int n_seq = 0;
    size_t rows = n + (c->turns == 0 && c->has_image ? (size_t)v->n_image_tokens : 0);
    if (!rc && (int)rows > n_ctx - pos0)
        rc = api_fail(&c->err, GLIMPSE_ERR_CONTEXT_FULL, "the prompt (%zu positions) does not fit in the context (%d left)",
                      rows, n_ctx - pos0);
    if (!rc && !(seq = gl_malloc(sizeof(float) * rows * v->hidden))) rc = api_fail(&c->err, GLIMPSE_ERR_NOMEM, "out of memory");
    if (!rc) rc = fastvlm_splice(v, ids, (int)n, c->has_image ? c->img_embeds : NULL, seq, &n_seq, &c->err);
    double t0 = api_now_ms();
    if (!rc) rc = qwen2_forward(v->llm, c->st, &c->env, seq, n_seq, c->logits, &c->err);
    double t1 = api_now_ms();
    c->t.prefill_ms = t1 - t0;
    c->t.prompt_tokens = n_seq;
    c->t.generated_tokens = 0;
    c->t.decode_ms = 0;
    c->t.ttft_ms = 0;
    c->turns++;
    gl_free(seq);
    if (!rc) dump(c, "logits.npy", c->logits, 1, qwen2_vocab(v->llm), 0, 0);

    int V = qwen2_vocab(v->llm), H = v->hidden;
    int32_t *gen = NULL;
    float *emb = NULL;
    if (!rc && (!(gen = gl_malloc(sizeof(int32_t) * (size_t)(p.max_new_tokens + 1))) ||
                !(emb = gl_malloc(sizeof(float) * (size_t)H))))
        rc = api_fail(&c->err, GLIMPSE_ERR_NOMEM, "out of memory");
    utf8_hold hold = {{0}, 0};
    c->last_token = -1;
    double t_first = t1;
    for (int i = 0; !rc && i < p.max_new_tokens; i++) {
        if (p.cancel && *p.cancel) {
            rc = api_fail(&c->err, GLIMPSE_ERR_CANCELLED, "cancelled");
            break;
        }
        for (int k = m->n_vocab_valid; k < V; k++) c->logits[k] = -INFINITY;
        int32_t tok = api_sample(c->logits, V, &p, gen, i, &c->rng);
        if (i == 0) {
            t_first = api_now_ms();
            c->t.ttft_ms = c->t.preprocess_ms + c->t.vision_ms + (t_first - t0);
        }
        if (tok == m->im_end || tok == m->endoftext) {
            c->last_token = tok;
            break;
        }
        gen[i] = tok;
        c->t.generated_tokens = i + 1;
        size_t bl = 0;
        const uint8_t *b = tok_qwen2_token_bytes(m->qtok, tok, &bl);
        if (tok >= m->endoftext && m->endoftext >= 0) bl = 0; /* skip_special_tokens */
        if (emit(cb, user, tok, &hold, b, b ? bl : 0)) break;
        if (i + 1 == p.max_new_tokens) {
            c->last_token = tok; /* not fed yet: the next turn feeds it before closing the answer */
            break;
        }
        if (qwen2_state_pos(c->st) >= n_ctx) {
            rc = api_fail(&c->err, GLIMPSE_ERR_CONTEXT_FULL, "context full after %d tokens", i + 1);
            break;
        }
        rc = qwen2_embed(v->llm, &tok, 1, emb, &c->err);
        if (!rc) rc = qwen2_forward(v->llm, c->st, &c->env, emb, 1, c->logits, &c->err);
    }
    if (hold.n && cb) cb(user, -1, hold.buf, (size_t)hold.n); /* flush an invalid tail */
    if (c->t.generated_tokens > 0) c->t.decode_ms = api_now_ms() - t_first;
    gl_free(gen);
    gl_free(emb);
    gl_free(ids);
    return rc;
}
