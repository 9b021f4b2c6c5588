/*
 * reduce.c — reductions (sum, mean, prod, max, min, argmax, argmin, all,
 * any, logsumexp, variance) and softmax / log_softmax.
 *
 * Every reduction runs through one engine. The input's dimensions are split
 * into kept ones (the output's, in order; the output is contiguous) and
 * reduced ones; size-1 dimensions are dropped and neighbours that are
 * contiguous with each other merged, so "all axes of a contiguous tensor" is
 * one long row and "the last axis" is rows. Then one of two loops runs:
 *
 *   rows     for each output element, walk the reduced elements (the
 *            innermost reduced dimension is the tight loop). Used when the
 *            reduced elements are the closer ones in memory.
 *   columns  the innermost kept dimension is the tight loop: a chunk of
 *            outputs (a whole row of them when it fits in L2) is
 *            accumulated one reduced position at a time (out[j] += x[r][j]),
 *            which vectorises and streams memory in order; column sums of a
 *            2-D tensor take this path.
 *
 * The typed work is done by a "row" and a "column" function per (reduction,
 * input dtype), stamped by macros and called once per contiguous run, never
 * per element. Accumulators: float sums in double (float32 rows are summed
 * in blocks of float32 lanes first, so a sum of 1e7 ones is exact and the
 * loop stays vectorised); integer sums and products in int64 with
 * wrap-around (done in uint64, so no signed-overflow UB). max/min propagate
 * NaN; argmax/argmin return the first extreme value, or the first NaN (a
 * long row: a vectorised max, then a search for its first position).
 *
 * Threads: rows split across threads by output when there are enough
 * outputs, else each output's reduced range is split and the partial states
 * merged (the merge is the reduction itself). Column chunks are independent.
 *
 * logsumexp and variance are two passes through the engine: max (mean)
 * first, then the sum of exp(x - max) (of (x - mean)^2) with that value per
 * output as the "center". variance divides by max(N - correction, 0), as
 * NumPy does: with no degrees of freedom left it is inf, or NaN for 0 / 0.
 * Empty reductions give the identity: sum 0, prod 1, all true, any false,
 * mean and variance NaN, logsumexp -inf (max/min/argmax are refused by infer).
 *
 * exp (logsumexp, softmax) is reduce_expf, a vectorisable polynomial. Its
 * vector loops end in a scalar tail, which dominates rows of a few elements
 * (10 classes), so short float32 rows are batched: many rows' subtractions
 * first, then one exp loop over all of them.
 */
#include "internal.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#define CH 256          /* outputs per batch of rows; column chunks are at least this wide */
#define CH_MAX 8192     /* widest column chunk (its states stay in L2) */
#define MG_MAX_THREADS_SPLIT 256  /* threads sharing one output's range */
#define SUM_BLOCK 1024  /* float32 elements summed in float lanes before going to double */
#define SHORT_ROW 64    /* float32 exp rows shorter than this are batched */

enum { R_SUM, R_PROD, R_MAX, R_MIN, R_ALL, R_ANY, R_ARGMAX, R_ARGMIN, R_SUMEXP, R_SUMSQ, R_NKINDS };
/* What finish does with a state: write it, or divide / take the log first. */
enum { F_PLAIN, F_MEAN, F_LSE, F_VAR };

/* Accumulator states of a chunk of outputs: f for floats, i for integers
 * and bools, at for arg indices (-1 = nothing seen yet). */
typedef struct racc {
  double *f;
  int64_t *i, *at;
} racc;

/* Declares `name`, a racc over stack arrays of n states. */
#define RACC_LOCAL(name, n)        \
  double name##_f[n];              \
  int64_t name##_i[n], name##_at[n]; \
  racc name = {name##_f, name##_i, name##_at}

typedef void (*row_fn)(racc *a, int o, const char *p, int64_t n, int64_t st, double c, int64_t pos);
typedef void (*col_fn)(racc *a, int64_t len, const char *p, int64_t st, const double *c, int64_t pos);

typedef struct rplan {
  int nk, nr;                    /* kept and reduced dimensions, outer first */
  int64_t ks[MG_MAX_DIMS], kst[MG_MAX_DIMS];
  int64_t rs[MG_MAX_DIMS], rst[MG_MAX_DIMS];
  int64_t nout, nred;
} rplan;

typedef struct rctx {
  int kind, fin, isfloat;
  row_fn row;
  col_fn col;
  const char *x;                 /* the input's first element */
  size_t es;                     /* its element size */
  char *out;                     /* contiguous output (or the center buffer) */
  mg_dtype odt;
  const double *center;          /* per-output center of a second pass, or NULL */
  double divisor;                /* N for mean, N - correction for variance */
  int64_t base;                  /* index base added to arg results */
  mg_limits *lim;                /* polled between pieces of long runs (limits.c), or NULL */
} rctx;

/* ---- e^x for x <= 0 (softmax and logsumexp only ever need that) ------------ */

/* 2^n * p(r) with r = x - n ln2 in [-ln2/2, ln2/2] and p the degree-7 Taylor
 * polynomial: at most 0.66 ulp from exp over [-87, 0] (checked against
 * libm's double exp at every float). Branch-free so omp simd loops vectorise
 * it. Below -87 it gives 0 (the true values are within a few ulps of
 * FLT_MIN, next to a sum that holds e^0 = 1); NaN stays NaN. */
static inline float reduce_expf(float x) {
  const float magic = 12582912.0f;  /* 1.5 * 2^23: adding it rounds to an integer */
  float xc = x < -87.0f ? -87.0f : x;
  float t = xc * 1.44269504f + magic, n = t - magic;
  uint32_t tb;
  memcpy(&tb, &t, 4);
  float r = xc - n * 0.693145752f;
  r = r - n * 1.42860677e-6f;
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  uint32_t eb = (tb - 0x4B400000u + 127u) << 23;  /* unsigned: no UB on garbage (NaN) */
  float scale;
  memcpy(&scale, &eb, 4);
  float y = p * scale;
  return x < -87.0f ? 0.0f : y;
}

/* ---- typed row and column functions ------------------------------------------ */

/* Adds ELEM (an expression of j) for j in [0, n) to the double `acc`: per
 * block of SUM_BLOCK, LANES float accumulators, then double. The lanes are
 * explicit so the rounding is the same whether or not the compiler
 * vectorised (-O1 builds do not), and each lane adds only SUM_BLOCK/LANES
 * values. */
#define LANES 32
#define LANE_SUM(T, acc, n, ELEM)                                                       \
  for (int64_t b_ = 0; b_ < (n); b_ += SUM_BLOCK) {                                     \
    int64_t e_ = (n) - b_ < SUM_BLOCK ? (n) : b_ + SUM_BLOCK, q_ = b_;                  \
    T lane_[LANES] = {0};                                                               \
    for (; q_ + LANES <= e_; q_ += LANES) {                                             \
      _Pragma("omp simd") for (int l_ = 0; l_ < LANES; l_++) {                          \
        const int64_t j = q_ + l_;                                                      \
        lane_[l_] += (ELEM);                                                            \
      }                                                                                 \
    }                                                                                   \
    double s_ = 0;                                                                      \
    for (; q_ < e_; q_++) {                                                             \
      const int64_t j = q_;                                                             \
      s_ += (ELEM);                                                                     \
    }                                                                                   \
    for (int l_ = 0; l_ < LANES; l_++) s_ += lane_[l_];                                 \
    (acc) += s_;                                                                        \
  }

/* Sum of n float32 at stride st (short runs directly in double). */
static double sum_f32(const float *x, int64_t n, int64_t st) {
  double acc = 0;
  if (n < 2 * LANES) {
    for (int64_t j = 0; j < n; j++) acc += x[j * st];
  } else if (st == 1) {
    LANE_SUM(float, acc, n, x[j])
  } else {
    LANE_SUM(float, acc, n, x[j * st])
  }
  return acc;
}

static double sum_f64(const double *x, int64_t n, int64_t st) {
  double acc = 0;
  if (st == 1) {
#pragma omp simd reduction(+ : acc)
    for (int64_t j = 0; j < n; j++) acc += x[j];
  } else {
    for (int64_t j = 0; j < n; j++) acc += x[j * st];
  }
  return acc;
}

#define RPRAGMA(x) _Pragma(#x)  /* a pragma whose text holds macro arguments */

/* sum: floats */
static void row_sum_f32(racc *a, int o, const char *p, int64_t n, int64_t st, double c, int64_t pos) {
  (void)c, (void)pos;
  a->f[o] += sum_f32((const float *)p, n, st);
}
static void row_sum_f64(racc *a, int o, const char *p, int64_t n, int64_t st, double c, int64_t pos) {
  (void)c, (void)pos;
  a->f[o] += sum_f64((const double *)p, n, st);
}
/* Stamps a column function: COLBODY folds v, the element of this reduced
 * position for output j, into the state a->X[j]. */
#define COL_SIMPLE(kind, NAME, T, COLBODY)                                              \
  static void col_##kind##_##NAME(racc *a, int64_t len, const char *p, int64_t st,          \
                                  const double *c, int64_t pos) {                       \
    const T *x = (const T *)p;                                                          \
    (void)c;                                                                            \
    (void)pos;                                                                          \
    if (st == 1) {                                                                      \
      _Pragma("omp simd") for (int64_t j = 0; j < len; j++) {                           \
        const T v = x[j];                                                               \
        COLBODY;                                                                        \
      }                                                                                 \
    } else {                                                                            \
      for (int64_t j = 0; j < len; j++) {                                               \
        const T v = x[j * st];                                                          \
        COLBODY;                                                                        \
      }                                                                                 \
    }                                                                                   \
  }
