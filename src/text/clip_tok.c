/* clip_tok.c — CLIP BPE (see clip_tok.h). Reference: OpenCLIP src/open_clip/tokenizer.py,
 * SimpleTokenizer with clean='lower'; tools/tokref/clip_ref.py re-implements it for the tests. */
#include "text/clip_tok.h"

#include <string.h>

#include "text/bpe.h"
#include "text/tok_file.h"
#include "text/unicode.h"

#define CLIP_N_MERGES (49152 - 256 - 2) /* SimpleTokenizer reads merges[1 : 49152-256-2+1] */

/* Strings kept for export (glimpse convert writes them into GGUF metadata). */
typedef struct str_list {
    char *blob;
    size_t len, cap;
    uint32_t *off; /* n + 1 offsets into blob */
    size_t n, cap_n;
} str_list;

struct tok_clip {
    tok_pairmap merges;
    int32_t byte_id[256], byte_eow_id[256]; /* "x" and "x</w>" for each byte */
    int32_t sot, eot, n_vocab;
    str_list tokens;      /* by id ("" for unused ids) */
    str_list merge_strs;  /* "a b", in rank order */
};

static int list_push(str_list *l, const char *a, size_t na, const char *b, size_t nb) {
    size_t add = na + (b ? 1 + nb : 0);
    if (l->len + add > UINT32_MAX) return GLIMPSE_ERR_TOO_LARGE;
    if (l->len + add > l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4096;
        while (nc < l->len + add) nc *= 2;
        char *p = gl_realloc(l->blob, nc);
        if (!p) return GLIMPSE_ERR_NOMEM;
        l->blob = p;
        l->cap = nc;
    }
    if (l->n + 2 > l->cap_n) {
        size_t nc = l->cap_n ? l->cap_n * 2 : 1024;
        uint32_t *p = gl_realloc(l->off, nc * sizeof *p);
        if (!p) return GLIMPSE_ERR_NOMEM;
        l->off = p;
        l->cap_n = nc;
    }
    if (!l->n) l->off[0] = 0;
    if (na) memcpy(l->blob + l->len, a, na);
    l->len += na;
    if (b) {
        l->blob[l->len++] = ' ';
        if (nb) memcpy(l->blob + l->len, b, nb);
        l->len += nb;
    }
    l->off[++l->n] = (uint32_t)l->len;
    return 0;
}

static void list_free(str_list *l) {
    gl_free(l->blob);
    gl_free(l->off);
    memset(l, 0, sizeof *l);
}

static const char *list_get(const str_list *l, size_t i, size_t *len) {
    if (i >= l->n) return NULL;
    *len = l->off[i + 1] - l->off[i];
    return l->blob + l->off[i];
}

/* ---- loading ---- */

static int byte_str(uint8_t b, char *out) { /* byte-level character of b as UTF-8 */
    return tok_utf8_encode(tok_unicode_of_byte(b), (uint8_t *)out);
}

static int is_ascii_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Splits a merges line into exactly two whitespace-separated parts. */
static int split2(const char *p, size_t n, const char **a, size_t *na, const char **b, size_t *nb) {
    const char *e = p + n, *parts[3];
    size_t lens[3], k = 0;
    while (p < e) {
        while (p < e && is_ascii_space(*p)) p++;
        if (p == e) break;
        const char *s = p;
        while (p < e && !is_ascii_space(*p)) p++;
        if (k == 2) return -1;
        parts[k] = s;
        lens[k++] = (size_t)(p - s);
    }
    if (k != 2) return -1;
    *a = parts[0], *na = lens[0], *b = parts[1], *nb = lens[1];
    return 0;
}

typedef struct merge_line {
    const char *a, *b;
    uint16_t na, nb;
} merge_line;

/* Reads up to CLIP_N_MERGES merge lines after the first line of buf. */
static int read_merges(char *buf, size_t len, merge_line **out, size_t *n_out, const char *name, gl_err *err) {
    merge_line *m = gl_malloc(CLIP_N_MERGES * sizeof *m);
    if (!m) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", name);
    size_t n = 0, line = 0;
    char *p = buf, *end = buf + len;
    while (p < end && n < CLIP_N_MERGES) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        if (line++ > 0) {
            const char *a, *b;
            size_t na, nb;
            if (split2(p, (size_t)(le - p), &a, &na, &b, &nb) || na + nb > 1000) {
                gl_free(m);
                return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s:%zu: expected two tokens", name, line);
            }
            m[n++] = (merge_line){a, b, (uint16_t)na, (uint16_t)nb};
        }
        p = le + 1;
    }
    *out = m;
    *n_out = n;
    return GLIMPSE_OK;
}

