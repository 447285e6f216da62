/* api_gguf.c — glimpse_convert (a model as downloaded -> one GGUF file) and opening such a
 * file again (api_clip_open_gguf).
 *
 * MobileCLIP / MobileCLIP2 ("general.architecture" = "mobileclip"):
 *   metadata  mobileclip.image_size, .image_mean[3], .image_std[3], .interpolation,
 *             .logit_scale (exp'd and clamped, as used), .text.causal, .text.head_count;
 *             tokenizer.ggml.model = "clip", tokenizer.ggml.tokens (by id), tokenizer.ggml.merges
 *   tensors   v.*     the image tower in inference form (models/mci_io.c)
 *             text.*  the text tower under its OpenCLIP names; the four matrices of each block
 *                     quantized (Q types) or f16 (F16) with the token embedding
 * The inference form (folded) is stored rather than the training form because folding mixes
 * BatchNorm scales and layer scales into the weights: only folded weights can be quantized once
 * and then used in place. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "core/fp16.h"
#include "core/quant.h"
#include "io/gguf.h"
#include "io/json.h"

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static gl_dtype wtype_dtype(glimpse_wtype t) {
    return t == GLIMPSE_WTYPE_Q8_0 ? GL_Q8_0 : t == GLIMPSE_WTYPE_Q4_0 ? GL_Q4_0 : t == GLIMPSE_WTYPE_F16 ? GL_F16 : GL_F32;
}

/* ggml's llama_ftype numbers (general.file_type): ALL_F32 0, MOSTLY_F16 1, MOSTLY_Q4_0 2, MOSTLY_Q8_0 7. */
static int ftype_of(glimpse_wtype t) {
    return t == GLIMPSE_WTYPE_Q8_0 ? 7 : t == GLIMPSE_WTYPE_Q4_0 ? 2 : t == GLIMPSE_WTYPE_F16 ? 1 : 0;
}

/* Adds src (any float dtype) as dtype to; converted data is kept in keep until the write. */
static int add_converted(io_gguf_writer *gw, gl_blobs *keep, const char *name, const gl_tensor *src, gl_dtype to,
                         gl_err *err) {
    int64_t n = gl_tensor_numel(src);
    size_t nbytes;
    if (src->dtype == to) return io_gguf_writer_add_tensor(gw, name, to, src->ndim, src->shape, src->data, src->nbytes);
    float *f = gl_malloc(sizeof(float) * (size_t)(n ? n : 1));
    if (!f) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
    int rc = gl_tensor_to_f32(src, f, err);
    void *dst = NULL;
    if (!rc && !gl_dtype_nbytes(to, (uint64_t)n, &nbytes)) rc = gl_err_set(err, GLIMPSE_ERR_INTERNAL, "bad size");
    if (!rc && to == GL_F32) {
        dst = gl_blobs_alloc(keep, nbytes);
        if (dst) memcpy(dst, f, nbytes);
    } else if (!rc && (dst = gl_blobs_alloc(keep, nbytes))) {
        if (to == GL_F16)
            for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = gl_f32_to_f16(f[i]);
        else {
            int64_t cols = src->shape[src->ndim - 1];
            size_t rb = (size_t)(cols / GL_QK) * gl_dtype_size(to);
            for (int64_t r = 0; r < n / cols; r++) gl_quantize_row(to, f + r * cols, (uint8_t *)dst + r * rb, cols);
        }
    }
    gl_free(f);
    if (rc) return rc;
    if (!dst) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
    rc = io_gguf_writer_add_tensor(gw, name, to, src->ndim, src->shape, dst, nbytes);
    return rc ? gl_err_set(err, rc, "cannot add tensor '%s'", name) : 0;
}

/* ViT blocks' matrices and the head quantized; at Q4_0 only mlp.fc1 (half of a block's
 * weights) takes 4 bits, the rest Q8_0: with the residual writers alone at Q8_0 (as in the text
 * and MCi towers) the tiny B golden's embedding fell to cosine 0.988, under the 0.99 floor. */
