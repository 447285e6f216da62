/* test_io_bad.c — hostile and broken weight files: every truncation, random bit flips, hand-made
 * bad headers and pickles, and allocation failures. Each must give an error (or, for flips that
 * happen to keep a file valid, a usable result) and never crash, leak or read out of bounds:
 * run it under -DGLIMPSE_SANITIZE=ON too. Seed printed below. */
#define _GNU_SOURCE /* memmem */
#include "io/gguf.h"
#include "io/pickle.h"
#include "io/weights.h"
#include "io_util.h"
#include "test.h"

#define SEED 0x5eedf00dull

static char g_tmp[256];
static volatile uint8_t g_sink;

/* Writes bytes to a temp file and opens it; on success reads every tensor byte. */
static int open_bytes(const void *p, size_t n, const char *suffix, gl_err *err) {
    tio_write(tio_tmp(g_tmp, sizeof g_tmp, suffix), p, n);
    gl_weights *w;
    int rc = gl_weights_open(g_tmp, &w, err);
    if (rc) return rc;
    uint8_t acc = 0;
    for (size_t i = 0; i < gl_weights_count(w); i++) {
        const gl_tensor *t = gl_weights_at(w, i);
        for (size_t k = 0; k < t->nbytes; k++) acc ^= ((const uint8_t *)t->data)[k];
    }
    g_sink = acc;
    gl_weights_close(w);
    return 0;
}

/* Every strict prefix shorter than `valid_len` must fail cleanly. */
static void truncations(const char *name, const unsigned char *b, size_t n, size_t valid_len, const char *suffix) {
    gl_err err;
    int unexpected_ok = 0;
    for (size_t len = 0; len < valid_len; len++)
        if (open_bytes(b, len, suffix, &err) == 0) unexpected_ok++;
    CHECK_MSG(unexpected_ok == 0, "%s: %d truncations opened", name, unexpected_ok);
    CHECK_MSG(open_bytes(b, n, suffix, &err) == 0, "%s: whole file fails: %s", name, err.msg);
}

static void bitflips(const char *name, const unsigned char *b, size_t n, const char *suffix, int rounds) {
    uint64_t s = SEED;
    unsigned char *c = malloc(n);
    gl_err err;
    int fails = 0;
    for (int r = 0; r < rounds; r++) {
        memcpy(c, b, n);
        int k = 1 + (int)(t_rand_u64(&s) % 4);
        for (int i = 0; i < k; i++) c[t_rand_u64(&s) % n] ^= (unsigned char)(1u << (t_rand_u64(&s) % 8));
        fails += open_bytes(c, n, suffix, &err) != 0;
    }
    fprintf(stderr, "%s: %d/%d flipped files rejected\n", name, fails, rounds);
    free(c);
}

static void fixture_file(const char *file, const char *suffix, int rounds) {
    size_t n;
    char path[512];
    snprintf(path, sizeof path, IO_FIX "%s", file);
    unsigned char *b = tio_read(path, &n);
    CHECK_MSG(b != NULL, "%s", path);
    if (!b) return;
    truncations(file, b, n, n, suffix);
    bitflips(file, b, n, suffix, rounds);
    free(b);
}

/* ---- safetensors headers ---- */
static int st_header(const char *json, size_t data_len, gl_err *err) {
    size_t hl = strlen(json), n = 8 + hl + data_len;
    unsigned char *b = calloc(1, n);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, json, hl);
    int rc = open_bytes(b, n, ".safetensors", err);
    free(b);
    return rc;
}

