/* qwen2_tok.c — Qwen2 byte-level BPE (see qwen2_tok.h).
 *
 * Reference behaviour: Hugging Face tokenizers with Qwen2's tokenizer.json — added tokens are
 * matched on the raw text first (longest match at the leftmost position), the pieces between
 * them are NFC-normalised, split by the pre-tokenizer regex
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 *   \s*[\r\n]+|\s+(?!\S)|\s+
 * and each pre-token is byte-level BPE encoded. The regex is hand-compiled below (scan_piece);
 * \s is Unicode White_Space as in Oniguruma/Rust, and the (?i:) contractions fold ASCII only. */
#include "text/qwen2_tok.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/bpe.h"
#include "text/tok_file.h"
#include "text/unicode.h"

#define QWEN2_MAX_ID (1 << 24)

typedef struct added_tok {
    const uint8_t *s; /* points into the vocab map's pool */
    size_t len;
    int32_t id;
} added_tok;

struct tok_qwen2 {
    tok_strmap vocab;  /* raw token bytes -> id, regular and added */
    tok_pairmap merges;
    int32_t byte_id[256];
    uint32_t *tok_off; /* per id: offset into vocab.pool, UINT32_MAX = no such id */
    uint32_t *tok_len;
    int32_t n_vocab;
    added_tok *added;
    size_t n_added;
    uint8_t added_first[256]; /* 1 if some added token starts with this byte */
};

/* ---- loading ---- */

typedef struct load_ctx {
    tok_qwen2 *t;
    gl_err *err;
    const char *name;
    uint8_t *raw;
    int is_added;
    int32_t max_id;
    int32_t *added_ids;
    size_t n_added;
    /* regular tokens are staged (raw bytes back to back) and inserted in one prefetching batch */
    uint32_t *off, *len;
    int32_t *val;
    size_t n, cap, raw_n;
} load_ctx;

/* Byte-level string (UTF-8 of mapped code points) -> raw bytes; returns the length or -1.
 * All mapped code points are below U+0144, so only 1- and 2-byte UTF-8 can occur. */
static long bytelevel_decode(const char *s, size_t n, uint8_t *raw) {
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0, k = 0;
    while (i < n) {
        uint32_t c = u[i];
        if (c - 33u < 94u) { /* printable ASCII maps to itself */
            raw[k++] = (uint8_t)c;
            i++;
            continue;
        }
        if (c < 0xC2 || c > 0xC5 || i + 1 >= n || (u[i + 1] & 0xC0) != 0x80) return -1;
        int b = tok_byte_of_unicode(((c & 0x1F) << 6) | (u[i + 1] & 0x3Fu));
        if (b < 0) return -1;
        raw[k++] = (uint8_t)b;
        i += 2;
    }
    return (long)k;
}

static int vocab_member(void *ud, const char *key, size_t klen, int64_t val) {
    load_ctx *c = ud;
    if (val < 0 || val >= QWEN2_MAX_ID)
        return gl_err_set(c->err, GLIMPSE_ERR_FORMAT, "%s: id %lld out of range", c->name, (long long)val);
    if (!c->is_added) {
        long n = bytelevel_decode(key, klen, c->raw + c->raw_n);
        if (n < 0)
            return gl_err_set(c->err, GLIMPSE_ERR_FORMAT, "%s: token %.*s is not byte-level", c->name,
                              (int)GL_MIN(klen, 64), key);
        if (c->n == c->cap) {
            size_t cap = c->cap ? 2 * c->cap : 4096;
            uint32_t *o = gl_realloc(c->off, cap * sizeof *o);
            if (o) c->off = o;
            uint32_t *l = gl_realloc(c->len, cap * sizeof *l);
            if (l) c->len = l;
            int32_t *v = gl_realloc(c->val, cap * sizeof *v);
            if (v) c->val = v;
            if (!o || !l || !v) return gl_err_set(c->err, GLIMPSE_ERR_NOMEM, "%s: out of memory", c->name);
            c->cap = cap;
        }
        c->off[c->n] = (uint32_t)c->raw_n;
        c->len[c->n] = (uint32_t)n;
        c->val[c->n++] = (int32_t)val;
        c->raw_n += (size_t)n;
    } else if (tok_strmap_put(&c->t->vocab, key, klen, (int32_t)val)) {
        return gl_err_set(c->err, GLIMPSE_ERR_NOMEM, "%s: out of memory", c->name);
    }
    if (val > c->max_id) c->max_id = (int32_t)val;
    if (c->is_added) {
        int32_t *a = gl_realloc(c->added_ids, (c->n_added + 1) * sizeof *a);
        if (!a) return gl_err_set(c->err, GLIMPSE_ERR_NOMEM, "%s: out of memory", c->name);
        c->added_ids = a;
        a[c->n_added++] = (int32_t)val;
    }
    return GLIMPSE_OK;
}

