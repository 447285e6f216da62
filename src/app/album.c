/* album.c — the album's SQLite store, content hash and top-k (see album.h). */
#include "album.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *album_default_db_path(void) {
    const char *x = getenv("XDG_DATA_HOME"), *h = getenv("HOME");
    char buf[4096];
    if (x && x[0]) snprintf(buf, sizeof buf, "%s/glimpse/index.db", x);
    else if (h && h[0]) snprintf(buf, sizeof buf, "%s/.local/share/glimpse/index.db", h);
    else return NULL;
    return strdup(buf);
}

/* mkdir -p of the folder holding path */
static int make_parent(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf) return 0;
    *slash = 0;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) && errno != EEXIST) return -1;
    return 0;
}

int album_exec(sqlite3 *db, const char *sql, char *err, size_t errlen) {
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc && err) snprintf(err, errlen, "%s", msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return rc;
}

static const char *k_schema =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS images("
    " id INTEGER PRIMARY KEY,"
    " path TEXT NOT NULL UNIQUE,"
    " size INTEGER NOT NULL,"
    " mtime_ns INTEGER NOT NULL,"
    " hash INTEGER NOT NULL,"
    " width INTEGER NOT NULL,"
    " height INTEGER NOT NULL,"
    " model TEXT NOT NULL,"
    " embedding BLOB NOT NULL,"
    " indexed_at INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS images_hash ON images(hash);"
    /* files that failed to decode, so an unchanged bad file is not re-read and re-warned */
    "CREATE TABLE IF NOT EXISTS bad(path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
    " reason TEXT NOT NULL);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES('schema', '" ALBUM_SCHEMA "');";

int album_open(const char *path, int readonly, sqlite3 **out, char *err, size_t errlen) {
    sqlite3 *db = NULL;
    if (!readonly && make_parent(path)) {
        snprintf(err, errlen, "cannot create the folder for %s: %s", path, strerror(errno));
        return 1;
    }
    int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc) {
        snprintf(err, errlen, "%s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return 1;
    }
    /* an index run holds the write lock for a batch at a time; others wait rather than fail */
    sqlite3_busy_timeout(db, 10000);
    char msg[256];
    /* WAL: readers (search) never block the writer; synchronous=NORMAL keeps every committed
     * batch across a crash of the process (kill -9), only a power cut may lose the last ones. */
    if (!readonly && (album_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", msg, sizeof msg) ||
                      album_exec(db, k_schema, msg, sizeof msg))) {
        snprintf(err, errlen, "%s: %s", path, msg);
        sqlite3_close(db);
        return 1;
    }
    if (readonly) {
        sqlite3_stmt *st = NULL;
        rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM images", -1, &st, NULL);
        sqlite3_finalize(st);
        if (rc) {
            snprintf(err, errlen, "%s: not a glimpse album (%s)", path, sqlite3_errmsg(db));
            sqlite3_close(db);
            return 1;
        }
    }
    *out = db;
    return 0;
}

int album_meta_get(sqlite3 *db, const char *key, char *buf, size_t n) {
    sqlite3_stmt *st = NULL;
    int found = 0;
    buf[0] = 0;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL)) return 0;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        snprintf(buf, n, "%s", (const char *)sqlite3_column_text(st, 0));
        found = 1;
    }
    sqlite3_finalize(st);
    return found;
}

int album_meta_set(sqlite3 *db, const char *key, const char *value) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", -1, &st, NULL);
    if (rc) return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sqlite3_errcode(db);
    sqlite3_finalize(st);
    return rc;
}

uint64_t album_hash(const void *data, size_t size) {
    const uint64_t m = 0xc6a4a7935bd1e995ull;
    const int r = 47;
    const unsigned char *p = data;
    uint64_t h = 0x8445d61a4e774912ull ^ (size * m);
    size_t n8 = size / 8;
    for (size_t i = 0; i < n8; i++) {
        uint64_t k;
        memcpy(&k, p + 8 * i, 8);
        k *= m;
        k ^= k >> r;
        k *= m;
        h ^= k;
        h *= m;
    }
    uint64_t t = 0;
    for (size_t i = 0; i < (size & 7); i++) t |= (uint64_t)p[8 * n8 + i] << (8 * i);
    if (size & 7) {
        h ^= t;
        h *= m;
    }
    h ^= h >> r;
    h *= m;
    h ^= h >> r;
    return h;
}

