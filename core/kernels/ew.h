/*
 * ew.h — what the elementwise kernel files (elementwise.c, ew_binary.c,
 * copy.c) share: the macros that stamp typed inner loops, the driver that
 * runs a loop over an output and its inputs, and the cast loops.
 *
 * An inner loop is an mg_loop_fn over n elements with byte strides (operand
 * 0 is the output). Each stamped loop tests for the layouts that matter and
 * runs them through restrict pointers with unit steps, so the compiler can
 * vectorise them: all operands contiguous, and (binary loops) one operand a
 * broadcast scalar (stride 0). Everything else takes the strided path. The
 * element expression is a macro argument, so no function pointer is called
 * per element.
 *
 * GCC's -O2 cost model leaves such loops scalar, and libm calls cannot be
 * vectorised at all, so the unit-stride loops are marked `omp simd` and the
 * hot float32 functions (exp, log, tanh, floor, ceil) have inline versions
 * here built from arithmetic and bit operations only.
 */
#ifndef MG_EW_H
#define MG_EW_H

#include "internal.h"
#include <math.h>

/* Runs `loop` over `out` (operand 0) and its inputs broadcast to out's shape
 * through mg_iter (dimension merging, threads). */
void ew_run_iter(mg_tensor *out, mg_tensor *const *in, int nin, mg_loop_fn loop, void *ud);

static const int64_t ew_size[MG_NDTYPES] = {4, 8, 4, 8, 1, 1, 2, 2, 1, 2};  /* mg_dtype order */

/* The step of input t in a one-loop run over the contiguous `out`: its
 * element size when it has out's shape and strides, 0 when it is a single
 * element, else -1. Compares only (no multiplies): this is the whole cost
 * of the small-op path besides the loop itself. */
static inline int64_t ew_step(const mg_tensor *t, const mg_tensor *out) {
  int d;
  if (t->ndim == out->ndim) {
    for (d = 0; d < t->ndim; d++)
      if (t->shape[d] != out->shape[d] || (t->shape[d] != 1 && t->strides[d] != out->strides[d])) break;
    if (d == t->ndim) return ew_size[t->dtype];
  }
  for (d = 0; d < t->ndim; d++)
    if (t->shape[d] != 1) return -1;
  return 0;
}

/* ew_run_iter, with the small-op path inline: inputs that have out's layout
 * or are single elements get one direct call of the loop. `out` must be
 * contiguous (kernels' outputs are allocated so). */
static inline void ew_run(mg_tensor *out, mg_tensor *const *in, int nin, mg_loop_fn loop, void *ud) {
  int64_t n = 1;
  for (int d = 0; d < out->ndim; d++) n *= out->shape[d];
  if (n < MG_PAR_MIN) {
    char *p[MG_ITER_MAX];
    int64_t s[MG_ITER_MAX];
    int ok = 1;
    for (int i = 0; ok && i < nin; i++) {
      p[i + 1] = (char *)in[i]->storage->data + in[i]->offset * ew_size[in[i]->dtype];
      ok = (s[i + 1] = ew_step(in[i], out)) != -1;
    }
    if (ok) {
      p[0] = (char *)out->storage->data + out->offset * ew_size[out->dtype];
      s[0] = ew_size[out->dtype];
      if (n > 0) loop(p, s, n, ud);
      return;
    }
  }
  ew_run_iter(out, in, nin, loop, ud);
}

/* The loop converting `from` elements into `to` elements (saturating float to
 * int, NaN to 0; nonzero to true). NULL only for invalid dtypes. */
mg_loop_fn ew_cast_loop(mg_dtype to, mg_dtype from);
mg_loop_fn ew_cast_loop_storage(mg_dtype to, mg_dtype from); /* cast_storage.c: pairs with float16/bfloat16/int8/int16 */

#define EW_SZ(T) ((int64_t)sizeof(T))
/* Unit-stride loops are marked simd: GCC's -O2 cost model would leave them
 * scalar, and they carry no dependence between iterations. */
#define EW_SIMD _Pragma("omp simd")

/* o = EXPR over x. PRE runs once before the loop (it may read ud). */
#define EW_UNARY_PRE(name, TI, TO, PRE, EXPR)                                   \
  static void name(char **p, const int64_t *s, int64_t n, void *ud) {          \
    PRE;                                                                       \
    if (s[0] == EW_SZ(TO) && s[1] == EW_SZ(TI)) {                              \
      TO *restrict o = (TO *)p[0];                                             \
      const TI *restrict a = (const TI *)p[1];                                 \
      EW_SIMD                                                                  \
      for (int64_t i = 0; i < n; i++) {                                        \
        const TI x = a[i];                                                     \
        o[i] = (TO)(EXPR);                                                     \
      }                                                                        \
    } else {                                                                   \
      for (int64_t i = 0; i < n; i++) {                                        \
        const TI x = *(const TI *)(p[1] + i * s[1]);                           \
        *(TO *)(p[0] + i * s[0]) = (TO)(EXPR);                                 \
      }                                                                        \
    }                                                                          \
  }