COL_SIMPLE(sum, f32, float, a->f[j] += v)
COL_SIMPLE(sum, f64, double, a->f[j] += v)

/* sum: integers, wrapping in uint64 */
#define SUM_INT(NAME, T)                                                                \
  static void row_sum_##NAME(racc *a, int o, const char *p, int64_t n, int64_t st,      \
                             double c, int64_t pos) {                                   \
    const T *x = (const T *)p;                                                          \
    uint64_t acc = 0;                                                                   \
    (void)c, (void)pos;                                                                 \
    if (st == 1) {                                                                      \
      _Pragma("omp simd reduction(+ : acc)") for (int64_t j = 0; j < n; j++) acc += (uint64_t)(int64_t)x[j]; \
    } else {                                                                            \
      for (int64_t j = 0; j < n; j++) acc += (uint64_t)(int64_t)x[j * st];              \
    }                                                                                   \
    a->i[o] = (int64_t)((uint64_t)a->i[o] + acc);                                       \
  }                                                                                     \
  COL_SIMPLE(sum, NAME, T, a->i[j] = (int64_t)((uint64_t)a->i[j] + (uint64_t)(int64_t)v))
SUM_INT(i32, int32_t)
SUM_INT(i64, int64_t)
SUM_INT(u8, uint8_t)

/* prod: floats in double, integers wrapping in uint64 */
#define PROD_INT(NAME, T)                                                               \
  static void row_prod_##NAME(racc *a, int o, const char *p, int64_t n, int64_t st,     \
                              double c, int64_t pos) {                                  \
    const T *x = (const T *)p;                                                          \
    uint64_t acc = 1;                                                                   \
    (void)c, (void)pos;                                                                 \
    if (st == 1) {                                                                      \
      _Pragma("omp simd reduction(* : acc)") for (int64_t j = 0; j < n; j++) acc *= (uint64_t)(int64_t)x[j]; \
    } else {                                                                            \
      for (int64_t j = 0; j < n; j++) acc *= (uint64_t)(int64_t)x[j * st];              \
    }                                                                                   \
    a->i[o] = (int64_t)((uint64_t)a->i[o] * acc);                                       \
  }                                                                                     \
  COL_SIMPLE(prod, NAME, T, a->i[j] = (int64_t)((uint64_t)a->i[j] * (uint64_t)(int64_t)v))
static void row_prod_f32(racc *a, int o, const char *p, int64_t n, int64_t st, double c, int64_t pos) {
  const float *x = (const float *)p;
  double acc = 1;
  (void)c, (void)pos;
  for (int64_t j = 0; j < n; j++) acc *= x[j * st];
  a->f[o] *= acc;
}
static void row_prod_f64(racc *a, int o, const char *p, int64_t n, int64_t st, double c, int64_t pos) {
  const double *x = (const double *)p;
  double acc = 1;
  (void)c, (void)pos;
  for (int64_t j = 0; j < n; j++) acc *= x[j * st];
  a->f[o] *= acc;
}
COL_SIMPLE(prod, f32, float, a->f[j] *= v)
COL_SIMPLE(prod, f64, double, a->f[j] *= v)
PROD_INT(i32, int32_t)
PROD_INT(i64, int64_t)
PROD_INT(u8, uint8_t)

/* max / min: floats with NaN propagation (a NaN flag beside a plain
 * compare-select, which vectorises), integers with plain compares. */
#define MAXMIN_FLOAT(kind, NAME, T, OP, INIT)                                           \
  static void row_##kind##_##NAME(racc *a, int o, const char *p, int64_t n, int64_t st, \
                                  double c, int64_t pos) {                              \
    const T *x = (const T *)p;                                                          \
    T m = INIT;                                                                         \
    int hasnan = 0;                                                                        \
    (void)c, (void)pos;                                                                 \
    if (st == 1) {                                                                      \
      RPRAGMA(omp simd reduction(kind : m) reduction(| : hasnan)) for (int64_t j = 0; j < n; j++) { \
        T v = x[j];                                                                     \
        m = v OP m ? v : m;                                                             \
        hasnan |= v != v;                                                                  \
      }                                                                                 \
    } else {                                                                            \
      for (int64_t j = 0; j < n; j++) {                                                 \
        T v = x[j * st];                                                                \
        m = v OP m ? v : m;                                                             \
        hasnan |= v != v;                                                                  \
      }                                                                                 \
    }                                                                                   \
    double f = a->f[o];                                                                 \
    a->f[o] = hasnan || f != f ? NAN : (m OP f ? (double)m : f);                           \
  }                                                                                     \
  COL_SIMPLE(kind, NAME, T, a->f[j] = (((double)v OP a->f[j]) | (v != v)) ? (double)v : a->f[j])
MAXMIN_FLOAT(max, f32, float, >, -INFINITY)
MAXMIN_FLOAT(max, f64, double, >, -INFINITY)
MAXMIN_FLOAT(min, f32, float, <, INFINITY)
MAXMIN_FLOAT(min, f64, double, <, INFINITY)

