/* fastvlm.h — FastVLM = FastViTHD (mci.c, Apple names) + mlp2x_gelu projector + Qwen2
 * (qwen2.c), loaded from a hub folder (config.json + safetensors). Reference: apple/ml-fastvlm
 * llava_arch.py (encode_images, prepare_inputs_labels_for_multimodal), builder.py. */
#ifndef GL_FASTVLM_H
#define GL_FASTVLM_H

#include "models/mci.h"
#include "models/qwen2.h"

#define FASTVLM_IMAGE_TOKEN (-200) /* IMAGE_TOKEN_INDEX: where the image embeddings go */

typedef struct fastvlm_model {
    gl_weights *w;
    gl_weights *w_mm;        /* GGUF pair: the mmproj file (tower + projector); NULL otherwise */
    mci_model *vision;
    qwen2_model *llm;
    wl_mat p0, p2;           /* mm_projector.0 [H, F], mm_projector.2 [H, H] */
    float *p0b, *p2b;
    int image_size;          /* from mm_vision_tower "mobileclip_l_<size>" */
    int n_image_tokens;      /* (image_size / stride)^2 */
    int feat_dim, hidden;
    int eos_id, bos_id;      /* from config.json */
    gl_blobs blobs;
} fastvlm_model;

/* dir: a hub folder (config.json + model.safetensors or shards). */
int fastvlm_load(const char *dir, fastvlm_model **out, gl_err *err);
/* The GGUF pair glimpse_convert writes: llm (llama.cpp's qwen2 layout and metadata) and mmproj
 * (the folded FastViTHD under "v.", the projector as mm.0 / mm.2, clip.vision.image_size). */
int fastvlm_load_gguf(const char *llm, const char *mmproj, fastvlm_model **out, gl_err *err);
void fastvlm_free(fastvlm_model *m);
/* Workspace floats for fastvlm_encode_image. */
size_t fastvlm_ws_floats(const fastvlm_model *m, int n_threads);
/* pixels [3, S, S] (S = image_size) -> embeds [n_image_tokens, hidden]; also the raw tower
 * features [n_image_tokens, feat_dim] if features is not NULL. */
int fastvlm_encode_image(const fastvlm_model *m, const kn_env *env, const float *pixels, float *features,
                         float *embeds, float *ws, gl_err *err);
/* Builds the input embedding sequence for ids (one FASTVLM_IMAGE_TOKEN replaced by the image
 * embeds): out [n_ids - 1 + n_image_tokens (or n_ids without image), hidden]. Returns the row
 * count through *n_out. */
int fastvlm_splice(const fastvlm_model *m, const int32_t *ids, int n_ids, const float *image_embeds, float *out,
                   int *n_out, gl_err *err);

#endif
