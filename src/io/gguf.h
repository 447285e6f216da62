/* gguf.h — GGUF (v2/v3) metadata and tensor index, and a writer.
 *
 * Reading: gl_weights_open on a .gguf gives the tensors (shapes in PyTorch order: ggml's ne[]
 * reversed) and gl_weights_gguf(w) the metadata:
 *
 *   const io_gguf *g = gl_weights_gguf(w);
 *   int64_t n_layer = io_gguf_get_int(g, "qwen2.block_count", 0);
 *   const char *arch = io_gguf_get_str(g, "general.architecture", "");
 *   const io_gguf_kv *toks = io_gguf_find_kv(g, "tokenizer.ggml.tokens");  // array of strings
 *   for (uint64_t i = 0; toks && i < toks->n; i++) { size_t len; const char *s = io_gguf_arr_str(toks, i, &len); }
 *
 * Layout (github.com/ggml-org/ggml docs/gguf.md): magic "GGUF", u32 version, u64 tensor count,
 * u64 kv count, kvs (string key, u32 type, value), tensor infos (string name, u32 n_dims,
 * u64 ne[n_dims], u32 ggml type, u64 offset), padding to general.alignment (default 32), data.
 * Strings are u64 length + bytes. All little-endian. */
#ifndef IO_GGUF_H
#define IO_GGUF_H

#include "core/tensor.h"

typedef enum io_gguf_type {
    IO_GGUF_U8 = 0, IO_GGUF_I8 = 1, IO_GGUF_U16 = 2, IO_GGUF_I16 = 3, IO_GGUF_U32 = 4, IO_GGUF_I32 = 5,
    IO_GGUF_F32 = 6, IO_GGUF_BOOL = 7, IO_GGUF_STRING = 8, IO_GGUF_ARRAY = 9, IO_GGUF_U64 = 10,
    IO_GGUF_I64 = 11, IO_GGUF_F64 = 12, IO_GGUF_TYPE_COUNT
} io_gguf_type;

/* ggml tensor types this reader maps to gl_dtype (others are refused). */
enum { IO_GGML_F32 = 0, IO_GGML_F16 = 1, IO_GGML_Q4_0 = 2, IO_GGML_Q8_0 = 8, IO_GGML_I8 = 24, IO_GGML_I16 = 25,
       IO_GGML_I32 = 26, IO_GGML_I64 = 27, IO_GGML_F64 = 28, IO_GGML_BF16 = 30 };

typedef struct io_gguf_kv {
    const char *key;      /* NUL-terminated copy */
    io_gguf_type type;
    io_gguf_type arr_type; /* element type when type == IO_GGUF_ARRAY */
    uint64_t n;           /* array length; string length for IO_GGUF_STRING */
    const uint8_t *data;  /* the value bytes in the file (array: the first element) */
    char *str;            /* IO_GGUF_STRING: NUL-terminated copy of the value */
    uint64_t *str_offs;   /* array of strings: byte offset of each element's length field from data */
} io_gguf_kv;

typedef struct io_gguf_tensor_info {
    const char *name;     /* NUL-terminated copy */
    uint32_t ggml_type;
    gl_dtype dtype;
    int ndim;
    int64_t shape[GL_MAX_DIMS]; /* PyTorch order */
    uint64_t offset;      /* from the start of the data section */
    size_t nbytes;
} io_gguf_tensor_info;

typedef struct io_gguf {
    uint32_t version;
    uint64_t alignment;
    io_gguf_kv *kvs;
    size_t n_kvs;
    io_gguf_tensor_info *tensors;
    size_t n_tensors;
    uint64_t data_offset; /* file offset of the data section */
} io_gguf;

/* Parses a whole GGUF file in memory (name is for messages); checks every size, offset,
 * alignment and overlap. The result points into buf, which must outlive it. */
int io_gguf_parse(const uint8_t *buf, size_t size, const char *name, io_gguf **out, gl_err *err);
void io_gguf_free(io_gguf *g);

/* Lookups: NULL-safe; a missing key or a value of another kind gives the default. */
const io_gguf_kv *io_gguf_find_kv(const io_gguf *g, const char *key);
int64_t io_gguf_get_int(const io_gguf *g, const char *key, int64_t def);    /* any integer type or bool */
double io_gguf_get_float(const io_gguf *g, const char *key, double def);    /* F32, F64 or an integer */
const char *io_gguf_get_str(const io_gguf *g, const char *key, const char *def);
/* Array element i as int64/double (numeric arrays) or string (string arrays; len may be NULL).
 * Out of range or wrong type: 0 / 0.0 / NULL. */
int64_t io_gguf_arr_int(const io_gguf_kv *kv, uint64_t i);
double io_gguf_arr_float(const io_gguf_kv *kv, uint64_t i);
const char *io_gguf_arr_str(const io_gguf_kv *kv, uint64_t i, size_t *len);
/* Bytes per element of a scalar type (0 for STRING / ARRAY). */
size_t io_gguf_type_size(io_gguf_type t);
/* ggml type <-> gl_dtype; -1 when there is none. */
int io_gguf_ggml_to_dtype(uint32_t ggml_type);
int io_gguf_dtype_to_ggml(gl_dtype dt);

/* ---- Writer ----
 * Collects KVs (copied) and tensors (data pointers kept: they must stay valid until write),
 * then writes the file in one pass with general.alignment padding.
 *
 *   io_gguf_writer *gw = io_gguf_writer_new(32);
 *   io_gguf_writer_set_str(gw, "general.architecture", "qwen2");
 *   io_gguf_writer_add_tensor(gw, "tok_embd.weight", GL_F16, 2, (int64_t[]){vocab, dim}, p, nbytes);
 *   io_gguf_writer_write(gw, "out.gguf", err); io_gguf_writer_free(gw);
 * Setters return 0 or GLIMPSE_ERR_NOMEM / GLIMPSE_ERR_INVALID_ARG (a repeated key, a bad shape). */
typedef struct io_gguf_writer io_gguf_writer;

io_gguf_writer *io_gguf_writer_new(uint32_t alignment); /* 0 = 32; must be a power of two */
void io_gguf_writer_free(io_gguf_writer *gw);
int io_gguf_writer_set_int(io_gguf_writer *gw, const char *key, io_gguf_type type, int64_t v); /* U8..I64, BOOL */
int io_gguf_writer_set_float(io_gguf_writer *gw, const char *key, io_gguf_type type, double v); /* F32, F64 */
int io_gguf_writer_set_str(io_gguf_writer *gw, const char *key, const char *v);
/* A numeric array: n elements of elem_type, little-endian, in data. */
int io_gguf_writer_set_arr(io_gguf_writer *gw, const char *key, io_gguf_type elem_type, const void *data, size_t n);
int io_gguf_writer_set_arr_str(io_gguf_writer *gw, const char *key, const char *const *strs, size_t n);
int io_gguf_writer_add_tensor(io_gguf_writer *gw, const char *name, gl_dtype dt, int ndim, const int64_t *shape,
                              const void *data, size_t nbytes);
int io_gguf_writer_write(io_gguf_writer *gw, const char *path, gl_err *err);

#endif
