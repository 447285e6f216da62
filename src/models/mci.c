/* mci.c — MobileCLIP image towers MCi0..MCi4.
 *
 * Reference: timm fastvit.py (fastvit_mci0..4: MobileOneBlock, ReparamLargeKernelConv, RepMixer,
 * RepConditionalPosEnc, ConvMlp, AttentionBlock) and ../shared/notes/mobileclip2.md §2.
 * The released checkpoints are in training form (parallel branches + BatchNorm); everything is
 * folded here, at load, into one conv (or one linear) per step:
 *   MobileOne:  W = Σ_b bn_b(W_b) with 1x1 and identity branches centred in the k×k kernel
 *   RepMixer:   W = I + γ (W_mixer − W_norm)     (the residual lives inside the conv)
 *   RepCPE:     W = W_pe + I
 *   ConvMlp:    BN folded into the 7×7 depthwise conv; layer-scale γ folded into fc2
 *   Attention:  BatchNorm folded into qkv (MCi0-2); γ1 folded into proj
 * The architecture (stages, widths, depths, SE, attention stages) is read from tensor shapes. */
#include "mci.h"
#include "mci_impl.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- folding helpers (double precision) ---- */

/* Adds bn(conv weight) of one branch into K [cout, cig, k, k]; kb is the branch kernel size. */
static int add_conv_bn(wl *l, const char *conv_w, const char *bn, double *K, double *B, int cout, int cig, int k) {
    const gl_tensor *t = wl_need(l, "%s", conv_w);
    if (!t) return l->err->code;
    if (t->ndim != 4 || t->shape[0] != cout || t->shape[1] != cig || t->shape[2] != t->shape[3] || t->shape[2] > k ||
        (k - t->shape[2]) % 2)
        return gl_err_set(l->err, GLIMPSE_ERR_FORMAT, "%s: tensor '%s' has an unexpected shape", l->file, t->name);
    int kb = (int)t->shape[2], off = (k - kb) / 2;
    float *w = wl_f32(l, t, -1);
    wl_bn bnv;
    if (!w || wl_load_bn(l, bn, cout, BN_EPS, &bnv)) return l->err->code ? l->err->code : GLIMPSE_ERR_NOMEM;
    for (int o = 0; o < cout; o++) {
        for (int i = 0; i < cig; i++)
            for (int y = 0; y < kb; y++)
                for (int x = 0; x < kb; x++)
                    K[(((size_t)o * cig + i) * k + y + off) * k + x + off] +=
                        bnv.scale[o] * w[(((size_t)o * cig + i) * kb + y) * kb + x];
        B[o] += bnv.shift[o];
    }
    wl_bn_free(&bnv);
    return 0;
}

/* Adds a BN "identity branch": kernel 1 at input channel o mod cig, centre tap. */
static int add_identity_bn(wl *l, const char *bn, double *K, double *B, int cout, int cig, int k) {
    wl_bn bnv;
    if (wl_load_bn(l, bn, cout, BN_EPS, &bnv)) return l->err->code;
    int c = k / 2;
    for (int o = 0; o < cout; o++) {
        K[(((size_t)o * cig + o % cig) * k + c) * k + c] += bnv.scale[o];
        B[o] += bnv.shift[o];
    }
    wl_bn_free(&bnv);
    return 0;
}

static int conv_from_double(wl *l, op_conv *c, const double *K, const double *B) {
    size_t n = (size_t)c->cout * (c->cin / c->groups) * c->k * c->k;
    c->w = gl_blobs_alloc(l->blobs, n * sizeof(float));
    c->b = gl_blobs_alloc(l->blobs, (size_t)c->cout * sizeof(float));
    if (!c->w || !c->b) return gl_err_set(l->err, GLIMPSE_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) c->w[i] = (float)K[i];
    for (int o = 0; o < c->cout; o++) c->b[o] = (float)B[o];
    return 0;
}

static int alloc_kb(wl *l, const op_conv *c, double **K, double **B) {
    size_t n = (size_t)c->cout * (c->cin / c->groups) * c->k * c->k;
    *K = gl_calloc(n, sizeof(double));
    *B = gl_calloc((size_t)c->cout, sizeof(double));
    if (!*K || !*B) {
        gl_free(*K);
        gl_free(*B);
        return gl_err_set(l->err, GLIMPSE_ERR_NOMEM, "out of memory");
    }
    return 0;
}

/* Loads an already re-parameterised conv (<p>.reparam_conv) if present; returns 1 if used. */
static int try_reparam(wl *l, const char *p, op_conv *c, int *rc) {
    const gl_tensor *tw = wl_find(l, "%s.reparam_conv.weight", p);
    if (!tw) return 0;
    const gl_tensor *tb = wl_need(l, "%s.reparam_conv.bias", p);
    c->w = wl_f32(l, tw, (int64_t)c->cout * (c->cin / c->groups) * c->k * c->k);
    c->b = tb ? wl_f32(l, tb, c->cout) : NULL;
    *rc = (c->w && c->b) ? 0 : l->err->code;
    return 1;
}

/* MobileOneBlock at prefix p: conv_kxk.{0..} + conv_scale + identity, summed and folded. */
static int fold_mobileone(wl *l, const char *p, op_conv *c) {
    int rc;
    if (try_reparam(l, p, c, &rc)) return rc;
    double *K, *B;
    if (alloc_kb(l, c, &K, &B)) return l->err->code;
    int cig = c->cin / c->groups;
    char a[320], b[320];
    rc = 0;
    int branches = 0;
    for (int i = 0; !rc && i < 16 && wl_find(l, "%s.conv_kxk.%d.conv.weight", p, i); i++, branches++) {
        snprintf(a, sizeof a, "%s.conv_kxk.%d.conv.weight", p, i);
        snprintf(b, sizeof b, "%s.conv_kxk.%d.bn", p, i);
        rc = add_conv_bn(l, a, b, K, B, c->cout, cig, c->k);
    }
    if (!rc && wl_find(l, "%s.conv_scale.conv.weight", p)) {
        snprintf(a, sizeof a, "%s.conv_scale.conv.weight", p);
        snprintf(b, sizeof b, "%s.conv_scale.bn", p);
        rc = add_conv_bn(l, a, b, K, B, c->cout, cig, c->k);
        branches++;
    }
    if (!rc && wl_find(l, "%s.identity.running_mean", p)) {
        snprintf(b, sizeof b, "%s.identity", p);
        rc = add_identity_bn(l, b, K, B, c->cout, cig, c->k);
        branches++;
    }
    if (!rc && !branches)
        rc = gl_err_set(l->err, GLIMPSE_ERR_MISSING, "%s: missing tensor '%s%s.conv_kxk.0.conv.weight'", l->file,
                        l->prefix, p);
    if (!rc) rc = conv_from_double(l, c, K, B);
    gl_free(K);
    gl_free(B);
    return rc;
}