int album_load(sqlite3 *db, album_vecs *out, char *err, size_t errlen) {
    album_vecs a = {0};
    char dim[32];
    album_meta_get(db, "dim", dim, sizeof dim);
    a.dim = atoi(dim);
    sqlite3_stmt *st = NULL;
    int64_t cap = 0;
    if (sqlite3_prepare_v2(db, "SELECT path, width, height, embedding FROM images ORDER BY id", -1, &st, NULL)) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        return 1;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int bytes = sqlite3_column_bytes(st, 3);
        if (a.dim <= 0 || bytes != 2 * a.dim) continue; /* a row from another width: never mixed */
        if (a.n == cap) {
            cap = cap ? 2 * cap : 1024;
            uint16_t *v = realloc(a.v, sizeof(uint16_t) * (size_t)cap * a.dim);
            char **p = realloc(a.paths, sizeof(char *) * (size_t)cap);
            int32_t *wh = realloc(a.wh, sizeof(int32_t) * 2 * (size_t)cap);
            if (v) a.v = v;
            if (p) a.paths = p;
            if (wh) a.wh = wh;
            if (!v || !p || !wh) {
                snprintf(err, errlen, "out of memory loading %lld vectors", (long long)cap);
                sqlite3_finalize(st);
                album_vecs_free(&a);
                return 1;
            }
        }
        memcpy(a.v + (size_t)a.n * a.dim, sqlite3_column_blob(st, 3), (size_t)bytes);
        a.paths[a.n] = strdup((const char *)sqlite3_column_text(st, 0));
        a.wh[2 * a.n] = sqlite3_column_int(st, 1);
        a.wh[2 * a.n + 1] = sqlite3_column_int(st, 2);
        a.n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(db));
        album_vecs_free(&a);
        return 1;
    }
    *out = a;
    return 0;
}

void album_vecs_free(album_vecs *a) {
    if (!a) return;
    for (int64_t i = 0; i < a->n; i++) free(a->paths[i]);
    free(a->paths);
    free(a->v);
    free(a->wh);
    memset(a, 0, sizeof *a);
}

/* heap order: "worse" = lower score, or equal score and higher index */
static int worse(const float *s, int64_t a, int64_t b) { return s[a] < s[b] || (s[a] == s[b] && a > b); }

int64_t album_topk(const float *s, int64_t n, int64_t k, int64_t *idx) {
    if (k > n) k = n;
    if (k <= 0) return 0;
    int64_t hn = 0;
    /* min-heap of the k best so far: the root is the worst of them */
    for (int64_t i = 0; i < n; i++) {
        int64_t c;
        if (hn < k) {
            c = hn++;
            while (c > 0 && worse(s, i, idx[(c - 1) / 2])) idx[c] = idx[(c - 1) / 2], c = (c - 1) / 2;
            idx[c] = i;
            continue;
        }
        if (!worse(s, idx[0], i)) continue;
        c = 0;
        for (;;) {
            int64_t l = 2 * c + 1, r = l + 1, m = -1;
            if (l < k && worse(s, idx[l], i)) m = l;
            if (r < k && worse(s, idx[r], m < 0 ? i : idx[l])) m = r;
            if (m < 0) break;
            idx[c] = idx[m], c = m;
        }
        idx[c] = i;
    }
    /* heap -> sorted best first: pop the worst to the back */
    for (int64_t end = k - 1; end > 0; end--) {
        int64_t t = idx[0];
        idx[0] = idx[end];
        idx[end] = t;
        int64_t c = 0, x = idx[0];
        for (;;) {
            int64_t l = 2 * c + 1, r = l + 1, m = -1;
            if (l < end && worse(s, idx[l], x)) m = l;
            if (r < end && worse(s, idx[r], m < 0 ? x : idx[l])) m = r;
            if (m < 0) break;
            idx[c] = idx[m], c = m;
        }
        idx[c] = x;
    }
    return k;
}