#define MAXMIN_INT(kind, NAME, T, OP, INIT)                                             \
  static void row_##kind##_##NAME(racc *a, int o, const char *p, int64_t n, int64_t st, \
                                  double c, int64_t pos) {                              \
    const T *x = (const T *)p;                                                          \
    T m = INIT;                                                                         \
    (void)c, (void)pos;                                                                 \
    if (st == 1) {                                                                      \
      RPRAGMA(omp simd reduction(kind : m)) for (int64_t j = 0; j < n; j++) m = x[j] OP m ? x[j] : m; \
    } else {                                                                            \
      for (int64_t j = 0; j < n; j++) m = x[j * st] OP m ? x[j * st] : m;               \
    }                                                                                   \
    if ((int64_t)m OP a->i[o]) a->i[o] = (int64_t)m;                                    \
  }                                                                                     \
  COL_SIMPLE(kind, NAME, T, a->i[j] = (int64_t)v OP a->i[j] ? (int64_t)v : a->i[j])
MAXMIN_INT(max, i32, int32_t, >, INT32_MIN)
MAXMIN_INT(max, i64, int64_t, >, INT64_MIN)
MAXMIN_INT(max, u8, uint8_t, >, 0)
MAXMIN_INT(min, i32, int32_t, <, INT32_MAX)
MAXMIN_INT(min, i64, int64_t, <, INT64_MAX)
MAXMIN_INT(min, u8, uint8_t, <, UINT8_MAX)

/* all / any: a run is skipped once the answer is known. NaN is nonzero. */
#define ALLANY(NAME, T)                                                                 \
  static void row_all_##NAME(racc *a, int o, const char *p, int64_t n, int64_t st,      \
                             double c, int64_t pos) {                                   \
    const T *x = (const T *)p;                                                          \
    int zero = 0;                                                                       \
    (void)c, (void)pos;                                                                 \
    if (!a->i[o]) return;                                                               \
    _Pragma("omp simd reduction(| : zero)") for (int64_t j = 0; j < n; j++) zero |= x[j * st] == 0; \
    if (zero) a->i[o] = 0;                                                              \
  }                                                                                     \
  static void row_any_##NAME(racc *a, int o, const char *p, int64_t n, int64_t st,      \
                             double c, int64_t pos) {                                   \
    const T *x = (const T *)p;                                                          \
    int nz = 0;                                                                         \
    (void)c, (void)pos;                                                                 \
    if (a->i[o]) return;                                                                \
    _Pragma("omp simd reduction(| : nz)") for (int64_t j = 0; j < n; j++) nz |= x[j * st] != 0; \
    if (nz) a->i[o] = 1;                                                                \
  }                                                                                     \
  COL_SIMPLE(all, NAME, T, a->i[j] &= v != 0)                                           \
  COL_SIMPLE(any, NAME, T, a->i[j] |= v != 0)
ALLANY(f32, float)
ALLANY(f64, double)
ALLANY(i32, int32_t)
ALLANY(i64, int64_t)
ALLANY(u8, uint8_t)

/* argmax / argmin: the first extreme value; a NaN beats everything and the
 * first NaN stays. BEST is the state field holding the best value. A
 * contiguous row takes two vectorised passes (the extreme value, then the
 * first block holding it) instead of one branchy scalar pass. */
#define ARG_BLOCK 64
#define ARGFN(kind, NAME, T, OP, RED, BEST, BT)                                           \
  static int64_t first_##kind##_##NAME(const T *x, int64_t n, T *best) {                \
    T m = x[0];                                                                         \
    int hasnan = 0;                                                                        \
    RPRAGMA(omp simd reduction(RED : m) reduction(| : hasnan))                             \
    for (int64_t j = 0; j < n; j++) {                                                   \
      m = x[j] OP m ? x[j] : m;                                                         \
      hasnan |= x[j] != x[j];                                                              \
    }                                                                                   \
    int64_t b = 0;                                                                      \
    for (; b + ARG_BLOCK < n; b += ARG_BLOCK) { /* the block holding the first hit */   \
      int hit = 0;                                                                      \
      _Pragma("omp simd reduction(| : hit)") for (int64_t j = b; j < b + ARG_BLOCK; j++) \
        hit |= hasnan ? x[j] != x[j] : x[j] == m;                                          \
      if (hit) break;                                                                   \
    }                                                                                   \
    while (b < n - 1 && !(hasnan ? x[b] != x[b] : x[b] == m)) b++;                         \
    *best = x[b];                                                                       \
    return b;                                                                           \
  }                                                                                     \
  static void row_##kind##_##NAME(racc *a, int o, const char *p, int64_t n, int64_t st, \
                                  double c, int64_t pos) {                              \
    const T *x = (const T *)p;                                                          \
    int64_t j = 1, at = pos;                                                            \
    T best;                                                                             \
    (void)c;                                                                            \
    if (n == 0) return;                                                                 \
    if (st == 1 && n >= 2 * ARG_BLOCK) {                                                \
      at = pos + first_##kind##_##NAME(x, n, &best);                                    \
    } else {                                                                            \
      for (best = x[0]; j < n; j++) {                                                   \
        T v = x[j * st];                                                                \
        if (v OP best || (v != v && best == best)) best = v, at = pos + j;             \
      }                                                                                 \
    }                                                                                   \
    T cur = (T)a->BEST[o]; /* an earlier range wins ties */                             \
    if (a->at[o] < 0 || best OP cur || (best != best && cur == cur))                    \
      a->BEST[o] = best, a->at[o] = at;                                                 \
  }                                                                                     \
  static void col_##kind##_##NAME(racc *a, int64_t len, const char *p, int64_t st,      \
                                  const double *c, int64_t pos) {                       \
    const T *x = (const T *)p;                                                          \
    (void)c;                                                                            \
    if (pos == 0) {                                                                     \
      for (int64_t j = 0; j < len; j++) a->BEST[j] = x[j * st], a->at[j] = 0;           \
      return;                                                                           \
    }                                                                                   \
    if (st == 1) {                                                                      \
      _Pragma("omp simd") for (int64_t j = 0; j < len; j++) {                           \
        BT v = (BT)x[j], best = a->BEST[j];                                             \
        if ((v OP best) | ((v != v) & (best == best))) a->BEST[j] = v, a->at[j] = pos;  \
      }                                                                                 \
    } else {                                                                            \
      for (int64_t j = 0; j < len; j++) {                                               \
        BT v = (BT)x[j * st], best = a->BEST[j];                                        \
        if ((v OP best) | ((v != v) & (best == best))) a->BEST[j] = v, a->at[j] = pos;  \
      }                                                                                 \
    }                                                                                   \
  }
ARGFN(argmax, f32, float, >, max, f, double)
ARGFN(argmax, f64, double, >, max, f, double)
ARGFN(argmax, i32, int32_t, >, max, i, int64_t)
ARGFN(argmax, i64, int64_t, >, max, i, int64_t)
ARGFN(argmax, u8, uint8_t, >, max, i, int64_t)
ARGFN(argmin, f32, float, <, min, f, double)
ARGFN(argmin, f64, double, <, min, f, double)
ARGFN(argmin, i32, int32_t, <, min, i, int64_t)
ARGFN(argmin, i64, int64_t, <, min, i, int64_t)
ARGFN(argmin, u8, uint8_t, <, min, i, int64_t)