/* Byte ids, then one (a, b) -> a+b entry per merge; merges whose parts are not tokens can
 * never apply (every symbol is a token) and are skipped. */
static int build(tok_clip *t, const tok_strmap *vocab, const merge_line *m, size_t n, const char *name,
                 gl_err *err) {
    char s[1100];
    for (int b = 0; b < 256; b++) {
        int l = byte_str((uint8_t)b, s);
        memcpy(s + l, "</w>", 4);
        t->byte_id[b] = tok_strmap_get(vocab, s, (size_t)l);
        t->byte_eow_id[b] = tok_strmap_get(vocab, s, (size_t)l + 4);
        if (t->byte_id[b] < 0 || t->byte_eow_id[b] < 0)
            return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: no token for byte 0x%02x", name, b);
    }
    if (tok_pairmap_init(&t->merges, n)) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", name);
    for (size_t i = 0; i < n; i++)
        if (list_push(&t->merge_strs, m[i].a, m[i].na, m[i].b, m[i].nb))
            return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", name);
    for (size_t i = 0; i < n; i++) {
        int32_t a = tok_strmap_get(vocab, m[i].a, m[i].na), b = tok_strmap_get(vocab, m[i].b, m[i].nb);
        memcpy(s, m[i].a, m[i].na);
        memcpy(s + m[i].na, m[i].b, m[i].nb);
        int32_t ab = tok_strmap_get(vocab, s, (size_t)m[i].na + m[i].nb);
        if (a < 0 || b < 0) continue;
        if (ab < 0) return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: merge %zu has no token", name, i + 1);
        if (tok_pairmap_put(&t->merges, a, b, (int32_t)i, ab))
            return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", name);
    }
    return GLIMPSE_OK;
}

int tok_clip_load_gz(const char *path, tok_clip **out, gl_err *err) {
    if (!path || !out) return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "tok_clip_load_gz: NULL argument");
    char *buf;
    size_t len, n = 0;
    int rc = tok_read_file(path, 1, &buf, &len, err);
    if (rc) return rc;
    merge_line *m = NULL;
    tok_strmap vocab;
    memset(&vocab, 0, sizeof vocab);
    tok_clip *t = gl_calloc(1, sizeof *t);
    if (!t) {
        rc = gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if ((rc = read_merges(buf, len, &m, &n, path, err))) goto done;
    if ((rc = tok_strmap_init(&vocab, 512 + n + 2))) {
        gl_err_set(err, rc, "%s: out of memory", path);
        goto done;
    }
    /* ids: 256 byte characters (printable bytes first), the same with </w>, merges, specials */
    char s[1100];
    int32_t id = 0;
    for (int pass = 0; pass < 2 && !rc; pass++) {
        for (int k = 0; k < 256 && !rc; k++) {
            int b = k < 188 ? (k < 94 ? 33 + k : k < 106 ? 161 + k - 94 : 174 + k - 106)
                            : tok_byte_of_unicode(256u + (uint32_t)(k - 188));
            int l = byte_str((uint8_t)b, s);
            if (pass) memcpy(s + l, "</w>", 4), l += 4;
            rc = tok_strmap_put(&vocab, s, (size_t)l, id++);
            if (!rc) rc = list_push(&t->tokens, s, (size_t)l, NULL, 0);
        }
    }
    for (size_t i = 0; i < n && !rc; i++) {
        memcpy(s, m[i].a, m[i].na);
        memcpy(s + m[i].na, m[i].b, m[i].nb);
        rc = tok_strmap_put(&vocab, s, (size_t)m[i].na + m[i].nb, id++);
        if (!rc) rc = list_push(&t->tokens, s, (size_t)m[i].na + m[i].nb, NULL, 0);
    }
    t->sot = id++;
    t->eot = id++;
    if (!rc) rc = list_push(&t->tokens, "<|startoftext|>", 15, NULL, 0);
    if (!rc) rc = list_push(&t->tokens, "<|endoftext|>", 13, NULL, 0);
    t->n_vocab = id;
    if (rc) {
        gl_err_set(err, rc, "%s: out of memory", path);
        goto done;
    }
    rc = build(t, &vocab, m, n, path, err);
done:
    tok_strmap_free(&vocab);
    gl_free(m);
    gl_free(buf);
    if (rc) tok_clip_free(t);
    else *out = t;
    return rc;
}

