/* cmd_search.c — `glimpse search` and `glimpse dupes` over the album store.
 *
 * A query is a weighted sum of unit embeddings in rclip's style:
 *     glimpse search "2:golden retriever" + ./pool.jpg - "people"
 * Terms are separated by " + " / " - " (or separate + / - arguments); "W:" prefixes a weight;
 * a term naming an existing file (or given with --image) is embedded as an image, any other as
 * text. The sum is re-normalised, so a single term's score is exactly its cosine with each photo.
 * Scores come from one brute-force pass of kn_scan_f16 over the stored half vectors. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <jpeglib.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "album.h"
#include "cli.h"
#include "core/fp16.h"
#include "core/pool.h"
#include "io/image.h"
#include "kernels/scan.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

typedef struct term {
    char *s;
    float w;
    int is_image;
} term;

static int is_file(const char *p) {
    struct stat st;
    return !stat(p, &st) && S_ISREG(st.st_mode);
}

/* Splits q into terms at " + " / " - "; a leading "+ " or "- " sets the first sign. */
static int parse_query(const char *q, term *out, int cap) {
    int n = 0;
    float sign = 1;
    const char *p = q;
    while (*p && n < cap) {
        while (*p == ' ') p++;
        if ((*p == '+' || *p == '-') && (p[1] == ' ' || p[1] == 0)) {
            sign = *p == '-' ? -1.0f : 1.0f;
            p++;
            continue;
        }
        if (!*p) break;
        const char *e = p, *end = NULL;
        for (; *e; e++)
            if (e[0] == ' ' && (e[1] == '+' || e[1] == '-') && (e[2] == ' ' || e[2] == 0)) { end = e; break; }
        if (!end) end = p + strlen(p);
        size_t len = (size_t)(end - p);
        while (len && p[len - 1] == ' ') len--;
        char *t = strndup(p, len);
        float w = 1;
        char *colon = strchr(t, ':'), *num_end = NULL;
        if (colon && colon > t) {
            float v = strtof(t, &num_end);
            if (num_end == colon && isfinite(v)) {
                w = v;
                memmove(t, colon + 1, strlen(colon + 1) + 1);
            }
        }
        out[n++] = (term){t, sign * w, is_file(t)};
        sign = 1;
        p = end;
    }
    return n;
}

/* The model recorded in the store (or -m), checked against the store's vectors. */
static int open_store_model(const char *cmd, sqlite3 *db, const char *model, const char *vocab, int threads,
                            glimpse_model **m, glimpse_ctx **c) {
    char stored_id[1024], path[PATH_MAX], voc[PATH_MAX], err[1024];
    album_meta_get(db, "model_id", stored_id, sizeof stored_id);
    album_meta_get(db, "model_path", path, sizeof path);
    album_meta_get(db, "vocab_path", voc, sizeof voc);
    if (!model) model = path, vocab = vocab ? vocab : (voc[0] ? voc : NULL);
    if (!model[0]) return cli_fail(cmd, "the album has no model yet: run `glimpse index DIR -m MODEL` first");
    glimpse_model_params mp = glimpse_model_default_params();
    mp.vocab_path = vocab;
    if (glimpse_model_open(model, &mp, m, err, sizeof err)) return cli_fail(cmd, "%s", err);
    char abs[PATH_MAX], id[PATH_MAX + 256];
    if (!realpath(model, abs)) snprintf(abs, sizeof abs, "%s", model);
    snprintf(id, sizeof id, "%s|%s", glimpse_model_name(*m), abs);
    if (stored_id[0] && strcmp(id, stored_id)) {
        glimpse_model_close(*m);
        return cli_fail(cmd, "the album was indexed with %s, not %s: re-run `glimpse index` with -m", stored_id, id);
    }
    glimpse_ctx_params cp = glimpse_ctx_default_params();
    cp.n_threads = threads;
    if (glimpse_ctx_new(*m, &cp, c)) {
        cli_fail(cmd, "%s", glimpse_model_errmsg(*m));
        glimpse_model_close(*m);
        return 1;
    }
    return 0;
}

/* ---- HTML gallery: thumbnails as small inline JPEGs --------------------------------------- */