static int load_se(wl *l, const char *p, int c, mci_se *se) {
    const gl_tensor *t1 = wl_need(l, "%s.se.fc1.weight", p);
    if (!t1) return l->err->code;
    se->c = c;
    se->r = (int)t1->shape[0];
    se->w1 = wl_f32(l, t1, (int64_t)se->r * c);
    se->b1 = wl_f32(l, wl_need(l, "%s.se.fc1.bias", p), se->r);
    se->w2 = wl_f32(l, wl_need(l, "%s.se.fc2.weight", p), (int64_t)se->r * c);
    se->b2 = wl_f32(l, wl_need(l, "%s.se.fc2.bias", p), c);
    return (se->w1 && se->b1 && se->w2 && se->b2) ? 0 : l->err->code;
}

/* ConvMlp at prefix p (…mlp) with layer-scale tensor gamma folded into fc2. */
static int load_ffn(wl *l, const char *p, const char *gamma, int c, mci_ffn *f) {
    f->c = c;
    f->dw = (op_conv){.cin = c, .cout = c, .k = 7, .stride = 1, .groups = c, .act = KN_ACT_NONE};
    const gl_tensor *tdw = wl_need(l, "%s.conv.conv.weight", p);
    if (!tdw) return l->err->code;
    if (tdw->ndim == 4) f->dw.k = (int)tdw->shape[2];
    double *K, *B;
    if (alloc_kb(l, &f->dw, &K, &B)) return l->err->code;
    char a[320], b[320];
    snprintf(a, sizeof a, "%s.conv.conv.weight", p);
    snprintf(b, sizeof b, "%s.conv.bn", p);
    int rc = add_conv_bn(l, a, b, K, B, c, 1, f->dw.k);
    if (!rc) rc = conv_from_double(l, &f->dw, K, B);
    gl_free(K);
    gl_free(B);
    if (rc) return rc;
    const gl_tensor *t1 = wl_need(l, "%s.fc1.weight", p);
    if (!t1) return l->err->code;
    f->h = (int)t1->shape[0];
    float *w1 = wl_f32_tmp(l, t1, (int64_t)f->h * c);
    float *w2 = w1 ? wl_f32_tmp(l, wl_need(l, "%s.fc2.weight", p), (int64_t)f->h * c) : NULL;
    f->b1 = wl_f32(l, wl_need(l, "%s.fc1.bias", p), f->h);
    f->b2 = wl_f32(l, wl_need(l, "%s.fc2.bias", p), c);
    float *g = wl_f32(l, wl_need(l, "%s", gamma), c);
    rc = (!w1 || !w2 || !f->b1 || !f->b2 || !g) ? l->err->code : 0;
    if (!rc) {
        for (int o = 0; o < c; o++) {
            for (int i = 0; i < f->h; i++) w2[(size_t)o * f->h + i] *= g[o];
            f->b2[o] *= g[o];
        }
        f->w1 = f->w2 = NULL;
        f->w1t = f->w2t = GL_F32;
        rc = wl_pack_a(l, w1, f->h, c, &f->w1p);
        if (!rc) rc = wl_pack_a(l, w2, c, f->h, &f->w2p);
    }
    gl_free(w1);
    gl_free(w2);
    return rc;
}

/* RepMixer token mixer at prefix p (…token_mixer). */
static int load_repmixer(wl *l, const char *p, int c, op_conv *out) {
    *out = (op_conv){.cin = c, .cout = c, .k = 3, .stride = 1, .groups = c, .act = KN_ACT_NONE};
    int rc;
    if (try_reparam(l, p, out, &rc)) return rc;
    const gl_tensor *tk = wl_need(l, "%s.mixer.conv_kxk.0.conv.weight", p);
    if (!tk) return l->err->code;
    if (tk->ndim == 4) out->k = (int)tk->shape[2];
    op_conv mix = *out, nrm = *out;
    char a[320];
    snprintf(a, sizeof a, "%s.mixer", p);
    if ((rc = fold_mobileone(l, a, &mix))) return rc;
    snprintf(a, sizeof a, "%s.norm", p);
    if ((rc = fold_mobileone(l, a, &nrm))) return rc;
    float *g = wl_f32(l, wl_need(l, "%s.layer_scale.gamma", p), c);
    if (!g) return l->err->code;
    out->w = mix.w; /* reuse mixer's buffer: W = I + γ (Wm − Wn) */
    out->b = mix.b;
    int kk = out->k * out->k, ctr = kk / 2;
    for (int o = 0; o < c; o++) {
        for (int t = 0; t < kk; t++) out->w[o * kk + t] = g[o] * (mix.w[o * kk + t] - nrm.w[o * kk + t]);
        out->w[o * kk + ctr] += 1.0f;
        out->b[o] = g[o] * (mix.b[o] - nrm.b[o]);
    }
    return 0;
}

/* qkv (BatchNorm folded in, or LayerNorm kept) and proj (γ1 folded in) of an attention block
 * at p, into the temporaries wqkv (loaded by the caller) and *wproj. */
