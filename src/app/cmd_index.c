/* cmd_index.c — `glimpse index DIR...`: embed a photo collection into the album store.
 *
 * Incremental: a file whose size and mtime match its row is skipped unread. Every other file is
 * read once by a worker, which hashes it; bytes already in the store (a move, a copy, a touched
 * file) reuse the stored vector, the rest are decoded and embedded. Rows of files that are gone
 * from the walked folders are removed at the end.
 *
 * Pipeline: n worker threads, each with its own single-threaded glimpse context on the shared
 * model, run read -> hash -> decode -> preprocess -> embed for one file at a time (whole-image
 * parallelism, no synchronisation inside a forward pass); the main thread writes their results
 * and commits every --batch files, so a killed run loses at most the batch in flight. */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "album.h"
#include "cli.h"
#include "core/fp16.h"
#include "io/image.h"

#define MAX_FILE_BYTES ((int64_t)1 << 30) /* larger "photos" are refused unread */

typedef struct file_ent {
    char *path;
    int64_t size, mtime_ns;
} file_ent;

typedef struct flist {
    file_ent *v;
    size_t n, cap;
} flist;

static int flist_push(flist *l, const char *path, int64_t size, int64_t mtime) {
    if (l->n == l->cap) {
        size_t c = l->cap ? 2 * l->cap : 256;
        file_ent *v = realloc(l->v, sizeof *v * c);
        if (!v) return -1;
        l->v = v, l->cap = c;
    }
    l->v[l->n++] = (file_ent){strdup(path), size, mtime};
    return 0;
}

static int has_image_ext(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    static const char *ext[] = {".jpg", ".jpeg", ".jpe", ".png", ".webp"};
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (!strcasecmp(dot, ext[i])) return 1;
    return 0;
}

static int excluded(const char *path, char **ex, int n_ex) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (int i = 0; i < n_ex; i++)
        if (!fnmatch(ex[i], path, 0) || !fnmatch(ex[i], base, 0)) return 1;
    return 0;
}

/* Recursive walk; symlinked folders are not followed (no cycles), symlinked files are. */
static void walk(const char *cmd, const char *dir, char **ex, int n_ex, flist *out, int *n_warn) {
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "glimpse %s: warning: cannot read folder %s\n", cmd, dir);
        (*n_warn)++;
        return;
    }
    struct dirent *e;
    char p[PATH_MAX];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue; /* ., .. and hidden files (.thumbnails, .git) */
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p) continue;
        if (excluded(p, ex, n_ex)) continue;
        struct stat st;
        if (lstat(p, &st)) continue;
        if (S_ISDIR(st.st_mode)) {
            walk(cmd, p, ex, n_ex, out, n_warn);
            continue;
        }
        if (!has_image_ext(e->d_name)) continue;
        if (S_ISLNK(st.st_mode) && (stat(p, &st) || !S_ISREG(st.st_mode))) continue;
        if (!S_ISREG(st.st_mode)) continue;
        flist_push(out, p, (int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
    }
    closedir(d);
}

/* qsort that accepts an empty (NULL) array */
static void sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
    if (n > 1) qsort(base, n, size, cmp);
}

static int cmp_ent(const void *a, const void *b) {
    return strcmp(((const file_ent *)a)->path, ((const file_ent *)b)->path);
}
static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Width and height from a JPEG's SOF header (the --fast-decode path decodes a reduced image). */
static int jpeg_dims(const uint8_t *p, size_t n, int *w, int *h) {
    size_t i = 2;
    while (i + 9 < n) {
        if (p[i] != 0xFF) return 0;
        uint8_t m = p[i + 1];
        if (m == 0xFF) { i++; continue; }
        if (m == 0xD8 || (m >= 0xD0 && m <= 0xD7) || m == 0x01) { i += 2; continue; }
        size_t len = (size_t)p[i + 2] << 8 | p[i + 3];
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            *h = p[i + 5] << 8 | p[i + 6];
            *w = p[i + 7] << 8 | p[i + 8];
            return *w > 0 && *h > 0;
        }
        i += 2 + len;
    }
    return 0;
}