static char *b64(const unsigned char *p, size_t n) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc(4 * ((n + 2) / 3) + 1), *q = o;
    if (!o) return NULL;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | p[i + 1] << 8 | p[i + 2];
        *q++ = t[v >> 18], *q++ = t[(v >> 12) & 63], *q++ = t[(v >> 6) & 63], *q++ = t[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? p[i + 1] << 8 : 0);
        *q++ = t[v >> 18], *q++ = t[(v >> 12) & 63];
        *q++ = i + 1 < n ? t[(v >> 6) & 63] : '=';
        *q++ = '=';
    }
    *q = 0;
    return o;
}

/* A <= box x box JPEG thumbnail of path, base64; NULL when the photo cannot be read. */
static char *thumb_b64(const char *path, int box) {
    glimpse_image img = {0}, sm = {0};
    gl_err e = {0};
    if (io_image_load_scaled(path, 0, box, &img, &e)) return NULL;
    int w = img.width, h = img.height;
    if (w > box || h > box) {
        if (w >= h) h = (int)((int64_t)h * box / w), w = box;
        else w = (int)((int64_t)w * box / h), h = box;
        if (w < 1) w = 1;
        if (h < 1) h = 1;
    }
    if (io_image_resize(&img, w, h, IO_FILTER_BILINEAR, &sm, &e)) return io_image_free(&img), NULL;
    io_image_free(&img);
    struct jpeg_compress_struct cinfo;
    struct jpeg_error_mgr jerr;
    cinfo.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&cinfo);
    unsigned char *mem = NULL;
    unsigned long msize = 0;
    jpeg_mem_dest(&cinfo, &mem, &msize);
    cinfo.image_width = (JDIMENSION)w;
    cinfo.image_height = (JDIMENSION)h;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 75, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = sm.rgb + (size_t)cinfo.next_scanline * 3 * w;
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    io_image_free(&sm);
    char *s = b64(mem, msize);
    free(mem);
    return s;
}

static void html_text(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else if (*s == '"') fputs("&quot;", f);
        else fputc(*s, f);
    }
}

/* file:// URL of an absolute path, percent-encoding everything but unreserved bytes and '/' */
static void html_url(FILE *f, const char *s) {
    fputs("file://", f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || strchr("/-_.~", *p)) fputc(*p, f);
        else fprintf(f, "%%%02X", *p);
    }
}

static int write_html(const char *out, const char *title, const album_vecs *a, const int64_t *idx,
                      const float *score, int64_t n) {
    FILE *f = fopen(out, "w");
    if (!f) return -1;
    fputs("<!doctype html><html><head><meta charset=\"utf-8\"><title>glimpse: ", f);
    html_text(f, title);
    fputs("</title><style>body{font:14px sans-serif;background:#111;color:#ddd;margin:16px}"
          ".g{display:flex;flex-wrap:wrap;gap:12px}.c{width:220px;background:#222;padding:8px;border-radius:6px}"
          ".c img{display:block;margin:auto;max-width:200px;max-height:200px}"
          ".p{font-size:11px;word-break:break-all;color:#aaa}.s{font-weight:bold}a{color:inherit}</style></head>"
          "<body><h2>",
          f);
    html_text(f, title);
    fprintf(f, "</h2><p>%lld results</p><div class=\"g\">\n", (long long)n);
    for (int64_t r = 0; r < n; r++) {
        const char *p = a->paths[idx[r]];
        char *t = thumb_b64(p, 200);
        fputs("<div class=\"c\"><a href=\"", f);
        html_url(f, p);
        fputs("\">", f);
        if (t) fprintf(f, "<img src=\"data:image/jpeg;base64,%s\" alt=\"\">", t);
        else fputs("<div>(unreadable)</div>", f);
        fprintf(f, "</a><div class=\"s\">#%lld &nbsp; %.4f</div><div class=\"p\">", (long long)r + 1, score[r]);
        html_text(f, p);
        fputs("</div></div>\n", f);
        free(t);
    }
    fputs("</div></body></html>\n", f);
    return fclose(f) ? -1 : 0;
}

/* ---- search ------------------------------------------------------------------------------- */

/* Reads the vectors on its own connection while the main thread opens the model and embeds
 * the query (both take hundreds of ms on a large album). */
typedef struct loader {
    const char *path;
    album_vecs a;
    int rc;
    char err[1024];
    double ms;
} loader;