static int attn_weights(wl *l, const char *p, int c, mci_block *b, float *wqkv, float **wproj) {
    if (!wqkv) return l->err->code;
    b->bqkv = gl_blobs_alloc(l->blobs, sizeof(float) * 3 * (size_t)c);
    if (!b->bqkv) return gl_err_set(l->err, GLIMPSE_ERR_NOMEM, "out of memory");
    const gl_tensor *tqb = wl_find(l, "%s.token_mixer.qkv.bias", p);
    if (tqb) {
        float *qb = wl_f32(l, tqb, 3 * c);
        if (!qb) return l->err->code;
        memcpy(b->bqkv, qb, sizeof(float) * 3 * (size_t)c);
    }
    char nm[320];
    snprintf(nm, sizeof nm, "%s.norm", p);
    if (wl_find(l, "%s.norm.running_mean", p)) {
        /* BatchNorm: qkv(a⊙x + s) = (W diag a) x + W s */
        wl_bn bn;
        if (wl_load_bn(l, nm, c, BN_EPS, &bn)) return l->err->code;
        for (int j = 0; j < 3 * c; j++) {
            double acc = b->bqkv[j];
            for (int i = 0; i < c; i++) {
                acc += (double)wqkv[(size_t)j * c + i] * bn.shift[i];
                wqkv[(size_t)j * c + i] = (float)(wqkv[(size_t)j * c + i] * bn.scale[i]);
            }
            b->bqkv[j] = (float)acc;
        }
        wl_bn_free(&bn);
    } else {
        b->ln_w = wl_f32(l, wl_need(l, "%s.norm.weight", p), c);
        b->ln_b = wl_f32(l, wl_need(l, "%s.norm.bias", p), c);
        if (!b->ln_w || !b->ln_b) return l->err->code;
    }
    float *wp = *wproj = wl_f32_tmp(l, wl_need(l, "%s.token_mixer.proj.weight", p), (int64_t)c * c);
    b->bproj = wl_f32(l, wl_need(l, "%s.token_mixer.proj.bias", p), c);
    float *g1 = wl_f32(l, wl_need(l, "%s.layer_scale_1.gamma", p), c);
    if (!wp || !b->bproj || !g1) return l->err->code;
    for (int o = 0; o < c; o++) {
        for (int i = 0; i < c; i++) wp[(size_t)o * c + i] *= g1[o];
        b->bproj[o] *= g1[o];
    }
    return 0;
}

static int load_attn_block(wl *l, const char *p, int c, mci_block *b) {
    b->is_attn = 1;
    b->n_head = c / MCI_HEAD_DIM;
    if (b->n_head < 1 || c % MCI_HEAD_DIM)
        return gl_err_set(l->err, GLIMPSE_ERR_FORMAT, "%s: attention width %d is not a multiple of %d", l->file, c,
                          MCI_HEAD_DIM);
    float *wqkv = wl_f32_tmp(l, wl_need(l, "%s.token_mixer.qkv.weight", p), (int64_t)3 * c * c), *wproj = NULL;
    b->wqkv = b->wproj = NULL;
    b->wqkv_t = b->wproj_t = GL_F32;
    int rc = attn_weights(l, p, c, b, wqkv, &wproj);
    if (!rc) rc = wl_pack_b(l, wqkv, 3 * c, c, &b->wqkvp);
    if (!rc) rc = wl_pack_b(l, wproj, c, c, &b->wprojp);
    gl_free(wqkv);
    gl_free(wproj);
    if (rc) return rc;
    char mp[320], gp[320];
    snprintf(mp, sizeof mp, "%s.mlp", p);
    snprintf(gp, sizeof gp, "%s.layer_scale_2.gamma", p);
    return load_ffn(l, mp, gp, c, &b->ffn);
}

static int load_stage(wl *l, int s, int c_in, mci_stage *st) {
    char p[200];
    snprintf(p, sizeof p, "stages.%d", s);
    const gl_tensor *lk = wl_find(l, "%s.downsample.proj.0.large_conv.conv.weight", p);
    if (!lk) lk = wl_find(l, "%s.downsample.proj.0.reparam_conv.weight", p);
    st->c = c_in;
    if (lk) {
        if (lk->ndim != 4 || lk->shape[1] != 1 || lk->shape[0] % c_in)
            return gl_err_set(l->err, GLIMPSE_ERR_FORMAT, "%s: downsample of stage %d has an unexpected shape", l->file, s);
        st->has_down = 1;
        st->c = (int)lk->shape[0];
        st->lk = (op_conv){.cin = c_in, .cout = st->c, .k = (int)lk->shape[2], .stride = 2, .groups = c_in};
        char q[220];
        snprintf(q, sizeof q, "%s.downsample.proj.0", p);
        int rc;
        if (!try_reparam(l, q, &st->lk, &rc)) {
            double *K, *B;
            if (alloc_kb(l, &st->lk, &K, &B)) return l->err->code;
            char a[260], b[260];
            snprintf(a, sizeof a, "%s.large_conv.conv.weight", q);
            snprintf(b, sizeof b, "%s.large_conv.bn", q);
            rc = add_conv_bn(l, a, b, K, B, st->c, 1, st->lk.k);
            if (!rc && wl_find(l, "%s.small_conv.conv.weight", q)) {
                snprintf(a, sizeof a, "%s.small_conv.conv.weight", q);
                snprintf(b, sizeof b, "%s.small_conv.bn", q);
                rc = add_conv_bn(l, a, b, K, B, st->c, 1, st->lk.k);
            }
            if (!rc) rc = conv_from_double(l, &st->lk, K, B);
            gl_free(K);
            gl_free(B);
        }
        if (rc) return rc;
        st->has_se = wl_find(l, "%s.se.fc1.weight", q) != NULL;
        if (st->has_se && load_se(l, q, st->c, &st->se)) return l->err->code;
        st->lk.act = st->has_se ? KN_ACT_NONE : KN_ACT_GELU;
        snprintf(q, sizeof q, "%s.downsample.proj.1", p);
        st->pw = (op_conv){.cin = st->c, .cout = st->c, .k = 1, .stride = 1, .groups = 1, .act = KN_ACT_GELU};
        if ((rc = fold_mobileone(l, q, &st->pw))) return rc;
    }
    const gl_tensor *pe = wl_find(l, "%s.pos_emb.pos_enc.weight", p);
    const gl_tensor *pr = wl_find(l, "%s.pos_emb.reparam_conv.weight", p);
    if (pe || pr) {
        st->has_cpe = 1;
        const gl_tensor *t = pe ? pe : pr;
        st->cpe = (op_conv){.cin = st->c, .cout = st->c, .k = t->ndim == 4 ? (int)t->shape[2] : 7, .stride = 1,
                            .groups = st->c};
        int64_t n = (int64_t)st->c * st->cpe.k * st->cpe.k;
        st->cpe.w = wl_f32(l, t, n);
        st->cpe.b = wl_f32(l, pe ? wl_need(l, "%s.pos_emb.pos_enc.bias", p) : wl_need(l, "%s.pos_emb.reparam_conv.bias", p),
                           st->c);
        if (!st->cpe.w || !st->cpe.b) return l->err->code;
        if (pe) /* y = x + dwconv(x): identity at the centre tap */
            for (int o = 0; o < st->c; o++) st->cpe.w[(size_t)o * st->cpe.k * st->cpe.k + st->cpe.k * st->cpe.k / 2] += 1.0f;
    }
    while (wl_find(l, "%s.blocks.%d.mlp.fc1.weight", p, st->depth)) st->depth++;
    if (st->depth == 0) return gl_err_set(l->err, GLIMPSE_ERR_MISSING, "%s: stage %d has no blocks", l->file, s);
    st->blocks = gl_blobs_alloc(l->blobs, sizeof(mci_block) * (size_t)st->depth);
    if (!st->blocks) return gl_err_set(l->err, GLIMPSE_ERR_NOMEM, "out of memory");
    for (int b = 0; b < st->depth; b++) {
        char bp[220], mp[240], gp[240];
        snprintf(bp, sizeof bp, "%s.blocks.%d", p, b);
        int rc;
        if (wl_find(l, "%s.token_mixer.qkv.weight", bp)) {
            rc = load_attn_block(l, bp, st->c, &st->blocks[b]);
        } else {
            snprintf(mp, sizeof mp, "%s.token_mixer", bp);
            rc = load_repmixer(l, mp, st->c, &st->blocks[b].mixer);
            snprintf(mp, sizeof mp, "%s.mlp", bp);
            snprintf(gp, sizeof gp, "%s.layer_scale.gamma", bp);
            if (!rc) rc = load_ffn(l, mp, gp, st->c, &st->blocks[b].ffn);
        }
        if (rc) return rc;
    }
    return 0;
}

