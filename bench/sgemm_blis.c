/*
 * sgemm_blis.c — the ceiling for the sgemm benchmark: BLIS called directly.
 *
 *   sgemm_blis N [reps] [threads]
 *
 * Multiplies two N x N float32 matrices with bli_sgemm (row-major, no
 * transposes, C = A B) on `threads` threads (default 2): one warm-up call,
 * then `reps` timed calls (default 7), each timed with CLOCK_MONOTONIC.
 * Prints one JSON line: the kernel family BLIS chose (set BLIS_ARCH_TYPE in the
 * environment to force one, e.g. skx), the thread count and GFLOP/s of every
 * repetition. bench/run.py runs it once with BLIS's own choice and once with
 * BLIS_ARCH_TYPE=skx, and reports the better as the ceiling moongrad's
 * mg.matmul is measured against. Flush-to-zero is irrelevant here: the inputs
 * are in [0, 1) and N-term sums stay far from the denormal range.
 */
#include <blis.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double sgemm_blis_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1024;
  int reps = argc > 2 ? atoi(argv[2]) : 7;
  int threads = argc > 3 ? atoi(argv[3]) : 2;
  if (n <= 0 || reps <= 0 || reps > 1000 || threads <= 0) {
    fprintf(stderr, "usage: sgemm_blis N [reps] [threads]\n");
    return 2;
  }
  float *a = malloc(sizeof(float) * (size_t)(n * n));
  float *b = malloc(sizeof(float) * (size_t)(n * n));
  float *c = malloc(sizeof(float) * (size_t)(n * n));
  if (!a || !b || !c) {
    fprintf(stderr, "sgemm_blis: out of memory\n");
    return 1;
  }
  unsigned s = 12345u;   /* a fixed LCG: the same inputs on every run */
  for (long i = 0; i < n * n; i++) {
    s = s * 1103515245u + 12345u;
    a[i] = (float)(s >> 8) / 16777216.0f;
    s = s * 1103515245u + 12345u;
    b[i] = (float)(s >> 8) / 16777216.0f;
  }
  bli_thread_set_num_threads(threads);
  float one = 1.0f, zero = 0.0f;
  double flop = 2.0 * (double)n * (double)n * (double)n;
  printf("{\"n\":%ld,\"arch\":\"%s\",\"threads\":%d,\"gflops\":[", n, bli_arch_string(bli_arch_query_id()), threads);
  for (int r = -1; r < reps; r++) {
    double t0 = sgemm_blis_now();
    bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, n, n, n, &one, a, n, 1, b, n, 1, &zero, c, n, 1);
    double dt = sgemm_blis_now() - t0;
    if (r >= 0) printf("%s%.3f", r ? "," : "", flop / dt / 1e9);
  }
  printf("],\"check\":%.6g}\n", (double)c[0] + (double)c[n * n - 1]);
  free(a);
  free(b);
  free(c);
  return 0;
}