static void test_safetensors_headers(void) {
    gl_err err;
    struct { const char *json; size_t data; int code; const char *msg; } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, NULL},
        {"{\"__metadata__\":{\"x\":\"y\"},\"a\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[0,2]}}", 2, 0, NULL},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[0,0]}}", 0, 0, NULL},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, GLIMPSE_ERR_FORMAT, "JSON"},
        {"[1,2]", 0, GLIMPSE_ERR_FORMAT, "object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 8, GLIMPSE_ERR_FORMAT, "'a'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, GLIMPSE_ERR_FORMAT, "'a'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, GLIMPSE_ERR_FORMAT, "needs"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, GLIMPSE_ERR_FORMAT, "overlap"},
        {"{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, GLIMPSE_ERR_UNSUPPORTED, "F8_E4M3"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, GLIMPSE_ERR_FORMAT, "dims"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, GLIMPSE_ERR_FORMAT, "dimension"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4, GLIMPSE_ERR_FORMAT, "dimension"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
         GLIMPSE_ERR_FORMAT, "too large"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, GLIMPSE_ERR_FORMAT, "duplicate"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, GLIMPSE_ERR_FORMAT, "data_offsets"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,1e300]}}", 4, GLIMPSE_ERR_FORMAT, "data_offsets"},
        {"{\"a\":{\"dtype\":3,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, GLIMPSE_ERR_FORMAT, "'a'"},
        {"{\"a\":5}", 0, GLIMPSE_ERR_FORMAT, "'a'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} xx", 4, GLIMPSE_ERR_FORMAT, "after"},
    };
    for (size_t i = 0; i < GL_ARRAY_LEN(cases); i++) {
        int rc = st_header(cases[i].json, cases[i].data, &err);
        CHECK_MSG(rc == cases[i].code, "case %zu: rc %d (%s)", i, rc, rc ? err.msg : "");
        if (rc && cases[i].msg) {
            CHECK_MSG(strstr(err.msg, cases[i].msg) && strstr(err.msg, "glimpse_io_"), "case %zu: '%s'", i, err.msg);
        }
    }
    /* header length beyond the file, and an 8-byte file whose length field is huge */
    unsigned char b[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    CHECK(open_bytes(b, 10, ".safetensors", &err) == GLIMPSE_ERR_FORMAT && strstr(err.msg, "beyond"));
    b[0] = 2, memset(b + 1, 0, 7);
    CHECK(open_bytes(b, 10, ".safetensors", &err) == 0); /* "{}": no tensors, valid */
    CHECK(open_bytes(b, 5, ".safetensors", &err) == GLIMPSE_ERR_FORMAT);
}

/* ---- GGUF ---- */
static size_t g_gguf_len, g_gguf_valid;
static unsigned char *g_gguf;

static void make_gguf(void) {
    io_gguf_writer *gw = io_gguf_writer_new(0);
    float f[6] = {1, 2, 3, 4, 5, 6};
    const char *toks[2] = {"a", "bc"};
    io_gguf_writer_set_str(gw, "general.architecture", "test");
    io_gguf_writer_set_arr_str(gw, "tokenizer.ggml.tokens", toks, 2);
    io_gguf_writer_set_int(gw, "n", IO_GGUF_U32, 7);
    io_gguf_writer_add_tensor(gw, "x", GL_F32, 2, (int64_t[]){2, 3}, f, sizeof f);
    io_gguf_writer_add_tensor(gw, "y", GL_F16, 1, (int64_t[]){2}, f, 4);
    gl_err err;
    CHECK(io_gguf_writer_write(gw, tio_tmp(g_tmp, sizeof g_tmp, ".gguf"), &err) == 0);
    io_gguf_writer_free(gw);
    g_gguf = tio_read(g_tmp, &g_gguf_len);
    io_gguf *g;
    CHECK(io_gguf_parse(g_gguf, g_gguf_len, "t", &g, &err) == 0);
    g_gguf_valid = (size_t)(g->data_offset + g->tensors[1].offset + g->tensors[1].nbytes);
    io_gguf_free(g);
}

