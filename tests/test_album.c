/* glimpse index / search / dupes end to end: the CLI built next to this test runs on folders of
 * images the test writes (PNG via libpng, JPEG via libjpeg) with a random-weight MobileCLIP2
 * model from glimpse-gen (tiny shapes, the real 49408-token vocabulary so text queries work).
 * Checked: search scores equal the cosines of the embeddings the public API (what `glimpse
 * embed` prints) gives for the same files, within the f16 storage tolerance, in rank order;
 * text, image and weighted queries; incremental re-index after modify / delete / rename / touch /
 * add (only the changed files embedded, counts reported); bad files skipped with one warning each;
 * --exclude; a model change re-embeds; kill -9 mid-run then a re-run leaves exactly one row
 * per file and loses no committed row; dupes groups a copy with its original. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <jpeglib.h>
#include <png.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "glimpse.h"
#include "test.h"

/* |score - exact cosine|: the stored vector is f16 (relative rounding 2^-11 per element), so a
 * dot with a unit query moves by at most ~2^-11 * sum|q_i v_i| <= 4.9e-4; the query side is f32. */
#define TOL_SCORE 1e-3

static char g_tmp[256], g_db[512], g_model[512], g_vocab[512];

/* ---- images ----------------------------------------------------------------------------- */

/* A synthetic "scene": a colour gradient background, a disc and a bar whose colours, places and
 * sizes depend on seed, so different seeds give visibly different images. */
static unsigned char *scene(int w, int h, uint64_t seed) {
    unsigned char *p = malloc((size_t)w * h * 3);
    uint64_t s = seed * 7919 + 1;
    int c0[3], c1[3], c2[3];
    for (int c = 0; c < 3; c++) c0[c] = t_rand_u64(&s) & 255, c1[c] = t_rand_u64(&s) & 255, c2[c] = t_rand_u64(&s) & 255;
    int cx = (int)(t_rand_u64(&s) % w), cy = (int)(t_rand_u64(&s) % h), r = (int)(w / 8 + t_rand_u64(&s) % (w / 4));
    int by = (int)(t_rand_u64(&s) % h);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned char *q = p + ((size_t)y * w + x) * 3;
            for (int c = 0; c < 3; c++) q[c] = (unsigned char)((c0[c] * (w - x) + c1[c] * x) / w);
            if ((x - cx) * (x - cx) + (y - cy) * (y - cy) < r * r) memcpy(q, (unsigned char[3]){c2[0], c2[1], c2[2]}, 3);
            if (abs(y - by) < h / 16) q[0] = 255 - q[0], q[2] = 255 - q[2];
        }
    return p;
}

static int write_png(const char *path, int w, int h, uint64_t seed) {
    unsigned char *p = scene(w, h, seed);
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w, img.height = (png_uint_32)h, img.format = PNG_FORMAT_RGB;
    int ok = png_image_write_to_file(&img, path, 0, p, 0, NULL);
    free(p);
    return ok ? 0 : -1;
}

static int write_jpeg(const char *path, int w, int h, uint64_t seed) {
    unsigned char *p = scene(w, h, seed);
    FILE *f = fopen(path, "wb");
    if (!f) return free(p), -1;
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr je;
    ci.err = jpeg_std_error(&je);
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = (JDIMENSION)w, ci.image_height = (JDIMENSION)h, ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 90, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = p + (size_t)ci.next_scanline * w * 3;
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    fclose(f);
    free(p);
    return 0;
}

static void write_bytes(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(d, 1, n, f);
    fclose(f);
}

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    size_t got = fread(b, 1, (size_t)sz, f);
    b[got] = 0;
    fclose(f);
    if (n) *n = got;
    return b;
}

/* ---- running the CLI -------------------------------------------------------------------- */

/* Runs `glimpse ARGS` with stdout to out.txt and stderr to err.txt in the temp folder; returns
 * the exit status; *out / *err (if not NULL) get the texts (caller frees). */