/* Two passes: split and byte-decode every line (a and b stored back to back, so a+b is a key
 * too), then look all three keys of every line up in one prefetching batch. */
static int parse_merges(tok_qwen2 *t, char *buf, size_t len, const char *name, gl_err *err) {
    size_t cap = 1024, n = 0, line_no = 0;
    uint8_t *raw = gl_malloc(len + 1);
    uint32_t *off = gl_malloc(3 * cap * sizeof *off), *klen = gl_malloc(3 * cap * sizeof *klen);
    size_t *lines = gl_malloc(cap * sizeof *lines), rn = 0;
    int32_t *ids = NULL;
    int rc = GLIMPSE_OK;
    if (!raw || !off || !klen || !lines) goto nomem;
    char *p = buf, *end = buf + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        line_no++;
        size_t ll = (size_t)(le - p);
        if (ll && p[ll - 1] == '\r') ll--;
        if (ll == 0 || (line_no == 1 && ll >= 8 && !memcmp(p, "#version", 8))) {
            p = le + 1;
            continue;
        }
        char *sp = memchr(p, ' ', ll);
        if (!sp || memchr(sp + 1, ' ', ll - (size_t)(sp + 1 - p)) || sp == p || sp + 1 == p + ll) {
            rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s:%zu: expected two tokens", name, line_no);
            goto done;
        }
        long na = bytelevel_decode(p, (size_t)(sp - p), raw + rn);
        long nb = na < 0 ? -1 : bytelevel_decode(sp + 1, (size_t)(p + ll - sp - 1), raw + rn + na);
        if (nb < 0) {
            rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s:%zu: not byte-level", name, line_no);
            goto done;
        }
        if (n == cap) {
            cap *= 2;
            uint32_t *o2 = gl_realloc(off, 3 * cap * sizeof *o2);
            if (o2) off = o2;
            uint32_t *l2 = gl_realloc(klen, 3 * cap * sizeof *l2);
            if (l2) klen = l2;
            size_t *n2 = gl_realloc(lines, cap * sizeof *n2);
            if (n2) lines = n2;
            if (!o2 || !l2 || !n2) goto nomem;
        }
        off[3 * n] = (uint32_t)rn, klen[3 * n] = (uint32_t)na;
        off[3 * n + 1] = (uint32_t)(rn + (size_t)na), klen[3 * n + 1] = (uint32_t)nb;
        off[3 * n + 2] = (uint32_t)rn, klen[3 * n + 2] = (uint32_t)(na + nb);
        lines[n++] = line_no;
        rn += (size_t)(na + nb);
        p = le + 1;
    }
    if (len > 0xFFFFFFFFu) {
        rc = gl_err_set(err, GLIMPSE_ERR_TOO_LARGE, "%s: too large", name);
        goto done;
    }
    if (!(ids = gl_malloc((3 * n + 1) * sizeof *ids))) goto nomem;
    tok_strmap_get_many(&t->vocab, (const char *)raw, off, klen, 3 * n, ids);
    for (size_t i = 0; i < n; i++) {
        if (ids[3 * i] < 0 || ids[3 * i + 1] < 0 || ids[3 * i + 2] < 0) {
            rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s:%zu: token not in the vocabulary", name, lines[i]);
            goto done;
        }
        if (i + 8 < n) tok_pairmap_prefetch(&t->merges, ids[3 * i + 24], ids[3 * i + 25]);
        if (tok_pairmap_put(&t->merges, ids[3 * i], ids[3 * i + 1], (int32_t)i, ids[3 * i + 2])) goto nomem;
    }
    goto done;
nomem:
    rc = gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", name);
done:
    gl_free(raw);
    gl_free(off);
    gl_free(klen);
    gl_free(lines);
    gl_free(ids);
    return rc;
}