#define EW_UNARY(name, TI, TO, EXPR) EW_UNARY_PRE(name, TI, TO, (void)ud, EXPR)

/* o = EXPR over a and b, with fast paths for a or b being a scalar. */
#define EW_BINARY(name, TI, TO, EXPR)                                           \
  static void name(char **p, const int64_t *s, int64_t n, void *ud) {          \
    (void)ud;                                                                  \
    if (s[0] == EW_SZ(TO) && s[1] == EW_SZ(TI) && s[2] == EW_SZ(TI)) {         \
      TO *restrict o = (TO *)p[0];                                             \
      const TI *restrict pa = (const TI *)p[1], *restrict pb = (const TI *)p[2]; \
      EW_SIMD                                                                  \
      for (int64_t i = 0; i < n; i++) {                                        \
        const TI a = pa[i], b = pb[i];                                         \
        o[i] = (TO)(EXPR);                                                     \
      }                                                                        \
    } else if (s[0] == EW_SZ(TO) && s[1] == EW_SZ(TI) && s[2] == 0) {          \
      TO *restrict o = (TO *)p[0];                                             \
      const TI *restrict pa = (const TI *)p[1];                                \
      const TI b = *(const TI *)p[2];                                          \
      EW_SIMD                                                                  \
      for (int64_t i = 0; i < n; i++) {                                        \
        const TI a = pa[i];                                                    \
        o[i] = (TO)(EXPR);                                                     \
      }                                                                        \
    } else if (s[0] == EW_SZ(TO) && s[1] == 0 && s[2] == EW_SZ(TI)) {          \
      TO *restrict o = (TO *)p[0];                                             \
      const TI *restrict pb = (const TI *)p[2];                                \
      const TI a = *(const TI *)p[1];                                          \
      EW_SIMD                                                                  \
      for (int64_t i = 0; i < n; i++) {                                        \
        const TI b = pb[i];                                                    \
        o[i] = (TO)(EXPR);                                                     \
      }                                                                        \
    } else {                                                                   \
      for (int64_t i = 0; i < n; i++) {                                        \
        const TI a = *(const TI *)(p[1] + i * s[1]);                           \
        const TI b = *(const TI *)(p[2] + i * s[2]);                           \
        *(TO *)(p[0] + i * s[0]) = (TO)(EXPR);                                 \
      }                                                                        \
    }                                                                          \
  }

/* c ? a : b through bit masks. A plain ?: after a division lets GCC sink
 * the division into a branch, which it then cannot if-convert (division may
 * trap), and the loop stays scalar; masks keep it straight-line. */
static inline float ew_blendf(int c, float a, float b) {
  uint32_t ua, ub, m = 0u - (uint32_t)(c != 0);
  memcpy(&ua, &a, 4);
  memcpy(&ub, &b, 4);
  ua = (ua & m) | (ub & ~m);
  memcpy(&a, &ua, 4);
  return a;
}

/* e^x for float32 in plain arithmetic, so loops calling it vectorise (libm's
 * expf is an opaque call). x = n*ln2 + r with |r| <= ln2/2 (Cody-Waite with
 * FMA); e^r by its degree-7 Taylor polynomial (truncation < 0.1 ulp); 2^n
 * built in the exponent bits as two halves so every factor stays a normal
 * number. n is found with the 1.5*2^23 rounding trick, which needs no
 * float-to-int conversion (so NaN is no UB): about 1 ulp from libm. */
static inline float ew_expf(float x) {
  const float magic = 12582912.0f;                    /* 1.5 * 2^23 */
  /* NaN passes through; masks, not ?:, or GCC 12 at -O2 sees control flow and leaves every loop
   * calling this scalar (ew_blendf is defined below) */
  x = ew_blendf(x < -104.0f, -104.0f, x);
  x = ew_blendf(x > 88.8f, 88.8f, x);
  float t = x * 1.44269504f + magic;                  /* round(x / ln2) + magic */
  float nf = t - magic;
  uint32_t tb, mb;
  memcpy(&tb, &t, 4);
  memcpy(&mb, &magic, 4);
  int32_t n = (int32_t)(tb - mb), h = n >> 1;
  float r = fmaf(-nf, 0.693147182f, x);
  r = fmaf(-nf, -1.90465430e-09f, r);
  float q = 1.0f / 5040.0f;
  q = fmaf(q, r, 1.0f / 720.0f);
  q = fmaf(q, r, 1.0f / 120.0f);
  q = fmaf(q, r, 1.0f / 24.0f);
  q = fmaf(q, r, 1.0f / 6.0f);
  q = fmaf(q, r, 0.5f);
  q = fmaf(q, r, 1.0f);
  q = fmaf(q, r, 1.0f);
  uint32_t b1 = (uint32_t)(h + 127) << 23, b2 = (uint32_t)(n - h + 127) << 23;
  float s1, s2;
  memcpy(&s1, &b1, 4);
  memcpy(&s2, &b2, 4);
  return q * s1 * s2;
}

