#include "fastvlm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/gguf.h"
#include "io/json.h"

#define VISION_PREFIX "model.vision_tower.vision_tower.model."

int fastvlm_load(const char *dir, fastvlm_model **out, gl_err *err) {
    char path[1024];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *cfg = NULL;
    if (io_json_load(path, IO_JSON_MAX_DEFAULT, &cfg, err)) return err->code;
    fastvlm_model *m = gl_calloc(1, sizeof *m);
    if (!m) {
        cJSON_Delete(cfg);
        return gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
    }
    const char *proj = io_json_str(cfg, "mm_projector_type", "");
    const char *tower = io_json_str(cfg, "mm_vision_tower", "");
    if (strcmp(proj, "mlp2x_gelu") != 0) {
        gl_err_set(err, GLIMPSE_ERR_UNSUPPORTED, "%s: mm_projector_type '%s' is not supported (expected mlp2x_gelu)", path,
                   proj);
        goto fail;
    }
    const char *us = strrchr(tower, '_');
    m->image_size = us ? atoi(us + 1) : 0;
    if (strncmp(tower, "mobileclip_l", 12) != 0 || m->image_size < 64 || m->image_size > 8192) {
        gl_err_set(err, GLIMPSE_ERR_UNSUPPORTED, "%s: mm_vision_tower '%s' is not a FastViTHD tower", path, tower);
        goto fail;
    }
    qwen2_config qc = {
        .n_head = (int)io_json_int(cfg, "num_attention_heads", 0),
        .n_kv_head = (int)io_json_int(cfg, "num_key_value_heads", io_json_int(cfg, "num_attention_heads", 0)),
        .rope_theta = (float)io_json_num(cfg, "rope_theta", 10000.0),
        .rms_eps = (float)io_json_num(cfg, "rms_norm_eps", 1e-6),
        .tie_embeddings = io_json_bool(cfg, "tie_word_embeddings", false),
    };
    m->eos_id = (int)io_json_int(cfg, "eos_token_id", 151645);
    m->bos_id = (int)io_json_int(cfg, "bos_token_id", 151643);
    if (gl_weights_open(dir, &m->w, err)) goto fail;
    if (mci_load_ex(m->w, VISION_PREFIX, dir, MCI_NAMES_APPLE, 0, &m->vision, err)) goto fail;
    if (qwen2_load(m->w, &qc, dir, &m->llm, err)) goto fail;
    m->feat_dim = mci_feature_dim(m->vision);
    m->hidden = qwen2_hidden(m->llm);
    int st = mci_stride(m->vision);
    if (m->image_size % st) {
        gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: image size %d is not a multiple of the tower stride %d", path,
                   m->image_size, st);
        goto fail;
    }
    m->n_image_tokens = (m->image_size / st) * (m->image_size / st);
    int64_t mm_hidden = io_json_int(cfg, "mm_hidden_size", m->feat_dim);
    if (mm_hidden != m->feat_dim) {
        gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: mm_hidden_size %lld but the tower outputs %d channels", path,
                   (long long)mm_hidden, m->feat_dim);
        goto fail;
    }
    wl l = {.w = m->w, .blobs = &m->blobs, .err = err, .file = dir};
    if (wl_matrix(&l, wl_need(&l, "model.mm_projector.0.weight"), m->hidden, m->feat_dim, &m->p0) ||
        wl_matrix(&l, wl_need(&l, "model.mm_projector.2.weight"), m->hidden, m->hidden, &m->p2))
        goto fail;
    m->p0b = wl_f32(&l, wl_need(&l, "model.mm_projector.0.bias"), m->hidden);
    m->p2b = wl_f32(&l, wl_need(&l, "model.mm_projector.2.bias"), m->hidden);
    if (!m->p0b || !m->p2b) goto fail;
    cJSON_Delete(cfg);
    *out = m;
    return 0;
fail:
    cJSON_Delete(cfg);
    fastvlm_free(m);
    return err->code ? err->code : GLIMPSE_ERR_INTERNAL;
}

