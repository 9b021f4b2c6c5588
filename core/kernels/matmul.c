/*
 * matmul.c — the matrix product, batched over broadcast batch dimensions.
 *
 * Every product is a loop over batches of C (m x n) = A (m x k) B (k x n),
 * each operand described by a base pointer and row/column strides in
 * elements, so transposed and sliced views are read where they lie. Three
 * engines:
 *
 *   BLIS      float32/float64 matrix products worth it (bli_sgemm/bli_dgemm
 *             take general strides). BLIS rejects (and aborts on) zero
 *             strides and strides that make a matrix overlap itself; such an
 *             operand (an expand view, say) is first copied to contiguous
 *             memory.
 *   small     float products below SMALL_MNK multiply-adds, where BLIS's
 *             per-call cost (5-7 us: threads woken, packing) would dominate,
 *             and matrix-vector products of any size (memory-bound: BLIS
 *             would copy the matrix into its packed format first; these
 *             loops read it once, split across threads). Plain C loops: four
 *             rows of C per pass over B (the j loop vectorises when B's rows
 *             are contiguous), or dot products when B is a column vector or
 *             a transposed view. Batches run in parallel across batches.
 *   integer   int32/int64/uint8: plain loops accumulating in 64 bits with
 *             wrap-around (uint64 arithmetic, no UB), stored in the dtype.
 *
 * Measured on the project's 2-core AVX-512 machine (BLIS_ARCH_TYPE=skx, as
 * config.c selects), float32 n x n x n: small kernel 0.07 us (n=8), 0.36 us
 * (16), 2.5 us (32), 4.2 us (40), 7.2 us (48); BLIS 5.0, 5.1, 6.6, 6.5,
 * 6.7 us. They cross near n = 44, hence SMALL_MNK. A 4096 x 4096 float32
 * matrix-vector product: 2.0 ms here, 10.7 ms through BLIS.
 */
#include "internal.h"
#include <blis.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#define SMALL_MNK (44 * 44 * 44)    /* multiply-adds below which BLIS costs more than it saves */
#define PAR_MNK (1 << 17)           /* multiply-adds worth a thread when batches run in parallel */
#define ICH 256                     /* integer kernel: columns of C accumulated at once */

/* One operand's matrix view: m x n with strides in elements, plus the
 * batch strides (elements, 0 where broadcast) of the output's batch dims. */
typedef struct mview {
  char *p;
  int64_t rows, cols, rs, cs;
  int64_t bst[MG_MAX_DIMS];
} mview;

typedef struct mjob {
  mg_dtype dt;
  size_t es;
  int64_t m, n, k;
  int nb;                       /* batch dimensions */
  int64_t bshape[MG_MAX_DIMS];
  int64_t nbatch;
  mview a, b;
  char *c;
  mg_limits *lim;               /* polled between blocks when a limit may stop the product (limits.c) */
} mjob;

/* Fills v from tensor t, which is the left (left = 1) or right operand. */
static void matmul_view(mview *v, const mg_tensor *t, int left, int nb) {
  int nd = t->ndim;
  v->p = mg_ptr(t);
  if (nd == 1) {  /* a row vector on the left, a column vector on the right */
    v->rows = left ? 1 : t->shape[0];
    v->cols = left ? t->shape[0] : 1;
    v->rs = left ? 0 : t->strides[0];
    v->cs = left ? t->strides[0] : 0;
  } else {
    v->rows = t->shape[nd - 2];
    v->cols = t->shape[nd - 1];
    v->rs = t->strides[nd - 2];
    v->cs = t->strides[nd - 1];
  }
  int tb = nd > 2 ? nd - 2 : 0;
  for (int d = 0; d < nb; d++) {
    int td = d - (nb - tb);
    v->bst[d] = td >= 0 && t->shape[td] != 1 ? t->strides[td] : 0;
  }
}

/* Pointers of batch `b` (a flat index over the batch shape). */
static void matmul_batch_ptrs(const mjob *j, int64_t b, char **pa, char **pb, char **pc) {
  int64_t oa = 0, ob = 0;
  *pc = j->c + b * j->m * j->n * (int64_t)j->es;
  for (int d = j->nb - 1; d >= 0; d--) {
    int64_t i = b % j->bshape[d];
    b /= j->bshape[d];
    oa += i * j->a.bst[d];
    ob += i * j->b.bst[d];
  }
  *pa = j->a.p + oa * (int64_t)j->es;
  *pb = j->b.p + ob * (int64_t)j->es;
}