/* Fallback when added_tokens.json is absent: tokenizer_config.json's added_tokens_decoder. */
static int added_from_config(load_ctx *c, const char *path) {
    char *buf;
    size_t len;
    int rc = tok_read_file(path, 0, &buf, &len, c->err);
    if (rc) return rc;
    cJSON *root = cJSON_ParseWithLength(buf, len);
    gl_free(buf);
    if (!root) return gl_err_set(c->err, GLIMPSE_ERR_FORMAT, "%s: not valid JSON", path);
    cJSON *dec = cJSON_GetObjectItemCaseSensitive(root, "added_tokens_decoder"), *it;
    rc = GLIMPSE_OK;
    cJSON_ArrayForEach(it, dec) {
        cJSON *content = cJSON_GetObjectItemCaseSensitive(it, "content");
        char *endp;
        long id = strtol(it->string ? it->string : "", &endp, 10);
        if (!cJSON_IsString(content) || *endp || endp == it->string) {
            rc = gl_err_set(c->err, GLIMPSE_ERR_FORMAT, "%s: bad added_tokens_decoder entry", path);
            break;
        }
        if ((rc = vocab_member(c, content->valuestring, strlen(content->valuestring), id))) break;
    }
    cJSON_Delete(root);
    return rc;
}

/* Per-id decoding tables and the added-token list, once all strings are in the map. */
static int finish(tok_qwen2 *t, const load_ctx *c, const char *name, gl_err *err) {
    t->n_vocab = c->max_id + 1;
    t->tok_off = gl_malloc((size_t)t->n_vocab * sizeof *t->tok_off);
    t->tok_len = gl_malloc((size_t)t->n_vocab * sizeof *t->tok_len);
    t->n_added = c->n_added;
    t->added = gl_calloc(c->n_added + 1, sizeof *t->added);
    if (!t->tok_off || !t->tok_len || !t->added) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", name);
    memset(t->tok_off, 0xFF, (size_t)t->n_vocab * sizeof *t->tok_off);
    memset(t->tok_len, 0, (size_t)t->n_vocab * sizeof *t->tok_len);
    for (size_t i = 0; i <= t->vocab.mask; i++) {
        const tok_strmap_slot *s = &t->vocab.slots[i];
        if (s->len == UINT32_MAX) continue;
        t->tok_off[s->val] = s->off;
        t->tok_len[s->val] = s->len;
    }
    for (size_t k = 0; k < c->n_added; k++) {
        added_tok *a = &t->added[k];
        a->id = c->added_ids[k];
        a->len = t->tok_len[a->id];
        if (!a->len || t->tok_off[a->id] == UINT32_MAX)
            return gl_err_set(err, GLIMPSE_ERR_FORMAT, "added token %d is empty", a->id);
        a->s = (const uint8_t *)t->vocab.pool + t->tok_off[a->id];
        t->added_first[a->s[0]] = 1;
    }
    return GLIMPSE_OK;
}

static int load_impl(tok_qwen2 *t, const char *vocab_json, const char *merges_txt,
                     const char *added_json, const char *config_json, gl_err *err) {
    char *buf = NULL;
    size_t len;
    int rc = tok_read_file(vocab_json, 0, &buf, &len, err);
    if (rc) return rc;
    load_ctx c;
    memset(&c, 0, sizeof c);
    c.t = t, c.err = err, c.name = vocab_json, c.max_id = -1;
    c.raw = len < 0xFFFFFFFFu ? gl_malloc(len + 1) : NULL;
    rc = c.raw ? tok_strmap_init(&t->vocab, 160000) : GLIMPSE_ERR_NOMEM;
    if (!rc) rc = tok_json_flat_object(buf, len, vocab_member, &c, vocab_json, err);
    else gl_err_set(err, rc, "%s: out of memory", vocab_json);
    if (!rc && (rc = tok_strmap_put_many(&t->vocab, (const char *)c.raw, c.off, c.len, c.val, c.n)))
        gl_err_set(err, rc, "%s: out of memory", vocab_json);
    gl_free(buf);
    gl_free(c.raw);
    gl_free(c.off);
    gl_free(c.len);
    gl_free(c.val);
    if (rc) return rc;

    for (int b = 0; b < 256; b++) {
        uint8_t ch = (uint8_t)b;
        if ((t->byte_id[b] = tok_strmap_get(&t->vocab, &ch, 1)) < 0)
            return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: no token for byte 0x%02x", vocab_json, b);
    }

    if ((rc = tok_read_file(merges_txt, 0, &buf, &len, err))) return rc;
    if ((rc = tok_pairmap_init(&t->merges, 160000)) == 0) rc = parse_merges(t, buf, len, merges_txt, err);
    else gl_err_set(err, rc, "%s: out of memory", merges_txt);
    gl_free(buf);
    if (rc) return rc;

    c.is_added = 1;
    if (added_json) {
        c.name = added_json;
        if (!(rc = tok_read_file(added_json, 0, &buf, &len, err))) {
            rc = tok_json_flat_object(buf, len, vocab_member, &c, added_json, err);
            gl_free(buf);
        }
    } else if (config_json) {
        rc = added_from_config(&c, config_json);
    }
    if (!rc) rc = finish(t, &c, vocab_json, err);
    gl_free(c.added_ids);
    return rc;
}