static int vit_dtype(const gl_tensor *t, glimpse_wtype type) {
    static const char *const mats[] = {"attn.qkv.weight", "attn.proj.weight", "mlp.fc1.weight", "mlp.fc2.weight",
                                       "trunk.head.weight"};
    int is_mat = 0;
    for (size_t i = 0; i < GL_ARRAY_LEN(mats); i++) is_mat |= ends_with(t->name, mats[i]);
    if (!is_mat || t->ndim != 2) return GL_F32; /* convs, norms, embeddings: read as f32 */
    if ((type == GLIMPSE_WTYPE_Q8_0 || type == GLIMPSE_WTYPE_Q4_0) && t->shape[1] % GL_QK == 0)
        return type == GLIMPSE_WTYPE_Q4_0 && !ends_with(t->name, "mlp.fc1.weight") ? GL_Q8_0 : wtype_dtype(type);
    return type == GLIMPSE_WTYPE_F32 ? GL_F32 : GL_F16;
}

static int text_dtype(const gl_tensor *t, glimpse_wtype type) {
    static const char *const mats[] = {"attn.in_proj_weight", "attn.out_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"};
    int is_mat = 0;
    for (size_t i = 0; i < GL_ARRAY_LEN(mats); i++) is_mat |= ends_with(t->name, mats[i]);
    if (is_mat && t->ndim == 2) {
        /* at Q4_0 the residual writers (out_proj, c_proj) stay Q8_0: see mci_io.c save_type
         * (text cosine 0.984 -> 0.998 on a random full-size S0) */
        if (type == GLIMPSE_WTYPE_Q4_0 && t->shape[1] % GL_QK == 0 &&
            (ends_with(t->name, "attn.out_proj.weight") || ends_with(t->name, "mlp.c_proj.weight")))
            return GL_Q8_0;
        if ((type == GLIMPSE_WTYPE_Q8_0 || type == GLIMPSE_WTYPE_Q4_0) && t->shape[1] % GL_QK == 0) return wtype_dtype(type);
        return type == GLIMPSE_WTYPE_F32 ? GL_F32 : GL_F16;
    }
    if (ends_with(t->name, "token_embedding.weight")) return type == GLIMPSE_WTYPE_F32 ? GL_F32 : GL_F16;
    return GL_F32; /* read as f32 by the loader anyway */
}

static int set_tokenizer(io_gguf_writer *gw, const tok_clip *tok, gl_err *err) {
    size_t n = tok_clip_n_tokens(tok), nm = tok_clip_n_merges(tok);
    char **s = gl_calloc(GL_MAX(n, nm) + 1, sizeof *s);
    if (!s) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
    int rc = io_gguf_writer_set_str(gw, "tokenizer.ggml.model", "clip");
    for (int pass = 0; pass < 2 && !rc; pass++) {
        size_t cnt = pass ? nm : n;
        for (size_t i = 0; i < cnt && !rc; i++) {
            size_t len;
            const char *p = pass ? tok_clip_merge_str(tok, i, &len) : tok_clip_token_str(tok, i, &len);
            if (!(s[i] = gl_malloc(len + 1))) rc = GLIMPSE_ERR_NOMEM;
            else memcpy(s[i], p, len), s[i][len] = 0;
        }
        if (!rc) rc = io_gguf_writer_set_arr_str(gw, pass ? "tokenizer.ggml.merges" : "tokenizer.ggml.tokens",
                                                 (const char *const *)s, cnt);
        for (size_t i = 0; i < cnt; i++) gl_free(s[i]), s[i] = NULL;
    }
    gl_free(s);
    return rc ? gl_err_set(err, rc, "cannot write the tokenizer") : 0;
}