/* ---- small float kernels ------------------------------------------------------ */

/* C = A B with C contiguous (row stride n). The axpy form keeps four rows of
 * C live while streaming one row of B; it is specialised for unit csb. */
#define SMALL_FNS(NAME, T)                                                               \
  static inline __attribute__((always_inline)) void axpy_##NAME(                        \
      int64_t m, int64_t n, int64_t k, const T *a, int64_t rsa, int64_t csa, const T *b, \
      int64_t rsb, int64_t csb, T *restrict c, int64_t ldc) {                            \
    int64_t i = 0;                                                                       \
    for (; i + 4 <= m; i += 4) {                                                         \
      T *restrict c0 = c + i * ldc, *restrict c1 = c0 + ldc, *restrict c2 = c1 + ldc, *restrict c3 = c2 + ldc; \
      for (int64_t j = 0; j < n; j++) c0[j] = c1[j] = c2[j] = c3[j] = 0;                 \
      for (int64_t p = 0; p < k; p++) {                                                  \
        const T *ap = a + i * rsa + p * csa, *br = b + p * rsb;                          \
        T x0 = ap[0], x1 = ap[rsa], x2 = ap[2 * rsa], x3 = ap[3 * rsa];                  \
        _Pragma("omp simd") for (int64_t j = 0; j < n; j++) {                            \
          T bv = br[j * csb];                                                            \
          c0[j] += x0 * bv;                                                              \
          c1[j] += x1 * bv;                                                              \
          c2[j] += x2 * bv;                                                              \
          c3[j] += x3 * bv;                                                              \
        }                                                                                \
      }                                                                                  \
    }                                                                                    \
    for (; i < m; i++) {                                                                 \
      T *restrict cr = c + i * ldc;                                                      \
      for (int64_t j = 0; j < n; j++) cr[j] = 0;                                         \
      for (int64_t p = 0; p < k; p++) {                                                  \
        T x = a[i * rsa + p * csa];                                                      \
        const T *br = b + p * rsb;                                                       \
        _Pragma("omp simd") for (int64_t j = 0; j < n; j++) cr[j] += x * br[j * csb];    \
      }                                                                                  \
    }                                                                                    \
  }                                                                                      \
  /* C[i][j] = dot(A row i, B column j): for column vectors and transposed B. */        \
  static void dot_##NAME(int64_t m, int64_t n, int64_t k, const T *a, int64_t rsa,       \
                         int64_t csa, const T *b, int64_t rsb, int64_t csb, T *restrict c, \
                         int64_t ldc) {                                                  \
    for (int64_t i = 0; i < m; i++)                                                      \
      for (int64_t j = 0; j < n; j++) {                                                  \
        const T *ar = a + i * rsa, *bc = b + j * csb;                                    \
        T s = 0;                                                                         \
        if (csa == 1 && rsb == 1) {                                                      \
          _Pragma("omp simd reduction(+ : s)") for (int64_t p = 0; p < k; p++) s += ar[p] * bc[p]; \
        } else {                                                                         \
          for (int64_t p = 0; p < k; p++) s += ar[p * csa] * bc[p * rsb];                \
        }                                                                                \
        c[i * ldc + j] = s;                                                              \
      }                                                                                  \
  }                                                                                      \
  /* A transposed B (a gradient's g @ W^T) used by several rows of A: one       \
   * row-major copy of it makes the axpy form apply (dot products of k ~ 10     \
   * were 15x slower than the copy and axpy together). */                       \
  static int packed_##NAME(int64_t m, int64_t n, int64_t k, const T *a, int64_t rsa,     \
                           int64_t csa, const T *b, int64_t rsb, int64_t csb, T *c,      \
                           int64_t ldc) {                                                \
    T stackbuf[4096], *buf = k * n <= 4096 ? stackbuf : malloc((size_t)(k * n) * sizeof(T)); \
    if (!buf) return 0;                                                                  \
    for (int64_t p = 0; p < k; p++)                                                      \
      for (int64_t j = 0; j < n; j++) buf[p * n + j] = b[p * rsb + j * csb];             \
    axpy_##NAME(m, n, k, a, rsa, csa, buf, n, 1, c, ldc);                                \
    if (buf != stackbuf) free(buf);                                                      \
    return 1;                                                                            \
  }                                                                                      \
  static void small_##NAME(int64_t m, int64_t n, int64_t k, const T *a, int64_t rsa,     \
                           int64_t csa, const T *b, int64_t rsb, int64_t csb, T *c,      \
                           int64_t ldc) {                                                \
    if (n > 1 && csb != 1 && m >= 4 && k < 64 && packed_##NAME(m, n, k, a, rsa, csa, b, rsb, csb, c, ldc)) return; \
    if (n == 1 || (csb != 1 && rsb == 1 && csa == 1)) dot_##NAME(m, n, k, a, rsa, csa, b, rsb, csb, c, ldc); \
    else if (csb == 1) axpy_##NAME(m, n, k, a, rsa, csa, b, rsb, 1, c, ldc);             \
    else axpy_##NAME(m, n, k, a, rsa, csa, b, rsb, csb, c, ldc);                         \
  }
SMALL_FNS(f32, float)
SMALL_FNS(f64, double)

/* ---- integer kernel ------------------------------------------------------------- */

#define INT_FN(NAME, T)                                                                  \
  static void int_##NAME(int64_t m, int64_t n, int64_t k, const T *a, int64_t rsa,       \
                         int64_t csa, const T *b, int64_t rsb, int64_t csb, T *c, int64_t ldc) { \
    uint64_t acc[ICH];                                                                   \
    for (int64_t j0 = 0; j0 < n; j0 += ICH) {                                            \
      int len = n - j0 < ICH ? (int)(n - j0) : ICH;                                      \
      for (int64_t i = 0; i < m; i++) {                                                  \
        for (int j = 0; j < len; j++) acc[j] = 0;                                        \
        for (int64_t p = 0; p < k; p++) {                                                \
          uint64_t x = (uint64_t)(int64_t)a[i * rsa + p * csa];                          \
          const T *br = b + p * rsb + j0 * csb;                                          \
          _Pragma("omp simd") for (int j = 0; j < len; j++) acc[j] += x * (uint64_t)(int64_t)br[j * csb]; \
        }                                                                                \
        for (int j = 0; j < len; j++) c[i * ldc + j0 + j] = (T)(int64_t)acc[j];          \
      }                                                                                  \
    }                                                                                    \
  }