/* ---- Apple naming (FastViTHD in FastVLM, MobileCLIP v1 .pt): a flat `network.N` list ----
 * The loader asks for timm names; this maps them to Apple's. Stage s lives at network.N[s], its
 * downsample at network.D[s] and its RepCPE at network.P[s] (indices follow construction order). */
typedef struct apple_map { int D[MCI_MAX_STAGES], P[MCI_MAX_STAGES], N[MCI_MAX_STAGES], n; } apple_map;

static void str_replace_all(char *s, size_t cap, const char *from, const char *to) {
    size_t fl = strlen(from), tl = strlen(to);
    char *p = s;
    while ((p = strstr(p, from))) {
        size_t rest = strlen(p + fl);
        if ((size_t)(p - s) + tl + rest + 1 > cap) return;
        memmove(p + tl, p + fl, rest + 1);
        memcpy(p, to, tl);
        p += tl;
    }
}

static void apple_rename(const wl *l, const char *in, char *out, size_t n) {
    const apple_map *am = l->rename_ctx;
    char buf[320];
    int s, off = 0;
    if (sscanf(in, "stages.%d.%n", &s, &off) == 1 && off > 0 && s >= 0 && s < am->n) {
        const char *r = in + off;
        if (!strncmp(r, "downsample.", 11)) snprintf(buf, sizeof buf, ".network.%d.%s", am->D[s], r + 11);
        else if (!strncmp(r, "pos_emb.", 8)) snprintf(buf, sizeof buf, ".network.%d.%s", am->P[s], r + 8);
        else if (!strncmp(r, "blocks.", 7)) snprintf(buf, sizeof buf, ".network.%d.%s", am->N[s], r + 7);
        else snprintf(buf, sizeof buf, ".%s", in);
    } else if (!strncmp(in, "stem.", 5)) {
        snprintf(buf, sizeof buf, ".patch_embed.%s", in + 5);
    } else {
        snprintf(buf, sizeof buf, ".%s", in);
    }
    static const char *const rules[][2] = {
        {".conv_kxk.", ".rbr_conv."},       {".conv_scale.", ".rbr_scale."}, {".identity.", ".rbr_skip."},
        {".large_conv.", ".lkb_origin."},   {".proj.0.reparam_conv.", ".proj.0.lkb_reparam."},
        /* only conv_exp's SE is Apple's SEBlock (reduce/expand); the downsample SE is timm's (fc1/fc2) */
        {".final_conv.se.fc1.", ".conv_exp.se.reduce."}, {".final_conv.se.fc2.", ".conv_exp.se.expand."},
        {".mlp.", ".convffn."},
        {".layer_scale.gamma", ".layer_scale"}, {".layer_scale_1.gamma", ".layer_scale_1"},
        {".layer_scale_2.gamma", ".layer_scale_2"}, {".final_conv.", ".conv_exp."}, {".pos_enc.", ".pe."},
    };
    for (size_t i = 0; i < GL_ARRAY_LEN(rules); i++) str_replace_all(buf, sizeof buf, rules[i][0], rules[i][1]);
    snprintf(out, n, "%s", buf + 1);
}

/* Walks network.0, network.1, ... to find where each stage's parts are. */
static int apple_probe(wl *l, apple_map *am) {
    memset(am, 0, sizeof *am);
    int idx = 0;
    for (int s = 0; s < MCI_MAX_STAGES; s++) {
        am->D[s] = am->P[s] = -1;
        if (s > 0) {
            if (!wl_find(l, "network.%d.proj.0.lkb_reparam.weight", idx) &&
                !wl_find(l, "network.%d.proj.0.lkb_origin.conv.weight", idx))
                break;
            am->D[s] = idx++;
            if (wl_find(l, "network.%d.reparam_conv.weight", idx) || wl_find(l, "network.%d.pe.weight", idx))
                am->P[s] = idx++;
        }
        if (!wl_find(l, "network.%d.0.convffn.fc1.weight", idx)) break;
        am->N[s] = idx++;
        am->n = s + 1;
    }
    return am->n;
}

