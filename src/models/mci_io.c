/* mci_io.c — the folded MCi tower in a GGUF file: written by `glimpse convert`, read back by
 * mci_load_gguf. The file holds the inference form (BatchNorms, reparameterised branches and
 * layer scales already folded, as mci.c folds a training checkpoint), so loading does no
 * arithmetic and quantized weights are used in place in the mapping.
 *
 * One walk over the model serves both directions, so names and order cannot drift apart.
 * Names under the prefix (e.g. "v."):
 *   stem.{0,1,2}  s{S}.down  s{S}.down_se.{fc1,fc2}  s{S}.pw  s{S}.cpe
 *   s{S}.b{B}.mixer | s{S}.b{B}.{ln,qkv,proj}   s{S}.b{B}.ffn.{dw,fc1,fc2}
 *   final  final_se.{fc1,fc2}  head
 * A conv is <name>.weight [cout, cin/groups, k, k] (or [cout, cin] when a 1x1 conv is
 * quantized) and <name>.bias, with its geometry in the KV glimpse.mci.<name> = [cin, cout, k,
 * stride, groups, act]. Linear weights are [out, in]. The stages are described by the KVs
 * glimpse.mci.stages = n and glimpse.mci.s{S} = [width, depth, has_down, has_se, has_cpe]. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/fp16.h"
#include "core/quant.h"
#include "io/gguf.h"
#include "mci_impl.h"

typedef struct mio {
    int save;
    /* save */
    io_gguf_writer *gw;
    gl_dtype qtype; /* GL_Q8_0 / GL_Q4_0 for 1x1 convs and linears, or GL_F32 / GL_F16 */
    gl_dtype ftype; /* other weights: GL_F32 or GL_F16 */
    gl_blobs *keep; /* converted buffers, alive until the file is written */
    /* load */
    wl *l;
    const io_gguf *g;
    gl_blobs *blobs;
    const char *prefix;
    gl_err *err;
} mio;

static int fail_nomem(mio *io) { return gl_err_set(io->err, GLIMPSE_ERR_NOMEM, "out of memory"); }

static void key(char *out, size_t n, const char *name) { snprintf(out, n, "glimpse.mci.%s", name); }

/* full tensor name (for the writer; the loader's wl adds the prefix itself) */
static void tname(const mio *io, char *out, size_t n, const char *name, const char *suffix) {
    snprintf(out, n, "%s%s%s", io->save ? io->prefix : "", name, suffix);
}

static int add(mio *io, const char *name, const char *suffix, gl_dtype t, int ndim, const int64_t *shape,
               const float *src) {
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) numel *= shape[i];
    const void *data = src;
    size_t nbytes;
    if (!gl_dtype_nbytes(t, (uint64_t)numel, &nbytes)) return gl_err_set(io->err, GLIMPSE_ERR_INTERNAL, "bad size");
    if (t != GL_F32) {
        void *buf = gl_blobs_alloc(io->keep, nbytes);
        if (!buf) return fail_nomem(io);
        if (t == GL_F16)
            for (int64_t i = 0; i < numel; i++) ((uint16_t *)buf)[i] = gl_f32_to_f16(src[i]);
        else
            for (int64_t r = 0; r < numel / shape[ndim - 1]; r++)
                gl_quantize_row(t, src + r * shape[ndim - 1],
                                (uint8_t *)buf + (size_t)r * (size_t)(shape[ndim - 1] / GL_QK) * gl_dtype_size(t),
                                shape[ndim - 1]);
        data = buf;
    }
    char n[256];
    tname(io, n, sizeof n, name, suffix);
    int rc = io_gguf_writer_add_tensor(io->gw, n, t, ndim, shape, data, nbytes);
    return rc ? gl_err_set(io->err, rc, "cannot add tensor '%s'", n) : 0;
}

/* f32 weights used in place from the mapping when stored as aligned F32 (the model never
 * writes its weights after loading), else an f32 copy. */