INT_FN(i32, int32_t)
INT_FN(i64, int64_t)
INT_FN(u8, uint8_t)

/* ---- BLIS ------------------------------------------------------------------------ */

/* Makes (rs, cs) acceptable to BLIS for a rows x cols matrix if it can be
 * done without copying (the stride of a size-1 dimension is free to pick);
 * returns 0 when the matrix must be copied. */
static int blis_strides(int64_t rows, int64_t cols, int64_t *rs, int64_t *cs) {
  if (rows == 1 && cols == 1) *rs = *cs = 1;
  else if (rows == 1) *rs = cols * *cs;
  else if (cols == 1) *cs = rows * *rs;
  int64_t r = *rs, c = *cs;
  if (r <= 0 || c <= 0) return 0;
  if (r == 1 && c == 1) return rows == 1 || cols == 1;
  if (c == 1) return r >= cols;
  if (r == 1) return c >= rows;
  if (r == c) return rows == 1 || cols == 1;
  return r < c ? rows * r <= c : cols * c <= r;
}

/* Products below this many multiply-adds run BLIS on one thread: an OpenMP
 * region costs more than it gains there, and on a loaded machine a sleeping
 * second thread stalled 32x784 @ 784x128 products for milliseconds. */
#define BLIS_ONE_THREAD_MNK (1 << 23)

/* A BLIS call cannot be interrupted, so when a limit may stop the product
 * a large one (over POLL_MNK multiply-adds, ~6 ms on the 2-core machine)
 * runs as blocks of C of at most BLOCK_MNK, about a 512 x 512 tile for k =
 * 2048: one OpenMP region hands the blocks out (dynamically) to the threads,
 * each running single-threaded BLIS on its block and polling before the
 * next. No thread waits at another's barrier (BLIS's own threading meets at
 * one per panel, which a loaded machine stretches), and the extra packing
 * of each block's panels is under 1% of the work. */
#define POLL_MNK ((double)(1u << 30))
#define BLOCK_MNK ((double)(1u << 29))