int mci_load(const gl_weights *w, const char *prefix, const char *file, mci_model **out, gl_err *err) {
    return mci_load_ex(w, prefix, file, MCI_NAMES_TIMM, 1, out, err);
}

int mci_load_ex(const gl_weights *w, const char *prefix, const char *file, int names, int need_head, mci_model **out,
                gl_err *err) {
    mci_model *m = gl_calloc(1, sizeof *m);
    if (!m) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
    wl l = {.w = w, .blobs = &m->blobs, .err = err, .file = file ? file : "model"};
    snprintf(l.prefix, sizeof l.prefix, "%s", prefix);
    int rc = 0;
    apple_map am;
    if (names == MCI_NAMES_APPLE) {
        if (!apple_probe(&l, &am)) {
            rc = gl_err_set(err, GLIMPSE_ERR_MISSING, "%s: no FastViT stages found under '%snetwork.'", l.file, prefix);
            goto fail;
        }
        l.rename = apple_rename;
        l.rename_ctx = &am;
    }
    const gl_tensor *s0 = wl_find(&l, "stem.0.conv_kxk.0.conv.weight");
    if (!s0) s0 = wl_need(&l, "stem.0.reparam_conv.weight");
    if (!s0) goto fail;
    if (s0->ndim != 4 || s0->shape[1] != 3) {
        rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: stem.0 expects 3 input channels", l.file);
        goto fail;
    }
    int c0 = (int)s0->shape[0], k0 = (int)s0->shape[2];
    m->stem[0] = (op_conv){.cin = 3, .cout = c0, .k = k0, .stride = 2, .groups = 1, .act = KN_ACT_GELU};
    m->stem[1] = (op_conv){.cin = c0, .cout = c0, .k = 3, .stride = 2, .groups = c0, .act = KN_ACT_GELU};
    m->stem[2] = (op_conv){.cin = c0, .cout = c0, .k = 1, .stride = 1, .groups = 1, .act = KN_ACT_GELU};
    const char *sp[3] = {"stem.0", "stem.1", "stem.2"};
    for (int i = 0; i < 3; i++)
        if ((rc = fold_mobileone(&l, sp[i], &m->stem[i]))) goto fail;
    int c = c0;
    while (m->n_stages < MCI_MAX_STAGES && wl_find(&l, "stages.%d.blocks.0.mlp.fc1.weight", m->n_stages)) {
        if ((rc = load_stage(&l, m->n_stages, c, &m->st[m->n_stages]))) goto fail;
        c = m->st[m->n_stages].c;
        m->n_stages++;
    }
    if (m->n_stages < 2) {
        rc = gl_err_set(err, GLIMPSE_ERR_MISSING, "%s: no MCi stages found (expected %sstages.N.blocks...)", l.file, prefix);
        goto fail;
    }
    const gl_tensor *fk = wl_find(&l, "final_conv.conv_kxk.0.conv.weight");
    if (!fk) fk = wl_need(&l, "final_conv.reparam_conv.weight");
    if (!fk) goto fail;
    m->feat = (int)fk->shape[0];
    m->fconv = (op_conv){.cin = c, .cout = m->feat, .k = (int)fk->shape[2], .stride = 1, .groups = c, .act = KN_ACT_NONE};
    if ((rc = fold_mobileone(&l, "final_conv", &m->fconv))) goto fail;
    if ((rc = load_se(&l, "final_conv", m->feat, &m->fse))) goto fail;
    const gl_tensor *hw = wl_find(&l, "head.fc.weight");
    const gl_tensor *hp = names == MCI_NAMES_APPLE ? wl_find(&l, "head.proj") : NULL;
    if (hw) {
        m->embed = (int)hw->shape[0];
        m->head_w = wl_f32(&l, hw, (int64_t)m->embed * m->feat);
        m->head_b = wl_f32(&l, wl_need(&l, "head.fc.bias"), m->embed);
        if (!m->head_w || !m->head_b) goto fail;
    } else if (hp && hp->ndim == 2 && hp->shape[0] == m->feat) {
        /* Apple GlobalPool2D: x·P with P [feat, embed], no bias */
        m->embed = (int)hp->shape[1];
        float *p = wl_f32(&l, hp, (int64_t)m->embed * m->feat);
        float *hw2 = gl_blobs_alloc(&m->blobs, sizeof(float) * (size_t)m->embed * m->feat);
        m->head_b = gl_blobs_alloc(&m->blobs, sizeof(float) * (size_t)m->embed);
        if (!p || !hw2 || !m->head_b) goto fail;
        for (int i = 0; i < m->feat; i++)
            for (int e = 0; e < m->embed; e++) hw2[(size_t)e * m->feat + i] = p[(size_t)i * m->embed + e];
        m->head_w = hw2;
    } else if (need_head) {
        wl_need(&l, "head.fc.weight");
        goto fail;
    }
    *out = m;
    return 0;
fail:
    if (!rc) rc = err->code ? err->code : GLIMPSE_ERR_INTERNAL;
    mci_free(m);
    return rc;
}

static void pack_q(mci_model *m, const void *w, gl_dtype t, int64_t N, int64_t K, int cm, kn_qpacked *out) {
#if defined(__x86_64__)
    if (!gl_dtype_is_quant(t) || K % GL_QK || out->p) return;
    void *d = gl_blobs_alloc_raw(&m->blobs, kn_qpacked_bytes(N, K, cm));
    if (d) kn_qpack_avx512vnni(w, t, N, K, cm, d, out);
#else
    (void)m, (void)w, (void)t, (void)N, (void)K, (void)cm, (void)out;
#endif
}

