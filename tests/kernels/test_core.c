/* Core runtime: fp16/bf16 conversion, arena, thread pool, split. */
#include "test.h"
#include "core/arena.h"
#include "core/fp16.h"
#include "core/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>
#include "core/mapfile.h"

static void t_fp16(void) {
    /* every half value round-trips through f32 exactly */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = gl_f16_to_f32((uint16_t)h);
        uint16_t back = gl_f32_to_f16(f);
        if (isnan(f)) CHECK((back & 0x7c00) == 0x7c00 && (back & 0x3ff));
        else CHECK_MSG(back == h, "h=%04x f=%g back=%04x", h, f, back);
    }
    CHECK(gl_f32_to_f16(65520.0f) == 0x7c00);          /* rounds up to inf */
    CHECK(gl_f32_to_f16(65519.0f) == 0x7bff);
    CHECK(gl_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00); /* tie to even: down */
    CHECK(gl_f32_to_f16(1.0f + 3.0f / 2048) == 0x3c02); /* tie to even: up */
    CHECK(gl_f32_to_f16(5.9604645e-08f) == 0x0001);     /* smallest subnormal */
    CHECK(gl_f32_to_f16(2.9802322e-08f) == 0x0000);     /* half of it: tie to even 0 */
    CHECK(gl_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(gl_f32_to_bf16(gl_bits_f32(0x3f808000u)) == 0x3f80); /* tie to even */
    CHECK(gl_f32_to_bf16(gl_bits_f32(0x3f818000u)) == 0x3f82);
    CHECK(gl_bf16_to_f32(0xc000) == -2.0f);
}

static void t_arena(void) {
    gl_arena m;
    gl_arena_init_measure(&m);
    CHECK(gl_arena_alloc(&m, 10) == NULL);
    gl_arena_alloc(&m, 100);
    CHECK(m.peak == 64 + 100);
    gl_arena a;
    CHECK(gl_arena_init(&a, m.peak, NULL) == 0);
    void *p = gl_arena_alloc(&a, 10), *q = gl_arena_alloc(&a, 100);
    CHECK(p && q && ((uintptr_t)q % 64) == 0 && (char *)q - (char *)p == 64);
    CHECK(gl_arena_alloc(&a, 1) == NULL); /* full */
    gl_arena_reset(&a, 0);
    CHECK(gl_arena_alloc(&a, 10) == p);
    gl_arena_free(&a);
}

typedef struct { atomic_int hits[64]; atomic_long sum; } pool_arg;
static void task(void *v, int ith, int nth) {
    pool_arg *a = v;
    atomic_fetch_add(&a->hits[ith], 1);
    int64_t lo, hi;
    gl_split(1000, ith, nth, &lo, &hi);
    long s = 0;
    for (int64_t i = lo; i < hi; i++) s += i;
    atomic_fetch_add(&a->sum, s);
}

/* Tasks are claimed by whichever thread is free: with uneven delays one thread runs several
 * tasks in turn. Each ith must still run exactly once per job, never twice at the same time,
 * always with nth = the pool size. */
typedef struct { atomic_int hits[8], busy[8], bad; int nth; } claim_arg;
static void claim_task(void *v, int ith, int nth) {
    claim_arg *a = v;
    if (nth != a->nth || ith < 0 || ith >= nth || atomic_fetch_add(&a->busy[ith], 1) != 0) atomic_fetch_add(&a->bad, 1);
    if ((ith * 7 + atomic_load(&a->hits[ith])) % 5 == 0) usleep(200); /* a slow task now and then */
    atomic_fetch_add(&a->hits[ith], 1);
    atomic_fetch_sub(&a->busy[ith], 1);
}

static void t_pool_claim(void) {
    for (int n = 2; n <= 4; n++) {
        gl_pool *p = gl_pool_new(n);
        claim_arg a;
        memset(&a, 0, sizeof a);
        a.nth = n;
        for (int rep = 0; rep < 200; rep++) gl_pool_run(p, claim_task, &a);
        CHECK_EQ_INT(atomic_load(&a.bad), 0);
        for (int i = 0; i < n; i++) CHECK_EQ_INT(atomic_load(&a.hits[i]), 200);
        gl_pool_free(p);
    }
}

/* gl_owned: task t takes its own part from the front, then the others' from the back; under
 * threads every item is taken exactly once. And the pool's affinity: the caller (thread 0)
 * runs task 0 unless it was late. */