static void put64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void test_gguf_bad(void) {
    gl_err err;
    make_gguf();
    truncations("gguf", g_gguf, g_gguf_len, g_gguf_valid, ".gguf");
    bitflips("gguf", g_gguf, g_gguf_len, ".gguf", 800);
    unsigned char *c = malloc(g_gguf_len);
    io_gguf *g;
    memcpy(c, g_gguf, g_gguf_len), c[0] = 'X';
    CHECK(open_bytes(c, g_gguf_len, ".gguf", &err) == GLIMPSE_ERR_FORMAT);
    CHECK(io_gguf_parse(c, g_gguf_len, "t", &g, &err) == GLIMPSE_ERR_FORMAT && strstr(err.msg, "magic"));
    memcpy(c, g_gguf, g_gguf_len), c[4] = 4;
    CHECK(open_bytes(c, g_gguf_len, ".gguf", &err) == GLIMPSE_ERR_UNSUPPORTED && strstr(err.msg, "version"));
    memcpy(c, g_gguf, g_gguf_len), put64(c + 8, 1ull << 60);
    CHECK(open_bytes(c, g_gguf_len, ".gguf", &err) == GLIMPSE_ERR_FORMAT);
    memcpy(c, g_gguf, g_gguf_len), put64(c + 16, 1ull << 62);
    CHECK(open_bytes(c, g_gguf_len, ".gguf", &err) == GLIMPSE_ERR_FORMAT);
    /* Tensor info fields, found by parsing the good file: the last tensor's type and offset. */
    io_gguf_parse(g_gguf, g_gguf_len, "t", &g, &err);
    size_t ti_end = (size_t)g->data_offset; /* infos end at or before the data section */
    (void)ti_end;
    io_gguf_free(g);
    /* locate "y" info: name len 1, 'y', n_dims 1, ne 2, type 1, offset */
    size_t at = 0;
    for (size_t i = 24; i + 9 < g_gguf_len; i++)
        if (c[i] == 1 && !memcmp(c + i + 1, "\0\0\0\0\0\0\0y", 8)) at = i + 9;
    CHECK(at != 0);
    if (at) {
        memcpy(c, g_gguf, g_gguf_len), c[at + 12] = 99; /* unknown ggml type */
        CHECK(open_bytes(c, g_gguf_len, ".gguf", &err) == GLIMPSE_ERR_UNSUPPORTED && strstr(err.msg, "'y'"));
        memcpy(c, g_gguf, g_gguf_len), put64(c + at + 16, 4); /* misaligned offset */
        CHECK(open_bytes(c, g_gguf_len, ".gguf", &err) == GLIMPSE_ERR_FORMAT && strstr(err.msg, "aligned"));
        memcpy(c, g_gguf, g_gguf_len), put64(c + at + 16, 0); /* overlaps x */
        CHECK(open_bytes(c, g_gguf_len, ".gguf", &err) == GLIMPSE_ERR_FORMAT && strstr(err.msg, "overlap"));
        memcpy(c, g_gguf, g_gguf_len), put64(c + at + 16, 1ull << 40);
        CHECK(open_bytes(c, g_gguf_len, ".gguf", &err) == GLIMPSE_ERR_FORMAT);
        memcpy(c, g_gguf, g_gguf_len), put64(c + at + 4, 1ull << 62); /* ne[0] huge */
        CHECK(open_bytes(c, g_gguf_len, ".gguf", &err) == GLIMPSE_ERR_FORMAT);
        memcpy(c, g_gguf, g_gguf_len), c[at] = 9; /* 9 dims */
        CHECK(open_bytes(c, g_gguf_len, ".gguf", &err) == GLIMPSE_ERR_FORMAT);
    }
    free(c);
}

/* ---- pickles ---- */
static int pk(const void *b, size_t n) {
    io_pickle *p = NULL;
    const io_pk_val *root;
    gl_err err;
    int rc = io_pickle_load(b, n, "t.pt", &p, &root, &err);
    io_pickle_free(p);
    return rc;
}

/* A one-tensor checkpoint: {"w": _rebuild_tensor_v2(storage(key, numel), off, (size,), (stride,), ...)}. */
static size_t tensor_pickle(unsigned char *o, const char *key, int numel, int off, int size, int stride) {
    unsigned char *p = o;
#define S(s) (memcpy(p, s, sizeof s - 1), p += sizeof s - 1)
#define I(v) (*p++ = 'J', tio_put_le(&p, (uint64_t)(uint32_t)(int32_t)(v), 4))
    S("\x80\x02}(X\x01\x00\x00\x00w");
    S("ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n");
    *p++ = 'X', tio_put_le(&p, strlen(key), 4), memcpy(p, key, strlen(key)), p += strlen(key);
    S("X\x03\x00\x00\x00" "cpu"), I(numel), S("tQ"), I(off), I(size), S("\x85"), I(stride), S("\x85");
    S("\x89" "ccollections\nOrderedDict\n)R" "tRu.");
#undef S
#undef I
    return (size_t)(p - o);
}

static int pt_zip(const void *pkl, size_t pkl_len, const char *key, size_t data_len, gl_err *err) {
    static unsigned char zip[8192], data[1024];
    char dname[64];
    snprintf(dname, sizeof dname, "archive/data/%s", key);
    const char *names[3] = {"archive/data.pkl", dname, "archive/version"};
    const void *datas[3] = {pkl, data, "3\n"};
    size_t lens[3] = {pkl_len, data_len, 2};
    size_t n = tio_zip(zip, names, datas, lens, 3);
    return open_bytes(zip, n, ".pt", err);
}