static int convert_clip(glimpse_model *m, const char *out, glimpse_wtype type, glimpse_wtype vt, gl_err *err) {
    /* The GGUF layout holds an MCi image tower and the OpenCLIP-named text transformer. ViT towers
     * (MobileCLIP2-B, L-14, v1 B) crashed here and MobileCLIP v1 checkpoints (Apple's text names,
     * v1 S0's MCt text) came out without a text tower: refused until the layout has them. */
    int vit = m->vit && gl_weights_find(m->w, "visual.trunk.pos_embed");
    if ((!m->vis && !vit) || m->mct || !gl_weights_find(m->w, "text.token_embedding.weight"))
        return gl_err_set(err, GLIMPSE_ERR_UNSUPPORTED,
                          "%s: GGUF conversion supports MobileCLIP2 (OpenCLIP or Apple .pt) only, not MobileCLIP v1 "
                          "checkpoints; use the model as downloaded", m->name);
    io_gguf_writer *gw = io_gguf_writer_new(32);
    gl_blobs keep = {0};
    if (!gw) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
    int rc = io_gguf_writer_set_str(gw, "general.architecture", "mobileclip");
    if (!rc) rc = io_gguf_writer_set_str(gw, "general.name", m->name);
    if (!rc) rc = io_gguf_writer_set_int(gw, "general.file_type", IO_GGUF_U32, ftype_of(type));
    if (!rc) rc = io_gguf_writer_set_int(gw, "mobileclip.image_size", IO_GGUF_U32, m->image_size);
    if (!rc) rc = io_gguf_writer_set_arr(gw, "mobileclip.image_mean", IO_GGUF_F32, m->mean, 3);
    if (!rc) rc = io_gguf_writer_set_arr(gw, "mobileclip.image_std", IO_GGUF_F32, m->std, 3);
    if (!rc) rc = io_gguf_writer_set_str(gw, "mobileclip.interpolation", m->interp == IO_FILTER_BICUBIC ? "bicubic" : "bilinear");
    if (!rc) rc = io_gguf_writer_set_float(gw, "mobileclip.logit_scale", IO_GGUF_F32, m->logit_scale);
    if (!rc) rc = io_gguf_writer_set_int(gw, "mobileclip.text.causal", IO_GGUF_BOOL, clipt_causal(m->txt));
    if (!rc) rc = io_gguf_writer_set_int(gw, "mobileclip.text.head_count", IO_GGUF_U32, clipt_n_head(m->txt));
    if (rc) rc = gl_err_set(err, rc, "cannot write metadata");
    if (!rc) rc = set_tokenizer(gw, m->ctok, err);
    /* MCi towers in their folded form ("v."); ViT towers (B, L-14) under their OpenCLIP names as
     * vit.c reads them (its conv stem's BatchNorms fold at load, as from the folder) */
    if (!rc && vit) rc = io_gguf_writer_set_int(gw, "mobileclip.vision.head_count", IO_GGUF_U32, vit_n_head(m->vit));
    if (!rc && !vit) rc = mci_save_gguf(m->vis, gw, "v.", wtype_dtype(vt), &keep, err);
    for (size_t i = 0; !rc && i < gl_weights_count(m->w); i++) {
        const gl_tensor *t = gl_weights_at(m->w, i);
        if (t->dtype == GL_I64 || t->dtype == GL_I32) continue;
        if (!strncmp(t->name, "text.", 5)) rc = add_converted(gw, &keep, t->name, t, text_dtype(t, type), err);
        else if (vit && !strncmp(t->name, "visual.", 7)) rc = add_converted(gw, &keep, t->name, t, vit_dtype(t, vt), err);
    }
    if (!rc) rc = io_gguf_writer_write(gw, out, err);
    io_gguf_writer_free(gw);
    gl_blobs_free(&keep);
    return rc;
}

/* ---- loading ---- */

static int load_tokenizer(glimpse_model *m, const io_gguf *g, const char *path) {
    const io_gguf_kv *tk = io_gguf_find_kv(g, "tokenizer.ggml.tokens"), *mk = io_gguf_find_kv(g, "tokenizer.ggml.merges");
    if (!tk || !mk || tk->type != IO_GGUF_ARRAY || mk->type != IO_GGUF_ARRAY || tk->arr_type != IO_GGUF_STRING ||
        mk->arr_type != IO_GGUF_STRING || strcmp(io_gguf_get_str(g, "tokenizer.ggml.model", ""), "clip"))
        return api_fail(&m->err, GLIMPSE_ERR_MISSING, "%s: no CLIP tokenizer in the metadata (tokenizer.ggml.*)", path);
    size_t n = tk->n, nm = mk->n;
    const char **ts = gl_calloc(n + nm + 1, sizeof *ts);
    size_t *tl = gl_calloc(n + nm + 1, sizeof *tl);
    int rc = (ts && tl) ? 0 : api_fail(&m->err, GLIMPSE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n + nm; i++)
        if (!(ts[i] = i < n ? io_gguf_arr_str(tk, i, &tl[i]) : io_gguf_arr_str(mk, i - n, &tl[i])))
            rc = api_fail(&m->err, GLIMPSE_ERR_FORMAT, "%s: bad tokenizer string %zu", path, i);
    if (!rc) rc = tok_clip_load_lists(ts, tl, n, ts + n, tl + n, nm, path, &m->ctok, &m->err);
    gl_free(ts);
    gl_free(tl);
    return rc;
}