static void *load_task(void *v) {
    loader *l = v;
    sqlite3 *db = NULL;
    double t0 = now_ms();
    l->rc = album_open(l->path, 1, &db, l->err, sizeof l->err) || album_load(db, &l->a, l->err, sizeof l->err);
    sqlite3_close(db);
    l->ms = now_ms() - t0;
    return NULL;
}

int cmd_search(int argc, char **argv) {
    const char *cmd = argv[0];
    if (cli_wants_help(argc, argv)) {
        printf("usage: glimpse search QUERY... [options]\n\n"
               "Photos of the album ranked by cosine similarity to the query. A query is text, a photo\n"
               "(a path to an existing file, or --image PATH) or a weighted mix in rclip's style:\n"
               "    glimpse search \"2:golden retriever\" + ./pool.jpg - \"people\"\n\n"
               "options:\n"
               "  --db PATH          album store (default $XDG_DATA_HOME/glimpse/index.db)\n"
               "  -k N               results (default 20)\n"
               "  --min-score S      only results with cosine >= S\n"
               "  --image PATH       add an example photo to the query (repeatable)\n"
               "  --json             one JSON object per result: {\"rank\", \"score\", \"path\"}\n"
               "  --html OUT.html    also write a self-contained gallery page with thumbnails\n"
               "  -m, --model PATH   model (default: the one the album was indexed with)\n"
               "  --vocab FILE       CLIP vocabulary when the model folder has none\n"
               "  -t, --threads N    threads (default: all cores)\n"
               "  --timing           print load / embed / scan times to stderr\n");
        return 0;
    }
    const char *dbpath = NULL, *model = NULL, *vocab = NULL, *html = NULL;
    int64_t k = 20;
    int json = 0, timing = 0, threads = cli_default_threads(), n_img = 0;
    float min_score = -INFINITY;
    size_t qlen = 1;
    for (int i = 1; i < argc; i++) qlen += strlen(argv[i]) + 1;
    char *q = calloc(1, qlen);
    const char **imgs = calloc((size_t)argc, sizeof *imgs);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (cli_takes_value(a, "--db -k -m --model --vocab --html --min-score --image -t --threads")) {
            if (i + 1 >= argc) return free(q), free(imgs), cli_fail(cmd, "%s needs a value", a), 2;
            v = argv[++i];
        }
        if (!strcmp(a, "--db")) dbpath = v;
        else if (!strcmp(a, "-k")) k = atoll(v);
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--vocab")) vocab = v;
        else if (!strcmp(a, "--html")) html = v;
        else if (!strcmp(a, "--min-score")) min_score = strtof(v, NULL);
        else if (!strcmp(a, "--image")) imgs[n_img++] = v;
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--timing")) timing = 1;
        else if (a[0] == '-' && a[1] && a[1] != ' ' && strcmp(a, "-") && !isdigit((unsigned char)a[1]))
            return free(q), free(imgs), cli_fail(cmd, "unknown option '%s' (see --help)", a), 2;
        else {
            if (q[0]) strcat(q, " ");
            strcat(q, a);
        }
    }
    term terms[64];
    int nt = parse_query(q, terms, 60);
    for (int i = 0; i < n_img && nt < 64; i++) terms[nt++] = (term){strdup(imgs[i]), 1, 1};
    free(imgs);
    if (!nt) return free(q), cli_fail(cmd, "need a query (see --help)"), 2;
    if (k < 1 || threads < 1) return free(q), cli_fail(cmd, "-k and --threads must be >= 1"), 2;

    int rc = 1;
    char err[1024], *defdb = NULL;
    sqlite3 *db = NULL;
    glimpse_model *m = NULL;
    glimpse_ctx *c = NULL;
    album_vecs a = {0};
    float *e = NULL, *qv = NULL, *scores = NULL, *top_s = NULL;
    int64_t *top = NULL;
    gl_pool *pool = NULL;
    double t0 = now_ms(), t_load, t_embed, t_scan;
    if (!dbpath && !(dbpath = defdb = album_default_db_path())) { cli_fail(cmd, "no --db and no $HOME"); goto done; }
    if (album_open(dbpath, 1, &db, err, sizeof err)) { cli_fail(cmd, "%s", err); goto done; }
    loader ld = {dbpath, {0}, 0, "", 0};
    pthread_t lt;
    int threaded = !pthread_create(&lt, NULL, load_task, &ld);
    if (!threaded) load_task(&ld);
    int erc = open_store_model(cmd, db, model, vocab, threads, &m, &c), d = 0;
    t_load = now_ms();
    if (!erc) {
        d = glimpse_embed_dim(m);
        e = malloc(sizeof(float) * d), qv = calloc((size_t)d, sizeof(float));
        for (int i = 0; i < nt && !erc; i++) {
            const char *s = terms[i].s;
            erc = terms[i].is_image ? glimpse_embed_image_files(c, &s, 1, e, 1) : glimpse_embed_texts(c, &s, 1, e, 1);
            if (erc) cli_fail(cmd, "%s: %s", s, glimpse_ctx_errmsg(c));
            for (int j = 0; j < d && !erc; j++) qv[j] += terms[i].w * e[j];
        }
    }
    t_embed = now_ms();
    if (threaded) pthread_join(lt, NULL);
    a = ld.a;
    double t_wait = now_ms();
    if (ld.rc) { cli_fail(cmd, "%s", ld.err); goto done; }
    if (erc) goto done;
    if (a.n && a.dim != d) { cli_fail(cmd, "album vectors have %d dims, the model %d", a.dim, d); goto done; }
    double nrm = 0;
    for (int j = 0; j < d; j++) nrm += (double)qv[j] * qv[j];
    if (nrm <= 0) { cli_fail(cmd, "the query terms cancel out"); goto done; }
    for (int j = 0; j < d; j++) qv[j] = (float)(qv[j] / sqrt(nrm));

    scores = malloc(sizeof(float) * (a.n ? a.n : 1));
    top = malloc(sizeof(int64_t) * (size_t)(k < a.n ? k : a.n ? a.n : 1));
    pool = threads > 1 ? gl_pool_new(threads) : NULL;
    kn_env env = kn_env_native(pool);
    kn_scan_f16(&env, a.v, a.n, d, qv, scores);
    int64_t nr = album_topk(scores, a.n, k, top);
    while (nr > 0 && scores[top[nr - 1]] < min_score) nr--;
    t_scan = now_ms() - t_wait;
    top_s = malloc(sizeof(float) * (nr ? nr : 1));
    for (int64_t r = 0; r < nr; r++) {
        top_s[r] = scores[top[r]];
        const char *p = a.paths[top[r]];
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "rank", (double)(r + 1));
            cJSON_AddNumberToObject(o, "score", scores[top[r]]);
            cJSON_AddStringToObject(o, "path", p);
            char *s = cJSON_PrintUnformatted(o);
            puts(s);
            free(s);
            cJSON_Delete(o);
        } else {
            printf("%3lld  %.4f  %s\n", (long long)r + 1, scores[top[r]], p);
        }
    }
    if (html && write_html(html, q[0] ? q : "glimpse search", &a, top, top_s, nr)) {
        cli_fail(cmd, "cannot write %s", html);
        goto done;
    }
    if (timing)
        fprintf(stderr,
                "glimpse %s: %lld photos; model open %.1f ms, query embedding %.1f ms, vectors read %.1f ms (in "
                "parallel; waited %.1f ms more), scan + top-%lld %.2f ms\n",
                cmd, (long long)a.n, t_load - t0, t_embed - t_load, ld.ms, t_wait - t_embed, (long long)k, t_scan);
    rc = 0;