int tok_qwen2_load_files(const char *vocab_json, const char *merges_txt, const char *added_tokens_json,
                         tok_qwen2 **out, gl_err *err) {
    if (!vocab_json || !merges_txt || !out)
        return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "tok_qwen2_load_files: NULL argument");
    tok_qwen2 *t = gl_calloc(1, sizeof *t);
    if (!t) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "tok_qwen2_load: out of memory");
    int rc = load_impl(t, vocab_json, merges_txt, added_tokens_json, NULL, err);
    if (rc) {
        tok_qwen2_free(t);
        return rc;
    }
    *out = t;
    return GLIMPSE_OK;
}

int tok_qwen2_load(const char *dir, tok_qwen2 **out, gl_err *err) {
    if (!dir || !out) return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "tok_qwen2_load: NULL argument");
    size_t dl = strlen(dir);
    if (dl > 4000) return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "tok_qwen2_load: path too long");
    char v[4096], m[4096], a[4096], c[4096];
    snprintf(v, sizeof v, "%s/vocab.json", dir);
    snprintf(m, sizeof m, "%s/merges.txt", dir);
    snprintf(a, sizeof a, "%s/added_tokens.json", dir);
    snprintf(c, sizeof c, "%s/tokenizer_config.json", dir);
    FILE *f = fopen(a, "rb");
    if (f) fclose(f);
    FILE *g = f ? NULL : fopen(c, "rb");
    if (g) fclose(g);
    tok_qwen2 *t = gl_calloc(1, sizeof *t);
    if (!t) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "tok_qwen2_load: out of memory");
    int rc = load_impl(t, v, m, f ? a : NULL, g ? c : NULL, err);
    if (rc) {
        tok_qwen2_free(t);
        return rc;
    }
    *out = t;
    return GLIMPSE_OK;
}

/* ---- GGUF vocabularies (llama.cpp's tokenizer.ggml.*) ---- */

static char *bytelevel_encode(const uint8_t *raw, size_t n) {
    char *s = gl_malloc(2 * n + 1), *p = s;
    if (!s) return NULL;
    for (size_t i = 0; i < n; i++) p += tok_utf8_encode(tok_unicode_of_byte(raw[i]), (uint8_t *)p);
    *p = 0;
    return s;
}

static int is_added(const tok_qwen2 *t, int32_t id) {
    for (size_t k = 0; k < t->n_added; k++)
        if (t->added[k].id == id) return 1;
    return 0;
}

typedef struct rank_pair { int32_t rank, a, b; } rank_pair;
static int by_rank(const void *x, const void *y) {
    const rank_pair *a = x, *b = y;
    return (a->rank > b->rank) - (a->rank < b->rank);
}

void tok_qwen2_export_free(char **tokens, int32_t *types, size_t n, char **merges, size_t nm) {
    for (size_t i = 0; tokens && i < n; i++) gl_free(tokens[i]);
    for (size_t i = 0; merges && i < nm; i++) gl_free(merges[i]);
    gl_free(tokens);
    gl_free(types);
    gl_free(merges);
}

