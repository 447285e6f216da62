/* api_clip.c — MobileCLIP / MobileCLIP2 behind glimpse.h: open a folder or file as downloaded,
 * embed images and texts. Apple's v1 layout is loaded by api_clip_v1.c. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "io/json.h"

static const float OPENAI_MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float OPENAI_STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The weights file inside a model folder: the safetensors OpenCLIP export, its .bin twin, or
 * Apple's mobileclip*.pt. */
static int find_weights(const char *dir, char *out, size_t n) {
    static const char *const names[] = {"open_clip_model.safetensors", "open_clip_pytorch_model.bin", "model.safetensors"};
    for (size_t i = 0; i < GL_ARRAY_LEN(names); i++) {
        snprintf(out, n, "%s/%s", dir, names[i]);
        if (exists(out)) return 1;
    }
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if ((l > 3 && !strcmp(e->d_name + l - 3, ".pt")) || (l > 12 && !strcmp(e->d_name + l - 12, ".safetensors"))) {
            snprintf(out, n, "%s/%s", dir, e->d_name);
            found = exists(out);
        }
    }
    closedir(d);
    return found;
}

int api_clip_load_vocab(glimpse_model *m, const char *dir, const glimpse_model_params *p) {
    char v[1024], g[1024];
    if (p->vocab_path) {
        size_t l = strlen(p->vocab_path);
        if (l > 3 && !strcmp(p->vocab_path + l - 3, ".gz")) return tok_clip_load_gz(p->vocab_path, &m->ctok, &m->err);
        /* vocab.json with merges.txt beside it */
        snprintf(v, sizeof v, "%s", p->vocab_path);
        char *slash = strrchr(v, '/');
        snprintf(g, sizeof g, "%.*smerges.txt", slash ? (int)(slash - v + 1) : 0, v);
        return tok_clip_load_hf(v, g, &m->ctok, &m->err);
    }
    if (dir) {
        snprintf(v, sizeof v, "%s/vocab.json", dir);
        snprintf(g, sizeof g, "%s/merges.txt", dir);
        if (exists(v) && exists(g)) return tok_clip_load_hf(v, g, &m->ctok, &m->err);
        snprintf(g, sizeof g, "%s/bpe_simple_vocab_16e6.txt.gz", dir);
        if (exists(g)) return tok_clip_load_gz(g, &m->ctok, &m->err);
    }
    return api_fail(&m->err, GLIMPSE_ERR_MISSING,
                    "%s: no CLIP vocabulary (vocab.json + merges.txt or bpe_simple_vocab_16e6.txt.gz) in the model "
                    "folder; pass one with --vocab",
                    dir ? dir : "model");
}

