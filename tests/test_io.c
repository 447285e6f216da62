/* test_io.c — every weights format reads the same tensors as torch wrote them.
 * Fixtures: tools/make_io_fixtures.py (torch 1.13); expected.json holds torch's values. GGUF is
 * written here by our writer and read back. */
#include <math.h>

#include "core/fp16.h"
#include "io/gguf.h"
#include "io/json.h"
#include "io/weights.h"
#include "io/weights_impl.h"
#include "io_util.h"
#include "test.h"

static cJSON *g_exp;

static bool in_maps(const gl_weights *w, const void *p) {
    for (size_t i = 0; i < w->n_maps; i++)
        if ((const uint8_t *)p >= w->maps[i].data && (const uint8_t *)p <= w->maps[i].data + w->maps[i].size) return true;
    return false;
}

/* Every expected tensor is present with torch's dtype, shape and values (exact: f16/bf16/i64
 * values are exactly representable as the floats expected.json holds). */
static void check_against_expected(const char *path, gl_weights_format fmt) {
    gl_err err = {0};
    gl_weights *w = NULL;
    int rc = gl_weights_open(path, &w, &err);
    CHECK_MSG(rc == 0, "%s: %s", path, err.msg);
    if (rc) return;
    CHECK_MSG(gl_weights_get_format(w) == fmt, "%s: format %d", path, gl_weights_get_format(w));
    CHECK_EQ_INT(gl_weights_count(w), cJSON_GetArraySize(g_exp));
    for (const cJSON *e = g_exp->child; e; e = e->next) {
        const gl_tensor *t = gl_weights_find(w, e->string);
        CHECK_MSG(t != NULL, "%s: missing %s", path, e->string);
        if (!t) continue;
        CHECK_MSG(!strcmp(gl_dtype_name(t->dtype), io_json_str(e, "dtype", "")), "%s: %s dtype %s", path, e->string,
                  gl_dtype_name(t->dtype));
        const cJSON *sh = cJSON_GetObjectItem(e, "shape");
        CHECK_EQ_INT(t->ndim, cJSON_GetArraySize(sh));
        for (int d = 0; d < t->ndim && d < cJSON_GetArraySize(sh); d++)
            CHECK_EQ_INT(t->shape[d], io_json_int(cJSON_GetArrayItem(sh, d), NULL, -1));
        const cJSON *vals = cJSON_GetObjectItem(e, "values");
        int64_t n = gl_tensor_numel(t);
        CHECK_EQ_INT(n, cJSON_GetArraySize(vals));
        CHECK_EQ_INT(t->nbytes, (size_t)n * gl_dtype_size(t->dtype));
        CHECK_MSG((uintptr_t)t->data % gl_dtype_size(t->dtype) == 0, "%s: %s misaligned", path, e->string);
        float *f = malloc(sizeof(float) * (size_t)(n + 1));
        CHECK(gl_tensor_to_f32(t, f, &err) == 0);
        int bad = 0;
        int64_t i = 0;
        for (const cJSON *v = vals->child; v && i < n; v = v->next, i++) bad += f[i] != (float)v->valuedouble;
        CHECK_MSG(bad == 0, "%s: %s: %d values differ", path, e->string, bad);
        if (t->ndim == 2 && t->shape[0] > 0 && t->shape[1] > 0) { /* row gathers (token embeddings) agree */
            int64_t R = t->shape[0], C = t->shape[1];
            int32_t rows[3] = {(int32_t)(R - 1), 0, (int32_t)(R / 2)};
            float *g = malloc(sizeof(float) * (size_t)(3 * C));
            CHECK(gl_tensor_rows_to_f32(t, rows, 3, g, &err) == 0);
            for (int r = 0; r < 3; r++)
                CHECK_MSG(!memcmp(g + r * C, f + rows[r] * C, sizeof(float) * (size_t)C), "%s: %s row %d", path,
                          e->string, rows[r]);
            free(g);
        }
        free(f);
    }
    /* Zero-copy where the stored layout allows it; strided .pt tensors are copies. */
    const gl_tensor *sl = gl_weights_find(w, "slice.weight"), *pr = gl_weights_find(w, "proj.weight");
    /* deflated entries are inflated copies; zip64.pt (re-zipped without torch's 64-byte padding)
     * has misaligned entries, which are copied too */
    if (sl && pr && !strstr(path, "deflate") && !strstr(path, "zip64")) {
        CHECK_MSG(in_maps(w, sl->data), "%s: slice.weight not a view", path);
        CHECK_MSG(in_maps(w, pr->data) == (fmt != GL_FMT_PYTORCH_ZIP), "%s: proj.weight view/copy", path);
    }
    CHECK(gl_weights_find(w, "nope") == NULL);
    CHECK(gl_weights_at(w, gl_weights_count(w)) == NULL);
    gl_weights_close(w);
}

