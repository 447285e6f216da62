/* clip_text.h — the CLIP text transformer of MobileCLIP2 / OpenCLIP (TextTransformer):
 * token + learned position embedding, pre-LN blocks, final LN, EOT pooling, projection. */
#ifndef GL_CLIP_TEXT_H
#define GL_CLIP_TEXT_H

#include "models/ops.h"
#include "models/wload.h"

typedef struct clipt_model clipt_model;

/* prefix: "text." for MobileCLIP2 OpenCLIP files ("" for the top-level OpenAI-style layout).
 * causal: the causal mask (MobileCLIP2-B); false for the bidirectional models. */
/* n_head: attention heads (config text_cfg.heads); 0 = width / 64. */
int clipt_load(const gl_weights *w, const char *prefix, const char *file, int causal, int n_head, clipt_model **out,
               gl_err *err);
enum { CLIPT_NAMES_OPENCLIP = 0, CLIPT_NAMES_APPLE = 1 };
/* names: OpenCLIP's or Apple's MobileCLIP v1 names (prefix "text_encoder.": embedding_layer,
 * positional_embedding.pos_embed.pos_embed [1,1,ctx,w], transformer.N.pre_norm_{mha,ffn}.*,
 * final_layer_norm, projection_layer). first: Apple index N of the first transformer layer (0 for
 * the base text encoder; 1 in MCt, whose transformer.0 is a RepMixer block). */
int clipt_load_ex(const gl_weights *w, const char *prefix, const char *file, int names, int first, int causal,
                  int n_head, clipt_model **out, gl_err *err);
int clipt_width(const clipt_model *m);
int clipt_n_layer(const clipt_model *m);
void clipt_free(clipt_model *m);
int clipt_embed_dim(const clipt_model *m);
int clipt_context(const clipt_model *m);
int clipt_vocab(const clipt_model *m);
int clipt_n_head(const clipt_model *m);
int clipt_causal(const clipt_model *m);
size_t clipt_ws_floats(const clipt_model *m, int n_seq, int n_threads);
/* ids: [n_seq, ctx] token ids (0-padded). emb: [n_seq, embed_dim], not normalised. */
int clipt_forward(const clipt_model *m, const kn_env *env, const int32_t *ids, int n_seq, float *emb, float *ws,
                  gl_err *err);
/* clipt_forward in three steps, for towers that wrap the transformer (MCt; clipt_forward itself
 * skips the last layer's work on positions that are not pooled): the token stream
 * x [n_seq * ctx, width] is the first floats of ws (clipt_ws_floats in all), the rest scratch.
 * clipt_embed checks the ids; clipt_pool takes the EOT position of each sequence. */
int clipt_embed(const clipt_model *m, const int32_t *ids, int n_seq, float *ws, gl_err *err);
/* Whether the layers now run fused on env: int8 weights packed (from the second forward on)
 * and AVX512-VNNI; results then differ from the unfused layers' by LayerNorm rounding only. */
int clipt_fused(const clipt_model *m, const kn_env *env);
void clipt_blocks(const clipt_model *m, const kn_env *env, int n_seq, float *ws);
void clipt_pool(const clipt_model *m, const kn_env *env, const int32_t *ids, int n_seq, float *ws, float *emb);

#endif
