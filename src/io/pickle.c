/* pickle.c — see pickle.h. Opcodes and semantics: CPython Lib/pickletools.py (protocols 0-5,
 * binary opcodes only; the text opcodes of protocol 0 are refused). */
#include "io/pickle.h"

#include <string.h>

#define PK_MAX_OBJECTS (1u << 21) /* values created; a real state_dict needs ~10 per tensor */
#define PK_MAX_ITEMS (1u << 22)   /* container slots in total */
#define PK_MAX_STACK (1u << 20)
#define PK_MAX_MEMO (1u << 22)
#define PK_POOL 4096

typedef struct pk_pool {
    struct pk_pool *next;
    size_t used;
    io_pk_val v[PK_POOL];
} pk_pool;

struct io_pickle {
    const uint8_t *buf;
    size_t size, pos;
    const char *name;
    gl_err *err;
    pk_pool *pools;
    size_t n_objects, n_items;
    io_pk_val **stack;
    size_t sp, stack_cap;
    size_t *marks;
    size_t n_marks, marks_cap;
    io_pk_val **memo;
    size_t memo_len, memo_cap;
};

static int fail(io_pickle *p, const char *what) {
    return gl_err_set(p->err, GLIMPSE_ERR_FORMAT, "%s: data.pkl: %s at byte %zu", p->name, what, p->pos);
}
static int nomem(io_pickle *p) { return gl_err_set(p->err, GLIMPSE_ERR_NOMEM, "%s: out of memory", p->name); }

/* 0: ok; 1: over the limit (a hostile file); 2: out of memory. */
static int grow(void **a, size_t *cap, size_t need, size_t elem, size_t limit) {
    if (need <= *cap) return 0;
    if (need > limit) return 1;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    if (nc > limit) nc = limit;
    void *q = gl_realloc(*a, nc * elem);
    if (!q) return 2;
    *a = q;
    *cap = nc;
    return 0;
}

static io_pk_val *new_val(io_pickle *p, io_pk_type t) {
    if (p->n_objects >= PK_MAX_OBJECTS) return NULL;
    if (!p->pools || p->pools->used == PK_POOL) {
        pk_pool *np = gl_malloc(sizeof *np);
        if (!np) return NULL;
        np->next = p->pools;
        np->used = 0;
        p->pools = np;
    }
    io_pk_val *v = &p->pools->v[p->pools->used++];
    memset(v, 0, sizeof *v);
    v->type = (uint8_t)t;
    p->n_objects++;
    return v;
}

/* Appends x to container c; 0 or an error already set. */
static int add_item(io_pickle *p, io_pk_val *c, io_pk_val *x) {
    int g = p->n_items >= PK_MAX_ITEMS ? 1 : grow((void **)&c->items, &c->cap, c->n + 1, sizeof *c->items, PK_MAX_ITEMS);
    if (g) return g == 1 ? fail(p, "too many items") : nomem(p);
    c->items[c->n++] = x;
    p->n_items++;
    return 0;
}

static int push(io_pickle *p, io_pk_val *v) {
    if (!v) return p->n_objects >= PK_MAX_OBJECTS ? fail(p, "too many objects") : nomem(p);
    int g = grow((void **)&p->stack, &p->stack_cap, p->sp + 1, sizeof *p->stack, PK_MAX_STACK);
    if (g) return g == 1 ? fail(p, "stack too deep") : nomem(p);
    p->stack[p->sp++] = v;
    return 0;
}

static io_pk_val *pop(io_pickle *p) {
    if (!p->sp) return NULL;
    if (p->n_marks && p->marks[p->n_marks - 1] == p->sp) return NULL; /* cannot pop past a mark */
    return p->stack[--p->sp];
}

static io_pk_val *top(io_pickle *p) {
    if (!p->sp || (p->n_marks && p->marks[p->n_marks - 1] == p->sp)) return NULL;
    return p->stack[p->sp - 1];
}

/* Pops to the last mark; the popped values are stack[*from .. sp). */
static bool pop_mark(io_pickle *p, size_t *from) {
    if (!p->n_marks) return false;
    *from = p->marks[--p->n_marks];
    return true;
}

static bool need(io_pickle *p, size_t n) { return p->size - p->pos >= n; }