/* C (m x n, row stride ldc) = A (m x k) B (k x n). */
static void blis_gemm(const mjob *j, int64_t m, int64_t n, char *a, int64_t rsa, int64_t csa, char *b,
                      int64_t rsb, int64_t csb, char *c, int64_t ldc, int one_thread) {
  rntm_t rntm;
  bli_rntm_init_from_global(&rntm);
  if (one_thread || (double)m * (double)n * (double)j->k < BLIS_ONE_THREAD_MNK) bli_rntm_set_num_threads(1, &rntm);
  if (j->dt == MG_FLOAT32) {
    float one = 1, zero = 0;
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, j->k, &one, (float *)a, rsa, csa,
                 (float *)b, rsb, csb, &zero, (float *)c, ldc, 1, NULL, &rntm);
  } else {
    double one = 1, zero = 0;
    bli_dgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, j->k, &one, (double *)a, rsa, csa,
                 (double *)b, rsb, csb, &zero, (double *)c, ldc, 1, NULL, &rntm);
  }
}

/* One batch's product: whole, or in blocks of C of about POLL_MNK
 * multiply-adds with a poll before each when limits are current. */
static void blis_product(const mjob *j, char *a, int64_t rsa, int64_t csa, char *b, int64_t rsb, int64_t csb,
                         char *c) {
  int nt = mg_threads();
  if (!j->lim || (double)j->m * (double)j->n * (double)j->k <= POLL_MNK) {
    blis_gemm(j, j->m, j->n, a, rsa, csa, b, rsb, csb, c, j->n, 0);
    return;
  }
  int64_t side = (int64_t)sqrt(BLOCK_MNK / (double)j->k) / 64 * 64;
  if (side < 128) side = 128;
  int64_t bm = j->m < side ? j->m : side, bn = j->n < side ? j->n : side, es = (int64_t)j->es;
  int64_t rows = (j->m + bm - 1) / bm, cols = (j->n + bn - 1) / bn;
  mg_limits *lim = j->lim;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
  for (int64_t blk = 0; blk < rows * cols; blk++) {
    if (mg_kernel_stop(lim)) continue;
    int64_t i0 = blk / cols * bm, j0 = blk % cols * bn;
    blis_gemm(j, j->m - i0 < bm ? j->m - i0 : bm, j->n - j0 < bn ? j->n - j0 : bn, a + i0 * rsa * es, rsa, csa,
              b + j0 * csb * es, rsb, csb, c + (i0 * j->n + j0) * es, j->n, 1);
  }
}

/* A contiguous copy of one rows x cols matrix into buf. */
static void matrix_pack(const mjob *j, const char *src, int64_t rows, int64_t cols, int64_t rs,
                        int64_t cs, char *buf) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t q = 0; q < cols; q++) {
      const char *s = src + (r * rs + q * cs) * (int64_t)j->es;
      memcpy(buf + (r * cols + q) * (int64_t)j->es, s, j->es);
    }
}

static mg_status run_blis(const mjob *j) {
  int64_t rsa = j->a.rs, csa = j->a.cs, rsb = j->b.rs, csb = j->b.cs;
  int oka = blis_strides(j->m, j->k, &rsa, &csa), okb = blis_strides(j->k, j->n, &rsb, &csb);
  /* Batches across the threads, each product on one thread (as the polled blocks above): a
   * batched product (einsum's "bhqd,bhkd->bhqk", attention scores: 64 products of 512 x 64 x
   * 512) otherwise ran one product at a time with BLIS's threads meeting at a barrier per
   * panel, which a loaded machine stretches: 3.3 s instead of ~0.3 s there. Only for operands
   * BLIS reads in place (the packing buffers below are one per call), products small
   * enough to need no polling, and batch counts that keep the threads busy to the end (3
   * large products on 2 threads would leave one thread idle for the last third). */
  int nt = mg_threads();
  double per = (double)j->m * (double)j->n * (double)j->k;
  if (oka && okb && nt > 1 && j->nbatch >= nt && (j->nbatch % nt == 0 || j->nbatch >= 4 * nt) &&
      per * (double)j->nbatch >= BLIS_ONE_THREAD_MNK && (!j->lim || per <= POLL_MNK)) {
    mg_limits *lim = j->lim;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t bi = 0; bi < j->nbatch; bi++) {
      if (mg_kernel_stop(lim)) continue;
      char *pa, *pb, *pc;
      matmul_batch_ptrs(j, bi, &pa, &pb, &pc);
      blis_gemm(j, j->m, j->n, pa, rsa, csa, pb, rsb, csb, pc, j->n, 1);
    }
    return MG_OK;
  }
  char *bufa = NULL, *bufb = NULL, *last_a = NULL, *last_b = NULL;
  mg_status st = MG_OK;
  if ((!oka && (st = mg_work_alloc((size_t)(j->m * j->k) * j->es, "matmul", (void **)&bufa))) ||
      (!okb && (st = mg_work_alloc((size_t)(j->k * j->n) * j->es, "matmul", (void **)&bufb)))) {
    mg_work_free(bufa);
    return st;
  }
  for (int64_t bi = 0; bi < j->nbatch && !mg_kernel_stop(j->lim); bi++) {
    char *pa, *pb, *pc;
    matmul_batch_ptrs(j, bi, &pa, &pb, &pc);
    if (!oka && pa != last_a) matrix_pack(j, pa, j->m, j->k, j->a.rs, j->a.cs, bufa);  /* once per distinct matrix */
    if (!okb && pb != last_b) matrix_pack(j, pb, j->k, j->n, j->b.rs, j->b.cs, bufb);
    last_a = pa, last_b = pb;
    blis_product(j, oka ? pa : bufa, oka ? rsa : j->k, oka ? csa : 1, okb ? pb : bufb, okb ? rsb : j->n,
                 okb ? csb : 1, pc);
  }
  mg_work_free(bufa);
  mg_work_free(bufb);
  return MG_OK;
}

