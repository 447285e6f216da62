/* mci_impl.h — the folded MCi model as mci.c builds it and mci_io.c saves / loads it (internal
 * to those two files). Every weight is in inference form: one conv (or one linear) per step. */
#ifndef GL_MCI_IMPL_H
#define GL_MCI_IMPL_H

#include "kernels/qgemm.h"
#include "mci.h"

#define MCI_MAX_STAGES 5
#define MCI_HEAD_DIM 32 /* timm Attention(head_dim=32) in fastvit */
#define BN_EPS 1e-5
#define LN_EPS 1e-5f

typedef struct mci_se { float *w1, *b1, *w2, *b2; int c, r; } mci_se;

typedef struct mci_ffn {
    op_conv dw;          /* 7x7 depthwise, BN folded */
    kn_packed_a w1p, w2p; /* packed f32 (from a checkpoint); p == NULL: use w1/w2 as stored */
    const void *w1;      /* [h, c] (F32, or Q8_0/Q4_0 from a converted file) */
    const void *w2;      /* [c, h], scaled by layer_scale */
    gl_dtype w1t, w2t;
    kn_qpacked w1q, w2q; /* Q8_0/Q4_0 w1/w2 packed for the int8 conv GEMM (mci_pack_quant), or p == NULL */
    float *b1, *b2;      /* [h], [c] */
    int c, h;
} mci_ffn;

typedef struct mci_block {
    int is_attn;
    op_conv mixer;       /* RepMixer, folded */
    float *ln_w, *ln_b;  /* channel LayerNorm (MCi3/4); NULL when BN was folded into qkv */
    kn_packed_b wqkvp, wprojp; /* packed f32 (from a checkpoint); p == NULL: use wqkv/wproj */
    const void *wqkv;    /* [3c, c] */
    const void *wproj;   /* [c, c], scaled by layer_scale_1 */
    gl_dtype wqkv_t, wproj_t;
    kn_qpacked wqkvq, wprojq; /* quantized wqkv/wproj packed (mci_pack_quant), or p == NULL */
    float *bqkv, *bproj; /* [3c], [c] */
    int n_head;
    mci_ffn ffn;
} mci_block;

typedef struct mci_stage {
    int c, depth;
    int has_down, has_se, has_cpe;
    op_conv lk;          /* 7x7 stride 2, groups = c_in, GELU after SE */
    mci_se se;
    op_conv pw;          /* 1x1 MobileOne, GELU */
    op_conv cpe;         /* RepCPE 7x7 depthwise, identity folded */
    mci_block *blocks;
} mci_stage;

struct mci_model {
    int n_stages;
    op_conv stem[3];
    mci_stage st[MCI_MAX_STAGES];
    op_conv fconv;       /* final_conv 3x3, groups = c_last, no act (SE then GELU) */
    mci_se fse;
    const void *head_w;  /* [embed, feat] */
    gl_dtype head_t;
    float *head_b;       /* [embed] */
    int feat, embed;
    gl_blobs blobs;
};

#endif