int api_clip_open_gguf(glimpse_model *m, const char *path, const glimpse_model_params *p) {
    int rc = gl_weights_open(path, &m->w, &m->err);
    if (rc) return rc;
    const io_gguf *g = gl_weights_gguf(m->w);
    const char *arch = io_gguf_get_str(g, "general.architecture", "");
    if (!g || strcmp(arch, "mobileclip"))
        return api_fail(&m->err, GLIMPSE_ERR_MODEL_KIND, "%s: a GGUF file of architecture '%s', not 'mobileclip'", path, arch);
    snprintf(m->name, sizeof m->name, "%s", io_gguf_get_str(g, "general.name", path));
    if (gl_weights_find(m->w, "visual.trunk.pos_embed")) { /* a ViT tower (MobileCLIP2-B, L-14) */
        int vheads = (int)io_gguf_get_int(g, "mobileclip.vision.head_count", 0);
        if ((rc = vit_load(m->w, "visual.trunk.", path, vheads, &m->vit, &m->err))) return rc;
    } else {
        if ((rc = mci_load_gguf(m->w, "v.", path, &m->vis, &m->err))) return rc;
        mci_pack_quant(m->vis); /* small images: per-call packing would be a visible share (mci.h) */
    }
    int causal = (int)io_gguf_get_int(g, "mobileclip.text.causal", 0);
    int heads = (int)io_gguf_get_int(g, "mobileclip.text.head_count", 0);
    if ((rc = clipt_load(m->w, "text.", path, causal, heads, &m->txt, &m->err))) return rc;
    m->embed_dim = m->vit ? vit_embed_dim(m->vit) : mci_embed_dim(m->vis);
    if (clipt_embed_dim(m->txt) != m->embed_dim)
        return api_fail(&m->err, GLIMPSE_ERR_FORMAT, "%s: image (%d) and text (%d) embedding widths differ", path,
                        m->embed_dim, clipt_embed_dim(m->txt));
    m->image_size = (int)io_gguf_get_int(g, "mobileclip.image_size", 0);
    if (m->image_size < 16 || m->image_size > 4096 || (m->vit && m->image_size != vit_image_size(m->vit)))
        return api_fail(&m->err, GLIMPSE_ERR_FORMAT, "%s: mobileclip.image_size %d is missing or out of range", path, m->image_size);
    const io_gguf_kv *mk = io_gguf_find_kv(g, "mobileclip.image_mean"), *sk = io_gguf_find_kv(g, "mobileclip.image_std");
    if (!mk || !sk || mk->type != IO_GGUF_ARRAY || sk->type != IO_GGUF_ARRAY || mk->n != 3 || sk->n != 3)
        return api_fail(&m->err, GLIMPSE_ERR_MISSING, "%s: mobileclip.image_mean / image_std must be 3 numbers", path);
    for (int i = 0; i < 3; i++) {
        m->mean[i] = (float)io_gguf_arr_float(mk, (uint64_t)i);
        m->std[i] = (float)io_gguf_arr_float(sk, (uint64_t)i);
        if (!(m->std[i] > 0)) return api_fail(&m->err, GLIMPSE_ERR_FORMAT, "%s: image_std must be positive", path);
    }
    m->interp = strcmp(io_gguf_get_str(g, "mobileclip.interpolation", "bilinear"), "bicubic") ? IO_FILTER_BILINEAR
                                                                                                : IO_FILTER_BICUBIC;
    m->logit_scale = (float)io_gguf_get_float(g, "mobileclip.logit_scale", 100.0);
    if (p && p->vocab_path) return api_clip_load_vocab(m, NULL, p);
    return load_tokenizer(m, g, path);
}

