/* album.h — the photo album's store (glimpse index / search / dupes): one SQLite file in WAL
 * mode, one row per photo with its f16 embedding, plus a small key/value meta table that
 * records the model the vectors came from (old vectors are never mixed with a new model's).
 *
 *   images(id, path UNIQUE, size, mtime_ns, hash, width, height, model, embedding, indexed_at)
 *   meta(key, value): "model_id", "model_path", "vocab_path", "dim", "schema"
 *   bad(path, size, mtime_ns, reason): files that failed; skipped silently while unchanged
 *
 * path is absolute. hash is a 64-bit hash of the file's bytes (moves and copies are recognised
 * by it and reuse the stored vector). embedding is dim IEEE halves of the L2-normalised vector.
 * Readers (search) may run while an index run writes: WAL readers see the last commit. */
#ifndef GL_ALBUM_H
#define GL_ALBUM_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define ALBUM_SCHEMA "1"

/* The default store: $XDG_DATA_HOME/glimpse/index.db, else ~/.local/share/glimpse/index.db.
 * Returns a malloc'ed path (caller frees) or NULL when neither variable is set. */
char *album_default_db_path(void);

/* Opens (creating it and its parent folder if needed, unless readonly) the store at path, sets
 * WAL + busy timeout and creates the tables. Returns 0 or 1 with a message in err. */
int album_open(const char *path, int readonly, sqlite3 **out, char *err, size_t errlen);
/* meta value for key into buf (empty string when absent); returns 1 when present. */
int album_meta_get(sqlite3 *db, const char *key, char *buf, size_t n);
int album_meta_set(sqlite3 *db, const char *key, const char *value);
/* sqlite3_exec without callback; returns 0 or an SQLite code, message in err. */
int album_exec(sqlite3 *db, const char *sql, char *err, size_t errlen);

/* 64-bit hash of a buffer (MurmurHash64A-style mixing of 8-byte words): content identity for
 * move / copy detection, not cryptographic. */
uint64_t album_hash(const void *data, size_t size);

/* All vectors of the store, rows packed in id order. */
typedef struct album_vecs {
    int64_t n;
    int32_t dim;
    uint16_t *v;   /* [n][dim] halves */
    char **paths;  /* [n] malloc'ed strings */
    int32_t *wh;   /* [n][2] width, height */
} album_vecs;
int album_load(sqlite3 *db, album_vecs *out, char *err, size_t errlen);
void album_vecs_free(album_vecs *a);

/* The k best of scores (k <= n) as indices, best first; ties go to the lower index. Returns
 * the count written (min(k, n)). */
int64_t album_topk(const float *scores, int64_t n, int64_t k, int64_t *idx);

#endif
