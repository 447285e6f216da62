/* vit.h — the ViT image towers of MobileCLIP2-B (timm vit_base_mci_224: conv stem, pos-embed
 * on patches only, LayerNorm eps 1e-6) and MobileCLIP2-L-14 (timm vit_large_patch14_clip_224:
 * bias-free patch conv, pos-embed over class token + patches, norm_pre, eps 1e-5): pre-LN
 * blocks, final LN, class token, Linear head. Loaded from timm names (OpenCLIP prefixes them
 * with "visual.trunk."), or from Apple's names for MobileCLIP v1 B / B-LT (VIT_NAMES_APPLE:
 * mobileclip/models/vit.py, the B tower with a padded first stem conv, eps 1e-5 and a
 * bias-free x @ P head). */
#ifndef GL_VIT_H
#define GL_VIT_H

#include "models/ops.h"
#include "models/wload.h"

typedef struct vit_model vit_model;

/* prefix: "visual.trunk." for OpenCLIP files, "" for timm image-only files.
 * n_head: attention heads (config timm_model_kwargs.num_heads); 0 = width / 64. */
int vit_load(const gl_weights *w, const char *prefix, const char *file, int n_head, vit_model **out, gl_err *err);

enum { VIT_NAMES_TIMM = 0, VIT_NAMES_APPLE = 1 };
/* names: VIT_NAMES_TIMM (= vit_load) or VIT_NAMES_APPLE (prefix "image_encoder.model."; n_head
 * 0 = width / 64, Apple's vit_b16). image_size: input size in pixels, 0 = the size the position
 * table was stored for. Apple's table ([1, 1, 196, W]) is then resampled to the patch count the
 * way Apple's code does at run time (linearly along the flattened sequence); timm tables must
 * fit the size exactly. */
int vit_load_ex(const gl_weights *w, const char *prefix, const char *file, int names, int n_head, int image_size,
                vit_model **out, gl_err *err);
void vit_free(vit_model *m);
int vit_embed_dim(const vit_model *m);
/* The one input size the learned position embedding fits (224 for the released B and L-14). */
int vit_image_size(const vit_model *m);
/* 1 for B's conv stem (vit_base_mci_224), 0 for a plain patch conv (L-14). */
int vit_has_conv_stem(const vit_model *m);
int vit_width(const vit_model *m);
int vit_n_head(const vit_model *m);
int vit_n_patch(const vit_model *m); /* patch tokens per image (the class token not counted) */
void vit_describe(const vit_model *m, char *buf, size_t n);

/* Optional intermediate outputs (tests), each [n_img, ...] or NULL:
 * stem [n, N, W] patch tokens before cls/pos; block0 / final_norm [n, N+1, W]. */
typedef struct vit_taps { float *stem, *block0, *final_norm; } vit_taps;

/* Floats of workspace vit_forward needs for a batch of n_img images. */
size_t vit_ws_floats(const vit_model *m, int n_img);
/* x: n_img images [3, S, S] (S = vit_image_size) of normalised pixels, one after the other ->
 * emb [n_img, embed_dim] (not L2-normalised). All images' tokens go through each GEMM together. */
int vit_forward(const vit_model *m, const kn_env *env, const float *x, int n_img, float *emb, float *ws,
                const vit_taps *taps, gl_err *err);

#endif