/* Sum of exp(x[j * st] - m) for j < n. The exps go through a buffer a block
 * at a time: the exp loop and the summing loop each vectorise, fused they
 * do not. */
static double sumexp_f32(const float *x, int64_t n, int64_t st, float m) {
  float buf[SUM_BLOCK];
  double acc = 0;
  for (int64_t b = 0; b < n; b += SUM_BLOCK) {
    int64_t len = n - b < SUM_BLOCK ? n - b : SUM_BLOCK;
    const float *xb = x + b * st;
    if (st == 1) {
#pragma omp simd
      for (int64_t j = 0; j < len; j++) buf[j] = reduce_expf(xb[j] - m);
    } else {
#pragma omp simd
      for (int64_t j = 0; j < len; j++) buf[j] = reduce_expf(xb[j * st] - m);
    }
    acc += sum_f32(buf, len, 1);
  }
  return acc;
}

static double sumexp_f64(const double *x, int64_t n, int64_t st, double m) {
  double acc = 0;
  for (int64_t j = 0; j < n; j++) acc += exp(x[j * st] - m);
  return acc;
}

/* sum of exp(x - c) (logsumexp's second pass) and of (x - c)^2 (variance's) */
static void row_sumexp_f32(racc *a, int o, const char *p, int64_t n, int64_t st, double c, int64_t pos) {
  (void)pos;
  a->f[o] += sumexp_f32((const float *)p, n, st, (float)c);
}
static void row_sumexp_f64(racc *a, int o, const char *p, int64_t n, int64_t st, double c, int64_t pos) {
  (void)pos;
  a->f[o] += sumexp_f64((const double *)p, n, st, c);
}
static void col_sumexp_f32(racc *a, int64_t len, const char *p, int64_t st, const double *c, int64_t pos) {
  const float *x = (const float *)p;
  float e[CH];
  (void)pos;
  for (int64_t j0 = 0; j0 < len; j0 += CH) {
    int64_t n = len - j0 < CH ? len - j0 : CH;
    if (st == 1) {
#pragma omp simd
      for (int64_t j = 0; j < n; j++) e[j] = reduce_expf(x[j0 + j] - (float)c[j0 + j]);
    } else {
#pragma omp simd
      for (int64_t j = 0; j < n; j++) e[j] = reduce_expf(x[(j0 + j) * st] - (float)c[j0 + j]);
    }
#pragma omp simd
    for (int64_t j = 0; j < n; j++) a->f[j0 + j] += e[j];
  }
}
COL_SIMPLE(sumexp, f64, double, a->f[j] += exp(v - c[j]))

/* The second pass of logsumexp over `len` short contiguous rows of n
 * elements, ostride elements apart (output j's row at x + j * ostride):
 * the subtractions row by row, then one exp loop over a whole batch of rows.
 * Alone, a row shorter than a few vectors spends its time in the scalar
 * tail of the vectorised exp loop. */
static void rows_sumexp_f32(racc *a, int len, const float *x, int64_t n, int64_t ostride,
                            const double *c) {
  float buf[SUM_BLOCK];
  int per = (int)(SUM_BLOCK / n);
  for (int r0 = 0; r0 < len; r0 += per) {
    int nr = len - r0 < per ? len - r0 : per;
    for (int r = 0; r < nr; r++) {
      const float *xr = x + (r0 + r) * ostride;
      float cf = (float)c[r0 + r];
      for (int64_t j = 0; j < n; j++) buf[r * n + j] = xr[j] - cf;
    }
    int64_t tot = nr * n;
#pragma omp simd
    for (int64_t i = 0; i < tot; i++) buf[i] = reduce_expf(buf[i]);
    for (int r = 0; r < nr; r++) {
      double sum = 0;
      for (int64_t j = 0; j < n; j++) sum += buf[r * n + j];
      a->f[r0 + r] += sum;
    }
  }
}

#define SUMSQ(NAME, T)                                                                  \
  static void row_sumsq_##NAME(racc *a, int o, const char *p, int64_t n, int64_t st,    \
                               double c, int64_t pos) {                                 \
    const T *x = (const T *)p;                                                          \
    double acc = 0;                                                                     \
    (void)pos;                                                                          \
    _Pragma("omp simd reduction(+ : acc)") for (int64_t j = 0; j < n; j++) {           \
      double d = (double)x[j * st] - c;                                                 \
      acc += d * d;                                                                     \
    }                                                                                   \
    a->f[o] += acc;                                                                     \
  }                                                                                     \
  COL_SIMPLE(sumsq, NAME, T, double d = (double)v - c[j]; a->f[j] += d * d)
SUMSQ(f32, float)
SUMSQ(f64, double)

/* The functions by (kind, dtype); bool shares uint8's (its bytes are 0/1). */
#define ALLT(kind) {row_##kind##_f32, row_##kind##_f64, row_##kind##_i32, row_##kind##_i64, row_##kind##_u8, row_##kind##_u8}
#define ALLC(kind) {col_##kind##_f32, col_##kind##_f64, col_##kind##_i32, col_##kind##_i64, col_##kind##_u8, col_##kind##_u8}
#define FLT(pre, kind) {pre##_##kind##_f32, pre##_##kind##_f64, NULL, NULL, NULL, NULL}
static const row_fn rows_table[R_NKINDS][MG_NDTYPES] = {
    ALLT(sum), ALLT(prod), ALLT(max), ALLT(min), ALLT(all), ALLT(any), ALLT(argmax), ALLT(argmin),
    FLT(row, sumexp), FLT(row, sumsq)};
static const col_fn cols_table[R_NKINDS][MG_NDTYPES] = {
    ALLC(sum), ALLC(prod), ALLC(max), ALLC(min), ALLC(all), ALLC(any), ALLC(argmax), ALLC(argmin),
    FLT(col, sumexp), FLT(col, sumsq)};

/* ---- states: init, merge, finish -------------------------------------------- */

static void state_init(const rctx *r, racc *a, int o) {
  a->at[o] = -1;
  switch (r->kind) {
  case R_PROD: a->f[o] = 1, a->i[o] = 1; break;
  case R_MAX: a->f[o] = -INFINITY, a->i[o] = INT64_MIN; break;
  case R_MIN: a->f[o] = INFINITY, a->i[o] = INT64_MAX; break;
  case R_ALL: a->i[o] = 1; break;
  default: a->f[o] = 0, a->i[o] = 0; break;
  }
}

/* Folds the state of a later range (b, slot 0) into a (slot o). */
static void state_merge(const rctx *r, racc *a, int o, const racc *b) {
  double f = b->f[0];
  int64_t i = b->i[0];
  switch (r->kind) {
  case R_SUM: case R_SUMEXP: case R_SUMSQ:
    a->f[o] += f;
    a->i[o] = (int64_t)((uint64_t)a->i[o] + (uint64_t)i);
    break;
  case R_PROD:
    a->f[o] *= f;
    a->i[o] = (int64_t)((uint64_t)a->i[o] * (uint64_t)i);
    break;
  case R_MAX:
  case R_MIN: {
    int mx = r->kind == R_MAX;
    if (f != f || (mx ? f > a->f[o] : f < a->f[o])) a->f[o] = f;
    if (mx ? i > a->i[o] : i < a->i[o]) a->i[o] = i;
    break;
  }
  case R_ALL: a->i[o] = a->i[o] && i; break;
  case R_ANY: a->i[o] = a->i[o] || i; break;
  default: {  /* argmax / argmin: ties keep the earlier range */
    if (b->at[0] < 0) break;
    int mx = r->kind == R_ARGMAX, better;
    if (a->at[o] < 0) better = 1;
    else if (r->isfloat) {
      double cur = a->f[o];
      better = (mx ? f > cur : f < cur) || (f != f && cur == cur);
    } else {
      better = mx ? i > a->i[o] : i < a->i[o];
    }
    if (better) a->f[o] = f, a->i[o] = i, a->at[o] = b->at[0];
  }
  }
}