int api_clip_open(glimpse_model *m, const char *path, const glimpse_model_params *p) {
    struct stat st;
    int is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    char wpath[1024], cpath[1024];
    const char *dir = is_dir ? path : NULL;
    if (is_dir) {
        if (!find_weights(path, wpath, sizeof wpath))
            return api_fail(&m->err, GLIMPSE_ERR_MISSING, "%s: no weights (open_clip_model.safetensors, "
                                                          "open_clip_pytorch_model.bin or *.pt) in this folder", path);
    } else {
        snprintf(wpath, sizeof wpath, "%s", path);
    }
    size_t pl = strlen(path);
    if (!is_dir && pl > 5 && !strcmp(path + pl - 5, ".gguf")) return api_clip_open_gguf(m, path, p);
    const char *base = strrchr(path, '/');
    snprintf(m->name, sizeof m->name, "%s", base && base[1] ? base + 1 : path);

    /* config: open_clip_config.json {model_cfg, preprocess_cfg} or Apple's config.json (= model_cfg) */
    cJSON *cfg = NULL;
    const cJSON *mcfg = NULL, *pcfg = NULL;
    if (dir) {
        snprintf(cpath, sizeof cpath, "%s/open_clip_config.json", dir);
        if (!exists(cpath)) snprintf(cpath, sizeof cpath, "%s/config.json", dir);
        if (exists(cpath)) {
            if (io_json_load(cpath, IO_JSON_MAX_DEFAULT, &cfg, &m->err)) return m->err.code;
            mcfg = io_json_path(cfg, "model_cfg");
            if (!mcfg) mcfg = cfg;
            pcfg = io_json_path(cfg, "preprocess_cfg");
        }
    }
    int rc = gl_weights_open(wpath, &m->w, &m->err);
    if (rc) goto done;
    if (gl_weights_find(m->w, "model.embed_tokens.weight") || gl_weights_find(m->w, "model.layers.0.input_layernorm.weight")) {
        rc = api_fail(&m->err, GLIMPSE_ERR_MODEL_KIND, "%s: this is a language/vision-language model, not a CLIP model", path);
        goto done;
    }
    const char *vp = "visual.trunk.";
    int v1 = api_clip_v1_detect(m->w);
    if (v1 && (rc = api_clip_v1_load(m, wpath, mcfg))) goto done;
    const cJSON *vcfg = io_json_path(mcfg, v1 ? "image_cfg" : "vision_cfg"); /* Apple v1 configs say image_cfg */
    int is_vit = !v1 && (gl_weights_find(m->w, "visual.trunk.patch_embed.backbone.0.conv.weight") ||
                         gl_weights_find(m->w, "visual.trunk.patch_embed.proj.weight"));
    if (!v1 && !is_vit && !gl_weights_find(m->w, "visual.trunk.stem.0.conv_kxk.0.conv.weight") &&
        !gl_weights_find(m->w, "visual.trunk.stem.0.reparam_conv.weight")) {
        rc = api_fail(&m->err, GLIMPSE_ERR_MODEL_KIND,
                      "%s: not a MobileCLIP checkpoint (no 'visual.trunk.stem.0' or 'visual.trunk.patch_embed' tensors "
                      "among %zu tensors)", wpath, gl_weights_count(m->w));
        goto done;
    }
    if (is_vit) {
        int vheads = (int)io_json_int(io_json_path(vcfg, "timm_model_kwargs"), "num_heads", 0);
        if ((rc = vit_load(m->w, vp, wpath, vheads, &m->vit, &m->err))) goto done;
    } else if (!v1 && (rc = mci_load(m->w, vp, wpath, &m->vis, &m->err))) {
        goto done;
    }
    /* open_clip: causal unless text_cfg.no_causal_mask. Without a config: of the MobileCLIP2
     * models only B (the conv-stem ViT) is causal (notes §3.1). */
    int b_like = m->vit && vit_has_conv_stem(m->vit);
    int causal = !io_json_bool(io_json_path(mcfg, "text_cfg"), "no_causal_mask", mcfg == NULL && !b_like);
    int heads = (int)io_json_int(io_json_path(mcfg, "text_cfg"), "heads", 0);
    if (!v1 && (rc = clipt_load(m->w, "text.", wpath, causal, heads, &m->txt, &m->err))) goto done;
    m->embed_dim = m->vit ? vit_embed_dim(m->vit) : mci_embed_dim(m->vis);
    if (clipt_embed_dim(m->txt) != m->embed_dim) {
        rc = api_fail(&m->err, GLIMPSE_ERR_FORMAT, "%s: image (%d) and text (%d) embedding widths differ", wpath,
                      m->embed_dim, clipt_embed_dim(m->txt));
        goto done;
    }
    /* A ViT takes exactly the size its position embedding was trained for. */
    int fixed = m->vit ? vit_image_size(m->vit) : 0;
    m->image_size = (int)io_json_int(vcfg, "image_size", fixed ? fixed : 256);
    if (m->image_size < 16 || m->image_size > 4096 || (fixed && m->image_size != fixed)) {
        rc = api_fail(&m->err, GLIMPSE_ERR_FORMAT, "%s: image_size %d does not fit the tower%s", path, m->image_size,
                      fixed ? " (its pos_embed fixes the input size)" : "");
        goto done;
    }
    /* Normalisation: preprocess_cfg when present; else identity, except for S3/S4 (5-stage
     * towers) and L-14 (the patch-conv ViT), which use OpenAI's and, for L-14, bicubic resizing
     * (notes §1.1/§5, OpenCLIP pretrained.py and the Apple model cards). */
    int l14 = m->vit && !vit_has_conv_stem(m->vit);
    int openai = l14 || (m->vis && mci_stride(m->vis) == 64);
    for (int i = 0; i < 3; i++) {
        m->mean[i] = openai ? OPENAI_MEAN[i] : 0.0f;
        m->std[i] = openai ? OPENAI_STD[i] : 1.0f;
        const cJSON *mj = io_json_path(pcfg, "mean"), *sj = io_json_path(pcfg, "std");
        if (cJSON_IsArray(mj) && cJSON_GetArraySize(mj) == 3) m->mean[i] = (float)cJSON_GetArrayItem(mj, i)->valuedouble;
        if (cJSON_IsArray(sj) && cJSON_GetArraySize(sj) == 3) m->std[i] = (float)cJSON_GetArrayItem(sj, i)->valuedouble;
        if (!(m->std[i] > 0)) {
            rc = api_fail(&m->err, GLIMPSE_ERR_FORMAT, "%s: preprocess std must be positive", cpath);
            goto done;
        }
    }
    m->interp = strcmp(io_json_str(pcfg, "interpolation", l14 ? "bicubic" : "bilinear"), "bicubic") ? IO_FILTER_BILINEAR
                                                                                                   : IO_FILTER_BICUBIC;
    const gl_tensor *ls = gl_weights_find(m->w, "logit_scale");
    m->logit_scale = 100.0f;
    if (ls && gl_tensor_numel(ls) == 1) {
        float v;
        if (!gl_tensor_to_f32(ls, &v, NULL)) m->logit_scale = fminf(expf(v), 100.0f);
    }
    rc = api_clip_load_vocab(m, dir, p);
done:
    cJSON_Delete(cfg);
    return rc;
}