static float *f32_view(mio *io, const gl_tensor *t, int64_t n) {
    if (t && t->dtype == GL_F32 && (uintptr_t)t->data % 4 == 0 && gl_tensor_numel(t) == n) return (float *)t->data;
    return wl_f32(io->l, t, n);
}

/* A float vector (biases, norms): always F32. */
static int io_vec(mio *io, const char *name, float **v, int64_t n) {
    if (io->save) return add(io, name, "", GL_F32, 1, &n, *v);
    *v = f32_view(io, wl_need(io->l, "%s", name), n);
    return *v ? 0 : io->err->code;
}

/* A linear weight [rows, cols]: quantized when asked and the rows are whole blocks. Loading:
 * rows < 0 takes them from the tensor (written to *rows_out). Saving at Q4_0, the matrices
 * that write into the residual stream (ffn fc2, attention proj) and the head stay at Q8_0:
 * on a random full-size S0 pure Q4_0 gave image cosines of 0.987 and these at Q8_0 0.994
 * (issue 5 asks >= 0.99), for 9% more bytes than all-Q4_0 (llama.cpp's quantizer likewise
 * keeps ffn_down / attn_output / output at higher precision in its mixes). */
static gl_dtype save_type(const mio *io, const char *name, int64_t cols) {
    if (!gl_dtype_is_quant(io->qtype) || cols % GL_QK) return io->ftype;
    static const char *const hi[] = {".ffn.fc2.", ".proj.", "head."};
    if (io->qtype == GL_Q4_0)
        for (size_t i = 0; i < GL_ARRAY_LEN(hi); i++)
            if (strstr(name, hi[i])) return GL_Q8_0;
    return io->qtype;
}

static int io_mat(mio *io, const char *name, const void **w, gl_dtype *t, int64_t rows, int64_t cols, int *rows_out) {
    if (io->save) {
        if (*t != GL_F32) return gl_err_set(io->err, GLIMPSE_ERR_INTERNAL, "%s: already converted", name);
        gl_dtype to = save_type(io, name, cols);
        return add(io, name, "", to, 2, (int64_t[]){rows, cols}, *w);
    }
    const gl_tensor *tt = wl_need(io->l, "%s", name);
    if (!tt) return io->err->code;
    if (rows < 0) rows = tt->ndim == 2 ? tt->shape[0] : 0;
    if (rows_out) *rows_out = (int)rows;
    if (rows <= 0 || rows > (1 << 20))
        return gl_err_set(io->err, GLIMPSE_ERR_FORMAT, "%s: tensor '%s' has an unexpected shape", io->l->file, tt->name);
    wl_mat m;
    if (gl_dtype_is_quant(tt->dtype)) {
        if (wl_matrix(io->l, tt, rows, cols, &m)) return io->err->code;
        *w = m.data;
        *t = m.type;
        return 0;
    }
    float *f = f32_view(io, tt, rows * cols);
    if (!f || tt->shape[0] != rows) return io->err->code ? io->err->code : gl_err_set(io->err, GLIMPSE_ERR_FORMAT,
                                                                                      "%s: tensor '%s' has an unexpected shape", io->l->file, tt->name);
    *w = f;
    *t = GL_F32;
    return 0;
}

