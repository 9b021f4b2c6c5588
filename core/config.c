/*
 * config.c — process set-up (CPU features, BLIS kernel family, threads,
 * flush-to-zero) and the per-runtime context.
 *
 * Two traps measured on the project's machine drive this file. Debian's BLIS
 * 0.9 picks its AVX2 "haswell" kernels on AVX-512 CPUs (sgemm 2048: 235 vs 395
 * GFLOP/s; on this project's AMD EPYC VMs it even falls back to "generic",
 * 9 vs 66 GFLOP/s on one thread), so we pick skx from CPUID before BLIS first
 * runs, unless the user set BLIS_ARCH_TYPE. Denormals make float kernels ~15x slower, so every
 * thread that runs kernels gets FTZ/DAZ set in MXCSR.
 */
#include "internal.h"
#include <blis.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#if defined(__x86_64__) || defined(__i386__)
#define MG_X86 1
#include <cpuid.h>
#include <xmmintrin.h>
#include <pmmintrin.h>
#endif

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int num_threads = 1;
static int arch_forced;     /* 1 if we chose BLIS_ARCH_TYPE ourselves */

/* Flush-to-zero and denormals-are-zero: MXCSR's FTZ/DAZ on x86, FPCR.FZ on
 * 64-bit Arm (which flushes both inputs and results). */
void mg_fpu_ftz(void) {
#if MG_X86
  _MM_SET_FLUSH_ZERO_MODE(_MM_FLUSH_ZERO_ON);
  _MM_SET_DENORMALS_ZERO_MODE(_MM_DENORMALS_ZERO_ON);
#elif defined(__aarch64__)
  uint64_t fpcr;
  __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
  __asm__ volatile("msr fpcr, %0" : : "r"(fpcr | (1ull << 24)));
#endif
}

/* Whether this thread flushes denormal results (FTZ) and inputs (DAZ) to zero. */
static void fpu_modes(int *ftz, int *daz) {
#if MG_X86
  unsigned csr = _mm_getcsr();
  *ftz = (csr & 0x8000) != 0;
  *daz = (csr & 0x40) != 0;
#elif defined(__aarch64__)
  uint64_t fpcr;
  __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
  *ftz = *daz = (fpcr >> 24) & 1;
#else
  *ftz = *daz = 0;
#endif
}

/* AVX-512F and the OS saving its registers (XCR0 bits 5-7 plus AVX state). */
static int cpu_has_avx512(void) {
#if !MG_X86
  return 0;
#else
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return 0;
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & 0xe6) != 0xe6) return 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  return (b & bit_AVX512F) != 0;
#endif
}

static void init_process(void) {
  mg_isa_select();
  if (!getenv("BLIS_ARCH_TYPE") && cpu_has_avx512()) {
    char id[16];  /* BLIS 0.9 reads the variable as a number (its arch_t), not a name */
    snprintf(id, sizeof id, "%d", (int)BLIS_ARCH_SKX);
    setenv("BLIS_ARCH_TYPE", id, 0);
    arch_forced = 1;
  }
  const char *env = getenv("MG_NUM_THREADS");  /* out of range: clamped, as start-up cannot fail */
  long want = env ? strtol(env, NULL, 10) : 0;
  num_threads = want > 0 && want < mg_max_threads() ? (int)want : mg_max_threads();
  bli_thread_set_num_threads(num_threads);
  /* New threads inherit the creating thread's floating-point environment
   * (POSIX), so setting FTZ here, before any parallel region exists, gives it
   * to the whole OpenMP pool (BLIS's threads included) without starting the
   * pool at start-up, which cost 1-10 ms. tests/core/test_config.c checks it. */
  mg_fpu_ftz();
}

void mg_init(void) { pthread_once(&init_once, init_process); }

/* The most threads a kernel may use: the processors this process may run on.
 * GNU OpenMP's and BLIS's threads spin at their barriers, so every thread past
 * that fights another for a core: measured on the project's 2-core machine,
 * 20 small matmuls take 0.2 s with 2 threads, 12 s with 4 and over a minute
 * with 64, and 100000 made GOMP crash. No host gains from more. */
int mg_max_threads(void) {
  int p = omp_get_num_procs();
  return p > 0 ? p : 1;
}

mg_status mg_set_num_threads(int64_t n) {
  mg_init();
  int max = mg_max_threads();
  if (n < 0 || n > max)
    return mg_seterror(MG_EARG, "set_num_threads: %lld threads is out of range: 1 to %d (the processors "
                       "this process may run on), or 0 for one per processor", (long long)n, max);
  num_threads = n > 0 ? (int)n : max;
  bli_thread_set_num_threads(num_threads);
#pragma omp parallel num_threads(num_threads)
  mg_fpu_ftz();
  return MG_OK;
}

int mg_get_num_threads(void) {
  mg_init();
  return num_threads;
}

int mg_threads(void) { return num_threads; }

size_t mg_config_info(char *buf, size_t cap) {
  mg_init();
  int ftz, daz;
  char isas[64];
  fpu_modes(&ftz, &daz);
  mg_isa_available(isas, sizeof isas);
  return (size_t)snprintf(buf, cap,
                          "version=%s\nblis_version=%s\nblis_arch=%s\nblis_arch_chosen_by=%s\n"
                          "avx512=%d\nisa=%s\nisa_available=%s\nthreads=%d\nftz=%d\ndaz=%d\n",
                          MG_VERSION, bli_info_get_version_str(), bli_arch_string(bli_arch_query_id()),
                          arch_forced ? "moongrad (cpuid)" : getenv("BLIS_ARCH_TYPE") ? "user (BLIS_ARCH_TYPE)" : "blis",
                          cpu_has_avx512(), mg_isa_name(), isas, num_threads, ftz, daz);
}

/* ---- context ---------------------------------------------------------------- */

mg_ctx *mg_ctx_new(void) {
  mg_init();
  mg_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) return NULL;
  ctx->index_base = 0;
  ctx->seed = 0x9e3779b97f4a7c15ull;
  mg_fpu_ftz();  /* the calling thread may be a host's own */
  return ctx;
}

void mg_ctx_free(mg_ctx *ctx) {
  free(ctx);
  mg_thread_cache_drain();
}

void mg_ctx_set_index_base(mg_ctx *ctx, int base) { ctx->index_base = base ? 1 : 0; }
int mg_ctx_index_base(const mg_ctx *ctx) { return ctx->index_base; }

void mg_ctx_seed(mg_ctx *ctx, uint64_t seed) {
  ctx->seed = seed;
  ctx->counter = 0;
}

void mg_ctx_rng_state(const mg_ctx *ctx, uint64_t *seed, uint64_t *counter) {
  *seed = ctx->seed;
  *counter = ctx->counter;
}

void mg_ctx_set_rng_state(mg_ctx *ctx, uint64_t seed, uint64_t counter) {
  ctx->seed = seed;
  ctx->counter = counter;
}