/* The value of a float state after the final step. */
static double state_value(const rctx *r, double f, int64_t o) {
  switch (r->fin) {
  case F_MEAN: return f / r->divisor;
  case F_VAR: return r->divisor > 0 ? f / r->divisor : f > 0 ? INFINITY : NAN;  /* f / max(N - ddof, 0) */
  case F_LSE: {
    double m = r->center[o];
    return isfinite(m) ? m + log(f) : m;  /* all -inf (or empty): -inf; +inf or NaN stay */
  }
  default: return f;
  }
}

/* Writes outputs o0 .. o0+len from the chunk's states. */
static void state_finish(const rctx *r, const racc *a, int64_t o0, int64_t len) {
  char *out = r->out;
  int arg = r->kind == R_ARGMAX || r->kind == R_ARGMIN;
  for (int64_t j = 0; j < len; j++) {
    int64_t o = o0 + j;
    if (arg) {
      ((int64_t *)out)[o] = a->at[j] + r->base;
      continue;
    }
    switch (r->odt) {
    case MG_FLOAT32: ((float *)out)[o] = (float)state_value(r, r->isfloat ? a->f[j] : (double)a->i[j], o); break;
    case MG_FLOAT64: ((double *)out)[o] = state_value(r, r->isfloat ? a->f[j] : (double)a->i[j], o); break;
    case MG_INT32: ((int32_t *)out)[o] = (int32_t)a->i[j]; break;
    case MG_INT64: ((int64_t *)out)[o] = a->i[j]; break;
    case MG_UINT8: ((uint8_t *)out)[o] = (uint8_t)a->i[j]; break;
    default: ((uint8_t *)out)[o] = a->i[j] != 0; break;
    }
  }
}

/* ---- plans ----------------------------------------------------------------- */

/* Splits x's dimensions by `mask` into kept and reduced lists, dropping
 * size-1 ones and merging contiguous neighbours. Reduced dimensions are
 * sorted by decreasing stride unless `ordered` (arg reductions count the
 * flat position in row-major order, so they keep it). */
static void plan_build(rplan *p, const mg_tensor *x, unsigned mask, int ordered) {
  p->nk = p->nr = 0;
  p->nout = p->nred = 1;
  for (int d = 0; d < x->ndim; d++) {
    int64_t n = x->shape[d], s = x->strides[d];
    if (mask & (1u << d)) p->nred *= n;
    else p->nout *= n;
    if (n == 1) continue;
    if (mask & (1u << d)) p->rs[p->nr] = n, p->rst[p->nr++] = s;
    else p->ks[p->nk] = n, p->kst[p->nk++] = s;
  }
  if (!ordered) {  /* insertion sort, largest |stride| first */
    for (int i = 1; i < p->nr; i++)
      for (int j = i; j > 0 && llabs(p->rst[j]) > llabs(p->rst[j - 1]); j--) {
        int64_t t = p->rst[j]; p->rst[j] = p->rst[j - 1]; p->rst[j - 1] = t;
        t = p->rs[j]; p->rs[j] = p->rs[j - 1]; p->rs[j - 1] = t;
      }
  }
  int n = 0;
  for (int i = 0; i < p->nr; i++) {
    if (n && p->rst[n - 1] == p->rst[i] * p->rs[i]) p->rs[n - 1] *= p->rs[i], p->rst[n - 1] = p->rst[i];
    else p->rs[n] = p->rs[i], p->rst[n++] = p->rst[i];
  }
  p->nr = n;
  n = 0;
  for (int i = 0; i < p->nk; i++) {
    if (n && p->kst[n - 1] == p->kst[i] * p->ks[i]) p->ks[n - 1] *= p->ks[i], p->kst[n - 1] = p->kst[i];
    else p->ks[n] = p->ks[i], p->kst[n++] = p->kst[i];
  }
  p->nk = n;
  if (p->nr == 0) p->rs[0] = 1, p->rst[0] = 0, p->nr = 1;  /* one position to visit */
}

/* Input offset (elements) of flat position `pos` over dims (sz, st)[0..n). */
static int64_t plan_offset(int n, const int64_t *sz, const int64_t *st, int64_t pos, int64_t *coord) {
  int64_t off = 0;
  for (int d = n - 1; d >= 0; d--) {
    coord[d] = pos % sz[d];
    pos /= sz[d];
    off += coord[d] * st[d];
  }
  return off;
}

/* Reduces positions [lo, hi) of the reduced space starting at `base` into
 * state o, one call per contiguous run of the innermost reduced dimension. */
/* One run of n elements from position pos, in pieces of MG_POLL_CHUNK
 * (always, so a sum's rounding does not depend on whether limits are set),
 * polling the limits between pieces. */
static void run_piecewise(const rctx *r, racc *a, int o, const char *ptr, int64_t n, int64_t stride, double c,
                          int64_t pos) {
  for (int64_t i = 0; i < n; i += MG_POLL_CHUNK) {
    if (i && mg_kernel_stop(r->lim)) return;
    r->row(a, o, ptr + i * stride * (int64_t)r->es, n - i < MG_POLL_CHUNK ? n - i : MG_POLL_CHUNK, stride, c, pos + i);
  }
}

static void run_span(const rctx *r, const rplan *p, const char *base, int64_t lo, int64_t hi,
                     racc *a, int o, double c) {
  int last = p->nr - 1;
  int64_t coord[MG_MAX_DIMS];
  if (lo >= hi) return;  /* also keeps an empty (size-0) reduced dim out of plan_offset */
  if (last == 0) {       /* one reduced dimension: one run */
    run_piecewise(r, a, o, base + lo * p->rst[0] * (int64_t)r->es, hi - lo, p->rst[0], c, lo);
    return;
  }
  int64_t off = plan_offset(p->nr, p->rs, p->rst, lo, coord), work = 0;
  for (int64_t pos = lo; pos < hi;) {
    int64_t run = p->rs[last] - coord[last];
    if (run > hi - pos) run = hi - pos;
    run_piecewise(r, a, o, base + off * (int64_t)r->es, run, p->rst[last], c, pos);
    if ((work += run) >= MG_POLL_CHUNK) {  /* many short runs: a poll per ~MG_POLL_CHUNK elements */
      work = 0;
      if (mg_kernel_stop(r->lim)) return;
    }
    pos += run;
    off += run * p->rst[last];
    coord[last] += run;
    for (int d = last; d > 0 && coord[d] == p->rs[d]; d--) {  /* carry */
      off += p->rst[d - 1] - coord[d] * p->rst[d];
      coord[d] = 0;
      coord[d - 1]++;
    }
  }
}