static uint64_t rd_le(const uint8_t *b, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static bool is_global(const io_pk_val *v, const char *mod, const char *name) {
    return v && v->type == IO_PK_GLOBAL && v->slen == strlen(mod) && !memcmp(v->s, mod, v->slen) &&
           v->s2len == strlen(name) && !memcmp(v->s2, name, v->s2len);
}

bool io_pk_str_eq(const io_pk_val *v, const char *s) {
    return v && v->type == IO_PK_STR && v->slen == strlen(s) && !memcmp(v->s, s, v->slen);
}

/* torch.<X>Storage class names to dtypes. */
static int storage_dtype(const io_pk_val *g) {
    static const struct { const char *name; gl_dtype dt; } m[] = {
        {"FloatStorage", GL_F32}, {"HalfStorage", GL_F16},   {"BFloat16Storage", GL_BF16}, {"LongStorage", GL_I64},
        {"IntStorage", GL_I32},   {"ShortStorage", GL_I16},  {"CharStorage", GL_I8},       {"ByteStorage", GL_U8},
        {"DoubleStorage", GL_F64}, {"BoolStorage", GL_BOOL},
    };
    for (size_t i = 0; i < GL_ARRAY_LEN(m); i++)
        if (is_global(g, "torch", m[i].name)) return (int)m[i].dt;
    return -1;
}

static bool int_tuple(const io_pk_val *t, int64_t *out, int *n) {
    if (!t || t->type != IO_PK_TUPLE || t->n > GL_MAX_DIMS) return false;
    for (size_t i = 0; i < t->n; i++) {
        if (t->items[i]->type != IO_PK_INT) return false;
        out[i] = t->items[i]->i;
    }
    *n = (int)t->n;
    return true;
}

/* callable(*args) for the callables a state_dict uses; anything else gives an opaque object. */
static int do_reduce(io_pickle *p, io_pk_val *fn, io_pk_val *args) {
    if (args->type != IO_PK_TUPLE) return fail(p, "REDUCE arguments are not a tuple");
    if (is_global(fn, "collections", "OrderedDict")) return push(p, new_val(p, IO_PK_DICT));
    if (is_global(fn, "torch._utils", "_rebuild_tensor_v2") || is_global(fn, "torch._utils", "_rebuild_tensor")) {
        /* (storage, storage_offset, size, stride[, requires_grad, backward_hooks[, metadata]]) */
        if (args->n < 4 || args->items[0]->type != IO_PK_STORAGE || args->items[1]->type != IO_PK_INT)
            return fail(p, "bad _rebuild_tensor arguments");
        io_pk_tensor t = {.storage = args->items[0], .offset = args->items[1]->i};
        int ns, nst;
        if (!int_tuple(args->items[2], t.size, &ns) || !int_tuple(args->items[3], t.stride, &nst) || ns != nst)
            return fail(p, "bad tensor size/stride");
        t.ndim = ns;
        io_pk_val *v = new_val(p, IO_PK_TENSOR);
        if (!v) return push(p, v);
        if (!(v->tensor = gl_malloc(sizeof t))) return nomem(p);
        *v->tensor = t;
        return push(p, v);
    }
    if (is_global(fn, "torch._utils", "_rebuild_parameter") ||
        is_global(fn, "torch._utils", "_rebuild_parameter_with_state")) {
        /* a parameter around something we do not model (a quantized tensor...) stays opaque */
        if (args->n < 1 || args->items[0]->type != IO_PK_TENSOR) return push(p, new_val(p, IO_PK_OBJ));
        return push(p, args->items[0]);
    }
    return push(p, new_val(p, IO_PK_OBJ));
}

/* Persistent id ('storage', torch.<X>Storage, key, location, numel). */
static int do_persid(io_pickle *p, io_pk_val *pid) {
    if (!pid || pid->type != IO_PK_TUPLE || pid->n < 5 || !io_pk_str_eq(pid->items[0], "storage"))
        return fail(p, "unsupported persistent id");
    /* An unknown storage type (complex, fp8...) only fails the load if a tensor we return uses it. */
    int dt = storage_dtype(pid->items[1]);
    if (dt < 0) dt = IO_PK_DTYPE_UNKNOWN;
    const io_pk_val *key = pid->items[2], *numel = pid->items[4];
    if (key->type != IO_PK_STR || numel->type != IO_PK_INT || numel->i < 0) return fail(p, "bad storage id");
    io_pk_val *v = new_val(p, IO_PK_STORAGE);
    if (v) {
        v->dtype = (uint8_t)dt;
        v->s = key->s;
        v->slen = key->slen;
        v->i = numel->i;
    }
    return push(p, v);
}

static int run(io_pickle *p, const io_pk_val **root) {
    while (p->pos < p->size) {
        uint8_t op = p->buf[p->pos++];
        const uint8_t *a = p->buf + p->pos;
        io_pk_val *v, *x, *y;
        size_t from, n;
        int rc = 0;
        switch (op) {
        case 0x80: /* PROTO */
            if (!need(p, 1)) return fail(p, "truncated");
            p->pos += 1;
            break;
        case 0x95: /* FRAME: a length hint only */
            if (!need(p, 8)) return fail(p, "truncated");
            p->pos += 8;
            break;
        case '.': /* STOP */
            if (!(v = pop(p))) return fail(p, "STOP with an empty stack");
            *root = v;
            return 0;
        case '(': /* MARK */
            if ((rc = grow((void **)&p->marks, &p->marks_cap, p->n_marks + 1, sizeof *p->marks, PK_MAX_STACK)))
                return rc == 1 ? fail(p, "too many marks") : nomem(p);
            p->marks[p->n_marks++] = p->sp;
            break;
        case '}': rc = push(p, new_val(p, IO_PK_DICT)); break;
        case ']': rc = push(p, new_val(p, IO_PK_LIST)); break;
        case ')': rc = push(p, new_val(p, IO_PK_TUPLE)); break;
        case 0x8f: rc = push(p, new_val(p, IO_PK_LIST)); break; /* EMPTY_SET: a list will do */
        case 'N': rc = push(p, new_val(p, IO_PK_NONE)); break;
        case 0x88: case 0x89: /* NEWTRUE, NEWFALSE */
            if ((v = new_val(p, IO_PK_BOOL))) v->i = op == 0x88;
            rc = push(p, v);
            break;
        case 'J': case 'K': case 'M': /* BININT (signed 4), BININT1, BININT2 (unsigned) */
            n = op == 'J' ? 4 : op == 'K' ? 1 : 2;
            if (!need(p, n)) return fail(p, "truncated");
            if ((v = new_val(p, IO_PK_INT))) v->i = op == 'J' ? (int64_t)(int32_t)(uint32_t)rd_le(a, 4) : (int64_t)rd_le(a, (int)n);
            p->pos += n;
            rc = push(p, v);
            break;
        case 0x8a: case 0x8b: { /* LONG1, LONG4: little-endian two's complement of n bytes */
            size_t ln = op == 0x8a ? 1 : 4;
            if (!need(p, ln)) return fail(p, "truncated");
            n = (size_t)rd_le(a, (int)ln);
            p->pos += ln;
            if (n > 8) return fail(p, "integer wider than 64 bits");
            if (!need(p, n)) return fail(p, "truncated");
            uint64_t u = rd_le(p->buf + p->pos, (int)n);
            if (n && n < 8 && (p->buf[p->pos + n - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * n); /* sign-extend */
            p->pos += n;
            if ((v = new_val(p, IO_PK_INT))) v->i = (int64_t)u;
            rc = push(p, v);
            break;
        }
        case 'G': { /* BINFLOAT: big-endian double */
            if (!need(p, 8)) return fail(p, "truncated");
            uint64_t u = 0;
            for (int i = 0; i < 8; i++) u = u << 8 | a[i];
            p->pos += 8;
            if ((v = new_val(p, IO_PK_FLOAT))) memcpy(&v->f, &u, 8);
            rc = push(p, v);
            break;
        }
        case 'X': case 0x8c: case 0x8d: /* BINUNICODE, SHORT_BINUNICODE, BINUNICODE8 */
        case 'T': case 'U': /* BINSTRING, SHORT_BINSTRING */
        case 'B': case 'C': case 0x8e: { /* BINBYTES, SHORT_BINBYTES, BINBYTES8 */
            size_t ln = (op == 0x8c || op == 'U' || op == 'C') ? 1 : (op == 0x8d || op == 0x8e) ? 8 : 4;
            if (!need(p, ln)) return fail(p, "truncated");
            uint64_t len = rd_le(a, (int)ln);
            p->pos += ln;
            if (len > p->size - p->pos) return fail(p, "string past the end");
            bool bytes = op == 'B' || op == 'C' || op == 0x8e;
            if ((v = new_val(p, bytes ? IO_PK_BYTES : IO_PK_STR))) {
                v->s = (const char *)p->buf + p->pos;
                v->slen = (size_t)len;
            }
            p->pos += (size_t)len;
            rc = push(p, v);
            break;
        }
        case 'c': { /* GLOBAL "module\nname\n" */
            const uint8_t *e1 = memchr(a, '\n', p->size - p->pos);
            if (!e1) return fail(p, "truncated GLOBAL");
            const uint8_t *e2 = memchr(e1 + 1, '\n', (size_t)(p->buf + p->size - (e1 + 1)));
            if (!e2) return fail(p, "truncated GLOBAL");
            if ((v = new_val(p, IO_PK_GLOBAL))) {
                v->s = (const char *)a;
                v->slen = (size_t)(e1 - a);
                v->s2 = (const char *)e1 + 1;
                v->s2len = (size_t)(e2 - e1 - 1);
            }
            p->pos = (size_t)(e2 + 1 - p->buf);
            rc = push(p, v);
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            if (!(y = pop(p)) || !(x = pop(p)) || x->type != IO_PK_STR || y->type != IO_PK_STR)
                return fail(p, "bad STACK_GLOBAL");
            if ((v = new_val(p, IO_PK_GLOBAL))) {
                v->s = x->s, v->slen = x->slen;
                v->s2 = y->s, v->s2len = y->slen;
            }
            rc = push(p, v);
            break;
        case '0': /* POP */
            if (!pop(p)) return fail(p, "POP on an empty stack");
            break;
        case '1': /* POP_MARK */
            if (!pop_mark(p, &from)) return fail(p, "no MARK");
            p->sp = from;
            break;
        case '2': /* DUP */
            if (!(v = top(p))) return fail(p, "DUP on an empty stack");
            rc = push(p, v);
            break;
        case 't': case 'l': case 'd': case 0x91: /* TUPLE, LIST, DICT, FROZENSET (from MARK) */
            if (!pop_mark(p, &from)) return fail(p, "no MARK");
            if (op == 'd' && (p->sp - from) % 2) return fail(p, "odd DICT");
            if (!(v = new_val(p, op == 't' ? IO_PK_TUPLE : op == 'd' ? IO_PK_DICT : IO_PK_LIST))) return push(p, v);
            for (size_t i = from; i < p->sp; i++)
                if ((rc = add_item(p, v, p->stack[i]))) return rc;
            p->sp = from;
            rc = push(p, v);
            break;
        case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
            n = (size_t)(op - 0x84);
            io_pk_val *it[3];
            for (size_t i = n; i-- > 0;)
                if (!(it[i] = pop(p))) return fail(p, "TUPLEn on a short stack");
            if (!(v = new_val(p, IO_PK_TUPLE))) return push(p, v);
            for (size_t i = 0; i < n; i++)
                if ((rc = add_item(p, v, it[i]))) return rc;
            rc = push(p, v);
            break;
        }
        case 'a': /* APPEND */
            if (!(x = pop(p)) || !(v = top(p)) || v->type != IO_PK_LIST) return fail(p, "bad APPEND");
            if ((rc = add_item(p, v, x))) return rc;
            break;
        case 'e': case 0x90: /* APPENDS, ADDITEMS */
            if (!pop_mark(p, &from) || from == 0) return fail(p, "bad APPENDS");
            v = p->stack[from - 1];
            if (v->type != IO_PK_LIST || (p->n_marks && p->marks[p->n_marks - 1] >= from)) return fail(p, "bad APPENDS");
            for (size_t i = from; i < p->sp; i++)
                if ((rc = add_item(p, v, p->stack[i]))) return rc;
            p->sp = from;
            break;
        case 's': /* SETITEM */
            if (!(y = pop(p)) || !(x = pop(p)) || !(v = top(p)) || (v->type != IO_PK_DICT && v->type != IO_PK_OBJ))
                return fail(p, "bad SETITEM");
            if (v->type == IO_PK_DICT && ((rc = add_item(p, v, x)) || (rc = add_item(p, v, y)))) return rc;
            break;
        case 'u': /* SETITEMS */
            if (!pop_mark(p, &from) || from == 0 || (p->sp - from) % 2) return fail(p, "bad SETITEMS");
            v = p->stack[from - 1];
            if ((v->type != IO_PK_DICT && v->type != IO_PK_OBJ) || (p->n_marks && p->marks[p->n_marks - 1] >= from))
                return fail(p, "bad SETITEMS");
            for (size_t i = from; i < p->sp && v->type == IO_PK_DICT; i++)
                if ((rc = add_item(p, v, p->stack[i]))) return rc;
            p->sp = from;
            break;
        case 'Q': /* BINPERSID */
            rc = do_persid(p, pop(p));
            break;
        case 'R': /* REDUCE */
            if (!(x = pop(p)) || !(v = pop(p))) return fail(p, "REDUCE on a short stack");
            rc = do_reduce(p, v, x);
            break;
        case 0x81: /* NEWOBJ cls args */
            if (!(x = pop(p)) || !(v = pop(p))) return fail(p, "NEWOBJ on a short stack");
            rc = push(p, new_val(p, IO_PK_OBJ));
            break;
        case 0x92: /* NEWOBJ_EX cls args kwargs */
            if (!pop(p) || !pop(p) || !pop(p)) return fail(p, "NEWOBJ_EX on a short stack");
            rc = push(p, new_val(p, IO_PK_OBJ));
            break;
        case 'b': /* BUILD: object state is ignored (e.g. a state_dict's _metadata) */
            if (!pop(p) || !top(p)) return fail(p, "BUILD on a short stack");
            break;
        case 'h': case 'j': { /* BINGET, LONG_BINGET */
            n = op == 'h' ? 1 : 4;
            if (!need(p, n)) return fail(p, "truncated");
            uint64_t idx = rd_le(a, (int)n);
            p->pos += n;
            if (idx >= p->memo_len || !p->memo[idx]) return fail(p, "memo index not set");
            rc = push(p, p->memo[idx]);
            break;
        }
        case 'q': case 'r': case 0x94: { /* BINPUT, LONG_BINPUT, MEMOIZE */
            uint64_t idx;
            if (op == 0x94) {
                idx = p->memo_len;
            } else {
                n = op == 'q' ? 1 : 4;
                if (!need(p, n)) return fail(p, "truncated");
                idx = rd_le(a, (int)n);
                p->pos += n;
            }
            if (!(v = top(p))) return fail(p, "PUT on an empty stack");
            if (idx >= PK_MAX_MEMO) return fail(p, "memo index too large");
            size_t old = p->memo_cap;
            if (grow((void **)&p->memo, &p->memo_cap, (size_t)idx + 1, sizeof *p->memo, PK_MAX_MEMO)) return nomem(p);
            if (p->memo_cap > old) memset(p->memo + old, 0, (p->memo_cap - old) * sizeof *p->memo);
            p->memo[idx] = v;
            if (idx >= p->memo_len) p->memo_len = (size_t)idx + 1;
            break;
        }
        default:
            p->pos--;
            return gl_err_set(p->err, GLIMPSE_ERR_UNSUPPORTED, "%s: data.pkl: unsupported pickle opcode 0x%02x at byte %zu",
                              p->name, op, p->pos);
        }
        if (rc) return rc;
    }
    return fail(p, "no STOP");
}

int io_pickle_load(const uint8_t *buf, size_t size, const char *name, io_pickle **out, const io_pk_val **root,
                   gl_err *err) {
    io_pickle *p = gl_calloc(1, sizeof *p);
    if (!p) return gl_err_set(err, GLIMPSE_ERR_NOMEM, "%s: out of memory", name);
    p->buf = buf;
    p->size = size;
    p->name = name;
    p->err = err;
    const io_pk_val *r = NULL;
    int rc = run(p, &r);
    /* The stack, marks and memo are only needed while running. */
    gl_free(p->stack), p->stack = NULL;
    gl_free(p->marks), p->marks = NULL;
    gl_free(p->memo), p->memo = NULL;
    if (rc) {
        io_pickle_free(p);
        return rc;
    }
    p->err = NULL;
    *out = p;
    *root = r;
    return 0;
}

void io_pickle_free(io_pickle *p) {
    if (!p) return;
    for (pk_pool *q = p->pools, *next; q; q = next) {
        next = q->next;
        for (size_t i = 0; i < q->used; i++) {
            gl_free(q->v[i].items);
            gl_free(q->v[i].tensor);
        }
        gl_free(q);
    }
    gl_free(p->stack);
    gl_free(p->marks);
    gl_free(p->memo);
    gl_free(p);
}