int api_vlm_open_gguf(glimpse_model *m, const char *path, const glimpse_model_params *p) {
    const char *base = strrchr(path, '/');
    snprintf(m->name, sizeof m->name, "%s", base && base[1] ? base + 1 : path);
    /* Without a named vision file, take the one `glimpse convert` wrote beside it. */
    char beside[1024];
    const char *mmproj = p ? p->mmproj_path : NULL;
    if (!mmproj) {
        int dl = base ? (int)(base - path + 1) : 0;
        struct stat st;
        if (snprintf(beside, sizeof beside, "%.*smmproj-%s", dl, path, path + dl) < (int)sizeof beside &&
            !stat(beside, &st) && S_ISREG(st.st_mode))
            mmproj = beside;
    }
    if (!mmproj)
        return api_fail(&m->err, GLIMPSE_ERR_MISSING,
                        "%s: a FastVLM GGUF needs its vision file too (--mmproj mmproj-....gguf)", path);
    int rc = fastvlm_load_gguf(path, mmproj, &m->vlm, &m->err);
    if (rc) return rc;
    const io_gguf *g = gl_weights_gguf(m->vlm->w);
    const io_gguf_kv *tk = io_gguf_find_kv(g, "tokenizer.ggml.tokens"), *ty = io_gguf_find_kv(g, "tokenizer.ggml.token_type");
    const io_gguf_kv *mk = io_gguf_find_kv(g, "tokenizer.ggml.merges");
    if (!tk || !ty || !mk || tk->type != IO_GGUF_ARRAY || tk->arr_type != IO_GGUF_STRING || mk->type != IO_GGUF_ARRAY ||
        mk->arr_type != IO_GGUF_STRING || ty->type != IO_GGUF_ARRAY || ty->n != tk->n ||
        strcmp(io_gguf_get_str(g, "tokenizer.ggml.model", ""), "gpt2"))
        return api_fail(&m->err, GLIMPSE_ERR_MISSING, "%s: no GPT-2 style tokenizer in the metadata (tokenizer.ggml.*)", path);
    size_t n = tk->n, nm = mk->n;
    const char **ts = gl_calloc(n + nm + 1, sizeof *ts);
    size_t *tl = gl_calloc(n + nm + 1, sizeof *tl);
    int32_t *types = gl_calloc(n + 1, sizeof *types);
    rc = (ts && tl && types) ? 0 : api_fail(&m->err, GLIMPSE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !rc && i < n + nm; i++)
        if (!(ts[i] = i < n ? io_gguf_arr_str(tk, i, &tl[i]) : io_gguf_arr_str(mk, i - n, &tl[i])))
            rc = api_fail(&m->err, GLIMPSE_ERR_FORMAT, "%s: bad tokenizer string %zu", path, i);
    for (size_t i = 0; !rc && i < n; i++) types[i] = (int32_t)io_gguf_arr_int(ty, i);
    /* id triples of the merges, when `glimpse convert` stored them (checked as they are used) */
    const io_gguf_kv *mi = io_gguf_find_kv(g, "glimpse.tokenizer.merge_ids");
    int32_t *mids = NULL;
    if (!rc && mi && mi->type == IO_GGUF_ARRAY && mi->arr_type == IO_GGUF_I32 && mi->n == 3 * (uint64_t)nm) {
        if ((mids = gl_malloc((size_t)mi->n * sizeof *mids + 1))) memcpy(mids, mi->data, (size_t)mi->n * sizeof *mids);
        else rc = api_fail(&m->err, GLIMPSE_ERR_NOMEM, "out of memory");
    }
    if (!rc) rc = tok_qwen2_load_lists(ts, tl, types, n, ts + n, tl + n, nm, mids, path, &m->qtok, &m->err);
    gl_free(mids);
    gl_free(ts);
    gl_free(tl);
    gl_free(types);
    return rc ? rc : api_vlm_finish(m, path);
}

/* ---- converting ---- */

/* The storage type of one LLM tensor (llama.cpp names): matrices at type when their rows are
 * whole blocks (else f16); the token embedding, which is also the tied head, at Q8_0 for both
 * quantized types (as llama.cpp keeps the output in higher precision); vectors f32. */