/* floor and ceil built on nearbyint, which GCC vectorises (it leaves libm's
 * floor/ceil scalar at -O2): the nearest integer, stepped by one when it lies
 * on the wrong side (exact: floats from 2^23 up are integers already), with
 * x's sign so that floor(-0.0) and ceil(-0.5) are -0.0 as in libm. */
static inline float ew_floorf(float x) {
  float r = nearbyintf(x);
  return copysignf(r > x ? r - 1.0f : r, x);
}
static inline double ew_floor(double x) {
  double r = nearbyint(x);
  return copysign(r > x ? r - 1.0 : r, x);
}
static inline float ew_ceilf(float x) {
  float r = nearbyintf(x);
  return copysignf(r < x ? r + 1.0f : r, x);
}
static inline double ew_ceil(double x) {
  double r = nearbyint(x);
  return copysign(r < x ? r + 1.0 : r, x);
}

/* log(x) for float32 in plain arithmetic (vectorises). x = 2^e * m with m
 * in [sqrt(1/2), sqrt(2)) taken from the bits; log(m) = 2 atanh(s) with
 * s = (m-1)/(m+1), |s| <= 0.172, by its odd series to s^9 (truncation
 * < 1e-9 relative). Subnormals are scaled up first (under DAZ they read as
 * 0 and give -inf, as every other kernel sees them). Within 1 ulp. */
static inline float ew_logf(float x) {
  int sub = x < 1.17549435e-38f;  /* FLT_MIN */
  float xs = sub ? x * 8388608.0f : x;
  uint32_t bits;
  memcpy(&bits, &xs, 4);
  uint32_t ix = bits - 0x3f3504f3u;  /* bits of sqrt(1/2): m lands in [sqrt(1/2), sqrt(2)) */
  int32_t e = ((int32_t)ix >> 23) - 23 * sub;
  uint32_t mb = (ix & 0x007fffffu) + 0x3f3504f3u;
  float m;
  memcpy(&m, &mb, 4);
  float f = m - 1.0f, s = f / (2.0f + f), z = s * s;
  float R = fmaf(z, 2.0f / 9.0f, 2.0f / 7.0f);  /* 2 atanh(s) = 2s + s*R */
  R = fmaf(R, z, 2.0f / 5.0f);
  R = fmaf(R, z, 2.0f / 3.0f) * z;
  float hfsq = 0.5f * f * f;  /* 2s = f - s*f: f - (f^2/2 - s*(f^2/2 + R)) keeps the big terms exact */
  float q = f - (hfsq - s * (hfsq + R));
  float ef = (float)e;
  float r = fmaf(ef, 0.693147182f, fmaf(ef, -1.90465430e-09f, q));
  r = ew_blendf(x == INFINITY, x, r);
  r = ew_blendf(x == 0.0f, -INFINITY, r);
  return ew_blendf(x >= 0.0f, r, NAN);  /* negative and NaN inputs */
}

/* tanh(x) for float32, vectorisable: below |x| = 0.4 its odd Taylor series
 * to x^13 (truncation < 5e-9 relative), above it (1 - e)/(1 + e) with
 * e = e^-2|x| from ew_expf (no overflow; 1 for large |x|). About 2 ulp. */
static inline float ew_tanhf(float x) {
  float a = fabsf(x), z = a * a;
  float p = fmaf(z, 21844.0f / 6081075.0f, -1382.0f / 155925.0f);
  p = fmaf(p, z, 62.0f / 2835.0f);
  p = fmaf(p, z, -17.0f / 315.0f);
  p = fmaf(p, z, 2.0f / 15.0f);
  p = fmaf(p, z, -1.0f / 3.0f);
  p = fmaf(p * z, a, a);
  float e = ew_expf(-2.0f * a);
  float r = a < 0.4f ? p : (1.0f - e) / (1.0f + e);
  return copysignf(r, x);
}

#endif