typedef struct hf_ctx {
    tok_strmap *vocab;
    int32_t max_id;
    str_list keys;  /* in file order, with their ids */
    int32_t *ids;
    size_t cap;
} hf_ctx;

static int hf_member(void *ud, const char *key, size_t klen, int64_t val) {
    hf_ctx *c = ud;
    if (val < 0 || val >= (1 << 24)) return GLIMPSE_ERR_FORMAT;
    if (val > c->max_id) c->max_id = (int32_t)val;
    if (c->keys.n >= c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 1024;
        int32_t *p = gl_realloc(c->ids, nc * sizeof *p);
        if (!p) return GLIMPSE_ERR_NOMEM;
        c->ids = p;
        c->cap = nc;
    }
    c->ids[c->keys.n] = (int32_t)val;
    int rc = list_push(&c->keys, key, klen, NULL, 0);
    return rc ? rc : tok_strmap_put(c->vocab, key, klen, (int32_t)val);
}

/* t->tokens by id from the file-order keys ("" for ids no key names; the last key wins). */
static int hf_tokens(tok_clip *t, const hf_ctx *c) {
    size_t n = (size_t)c->max_id + 1;
    size_t *at = gl_malloc(n * sizeof *at);
    if (!at) return GLIMPSE_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) at[i] = SIZE_MAX;
    for (size_t i = 0; i < c->keys.n; i++) at[c->ids[i]] = i;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t len = 0;
        const char *k = at[i] == SIZE_MAX ? "" : list_get(&c->keys, at[i], &len);
        rc = list_push(&t->tokens, k, len, NULL, 0);
    }
    gl_free(at);
    return rc;
}

int tok_clip_load_hf(const char *vocab_json, const char *merges_txt, tok_clip **out, gl_err *err) {
    if (!vocab_json || !merges_txt || !out)
        return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "tok_clip_load_hf: NULL argument");
    char *vbuf = NULL, *mbuf = NULL;
    size_t vlen, mlen, n = 0;
    merge_line *m = NULL;
    tok_strmap vocab;
    memset(&vocab, 0, sizeof vocab);
    tok_clip *t = gl_calloc(1, sizeof *t);
    int rc = t ? GLIMPSE_OK : gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", vocab_json);
    if (!rc) rc = tok_read_file(vocab_json, 0, &vbuf, &vlen, err);
    if (!rc) rc = tok_read_file(merges_txt, 0, &mbuf, &mlen, err);
    if (!rc && (rc = tok_strmap_init(&vocab, 50000))) gl_err_set(err, rc, "%s: out of memory", vocab_json);
    hf_ctx c = {&vocab, -1, {0}, NULL, 0};
    if (!rc && (rc = tok_json_flat_object(vbuf, vlen, hf_member, &c, vocab_json, err)) && !err->msg[0])
        gl_err_set(err, rc, "%s: bad token id", vocab_json);
    if (!rc) rc = read_merges(mbuf, mlen, &m, &n, merges_txt, err);
    if (!rc) {
        int32_t s1 = tok_strmap_get(&vocab, "<|startoftext|>", 15), s2 = tok_strmap_get(&vocab, "<start_of_text>", 15);
        int32_t e1 = tok_strmap_get(&vocab, "<|endoftext|>", 13), e2 = tok_strmap_get(&vocab, "<end_of_text>", 13);
        t->sot = s1 >= 0 ? s1 : s2;
        t->eot = e1 >= 0 ? e1 : e2;
        t->n_vocab = c.max_id + 1;
        if (t->sot < 0 || t->eot < 0)
            rc = gl_err_set(err, GLIMPSE_ERR_MISSING, "%s: no start/end-of-text token", vocab_json);
    }
    if (!rc && hf_tokens(t, &c)) rc = gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", vocab_json);
    if (!rc) rc = build(t, &vocab, m, n, merges_txt, err);
    list_free(&c.keys);
    gl_free(c.ids);
    tok_strmap_free(&vocab);
    gl_free(m);
    gl_free(vbuf);
    gl_free(mbuf);
    if (rc) tok_clip_free(t);
    else *out = t;
    return rc;
}