static gl_dtype llm_dtype(const gl_tensor *t, const char *name, glimpse_wtype type) {
    if (t->ndim != 2) return GL_F32;
    int q = type == GLIMPSE_WTYPE_Q8_0 || type == GLIMPSE_WTYPE_Q4_0, whole = t->shape[1] % GL_QK == 0;
    if (type == GLIMPSE_WTYPE_F32) return GL_F32;
    if (!q || !whole) return GL_F16;
    if (!strcmp(name, "token_embd.weight") || !strcmp(name, "output.weight")) return GL_Q8_0;
    return wtype_dtype(type);
}

static int set_qwen2_tokenizer(io_gguf_writer *gw, glimpse_model *m, gl_err *err) {
    char **tok = NULL, **mer = NULL;
    int32_t *types = NULL;
    size_t n = 0, nm = 0;
    int rc = tok_qwen2_export(m->qtok, (size_t)qwen2_vocab(m->vlm->llm), &tok, &types, &n, &mer, &nm, err);
    if (rc) return rc;
    rc = io_gguf_writer_set_str(gw, "tokenizer.ggml.model", "gpt2");
    if (!rc) rc = io_gguf_writer_set_str(gw, "tokenizer.ggml.pre", "qwen2");
    if (!rc) rc = io_gguf_writer_set_arr_str(gw, "tokenizer.ggml.tokens", (const char *const *)tok, n);
    if (!rc) rc = io_gguf_writer_set_arr(gw, "tokenizer.ggml.token_type", IO_GGUF_I32, types, n);
    if (!rc) rc = io_gguf_writer_set_arr_str(gw, "tokenizer.ggml.merges", (const char *const *)mer, nm);
    if (!rc) rc = io_gguf_writer_set_int(gw, "tokenizer.ggml.eos_token_id", IO_GGUF_U32, m->vlm->eos_id);
    if (!rc) rc = io_gguf_writer_set_int(gw, "tokenizer.ggml.bos_token_id", IO_GGUF_U32, m->vlm->bos_id);
    if (!rc && m->endoftext >= 0) rc = io_gguf_writer_set_int(gw, "tokenizer.ggml.padding_token_id", IO_GGUF_U32, m->endoftext);
    if (!rc) rc = io_gguf_writer_set_int(gw, "tokenizer.ggml.add_bos_token", IO_GGUF_BOOL, 0);
    tok_qwen2_export_free(tok, types, n, mer, nm);
    int32_t *ids = NULL;
    size_t ni = 0;
    if (!rc && (rc = tok_qwen2_merge_ids(m->qtok, &ids, &ni, err))) return rc;
    if (!rc && ni == nm) rc = io_gguf_writer_set_arr(gw, "glimpse.tokenizer.merge_ids", IO_GGUF_I32, ids, 3 * ni);
    gl_free(ids);
    return rc ? gl_err_set(err, rc, "cannot write the tokenizer") : 0;
}

static void mmproj_path(const char *out, char *buf, size_t n) {
    const char *slash = strrchr(out, '/');
    int dl = slash ? (int)(slash - out + 1) : 0;
    snprintf(buf, n, "%.*smmproj-%s", dl, out, out + dl);
}