static void test_pickles(void) {
    gl_err err;
    unsigned char b[512];
    size_t n;
    {   /* a big-endian checkpoint (torch >= 2.1 writes archive/byteorder) is refused */
        static unsigned char zip[4096], data[16];
        n = tensor_pickle(b, "0", 4, 0, 4, 1);
        const char *names[3] = {"archive/data.pkl", "archive/data/0", "archive/byteorder"};
        const void *datas[3] = {b, data, "big"};
        size_t lens[3] = {n, 16, 3};
        size_t zn = tio_zip(zip, names, datas, lens, 3);
        CHECK(open_bytes(zip, zn, ".pt", &err) == GLIMPSE_ERR_UNSUPPORTED && strstr(err.msg, "big-endian"));
        datas[2] = "little", lens[2] = 6;
        zn = tio_zip(zip, names, datas, lens, 3);
        CHECK(open_bytes(zip, zn, ".pt", &err) == 0);
    }
    /* well-formed, to show the builder is right, then each bound broken */
    n = tensor_pickle(b, "0", 4, 1, 3, 1);
    CHECK_MSG(pt_zip(b, n, "0", 16, &err) == 0, "%s", err.msg);
    n = tensor_pickle(b, "0", 4, 0, 2, 2); /* strided: copied */
    CHECK_MSG(pt_zip(b, n, "0", 16, &err) == 0, "%s", err.msg);
    n = tensor_pickle(b, "0", 4, 2, 3, 1);
    CHECK(pt_zip(b, n, "0", 16, &err) == GLIMPSE_ERR_FORMAT && strstr(err.msg, "'w'"));
    n = tensor_pickle(b, "0", 4, 0, 3, 2);
    CHECK(pt_zip(b, n, "0", 16, &err) == GLIMPSE_ERR_FORMAT);
    n = tensor_pickle(b, "0", 8, 0, 8, 1); /* storage claims more than the entry holds */
    CHECK(pt_zip(b, n, "0", 16, &err) == GLIMPSE_ERR_FORMAT && strstr(err.msg, "needs"));
    n = tensor_pickle(b, "1", 4, 0, 4, 1); /* no entry for key 1 */
    CHECK(pt_zip(b, n, "0", 16, &err) == GLIMPSE_ERR_FORMAT && strstr(err.msg, "no zip entry"));
    n = tensor_pickle(b, "0", 4, 0, 2, -1);
    CHECK(pt_zip(b, n, "0", 16, &err) == GLIMPSE_ERR_FORMAT);
    n = tensor_pickle(b, "0", 4, -1, 2, 1);
    CHECK(pt_zip(b, n, "0", 16, &err) == GLIMPSE_ERR_FORMAT);
    n = tensor_pickle(b, "0", 4, 0, 0x7fffffff, 0x7fffffff);
    CHECK(pt_zip(b, n, "0", 16, &err) == GLIMPSE_ERR_FORMAT);
    n = tensor_pickle(b, "0", -4, 0, 1, 1);
    CHECK(pt_zip(b, n, "0", 16, &err) == GLIMPSE_ERR_FORMAT);
    n = tensor_pickle(b, "../0", 4, 0, 1, 1);
    CHECK(pt_zip(b, n, "0", 16, &err) == GLIMPSE_ERR_FORMAT);
    /* a dict holding itself and no tensors: the search must end */
    static const char self[] = "\x80\x02}q\x00X\x01\x00\x00\x00" "ah\x00sX\x01\x00\x00\x00" "bh\x00s.";
    CHECK(pt_zip(self, sizeof self - 1, "0", 4, &err) == GLIMPSE_ERR_FORMAT && strstr(err.msg, "no dict"));
    /* a non-dict root */
    CHECK(pt_zip("\x80\x02K\x05.", 5, "0", 4, &err) == GLIMPSE_ERR_FORMAT);

    /* the interpreter on its own */
    CHECK(pk("", 0) == GLIMPSE_ERR_FORMAT);
    CHECK(pk(".", 1) == GLIMPSE_ERR_FORMAT);
    CHECK(pk("N.", 2) == 0);
    CHECK(pk("\xff", 1) == GLIMPSE_ERR_UNSUPPORTED);
    CHECK(pk("h\x05.", 3) == GLIMPSE_ERR_FORMAT);
    CHECK(pk("Nr\xff\xff\xff\xff.", 7) == GLIMPSE_ERR_FORMAT);
    CHECK(pk("Na.", 3) == GLIMPSE_ERR_FORMAT);
    CHECK(pk("}(Nu.", 5) == GLIMPSE_ERR_FORMAT);
    CHECK(pk("t.", 2) == GLIMPSE_ERR_FORMAT);
    CHECK(pk("(N.", 3) == 0); /* as CPython: STOP pops the top even with a MARK open */
    CHECK(pk("(.", 2) == GLIMPSE_ERR_FORMAT); /* but not past the MARK */
    CHECK(pk("]((e.", 5) == GLIMPSE_ERR_FORMAT); /* APPENDS target below another mark */
    CHECK(pk("X\xff\xff\xff\x7f", 5) == GLIMPSE_ERR_FORMAT);
    CHECK(pk("\x8a\x09\x00", 3) == GLIMPSE_ERR_FORMAT);
    CHECK(pk("\x8a\x02\xff\xff.", 5) == 0);
    CHECK(pk("ctorch\n", 7) == GLIMPSE_ERR_FORMAT);
    CHECK(pk("NNNR.", 5) == GLIMPSE_ERR_FORMAT); /* REDUCE args not a tuple */
    CHECK(pk("(X\x07\x00\x00\x00storageNNNNtQ.", 18) == GLIMPSE_ERR_FORMAT);
    {   /* a complex storage: fine in the pickle, refused when a returned tensor uses it */
        size_t m = tensor_pickle(b, "0", 4, 0, 4, 1);
        unsigned char *fs = memmem(b, m, "FloatStorage", 12);
        unsigned char c2[600];
        size_t pre = (size_t)(fs - b);
        memcpy(c2, b, pre);
        memcpy(c2 + pre, "ComplexFloatStorage", 19);
        memcpy(c2 + pre + 19, fs + 12, m - pre - 12);
        CHECK(pk(c2, m + 7) == 0);
        CHECK(pt_zip(c2, m + 7, "0", 32, &err) == GLIMPSE_ERR_UNSUPPORTED && strstr(err.msg, "'w'"));
    }
    CHECK(pk("]q\x00h\x00" "a.", 7) == 0);    /* a list containing itself */
    /* resource bounds: millions of marks, objects and memo slots end in an error, not OOM */
    size_t big = 3u << 20;
    unsigned char *m = malloc(big);
    memset(m, '(', big);
    CHECK(pk(m, big) == GLIMPSE_ERR_FORMAT);
    memset(m, ']', big);
    CHECK(pk(m, big) == GLIMPSE_ERR_FORMAT);
    m[0] = ']';
    for (size_t i = 1; i + 2 <= big; i += 2) m[i] = '2', m[i + 1] = 'a'; /* DUP APPEND: items grow */
    CHECK(pk(m, big) == GLIMPSE_ERR_FORMAT);
    free(m);
}