/* ---- the kernel --------------------------------------------------------------------- */

/* Runs part `part` of `nparts` of batch bi with the small float or the
 * integer kernel: a band of rows of C, or of columns when C has one row. */
static void run_plain_band(const mjob *j, int64_t m, int64_t n, char *pa, char *pb, char *pc) {
  const mview *a = &j->a, *b = &j->b;
#define MM_ARGS(T) m, n, j->k, (const T *)pa, a->rs, a->cs, (const T *)pb, b->rs, b->cs, (T *)pc, j->n
  switch (j->dt) {
  case MG_FLOAT32: small_f32(MM_ARGS(float)); break;
  case MG_FLOAT64: small_f64(MM_ARGS(double)); break;
  case MG_INT32: int_i32(MM_ARGS(int32_t)); break;
  case MG_INT64: int_i64(MM_ARGS(int64_t)); break;
  default: int_u8(MM_ARGS(uint8_t)); break;
  }
#undef MM_ARGS
}

/* The part's rows (or columns), in pieces of about MG_POLL_CHUNK
 * multiply-adds with a poll between them when limits are current. */
static void run_plain_part(const mjob *j, int64_t bi, int part, int nparts) {
  char *pa, *pb, *pc;
  matmul_batch_ptrs(j, bi, &pa, &pb, &pc);
  const mview *a = &j->a, *b = &j->b;
  int64_t es = (int64_t)j->es, rows = j->m > 1 ? j->m : j->n, per = j->k * (j->m > 1 ? j->n : 1);
  int64_t lo = rows * part / nparts, hi = rows * (part + 1) / nparts;
  int64_t step = j->lim ? (per >= MG_POLL_CHUNK ? 1 : MG_POLL_CHUNK / per) : hi - lo;
  if (step < 1) step = 1;
  for (int64_t r = lo; r < hi && !mg_kernel_stop(j->lim); r += step) {
    int64_t len = hi - r < step ? hi - r : step;
    if (j->m > 1) run_plain_band(j, len, j->n, pa + r * a->rs * es, pb, pc + r * j->n * es);
    else run_plain_band(j, 1, len, pa, pb + r * b->cs * es, pc + r * es);
  }
}

/* Plain kernels over all batches: threads across batches, or across bands
 * of one product (a large matrix-vector product is memory-bound, and these
 * loops stream it at bandwidth where BLIS's packing would copy it first). */
static void run_plain(const mjob *j) {
  double work = (double)j->m * (double)j->n * (double)j->k * (double)j->nbatch;
  int nt = work >= PAR_MNK ? mg_threads() : 1;
  if (nt > 1 && j->nbatch >= nt) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t bi = 0; bi < j->nbatch; bi++) run_plain_part(j, bi, 0, 1);
  } else if (nt > 1) {
    for (int64_t bi = 0; bi < j->nbatch; bi++) {
#pragma omp parallel num_threads(nt)
      run_plain_part(j, bi, omp_get_thread_num(), omp_get_num_threads());
    }
  } else {
    for (int64_t bi = 0; bi < j->nbatch; bi++) run_plain_part(j, bi, 0, 1);
  }
}