int tok_clip_load_lists(const char *const *tokens, const size_t *tlen, size_t n, const char *const *merges,
                        const size_t *mlen, size_t nm, const char *name, tok_clip **out, gl_err *err) {
    if (!tokens || !tlen || !merges || !mlen || !out || !name)
        return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "tok_clip_load_lists: NULL argument");
    if (n < 514 || n > (1 << 24) || nm > CLIP_N_MERGES)
        return gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: %zu tokens and %zu merges is not a CLIP vocabulary", name, n, nm);
    tok_strmap vocab;
    memset(&vocab, 0, sizeof vocab);
    merge_line *m = gl_malloc((nm ? nm : 1) * sizeof *m);
    tok_clip *t = gl_calloc(1, sizeof *t);
    int rc = (m && t) ? tok_strmap_init(&vocab, n) : GLIMPSE_ERR_NOMEM;
    if (rc) gl_err_set(err, rc, "%s: out of memory", name);
    for (size_t i = 0; i < n && !rc; i++) {
        if (tlen[i] > 1000) rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: token %zu is too long", name, i);
        else if ((rc = tok_strmap_put(&vocab, tokens[i], tlen[i], (int32_t)i)) ||
                 (rc = list_push(&t->tokens, tokens[i], tlen[i], NULL, 0)))
            gl_err_set(err, rc, "%s: out of memory", name);
    }
    for (size_t i = 0; i < nm && !rc; i++) {
        const char *a, *b;
        size_t na, nb;
        if (split2(merges[i], mlen[i], &a, &na, &b, &nb) || na + nb > 1000)
            rc = gl_err_set(err, GLIMPSE_ERR_FORMAT, "%s: merge %zu is not two tokens", name, i);
        else m[i] = (merge_line){a, b, (uint16_t)na, (uint16_t)nb};
    }
    if (!rc) {
        int32_t s1 = tok_strmap_get(&vocab, "<|startoftext|>", 15), s2 = tok_strmap_get(&vocab, "<start_of_text>", 15);
        int32_t e1 = tok_strmap_get(&vocab, "<|endoftext|>", 13), e2 = tok_strmap_get(&vocab, "<end_of_text>", 13);
        t->sot = s1 >= 0 ? s1 : s2;
        t->eot = e1 >= 0 ? e1 : e2;
        t->n_vocab = (int32_t)n;
        if (t->sot < 0 || t->eot < 0) rc = gl_err_set(err, GLIMPSE_ERR_MISSING, "%s: no start/end-of-text token", name);
    }
    if (!rc) rc = build(t, &vocab, m, nm, name, err);
    tok_strmap_free(&vocab);
    gl_free(m);
    if (rc) tok_clip_free(t);
    else *out = t;
    return rc;
}

size_t tok_clip_n_tokens(const tok_clip *t) { return t ? t->tokens.n : 0; }
const char *tok_clip_token_str(const tok_clip *t, size_t id, size_t *len) {
    return t ? list_get(&t->tokens, id, len) : NULL;
}
size_t tok_clip_n_merges(const tok_clip *t) { return t ? t->merge_strs.n : 0; }
const char *tok_clip_merge_str(const tok_clip *t, size_t i, size_t *len) {
    return t ? list_get(&t->merge_strs, i, len) : NULL;
}

void tok_clip_free(tok_clip *t) {
    if (!t) return;
    list_free(&t->tokens);
    list_free(&t->merge_strs);
    tok_pairmap_free(&t->merges);
    gl_free(t);
}

int32_t tok_clip_sot(const tok_clip *t) { return t ? t->sot : -1; }
int32_t tok_clip_eot(const tok_clip *t) { return t ? t->eot : -1; }
int32_t tok_clip_n_vocab(const tok_clip *t) { return t ? t->n_vocab : 0; }

/* ---- cleaning ---- */

static const uint32_t *find_pair(const uint32_t *t, size_t n, size_t width, uint32_t key) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (key < t[mid * width]) hi = mid;
        else if (key > t[mid * width]) lo = mid + 1;
        else return t + mid * width;
    }
    return NULL;
}