int tok_qwen2_export(const tok_qwen2 *t, size_t n_rows, char ***tokens_out, int32_t **types_out, size_t *n_out,
                     char ***merges_out, size_t *nm_out, gl_err *err) {
    size_t n = GL_MAX((size_t)t->n_vocab, n_rows), nm = t->merges.n, k = 0;
    char **tok = gl_calloc(n + 1, sizeof *tok), **mer = gl_calloc(nm + 1, sizeof *mer);
    int32_t *types = gl_calloc(n + 1, sizeof *types);
    rank_pair *rp = gl_malloc((nm + 1) * sizeof *rp);
    int rc = tok && mer && types && rp ? 0 : GLIMPSE_ERR_NOMEM;
    for (size_t i = 0; !rc && i < n; i++) {
        size_t len = 0;
        const uint8_t *b = tok_qwen2_token_bytes(t, (int32_t)i, &len);
        char pad[32];
        if (!b) {
            snprintf(pad, sizeof pad, "[PAD%zu]", i); /* as llama.cpp's converter fills gaps */
            tok[i] = gl_malloc(strlen(pad) + 1);
            if (tok[i]) memcpy(tok[i], pad, strlen(pad) + 1);
            types[i] = 5; /* UNUSED */
        } else if (is_added(t, (int32_t)i)) {
            tok[i] = gl_malloc(len + 1);
            if (tok[i]) memcpy(tok[i], b, len), tok[i][len] = 0;
            types[i] = 3; /* CONTROL: special tokens are split out whole, never merged */
        } else {
            tok[i] = bytelevel_encode(b, len);
            types[i] = 1; /* NORMAL */
        }
        if (!tok[i]) rc = GLIMPSE_ERR_NOMEM;
    }
    for (size_t i = 0; !rc && i <= t->merges.mask; i++) {
        const tok_pair_slot *sl = &t->merges.slots[i];
        if (!sl->key) continue;
        uint64_t key = sl->key - 1;
        rp[k++] = (rank_pair){sl->rank, (int32_t)(key >> 32), (int32_t)(uint32_t)key};
    }
    if (!rc) qsort(rp, k, sizeof *rp, by_rank);
    for (size_t i = 0; !rc && i < k; i++) {
        size_t la, lb;
        const uint8_t *a = tok_qwen2_token_bytes(t, rp[i].a, &la), *b = tok_qwen2_token_bytes(t, rp[i].b, &lb);
        char *ea = a ? bytelevel_encode(a, la) : NULL, *eb = b ? bytelevel_encode(b, lb) : NULL;
        if (ea && eb && (mer[i] = gl_malloc(strlen(ea) + strlen(eb) + 2)))
            snprintf(mer[i], strlen(ea) + strlen(eb) + 2, "%s %s", ea, eb);
        else rc = GLIMPSE_ERR_NOMEM;
        gl_free(ea);
        gl_free(eb);
    }
    gl_free(rp);
    if (rc) {
        tok_qwen2_export_free(tok, types, n, mer, nm);
        return gl_err_set(err, rc, "tokenizer export: out of memory");
    }
    *tokens_out = tok, *types_out = types, *n_out = n, *merges_out = mer, *nm_out = k;
    return 0;
}

typedef struct rank_triple { int32_t rank, a, b, m; } rank_triple;
static int by_rank3(const void *x, const void *y) {
    int32_t a = ((const rank_triple *)x)->rank, b = ((const rank_triple *)y)->rank;
    return (a > b) - (a < b);
}

int tok_qwen2_merge_ids(const tok_qwen2 *t, int32_t **ids_out, size_t *nm_out, gl_err *err) {
    size_t nm = t->merges.n, k = 0;
    rank_triple *rt = gl_malloc((nm + 1) * sizeof *rt);
    int32_t *ids = gl_malloc((3 * nm + 1) * sizeof *ids);
    if (!rt || !ids) {
        gl_free(rt);
        gl_free(ids);
        return gl_err_set(err, GLIMPSE_ERR_NOMEM, "tokenizer export: out of memory");
    }
    for (size_t i = 0; i <= t->merges.mask && k < nm; i++) {
        const tok_pair_slot *sl = &t->merges.slots[i];
        if (!sl->key) continue;
        uint64_t key = sl->key - 1;
        rt[k++] = (rank_triple){sl->rank, (int32_t)(key >> 32), (int32_t)(uint32_t)key, sl->merged};
    }
    qsort(rt, k, sizeof *rt, by_rank3);
    for (size_t i = 0; i < k; i++) ids[3 * i] = rt[i].a, ids[3 * i + 1] = rt[i].b, ids[3 * i + 2] = rt[i].m;
    gl_free(rt);
    *ids_out = ids, *nm_out = k;
    return 0;
}

/* Merges from checked id triples (see tok_qwen2_merge_ids): tokens[r] must be tokens[a] then
 * tokens[b], and merge i the text "tokens[a] tokens[b]" (byte-level strings concatenate as
 * the bytes they stand for). */