void mci_pack_quant(mci_model *m) {
#if defined(__x86_64__)
    gl_cpu cpu = gl_cpu_detect();
    if (!gl_cpu_has_avx512vnni(&cpu)) return;
#endif
    op_conv *cv[2 + 2 * MCI_MAX_STAGES];
    int ncv = 0;
    for (int i = 0; i < 3; i++) cv[ncv++] = &m->stem[i];
    for (int s = 0; s < m->n_stages; s++) cv[ncv++] = &m->st[s].pw;
    for (int i = 0; i < ncv; i++)
        if (cv[i]->wq) pack_q(m, cv[i]->wq, cv[i]->wqt, cv[i]->cout, cv[i]->cin, 1, &cv[i]->wqp);
    for (int s = 0; s < m->n_stages; s++)
        for (int b = 0; b < m->st[s].depth; b++) {
            mci_block *bl = &m->st[s].blocks[b];
            mci_ffn *f = &bl->ffn;
            int C = m->st[s].c;
            if (!f->w1p.p) {
                pack_q(m, f->w1, f->w1t, f->h, f->c, 1, &f->w1q);
                pack_q(m, f->w2, f->w2t, f->c, f->h, 1, &f->w2q);
            }
            if (bl->is_attn && !bl->wqkvp.p) {
                pack_q(m, bl->wqkv, bl->wqkv_t, 3 * C, C, 0, &bl->wqkvq);
                pack_q(m, bl->wproj, bl->wproj_t, C, C, 0, &bl->wprojq);
            }
        }
}

void mci_free(mci_model *m) {
    if (!m) return;
    gl_blobs_free(&m->blobs);
    gl_free(m);
}

int mci_embed_dim(const mci_model *m) { return m->embed; }

void mci_describe(const mci_model *m, char *buf, size_t n) {
    int off = snprintf(buf, n, "MCi: %d stages, widths", m->n_stages);
    for (int s = 0; s < m->n_stages && off < (int)n; s++)
        off += snprintf(buf + off, n - off, "%s%d", s ? "/" : " ", m->st[s].c);
    if (off < (int)n) off += snprintf(buf + off, n - off, ", depths");
    for (int s = 0; s < m->n_stages && off < (int)n; s++)
        off += snprintf(buf + off, n - off, "%s%d", s ? "/" : " ", m->st[s].depth);
    if (off < (int)n) snprintf(buf + off, n - off, ", final %d, embed %d", m->feat, m->embed);
}

/* ---- forward ---- */

/* The largest map any step writes, in floats, for an H x W input. */
static size_t max_map(const mci_model *m, int H, int W) {
    size_t mx = 0;
    int h = op_conv_out(H, m->stem[0].k, 2), w = op_conv_out(W, m->stem[0].k, 2);
    mx = (size_t)m->stem[0].cout * h * w;
    h = op_conv_out(h, 3, 2), w = op_conv_out(w, 3, 2);
    for (int s = 0; s < m->n_stages; s++) {
        const mci_stage *st = &m->st[s];
        if (st->has_down) h = op_conv_out(h, st->lk.k, 2), w = op_conv_out(w, st->lk.k, 2);
        size_t hw = (size_t)h * w;
        mx = GL_MAX(mx, (size_t)st->c * hw);
        for (int b = 0; b < st->depth; b++) {
            mx = GL_MAX(mx, (size_t)st->blocks[b].ffn.h * hw);
            if (st->blocks[b].is_attn) mx = GL_MAX(mx, 3 * (size_t)st->c * hw);
        }
    }
    mx = GL_MAX(mx, (size_t)m->feat * h * w);
    return mx;
}

size_t mci_ws_floats(const mci_model *m, int H, int W, int n_threads) {
    size_t mm = max_map(m, H, W);
    /* 4 maps + attention scores + SE / pooling scratch */
    return 4 * (mm + 16) + 4 * (size_t)m->feat + 64; /* 4 maps + SE / pooling scratch */
}

/* Several threads on one image: ConvFFN's fc1 and fc2 band by band, each band whole on one
 * thread (fc1 into that thread's hidden rows, then fc2 from them), bands claimed from a
 * counter. The hidden band never moves between cores, and the two GEMMs are one pool run
 * instead of two, each without per-chunk synchronisation. Same results bitwise (kn_gemm's
 * results do not depend on N or on the threads). */
typedef struct ffn_job {
    const mci_ffn *f;
    const kn_env *env;
    float *x, *t1, *hid, *gws;
    int64_t hw, band, n_bands, hid_per, gws_per;
    int quant; /* the int8 weights packed by mci_pack_quant (a converted file) */
    atomic_llong next;
} ffn_job;

static void ffn_band_task(void *v, int ith, int nth) {
    ffn_job *j = v;
    const mci_ffn *f = j->f;
    kn_scratch s = {j->gws + (size_t)ith * j->gws_per, (size_t)j->gws_per * sizeof(float)};
    kn_env e = *j->env;
    e.pool = NULL;
    e.scratch = &s; /* large enough for both products (checked by the caller): never regrown */
    float *hid = j->hid + (size_t)ith * j->hid_per;
    int64_t lo, hi;
    (void)nth;
    while (gl_grab(&j->next, j->n_bands, 1, &lo, &hi)) {
        int64_t p0 = lo * j->band;
        int n = (int)GL_MIN(j->band, j->hw - p0);
        if (j->quant) {
            /* hid only feeds fc2, whose int8 product quantizes it (whatever path runs it) */
            op_pointwise_tq_ld(&e, f->w1, f->w1t, &f->w1q, f->b1, f->h, f->c, j->t1 + p0, j->hw, n, hid, n, KN_ACT_GELU, 0, 1);
            op_pointwise_tq_ld(&e, f->w2, f->w2t, &f->w2q, f->b2, f->c, f->h, hid, n, n, j->x + p0, j->hw, KN_ACT_NONE, 1, 0);
            continue;
        }
        op_pointwise_ld(&e, &f->w1p, f->b1, j->t1 + p0, j->hw, n, hid, n, KN_ACT_GELU, 0);
        op_pointwise_ld(&e, &f->w2p, f->b2, hid, n, n, j->x + p0, j->hw, KN_ACT_NONE, 1); /* x += γ·fc2(...) */
    }
}