/* Rows: outputs [lo, hi), each reduced over its whole range. */
static void run_rows(const rctx *r, const rplan *p, int64_t lo, int64_t hi) {
  RACC_LOCAL(a, CH);
  int64_t coord[MG_MAX_DIMS];
  int short_exp = r->kind == R_SUMEXP && r->es == 4 && p->nk == 1 && p->nr == 1 && p->rst[0] == 1 &&
                  p->rs[0] > 0 && p->rs[0] < SHORT_ROW;
  int64_t work = 0;
  for (int64_t o0 = lo; o0 < hi; o0 += CH) {
    int len = hi - o0 < CH ? (int)(hi - o0) : CH;
    if ((work += len * (p->nred ? p->nred : 1)) >= MG_POLL_CHUNK) {
      work = 0;
      if (mg_kernel_stop(r->lim)) return;
    }
    if (short_exp) {  /* batches of short float32 rows */
      for (int j = 0; j < len; j++) state_init(r, &a, j);
      rows_sumexp_f32(&a, len, (const float *)r->x + o0 * p->kst[0], p->rs[0], p->kst[0], r->center + o0);
      state_finish(r, &a, o0, len);
      continue;
    }
    int64_t off = plan_offset(p->nk, p->ks, p->kst, o0, coord);
    for (int j = 0; j < len; j++) {
      state_init(r, &a, j);
      run_span(r, p, r->x + off * (int64_t)r->es, 0, p->nred, &a, j, r->center ? r->center[o0 + j] : 0);
      for (int d = p->nk - 1; d >= 0; d--) {  /* next output */
        off += p->kst[d];
        if (++coord[d] < p->ks[d]) break;
        off -= coord[d] * p->kst[d];
        coord[d] = 0;
      }
    }
    state_finish(r, &a, o0, len);
  }
}

/* Rows, when there are fewer outputs than threads: each output's range is
 * split across the threads and the partial states merged in order. */
static void run_rows_split(const rctx *r, const rplan *p, int nt) {
  int64_t coord[MG_MAX_DIMS];
  RACC_LOCAL(parts, MG_MAX_THREADS_SPLIT);
  RACC_LOCAL(one, 1);
  if (nt > MG_MAX_THREADS_SPLIT) nt = MG_MAX_THREADS_SPLIT;
  for (int64_t o = 0; o < p->nout; o++) {
    const char *base = r->x + plan_offset(p->nk, p->ks, p->kst, o, coord) * (int64_t)r->es;
    double c = r->center ? r->center[o] : 0;
    state_init(r, &one, 0);
    for (int t = 0; t < nt; t++) state_init(r, &parts, t);  /* OpenMP may give fewer threads */
#pragma omp parallel num_threads(nt)
    {
      int t = omp_get_thread_num(), n = omp_get_num_threads();
      racc mine = {parts.f + t, parts.i + t, parts.at + t};  /* slot 0 of `mine` is slot t */
      run_span(r, p, base, p->nred * t / n, p->nred * (t + 1) / n, &mine, 0, c);
    }
    for (int t = 0; t < nt; t++) {
      racc part = {parts.f + t, parts.i + t, parts.at + t};
      state_merge(r, &one, 0, &part);
    }
    state_finish(r, &one, o, 1);
  }
}

/* The width of a column chunk: whole rows of the innermost kept dimension
 * when they fit (reads then stream along memory), split so every thread
 * gets a chunk. */
static int64_t plan_col_width(const rplan *p, int nt) {
  int64_t klen = p->ks[p->nk - 1], kout = p->nout / klen, w = klen < CH_MAX ? klen : CH_MAX;
  int64_t units = kout * ((klen + w - 1) / w);
  if (units < nt) w = (klen + nt - 1) / nt;
  if (w < CH && klen >= CH) w = CH;
  return w < CH_MAX ? w : CH_MAX;
}

/* Columns: unit u is a chunk of up to w neighbouring outputs along the
 * innermost kept dimension, accumulated over every reduced position into
 * the states `a` (w of them). */
static void run_col_unit(const rctx *r, const rplan *p, int64_t u, int64_t w, racc *a) {
  int64_t coord[MG_MAX_DIMS], rc[MG_MAX_DIMS] = {0};
  int last = p->nk - 1, rl = p->nr - 1;
  int64_t klen = p->ks[last], nchunk = (klen + w - 1) / w, ko = u / nchunk, j0 = (u % nchunk) * w;
  int64_t len = klen - j0 < w ? klen - j0 : w, o0 = ko * klen + j0;
  const char *base = r->x + (plan_offset(last, p->ks, p->kst, ko, coord) + j0 * p->kst[last]) * (int64_t)r->es;
  const double *c = r->center ? r->center + o0 : NULL;
  for (int64_t j = 0; j < len; j++) state_init(r, a, (int)j);
  int64_t off = 0;
  for (int64_t pos = 0; pos < p->nred; pos++) {
    if ((pos & 4095) == 4095 && mg_kernel_stop(r->lim)) return;
    r->col(a, len, base + off * (int64_t)r->es, p->kst[last], c, pos);
    for (int d = rl; d >= 0; d--) {  /* next reduced position */
      off += p->rst[d];
      if (++rc[d] < p->rs[d]) break;
      off -= rc[d] * p->rst[d];
      rc[d] = 0;
    }
  }
  state_finish(r, a, o0, len);
}

/* Runs units [lo, hi) of the column loop with states from the heap. */
static mg_status run_cols(const rctx *r, const rplan *p, int64_t w, int64_t lo, int64_t hi) {
  char *mem;   /* on an OpenMP thread: no memory account there, and these states are small */
  if (!(mem = malloc((size_t)w * (sizeof(double) + 2 * sizeof(int64_t))))) return MG_ENOMEM;
  racc a = {(double *)mem, (int64_t *)(mem + w * sizeof(double)),
            (int64_t *)(mem + w * (sizeof(double) + sizeof(int64_t)))};
  for (int64_t u = lo; u < hi && !mg_kernel_stop(r->lim); u++) run_col_unit(r, p, u, w, &a);
  free(mem);
  return MG_OK;
}

/* Picks the loop: columns when the innermost kept dimension is long and
 * closer in memory than the reduced one (or the reduced runs are tiny). */
static int plan_use_cols(const rplan *p) {
  if (p->nk == 0) return 0;
  int64_t kin = llabs(p->kst[p->nk - 1]), rin = llabs(p->rst[p->nr - 1]);
  int64_t klen = p->ks[p->nk - 1], rlen = p->rs[p->nr - 1];
  if (klen < 8) return 0;
  return kin < rin || rlen < 8;
}