static int merges_from_ids(tok_qwen2 *t, const char *const *tokens, const size_t *tlen, const int32_t *types, size_t n,
                           const char *const *merges, const size_t *mlen, size_t nm, const int32_t *ids,
                           const char *name, gl_err *err) {
    for (size_t i = 0; i < nm; i++) {
        int32_t a = ids[3 * i], b = ids[3 * i + 1], r = ids[3 * i + 2];
        int ok = a >= 0 && b >= 0 && r >= 0 && (size_t)a < n && (size_t)b < n && (size_t)r < n;
        ok = ok && (types[a] == 1 || types[a] == 2 || types[a] == 6) && (types[b] == 1 || types[b] == 2 || types[b] == 6);
        ok = ok && tlen[r] == tlen[a] + tlen[b] && mlen[i] == tlen[a] + 1 + tlen[b];
        ok = ok && !memcmp(tokens[r], tokens[a], tlen[a]) && !memcmp(tokens[r] + tlen[a], tokens[b], tlen[b]);
        ok = ok && !memcmp(merges[i], tokens[a], tlen[a]) && merges[i][tlen[a]] == ' ' &&
             !memcmp(merges[i] + tlen[a] + 1, tokens[b], tlen[b]);
        if (!ok) return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: merge %zu does not match its id triple", name, i);
        if (i + 8 < nm) tok_pairmap_prefetch(&t->merges, ids[3 * i + 24], ids[3 * i + 25]);
        if (tok_pairmap_put(&t->merges, a, b, (int32_t)i, r)) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", name);
    }
    return 0;
}