static int cli(char **out, char **err, const char *fmt, ...) {
    char args[4096], line[8192], po[512], pe[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(po, sizeof po, "%s/out.txt", g_tmp);
    snprintf(pe, sizeof pe, "%s/err.txt", g_tmp);
    snprintf(line, sizeof line, "'%s' %s >'%s' 2>'%s'", GLIMPSE_CLI, args, po, pe);
    int st = system(line);
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    if (out) *out = slurp(po, NULL);
    if (err) *err = slurp(pe, NULL);
    return rc;
}

/* The {"event":"done"} object from `index --progress json` output; NULL if absent. */
static cJSON *done_event(const char *out) {
    const char *p = out ? strstr(out, "{\"event\":\"done\"") : NULL;
    return p ? cJSON_Parse(p) : NULL;
}
static int jint(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

static int count_lines(const char *s, const char *needle) {
    int n = 0;
    for (const char *p = s; p && (p = strstr(p, needle)); p++) n++;
    return n;
}

static int64_t db_count(const char *sql) {
    sqlite3 *db = NULL;
    int64_t n = -1;
    if (sqlite3_open_v2(g_db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

/* ---- the embeddings `glimpse embed` gives (same public API calls) ---------------------- */

static glimpse_model *g_m;
static glimpse_ctx *g_c;
static int g_dim;

static int embed_file(const char *path, float *out) {
    return glimpse_embed_image_files(g_c, &path, 1, out, 1);
}
static int embed_text(const char *t, float *out) { return glimpse_embed_texts(g_c, &t, 1, out, 1); }
static double dotf(const float *a, const float *b) {
    double s = 0;
    for (int i = 0; i < g_dim; i++) s += (double)a[i] * b[i];
    return s;
}

/* Runs a search with --json and checks each result against the exact cosine with query
 * vector q (unit): scores within TOL_SCORE, ranks in non-increasing score order, all photos
 * of the folder present when k covers them. Returns the number of results. */
static int check_search(const float *q, int expect_n, const char *fmt, ...) {
    char args[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    char *out = NULL, *err = NULL;
    int rc = cli(&out, &err, "search --db '%s' --json -k 100 %s", g_db, args);
    CHECK_MSG(rc == 0, "search %s failed: %s", args, err ? err : "");
    int n = 0;
    double prev = 2, worst = 0;
    float *v = malloc(sizeof(float) * g_dim);
    for (char *line = out ? strtok(out, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        CHECK(o != NULL);
        if (!o) continue;
        double s = cJSON_GetObjectItem(o, "score")->valuedouble;
        const char *p = cJSON_GetObjectItem(o, "path")->valuestring;
        CHECK_EQ_INT(jint(o, "rank"), n + 1);
        CHECK_MSG(s <= prev + 1e-9, "rank %d score %.6f after %.6f", n + 1, s, prev);
        prev = s;
        if (embed_file(p, v) == 0) {
            double ex = dotf(q, v), e = fabs(ex - s);
            if (e > worst) worst = e;
            CHECK_MSG(e <= TOL_SCORE, "%s: score %.6f vs cosine %.6f", p, s, ex);
        } else {
            CHECK_MSG(0, "cannot embed %s", p);
        }
        cJSON_Delete(o);
        n++;
    }
    if (expect_n >= 0) CHECK_EQ_INT(n, expect_n);
    fprintf(stderr, "  search %.60s: %d results, worst |score - cosine| %.2e\n", args, n, worst);
    free(v), free(out), free(err);
    return n;
}

static void path_of(char *buf, size_t n, const char *dir, const char *name) { snprintf(buf, n, "%s/%s/%s", g_tmp, dir, name); }

int main(void) {
    snprintf(g_tmp, sizeof g_tmp, "/tmp/glimpse_album_XXXXXX");
    if (!mkdtemp(g_tmp)) return fprintf(stderr, "mkdtemp failed\n"), 1;
    snprintf(g_db, sizeof g_db, "%s/store/index.db", g_tmp); /* folder created by index */
    snprintf(g_model, sizeof g_model, "%s/model", g_tmp);
    snprintf(g_vocab, sizeof g_vocab, "%s/../shared/data/clip/bpe_simple_vocab_16e6.txt.gz", GLIMPSE_SOURCE_DIR);
    struct stat st;
    int have_vocab = stat(g_vocab, &st) == 0;
    char line[4096];
    /* $GLIMPSE_GEN overrides the generator (e.g. a release one next to a sanitizer build) */
    const char *gen = getenv("GLIMPSE_GEN") ? getenv("GLIMPSE_GEN") : GLIMPSE_GEN;
    snprintf(line, sizeof line, "'%s' mobileclip2-tiny '%s' %s%s%s >/dev/null", gen, g_model,
             have_vocab ? "--clip-vocab '" : "", have_vocab ? g_vocab : "", have_vocab ? "'" : "");
    if (system(line) != 0) return fprintf(stderr, "glimpse-gen failed: %s\n", line), 1;
    if (!have_vocab) fprintf(stderr, "test_album: %s missing: text queries not tested\n", g_vocab);
    char errbuf[512];
    CHECK(glimpse_model_open(g_model, NULL, &g_m, errbuf, sizeof errbuf) == 0);
    glimpse_ctx_params cp = glimpse_ctx_default_params();
    CHECK(glimpse_ctx_new(g_m, &cp, &g_c) == 0);
    g_dim = glimpse_embed_dim(g_m);

    /* ---- a folder: 8 photos (PNG + JPEG, a subfolder), 3 bad files, 1 excluded */
    char p[1024], p2[1024];
    snprintf(p, sizeof p, "%s/photos/sub", g_tmp);
    snprintf(line, sizeof line, "mkdir -p '%s' '%s/photos/skipme'", p, g_tmp);
    CHECK(system(line) == 0);
    for (int i = 0; i < 8; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%d.%s", i < 2 ? "sub/" : "", i, i % 2 ? "jpg" : "png");
        path_of(p, sizeof p, "photos", name);
        CHECK((i % 2 ? write_jpeg : write_png)(p, 96 + 16 * i, 80 + 8 * i, (uint64_t)i) == 0);
    }
    path_of(p, sizeof p, "photos", "skipme/x.png");
    write_png(p, 64, 64, 99);
    path_of(p, sizeof p, "photos", "notes.jpg");
    write_bytes(p, "this is not an image\n", 21);
    path_of(p, sizeof p, "photos", "truncated.jpg");
    write_jpeg(p, 120, 90, 42);
    {
        size_t n;
        char *b = slurp(p, &n);
        write_bytes(p, b, n / 2);
        free(b);
    }
    path_of(p, sizeof p, "photos", "random.png");
    {
        unsigned char junk[300];
        uint64_t s = 5;
        for (int i = 0; i < 300; i++) junk[i] = (unsigned char)t_rand_u64(&s);
        memcpy(junk, "\x89PNG\r\n\x1a\n", 8); /* a PNG signature then garbage */
        write_bytes(p, junk, sizeof junk);
    }
    path_of(p, sizeof p, "photos", "readme.txt"); /* not an image extension: ignored silently */
    write_bytes(p, "hello", 5);

    fprintf(stderr, "test_album: first index\n");
    char *out = NULL, *err = NULL;
    int rc = cli(&out, &err, "index '%s/photos' --db '%s' -m '%s' %s%s%s --exclude 'skip*' --progress json --batch 3 -t 2",
                 g_tmp, g_db, g_model, have_vocab ? "--vocab '" : "", have_vocab ? g_vocab : "", have_vocab ? "'" : "");
    CHECK_MSG(rc == 0, "index: %s", err);
    cJSON *d = done_event(out);
    CHECK(d != NULL);
    CHECK_EQ_INT(jint(d, "embedded"), 8);
    CHECK_EQ_INT(jint(d, "skipped"), 3);
    CHECK_EQ_INT(jint(d, "new"), 11);
    CHECK_EQ_INT(count_lines(err, "warning: skipped"), 3);
    CHECK(strstr(err, "notes.jpg") && strstr(err, "truncated.jpg") && strstr(err, "random.png"));
    CHECK(out && strstr(out, "\"event\":\"progress\""));
    cJSON_Delete(d);
    free(out), free(err);
    CHECK_EQ_INT(db_count("SELECT count(*) FROM images"), 8);
    CHECK_EQ_INT(db_count("SELECT count(*) FROM images WHERE path LIKE '%skipme%'"), 0);
    CHECK_EQ_INT(db_count("SELECT count(DISTINCT hash) FROM images"), 8);
    CHECK_EQ_INT(db_count("SELECT count(*) FROM images WHERE length(embedding) != 2 * (SELECT value FROM meta WHERE key = 'dim')"), 0);
    CHECK_EQ_INT(db_count("SELECT width FROM images WHERE path LIKE '%/7.jpg'"), 96 + 16 * 7);
    CHECK_EQ_INT(db_count("SELECT height FROM images WHERE path LIKE '%/7.jpg'"), 80 + 8 * 7);

    /* ---- search by example, by text, by a weighted mix */
    float *q = malloc(sizeof(float) * g_dim), *e1 = malloc(sizeof(float) * g_dim), *e2 = malloc(sizeof(float) * g_dim);
    path_of(p, sizeof p, "photos", "3.jpg");
    CHECK(embed_file(p, q) == 0);
    check_search(q, 8, "'%s'", p);
    check_search(q, 3, "--image '%s' -k 3", p);
    if (have_vocab) {
        CHECK(embed_text("a dog on the beach at sunset", q) == 0);
        check_search(q, 8, "'a dog on the beach at sunset'");
        /* "2:golden retriever" + 3.jpg - "people" = normalise(2 t1 + i - t2) */
        CHECK(embed_text("golden retriever", q) == 0);
        CHECK(embed_text("people", e2) == 0);
        CHECK(embed_file(p, e1) == 0);
        double nrm = 0;
        for (int i = 0; i < g_dim; i++) q[i] = 2 * q[i] + e1[i] - e2[i], nrm += (double)q[i] * q[i];
        for (int i = 0; i < g_dim; i++) q[i] = (float)(q[i] / sqrt(nrm));
        check_search(q, 8, "'2:golden retriever' + '%s' - people", p);
        check_search(q, 8, "'2:golden retriever + %s - people'", p);
    }
    /* --min-score keeps only results at or above it */
    {
        path_of(p, sizeof p, "photos", "3.jpg");
        cli(&out, &err, "search --db '%s' --json -k 100 --min-score 0.99999 '%s'", g_db, p);
        CHECK(out && strstr(out, "3.jpg"));
        char *o2 = NULL;
        cli(&o2, NULL, "search --db '%s' --json -k 100 '%s'", g_db, p);
        CHECK(count_lines(out, "\"rank\"") <= count_lines(o2, "\"rank\""));
        free(out), free(err), free(o2);
    }
    /* --html writes a page with one inline JPEG per result */
    {
        snprintf(p2, sizeof p2, "%s/g.html", g_tmp);
        CHECK(cli(NULL, NULL, "search --db '%s' -k 5 --html '%s' '%s'", g_db, p2, p) == 0);
        char *h = slurp(p2, NULL);
        CHECK(h && count_lines(h, "data:image/jpeg;base64,/9j/") == 5);
        free(h);
    }

    /* ---- incremental: modify 0.png, delete 2.png, rename 4.png, touch 5.jpg, add 8.png */
    path_of(p, sizeof p, "photos", "sub/0.png");
    write_png(p, 96, 80, 1000); /* new content */
    path_of(p, sizeof p, "photos", "2.png");
    CHECK(unlink(p) == 0);
    path_of(p, sizeof p, "photos", "4.png");
    path_of(p2, sizeof p2, "photos", "sub/renamed.png");
    CHECK(rename(p, p2) == 0);
    path_of(p, sizeof p, "photos", "5.jpg");
    struct timespec ts[2] = {{1600000000, 0}, {1600000000, 0}};
    CHECK(utimensat(AT_FDCWD, p, ts, 0) == 0);
    path_of(p, sizeof p, "photos", "8.png");
    write_png(p, 100, 100, 8);
    path_of(p, sizeof p, "photos", "notes.jpg");
    unlink(p); /* one bad file fewer */
    fprintf(stderr, "test_album: re-index after changes\n");
    rc = cli(&out, &err, "index '%s/photos' --db '%s' --exclude 'skip*' --progress json", g_tmp, g_db);
    CHECK_MSG(rc == 0, "re-index: %s", err);
    d = done_event(out);
    CHECK(d != NULL);
    CHECK_EQ_INT(jint(d, "embedded"), 2);  /* 0.png (modified) and 8.png (new) */
    CHECK_EQ_INT(jint(d, "reused"), 2);    /* renamed.png (moved) and 5.jpg (touched, same bytes) */
    CHECK_EQ_INT(jint(d, "removed"), 2);   /* 2.png and the old 4.png path */
    CHECK_EQ_INT(jint(d, "unchanged"), 4); /* 1, 3, 6, 7 */
    CHECK_EQ_INT(jint(d, "skipped"), 2);   /* truncated.jpg, random.png: failed before, unchanged */
    CHECK_EQ_INT(jint(d, "known_bad"), 2);
    CHECK_EQ_INT(count_lines(err, "warning"), 0); /* one warning per bad file, not one per run */
    cJSON_Delete(d);
    free(out), free(err);
    CHECK_EQ_INT(db_count("SELECT count(*) FROM images"), 8);
    CHECK_EQ_INT(db_count("SELECT count(*) FROM images WHERE path LIKE '%/2.png' OR path LIKE '%/4.png'"), 0);
    CHECK_EQ_INT(db_count("SELECT count(*) FROM images WHERE path LIKE '%/sub/renamed.png'"), 1);
    CHECK_EQ_INT(db_count("SELECT mtime_ns FROM images WHERE path LIKE '%/5.jpg'"), 1600000000ll * 1000000000ll);
    /* the moved file's vector is the one its bytes give */
    path_of(p, sizeof p, "photos", "sub/renamed.png");
    CHECK(embed_file(p, q) == 0);
    check_search(q, 8, "'%s'", p);
    /* nothing changed: nothing embedded, nothing read */
    rc = cli(&out, &err, "index '%s/photos' --db '%s' --exclude 'skip*' --progress json", g_tmp, g_db);
    d = done_event(out);
    CHECK(d && jint(d, "embedded") == 0 && jint(d, "unchanged") == 8 && jint(d, "removed") == 0);
    cJSON_Delete(d);
    free(out), free(err);

    /* ---- dupes: a byte copy and its original form a group */
    path_of(p, sizeof p, "photos", "7.jpg");
    path_of(p2, sizeof p2, "photos", "copy_of_7.jpg");
    {
        size_t n;
        char *b = slurp(p, &n);
        write_bytes(p2, b, n);
        free(b);
    }
    rc = cli(&out, &err, "index '%s/photos' --db '%s' --exclude 'skip*' --progress json", g_tmp, g_db);
    d = done_event(out);
    CHECK(d && jint(d, "embedded") == 0 && jint(d, "reused") == 1);
    cJSON_Delete(d);
    free(out), free(err);
    rc = cli(&out, &err, "dupes --db '%s' --threshold 0.9995 --json", g_db);
    CHECK_EQ_INT(rc, 0);
    {
        int found = 0;
        for (char *l = out ? strtok(out, "\n") : NULL; l; l = strtok(NULL, "\n")) {
            if (strstr(l, "/photos/7.jpg\"") && strstr(l, "copy_of_7.jpg")) found = 1;
        }
        CHECK_MSG(found, "copy not grouped with its original");
    }
    free(out), free(err);

    /* ---- a different model re-embeds everything (vectors are never mixed) */
    snprintf(p, sizeof p, "%s/model2", g_tmp);
    snprintf(line, sizeof line, "'%s' mobileclip2-tiny '%s' --seed 7 %s%s%s >/dev/null", gen, p,
             have_vocab ? "--clip-vocab '" : "", have_vocab ? g_vocab : "", have_vocab ? "'" : "");
    CHECK(system(line) == 0);
    rc = cli(&out, &err, "index '%s/photos' --db '%s' -m '%s' --exclude 'skip*' --progress json", g_tmp, g_db, p);
    d = done_event(out);
    CHECK(d && jint(d, "embedded") == 9);
    CHECK(err && strstr(err, "re-embedding everything"));
    cJSON_Delete(d);
    free(out), free(err);
    CHECK_EQ_INT(db_count("SELECT count(DISTINCT model) FROM images"), 1);
    /* search now refuses the old model */
    CHECK(cli(NULL, NULL, "search --db '%s' -m '%s' x.png", g_db, g_model) != 0);

    /* ---- kill -9 in the middle of a run, then re-run */
    const int NK = 160;
    snprintf(p, sizeof p, "%s/many", g_tmp);
    mkdir(p, 0755);
    for (int i = 0; i < NK; i++) {
        snprintf(p2, sizeof p2, "%s/many/m%03d.jpg", g_tmp, i);
        write_jpeg(p2, 200, 150, 500 + (uint64_t)i);
    }
    snprintf(g_db, sizeof g_db, "%s/kill.db", g_tmp);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1), dup2(fd, 2);
        execl(GLIMPSE_CLI, "glimpse", "index", p, "--db", g_db, "-m", g_model, "--batch", "4", "-t", "1",
              "--progress", "none", (char *)NULL);
        _exit(127);
    }
    int64_t at_kill = 0;
    for (int spin = 0; spin < 20000; spin++) { /* up to ~20 s */
        struct timespec nap = {0, 1000000};
        nanosleep(&nap, NULL);
        if (spin % 5) continue;
        int64_t c = db_count("SELECT count(*) FROM images");
        if (c >= 12) {
            /* a search while the index run is mid-write (stopped, most likely inside a batch's
             * write transaction) works and sees the committed rows: WAL readers */
            kill(pid, SIGSTOP);
            char *so = NULL;
            CHECK(cli(&so, NULL, "search --db '%s' --json -k 1000 -t 1 '%s/many/m000.jpg'", g_db, g_tmp) == 0);
            CHECK(count_lines(so, "\"rank\"") >= c);
            free(so);
            at_kill = db_count("SELECT count(*) FROM images");
            break;
        }
        int wst;
        if (waitpid(pid, &wst, WNOHANG) == pid) { pid = 0; break; }
    }
    if (pid > 0) {
        kill(pid, SIGKILL); /* also ends a stopped process */
        waitpid(pid, NULL, 0);
    }
    int64_t after_kill = db_count("SELECT count(*) FROM images");
    fprintf(stderr, "test_album: kill -9 with %lld rows seen, %lld rows after the kill (of %d)\n", (long long)at_kill,
            (long long)after_kill, NK);
    CHECK_MSG(after_kill < NK, "the run finished before the kill: make the folder larger");
    CHECK(after_kill >= at_kill); /* nothing committed was lost */
    rc = cli(&out, &err, "index '%s' --db '%s' --progress json", p, g_db);
    CHECK_MSG(rc == 0, "re-run: %s", err);
    d = done_event(out);
    CHECK(d && jint(d, "embedded") == NK - after_kill && jint(d, "unchanged") == after_kill);
    cJSON_Delete(d);
    free(out), free(err);
    CHECK_EQ_INT(db_count("SELECT count(*) FROM images"), NK);
    CHECK_EQ_INT(db_count("SELECT count(DISTINCT path) FROM images"), NK);

    free(q), free(e1), free(e2);
    glimpse_ctx_free(g_c);
    glimpse_model_close(g_m);
    snprintf(line, sizeof line, "rm -rf '%s'", g_tmp);
    if (!t_failures && system(line) != 0) fprintf(stderr, "could not remove %s\n", g_tmp);
    TEST_DONE();
}