static mg_status reduce_exec(const rctx *r, const rplan *p) {
  if (p->nout == 0) return MG_OK;
  int64_t total = p->nout * (p->nred ? p->nred : 1);
  int nt = total >= MG_PAR_MIN ? mg_threads() : 1;
  if (plan_use_cols(p)) {
    int64_t w = plan_col_width(p, nt), klen = p->ks[p->nk - 1];
    int64_t units = p->nout / klen * ((klen + w - 1) / w);
    mg_status st = MG_OK;
    if (nt > 1 && units > 1) {
#pragma omp parallel num_threads(nt)
      {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        if (run_cols(r, p, w, units * t / n, units * (t + 1) / n)) {
#pragma omp atomic write
          st = MG_ENOMEM;
        }
      }
    } else {
      st = run_cols(r, p, w, 0, units);
    }
    return st ? mg_seterror(st, "out of memory for reduction states") : MG_OK;
  }
  if (nt > 1 && p->nout >= nt) {
#pragma omp parallel num_threads(nt)
    {
      int t = omp_get_thread_num(), n = omp_get_num_threads();
      run_rows(r, p, p->nout * t / n, p->nout * (t + 1) / n);
    }
  } else if (nt > 1) {
    run_rows_split(r, p, nt);
  } else {
    run_rows(r, p, 0, p->nout);
  }
  return MG_OK;
}

/* ---- kernels -------------------------------------------------------------------- */

/* Mask of the reduced axes from attribute slot 0 (infer validated it). */
static unsigned reduce_mask(const mg_call *c, const mg_tensor *x, int single) {
  int n = A_N(c, 0);
  if (single ? n == 0 : A_ALL_AXES(c, 0)) return x->ndim ? (1u << x->ndim) - 1 : 0;
  unsigned mask = 0;
  for (int i = 0; i < (single ? 1 : n); i++) {
    int a = 0;
    mg_norm_axis(c, "axis", A_LIST(c, 0)[i], x->ndim, &a);
    mask |= 1u << a;
  }
  return mask;
}

static void rctx_init(rctx *r, const mg_call *c, int kind, int fin, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  mg_dtype dt = (mg_dtype)x->dtype;
  r->kind = kind;
  r->fin = fin;
  r->isfloat = mg_dtype_is_float(dt);
  r->row = rows_table[kind][dt];
  r->col = cols_table[kind][dt];
  r->x = mg_ptr(x);
  r->es = mg_dtype_size(dt);
  r->out = mg_ptr(out);
  r->odt = (mg_dtype)out->dtype;
  r->center = NULL;
  r->divisor = 1;
  r->base = c->ctx ? c->ctx->index_base : 0;
  r->lim = mg_tl_kernel;
}

static mg_status reduce_simple(const mg_call *c, mg_tensor *out, int kind, int fin) {
  const mg_tensor *x = c->in[0];
  rplan p;
  rctx r;
  int arg = kind == R_ARGMAX || kind == R_ARGMIN;
  plan_build(&p, x, reduce_mask(c, x, arg), arg);
  rctx_init(&r, c, kind, fin, out);
  r.divisor = (double)p.nred;
  if (!r.row) return mg_seterror(MG_EDTYPE, "%s: internal error: no kernel for %s", c->info->name,
                                 mg_dtype_name((mg_dtype)x->dtype));
  return reduce_exec(&r, &p);
}

mg_status k_sum(const mg_call *c, mg_tensor *out) { return reduce_simple(c, out, R_SUM, F_PLAIN); }
mg_status k_mean(const mg_call *c, mg_tensor *out) { return reduce_simple(c, out, R_SUM, F_MEAN); }
mg_status k_prod(const mg_call *c, mg_tensor *out) { return reduce_simple(c, out, R_PROD, F_PLAIN); }
mg_status k_max(const mg_call *c, mg_tensor *out) { return reduce_simple(c, out, R_MAX, F_PLAIN); }
mg_status k_min(const mg_call *c, mg_tensor *out) { return reduce_simple(c, out, R_MIN, F_PLAIN); }
mg_status k_all(const mg_call *c, mg_tensor *out) { return reduce_simple(c, out, R_ALL, F_PLAIN); }
mg_status k_any(const mg_call *c, mg_tensor *out) { return reduce_simple(c, out, R_ANY, F_PLAIN); }
mg_status k_argmax(const mg_call *c, mg_tensor *out) { return reduce_simple(c, out, R_ARGMAX, F_PLAIN); }
mg_status k_argmin(const mg_call *c, mg_tensor *out) { return reduce_simple(c, out, R_ARGMIN, F_PLAIN); }

/* Two passes: the first (kind1, finished as fin1) fills a float64 center per
 * output, the second (kind2) reduces around it and finishes as fin2. */
static mg_status reduce_centered(const mg_call *c, mg_tensor *out, int kind1, int fin1, int kind2,
                                 int fin2, int64_t correction) {
  const mg_tensor *x = c->in[0];
  rplan p;
  rctx r;
  plan_build(&p, x, reduce_mask(c, x, 0), 0);
  if (p.nout == 0) return MG_OK;
  double *center;
  mg_status st = mg_work_alloc((size_t)p.nout * sizeof *center, c->info->name, (void **)&center);
  if (st) return st;
  rctx_init(&r, c, kind1, fin1, out);
  r.out = (char *)center;
  r.odt = MG_FLOAT64;
  r.divisor = (double)p.nred;
  st = reduce_exec(&r, &p);
  if (!st) {
    rctx_init(&r, c, kind2, fin2, out);
    r.center = center;
    r.divisor = (double)p.nred - (double)correction;
    st = reduce_exec(&r, &p);
  }
  mg_work_free(center);
  return st;
}

mg_status k_logsumexp(const mg_call *c, mg_tensor *out) {
  return reduce_centered(c, out, R_MAX, F_PLAIN, R_SUMEXP, F_LSE, 0);
}

mg_status k_variance(const mg_call *c, mg_tensor *out) {
  return reduce_centered(c, out, R_SUM, F_MEAN, R_SUMSQ, F_VAR, A_I(c, 2));
}

/* ---- softmax ---------------------------------------------------------------------- */

/* Softmax over a contiguous (outer, L, inner) block. Rows (inner == 1) are
 * done one at a time; otherwise a chunk of CH columns is carried through
 * max, exp-and-sum and scale so every loop runs along contiguous memory.
 * y may be x (in place): every element is read before it is written. */