static int convert_vlm(glimpse_model *m, const char *src, const char *out, glimpse_wtype type, glimpse_wtype vt,
                       gl_err *err) {
    const fastvlm_model *v = m->vlm;
    const qwen2_config *qc = qwen2_get_config(v->llm);
    char cpath[1024];
    snprintf(cpath, sizeof cpath, "%s/config.json", src);
    cJSON *cfg = NULL;
    if (io_json_load(cpath, IO_JSON_MAX_DEFAULT, &cfg, err)) return err->code;
    int n_layer = 0, inter = 0;
    while (1) {
        char nm[96];
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", n_layer);
        if (!gl_weights_find(v->w, nm)) break;
        n_layer++;
    }
    const gl_tensor *tg = gl_weights_find(v->w, "model.layers.0.mlp.gate_proj.weight");
    if (tg) inter = (int)tg->shape[0];
    io_gguf_writer *gw = io_gguf_writer_new(32), *gm = io_gguf_writer_new(32);
    gl_blobs keep = {0};
    int rc = gw && gm ? 0 : gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
    int q = type == GLIMPSE_WTYPE_Q8_0 || type == GLIMPSE_WTYPE_Q4_0;
    /* the LLM: llama.cpp's qwen2 layout (convert_hf_to_gguf.py's keys for Qwen2ForCausalLM) */
    if (!rc) rc = io_gguf_writer_set_str(gw, "general.architecture", "qwen2");
    if (!rc) rc = io_gguf_writer_set_str(gw, "general.name", m->name);
    if (!rc) rc = io_gguf_writer_set_int(gw, "general.file_type", IO_GGUF_U32, ftype_of(type));
    if (!rc && q) rc = io_gguf_writer_set_int(gw, "general.quantization_version", IO_GGUF_U32, 2);
    if (!rc) rc = io_gguf_writer_set_int(gw, "qwen2.block_count", IO_GGUF_U32, n_layer);
    if (!rc) rc = io_gguf_writer_set_int(gw, "qwen2.context_length", IO_GGUF_U32, io_json_int(cfg, "max_position_embeddings", 32768));
    if (!rc) rc = io_gguf_writer_set_int(gw, "qwen2.embedding_length", IO_GGUF_U32, v->hidden);
    if (!rc) rc = io_gguf_writer_set_int(gw, "qwen2.feed_forward_length", IO_GGUF_U32, inter);
    if (!rc) rc = io_gguf_writer_set_int(gw, "qwen2.attention.head_count", IO_GGUF_U32, qc->n_head);
    if (!rc) rc = io_gguf_writer_set_int(gw, "qwen2.attention.head_count_kv", IO_GGUF_U32, qc->n_kv_head);
    if (!rc) rc = io_gguf_writer_set_float(gw, "qwen2.rope.freq_base", IO_GGUF_F32, qc->rope_theta);
    if (!rc) rc = io_gguf_writer_set_float(gw, "qwen2.attention.layer_norm_rms_epsilon", IO_GGUF_F32, qc->rms_eps);
    if (rc && !err->code) rc = gl_err_set(err, rc, "cannot write metadata");
    if (!rc) rc = set_qwen2_tokenizer(gw, m, err);
    char tmpl_path[1024];
    snprintf(tmpl_path, sizeof tmpl_path, "%s/tokenizer_config.json", src);
    cJSON *tc = NULL;
    gl_err te = {0};
    if (!rc && !io_json_load(tmpl_path, IO_JSON_MAX_DEFAULT, &tc, &te) && io_json_str(tc, "chat_template", NULL))
        rc = io_gguf_writer_set_str(gw, "tokenizer.chat_template", io_json_str(tc, "chat_template", ""));
    cJSON_Delete(tc);
    for (size_t i = 0; !rc && i < gl_weights_count(v->w); i++) {
        const gl_tensor *t = gl_weights_at(v->w, i);
        char name[128];
        if (!strncmp(t->name, "model.vision_tower.", 19) || !strncmp(t->name, "model.mm_projector.", 19)) continue;
        int is_head = !strcmp(t->name, "lm_head.weight");
        if (is_head && qwen2_tied(v->llm)) continue; /* llama.cpp ties when output.weight is absent */
        if (qwen2_gguf_name(is_head ? t->name : t->name + (strncmp(t->name, "model.", 6) ? 0 : 6), name, sizeof name))
            continue;
        rc = add_converted(gw, &keep, name, t, llm_dtype(t, name, type), err);
    }
    /* the tower + projector (mmproj), the tower in inference form */
    static const float zero[3] = {0, 0, 0}, one[3] = {1, 1, 1}; /* LLaVA pad + resize, pixels / 255 */
    if (!rc) rc = io_gguf_writer_set_str(gm, "general.architecture", "clip");
    if (!rc) rc = io_gguf_writer_set_str(gm, "general.name", m->name);
    if (!rc) rc = io_gguf_writer_set_int(gm, "general.file_type", IO_GGUF_U32, ftype_of(vt));
    if (!rc) rc = io_gguf_writer_set_str(gm, "clip.projector_type", "fastvlm_mlp2x_gelu");
    if (!rc) rc = io_gguf_writer_set_int(gm, "clip.has_vision_encoder", IO_GGUF_BOOL, 1);
    if (!rc) rc = io_gguf_writer_set_int(gm, "clip.vision.image_size", IO_GGUF_U32, v->image_size);
    if (!rc) rc = io_gguf_writer_set_int(gm, "clip.vision.projection_dim", IO_GGUF_U32, v->hidden);
    if (!rc) rc = io_gguf_writer_set_arr(gm, "clip.vision.image_mean", IO_GGUF_F32, zero, 3);
    if (!rc) rc = io_gguf_writer_set_arr(gm, "clip.vision.image_std", IO_GGUF_F32, one, 3);
    if (rc && !err->code) rc = gl_err_set(err, rc, "cannot write metadata");
    if (!rc) rc = mci_save_gguf(v->vision, gm, "v.", wtype_dtype(vt), &keep, err);
    static const char *const pj[][2] = {{"model.mm_projector.0.weight", "mm.0.weight"}, {"model.mm_projector.0.bias", "mm.0.bias"},
                                        {"model.mm_projector.2.weight", "mm.2.weight"}, {"model.mm_projector.2.bias", "mm.2.bias"}};
    for (size_t i = 0; !rc && i < GL_ARRAY_LEN(pj); i++) {
        const gl_tensor *t = gl_weights_find(v->w, pj[i][0]);
        if (!t) rc = gl_err_set(err, GLIMPSE_ERR_MISSING, "%s: missing tensor '%s'", src, pj[i][0]);
        else rc = add_converted(gm, &keep, pj[i][1], t, llm_dtype(t, pj[i][1], vt), err);
    }
    char mp[1024];
    mmproj_path(out, mp, sizeof mp);
    if (!rc) rc = io_gguf_writer_write(gw, out, err);
    if (!rc) rc = io_gguf_writer_write(gm, mp, err);
    io_gguf_writer_free(gw);
    io_gguf_writer_free(gm);
    gl_blobs_free(&keep);
    cJSON_Delete(cfg);
    return rc;
}