static int io_conv(mio *io, op_conv *c, const char *fmt, ...) {
    char name[160], k[200], wn[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    key(k, sizeof k, name);
    if (io->save) {
        int32_t meta[6] = {c->cin, c->cout, c->k, c->stride, c->groups, (int32_t)c->act};
        if (io_gguf_writer_set_arr(io->gw, k, IO_GGUF_I32, meta, 6)) return fail_nomem(io);
        int rc;
        if (c->k == 1 && c->stride == 1 && c->groups == 1 && gl_dtype_is_quant(io->qtype) && c->cin % GL_QK == 0)
            rc = add(io, name, ".weight", io->qtype, 2, (int64_t[]){c->cout, c->cin}, c->w);
        else
            rc = add(io, name, ".weight", io->ftype, 4, (int64_t[]){c->cout, c->cin / c->groups, c->k, c->k}, c->w);
        return rc ? rc : add(io, name, ".bias", GL_F32, 1, (int64_t[]){c->cout}, c->b);
    }
    const io_gguf_kv *kv = io_gguf_find_kv(io->g, k);
    if (!kv || kv->type != IO_GGUF_ARRAY || kv->n != 6)
        return gl_err_set(io->err, GLIMPSE_ERR_MISSING, "%s: missing or bad metadata '%s'", io->l->file, k);
    int64_t v[6];
    for (int i = 0; i < 6; i++) v[i] = io_gguf_arr_int(kv, (uint64_t)i);
    if (v[0] < 1 || v[1] < 1 || v[2] < 1 || v[2] > 15 || !(v[2] & 1) || v[3] < 1 || v[3] > 4 || v[4] < 1 ||
        v[0] % v[4] || v[1] % v[4] || v[0] > (1 << 16) || v[1] > (1 << 16) || v[5] < 0 || v[5] > KN_ACT_GELU_TANH)
        return gl_err_set(io->err, GLIMPSE_ERR_FORMAT, "%s: bad conv geometry in '%s'", io->l->file, k);
    *c = (op_conv){.cin = (int)v[0], .cout = (int)v[1], .k = (int)v[2], .stride = (int)v[3], .groups = (int)v[4],
                   .act = (kn_act)v[5]};
    snprintf(wn, sizeof wn, "%s.weight", name);
    const gl_tensor *tw = wl_need(io->l, "%s", wn);
    if (!tw) return io->err->code;
    if (gl_dtype_is_quant(tw->dtype)) {
        if (c->k != 1 || c->stride != 1 || c->groups != 1)
            return gl_err_set(io->err, GLIMPSE_ERR_FORMAT, "%s: '%s' is quantized but not a 1x1 conv", io->l->file, tw->name);
        wl_mat m;
        if (wl_matrix(io->l, tw, c->cout, c->cin, &m)) return io->err->code;
        c->wq = m.data;
        c->wqt = m.type;
    } else {
        c->w = f32_view(io, tw, (int64_t)c->cout * (c->cin / c->groups) * c->k * c->k);
        if (!c->w) return io->err->code;
    }
    snprintf(wn, sizeof wn, "%s.bias", name);
    c->b = f32_view(io, wl_need(io->l, "%s", wn), c->cout);
    return c->b ? 0 : io->err->code;
}

static int io_se(mio *io, mci_se *se, int c, const char *name) {
    char a[160];
    se->c = c;
    const void *w1 = se->w1, *w2 = se->w2;
    gl_dtype t1 = GL_F32, t2 = GL_F32;
    mio plain = *io;
    plain.qtype = GL_F32; /* small: kept in float (op_se reads f32) */
    plain.ftype = GL_F32;
    snprintf(a, sizeof a, "%s.fc1.weight", name);
    if (io_mat(&plain, a, &w1, &t1, io->save ? se->r : -1, c, &se->r)) return io->err->code;
    snprintf(a, sizeof a, "%s.fc1.bias", name);
    if (io_vec(io, a, &se->b1, se->r)) return io->err->code;
    snprintf(a, sizeof a, "%s.fc2.weight", name);
    if (io_mat(&plain, a, &w2, &t2, c, se->r, NULL)) return io->err->code;
    snprintf(a, sizeof a, "%s.fc2.bias", name);
    if (io_vec(io, a, &se->b2, c)) return io->err->code;
    se->w1 = (float *)w1;
    se->w2 = (float *)w2;
    return 0;
}

static int io_stage_kv(mio *io, int s, mci_stage *st) {
    char k[64], nm[16];
    snprintf(nm, sizeof nm, "s%d", s);
    key(k, sizeof k, nm);
    if (io->save) {
        int32_t v[5] = {st->c, st->depth, st->has_down, st->has_se, st->has_cpe};
        return io_gguf_writer_set_arr(io->gw, k, IO_GGUF_I32, v, 5) ? fail_nomem(io) : 0;
    }
    const io_gguf_kv *kv = io_gguf_find_kv(io->g, k);
    if (!kv || kv->type != IO_GGUF_ARRAY || kv->n != 5)
        return gl_err_set(io->err, GLIMPSE_ERR_MISSING, "%s: missing or bad metadata '%s'", io->l->file, k);
    int64_t c = io_gguf_arr_int(kv, 0), d = io_gguf_arr_int(kv, 1);
    if (c < 1 || c > (1 << 16) || d < 1 || d > 256)
        return gl_err_set(io->err, GLIMPSE_ERR_FORMAT, "%s: bad stage metadata '%s'", io->l->file, k);
    st->c = (int)c;
    st->depth = (int)d;
    st->has_down = io_gguf_arr_int(kv, 2) != 0;
    st->has_se = io_gguf_arr_int(kv, 3) != 0;
    st->has_cpe = io_gguf_arr_int(kv, 4) != 0;
    st->blocks = gl_blobs_alloc(io->blobs, sizeof(mci_block) * (size_t)st->depth);
    return st->blocks ? 0 : fail_nomem(io);
}

static int io_block(mio *io, int s, int bi, int c, mci_block *b) {
    char p[64], a[96];
    snprintf(p, sizeof p, "s%d.b%d", s, bi);
    if (!io->save) {
        b->is_attn = wl_find(io->l, "%s.qkv.weight", p) != NULL;
        b->n_head = c / MCI_HEAD_DIM;
        if (b->is_attn && (b->n_head < 1 || c % MCI_HEAD_DIM))
            return gl_err_set(io->err, GLIMPSE_ERR_FORMAT, "%s: attention width %d is not a multiple of %d", io->l->file, c, MCI_HEAD_DIM);
    }
    if (!b->is_attn) {
        if (io_conv(io, &b->mixer, "%s.mixer", p)) return io->err->code;
    } else {
        int has_ln = io->save ? b->ln_w != NULL : wl_find(io->l, "%s.ln.weight", p) != NULL;
        if (has_ln) {
            snprintf(a, sizeof a, "%s.ln.weight", p);
            if (io_vec(io, a, &b->ln_w, c)) return io->err->code;
            snprintf(a, sizeof a, "%s.ln.bias", p);
            if (io_vec(io, a, &b->ln_b, c)) return io->err->code;
        }
        snprintf(a, sizeof a, "%s.qkv.weight", p);
        if (io_mat(io, a, &b->wqkv, &b->wqkv_t, 3 * c, c, NULL)) return io->err->code;
        snprintf(a, sizeof a, "%s.qkv.bias", p);
        if (io_vec(io, a, &b->bqkv, 3 * c)) return io->err->code;
        snprintf(a, sizeof a, "%s.proj.weight", p);
        if (io_mat(io, a, &b->wproj, &b->wproj_t, c, c, NULL)) return io->err->code;
        snprintf(a, sizeof a, "%s.proj.bias", p);
        if (io_vec(io, a, &b->bproj, c)) return io->err->code;
    }
    mci_ffn *f = &b->ffn;
    f->c = c;
    if (io_conv(io, &f->dw, "%s.ffn.dw", p)) return io->err->code;
    snprintf(a, sizeof a, "%s.ffn.fc1.weight", p);
    if (io_mat(io, a, &f->w1, &f->w1t, io->save ? f->h : -1, c, &f->h)) return io->err->code;
    snprintf(a, sizeof a, "%s.ffn.fc1.bias", p);
    if (io_vec(io, a, &f->b1, f->h)) return io->err->code;
    snprintf(a, sizeof a, "%s.ffn.fc2.weight", p);
    if (io_mat(io, a, &f->w2, &f->w2t, c, f->h, NULL)) return io->err->code;
    snprintf(a, sizeof a, "%s.ffn.fc2.bias", p);
    return io_vec(io, a, &f->b2, c);
}

/* The shared walk (see the top of the file). */
static int walk(mio *io, mci_model *m) {
    for (int i = 0; i < 3; i++)
        if (io_conv(io, &m->stem[i], "stem.%d", i)) return io->err->code;
    char k[64];
    key(k, sizeof k, "stages");
    if (io->save) {
        if (io_gguf_writer_set_int(io->gw, k, IO_GGUF_U32, m->n_stages)) return fail_nomem(io);
    } else {
        int64_t n = io_gguf_get_int(io->g, k, 0);
        if (n < 2 || n > MCI_MAX_STAGES)
            return gl_err_set(io->err, GLIMPSE_ERR_FORMAT, "%s: '%s' is %lld, expected 2..%d", io->l->file, k, (long long)n, MCI_MAX_STAGES);
        m->n_stages = (int)n;
    }
    for (int s = 0; s < m->n_stages; s++) {
        mci_stage *st = &m->st[s];
        if (io_stage_kv(io, s, st)) return io->err->code;
        char nm[64];
        if (st->has_down) {
            if (io_conv(io, &st->lk, "s%d.down", s)) return io->err->code;
            snprintf(nm, sizeof nm, "s%d.down_se", s);
            if (st->has_se && io_se(io, &st->se, st->c, nm)) return io->err->code;
            if (io_conv(io, &st->pw, "s%d.pw", s)) return io->err->code;
        }
        if (st->has_cpe && io_conv(io, &st->cpe, "s%d.cpe", s)) return io->err->code;
        for (int b = 0; b < st->depth; b++)
            if (io_block(io, s, b, st->c, &st->blocks[b])) return io->err->code;
    }
    if (io_conv(io, &m->fconv, "final")) return io->err->code;
    m->feat = m->fconv.cout;
    if (io_se(io, &m->fse, m->feat, "final_se")) return io->err->code;
    int has_head = io->save ? m->head_w != NULL : wl_find(io->l, "head.weight") != NULL;
    if (has_head) {
        if (io_mat(io, "head.weight", &m->head_w, &m->head_t, io->save ? m->embed : -1, m->feat, &m->embed))
            return io->err->code;
        if (io_vec(io, "head.bias", &m->head_b, m->embed)) return io->err->code;
    }
    return 0;
}

/* A model loaded from a checkpoint holds its ConvMlp and attention matrices packed for the GEMM
 * microkernel only; the writer wants them as stored ([out, in] f32). Unpacked copies live in keep
 * (as long as the writer needs them); the forward pass keeps using the packed ones. */
static int unpack_for_save(mci_model *m, gl_blobs *keep, gl_err *err) {
    for (int s = 0; s < m->n_stages; s++)
        for (int d = 0; d < m->st[s].depth; d++) {
            mci_block *b = &m->st[s].blocks[d];
            mci_ffn *f = &b->ffn;
            const kn_packed_a *pa[2] = {&f->w1p, &f->w2p};
            const void **ra[2] = {&f->w1, &f->w2};
            for (int i = 0; i < 2; i++) {
                if (!pa[i]->p) continue;
                float *u = gl_blobs_alloc(keep, sizeof(float) * (size_t)(pa[i]->M * pa[i]->K));
                if (!u) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
                for (int64_t r = 0; r < pa[i]->M; r++)
                    for (int64_t k = 0; k < pa[i]->K; k++) u[r * pa[i]->K + k] = kn_packed_a_at(pa[i], r, k);
                *ra[i] = u;
            }
            f->w1t = f->w2t = GL_F32;
            if (!b->is_attn) continue;
            const kn_packed_b *pb[2] = {&b->wqkvp, &b->wprojp};
            const void **rb[2] = {&b->wqkv, &b->wproj};
            for (int i = 0; i < 2; i++) {
                if (!pb[i]->p) continue;
                float *u = gl_blobs_alloc(keep, sizeof(float) * (size_t)(pb[i]->N * pb[i]->K));
                if (!u) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
                for (int64_t n = 0; n < pb[i]->N; n++)
                    for (int64_t k = 0; k < pb[i]->K; k++) u[n * pb[i]->K + k] = kn_packed_b_at(pb[i], k, n);
                *rb[i] = u;
            }
            b->wqkv_t = b->wproj_t = GL_F32;
        }
    return 0;
}

int mci_save_gguf(const mci_model *m, io_gguf_writer *gw, const char *prefix, gl_dtype wtype, gl_blobs *keep,
                  gl_err *err) {
    mio io = {.save = 1, .gw = gw, .qtype = wtype, .ftype = wtype == GL_F16 ? GL_F16 : GL_F32, .keep = keep,
              .prefix = prefix, .err = err};
    mci_model copy = *m; /* walk() writes the loader's fields too; the model stays untouched */
    if (unpack_for_save(&copy, keep, err)) return err->code;
    return walk(&io, &copy);
}

int mci_load_gguf(const gl_weights *w, const char *prefix, const char *file, mci_model **out, gl_err *err) {
    const io_gguf *g = gl_weights_gguf(w);
    if (!g) return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: not a GGUF file", file);
    mci_model *m = gl_calloc(1, sizeof *m);
    if (!m) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "out of memory");
    wl l = {.w = w, .blobs = &m->blobs, .err = err, .file = file ? file : "model"};
    snprintf(l.prefix, sizeof l.prefix, "%s", prefix);
    mio io = {.save = 0, .l = &l, .g = g, .blobs = &m->blobs, .prefix = prefix, .err = err};
    int rc = walk(&io, m);
    /* the forward pass sizes its maps from this geometry (mci.c max_map): hold the file to it */
    const op_conv *s0 = &m->stem[0], *s1 = &m->stem[1], *s2 = &m->stem[2];
    int c0 = s0->cout;
    if (!rc && (s0->cin != 3 || s0->stride != 2 || s0->groups != 1 || s1->cin != c0 || s1->cout != c0 || s1->k != 3 ||
                s1->stride != 2 || s2->cin != c0 || s2->cout != c0 || s2->k != 1 || s2->stride != 1))
        rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: the stem is not 3 -> %d channels at stride 4", l.file, c0);
    int c = c0;
    for (int s = 0; !rc && s < m->n_stages; s++) {
        /* every conv must fit the map it reads: widths chain through the stages */
        const mci_stage *st = &m->st[s];
        int ok = st->has_down ? (st->lk.cin == c && st->lk.cout == st->c && st->lk.stride == 2 && st->pw.cin == st->c &&
                                 st->pw.cout == st->c && st->pw.stride == 1)
                              : st->c == c;
        if (st->has_cpe) ok = ok && st->cpe.cin == st->c && st->cpe.cout == st->c && st->cpe.stride == 1;
        for (int b = 0; ok && b < st->depth; b++) {
            const mci_block *bl = &st->blocks[b];
            ok = bl->ffn.dw.cin == st->c && bl->ffn.dw.cout == st->c && bl->ffn.dw.stride == 1;
            if (!bl->is_attn) ok = ok && bl->mixer.cin == st->c && bl->mixer.cout == st->c && bl->mixer.stride == 1;
        }
        if (!ok) rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: stage %d's convs do not chain (widths)", l.file, s);
        c = st->c;
    }
    if (!rc && (m->fconv.cin != c || m->fconv.stride != 1 || m->fse.c != m->feat))
        rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: final conv does not fit the last stage", l.file);
    if (rc) {
        mci_free(m);
        return rc;
    }
    *out = m;
    return 0;
}