void api_clip_close(glimpse_model *m) {
    mci_free(m->vis);
    vit_free(m->vit);
    if (m->mct) mct_free(m->mct);
    else clipt_free(m->txt);
    m->mct = NULL;
    tok_clip_free(m->ctok);
    gl_weights_close(m->w);
    m->vis = NULL;
    m->vit = NULL;
    m->txt = NULL;
    m->ctok = NULL;
    m->w = NULL;
}

static int need_clip(glimpse_ctx *c) {
    if (c->m->kind != GLIMPSE_MODEL_CLIP)
        return api_fail(&c->err, GLIMPSE_ERR_MODEL_KIND, "%s is a FastVLM model: it has no embeddings (use caption/ask)",
                        c->m->name);
    return 0;
}

static void normalize_rows(float *x, int n, int d) {
    for (int i = 0; i < n; i++) op_l2_normalize(x + (size_t)i * d, d);
}

/* n images [3, S, S] after another -> out [n, embed]. The ViT takes them as one batch (its
 * GEMMs see all tokens at once); MCi runs them one by one. */
static int embed_pixels(glimpse_ctx *c, const float *pix, int n, float *out) {
    glimpse_model *m = c->m;
    int S = m->image_size;
    if (m->vit) {
        if (api_ws(c, vit_ws_floats(m->vit, n))) return c->err.code;
        return vit_forward(m->vit, &c->env, pix, n, out, c->ws, NULL, &c->err);
    }
    /* several images: each thread takes whole images (same bits as one at a time) */
    if (n > 1) {
        if (api_ws(c, mci_batch_ws_floats(m->vis, S, S, gl_pool_size(c->pool)))) return c->err.code;
        return mci_forward_batch(m->vis, &c->env, pix, n, S, S, out, c->ws, &c->err);
    }
    if (api_ws(c, mci_ws_floats(m->vis, S, S, gl_pool_size(c->pool)))) return c->err.code;
    return mci_forward(m->vis, &c->env, pix, S, S, out, c->ws, &c->err);
}

glimpse_status glimpse_embed_images(glimpse_ctx *c, const glimpse_image *imgs, int32_t n, float *out, int normalize) {
    if (!c || (n > 0 && (!imgs || !out)) || n < 0) return GLIMPSE_ERR_INVALID_ARG;
    gl_err_clear(&c->err);
    if (need_clip(c)) return c->err.code;
    int S = c->m->image_size;
    float *pix = gl_malloc(sizeof(float) * 3 * (size_t)S * S);
    if (!pix) return api_fail(&c->err, GLIMPSE_ERR_NOMEM, "out of memory");
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        if (imgs[i].width < 1 || imgs[i].height < 1 || !imgs[i].rgb) {
            rc = api_fail(&c->err, GLIMPSE_ERR_INVALID_ARG, "image %d is empty", i);
            break;
        }
        rc = api_preprocess(c->m, &imgs[i], pix, &c->err);
        if (!rc) rc = embed_pixels(c, pix, 1, out + (size_t)i * c->m->embed_dim);
    }
    gl_free(pix);
    if (!rc && normalize) normalize_rows(out, n, c->m->embed_dim);
    return rc;
}

