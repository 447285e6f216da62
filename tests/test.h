/* test.h — a tiny assertion harness. Each test file is one executable (one ctest entry);
 * a failed CHECK prints file:line and the expression, and the program exits non-zero. */
#ifndef GL_TEST_H
#define GL_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_failures = 0, t_checks = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        t_checks++;                                                                  \
        if (!(cond)) {                                                               \
            t_failures++;                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECK_MSG(cond, ...)                                                         \
    do {                                                                             \
        t_checks++;                                                                  \
        if (!(cond)) {                                                               \
            t_failures++;                                                            \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
        }                                                                            \
    } while (0)

#define CHECK_EQ_INT(a, b) CHECK_MSG((long long)(a) == (long long)(b), "%lld != %lld", (long long)(a), (long long)(b))
#define CHECK_NEAR(a, b, tol) CHECK_MSG(fabs((double)(a) - (double)(b)) <= (tol), "%.9g vs %.9g (tol %g)", (double)(a), (double)(b), (double)(tol))

/* Ends main(): prints a summary and returns the exit code. */
#define TEST_DONE()                                                                            \
    do {                                                                                       \
        fprintf(stderr, "%s: %d checks, %d failed\n", __FILE__, t_checks, t_failures);         \
        return t_failures ? 1 : 0;                                                             \
    } while (0)

/* Deterministic PRNG for randomized tests (seed printed by the test). */
static inline uint64_t t_rand_u64(uint64_t *s) {
    uint64_t x = *s += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}
static inline float t_rand_f32(uint64_t *s) { /* uniform in [-1, 1) */
    return (float)((t_rand_u64(s) >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

#ifndef GLIMPSE_SOURCE_DIR
#define GLIMPSE_SOURCE_DIR "."
#endif

#endif