/* ftfy's LIGATURES table (fix_latin_ligatures). */
static const struct { uint16_t cp; uint16_t to[3]; } k_ligatures[] = {
    {0x132, {'I', 'J'}}, {0x133, {'i', 'j'}}, {0x149, {0x2BC, 'n'}}, {0x1C4, {'D', 0x17D}},
    {0x1C5, {'D', 0x17E}}, {0x1C6, {'d', 0x17E}}, {0x1C7, {'L', 'J'}}, {0x1C8, {'L', 'j'}},
    {0x1C9, {'l', 'j'}}, {0x1CA, {'N', 'J'}}, {0x1CB, {'N', 'j'}}, {0x1CC, {'n', 'j'}},
    {0x1F1, {'D', 'Z'}}, {0x1F2, {'D', 'z'}}, {0x1F3, {'d', 'z'}}, {0xFB00, {'f', 'f'}},
    {0xFB01, {'f', 'i'}}, {0xFB02, {'f', 'l'}}, {0xFB03, {'f', 'f', 'i'}}, {0xFB04, {'f', 'f', 'l'}},
    {0xFB05, {0x17F, 't'}}, {0xFB06, {'s', 't'}},
};

static bool ftfy_control(uint32_t c) { /* ftfy remove_control_chars */
    return c <= 8 || c == 0xB || (c >= 0xE && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
           c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

/* width fix and quote uncurling for one code point */
static int ftfy_tail(uint32_t c, tok_cps *out) {
    uint32_t v[2] = {c, 0};
    if (c == 0x3000 || (c >= 0xFF01 && c <= 0xFFEF)) {
        const uint32_t *r = find_pair(tok_uni_width, tok_uni_width_n, 3, c);
        if (r) v[0] = r[1], v[1] = r[2];
    }
    for (int k = 0; k < 2 && v[k]; k++) {
        uint32_t x = v[k];
        if (x == 0x2BC || (x >= 0x2018 && x <= 0x201B)) x = '\'';
        else if (x >= 0x201C && x <= 0x201F) x = '"';
        int rc = tok_cps_push(out, x);
        if (rc) return rc;
    }
    return GLIMPSE_OK;
}

/* ftfy's per-character fixes in its order: fix_c1_controls, fix_latin_ligatures,
 * fix_character_width, uncurl_quotes (fix_line_breaks only swaps whitespace for whitespace,
 * which the whitespace collapse makes moot). */
static int ftfy_chars(const tok_cps *in, tok_cps *out) {
    out->n = 0;
    int rc = tok_cps_reserve(out, in->n + 1);
    for (size_t i = 0; i < in->n && !rc; i++) {
        uint32_t c = in->v[i];
        if (c < 0x80) { /* fast path: nothing to change */
            if (out->n < out->cap) out->v[out->n++] = c; /* ligatures may have used the slack */
            else rc = tok_cps_push(out, c);
            continue;
        }
        if (c <= 0x9F) { /* fix_c1_controls: sloppy Windows-1252, as html's charref table */
            const uint32_t *r = find_pair(tok_uni_html_invalid_charref, tok_uni_html_invalid_charref_n, 2, c);
            if (r) c = r[1];
        }
        const uint16_t *lig = NULL;
        if (c >= 0x132 && c <= 0xFB06)
            for (size_t k = 0; k < GL_ARRAY_LEN(k_ligatures); k++)
                if (k_ligatures[k].cp == c) lig = k_ligatures[k].to;
        if (!lig) {
            rc = ftfy_tail(c, out);
            continue;
        }
        for (int k = 0; k < 3 && lig[k] && !rc; k++) rc = ftfy_tail(lig[k], out);
    }
    return rc;
}

/* remove_terminal_escapes (ANSI_RE = "\033\[((?:\d|;)*)([a-zA-Z])", \d being Unicode Nd)
 * then remove_control_chars; out never grows past in. */
static int ftfy_strip(const tok_cps *in, tok_cps *out) {
    out->n = 0;
    int rc = tok_cps_reserve(out, in->n + 1);
    if (rc) return rc;
    const uint32_t *s = in->v;
    for (size_t i = 0; i < in->n; i++) {
        if (s[i] == 0x1B && i + 1 < in->n && s[i + 1] == '[') {
            size_t j = i + 2;
            while (j < in->n && (s[j] == ';' || tok_uni_in(tok_uni_decimal, tok_uni_decimal_n, s[j]))) j++;
            if (j < in->n && ((s[j] | 0x20) - 'a') < 26u) {
                i = j;
                continue;
            }
        }
        if (!ftfy_control(s[i])) out->v[out->n++] = s[i];
    }
    return GLIMPSE_OK;
}

static int entity_cmp(const uint8_t *key, size_t n, const char *name) {
    size_t nl = strlen(name);
    int c = memcmp(key, name, GL_MIN(n, nl));
    if (c) return c;
    return n < nl ? -1 : n > nl ? 1 : 0;
}

static const uint32_t *entity_find(const uint8_t *key, size_t n) {
    size_t lo = 0, hi = tok_uni_entities_n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = entity_cmp(key, n, tok_uni_entities[mid].name);
        if (c < 0) hi = mid;
        else if (c > 0) lo = mid + 1;
        else return tok_uni_entities[mid].cp;
    }
    return NULL;
}

static int hexval(uint32_t c) {
    if (c - '0' < 10u) return (int)(c - '0');
    if ((c | 0x20) - 'a' < 6u) return (int)((c | 0x20) - 'a' + 10);
    return -1;
}

/* Python's html.unescape: the same regex and replacement rules, on code points. */
static int html_unescape(const tok_cps *in, tok_cps *out) {
    const uint32_t *s = in->v;
    size_t n = in->n;
    out->n = 0;
    int rc = tok_cps_reserve(out, n + 1);
    for (size_t i = 0; i < n && !rc;) {
        if (s[i] != '&') {
            rc = tok_cps_push(out, s[i++]);
            continue;
        }
        size_t j = i + 1;
        if (j < n && s[j] == '#') {
            int hex = j + 1 < n && (s[j + 1] == 'x' || s[j + 1] == 'X');
            size_t k = j + 1 + (size_t)hex, d = k;
            uint32_t num = 0;
            while (k < n && (hex ? hexval(s[k]) >= 0 : s[k] - '0' < 10u)) {
                uint32_t dv = hex ? (uint32_t)hexval(s[k]) : s[k] - '0';
                num = num > 0x110000 ? num : num * (hex ? 16 : 10) + dv; /* saturate */
                k++;
            }
            if (k == d) { /* "&#" without digits matches nothing */
                rc = tok_cps_push(out, s[i++]);
                continue;
            }
            if (k < n && s[k] == ';') k++;
            const uint32_t *r = find_pair(tok_uni_html_invalid_charref, tok_uni_html_invalid_charref_n, 2, num);
            if (r) rc = tok_cps_push(out, r[1]);
            else if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) rc = tok_cps_push(out, 0xFFFD);
            else if (!find_pair(tok_uni_html_invalid_cp, tok_uni_html_invalid_cp_n, 1, num)) rc = tok_cps_push(out, num);
            i = k;
            continue;
        }
        /* named: [^\t\n\f <&#;]{1,32};? */
        size_t k = j;
        while (k < n && k - j < 32 && s[k] != '\t' && s[k] != '\n' && s[k] != '\f' && s[k] != ' ' &&
               s[k] != '<' && s[k] != '&' && s[k] != '#' && s[k] != ';')
            k++;
        if (k == j) {
            rc = tok_cps_push(out, s[i++]);
            continue;
        }
        if (k < n && s[k] == ';') k++;
        uint8_t name[40];
        size_t len = k - j, ascii = 0;
        while (ascii < len && s[j + ascii] < 0x80) {
            name[ascii] = (uint8_t)s[j + ascii];
            ascii++;
        }
        const uint32_t *val = ascii == len ? entity_find(name, len) : NULL;
        size_t used = len;
        for (size_t x = len - 1; !val && x >= 2; x--) /* longest prefix that is an entity */
            if (x <= ascii && (val = entity_find(name, x))) used = x;
        if (val) {
            rc = tok_cps_push(out, val[0]);
            if (!rc && val[1]) rc = tok_cps_push(out, val[1]);
            for (size_t q = j + used; q < k && !rc; q++) rc = tok_cps_push(out, s[q]);
        } else {
            for (size_t q = i; q < k && !rc; q++) rc = tok_cps_push(out, s[q]);
        }
        i = k;
    }
    return rc;
}

