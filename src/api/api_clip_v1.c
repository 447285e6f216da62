/* api_clip_v1.c — MobileCLIP (v1) as Apple released it (apple/MobileCLIP-S0..S2, B, B-LT):
 * mobileclip_*.pt with Apple's module names (image_encoder.model.*, text_encoder.*,
 * logit_scale) and a config in the form of ml-mobileclip's mobileclip/configs/<name>.json
 * ({embed_dim, image_cfg{image_size, model_name}, text_cfg{..., n_heads_per_layer,
 * causal_masking, model_name "mct" | "base"}}). The architectures are read from the tensors;
 * the config only supplies what tensors cannot (heads, causal mask, resolution).
 *
 * Image: MCi0/1/2 in Apple's naming (mci.c, MCI_NAMES_APPLE; bias-free head.proj).
 * Text: MCt (S0, mct.c) or the base 12-layer transformer (S1, S2, B) in Apple's naming
 * (clip_text.c, CLIPT_NAMES_APPLE). ViT-B/16 (B, B-LT): vit.c, VIT_NAMES_APPLE. */
#include "api.h"
#include "io/json.h"

#define V1_IMAGE "image_encoder.model."
#define V1_TEXT "text_encoder."

int api_clip_v1_detect(const gl_weights *w) {
    return gl_weights_find(w, V1_IMAGE "patch_embed.0.rbr_conv.0.conv.weight") ||
           gl_weights_find(w, V1_IMAGE "patch_embed.0.reparam_conv.weight") ||
           gl_weights_find(w, V1_IMAGE "patch_emb.0.block.conv.weight");
}

int api_clip_v1_load(glimpse_model *m, const char *wpath, const cJSON *cfg) {
    /* Apple's ViT-B/16 (mobileclip/models/vit.py): patch_emb.{0,1,2}.block.{conv,norm},
     * cls_token, pos_embed.pos_embed.pos_embed, transformer.N.pre_norm_{mha,ffn}.*,
     * post_transformer_norm, classifier.proj — the timm ViT-B tower renamed, except that the
     * first stem conv pads 1 (timm: 0), LayerNorm eps is 1e-5 and the head has no bias; see
     * tools/reference/mobileclip/README.md "v1 B / B-LT". */
    int rc;
    if (gl_weights_find(m->w, V1_IMAGE "patch_emb.0.block.conv.weight")) {
        /* Apple's vit_b16 fixes 12 heads of 64 (not in the config; width / 64 in vit.c); our
         * tiny test models say theirs in "glimpse_tiny". The image size (224 released) picks
         * the patch count the position table is resampled to. */
        int vheads = (int)io_json_int(io_json_path(cfg, "glimpse_tiny"), "heads", 0);
        int size = (int)io_json_int(io_json_path(cfg, "image_cfg"), "image_size", 224);
        if (size < 16 || size > 4096)
            return api_fail(&m->err, GLIMPSE_ERR_FORMAT, "%s: image_cfg.image_size %d is out of range", wpath, size);
        rc = vit_load_ex(m->w, V1_IMAGE, wpath, VIT_NAMES_APPLE, vheads, size, &m->vit, &m->err);
    } else {
        rc = mci_load_ex(m->w, V1_IMAGE, wpath, MCI_NAMES_APPLE, 1, &m->vis, &m->err);
    }
    if (rc) return rc;
    const cJSON *tc = io_json_path(cfg, "text_cfg");
    int causal = io_json_bool(tc, "causal_masking", 0);
    int heads = (int)io_json_int(tc, "n_heads_per_layer", 0);
    if (mct_detect(m->w, V1_TEXT)) {
        if ((rc = mct_load(m->w, V1_TEXT, wpath, causal, heads, &m->mct, &m->err))) return rc;
        m->txt = mct_core(m->mct);
        return 0;
    }
    return clipt_load_ex(m->w, V1_TEXT, wpath, CLIPT_NAMES_APPLE, 0, causal, heads, &m->txt, &m->err);
}