/* ---- workers ------------------------------------------------------------------------------ */

enum { R_EMBEDDED, R_REUSE, R_BAD };

typedef struct result {
    struct result *next;
    size_t idx; /* into the todo list */
    int kind;
    uint64_t hash;
    int32_t w, h;
    char msg[256];
    uint16_t vec[]; /* dim halves (R_EMBEDDED) */
} result;

typedef struct shared {
    glimpse_model *m;
    int dim, fast, image_size;
    uint64_t max_pixels;
    file_ent *todo;
    size_t n_todo;
    const uint64_t *known; /* sorted hashes already in the store */
    size_t n_known;
    atomic_size_t next;
    pthread_mutex_t mu;
    pthread_cond_t cv_items, cv_space;
    result *head, *tail;
    int queued, cap, live;
    volatile sig_atomic_t *stop;
} shared;

static int is_known(const shared *s, uint64_t h) {
    size_t lo = 0, hi = s->n_known;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->known[mid] < h) lo = mid + 1;
        else hi = mid;
    }
    return lo < s->n_known && s->known[lo] == h;
}

static void push(shared *s, result *r) {
    pthread_mutex_lock(&s->mu);
    while (s->queued >= s->cap && !*s->stop) pthread_cond_wait(&s->cv_space, &s->mu);
    r->next = NULL;
    if (s->tail) s->tail->next = r;
    else s->head = r;
    s->tail = r;
    s->queued++;
    pthread_cond_signal(&s->cv_items);
    pthread_mutex_unlock(&s->mu);
}

static uint8_t *read_all(const char *path, int64_t size, size_t *n_out, char *msg, size_t mlen) {
    if (size > MAX_FILE_BYTES) return snprintf(msg, mlen, "file too large (%lld bytes)", (long long)size), NULL;
    if (size == 0) return snprintf(msg, mlen, "empty file"), NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return snprintf(msg, mlen, "cannot open: %s", strerror(errno)), NULL;
    uint8_t *buf = malloc((size_t)size);
    size_t n = buf ? fread(buf, 1, (size_t)size, f) : 0;
    fclose(f);
    if (!buf) return snprintf(msg, mlen, "out of memory"), NULL;
    if (n == 0) return free(buf), snprintf(msg, mlen, "cannot read"), NULL;
    *n_out = n; /* a file that shrank since the walk is hashed as read */
    return buf;
}

static void one_file(shared *s, glimpse_ctx *c, size_t idx, float *vec) {
    const file_ent *f = &s->todo[idx];
    result *r = calloc(1, sizeof *r + sizeof(uint16_t) * (size_t)s->dim);
    if (!r) return;
    r->idx = idx;
    r->kind = R_BAD;
    size_t n = 0;
    uint8_t *buf = read_all(f->path, f->size, &n, r->msg, sizeof r->msg);
    if (buf) {
        r->hash = album_hash(buf, n);
        if (is_known(s, r->hash)) {
            r->kind = R_REUSE;
        } else {
            glimpse_image img = {0};
            gl_err e = {0};
            int rc = s->fast ? io_image_decode_scaled(buf, n, f->path, s->max_pixels, s->image_size, &img, &e)
                             : io_image_decode(buf, n, f->path, s->max_pixels, &img, &e);
            if (rc) {
                snprintf(r->msg, sizeof r->msg, "%s", e.msg[0] ? e.msg : glimpse_status_str(rc));
            } else if (glimpse_embed_images(c, &img, 1, vec, 1)) {
                snprintf(r->msg, sizeof r->msg, "%s", glimpse_ctx_errmsg(c));
            } else {
                r->kind = R_EMBEDDED;
                r->w = img.width, r->h = img.height;
                if (s->fast && io_image_sniff(buf, n) == IO_IMG_JPEG) jpeg_dims(buf, n, &r->w, &r->h);
                for (int k = 0; k < s->dim; k++) r->vec[k] = gl_f32_to_f16(vec[k]);
            }
            io_image_free(&img);
        }
        free(buf);
    }
    push(s, r);
}