done:
    for (int i = 0; i < nt; i++) free(terms[i].s);
    free(q), free(e), free(qv), free(scores), free(top), free(top_s), free(defdb);
    gl_pool_free(pool);
    album_vecs_free(&a);
    glimpse_ctx_free(c);
    glimpse_model_close(m);
    sqlite3_close(db);
    return rc;
}

/* ---- dupes -------------------------------------------------------------------------------- */

static int64_t uf_find(int64_t *p, int64_t x) {
    while (p[x] != x) x = p[x] = p[p[x]];
    return x;
}

int cmd_dupes(int argc, char **argv) {
    const char *cmd = argv[0];
    if (cli_wants_help(argc, argv)) {
        printf("usage: glimpse dupes [--db PATH] [--threshold 0.95] [--json] [-t N]\n\n"
               "Groups of near-duplicate photos: photos linked by a cosine >= threshold (transitively).\n"
               "Each member is listed with its best similarity to another member of its group.\n");
        return 0;
    }
    const char *dbpath = NULL;
    float thr = 0.95f;
    int json = 0, threads = cli_default_threads();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (cli_takes_value(a, "--db --threshold -t --threads")) {
            if (i + 1 >= argc) return cli_fail(cmd, "%s needs a value", a), 2;
            v = argv[++i];
        }
        if (!strcmp(a, "--db")) dbpath = v;
        else if (!strcmp(a, "--threshold")) thr = strtof(v, NULL);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--json")) json = 1;
        else return cli_fail(cmd, "unexpected argument '%s' (see --help)", a), 2;
    }
    char err[1024], *defdb = NULL;
    sqlite3 *db = NULL;
    album_vecs a = {0};
    int rc = 1;
    if (!dbpath && !(dbpath = defdb = album_default_db_path())) return cli_fail(cmd, "no --db and no $HOME");
    if (album_open(dbpath, 1, &db, err, sizeof err) || album_load(db, &a, err, sizeof err)) {
        cli_fail(cmd, "%s", err);
        free(defdb);
        sqlite3_close(db);
        return 1;
    }
    int64_t n = a.n, d = a.dim;
    int64_t *par = malloc(sizeof(int64_t) * (n ? n : 1)), *order = malloc(sizeof(int64_t) * (n ? n : 1));
    float *best = malloc(sizeof(float) * (n ? n : 1)), *scores = malloc(sizeof(float) * (n ? n : 1)),
          *q = malloc(sizeof(float) * (d ? d : 1));
    gl_pool *pool = threads > 1 ? gl_pool_new(threads) : NULL;
    kn_env env = kn_env_native(pool);
    for (int64_t i = 0; i < n; i++) par[i] = i, best[i] = -INFINITY;
    /* all pairs: row i against rows i+1.. (n^2/2 dot products; fine for personal albums) */
    for (int64_t i = 0; i + 1 < n; i++) {
        for (int64_t j = 0; j < d; j++) q[j] = gl_f16_to_f32(a.v[i * d + j]);
        kn_scan_f16(&env, a.v + (i + 1) * d, n - i - 1, d, q, scores);
        for (int64_t j = 0; j < n - i - 1; j++) {
            float s = scores[j];
            if (s < thr) continue;
            int64_t o = i + 1 + j;
            if (s > best[i]) best[i] = s;
            if (s > best[o]) best[o] = s;
            int64_t ri = uf_find(par, i), ro = uf_find(par, o);
            if (ri != ro) par[ri < ro ? ro : ri] = ri < ro ? ri : ro;
        }
    }
    /* groups in order of their first member; members in album order */
    int64_t n_order = 0, n_groups = 0;
    for (int64_t i = 0; i < n; i++)
        if (best[i] >= thr) order[n_order++] = i;
    for (int64_t gi = 0; gi < n_order; gi++) {
        int64_t root = uf_find(par, order[gi]);
        if (root != order[gi]) continue; /* the root is the lowest index: the group's first member */
        n_groups++;
        cJSON *g = json ? cJSON_CreateObject() : NULL, *arr = json ? cJSON_CreateArray() : NULL;
        int64_t cnt = 0;
        for (int64_t mi = gi; mi < n_order; mi++)
            if (uf_find(par, order[mi]) == root) cnt++;
        if (!json) printf("group %lld (%lld photos)\n", (long long)n_groups, (long long)cnt);
        for (int64_t mi = gi; mi < n_order; mi++) {
            int64_t x = order[mi];
            if (uf_find(par, x) != root) continue;
            if (json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "path", a.paths[x]);
                cJSON_AddNumberToObject(o, "score", best[x]);
                cJSON_AddItemToArray(arr, o);
            } else {
                printf("  %.4f  %s\n", best[x], a.paths[x]);
            }
        }
        if (json) {
            cJSON_AddNumberToObject(g, "group", (double)n_groups);
            cJSON_AddItemToObject(g, "photos", arr);
            char *s = cJSON_PrintUnformatted(g);
            puts(s);
            free(s);
            cJSON_Delete(g);
        }
    }
    if (!json) fprintf(stderr, "%lld groups among %lld photos (threshold %.3f)\n", (long long)n_groups, (long long)n, thr);
    rc = 0;
    gl_pool_free(pool);
    free(par), free(order), free(best), free(scores), free(q), free(defdb);
    album_vecs_free(&a);
    sqlite3_close(db);
    return rc;
}