#define SOFTMAX_FNS(NAME, T, EXP)                                                       \
  static void smrow_##NAME(const T *x, T *y, int64_t L, int logsm) {                    \
    T m = -INFINITY;                                                                    \
    int hasnan = 0;                                                                        \
    _Pragma("omp simd reduction(max : m) reduction(| : hasnan)") for (int64_t j = 0; j < L; j++) { \
      m = x[j] > m ? x[j] : m;                                                          \
      hasnan |= x[j] != x[j];                                                              \
    }                                                                                   \
    if (hasnan) m = NAN;                                                                   \
    if (logsm) {                                                                        \
      T ls = (T)log(sumexp_##NAME(x, L, 1, m));                                         \
      _Pragma("omp simd") for (int64_t j = 0; j < L; j++) y[j] = (x[j] - m) - ls;       \
    } else {                                                                            \
      _Pragma("omp simd") for (int64_t j = 0; j < L; j++) y[j] = EXP(x[j] - m);         \
      T inv = (T)(1.0 / sum_##NAME(y, L, 1));                                           \
      _Pragma("omp simd") for (int64_t j = 0; j < L; j++) y[j] *= inv;                  \
    }                                                                                   \
  }                                                                                     \
  static void smcols_##NAME(const T *x, T *y, int64_t L, int64_t inner, int len, int logsm) { \
    T m[CH], e[CH];                                                                     \
    double s[CH];                                                                       \
    int hasnan[CH];                                                                        \
    for (int j = 0; j < len; j++) m[j] = -INFINITY, s[j] = 0, hasnan[j] = 0;               \
    for (int64_t l = 0; l < L; l++) {                                                   \
      const T *xr = x + l * inner;                                                      \
      _Pragma("omp simd") for (int j = 0; j < len; j++) {                               \
        m[j] = xr[j] > m[j] ? xr[j] : m[j];                                             \
        hasnan[j] |= xr[j] != xr[j];                                                       \
      }                                                                                 \
    }                                                                                   \
    for (int j = 0; j < len; j++)                                                       \
      if (hasnan[j]) m[j] = NAN;                                                           \
    for (int64_t l = 0; l < L; l++) {                                                   \
      const T *xr = x + l * inner;                                                      \
      T *yr = y + l * inner;                                                            \
      _Pragma("omp simd") for (int j = 0; j < len; j++) e[j] = EXP(xr[j] - m[j]);       \
      _Pragma("omp simd") for (int j = 0; j < len; j++) s[j] += e[j];                   \
      if (!logsm) memcpy(yr, e, (size_t)len * sizeof(T));                               \
    }                                                                                   \
    for (int j = 0; j < len; j++) s[j] = logsm ? log(s[j]) : 1.0 / s[j];                \
    for (int64_t l = 0; l < L; l++) {                                                   \
      const T *xr = x + l * inner;                                                      \
      T *yr = y + l * inner;                                                            \
      if (logsm) {                                                                      \
        _Pragma("omp simd") for (int j = 0; j < len; j++) yr[j] = (xr[j] - m[j]) - (T)s[j]; \
      } else {                                                                          \
        _Pragma("omp simd") for (int j = 0; j < len; j++) yr[j] *= (T)s[j];             \
      }                                                                                 \
    }                                                                                   \
  }
SOFTMAX_FNS(f32, float, reduce_expf)
SOFTMAX_FNS(f64, double, exp)

/* Softmax of `nrows` short contiguous float32 rows of L elements: the max
 * and the subtraction row by row, one exp loop over all of them (see
 * rows_sumexp_f32), then the sums and the scaling row by row. */
static void smshort_f32(const float *x, float *y, int64_t L, int64_t nrows, int logsm) {
  float buf[SUM_BLOCK], m[SUM_BLOCK];
  for (int64_t r = 0; r < nrows; r++) {
    const float *xr = x + r * L;
    float mr = -INFINITY;
    int hasnan = 0;
    for (int64_t j = 0; j < L; j++) {
      mr = xr[j] > mr ? xr[j] : mr;
      hasnan |= xr[j] != xr[j];
    }
    m[r] = hasnan ? NAN : mr;
    for (int64_t j = 0; j < L; j++) buf[r * L + j] = xr[j] - m[r];
  }
  int64_t tot = nrows * L;
#pragma omp simd
  for (int64_t i = 0; i < tot; i++) buf[i] = reduce_expf(buf[i]);
  for (int64_t r = 0; r < nrows; r++) {
    const float *xr = x + r * L, *er = buf + r * L;
    float *yr = y + r * L;
    double sum = 0;
    for (int64_t j = 0; j < L; j++) sum += er[j];
    if (logsm) {
      float ls = (float)log(sum);
      for (int64_t j = 0; j < L; j++) yr[j] = (xr[j] - m[r]) - ls;
    } else {
      float inv = (float)(1.0 / sum);
      for (int64_t j = 0; j < L; j++) yr[j] = er[j] * inv;
    }
  }
}

/* A softmax over a contiguous (outer, L, inner) block, cut into units: a
 * batch of short rows, one row, or one chunk of columns. */
typedef struct smplan {
  mg_dtype dt;
  const char *x;
  char *y;
  int64_t outer, L, inner, per;  /* per: rows in a batch of short rows (0: not batched) */
  int logsm;
} smplan;

static int64_t softmax_units(const smplan *p) {
  if (p->per) return (p->outer + p->per - 1) / p->per;
  return p->inner == 1 ? p->outer : p->outer * ((p->inner + CH - 1) / CH);
}

static void softmax_unit(const smplan *p, int64_t u) {
  int64_t es = (int64_t)mg_dtype_size(p->dt), L = p->L, inner = p->inner;
  if (p->per) {
    int64_t r0 = u * p->per, nr = p->outer - r0 < p->per ? p->outer - r0 : p->per;
    smshort_f32((const float *)p->x + r0 * L, (float *)p->y + r0 * L, L, nr, p->logsm);
  } else if (inner == 1) {
    int64_t off = u * L * es;
    if (p->dt == MG_FLOAT32) smrow_f32((const float *)(p->x + off), (float *)(p->y + off), L, p->logsm);
    else smrow_f64((const double *)(p->x + off), (double *)(p->y + off), L, p->logsm);
  } else {
    int64_t nchunk = (inner + CH - 1) / CH, o = u / nchunk, j0 = (u % nchunk) * CH;
    int len = inner - j0 < CH ? (int)(inner - j0) : CH;
    int64_t off = (o * L * inner + j0) * es;
    if (p->dt == MG_FLOAT32)
      smcols_f32((const float *)(p->x + off), (float *)(p->y + off), L, inner, len, p->logsm);
    else
      smcols_f64((const double *)(p->x + off), (double *)(p->y + off), L, inner, len, p->logsm);
  }
}

static mg_status softmax_run(const mg_call *c, mg_tensor *out, int logsm) {
  const mg_tensor *x = c->in[0];
  int a = 0;
  mg_norm_axis(c, "axis", A_I(c, 0), x->ndim ? x->ndim : 1, &a);
  int64_t n = mg_tensor_numel(x);
  if (n == 0) return MG_OK;
  smplan p = {(mg_dtype)out->dtype, mg_ptr(x), mg_ptr(out), 1, x->ndim ? x->shape[a] : 1, 1, 0, logsm};
  for (int d = 0; d < a; d++) p.outer *= x->shape[d];
  for (int d = a + 1; d < x->ndim; d++) p.inner *= x->shape[d];
  if (p.inner == 1 && p.dt == MG_FLOAT32 && p.L < SHORT_ROW) p.per = SUM_BLOCK / p.L;
  if (!mg_tensor_is_contiguous(x)) {  /* copy into out, then work in place */
    mg_status st = mg_copy_into(out, x);
    if (st) return st;
    p.x = mg_ptr(out);
  }
  int64_t units = softmax_units(&p);
  int nt = n >= MG_PAR_MIN && units > 1 ? mg_threads() : 1;
  mg_limits *lim = n >= MG_POLL_CHUNK ? mg_tl_kernel : NULL;
  int64_t per_unit = units ? n / units : 1, every = per_unit >= MG_POLL_CHUNK ? 1 : MG_POLL_CHUNK / (per_unit + 1) + 1;
  if (nt > 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t u = 0; u < units; u++)
      if (!(u % every ? mg_kernel_stopped(lim) : mg_kernel_stop(lim))) softmax_unit(&p, u);
  } else {
    for (int64_t u = 0; u < units && !(u % every ? mg_kernel_stopped(lim) : mg_kernel_stop(lim)); u++)
      softmax_unit(&p, u);
  }
  return MG_OK;
}

mg_status k_softmax(const mg_call *c, mg_tensor *out) { return softmax_run(c, out, 0); }
mg_status k_log_softmax(const mg_call *c, mg_tensor *out) { return softmax_run(c, out, 1); }