static void *worker(void *arg) {
    shared *s = arg;
    glimpse_ctx_params cp = glimpse_ctx_default_params();
    cp.n_threads = 1;
    glimpse_ctx *c = NULL;
    float *vec = malloc(sizeof(float) * (size_t)s->dim);
    if (!vec || glimpse_ctx_new(s->m, &cp, &c)) {
        fprintf(stderr, "glimpse index: cannot create a worker context\n");
    } else {
        size_t i;
        while (!*s->stop && (i = atomic_fetch_add(&s->next, 1)) < s->n_todo) one_file(s, c, i, vec);
    }
    glimpse_ctx_free(c);
    free(vec);
    pthread_mutex_lock(&s->mu);
    s->live--;
    pthread_cond_signal(&s->cv_items);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static result *pop(shared *s) {
    pthread_mutex_lock(&s->mu);
    while (!s->head && s->live > 0) pthread_cond_wait(&s->cv_items, &s->mu);
    result *r = s->head;
    if (r) {
        s->head = r->next;
        if (!s->head) s->tail = NULL;
        s->queued--;
        pthread_cond_signal(&s->cv_space);
    }
    pthread_mutex_unlock(&s->mu);
    return r;
}

/* ---- progress ----------------------------------------------------------------------------- */

enum { P_NONE, P_BAR, P_JSON };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void progress(int mode, size_t done, size_t total, size_t embedded, double t0, int final) {
    double dt = now_s() - t0, rate = dt > 0 ? done / dt : 0, eta = rate > 0 ? (total - done) / rate : 0;
    if (mode == P_JSON) {
        printf("{\"event\":\"progress\",\"done\":%zu,\"total\":%zu,\"embedded\":%zu,\"images_per_s\":%.2f,"
               "\"eta_s\":%.1f}\n", done, total, embedded, rate, eta);
        fflush(stdout);
    } else if (mode == P_BAR) {
        int width = 30, fill = total ? (int)(width * (double)done / total) : width;
        char bar[64];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : ' ';
        bar[width] = 0;
        fprintf(stderr, "\r[%s] %zu/%zu  %.1f images/s  ETA %dm%02ds ", bar, done, total, rate, (int)eta / 60,
                (int)eta % 60);
        if (final) fputc('\n', stderr);
        fflush(stderr);
    }
}

/* ---- the command -------------------------------------------------------------------------- */

static volatile sig_atomic_t g_stop;
static void on_sigint(int sig) { (void)sig; g_stop = 1; }

static int usage(void) {
    printf("usage: glimpse index DIR... [options]\n\n"
           "Embeds every JPEG, PNG and WebP under the folders into the album store (incremental:\n"
           "unchanged files are skipped, moved ones recognised by content, deleted ones removed).\n\n"
           "options:\n"
           "  --db PATH              album store (default $XDG_DATA_HOME/glimpse/index.db)\n"
           "  -m, --model PATH       MobileCLIP / MobileCLIP2 model; optional after the first run.\n"
           "                         A different model re-embeds everything.\n"
           "  --vocab FILE           CLIP vocabulary when the model folder has none\n"
           "  --exclude GLOB         skip paths or names matching GLOB (repeatable)\n"
           "  --batch N              files per committed batch (default 32)\n"
           "  -t, --threads N        worker threads (default: all cores)\n"
           "  --fast-decode          decode large JPEGs at 1/2..1/8 scale first (faster, not exact)\n"
           "  --max-pixels N         refuse images with more pixels (default 100000000)\n"
           "  --progress MODE        auto (bar on a terminal), bar, json (JSON lines on stdout), none\n");
    return 0;
}

typedef struct row {
    char *path;
    int64_t size, mtime_ns;
    int seen;
} row;

static int cmp_row(const void *a, const void *b) { return strcmp(((const row *)a)->path, ((const row *)b)->path); }

int cmd_index(int argc, char **argv) {
    const char *cmd = argv[0];
    if (cli_wants_help(argc, argv)) return usage();
    const char *dbpath = NULL, *model = NULL, *vocab = NULL, *pmode = "auto";
    int batch = 32, threads = cli_default_threads(), fast = 0, n_dirs = 0, n_ex = 0;
    uint64_t max_pixels = 0;
    char **dirs = calloc((size_t)argc, sizeof *dirs), **ex = calloc((size_t)argc, sizeof *ex);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (cli_takes_value(a, "--db -m --model --vocab --exclude --batch -t --threads --progress --max-pixels")) {
            if (i + 1 >= argc) return free(dirs), free(ex), cli_fail(cmd, "%s needs a value", a), 2;
            v = argv[++i];
        }
        if (!strcmp(a, "--db")) dbpath = v;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--vocab")) vocab = v;
        else if (!strcmp(a, "--exclude")) ex[n_ex++] = (char *)v;
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--progress")) pmode = v;
        else if (!strcmp(a, "--max-pixels")) max_pixels = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--fast-decode")) fast = 1;
        else if (a[0] == '-' && a[1]) return free(dirs), free(ex), cli_fail(cmd, "unknown option '%s' (see --help)", a), 2;
        else dirs[n_dirs++] = (char *)a;
    }
    int pm = !strcmp(pmode, "json") ? P_JSON : !strcmp(pmode, "bar") ? P_BAR : !strcmp(pmode, "none") ? P_NONE
             : !strcmp(pmode, "auto") ? (isatty(2) ? P_BAR : P_NONE) : -1;
    if (pm < 0) return free(dirs), free(ex), cli_fail(cmd, "--progress must be auto, bar, json or none"), 2;
    if (!n_dirs) return free(dirs), free(ex), cli_fail(cmd, "need at least one folder (see --help)"), 2;
    if (batch < 1 || threads < 1) return free(dirs), free(ex), cli_fail(cmd, "--batch and --threads must be >= 1"), 2;

    int rc = 1;
    char err[1024], *defdb = NULL;
    sqlite3 *db = NULL;
    glimpse_model *m = NULL;
    flist files = {0};
    row *rows = NULL, *bads = NULL;
    size_t n_rows = 0, cap_rows = 0, n_bads = 0, cap_bads = 0;
    uint64_t *known = NULL;
    size_t n_known = 0;
    file_ent *todo = NULL;
    pthread_t *tids = NULL;
    sqlite3_stmt *st_up = NULL, *st_src = NULL, *st_del = NULL, *st_bad = NULL, *st_unbad = NULL;
    shared s;
    memset(&s, 0, sizeof s);

    if (!dbpath && !(dbpath = defdb = album_default_db_path())) { cli_fail(cmd, "no --db and no $HOME"); goto done; }
    if (album_open(dbpath, 0, &db, err, sizeof err)) { cli_fail(cmd, "%s", err); goto done; }

    /* ---- the model: given, or the one recorded in the store */
    char stored_id[1024], stored_path[PATH_MAX], stored_vocab[PATH_MAX], abs_model[PATH_MAX], abs_vocab[PATH_MAX] = "";
    album_meta_get(db, "model_id", stored_id, sizeof stored_id);
    album_meta_get(db, "model_path", stored_path, sizeof stored_path);
    album_meta_get(db, "vocab_path", stored_vocab, sizeof stored_vocab);
    if (!model && !stored_path[0]) { cli_fail(cmd, "%s has no model yet: pass -m MODEL", dbpath); rc = 2; goto done; }
    if (!model) model = stored_path, vocab = vocab ? vocab : (stored_vocab[0] ? stored_vocab : NULL);
    if (!realpath(model, abs_model)) snprintf(abs_model, sizeof abs_model, "%s", model);
    if (vocab && !realpath(vocab, abs_vocab)) snprintf(abs_vocab, sizeof abs_vocab, "%s", vocab);
    glimpse_model_params mp = glimpse_model_default_params();
    mp.vocab_path = vocab;
    mp.max_pixels = max_pixels;
    if (glimpse_model_open(model, &mp, &m, err, sizeof err)) { cli_fail(cmd, "%s", err); goto done; }
    if (glimpse_model_get_kind(m) != GLIMPSE_MODEL_CLIP) { cli_fail(cmd, "%s is not a MobileCLIP model", model); goto done; }
    /* the model's identity: its name and where its weights live (two checkpoints of one
     * architecture must not share vectors) */
    char model_id[PATH_MAX + 256], dim_s[32];
    snprintf(model_id, sizeof model_id, "%s|%s", glimpse_model_name(m), abs_model);
    s.dim = glimpse_embed_dim(m);
    snprintf(dim_s, sizeof dim_s, "%d", s.dim);
    if (stored_id[0] && strcmp(stored_id, model_id)) {
        fprintf(stderr, "glimpse %s: the store was built with %s; re-embedding everything with %s\n", cmd, stored_id,
                model_id);
        if (album_exec(db, "DELETE FROM images", err, sizeof err)) { cli_fail(cmd, "%s", err); goto done; }
    }
    if (album_meta_set(db, "model_id", model_id) || album_meta_set(db, "model_path", abs_model) ||
        album_meta_set(db, "vocab_path", abs_vocab) || album_meta_set(db, "dim", dim_s)) {
        cli_fail(cmd, "%s: %s", dbpath, sqlite3_errmsg(db));
        goto done;
    }

    /* ---- walk the folders */
    int n_warn = 0, n_roots = 0;
    char **roots = calloc((size_t)n_dirs, sizeof *roots);
    for (int i = 0; i < n_dirs; i++) {
        char ab[PATH_MAX];
        struct stat st;
        if (!realpath(dirs[i], ab) || stat(ab, &st) || !S_ISDIR(st.st_mode)) {
            /* a missing folder (an unmounted disk) must not delete its rows */
            fprintf(stderr, "glimpse %s: warning: %s is not a readable folder; its rows are kept\n", cmd, dirs[i]);
            continue;
        }
        roots[n_roots++] = strdup(ab);
        walk(cmd, ab, ex, n_ex, &files, &n_warn);
    }
    sort(files.v, files.n, sizeof *files.v, cmp_ent);

    /* ---- rows already in the store */
    int oom = 0;
    {
        sqlite3_stmt *st = NULL;
        sqlite3_prepare_v2(db, "SELECT path, size, mtime_ns, hash FROM images", -1, &st, NULL);
        while (st && sqlite3_step(st) == SQLITE_ROW) {
            if (n_rows == cap_rows) {
                cap_rows = cap_rows ? 2 * cap_rows : 1024;
                row *nr = realloc(rows, sizeof *rows * cap_rows);
                uint64_t *nk = realloc(known, sizeof *known * cap_rows);
                if (nr) rows = nr;
                if (nk) known = nk;
                if (!nr || !nk) { oom = 1; break; }
            }
            rows[n_rows] = (row){strdup((const char *)sqlite3_column_text(st, 0)), sqlite3_column_int64(st, 1),
                                 sqlite3_column_int64(st, 2), 0};
            known[n_known++] = (uint64_t)sqlite3_column_int64(st, 3);
            n_rows++;
        }
        sqlite3_finalize(st);
        if (oom) { cli_fail(cmd, "out of memory reading the store"); goto done; }
    }
    sort(rows, n_rows, sizeof *rows, cmp_row);
    sort(known, n_known, sizeof *known, cmp_u64);
    {
        sqlite3_stmt *st = NULL;
        sqlite3_prepare_v2(db, "SELECT path, size, mtime_ns FROM bad", -1, &st, NULL);
        while (st && sqlite3_step(st) == SQLITE_ROW) {
            if (n_bads == cap_bads) {
                cap_bads = cap_bads ? 2 * cap_bads : 64;
                row *nb = realloc(bads, sizeof *bads * cap_bads);
                if (!nb) break;
                bads = nb;
            }
            bads[n_bads++] = (row){strdup((const char *)sqlite3_column_text(st, 0)), sqlite3_column_int64(st, 1),
                                   sqlite3_column_int64(st, 2), 0};
        }
        sqlite3_finalize(st);
    }
    sort(bads, n_bads, sizeof *bads, cmp_row);

    /* ---- merge: unchanged, changed, new */
    size_t n_todo = 0, n_unchanged = 0, n_new = 0, n_changed = 0, n_known_bad = 0;
    todo = malloc(sizeof *todo * (files.n ? files.n : 1));
    for (size_t i = 0, j = 0, b = 0; i < files.n; i++) {
        while (b < n_bads && strcmp(bads[b].path, files.v[i].path) < 0) b++;
        if (b < n_bads && !strcmp(bads[b].path, files.v[i].path)) {
            bads[b].seen = 1;
            if (bads[b].size == files.v[i].size && bads[b].mtime_ns == files.v[i].mtime_ns) {
                n_known_bad++; /* failed before and unchanged since: no second warning */
                continue;
            }
        }
        while (j < n_rows && strcmp(rows[j].path, files.v[i].path) < 0) j++;
        if (j < n_rows && !strcmp(rows[j].path, files.v[i].path)) {
            rows[j].seen = 1;
            if (rows[j].size == files.v[i].size && rows[j].mtime_ns == files.v[i].mtime_ns) {
                n_unchanged++;
                continue;
            }
            n_changed++;
        } else {
            n_new++;
        }
        todo[n_todo++] = files.v[i];
    }

    /* ---- run the workers; write and commit their results in batches */
    const char *sql_up =
        "INSERT INTO images(path, size, mtime_ns, hash, width, height, model, embedding, indexed_at)"
        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(path) DO UPDATE SET size = ?2, mtime_ns = ?3,"
        " hash = ?4, width = ?5, height = ?6, model = ?7, embedding = ?8, indexed_at = ?9";
    if (sqlite3_prepare_v2(db, sql_up, -1, &st_up, NULL) ||
        sqlite3_prepare_v2(db, "SELECT width, height, embedding FROM images WHERE hash = ? LIMIT 1", -1, &st_src,
                           NULL) ||
        sqlite3_prepare_v2(db, "DELETE FROM images WHERE path = ?", -1, &st_del, NULL) ||
        sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO bad(path, size, mtime_ns, reason) VALUES(?, ?, ?, ?)", -1,
                           &st_bad, NULL) ||
        sqlite3_prepare_v2(db, "DELETE FROM bad WHERE path = ?", -1, &st_unbad, NULL)) {
        cli_fail(cmd, "%s: %s", dbpath, sqlite3_errmsg(db));
        goto done;
    }
    s.m = m;
    s.fast = fast;
    s.image_size = glimpse_image_size(m);
    s.max_pixels = max_pixels;
    s.todo = todo;
    s.n_todo = n_todo;
    s.known = known;
    s.n_known = n_known;
    atomic_init(&s.next, 0);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv_items, NULL);
    pthread_cond_init(&s.cv_space, NULL);
    s.cap = batch;
    s.stop = &g_stop;
    g_stop = 0;
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    int nt = (size_t)threads > n_todo ? (int)(n_todo ? n_todo : 1) : threads;
    tids = calloc((size_t)nt, sizeof *tids);
    s.live = 0;
    for (int i = 0; i < nt && n_todo; i++)
        if (!pthread_create(&tids[i], NULL, worker, &s)) s.live++;
    double t0 = now_s();
    size_t done_n = 0, n_embedded = 0, n_reused = 0, n_bad = 0, in_batch = 0;
    int db_err = 0;
    result *r;
    while ((r = pop(&s))) {
        const file_ent *f = &todo[r->idx];
        if (!db_err && in_batch == 0) db_err = album_exec(db, "BEGIN IMMEDIATE", err, sizeof err);
        int w = r->w, h = r->h;
        const void *blob = r->vec;
        if (r->kind == R_REUSE) {
            sqlite3_reset(st_src);
            sqlite3_bind_int64(st_src, 1, (int64_t)r->hash);
            if (sqlite3_step(st_src) == SQLITE_ROW &&
                sqlite3_column_bytes(st_src, 2) == 2 * s.dim) {
                w = sqlite3_column_int(st_src, 0), h = sqlite3_column_int(st_src, 1);
                memcpy(r->vec, sqlite3_column_blob(st_src, 2), sizeof(uint16_t) * s.dim);
            } else {
                r->kind = R_BAD;
                snprintf(r->msg, sizeof r->msg, "stored vector for its content vanished; re-run index");
            }
            sqlite3_reset(st_src);
        }
        if (r->kind == R_BAD) {
            /* one line per file; decoder messages already start with the path */
            if (!strncmp(r->msg, f->path, strlen(f->path)))
                fprintf(stderr, "%sglimpse %s: warning: skipped %s\n", pm == P_BAR ? "\n" : "", cmd, r->msg);
            else
                fprintf(stderr, "%sglimpse %s: warning: skipped %s: %s\n", pm == P_BAR ? "\n" : "", cmd, f->path,
                        r->msg);
            n_bad++;
            /* a file that changed into something unreadable loses its stale row */
            sqlite3_reset(st_del);
            sqlite3_bind_text(st_del, 1, f->path, -1, SQLITE_STATIC);
            if (!db_err && sqlite3_step(st_del) != SQLITE_DONE) db_err = 1;
            sqlite3_reset(st_bad);
            sqlite3_bind_text(st_bad, 1, f->path, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st_bad, 2, f->size);
            sqlite3_bind_int64(st_bad, 3, f->mtime_ns);
            sqlite3_bind_text(st_bad, 4, r->msg, -1, SQLITE_STATIC);
            if (!db_err && sqlite3_step(st_bad) != SQLITE_DONE) db_err = 1;
        } else {
            sqlite3_reset(st_up);
            sqlite3_bind_text(st_up, 1, f->path, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st_up, 2, f->size);
            sqlite3_bind_int64(st_up, 3, f->mtime_ns);
            sqlite3_bind_int64(st_up, 4, (int64_t)r->hash);
            sqlite3_bind_int(st_up, 5, w);
            sqlite3_bind_int(st_up, 6, h);
            sqlite3_bind_text(st_up, 7, model_id, -1, SQLITE_STATIC);
            sqlite3_bind_blob(st_up, 8, blob, (int)(sizeof(uint16_t) * s.dim), SQLITE_STATIC);
            sqlite3_bind_int64(st_up, 9, (int64_t)time(NULL));
            if (!db_err && sqlite3_step(st_up) != SQLITE_DONE) db_err = 1;
            sqlite3_reset(st_unbad);
            sqlite3_bind_text(st_unbad, 1, f->path, -1, SQLITE_STATIC);
            if (!db_err && sqlite3_step(st_unbad) != SQLITE_DONE) db_err = 1;
            if (r->kind == R_EMBEDDED) n_embedded++;
            else n_reused++;
        }
        if (db_err && !err[0]) snprintf(err, sizeof err, "%s", sqlite3_errmsg(db));
        free(r);
        done_n++;
        if (++in_batch == (size_t)batch) {
            if (!db_err) db_err = album_exec(db, "COMMIT", err, sizeof err);
            in_batch = 0;
            progress(pm, done_n, n_todo, n_embedded, t0, 0);
        }
        if (db_err) g_stop = 1; /* the store refuses writes (disk full?): stop cleanly */
    }
    for (int i = 0; i < nt && n_todo; i++) pthread_join(tids[i], NULL);
    if (in_batch && !db_err) db_err = album_exec(db, "COMMIT", err, sizeof err);
    if (in_batch) progress(pm, done_n, n_todo, n_embedded, t0, 0);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    double dt = now_s() - t0;

    /* ---- rows of files gone from the walked folders (only after a complete walk) */
    size_t n_removed = 0;
    if (!g_stop && !db_err) {
        db_err = album_exec(db, "BEGIN IMMEDIATE", err, sizeof err);
        for (size_t j = 0; j < n_rows + n_bads && !db_err; j++) {
            row *rw = j < n_rows ? &rows[j] : &bads[j - n_rows];
            if (rw->seen) continue;
            int under = 0;
            for (int k = 0; k < n_roots && !under; k++) {
                size_t l = strlen(roots[k]);
                under = !strncmp(rw->path, roots[k], l) && (rw->path[l] == '/' || roots[k][l - 1] == '/');
            }
            /* gone, renamed, or now excluded; rows outside the walked folders are kept */
            if (!under) continue;
            sqlite3_stmt *del = j < n_rows ? st_del : st_unbad;
            sqlite3_reset(del);
            sqlite3_bind_text(del, 1, rw->path, -1, SQLITE_STATIC);
            if (sqlite3_step(del) != SQLITE_DONE) db_err = 1, snprintf(err, sizeof err, "%s", sqlite3_errmsg(db));
            else if (j < n_rows) n_removed++;
        }
        if (!db_err) db_err = album_exec(db, "COMMIT", err, sizeof err);
    }
    if (pm == P_BAR && n_todo) progress(pm, done_n, n_todo, n_embedded, t0, 1);
    if (db_err) {
        cli_fail(cmd, "%s: %s", dbpath, err);
        goto done;
    }
    double ips = dt > 0 ? n_embedded / dt : 0;
    if (pm == P_JSON)
        printf("{\"event\":\"done\",\"files\":%zu,\"new\":%zu,\"changed\":%zu,\"unchanged\":%zu,\"embedded\":%zu,"
               "\"reused\":%zu,\"removed\":%zu,\"skipped\":%zu,\"known_bad\":%zu,\"interrupted\":%s,\"seconds\":%.3f,"
               "\"images_per_s\":%.2f}\n",
               files.n, n_new, n_changed, n_unchanged, n_embedded, n_reused, n_removed, n_bad + n_known_bad, n_known_bad,
               g_stop ? "true" : "false",
               dt, ips);
    else
        printf("%zu files: %zu new, %zu changed, %zu unchanged, %zu removed; %zu embedded, %zu reused (moved or "
               "copied), %zu skipped (%zu known bad); %.2f s, %.1f images/s%s\n",
               files.n, n_new, n_changed, n_unchanged, n_removed, n_embedded, n_reused, n_bad + n_known_bad, n_known_bad,
               dt, ips,
               g_stop ? " (interrupted: run again to finish)" : "");
    rc = g_stop ? 1 : 0;
    for (int k = 0; k < n_roots; k++) free(roots[k]);
    free(roots);
done:
    sqlite3_finalize(st_up);
    sqlite3_finalize(st_src);
    sqlite3_finalize(st_del);
    sqlite3_finalize(st_bad);
    sqlite3_finalize(st_unbad);
    sqlite3_close(db);
    glimpse_model_close(m);
    for (size_t i = 0; i < files.n; i++) free(files.v[i].path);
    free(files.v);
    for (size_t j = 0; j < n_rows; j++) free(rows[j].path);
    for (size_t j = 0; j < n_bads; j++) free(bads[j].path);
    free(rows);
    free(bads);
    free(known);
    free(todo);
    free(tids);
    free(defdb);
    free(dirs);
    free(ex);
    return rc;
}