/* Turns C = A b (b a column) into C^T = b^T A^T: the same numbers and the
 * same output memory, but A's columns become contiguous rows streamed by
 * the axpy loop instead of strided dot products (A a transposed view). */
static void matmul_flip(mjob *j) {
  mview a = j->a, b = j->b;
  j->a = (mview){b.p, 1, j->k, 0, b.rs, {0}};
  j->b = (mview){a.p, j->k, j->m, a.cs, a.rs, {0}};
  memcpy(j->a.bst, b.bst, sizeof b.bst);
  memcpy(j->b.bst, a.bst, sizeof a.bst);
  j->n = j->m;
  j->m = 1;
}

/* Square 2x2, 3x3 and 4x4 products (transforms in a game, the chained 2x2
 * matmuls of a staged benchmark) with the size known to the compiler, so the
 * loops unroll: about a third of the generic tiny loop's time. */
#define SQUARE_FN(N)                                                                     \
  static void square_##N(const float *restrict A, const float *restrict B, float *restrict C) { \
    for (int i = 0; i < N; i++)                                                          \
      for (int j = 0; j < N; j++) {                                                      \
        float acc = 0.0f;                                                                \
        for (int p = 0; p < N; p++) acc += A[i * N + p] * B[p * N + j];                  \
        C[i * N + j] = acc;                                                              \
      }                                                                                  \
  }
SQUARE_FN(2)
SQUARE_FN(3)
SQUARE_FN(4)

/* Tiny contiguous 2-d float32 products (chains of 2x2 matmuls are a staged
 * benchmark): a direct loop before any of the general set-up. */
static int matmul_tiny_f32(const mg_tensor *a, const mg_tensor *b, mg_tensor *out) {
  if (a->ndim != 2 || b->ndim != 2 || a->dtype != MG_FLOAT32 || b->dtype != MG_FLOAT32) return 0;
  int64_t m = a->shape[0], k = a->shape[1], n = b->shape[1];
  if (m > 8 || k > 8 || n > 8 || a->strides[1] != 1 || a->strides[0] != k || b->strides[1] != 1 ||
      b->strides[0] != n)
    return 0;
  /* float32 known: no mg_ptr (its dtype-size call costs as much as a 2x2 product) */
  const float *restrict A = (const float *)a->storage->data + a->offset;
  const float *restrict B = (const float *)b->storage->data + b->offset;
  float *restrict C = (float *)out->storage->data + out->offset;
  if (m == k && k == n && m >= 2 && m <= 4) {
    if (m == 2) square_2(A, B, C);
    else if (m == 3) square_3(A, B, C);
    else square_4(A, B, C);
    return 1;
  }
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < n; j++) {
      float acc = 0.0f;
      for (int64_t p = 0; p < k; p++) acc += A[i * k + p] * B[p * n + j];
      C[i * n + j] = acc;
    }
  return 1;
}

mg_status k_matmul(const mg_call *c, mg_tensor *out) {
  const mg_tensor *a = c->in[0], *b = c->in[1];
  if (matmul_tiny_f32(a, b, out)) return MG_OK;
  mjob j;
  j.dt = (mg_dtype)out->dtype;
  j.es = mg_dtype_size(j.dt);
  j.nb = out->ndim - (a->ndim > 1) - (b->ndim > 1);
  j.nbatch = 1;
  for (int d = 0; d < j.nb; d++) j.bshape[d] = out->shape[d], j.nbatch *= out->shape[d];
  matmul_view(&j.a, a, 1, j.nb);
  matmul_view(&j.b, b, 0, j.nb);
  j.m = j.a.rows, j.k = j.a.cols, j.n = j.b.cols;
  j.c = mg_ptr(out);
  j.lim = mg_tl_kernel;
  if (j.nbatch == 0 || j.m == 0 || j.n == 0) return MG_OK;
  if (j.k == 0) {  /* an empty sum: zeros */
    memset(j.c, 0, (size_t)(j.nbatch * j.m * j.n) * j.es);
    return MG_OK;
  }
  if (j.n == 1 && j.m > 1 && j.a.rs == 1 && j.a.cs != 1) matmul_flip(&j);
  int isfloat = j.dt == MG_FLOAT32 || j.dt == MG_FLOAT64, vector = j.m == 1 || j.n == 1;
  if (isfloat && !vector && (double)j.m * (double)j.n * (double)j.k > SMALL_MNK) return run_blis(&j);
  run_plain(&j);
  return MG_OK;
}