int tok_qwen2_load_lists(const char *const *tokens, const size_t *tlen, const int32_t *types, size_t n,
                         const char *const *merges, const size_t *mlen, size_t nm, const int32_t *merge_ids,
                         const char *name, tok_qwen2 **out, gl_err *err) {
    if (!tokens || !tlen || !types || !merges || !mlen || !out || !name)
        return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "tok_qwen2_load_lists: NULL argument");
    if (n < 256 || n >= QWEN2_MAX_ID) return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: %zu tokens", name, n);
    tok_qwen2 *t = gl_calloc(1, sizeof *t);
    load_ctx c;
    memset(&c, 0, sizeof c);
    c.t = t, c.err = err, c.name = name, c.max_id = -1;
    size_t total = 0, mtotal = 0;
    for (size_t i = 0; i < n; i++) total += tlen[i];
    for (size_t i = 0; i < nm; i++) mtotal += mlen[i] + 1;
    char *mbuf = NULL;
    int rc = t && total < 0xFFFFFFFFu && mtotal < 0xFFFFFFFFu && (c.raw = gl_malloc(total + 1)) && (mbuf = gl_malloc(mtotal + 1))
                 ? tok_strmap_init(&t->vocab, n + 16)
                 : GLIMPSE_ERR_NOMEM;
    if (rc) gl_err_set(err, rc, "%s: out of memory", name);
    for (size_t i = 0; !rc && i < n; i++)
        if (types[i] == 1 || types[i] == 2 || types[i] == 6) rc = vocab_member(&c, tokens[i], tlen[i], (int64_t)i);
    if (!rc && (rc = tok_strmap_put_many(&t->vocab, (const char *)c.raw, c.off, c.len, c.val, c.n)))
        gl_err_set(err, rc, "%s: out of memory", name);
    for (int b = 0; !rc && b < 256; b++) {
        uint8_t ch = (uint8_t)b;
        if ((t->byte_id[b] = tok_strmap_get(&t->vocab, &ch, 1)) < 0)
            rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: no token for byte 0x%02x", name, b);
    }
    size_t ml = 0;
    for (size_t i = 0; !rc && !merge_ids && i < nm; i++) {
        if (memchr(merges[i], '\n', mlen[i])) rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: merge %zu has a newline", name, i);
        memcpy(mbuf + ml, merges[i], mlen[i]);
        ml += mlen[i];
        mbuf[ml++] = '\n';
    }
    if (!rc && (rc = tok_pairmap_init(&t->merges, nm + 16))) gl_err_set(err, rc, "%s: out of memory", name);
    if (!rc && merge_ids) rc = merges_from_ids(t, tokens, tlen, types, n, merges, mlen, nm, merge_ids, name, err);
    else if (!rc) rc = parse_merges(t, mbuf, ml, name, err);
    c.is_added = 1;
    for (size_t i = 0; !rc && i < n; i++)
        if (types[i] == 3 || types[i] == 4) {
            if (!tlen[i]) rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: empty special token %zu", name, i);
            else rc = vocab_member(&c, tokens[i], tlen[i], (int64_t)i);
        }
    if (!rc) rc = finish(t, &c, name, err);
    gl_free(c.raw);
    gl_free(c.off);
    gl_free(c.len);
    gl_free(c.val);
    gl_free(c.added_ids);
    gl_free(mbuf);
    if (rc) {
        tok_qwen2_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

void tok_qwen2_free(tok_qwen2 *t) {
    if (!t) return;
    tok_strmap_free(&t->vocab);
    tok_pairmap_free(&t->merges);
    gl_free(t->tok_off);
    gl_free(t->tok_len);
    gl_free(t->added);
    gl_free(t);
}

const uint8_t *tok_qwen2_token_bytes(const tok_qwen2 *t, int32_t id, size_t *len) {
    if (!t || id < 0 || id >= t->n_vocab || t->tok_off[id] == UINT32_MAX) return NULL;
    if (len) *len = t->tok_len[id];
    return (const uint8_t *)t->vocab.pool + t->tok_off[id];
}

int32_t tok_qwen2_token_id(const tok_qwen2 *t, const char *bytes, size_t len) {
    return t ? tok_strmap_get(&t->vocab, bytes, len) : -1;
}

int32_t tok_qwen2_n_vocab(const tok_qwen2 *t) {
    return t ? t->n_vocab : 0;
}

/* ---- encoding ---- */

typedef struct ids_buf {
    int32_t *v;
    size_t n, cap;
} ids_buf;

static int ids_reserve(ids_buf *b, size_t extra) {
    size_t need;
    if (!gl_add_ok(b->n, extra, &need)) return GLIMPSE_ERR_NOMEM;
    if (need <= b->cap) return GLIMPSE_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    int32_t *v = gl_realloc(b->v, cap * sizeof *v);
    if (!v) return GLIMPSE_ERR_NOMEM;
    b->v = v;
    b->cap = cap;
    return GLIMPSE_OK;
}

typedef struct enc_state {
    const tok_qwen2 *t;
    tok_cps cps, norm;
    ids_buf out, syms;
    uint8_t *bytes;
    size_t bytes_cap;
    tok_bpe_scratch bpe;
} enc_state;

static inline bool is_nl(uint32_t c) {
    return c == '\r' || c == '\n';
}
static inline bool is_punct(uint32_t c) { /* [^\s\p{L}\p{N}] */
    return !tok_uni_is_white(c) && !tok_uni_is_letter(c) && !tok_uni_is_number(c);
}
static inline uint32_t ascii_lower(uint32_t c) {
    return (c - 'A' < 26u) ? c + 32 : c;
}

/* Length of the pre-token starting at s[i] (i < n); always >= 1. */
static size_t scan_piece(const uint32_t *s, size_t n, size_t i) {
    uint32_t c = s[i];
    /* (?i:'s|'t|'re|'ve|'m|'ll|'d) */
    if (c == '\'' && i + 1 < n) {
        uint32_t a = ascii_lower(s[i + 1]);
        if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
        if (i + 2 < n) {
            uint32_t b = ascii_lower(s[i + 2]);
            if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
        }
    }
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    size_t j = i;
    if (!tok_uni_is_letter(c) && !is_nl(c) && !tok_uni_is_number(c) && i + 1 < n && tok_uni_is_letter(s[i + 1]))
        j = i + 1;
    if (tok_uni_is_letter(s[j])) {
        while (j < n && tok_uni_is_letter(s[j])) j++;
        return j - i;
    }
    /* \p{N} */
    if (tok_uni_is_number(c)) return 1;
    /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
    j = (c == ' ') ? i + 1 : i;
    if (j < n && is_punct(s[j])) {
        while (j < n && is_punct(s[j])) j++;
        while (j < n && is_nl(s[j])) j++;
        return j - i;
    }
    if (!tok_uni_is_white(c)) return 1; /* unreachable: every non-space is handled above */
    size_t k = i, last_nl = SIZE_MAX;
    while (k < n && tok_uni_is_white(s[k])) {
        if (is_nl(s[k])) last_nl = k;
        k++;
    }
    if (last_nl != SIZE_MAX) return last_nl + 1 - i; /* \s*[\r\n]+ */
    if (k == n) return k - i;                         /* \s+(?!\S) at the end */
    if (k - i >= 2) return k - 1 - i;                 /* \s+(?!\S): leave one space */
    return 1;                                         /* \s+ */
}

static int encode_piece(enc_state *st, const uint32_t *s, size_t n) {
    size_t need, nb = 0;
    if (!gl_mul_ok(n, 4, &need)) return GLIMPSE_ERR_NOMEM;
    if (need > st->bytes_cap) {
        uint8_t *b = gl_realloc(st->bytes, need);
        if (!b) return GLIMPSE_ERR_NOMEM;
        st->bytes = b;
        st->bytes_cap = need;
    }
    for (size_t i = 0; i < n; i++) nb += (size_t)tok_utf8_encode(s[i], st->bytes + nb);
    st->syms.n = 0;
    int rc = ids_reserve(&st->syms, nb);
    if (rc) return rc;
    for (size_t i = 0; i < nb; i++) st->syms.v[i] = st->t->byte_id[st->bytes[i]];
    size_t m;
    if ((rc = tok_bpe_merge(&st->t->merges, st->syms.v, nb, &m, &st->bpe))) return rc;
    if ((rc = ids_reserve(&st->out, m))) return rc;
    memcpy(st->out.v + st->out.n, st->syms.v, m * sizeof(int32_t));
    st->out.n += m;
    return GLIMPSE_OK;
}

static int encode_segment(enc_state *st, const uint8_t *text, size_t len) {
    if (!len) return GLIMPSE_OK;
    int rc = tok_utf8_to_cps(text, len, &st->cps, NULL);
    if (rc) return rc;
    const tok_cps *src = &st->cps;
    if (!tok_uni_nfc_quick(st->cps.v, st->cps.n)) {
        if ((rc = tok_uni_nfc(&st->cps, &st->norm))) return rc;
        src = &st->norm;
    }
    for (size_t i = 0; i < src->n;) {
        size_t l = scan_piece(src->v, src->n, i);
        if ((rc = encode_piece(st, src->v + i, l))) return rc;
        i += l;
    }
    return GLIMPSE_OK;
}

int tok_qwen2_encode(const tok_qwen2 *t, const char *text, size_t len, int32_t *ids, size_t cap,
                     size_t *n, gl_err *err) {
    if (!t || (!text && len) || !n || (!ids && cap))
        return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "tok_qwen2_encode: NULL argument");
    const uint8_t *s = (const uint8_t *)text;
    for (size_t i = 0; i < len;) { /* validate first, so no partial output on bad input */
        uint32_t cp;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int l = tok_utf8_decode(s + i, len - i, &cp);
        if (!l) return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "tok_qwen2_encode: invalid UTF-8 at byte %zu", i);
        i += (size_t)l;
    }
    enc_state st;
    memset(&st, 0, sizeof st);
    st.t = t;
    int rc = GLIMPSE_OK;
    size_t seg = 0;
    for (size_t i = 0; i < len && !rc;) {
        const added_tok *best = NULL;
        if (t->added_first[s[i]]) {
            for (size_t k = 0; k < t->n_added; k++) {
                const added_tok *a = &t->added[k];
                if (a->len <= len - i && !memcmp(s + i, a->s, a->len) && (!best || a->len > best->len)) best = a;
            }
        }
        if (!best) {
            i++;
            continue;
        }
        rc = encode_segment(&st, s + seg, i - seg);
        if (!rc && !(rc = ids_reserve(&st.out, 1))) st.out.v[st.out.n++] = best->id;
        i += best->len;
        seg = i;
    }
    if (!rc) rc = encode_segment(&st, s + seg, len - seg);
    if (!rc) {
        *n = st.out.n;
        if (ids && st.out.n) memcpy(ids, st.out.v, GL_MIN(cap, st.out.n) * sizeof *ids);
        if (st.out.n > cap && (ids || cap))
            rc = gl_err_set(err, GLIMPSE_ERR_TOO_LARGE, "tok_qwen2_encode: %zu tokens do not fit in %zu",
                            st.out.n, cap);
    } else {
        gl_err_set(err, rc, "tok_qwen2_encode: out of memory");
    }
    tok_cps_free(&st.cps);
    tok_cps_free(&st.norm);
    gl_free(st.out.v);
    gl_free(st.syms.v);
    gl_free(st.bytes);
    tok_bpe_scratch_free(&st.bpe);
    return rc;
}
