/* api.h — the objects behind glimpse.h's opaque handles (internal). */
#ifndef GL_API_H
#define GL_API_H

#include "glimpse.h"
#include "io/image.h"
#include "models/clip_text.h"
#include "models/fastvlm.h"
#include "models/mci.h"
#include "models/mct.h"
#include "models/vit.h"
#include "text/clip_tok.h"
#include "text/qwen2_tok.h"

struct glimpse_model {
    glimpse_model_kind kind;
    char name[96];
    gl_err err;
    double load_ms;
    uint64_t max_pixels;
    int image_size;
    /* CLIP */
    gl_weights *w;
    mci_model *vis;          /* MCi image tower (S0..S4, v1 S0..S2) */
    vit_model *vit;          /* or ViT image tower (MobileCLIP2-B, L-14) */
    clipt_model *txt;        /* the text transformer (owned by mct when that is set) */
    mct_model *mct;          /* MobileCLIP v1 S0's text tower */
    tok_clip *ctok;
    float mean[3], std[3];
    io_filter interp;
    float logit_scale;
    int embed_dim;
    /* VLM */
    fastvlm_model *vlm;
    tok_qwen2 *qtok;
    int n_vocab_valid;       /* len(tokenizer): logits beyond are masked (official loader) */
    int32_t im_start, im_end, endoftext;
};

struct glimpse_ctx {
    glimpse_model *m;
    gl_err err;
    gl_pool *pool;
    kn_scratch scratch;
    kn_env env;
    float *ws;               /* model activations, grown per input size */
    size_t ws_n;
    char *dump_dir;
    glimpse_timings t;
    /* VLM conversation */
    qwen2_state *st;
    float *img_embeds;       /* [n_image_tokens, hidden] of the current image */
    int has_image, turns;
    int32_t last_token;      /* sampled but not yet fed (the previous answer's stop token) */
    float *logits;
    uint64_t rng;
};

/* Grows ctx->ws to n floats. */
int api_ws(glimpse_ctx *c, size_t n);
double api_now_ms(void);
/* Sets the handle's error and returns code. */
int api_fail(gl_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

int api_clip_open(glimpse_model *m, const char *path, const glimpse_model_params *p);
void api_clip_close(glimpse_model *m);
struct cJSON;
/* MobileCLIP v1 in Apple's naming (api_clip_v1.c): detect, then load m->vis and m->txt/m->mct. */
int api_clip_v1_detect(const gl_weights *w);
int api_clip_v1_load(glimpse_model *m, const char *wpath, const struct cJSON *cfg);
/* A .gguf written by glimpse_convert (api_gguf.c). */
int api_clip_open_gguf(glimpse_model *m, const char *path, const glimpse_model_params *p);
/* The CLIP vocabulary from p->vocab_path or the model folder dir (may be NULL). */
int api_clip_load_vocab(glimpse_model *m, const char *dir, const glimpse_model_params *p);
int api_vlm_open(glimpse_model *m, const char *path, const glimpse_model_params *p);
/* The GGUF pair (api_gguf.c): path = the LLM, p->mmproj_path = the tower + projector. */
int api_vlm_open_gguf(glimpse_model *m, const char *path, const glimpse_model_params *p);
/* After m->vlm and m->qtok are loaded: special tokens and sizes. */
int api_vlm_finish(glimpse_model *m, const char *path);
void api_vlm_close(glimpse_model *m);
void api_vlm_ctx_free(glimpse_ctx *c);
/* Pixels of one image as the model's reference pipeline sees them: [3, S, S] floats. */
int api_preprocess(const glimpse_model *m, const glimpse_image *img, float *out, gl_err *err);

/* Sampling over logits[n] (modified in place). */
int32_t api_sample(float *logits, int n, const glimpse_gen_params *p, const int32_t *recent, int n_recent,
                   uint64_t *rng);

#endif