static float *align16f(float *p) { return (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }

/* spare: a map-sized region (mm floats) free during the FFN. Returns 1 if it ran the bands. */
static int ffn_bands_mt(const kn_env *env, const mci_ffn *f, float *x, int64_t hw, float *t1, float *hid, size_t mm,
                        float *spare) {
    int nth = gl_pool_size(env->pool);
    if (nth < 2 || hw / (2 * nth) < 64) return 0;
    /* int8 (a converted file): only where the packed AVX512-VNNI kernel runs the bands, whose
     * workspace is known here; its pixel tiles are 32 wide */
    int quant = f->w1q.p && f->w2q.p;
    if (!quant && !f->w1p.p) return 0;
    int64_t band = GL_MAX((int64_t)64, (384 * 1024 / 4) / f->h / 64 * 64);
    band = GL_MIN(band, hw / (2 * nth) / (quant ? 32 : 16) * (quant ? 32 : 16)); /* >= 2 bands per thread */
    kn_env e1 = *env;
    e1.pool = NULL;
    size_t g = quant ? GL_MAX(op_pointwise_tq_ws(&e1, f->w1t, f->h, f->c, (int)band), op_pointwise_tq_ws(&e1, f->w2t, f->c, f->h, (int)band))
                     : GL_MAX(kn_gemm_ws_size(&e1, f->h, band, f->c), kn_gemm_ws_size(&e1, f->c, band, f->h));
    if (quant && (!g || band < KN_Q_DEQUANT_M)) return 0;
    int64_t gws_per = (int64_t)((g + 3) / 4 + 15) / 16 * 16, hid_per = (band * f->h + 15) / 16 * 16;
    if ((size_t)(nth * hid_per + 16) > mm || (size_t)(nth * gws_per + 16) > mm) return 0;
    ffn_job j = {.f = f, .env = env, .x = x, .t1 = t1, .hid = align16f(hid), .gws = align16f(spare), .hw = hw,
                 .band = band, .n_bands = (hw + band - 1) / band, .hid_per = hid_per, .gws_per = gws_per, .quant = quant};
    atomic_init(&j.next, 0);
    gl_pool_run(env->pool, ffn_band_task, &j);
    return 1;
}

static void run_ffn(const kn_env *env, const mci_ffn *f, float *x, int h, int w, float *t1, float *hid, size_t mm,
                    float *spare) {
    int hw = h * w;
    op_conv2d(env, &f->dw, x, h, w, t1);
    if (f->w1p.p) {
        if (ffn_bands_mt(env, f, x, hw, t1, hid, mm, spare)) return;
        /* One thread (a batch: each thread runs whole images, so both cores' maps compete for
         * the cache): fc1 and fc2 a band of columns (pixels) at a time, the band's hidden rows
         * (3x the width) within ~384 KB, so fc2 reads them from L2 rather than memory. Several
         * threads on a map too small for ffn_bands_mt: the whole map per call.
         * Each output is computed exactly as on the whole map (kn_gemm's results do not depend
         * on N). */
        int64_t band = hw;
        if (gl_pool_size(env->pool) <= 1) band = GL_MAX((int64_t)64, (384 * 1024 / 4) / f->h / 64 * 64);
        for (int64_t p0 = 0; p0 < hw; p0 += band) {
            int n = (int)(hw - p0 < band ? hw - p0 : band);
            op_pointwise_ld(env, &f->w1p, f->b1, t1 + p0, hw, n, hid, n, KN_ACT_GELU, 0);
            op_pointwise_ld(env, &f->w2p, f->b2, hid, n, n, x + p0, hw, KN_ACT_NONE, 1); /* x += γ·fc2(...) */
        }
    } else { /* a converted file: weights as stored (f32 or quantized) */
        if (ffn_bands_mt(env, f, x, hw, t1, hid, mm, spare)) return;
        op_pointwise_tq(env, f->w1, f->w1t, &f->w1q, f->b1, f->h, f->c, t1, hw, hid, KN_ACT_GELU, 0);
        op_pointwise_tq(env, f->w2, f->w2t, &f->w2q, f->b2, f->c, f->h, hid, hw, x, KN_ACT_NONE, 1);
    }
}

/* Runs the tower up to the final conv (+SE+GELU); returns the map [feat, *ho, *wo] inside ws. */
static float *trunk(const mci_model *m, const kn_env *env, const float *x, int H, int W, float *ws, int *ho, int *wo,
                    float **scratch) {
    size_t mm = max_map(m, H, W) + 16;
    float *a = ws, *b = a + mm, *c = b + mm, *d = c + mm, *scr = d + mm;
    int h = H, w = W;
    op_conv2d(env, &m->stem[0], x, h, w, a);
    h = op_conv_out(h, m->stem[0].k, 2), w = op_conv_out(w, m->stem[0].k, 2);
    op_conv2d(env, &m->stem[1], a, h, w, b);
    h = op_conv_out(h, 3, 2), w = op_conv_out(w, 3, 2);
    op_conv2d(env, &m->stem[2], b, h, w, a);
    float *cur = a, *oth = b;
    for (int s = 0; s < m->n_stages; s++) {
        const mci_stage *st = &m->st[s];
        if (st->has_down) {
            op_conv2d(env, &st->lk, cur, h, w, oth);
            h = op_conv_out(h, st->lk.k, 2), w = op_conv_out(w, st->lk.k, 2);
            if (st->has_se) {
                op_se(env, oth, st->c, h * w, st->se.w1, st->se.b1, st->se.r, st->se.w2, st->se.b2, scr);
                op_gelu(env, oth, (size_t)st->c * h * w);
            }
            op_conv2d(env, &st->pw, oth, h, w, cur);
        }
        if (st->has_cpe) {
            op_conv2d(env, &st->cpe, cur, h, w, oth);
            float *t = cur; cur = oth; oth = t;
        }
        int hw = h * w, C = st->c;
        for (int bi = 0; bi < st->depth; bi++) {
            const mci_block *bl = &st->blocks[bi];
            if (!bl->is_attn) {
                op_conv2d(env, &bl->mixer, cur, h, w, oth);
                float *t = cur; cur = oth; oth = t;
            } else {
                /* tokens [hw, C] in oth; (LN) ; qkv [hw, 3C] in c; attention -> d [hw, C] */
                op_transpose(env, cur, C, hw, oth);
                if (bl->ln_w) op_layernorm(env, oth, hw, C, bl->ln_w, bl->ln_b, LN_EPS, oth);
                if (bl->wqkvp.p) op_linear_p(env, oth, hw, &bl->wqkvp, bl->bqkv, c, KN_ACT_NONE, 0);
                else op_linear_q(env, oth, hw, C, bl->wqkv, bl->wqkv_t, &bl->wqkvq, bl->bqkv, 3 * C, c, KN_ACT_NONE, 0);
                op_attention(env, c, hw, bl->n_head, MCI_HEAD_DIM, 0, d);
                if (bl->wprojp.p) op_linear_p(env, d, hw, &bl->wprojp, bl->bproj, oth, KN_ACT_NONE, 0);
                else op_linear_q(env, d, hw, C, bl->wproj, bl->wproj_t, &bl->wprojq, bl->bproj, C, oth, KN_ACT_NONE, 0);
                op_transpose(env, oth, hw, C, c);
                op_add(env, cur, c, (size_t)C * hw);
            }
            run_ffn(env, &bl->ffn, cur, h, w, oth, c, mm, d);
        }
    }
    op_conv2d(env, &m->fconv, cur, h, w, oth);
    op_se(env, oth, m->feat, h * w, m->fse.w1, m->fse.b1, m->fse.r, m->fse.w2, m->fse.b2, scr);
    op_gelu(env, oth, (size_t)m->feat * h * w);
    *ho = h;
    *wo = w;
    *scratch = scr;
    return oth;
}

static int check_input(const mci_model *m, int H, int W, gl_err *err) {
    if (H < 16 || W < 16 || H > 16384 || W > 16384)
        return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "MCi: input %dx%d is outside 16..16384", W, H);
    return 0;
}