typedef struct { gl_owned q; atomic_int hits[1000]; atomic_int bad; pthread_t caller; atomic_int task0_on_caller; } owned_arg;
static void owned_task(void *v, int ith, int nth) {
    owned_arg *a = v;
    if (ith == 0 && pthread_equal(pthread_self(), a->caller)) atomic_fetch_add(&a->task0_on_caller, 1);
    for (int64_t i; (i = gl_owned_next(&a->q, ith)) >= 0;) {
        if (i >= 1000 || atomic_fetch_add(&a->hits[i], 1) != 0) atomic_fetch_add(&a->bad, 1);
        if (i % 97 == ith) usleep(50);
    }
    (void)nth;
}

static void t_pool_owned(void) {
    gl_owned q;
    CHECK(gl_owned_init(&q, 10, 3));
    static const int want[10] = {0, 1, 2, 3, 6, 5, 4, 9, 8, 7}; /* parts [0,4) [4,7) [7,10) */
    for (int k = 0; k < 10; k++) CHECK_EQ_INT(gl_owned_next(&q, 0), want[k]);
    CHECK_EQ_INT(gl_owned_next(&q, 0), -1);
    CHECK_EQ_INT(gl_owned_next(&q, 2), -1);
    CHECK(gl_owned_init(&q, 0, 2) && gl_owned_next(&q, 1) == -1);
    CHECK(!gl_owned_init(&q, 5, GL_OWNED_MAX + 1));
    for (int n = 1; n <= 4; n++) {
        gl_pool *p = gl_pool_new(n);
        owned_arg *a = calloc(1, sizeof *a);
        a->caller = pthread_self();
        for (int rep = 0; rep < 100; rep++) {
            int items = 1 + rep * 9;
            for (int i = 0; i < items; i++) atomic_store(&a->hits[i], 0);
            CHECK(gl_owned_init(&a->q, items, n));
            gl_pool_run(p, owned_task, a);
            for (int i = 0; i < items; i++) CHECK_EQ_INT(atomic_load(&a->hits[i]), 1);
        }
        CHECK_EQ_INT(atomic_load(&a->bad), 0);
        CHECK_MSG(atomic_load(&a->task0_on_caller) >= 50, "%d threads: task 0 ran on the caller in %d of 100 jobs", n,
                  atomic_load(&a->task0_on_caller));
        free(a);
        gl_pool_free(p);
    }
}

static void t_pool(void) {
    for (int n = 1; n <= 4; n++) {
        gl_pool *p = gl_pool_new(n);
        CHECK(p && gl_pool_size(p) == n);
        pool_arg a;
        memset(&a, 0, sizeof a);
        for (int rep = 0; rep < 300; rep++) gl_pool_run(p, task, &a);
        for (int i = 0; i < n; i++) CHECK_EQ_INT(atomic_load(&a.hits[i]), 300);
        CHECK_EQ_INT(atomic_load(&a.sum), 300L * 499500);
        gl_pool_free(p);
    }
    gl_pool_free(NULL);
    /* split covers [0,n) exactly */
    for (int nth = 1; nth < 9; nth++) {
        int64_t prev = 0;
        for (int i = 0; i < nth; i++) {
            int64_t lo, hi;
            gl_split(13, i, nth, &lo, &hi);
            CHECK(lo == prev && hi >= lo);
            prev = hi;
        }
        CHECK(prev == 13);
    }
}

/* gl_read_file honours max_size below its 4 KB first read (regression: it read past it). */
static void t_read_file(void) {
    char path[] = "/tmp/glimpse_test_read_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    static char data[10000];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (char)('a' + i % 26);
    FILE *f = fdopen(fd, "wb");
    fwrite(data, 1, 10, f);
    fclose(f);
    char *buf = NULL;
    size_t len = 0;
    CHECK(gl_read_file(path, 5, &buf, &len, NULL) == GLIMPSE_ERR_TOO_LARGE);
    CHECK(gl_read_file(path, 9, &buf, &len, NULL) == GLIMPSE_ERR_TOO_LARGE);
    CHECK(gl_read_file(path, 10, &buf, &len, NULL) == 0 && len == 10 && buf[10] == 0 && !memcmp(buf, data, 10));
    gl_free(buf);
    f = fopen(path, "wb");
    fwrite(data, 1, sizeof data, f);
    fclose(f);
    CHECK(gl_read_file(path, sizeof data, &buf, &len, NULL) == 0 && len == sizeof data && !memcmp(buf, data, len));
    gl_free(buf);
    CHECK(gl_read_file(path, sizeof data - 1, &buf, &len, NULL) == GLIMPSE_ERR_TOO_LARGE);
    remove(path);
}

int main(void) {
    t_read_file();
    t_fp16();
    t_arena();
    t_pool();
    t_pool_claim();
    t_pool_owned();
    TEST_DONE();
}