/* strip + " ".join(text.split()) with Python's notion of whitespace */
static int collapse_ws(const tok_cps *in, tok_cps *out) {
    out->n = 0;
    int rc = tok_cps_reserve(out, in->n + 1);
    if (rc) return rc;
    int pending = 0;
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->v[i];
        if (tok_uni_is_pyspace(c)) {
            pending = out->n > 0;
            continue;
        }
        if (pending) out->v[out->n++] = ' ';
        pending = 0;
        out->v[out->n++] = c;
    }
    return GLIMPSE_OK;
}

/* ---- encoding ---- */

typedef struct clip_enc {
    const tok_clip *t;
    tok_cps a, b;
    int32_t *out, *syms;
    size_t n_out, cap_out, cap_syms;
    uint8_t *bytes;
    size_t cap_bytes;
    tok_bpe_scratch bpe;
} clip_enc;

static int grow_i32(int32_t **v, size_t *cap, size_t need) {
    if (need <= *cap) return GLIMPSE_OK;
    size_t c = *cap ? *cap : 128;
    while (c < need) c *= 2;
    int32_t *p = gl_realloc(*v, c * sizeof *p);
    if (!p) return GLIMPSE_ERR_NOMEM;
    *v = p;
    *cap = c;
    return GLIMPSE_OK;
}

