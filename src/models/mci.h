/* mci.h — MobileCLIP image towers MCi0..MCi4 (FastViT-style: conv stem, RepMixer stages,
 * attention stages, final conv, pooled projection). Loaded from the training-form checkpoint
 * (OpenCLIP/timm names) and folded to one conv per block at load. */
#ifndef GL_MCI_H
#define GL_MCI_H

#include "models/ops.h"
#include "models/wload.h"

typedef struct mci_model mci_model;

/* prefix: "visual.trunk." for OpenCLIP files, "" for timm image-only files. */
int mci_load(const gl_weights *w, const char *prefix, const char *file, mci_model **out, gl_err *err);
enum { MCI_NAMES_TIMM = 0, MCI_NAMES_APPLE = 1 };
/* names: timm/OpenCLIP names or Apple's (ml-fastvlm / ml-mobileclip v1: patch_embed, network.N,
 * rbr_*, lkb_*, convffn, conv_exp). need_head = 0 allows a tower without a projection head
 * (FastVLM uses the conv_exp map). */
int mci_load_ex(const gl_weights *w, const char *prefix, const char *file, int names, int need_head, mci_model **out,
                gl_err *err);
void mci_free(mci_model *m);
/* The folded tower in a GGUF (see mci_io.c): saved by the converter under prefix (tensors
 * named <prefix>stem.0.weight, ...); wtype GL_Q8_0 / GL_Q4_0 quantizes the 1x1 convs and the
 * linears whose inputs are whole blocks, GL_F16 stores other weights as f16, GL_F32 as is.
 * Converted buffers go to keep (alive until the writer has written). Loading keeps quantized
 * weights in the mapping and converts the rest to f32. */
struct io_gguf_writer;
int mci_save_gguf(const mci_model *m, struct io_gguf_writer *gw, const char *prefix, gl_dtype wtype, gl_blobs *keep,
                  gl_err *err);
int mci_load_gguf(const gl_weights *w, const char *prefix, const char *file, mci_model **out, gl_err *err);
/* Packs the quantized 1x1 convs and linears once for the CPU's int8 GEMM (AVX512-VNNI; nothing
 * elsewhere), instead of on every call: for small inputs (MobileCLIP's 256 px) that packing was
 * ~5% of the tower. Costs about the quantized weights' size again in memory. Call right after
 * loading (not thread-safe with forwards). Out of memory: the rest stays unpacked. */
void mci_pack_quant(mci_model *m);
int mci_feature_dim(const mci_model *m);
/* Total stride of the tower (32 for MCi0-2, 64 for MCi3/4 and FastViTHD). */
int mci_stride(const mci_model *m);
/* x: [3, H, W] -> the final_conv map as tokens [(H/stride)*(W/stride), feature_dim] (row-major
 * grid order), the input of FastVLM's projector. */
int mci_forward_features(const mci_model *m, const kn_env *env, const float *x, int H, int W, float *tokens,
                         float *ws, gl_err *err);
int mci_embed_dim(const mci_model *m);
/* Floats of workspace mci_forward needs at input size H x W with n_threads threads. */
size_t mci_ws_floats(const mci_model *m, int H, int W, int n_threads);
/* x: [3, H, W] normalised pixels -> emb[embed_dim] (not L2-normalised). */
int mci_forward(const mci_model *m, const kn_env *env, const float *x, int H, int W, float *emb, float *ws,
                gl_err *err);
/* n images x [n, 3, H, W] -> emb [n, embed_dim]. With n >= 2 and a pool of threads, each thread
 * takes whole images and runs the tower on its own (no barrier between ops: what costs most
 * when other programs share the cores); otherwise image by image on the pool. Same results as
 * mci_forward. ws: mci_batch_ws_floats(m, H, W, n_threads) floats. */
int mci_forward_batch(const mci_model *m, const kn_env *env, const float *x, int n, int H, int W, float *emb, float *ws,
                      gl_err *err);
size_t mci_batch_ws_floats(const mci_model *m, int H, int W, int n_threads);
/* A human-readable one-line summary ("MCi0: 4 stages, widths 64/128/256/512, ..."). */
void mci_describe(const mci_model *m, char *buf, size_t n);

#endif