int fastvlm_load_gguf(const char *llm, const char *mmproj, fastvlm_model **out, gl_err *err) {
    fastvlm_model *m = gl_calloc(1, sizeof *m);
    if (!m) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
    if (gl_weights_open(llm, &m->w, err) || gl_weights_open(mmproj, &m->w_mm, err)) goto fail;
    const io_gguf *g = gl_weights_gguf(m->w), *gm = gl_weights_gguf(m->w_mm);
    if (!g || strcmp(io_gguf_get_str(g, "general.architecture", ""), "qwen2")) {
        gl_err_set(err, GLIMPSE_ERR_MODEL_KIND, "%s: not a qwen2 GGUF file", llm);
        goto fail;
    }
    if (!gm || strcmp(io_gguf_get_str(gm, "clip.projector_type", ""), "fastvlm_mlp2x_gelu")) {
        gl_err_set(err, GLIMPSE_ERR_MODEL_KIND, "%s: not a FastVLM mmproj file (clip.projector_type)", mmproj);
        goto fail;
    }
    qwen2_config qc = {
        .n_head = (int)io_gguf_get_int(g, "qwen2.attention.head_count", 0),
        .n_kv_head = (int)io_gguf_get_int(g, "qwen2.attention.head_count_kv", io_gguf_get_int(g, "qwen2.attention.head_count", 0)),
        .rope_theta = (float)io_gguf_get_float(g, "qwen2.rope.freq_base", 10000.0),
        .rms_eps = (float)io_gguf_get_float(g, "qwen2.attention.layer_norm_rms_epsilon", 1e-6),
        .tie_embeddings = gl_weights_find(m->w, "output.weight") == NULL, /* llama.cpp's rule */
        .gguf_names = 1,
    };
    m->eos_id = (int)io_gguf_get_int(g, "tokenizer.ggml.eos_token_id", 151645);
    m->bos_id = (int)io_gguf_get_int(g, "tokenizer.ggml.bos_token_id", 151643);
    m->image_size = (int)io_gguf_get_int(gm, "clip.vision.image_size", 0);
    if (m->image_size < 64 || m->image_size > 8192) {
        gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: clip.vision.image_size %d is missing or out of range", mmproj, m->image_size);
        goto fail;
    }
    if (mci_load_gguf(m->w_mm, "v.", mmproj, &m->vision, err)) goto fail;
    if (qwen2_load(m->w, &qc, llm, &m->llm, err)) goto fail;
    m->feat_dim = mci_feature_dim(m->vision);
    m->hidden = qwen2_hidden(m->llm);
    int st = mci_stride(m->vision);
    if (m->image_size % st) {
        gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: image size %d is not a multiple of the tower stride %d", mmproj,
                   m->image_size, st);
        goto fail;
    }
    m->n_image_tokens = (m->image_size / st) * (m->image_size / st);
    wl l = {.w = m->w_mm, .blobs = &m->blobs, .err = err, .file = mmproj};
    if (wl_matrix(&l, wl_need(&l, "mm.0.weight"), m->hidden, m->feat_dim, &m->p0) ||
        wl_matrix(&l, wl_need(&l, "mm.2.weight"), m->hidden, m->hidden, &m->p2))
        goto fail;
    m->p0b = wl_f32(&l, wl_need(&l, "mm.0.bias"), m->hidden);
    m->p2b = wl_f32(&l, wl_need(&l, "mm.2.bias"), m->hidden);
    if (!m->p0b || !m->p2b) goto fail;
    *out = m;
    return 0;
fail:
    fastvlm_free(m);
    return err->code ? err->code : GLIMPSE_ERR_INTERNAL;
}

void fastvlm_free(fastvlm_model *m) {
    if (!m) return;
    gl_weights_close(m->w_mm);
    mci_free(m->vision);
    qwen2_free(m->llm);
    gl_blobs_free(&m->blobs);
    gl_weights_close(m->w);
    gl_free(m);
}

size_t fastvlm_ws_floats(const fastvlm_model *m, int n_threads) {
    return mci_ws_floats(m->vision, m->image_size, m->image_size, n_threads) +
           (size_t)m->n_image_tokens * (m->feat_dim + m->hidden) + 64;
}

int fastvlm_encode_image(const fastvlm_model *m, const kn_env *env, const float *pixels, float *features,
                         float *embeds, float *ws, gl_err *err) {
    size_t vws = mci_ws_floats(m->vision, m->image_size, m->image_size, gl_pool_size(env->pool));
    float *feat = features ? features : ws + vws;
    float *hid = ws + vws + (size_t)m->n_image_tokens * m->feat_dim;
    if (mci_forward_features(m->vision, env, pixels, m->image_size, m->image_size, feat, ws, err)) return err->code;
    int N = m->n_image_tokens;
    op_linear(env, feat, N, m->feat_dim, m->p0.data, m->p0.type, m->p0b, m->hidden, hid, KN_ACT_GELU, 0);
    op_linear(env, hid, N, m->hidden, m->p2.data, m->p2.type, m->p2b, m->hidden, embeds, KN_ACT_NONE, 0);
    return 0;
}

int fastvlm_splice(const fastvlm_model *m, const int32_t *ids, int n_ids, const float *image_embeds, float *out,
                   int *n_out, gl_err *err) {
    int rows = 0, H = m->hidden, seen = 0;
    for (int i = 0; i < n_ids; i++) {
        if (ids[i] == FASTVLM_IMAGE_TOKEN) {
            if (seen++) return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "FastVLM: more than one image in the prompt");
            if (!image_embeds) return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "FastVLM: prompt has <image> but no image");
            memcpy(out + (size_t)rows * H, image_embeds, sizeof(float) * (size_t)m->n_image_tokens * H);
            rows += m->n_image_tokens;
        } else {
            if (qwen2_embed(m->llm, &ids[i], 1, out + (size_t)rows * H, err)) return err->code;
            rows++;
        }
    }
    *n_out = rows;
    return 0;
}