static void test_formats(void) {
    check_against_expected(IO_FIX "model.pt", GL_FMT_PYTORCH_ZIP);
    check_against_expected(IO_FIX "nested.pt", GL_FMT_PYTORCH_ZIP);
    check_against_expected(IO_FIX "deflate.pt", GL_FMT_PYTORCH_ZIP);
    check_against_expected(IO_FIX "zip64.pt", GL_FMT_PYTORCH_ZIP);
    check_against_expected(IO_FIX "model.safetensors", GL_FMT_SAFETENSORS);
    check_against_expected(IO_FIX "sharded", GL_FMT_SAFETENSORS_SHARDED);
    check_against_expected(IO_FIX "ocdir", GL_FMT_SAFETENSORS);
    /* shared storages: shared.b is shared.a[2:] in the same zip entry */
    gl_weights *w;
    gl_err err;
    if (gl_weights_open(IO_FIX "model.pt", &w, &err) == 0) {
        const gl_tensor *a = gl_weights_find(w, "shared.a"), *b = gl_weights_find(w, "shared.b");
        CHECK(a && b && (const uint8_t *)b->data == (const uint8_t *)a->data + 8);
        gl_weights_close(w);
    }
    CHECK(gl_weights_open(IO_FIX "does-not-exist.pt", &w, &err) == GLIMPSE_ERR_IO);
    CHECK(strstr(err.msg, "does-not-exist.pt") != NULL);
    CHECK(gl_weights_open(GLIMPSE_SOURCE_DIR "/tests", &w, &err) == GLIMPSE_ERR_MISSING);
    w = NULL;
    CHECK(gl_weights_open(IO_FIX, &w, &err) == 0); /* a folder holding model.safetensors */
    if (w) gl_weights_close(w);
    CHECK(gl_weights_open(IO_FIX "expected.json", &w, &err) == GLIMPSE_ERR_FORMAT);
    CHECK(gl_weights_open("/dev/null", &w, &err) == GLIMPSE_ERR_IO);
    char tmp[256];
    tio_write(tio_tmp(tmp, sizeof tmp, ".pt"), "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.", 15);
    CHECK(gl_weights_open(tmp, &w, &err) == GLIMPSE_ERR_UNSUPPORTED && strstr(err.msg, "legacy"));
    remove(tmp);
}

