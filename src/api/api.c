/* api.c — model kind detection, handles, contexts: the common part of glimpse.h. */
#include "api.h"
#include "io/gguf.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "io/json.h"

double api_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int api_fail(gl_err *e, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    e->code = code;
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

int api_ws(glimpse_ctx *c, size_t n) {
    if (c->ws_n >= n) return 0;
    gl_aligned_free(c->ws);
    c->ws_n = 0;
    c->ws = gl_aligned_alloc(64, n * sizeof(float));
    if (!c->ws) return api_fail(&c->err, GLIMPSE_ERR_NOMEM, "out of memory (%zu MB of activations)", n * 4 >> 20);
    c->ws_n = n;
    return 0;
}

glimpse_model_params glimpse_model_default_params(void) {
    glimpse_model_params p = {NULL, GLIMPSE_DEFAULT_MAX_PIXELS, NULL};
    return p;
}

glimpse_ctx_params glimpse_ctx_default_params(void) {
    glimpse_ctx_params p = {1};
    return p;
}

glimpse_gen_params glimpse_gen_default_params(void) {
    glimpse_gen_params p = {256, 0.0f, 0, 1.0f, 0.0f, 1.0f, 0, NULL};
    return p;
}

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int file_exists(const char *dir, const char *name) {
    char p[1024];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* A folder with config.json naming a LLaVA/FastVLM model is a VLM; anything else with CLIP
 * configs or tensors is tried as CLIP. */
static glimpse_model_kind sniff_kind(const char *path) {
    size_t pl = strlen(path);
    if (!is_dir(path) && pl > 5 && !strcmp(path + pl - 5, ".gguf")) {
        /* a converted file: its architecture says which */
        gl_weights *w = NULL;
        gl_err e = {0};
        glimpse_model_kind k = GLIMPSE_MODEL_CLIP;
        if (!gl_weights_open(path, &w, &e) && !strcmp(io_gguf_get_str(gl_weights_gguf(w), "general.architecture", ""), "qwen2"))
            k = GLIMPSE_MODEL_VLM;
        gl_weights_close(w);
        return k;
    }
    if (!is_dir(path)) return GLIMPSE_MODEL_CLIP;
    if (file_exists(path, "open_clip_config.json")) return GLIMPSE_MODEL_CLIP;
    char p[1024];
    snprintf(p, sizeof p, "%s/config.json", path);
    cJSON *cfg = NULL;
    gl_err e = {0};
    if (io_json_load(p, IO_JSON_MAX_DEFAULT, &cfg, &e)) return GLIMPSE_MODEL_CLIP;
    glimpse_model_kind k = GLIMPSE_MODEL_CLIP;
    const char *mt = io_json_str(cfg, "model_type", "");
    if (io_json_str(cfg, "mm_vision_tower", NULL) || strstr(mt, "llava") || strstr(mt, "qwen")) k = GLIMPSE_MODEL_VLM;
    cJSON_Delete(cfg);
    return k;
}

glimpse_status glimpse_model_open(const char *path, const glimpse_model_params *params, glimpse_model **out,
                                  char *errbuf, size_t errlen) {
    if (!path || !out) {
        if (errbuf && errlen) snprintf(errbuf, errlen, "glimpse_model_open: NULL argument");
        return GLIMPSE_ERR_INVALID_ARG;
    }
    glimpse_model_params p = params ? *params : glimpse_model_default_params();
    if (!p.max_pixels) p.max_pixels = GLIMPSE_DEFAULT_MAX_PIXELS;
    glimpse_model *m = gl_calloc(1, sizeof *m);
    if (!m) {
        if (errbuf && errlen) snprintf(errbuf, errlen, "out of memory");
        return GLIMPSE_ERR_NOMEM;
    }
    double t0 = api_now_ms();
    m->max_pixels = p.max_pixels;
    struct stat st;
    int rc;
    if (stat(path, &st) != 0) {
        rc = api_fail(&m->err, GLIMPSE_ERR_IO, "%s: no such file or folder", path);
    } else {
        m->kind = sniff_kind(path);
        rc = m->kind == GLIMPSE_MODEL_VLM ? api_vlm_open(m, path, &p) : api_clip_open(m, path, &p);
    }
    if (rc) {
        gl_err_copy(&m->err, errbuf, errlen);
        glimpse_model_close(m);
        return rc;
    }
    m->load_ms = api_now_ms() - t0;
    *out = m;
    return GLIMPSE_OK;
}

void glimpse_model_close(glimpse_model *m) {
    if (!m) return;
    api_clip_close(m);
    api_vlm_close(m);
    gl_free(m);
}

glimpse_model_kind glimpse_model_get_kind(const glimpse_model *m) { return m ? m->kind : GLIMPSE_MODEL_UNKNOWN; }
const char *glimpse_model_name(const glimpse_model *m) { return m ? m->name : ""; }
const char *glimpse_model_errmsg(const glimpse_model *m) {
    return m ? (m->err.msg[0] ? m->err.msg : glimpse_status_str(m->err.code)) : "NULL model";
}
int32_t glimpse_embed_dim(const glimpse_model *m) { return m && m->kind == GLIMPSE_MODEL_CLIP ? m->embed_dim : 0; }
int32_t glimpse_image_size(const glimpse_model *m) { return m ? m->image_size : 0; }
float glimpse_logit_scale(const glimpse_model *m) { return m ? m->logit_scale : 0; }

glimpse_status glimpse_ctx_new(glimpse_model *m, const glimpse_ctx_params *params, glimpse_ctx **out) {
    if (!m || !out) return GLIMPSE_ERR_INVALID_ARG;
    glimpse_ctx *c = gl_calloc(1, sizeof *c);
    if (!c) return api_fail(&m->err, GLIMPSE_ERR_NOMEM, "out of memory");
    int nt = params && params->n_threads > 0 ? params->n_threads : 1;
    c->m = m;
    c->pool = gl_pool_new(nt);
    if (!c->pool) {
        gl_free(c);
        return api_fail(&m->err, GLIMPSE_ERR_NOMEM, "cannot start %d threads", nt);
    }
    c->env = kn_env_native(c->pool);
    c->env.scratch = &c->scratch;
    c->last_token = -1;
    c->t.load_ms = m->load_ms;
    *out = c;
    return GLIMPSE_OK;
}

void glimpse_ctx_free(glimpse_ctx *c) {
    if (!c) return;
    api_vlm_ctx_free(c);
    gl_pool_free(c->pool);
    kn_scratch_free(&c->scratch);
    gl_aligned_free(c->ws);
    gl_free(c->dump_dir);
    gl_free(c);
}

const char *glimpse_ctx_errmsg(const glimpse_ctx *c) {
    return c ? (c->err.msg[0] ? c->err.msg : glimpse_status_str(c->err.code)) : "NULL context";
}

glimpse_timings glimpse_ctx_timings(const glimpse_ctx *c) {
    glimpse_timings t;
    memset(&t, 0, sizeof t);
    return c ? c->t : t;
}

glimpse_status glimpse_ctx_set_dump_dir(glimpse_ctx *c, const char *dir) {
    if (!c) return GLIMPSE_ERR_INVALID_ARG;
    gl_free(c->dump_dir);
    c->dump_dir = NULL;
    if (dir && !(c->dump_dir = gl_strdup(dir))) return api_fail(&c->err, GLIMPSE_ERR_NOMEM, "out of memory");
    return GLIMPSE_OK;
}

glimpse_status glimpse_tokenize(glimpse_model *m, const char *text, int32_t *ids, int32_t cap, int32_t *n_out) {
    if (!m || !text || !n_out || cap < 0) return GLIMPSE_ERR_INVALID_ARG;
    gl_err_clear(&m->err);
    size_t n = 0, len = strlen(text);
    int rc;
    if (m->kind == GLIMPSE_MODEL_CLIP) {
        int ctx = m->txt ? clipt_context(m->txt) : 77;
        int32_t tmp[1024];
        if (ctx > 1024) return api_fail(&m->err, GLIMPSE_ERR_UNSUPPORTED, "context %d too long", ctx);
        rc = tok_clip_encode(m->ctok, text, len, tmp, ctx, &m->err);
        if (rc) return rc;
        n = (size_t)ctx;
        if (ids) memcpy(ids, tmp, sizeof(int32_t) * GL_MIN(n, (size_t)cap));
        rc = n > (size_t)cap ? GLIMPSE_ERR_TOO_LARGE : 0;
    } else {
        rc = tok_qwen2_encode(m->qtok, text, len, ids, (size_t)cap, &n, &m->err);
    }
    *n_out = (int32_t)n;
    if (rc == GLIMPSE_ERR_TOO_LARGE) api_fail(&m->err, rc, "%zu tokens do not fit in %d", n, cap);
    return rc;
}

int api_preprocess(const glimpse_model *m, const glimpse_image *img, float *out, gl_err *err) {
    glimpse_image a = {0}, b = {0};
    int S = m->image_size, rc;
    if (m->kind == GLIMPSE_MODEL_VLM) {
        /* LLaVA expand2square with black (image_mean 0), then Pillow bicubic to S x S */
        static const uint8_t black[3] = {0, 0, 0};
        rc = io_image_pad_square(img, black, &a, err);
        if (!rc) rc = io_image_resize(&a, S, S, IO_FILTER_BICUBIC, &b, err);
        if (!rc) io_image_to_chw(&b, NULL, NULL, out);
    } else {
        /* OpenCLIP eval transform: Resize(S) shortest side, CenterCrop(S), ToTensor, Normalize */
        rc = io_image_resize_short_side(img, S, m->interp, &a, err);
        if (!rc) rc = io_image_center_crop(&a, S, S, &b, err);
        if (!rc) io_image_to_chw(&b, m->mean, m->std, out);
    }
    io_image_free(&a);
    io_image_free(&b);
    return rc;
}