/* Decoding + preprocessing of a batch on the pool: thread ith takes files ith, ith+nth, ... */
typedef struct {
    const glimpse_model *m;
    const char *const *paths;
    int n;
    float *pix;      /* [n, 3, S, S] */
    gl_err *errs;    /* [n] */
} prep_job;

static void prep_task(void *v, int ith, int nth) {
    prep_job *j = v;
    size_t per = 3 * (size_t)j->m->image_size * j->m->image_size;
    for (int i = ith; i < j->n; i += nth) {
        glimpse_image img = {0};
        if (io_image_load(j->paths[i], j->m->max_pixels, &img, &j->errs[i])) continue;
        api_preprocess(j->m, &img, j->pix + (size_t)i * per, &j->errs[i]);
        io_image_free(&img);
    }
}

#define FILE_BATCH 8

glimpse_status glimpse_embed_image_files(glimpse_ctx *c, const char *const *paths, int32_t n, float *out,
                                         int normalize) {
    if (!c || (n > 0 && (!paths || !out)) || n < 0) return GLIMPSE_ERR_INVALID_ARG;
    gl_err_clear(&c->err);
    if (need_clip(c)) return c->err.code;
    size_t per = 3 * (size_t)c->m->image_size * c->m->image_size;
    float *pix = gl_malloc(sizeof(float) * per * FILE_BATCH);
    gl_err *errs = gl_calloc(FILE_BATCH, sizeof *errs);
    int rc = (!pix || !errs) ? api_fail(&c->err, GLIMPSE_ERR_NOMEM, "out of memory") : 0;
    for (int b0 = 0; b0 < n && !rc; b0 += FILE_BATCH) {
        int nb = GL_MIN(FILE_BATCH, n - b0);
        memset(errs, 0, sizeof *errs * FILE_BATCH);
        prep_job j = {c->m, paths + b0, nb, pix, errs};
        gl_pool_run(c->pool, prep_task, &j);
        for (int i = 0; i < nb && !rc; i++) {
            if (errs[i].code) {
                c->err = errs[i];
                rc = errs[i].code;
            }
        }
        if (!rc) rc = embed_pixels(c, pix, nb, out + (size_t)b0 * c->m->embed_dim);
    }
    gl_free(pix);
    gl_free(errs);
    if (!rc && normalize) normalize_rows(out, n, c->m->embed_dim);
    return rc;
}

#define TEXT_BATCH 8

glimpse_status glimpse_embed_texts(glimpse_ctx *c, const char *const *texts, int32_t n, float *out, int normalize) {
    if (!c || (n > 0 && (!texts || !out)) || n < 0) return GLIMPSE_ERR_INVALID_ARG;
    gl_err_clear(&c->err);
    if (need_clip(c)) return c->err.code;
    const glimpse_model *m = c->m;
    int ctx = clipt_context(m->txt);
    int32_t *ids = gl_malloc(sizeof(int32_t) * (size_t)ctx * TEXT_BATCH);
    if (!ids) return api_fail(&c->err, GLIMPSE_ERR_NOMEM, "out of memory");
    int rc = 0;
    for (int b0 = 0; b0 < n && !rc; b0 += TEXT_BATCH) {
        int nb = GL_MIN(TEXT_BATCH, n - b0);
        for (int i = 0; i < nb && !rc; i++) {
            if (!texts[b0 + i]) rc = api_fail(&c->err, GLIMPSE_ERR_INVALID_ARG, "text %d is NULL", b0 + i);
            else rc = tok_clip_encode(m->ctok, texts[b0 + i], strlen(texts[b0 + i]), ids + (size_t)i * ctx, ctx, &c->err);
        }
        int nt = gl_pool_size(c->pool);
        float *o = out + (size_t)b0 * m->embed_dim;
        if (!rc) rc = api_ws(c, m->mct ? mct_ws_floats(m->mct, nb, nt) : clipt_ws_floats(m->txt, nb, nt));
        if (!rc) rc = m->mct ? mct_forward(m->mct, &c->env, ids, nb, o, NULL, c->ws, &c->err)
                             : clipt_forward(m->txt, &c->env, ids, nb, o, c->ws, &c->err);
    }
    gl_free(ids);
    if (!rc && normalize) normalize_rows(out, n, m->embed_dim);
    return rc;
}
