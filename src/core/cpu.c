#include "cpu.h"

#include <stdlib.h>
#include <string.h>

#include "glimpse.h"

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

gl_cpu gl_cpu_detect(void) {
    gl_cpu c;
    memset(&c, 0, sizeof c);
    const char *isa = getenv("GLIMPSE_ISA");
    if (isa && strcmp(isa, "scalar") == 0) {
        c.forced_scalar = true;
        return c;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    c.avx2 = __builtin_cpu_supports("avx2");
    c.fma = __builtin_cpu_supports("fma");
    /* gcc 12 has no "f16c" name for __builtin_cpu_supports; cpuid leaf 1, ecx bit 29. */
    unsigned a, b, cc, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(cc), "=d"(d) : "a"(1), "c"(0));
    c.f16c = (cc >> 29) & 1;
    /* libgcc's answer includes the OS check (XCR0 saves opmask and zmm state) */
    c.avx512f = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                !(isa && strcmp(isa, "avx2") == 0);
    c.avx512vnni = c.avx512f && __builtin_cpu_supports("avx512vnni");
    /* AVX-VNNI: cpuid leaf 7 subleaf 1, eax bit 4 (neither gcc 12 nor clang 14 name it) */
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(cc), "=d"(d) : "a"(0), "c"(0));
    if (a >= 7) {
        __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(cc), "=d"(d) : "a"(7), "c"(1));
        c.avxvnni = ((a >> 4) & 1) && !(isa && strcmp(isa, "avx2") == 0);
    }
#elif defined(__aarch64__)
    c.neon = true; /* mandatory in ARMv8-A */
#if defined(__linux__)
    c.dotprod = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
#endif
    return c;
}

const char *gl_cpu_isa_name(const gl_cpu *c) {
    if (gl_cpu_has_avx512(c)) return "avx512";
    if (gl_cpu_has_avx2(c)) return "avx2";
    if (c->neon) return c->dotprod ? "neon+dotprod" : "neon";
    return "scalar";
}

const char *glimpse_isa(void) {
    gl_cpu c = gl_cpu_detect();
    return gl_cpu_isa_name(&c);
}