glimpse_status glimpse_convert(const char *model_path, const char *out_path, glimpse_wtype type,
                               const glimpse_model_params *params, char *errbuf, size_t errlen) {
    return glimpse_convert_ex(model_path, out_path, type, -1, params, errbuf, errlen);
}

glimpse_status glimpse_convert_ex(const char *model_path, const char *out_path, glimpse_wtype type, int vision_type,
                                  const glimpse_model_params *params, char *errbuf, size_t errlen) {
    gl_err err = {0};
    int rc = 0;
    glimpse_model *m = NULL;
    if (!model_path || !out_path || type < GLIMPSE_WTYPE_F32 || type > GLIMPSE_WTYPE_Q4_0 || vision_type < -1 ||
        vision_type > GLIMPSE_WTYPE_Q4_0) {
        rc = gl_err_set(&err, GLIMPSE_ERR_INVALID_ARG, "glimpse_convert: bad argument");
        goto done;
    }
    if ((rc = glimpse_model_open(model_path, params, &m, err.msg, sizeof err.msg))) goto done;
    if ((m->w && gl_weights_gguf(m->w)) || (m->vlm && gl_weights_gguf(m->vlm->w))) {
        rc = gl_err_set(&err, GLIMPSE_ERR_UNSUPPORTED, "%s is already a converted GGUF file", model_path);
        goto done;
    }
    if (m->kind == GLIMPSE_MODEL_CLIP) {
        rc = convert_clip(m, out_path, type, vision_type < 0 ? type : (glimpse_wtype)vision_type, &err);
    } else {
        /* FastVLM's tower defaults to Q8_0 under a Q4_0 LLM (its 1x1 convs lose too much at 4 bits) */
        glimpse_wtype vt = vision_type >= 0 ? (glimpse_wtype)vision_type : type == GLIMPSE_WTYPE_Q4_0 ? GLIMPSE_WTYPE_Q8_0 : type;
        rc = convert_vlm(m, model_path, out_path, type, vt, &err);
    }
done:
    if (rc && errbuf && errlen) snprintf(errbuf, errlen, "%s", err.msg[0] ? err.msg : glimpse_status_str(rc));
    glimpse_model_close(m);
    return rc;
}