/* ---- allocation failures: each allocation in turn fails; no crash, no leak ---- */
static void alloc_failures(const char *path) {
    int fails = 0, n;
    for (n = 0; n < 2000; n++) {
        gl_weights *w;
        gl_err err;
        gl_alloc_fail_after(n);
        int rc = gl_weights_open(path, &w, &err);
        gl_alloc_fail_after(-1);
        if (rc == 0) {
            gl_weights_close(w);
            break;
        }
        fails++;
        CHECK_MSG(rc == GLIMPSE_ERR_NOMEM, "%s: alloc %d: rc %d %s", path, n, rc, err.msg);
    }
    CHECK_MSG(n < 2000 && fails > 3, "%s: %d", path, n);
}

int main(void) {
    fprintf(stderr, "seed 0x%llx\n", (unsigned long long)SEED);
    fixture_file("model.pt", ".pt", 800);
    fixture_file("nested.pt", ".pt", 300);
    fixture_file("deflate.pt", ".pt", 800);
    fixture_file("zip64.pt", ".pt", 300);
    fixture_file("model.safetensors", ".safetensors", 800);
    fixture_file("sharded/model-00002-of-00002.safetensors", ".safetensors", 300);
    test_safetensors_headers();
    test_gguf_bad();
    test_pickles();
    alloc_failures(IO_FIX "model.pt");
    alloc_failures(IO_FIX "deflate.pt");
    alloc_failures(IO_FIX "model.safetensors");
    alloc_failures(IO_FIX "sharded");
    tio_write(tio_tmp(g_tmp, sizeof g_tmp, ".gguf"), g_gguf, g_gguf_len);
    alloc_failures(g_tmp);
    free(g_gguf);
    remove(g_tmp);
    remove(tio_tmp(g_tmp, sizeof g_tmp, ".pt"));
    remove(tio_tmp(g_tmp, sizeof g_tmp, ".safetensors"));
    TEST_DONE();
}