int mci_forward(const mci_model *m, const kn_env *env, const float *x, int H, int W, float *emb, float *ws,
                gl_err *err) {
    if (check_input(m, H, W, err)) return err->code;
    if (!m->head_w) return gl_err_set(err, GLIMPSE_ERR_MODEL_KIND, "MCi: this tower has no projection head");
    int h, w;
    float *scr, *map = trunk(m, env, x, H, W, ws, &h, &w, &scr);
    float *pooled = scr;
    op_mean_hw(env, map, m->feat, h * w, pooled);
    op_linear(env, pooled, 1, m->feat, m->head_w, m->head_t, m->head_b, m->embed, emb, KN_ACT_NONE, 0);
    return 0;
}

/* One thread's part of a batch workspace (whole cache lines). */
static size_t batch_ws_per(const mci_model *m, int H, int W) { return (mci_ws_floats(m, H, W, 1) + 15) & ~(size_t)15; }

size_t mci_batch_ws_floats(const mci_model *m, int H, int W, int n_threads) {
    return GL_MAX(batch_ws_per(m, H, W) * (size_t)GL_MAX(n_threads, 1), mci_ws_floats(m, H, W, n_threads));
}

typedef struct batch_job {
    const mci_model *m;
    const kn_env *env;
    const float *x;
    float *emb, *ws;
    int n, H, W;
    size_t ws_per;
    atomic_llong next;
    atomic_int failed;
    gl_err err; /* the first failure */
} batch_job;

static void batch_task(void *v, int ith, int nth) {
    batch_job *j = v;
    kn_scratch scratch = {0};
    kn_env env = *j->env;
    env.pool = NULL; /* this thread alone */
    env.scratch = &scratch;
    float *ws = j->ws + (size_t)ith * j->ws_per;
    size_t px = 3 * (size_t)j->H * j->W;
    int64_t lo, hi;
    (void)nth;
    while (!atomic_load(&j->failed) && gl_grab(&j->next, j->n, 1, &lo, &hi)) {
        gl_err err = {0};
        if (mci_forward(j->m, &env, j->x + (size_t)lo * px, j->H, j->W, j->emb + (size_t)lo * j->m->embed, ws, &err) &&
            atomic_exchange(&j->failed, 1) == 0)
            j->err = err;
    }
    kn_scratch_free(&scratch);
}

int mci_forward_batch(const mci_model *m, const kn_env *env, const float *x, int n, int H, int W, float *emb, float *ws,
                      gl_err *err) {
    if (check_input(m, H, W, err)) return err->code;
    if (!m->head_w) return gl_err_set(err, GLIMPSE_ERR_MODEL_KIND, "MCi: this tower has no projection head");
    int nth = gl_pool_size(env->pool);
    if (n < 2 || nth < 2) {
        for (int i = 0; i < n; i++)
            if (mci_forward(m, env, x + (size_t)i * 3 * H * W, H, W, emb + (size_t)i * m->embed, ws, err)) return err->code;
        return 0;
    }
    batch_job j = {.m = m, .env = env, .x = x, .emb = emb, .ws = ws, .n = n, .H = H, .W = W,
                   .ws_per = batch_ws_per(m, H, W)};
    atomic_init(&j.next, 0);
    atomic_init(&j.failed, 0);
    gl_pool_run(env->pool, batch_task, &j);
    if (atomic_load(&j.failed)) {
        *err = j.err;
        return err->code;
    }
    return 0;
}

int mci_forward_features(const mci_model *m, const kn_env *env, const float *x, int H, int W, float *tokens,
                         float *ws, gl_err *err) {
    if (check_input(m, H, W, err)) return err->code;
    int h, w;
    float *scr, *map = trunk(m, env, x, H, W, ws, &h, &w, &scr);
    op_transpose(env, map, m->feat, h * w, tokens);
    return 0;
}

int mci_feature_dim(const mci_model *m) { return m->feat; }

int mci_stride(const mci_model *m) {
    int s = 4;
    for (int i = 0; i < m->n_stages; i++)
        if (m->st[i].has_down) s *= 2;
    return s;
}
