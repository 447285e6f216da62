/* mct.h — MCt, the text tower of MobileCLIP (v1) S0: the CLIP text transformer wrapped between
 * two text RepMixer blocks (depthwise 1 x 11 convs along the sequence), in Apple's naming
 * (mobileclip_s0.pt, prefix "text_encoder."). Branches and BatchNorms are folded at load. */
#ifndef GL_MCT_H
#define GL_MCT_H

#include "models/clip_text.h"

typedef struct mct_model mct_model;

/* True when the file holds an MCt tower under prefix (its transformer.0 is a RepMixer block). */
int mct_detect(const gl_weights *w, const char *prefix);
/* n_head: config text_cfg.n_heads_per_layer (0 = width / 64). */
int mct_load(const gl_weights *w, const char *prefix, const char *file, int causal, int n_head, mct_model **out,
             gl_err *err);
void mct_free(mct_model *m);
/* The wrapped transformer (context, vocabulary and embedding width are its), owned by m. */
clipt_model *mct_core(mct_model *m);
size_t mct_ws_floats(const mct_model *m, int n_seq, int n_threads);
/* ids: [n_seq, ctx] token ids (0-padded). emb: [n_seq, embed_dim], not normalised. block0: NULL,
 * or [n_seq, ctx, width] to receive the stream after the first RepMixer block (for tests). */
int mct_forward(const mct_model *m, const kn_env *env, const int32_t *ids, int n_seq, float *emb, float *block0,
                float *ws, gl_err *err);

#endif