/* GGUF: write every KV type and the tensors of expected.json (plus quantized blocks), read back. */
static void test_gguf_roundtrip(uint32_t align) {
    char path[256];
    tio_tmp(path, sizeof path, ".gguf");
    io_gguf_writer *gw = io_gguf_writer_new(align);
    CHECK(gw != NULL);
    CHECK(io_gguf_writer_set_str(gw, "general.architecture", "qwen2") == 0);
    CHECK(io_gguf_writer_set_str(gw, "general.architecture", "dup") == GLIMPSE_ERR_INVALID_ARG);
    CHECK(io_gguf_writer_set_int(gw, "u8", IO_GGUF_U8, 200) == 0);
    CHECK(io_gguf_writer_set_int(gw, "i8", IO_GGUF_I8, -100) == 0);
    CHECK(io_gguf_writer_set_int(gw, "u16", IO_GGUF_U16, 60000) == 0);
    CHECK(io_gguf_writer_set_int(gw, "i16", IO_GGUF_I16, -30000) == 0);
    CHECK(io_gguf_writer_set_int(gw, "u32", IO_GGUF_U32, 4000000000ll) == 0);
    CHECK(io_gguf_writer_set_int(gw, "i32", IO_GGUF_I32, -2000000000) == 0);
    CHECK(io_gguf_writer_set_int(gw, "u64", IO_GGUF_U64, 1ll << 50) == 0);
    CHECK(io_gguf_writer_set_int(gw, "i64", IO_GGUF_I64, -(1ll << 50)) == 0);
    CHECK(io_gguf_writer_set_int(gw, "b", IO_GGUF_BOOL, 1) == 0);
    CHECK(io_gguf_writer_set_float(gw, "f32", IO_GGUF_F32, 1e-6) == 0);
    CHECK(io_gguf_writer_set_float(gw, "f64", IO_GGUF_F64, 1e6 + 0.25) == 0);
    CHECK(io_gguf_writer_set_int(gw, "bad", IO_GGUF_F32, 1) == GLIMPSE_ERR_INVALID_ARG);
    int32_t arr[5] = {1, -2, 3, -4, 5};
    CHECK(io_gguf_writer_set_arr(gw, "arr.i32", IO_GGUF_I32, arr, 5) == 0);
    float farr[3] = {0.5f, -1.5f, 3.0f};
    CHECK(io_gguf_writer_set_arr(gw, "arr.f32", IO_GGUF_F32, farr, 3) == 0);
    const char *strs[4] = {"hello", "", "w\xc3\xb6rld", "<|im_end|>"};
    CHECK(io_gguf_writer_set_arr_str(gw, "tokenizer.ggml.tokens", strs, 4) == 0);

    gl_weights *src;
    gl_err err;
    CHECK(gl_weights_open(IO_FIX "model.safetensors", &src, &err) == 0);
    for (size_t i = 0; i < gl_weights_count(src); i++) {
        const gl_tensor *t = gl_weights_at(src, i);
        CHECK_MSG(io_gguf_writer_add_tensor(gw, t->name, t->dtype, t->ndim, t->shape, t->data, t->nbytes) == 0, "%s",
                  t->name);
    }
    uint8_t q8[2 * 34], q4[18];
    for (size_t i = 0; i < sizeof q8; i++) q8[i] = (uint8_t)(i * 7);
    for (size_t i = 0; i < sizeof q4; i++) q4[i] = (uint8_t)(i * 13);
    CHECK(io_gguf_writer_add_tensor(gw, "q8", GL_Q8_0, 2, (int64_t[]){2, 32}, q8, sizeof q8) == 0);
    CHECK(io_gguf_writer_add_tensor(gw, "q4", GL_Q4_0, 1, (int64_t[]){32}, q4, sizeof q4) == 0);
    CHECK(io_gguf_writer_add_tensor(gw, "q4b", GL_Q4_0, 1, (int64_t[]){16}, q4, 9) == GLIMPSE_ERR_INVALID_ARG);
    CHECK(io_gguf_writer_add_tensor(gw, "q8", GL_F32, 1, (int64_t[]){1}, farr, 4) == GLIMPSE_ERR_INVALID_ARG);
    CHECK(io_gguf_writer_add_tensor(gw, "sz", GL_F32, 1, (int64_t[]){2}, farr, 4) == GLIMPSE_ERR_INVALID_ARG);
    CHECK(io_gguf_writer_write(gw, path, &err) == 0);
    io_gguf_writer_free(gw);

    gl_weights *w;
    int rc = gl_weights_open(path, &w, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (!rc) {
        CHECK(gl_weights_get_format(w) == GL_FMT_GGUF);
        CHECK_EQ_INT(gl_weights_count(w), gl_weights_count(src) + 2);
        for (size_t i = 0; i < gl_weights_count(src); i++) {
            const gl_tensor *a = gl_weights_at(src, i), *b = gl_weights_find(w, a->name);
            CHECK_MSG(b && b->dtype == a->dtype && b->ndim == a->ndim && b->nbytes == a->nbytes &&
                          !memcmp(a->shape, b->shape, sizeof a->shape[0] * (size_t)a->ndim) &&
                          (!a->nbytes || !memcmp(a->data, b->data, a->nbytes)),
                      "%s differs", a->name);
            CHECK(b && ((uintptr_t)b->data - (uintptr_t)w->maps[0].data) % align == 0);
        }
        const gl_tensor *t = gl_weights_find(w, "q8");
        CHECK(t && t->dtype == GL_Q8_0 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 32 &&
              !memcmp(t->data, q8, sizeof q8));
        t = gl_weights_find(w, "q4");
        CHECK(t && t->dtype == GL_Q4_0 && t->nbytes == 18 && !memcmp(t->data, q4, 18));
        const io_gguf *g = gl_weights_gguf(w);
        CHECK(g && g->version == 3 && g->alignment == align);
        CHECK(!strcmp(io_gguf_get_str(g, "general.architecture", ""), "qwen2"));
        CHECK_EQ_INT(io_gguf_get_int(g, "u8", 0), 200);
        CHECK_EQ_INT(io_gguf_get_int(g, "i8", 0), -100);
        CHECK_EQ_INT(io_gguf_get_int(g, "u16", 0), 60000);
        CHECK_EQ_INT(io_gguf_get_int(g, "i16", 0), -30000);
        CHECK_EQ_INT(io_gguf_get_int(g, "u32", 0), 4000000000ll);
        CHECK_EQ_INT(io_gguf_get_int(g, "i32", 0), -2000000000);
        CHECK_EQ_INT(io_gguf_get_int(g, "u64", 0), 1ll << 50);
        CHECK_EQ_INT(io_gguf_get_int(g, "i64", 0), -(1ll << 50));
        CHECK_EQ_INT(io_gguf_get_int(g, "b", 0), 1);
        CHECK_EQ_INT(io_gguf_get_int(g, "missing", 42), 42);
        CHECK_EQ_INT(io_gguf_get_int(g, "general.architecture", 7), 7);
        CHECK_NEAR(io_gguf_get_float(g, "f32", 0), 1e-6, 1e-12);
        CHECK(io_gguf_get_float(g, "f64", 0) == 1e6 + 0.25);
        CHECK(io_gguf_get_str(g, "u8", NULL) == NULL);
        const io_gguf_kv *kv = io_gguf_find_kv(g, "arr.i32");
        CHECK(kv && kv->type == IO_GGUF_ARRAY && kv->arr_type == IO_GGUF_I32 && kv->n == 5);
        CHECK_EQ_INT(io_gguf_arr_int(kv, 3), -4);
        CHECK_EQ_INT(io_gguf_arr_int(kv, 5), 0);
        CHECK(io_gguf_arr_float(io_gguf_find_kv(g, "arr.f32"), 1) == -1.5);
        kv = io_gguf_find_kv(g, "tokenizer.ggml.tokens");
        CHECK(kv && kv->n == 4);
        for (int i = 0; i < 4; i++) {
            size_t len = 99;
            const char *s = io_gguf_arr_str(kv, (uint64_t)i, &len);
            CHECK(s && len == strlen(strs[i]) && !memcmp(s, strs[i], len));
        }
        CHECK(io_gguf_arr_str(kv, 4, NULL) == NULL);
        gl_weights_close(w);
    }
    gl_weights_close(src);
    remove(path);
}

/* A metadata-only GGUF (a tokenizer, say) need not pad its end. */
static void test_gguf_metadata_only(void) {
    char path[256];
    io_gguf_writer *gw = io_gguf_writer_new(0);
    io_gguf_writer_set_str(gw, "general.name", "abc");
    gl_err err;
    CHECK(io_gguf_writer_write(gw, tio_tmp(path, sizeof path, ".gguf"), &err) == 0);
    io_gguf_writer_free(gw);
    size_t n = 0;
    unsigned char *b = tio_read(path, &n);
    CHECK(n == 64); /* 24 header + 8+12 key + 4 type + 8+3 value = 59, padded to 64 */
    tio_write(path, b, 59);
    gl_weights *w = NULL;
    CHECK(gl_weights_open(path, &w, &err) == 0);
    if (w) {
        CHECK(gl_weights_count(w) == 0 && !strcmp(io_gguf_get_str(gl_weights_gguf(w), "general.name", ""), "abc"));
        gl_weights_close(w);
    }
    free(b);
    remove(path);
}

static void test_json(void) {
    const char *txt = "{\"a\": 3, \"b\": 2.5, \"s\": \"x\", \"t\": true, \"big\": 1e300,"
                      " \"v\": {\"layers\": [10, {\"dim\": 64}]}}  \n";
    cJSON *j;
    gl_err err;
    CHECK(io_json_parse(txt, strlen(txt), "t.json", &j, &err) == 0);
    CHECK_EQ_INT(io_json_int(j, "a", 0), 3);
    CHECK_EQ_INT(io_json_int(j, "b", -1), -1); /* not an integer */
    CHECK_EQ_INT(io_json_int(j, "big", -1), -1);
    CHECK(io_json_num(j, "b", 0) == 2.5);
    CHECK(!strcmp(io_json_str(j, "s", ""), "x"));
    CHECK(!strcmp(io_json_str(j, "a", "def"), "def"));
    CHECK(io_json_bool(j, "t", false) == true);
    CHECK(io_json_bool(j, "a", false) == false);
    CHECK_EQ_INT(io_json_int(io_json_path(j, "v.layers.1.dim"), NULL, 0), 64);
    CHECK_EQ_INT(io_json_int(io_json_path(j, "v.layers.0"), NULL, 0), 10);
    CHECK(io_json_path(j, "v.layers.2") == NULL);
    CHECK(io_json_path(j, "v.layers.x") == NULL);
    CHECK(io_json_path(j, "a.b") == NULL);
    CHECK(io_json_int(NULL, "a", 5) == 5);
    cJSON_Delete(j);
    CHECK(io_json_parse("{\"a\":1} x", 9, "t.json", &j, &err) == GLIMPSE_ERR_FORMAT);
    CHECK(io_json_parse("{\"a\":", 5, "t.json", &j, &err) == GLIMPSE_ERR_FORMAT);
    CHECK(strstr(err.msg, "t.json") != NULL);
    CHECK(io_json_load(IO_FIX "expected.json", 100, &j, &err) == GLIMPSE_ERR_TOO_LARGE);
}

int main(void) {
    gl_err err;
    if (io_json_load(IO_FIX "expected.json", IO_JSON_MAX_DEFAULT, &g_exp, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    test_formats();
    test_gguf_roundtrip(32);
    test_gguf_roundtrip(64);
    test_gguf_metadata_only();
    test_json();
    cJSON_Delete(g_exp);
    TEST_DONE();
}