/* Matches an ASCII pattern case-insensitively as python-regex IGNORECASE does on lowered
 * text: the only extra fold that can occur is U+017F LONG S for 's'. */
static bool match_lit(const uint32_t *s, size_t n, size_t i, const char *lit) {
    for (size_t k = 0; lit[k]; k++) {
        if (i + k >= n) return false;
        uint32_t c = s[i + k];
        if (c != (uint8_t)lit[k] && !(lit[k] == 's' && c == 0x17F)) return false;
    }
    return true;
}

static int emit_piece(clip_enc *e, const uint32_t *s, size_t n) {
    size_t nb = 0, m;
    if (n > SIZE_MAX / 4) return GLIMPSE_ERR_NOMEM;
    if (4 * n > e->cap_bytes) {
        uint8_t *b = gl_realloc(e->bytes, 4 * n);
        if (!b) return GLIMPSE_ERR_NOMEM;
        e->bytes = b;
        e->cap_bytes = 4 * n;
    }
    for (size_t i = 0; i < n; i++) nb += (size_t)tok_utf8_encode(s[i], e->bytes + nb);
    int rc = grow_i32(&e->syms, &e->cap_syms, nb);
    if (rc) return rc;
    for (size_t i = 0; i + 1 < nb; i++) e->syms[i] = e->t->byte_id[e->bytes[i]];
    e->syms[nb - 1] = e->t->byte_eow_id[e->bytes[nb - 1]];
    if ((rc = tok_bpe_merge(&e->t->merges, e->syms, nb, &m, &e->bpe))) return rc;
    if ((rc = grow_i32(&e->out, &e->cap_out, e->n_out + m))) return rc;
    memcpy(e->out + e->n_out, e->syms, m * sizeof(int32_t));
    e->n_out += m;
    return GLIMPSE_OK;
}

/* [^\s\p{L}\p{N}] as python-regex matches it under IGNORECASE: U+0345 (which case-folds to
 * iota, a letter) matches neither this nor [\p{L}], so it is dropped like whitespace. It is the
 * only code point with that quirk (checked over all of Unicode with python3-regex). */
static bool is_other(uint32_t c) {
    return c != 0x345 && !tok_uni_is_white(c) && !tok_uni_is_letter(c) && !tok_uni_is_number(c);
}

/* Clean, pre-tokenize and BPE; stops once `limit` tokens are out (the rest would be cut). */
static int clip_run(clip_enc *e, const char *text, size_t len, size_t limit, gl_err *err) {
    size_t bad;
    int rc = tok_utf8_to_cps((const uint8_t *)text, len, &e->a, &bad);
    if (rc == GLIMPSE_ERR_INVALID_ARG)
        return gl_err_set(err, rc, "tok_clip_encode: invalid UTF-8 at byte %zu", bad);
    if (!rc) rc = ftfy_chars(&e->a, &e->b);
    if (!rc) rc = ftfy_strip(&e->b, &e->a);
    tok_cps *cur = &e->a, *oth = &e->b;
    if (!rc && !tok_uni_nfc_quick(cur->v, cur->n)) {
        rc = tok_uni_nfc(cur, oth);
        tok_cps *x = cur; cur = oth; oth = x;
    }
    for (int pass = 0; pass < 2 && !rc; pass++) {
        rc = html_unescape(cur, oth);
        tok_cps *x = cur; cur = oth; oth = x;
    }
    if (!rc) rc = collapse_ws(cur, oth);
    if (!rc) rc = tok_uni_lower_str(oth, cur);
    if (rc) return gl_err_set(err, rc, "tok_clip_encode: out of memory");
    const uint32_t *s = cur->v;
    size_t n = cur->n;
    for (size_t i = 0; i < n && e->n_out < limit && !rc;) {
        uint32_t c = s[i];
        size_t j = i;
        int32_t special = -1;
        if (c == '<' && match_lit(s, n, i, "<start_of_text>")) special = e->t->sot, j = i + 15;
        else if (c == '<' && match_lit(s, n, i, "<end_of_text>")) special = e->t->eot, j = i + 13;
        if (special >= 0) {
            if (!(rc = grow_i32(&e->out, &e->cap_out, e->n_out + 1))) e->out[e->n_out++] = special;
            i = j;
            continue;
        }
        if (c == '\'' && i + 1 < n) {
            if (match_lit(s, n, i, "'s") || match_lit(s, n, i, "'t")) j = i + 2;
            else if (match_lit(s, n, i, "'re") || match_lit(s, n, i, "'ve")) j = i + 3;
            else if (match_lit(s, n, i, "'m")) j = i + 2;
            else if (match_lit(s, n, i, "'ll")) j = i + 3;
            else if (match_lit(s, n, i, "'d")) j = i + 2;
        }
        if (j == i && tok_uni_is_letter(c))
            while (j < n && tok_uni_is_letter(s[j])) j++;
        if (j == i && tok_uni_is_number(c)) j = i + 1;
        if (j == i && is_other(c))
            while (j < n && is_other(s[j])) j++;
        if (j == i) { /* whitespace: not part of any token */
            i++;
            continue;
        }
        rc = emit_piece(e, s + i, j - i);
        i = j;
    }
    if (rc) return gl_err_set(err, rc, "tok_clip_encode: out of memory");
    return GLIMPSE_OK;
}

static void clip_enc_free(clip_enc *e) {
    tok_cps_free(&e->a);
    tok_cps_free(&e->b);
    gl_free(e->out);
    gl_free(e->syms);
    gl_free(e->bytes);
    tok_bpe_scratch_free(&e->bpe);
}

int tok_clip_encode(const tok_clip *t, const char *text, size_t len, int32_t *ids, int ctx_len, gl_err *err) {
    if (!t || (!text && len) || !ids || ctx_len < 2)
        return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "tok_clip_encode: bad argument");
    clip_enc e;
    memset(&e, 0, sizeof e);
    e.t = t;
    size_t limit = (size_t)ctx_len - 2;
    int rc = clip_run(&e, text, len, limit, err);
    if (!rc) {
        size_t m = GL_MIN(e.n_out, limit);
        ids[0] = t->sot;
        if (m) memcpy(ids + 1, e.out, m * sizeof *ids);
        ids[m + 1] = t->eot;
        for (size_t i = m + 2; i < (size_t)ctx_len; i++) ids[i] = 0;
    }
    clip_enc_free(&e);
    return rc;
}

int tok_clip_encode_raw(const tok_clip *t, const char *text, size_t len, int32_t *ids, size_t cap,
                        size_t *n, gl_err *err) {
    if (!t || (!text && len) || !n || (!ids && cap))
        return gl_err_set(err, GLIMPSE_ERR_INVALID_ARG, "tok_clip_encode_raw: bad argument");
    clip_enc e;
    memset(&e, 0, sizeof e);
    e.t = t;
    int rc = clip_run(&e, text, len, SIZE_MAX, err);
    if (!rc) {
        *n = e.n_out;
        if (ids && e.n_out) memcpy(ids, e.out, GL_MIN(cap, e.n_out) * sizeof *ids);
        if (e.n_out > cap && (ids || cap))
            rc = gl_err_set(err, GLIMPSE_ERR_TOO_LARGE, "tok_clip_encode_raw: %zu tokens do not fit in %zu",
                            e.n_out, cap);
    }
    clip_enc_free(&e);
    return rc;
}
