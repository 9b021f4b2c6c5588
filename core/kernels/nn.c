/*
 * nn.c — the small neural-network kernels: batch normalisation, dropout, the
 * embedding gradient (take_grad) and the fused softmax cross-entropies.
 *
 * batch_norm walks x row by row (rows = all axes but the last); each of its
 * parameters steps 0 or 1 element along a row (broadcast or not), so the
 * inner loop is stamped for the eight combinations and vectorises in the
 * common layouts (per-channel parameters; per-row mean and variance).
 * scale / sqrt(variance + eps) is folded into one tensor first, and x - mean
 * is kept as a difference (not x*a + b) so a large mean does not cancel.
 *
 * dropout keeps element i when word i%4 of Philox block i/4 (key: the seed)
 * is at least rate * 2^32; blocks are made RANDOM-style sixteen at a time so
 * the rounds vectorise. The mask depends only on seed and position, which is
 * what makes the gradient (dropout of g with the same seed) exact.
 *
 * The cross-entropies work on rows of the class (last) axis: max, then
 * sum(exp(x - max)), then the loss or gradient in one more pass, per row,
 * rows split across threads.
 */
#include "ew.h"
#include "nn.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>

#define NAME(c) ((c)->info->name)

/* A contiguous version of t: t itself, or a copy in *tmp (released by the caller). */
static mg_status nn_contig(const mg_call *c, const mg_tensor *t, const mg_tensor **out, mg_tensor **tmp) {
  *tmp = NULL;
  *out = t;
  if (mg_tensor_is_contiguous(t)) return MG_OK;
  mg_status st = mg_tensor_empty((mg_dtype)t->dtype, t->ndim, t->shape, tmp);
  if (!st) st = mg_copy_into(*tmp, t);
  if (st) {
    mg_tensor_release(*tmp);
    *tmp = NULL;
    return mg_seterror(MG_ENOMEM, "%s: out of memory", NAME(c));
  }
  *out = *tmp;
  return MG_OK;
}

static int64_t nn_numel(const mg_tensor *t) { return mg_tensor_numel(t); }

/* ---- batch_norm ------------------------------------------------------------------ */

/* Element strides of parameter p aligned to x's axes (0 where broadcast). */
static void bn_strides(const mg_tensor *p, const mg_tensor *x, int64_t *st) {
  for (int d = 0; d < x->ndim; d++) {
    int pd = d - (x->ndim - p->ndim);
    st[d] = pd >= 0 && p->shape[pd] != 1 ? p->strides[pd] : 0;
  }
}

typedef struct bn_job {
  const mg_tensor *x, *p[3];  /* x, mean, folded scale, offset */
  int64_t xs[MG_MAX_DIMS], ps[3][MG_MAX_DIMS];
  char *out;
  int64_t rows, cols;
} bn_job;

/* y = (x - m) * a + o over one row; M, A, O are the parameters' steps (0 or 1). */
#define BN_ROW(NAME_, T, M, A, O)                                                          \
  static void NAME_(T *restrict y, const T *restrict x, int64_t xs, const T *restrict m,  \
                    const T *restrict a, const T *restrict o, int64_t n) {                \
    if (xs == 1) {                                                                        \
      EW_SIMD for (int64_t j = 0; j < n; j++) y[j] = (x[j] - m[j * M]) * a[j * A] + o[j * O]; \
    } else {                                                                              \
      for (int64_t j = 0; j < n; j++) y[j] = (x[j * xs] - m[j * M]) * a[j * A] + o[j * O]; \
    }                                                                                     \
  }
#define BN_ROWS(T, S)                                                                     \
  BN_ROW(bn_##S##_000, T, 0, 0, 0) BN_ROW(bn_##S##_001, T, 0, 0, 1)                       \
  BN_ROW(bn_##S##_010, T, 0, 1, 0) BN_ROW(bn_##S##_011, T, 0, 1, 1)                       \
  BN_ROW(bn_##S##_100, T, 1, 0, 0) BN_ROW(bn_##S##_101, T, 1, 0, 1)                       \
  BN_ROW(bn_##S##_110, T, 1, 1, 0) BN_ROW(bn_##S##_111, T, 1, 1, 1)                       \
  typedef void (*bn_##S##_fn)(T *restrict, const T *restrict, int64_t, const T *restrict,  \
                              const T *restrict, const T *restrict, int64_t);              \
  static const bn_##S##_fn bn_##S##_fns[8] = {bn_##S##_000, bn_##S##_001, bn_##S##_010, bn_##S##_011, \
                                              bn_##S##_100, bn_##S##_101, bn_##S##_110, bn_##S##_111};
BN_ROWS(float, f32)
BN_ROWS(double, f64)

/* Rows [r0, r1): element offsets from the row's multi-index (all axes but the last). */
#define BN_RUN(NAME_, T, S)                                                              \
  static void NAME_(const bn_job *j, int64_t r0, int64_t r1) {                           \
    const mg_tensor *x = j->x;                                                           \
    int nd = x->ndim - 1, last = x->ndim - 1;                                            \
    int64_t pstep[3];                                                                    \
    for (int k = 0; k < 3; k++) pstep[k] = j->ps[k][last];                               \
    int fn = (pstep[0] != 0) * 4 + (pstep[1] != 0) * 2 + (pstep[2] != 0);                \
    int unit = (!pstep[0] || pstep[0] == 1) && (!pstep[1] || pstep[1] == 1) && (!pstep[2] || pstep[2] == 1); \
    const T *xb = (const T *)mg_ptr(x), *pb[3];                                          \
    for (int k = 0; k < 3; k++) pb[k] = (const T *)mg_ptr(j->p[k]);                      \
    for (int64_t r = r0; r < r1; r++) {                                                  \
      int64_t rem = r, xo = 0, po[3] = {0, 0, 0};                                        \
      for (int d = nd - 1; d >= 0; d--) {                                                \
        int64_t i = rem % x->shape[d];                                                   \
        rem /= x->shape[d];                                                              \
        xo += i * j->xs[d];                                                              \
        for (int k = 0; k < 3; k++) po[k] += i * j->ps[k][d];                            \
      }                                                                                  \
      T *y = (T *)j->out + r * j->cols;                                                  \
      const T *xr = xb + xo, *m = pb[0] + po[0], *a = pb[1] + po[1], *o = pb[2] + po[2]; \
      if (unit) {                                                                        \
        bn_##S##_fns[fn](y, xr, j->xs[last], m, a, o, j->cols);                          \
      } else {                                                                           \
        for (int64_t q = 0; q < j->cols; q++)                                            \
          y[q] = (xr[q * j->xs[last]] - m[q * pstep[0]]) * a[q * pstep[1]] + o[q * pstep[2]]; \
      }                                                                                  \
    }                                                                                    \
  }
BN_RUN(bn_run_f32, float, f32)
BN_RUN(bn_run_f64, double, f64)

/* folded = scale / sqrt(variance + eps), over the broadcast of the two. */
#define BN_FOLD(NAME_, T, SQRT)                                                          \
  static void NAME_(char **p, const int64_t *s, int64_t n, void *ud) {                   \
    T eps = (T) * (const double *)ud;                                                    \
    for (int64_t i = 0; i < n; i++) {                                                    \
      T sc = *(const T *)(p[1] + i * s[1]), v = *(const T *)(p[2] + i * s[2]);           \
      *(T *)(p[0] + i * s[0]) = sc / SQRT(v + eps);                                      \
    }                                                                                    \
  }
BN_FOLD(bn_fold_f32, float, sqrtf)
BN_FOLD(bn_fold_f64, double, sqrt)

mg_status k_batch_norm(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0], *var = c->in[2], *scale = c->in[4];
  mg_dtype dt = (mg_dtype)out->dtype;
  int nd;
  int64_t fshape[MG_MAX_DIMS];
  double eps = A_F(c, 0);
  if (x->ndim == 0 || nn_numel(x) == 0) {
    if (x->ndim == 0) {  /* one element: a row of one */
      double m = mg_tensor_get_f64(c->in[1], 0), v = mg_tensor_get_f64(var, 0);
      double y = (mg_tensor_get_f64(x, 0) - m) * (mg_tensor_get_f64(scale, 0) / sqrt(v + eps)) +
                 mg_tensor_get_f64(c->in[3], 0);
      if (dt == MG_FLOAT32) *(float *)mg_ptr(out) = (float)y;
      else *(double *)mg_ptr(out) = y;
    }
    return MG_OK;
  }
  mg_status st = mg_broadcast_shapes(NAME(c), scale->ndim, scale->shape, var->ndim, var->shape, &nd, fshape);
  mg_tensor *fold = NULL;
  if (!st) st = mg_tensor_empty(dt, nd, fshape, &fold);
  if (st) return mg_seterror(MG_ENOMEM, "%s: out of memory", NAME(c));
  const mg_tensor *ops[3] = {fold, scale, var};
  mg_iter(3, ops, nd, fshape, dt == MG_FLOAT32 ? bn_fold_f32 : bn_fold_f64, &eps);
  bn_job j;
  j.x = x;
  j.p[0] = c->in[1];
  j.p[1] = fold;
  j.p[2] = c->in[3];
  memcpy(j.xs, x->strides, sizeof j.xs);
  for (int k = 0; k < 3; k++) bn_strides(j.p[k], x, j.ps[k]);
  j.out = mg_ptr(out);
  j.cols = x->shape[x->ndim - 1];
  j.rows = nn_numel(x) / j.cols;
  int par = nn_numel(x) >= MG_PAR_MIN && j.rows > 1;
#pragma omp parallel num_threads(mg_threads()) if (par)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    int64_t r0 = j.rows * t / nt, r1 = j.rows * (t + 1) / nt;
    if (dt == MG_FLOAT32) bn_run_f32(&j, r0, r1);
    else bn_run_f64(&j, r0, r1);
  }
  mg_tensor_release(fold);
  return MG_OK;
}

/* ---- dropout ---------------------------------------------------------------------- */

#define DROP_LANES 16
#define DROP_M0 0xD2511F53u
#define DROP_M1 0xCD9E8D57u
#define DROP_W0 0x9E3779B9u
#define DROP_W1 0xBB67AE85u
#define DROP_KEY_MIX 0xD1B54A32D192ED03ull  /* keeps masks apart from uniform(seed)'s words */

/* Philox4x32-10 of blocks first .. first+LANES-1 under key: w[word][lane]. */
static void drop_blocks(uint64_t key, uint64_t first, uint32_t w[4][DROP_LANES]) {
  uint32_t c0[DROP_LANES], c1[DROP_LANES], c2[DROP_LANES], c3[DROP_LANES];
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  for (int l = 0; l < DROP_LANES; l++) {
    uint64_t ctr = first + (uint64_t)l;
    c0[l] = (uint32_t)ctr;
    c1[l] = (uint32_t)(ctr >> 32);
    c2[l] = c3[l] = 0;
  }
  for (int r = 0; r < 10; r++) {
    EW_SIMD for (int l = 0; l < DROP_LANES; l++) {
      uint64_t p0 = (uint64_t)DROP_M0 * c0[l], p1 = (uint64_t)DROP_M1 * c2[l];
      uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[l] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3[l] ^ k1;
      c1[l] = (uint32_t)p1;
      c3[l] = (uint32_t)p0;
      c0[l] = n0;
      c2[l] = n2;
    }
    k0 += DROP_W0;
    k1 += DROP_W1;
  }
  memcpy(w[0], c0, sizeof c0);
  memcpy(w[1], c1, sizeof c1);
  memcpy(w[2], c2, sizeof c2);
  memcpy(w[3], c3, sizeof c3);
}

/* Elements [64 b, 64 b + 64) ∩ [0, n): element i reads word i%4 of block i/4. */
#define DROP_FN(NAME_, T)                                                                 \
  static void NAME_(T *y, const T *x, int64_t n, int64_t b, uint64_t key, uint32_t thr, T scale) { \
    uint32_t w[4][DROP_LANES];                                                            \
    drop_blocks(key, (uint64_t)b * DROP_LANES, w);                                        \
    int64_t i0 = b * 4 * DROP_LANES, m = n - i0 < 4 * DROP_LANES ? n - i0 : 4 * DROP_LANES; \
    for (int64_t k = 0; k < m; k++) {                                                     \
      uint32_t word = w[k & 3][k >> 2];                                                   \
      y[i0 + k] = word >= thr ? x[i0 + k] * scale : (T)0;                                 \
    }                                                                                     \
  }
DROP_FN(drop_f32, float)
DROP_FN(drop_f64, double)

mg_status k_dropout(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x;
  mg_tensor *tmp;
  mg_status st = nn_contig(c, c->in[0], &x, &tmp);
  if (st) return st;
  double rate = A_F(c, 0);
  uint64_t key = (uint64_t)mg_tensor_get_i64(c->in[1], 0) ^ DROP_KEY_MIX;
  uint32_t thr = (uint32_t)ldexp(rate, 32);  /* rate < 1: fits */
  int64_t n = nn_numel(x), nb = (n + 4 * DROP_LANES - 1) / (4 * DROP_LANES);
  int f32 = out->dtype == MG_FLOAT32;
  double scale = 1.0 / (1.0 - rate);
  char *y = mg_ptr(out);
  const char *xp = mg_ptr(x);
#pragma omp parallel for num_threads(mg_threads()) schedule(static) if (n >= MG_PAR_MIN)
  for (int64_t b = 0; b < nb; b++) {
    if (f32) drop_f32((float *)y, (const float *)xp, n, b, key, thr, (float)scale);
    else drop_f64((double *)y, (const double *)xp, n, b, key, thr, scale);
  }
  mg_tensor_release(tmp);
  return MG_OK;
}

/* ---- take_grad ----------------------------------------------------------------------- */

/* Index values must lie in [base, base + size). */
static mg_status nn_check_index(const mg_call *c, const int64_t *v, int64_t n, int64_t size, int base,
                                const char *what) {
  for (int64_t k = 0; k < n; k++)
    if (v[k] < base || v[k] - base >= size) {
      if (base == 1 && v[k] == 0 && strcmp(what, "label") == 0)
        return mg_seterror(MG_EINDEX, "%s: labels count from 1 (got 0); shift them with y + 1 (element %lld; "
                           "valid: 1..%lld)", NAME(c), (long long)(k + base), (long long)size);
      return mg_seterror(MG_EINDEX, "%s: %s %lld (element %lld) is out of range (valid: %lld..%lld)", NAME(c), what,
                         (long long)v[k], (long long)(k + base), (long long)base, (long long)(size - 1 + base));
    }
  return MG_OK;
}

#define TAKE_GRAD_FN(NAME_, T)                                                            \
  static void NAME_(T *o, const T *g, const int64_t *v, int64_t p0, int64_t p1, int64_t nidx, int64_t size, \
                    int64_t inner, int64_t q0, int64_t q1, int base) {                   \
    for (int64_t p = p0; p < p1; p++)                                                     \
      for (int64_t k = 0; k < nidx; k++) {                                                \
        T *restrict orow = o + (p * size + (v[k] - base)) * inner;                        \
        const T *restrict grow = g + (p * nidx + k) * inner;                              \
        EW_SIMD for (int64_t q = q0; q < q1; q++) orow[q] += grow[q];                     \
      }                                                                                   \
  }
TAKE_GRAD_FN(take_grad_f32, float)
TAKE_GRAD_FN(take_grad_f64, double)

/* out's rows v[0 .. nidx) along the axis (of size `size`, between lead outer
 * and inner inner elements) += src's slices, threaded by outer rows or, when
 * there are too few, by columns (index rows may repeat, so never by them). */
static void add_rows(mg_tensor *out, const mg_tensor *src, const int64_t *v, int64_t lead, int64_t nidx,
                     int64_t size, int64_t inner, int base) {
  int f32 = out->dtype == MG_FLOAT32, nt = lead * nidx * inner >= MG_PAR_MIN ? mg_threads() : 1;
  int by_rows = lead >= nt;
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    int t = omp_get_thread_num(), n = omp_get_num_threads();
    int64_t p0 = by_rows ? lead * t / n : 0, p1 = by_rows ? lead * (t + 1) / n : lead;
    int64_t q0 = by_rows ? 0 : inner * t / n, q1 = by_rows ? inner : inner * (t + 1) / n;
    if (f32) take_grad_f32((float *)mg_ptr(out), (const float *)mg_ptr(src), v, p0, p1, nidx, size, inner, q0, q1, base);
    else take_grad_f64((double *)mg_ptr(out), (const double *)mg_ptr(src), v, p0, p1, nidx, size, inner, q0, q1, base);
  }
}

/* out = x (zeros when x is NULL) with the slices of src_in added at the rows
 * idx_in names along the axis attribute. When out is x's own buffer (the
 * executor reuses an accumulator nobody else holds) the copy is skipped: the
 * cost is the slices, not x. */
static mg_status add_indexed(const mg_call *c, mg_tensor *out, const mg_tensor *x, const mg_tensor *src_in,
                             const mg_tensor *idx_in) {
  const mg_tensor *src, *idx;
  mg_tensor *ts, *ti;
  int base = c->ctx ? c->ctx->index_base : 0, a = 0;
  if (A_SET(c, 0)) mg_norm_axis(c, "axis", A_I(c, 0), out->ndim, &a);
  int inplace = x && x->storage == out->storage && x->offset == out->offset && mg_tensor_is_contiguous(x);
  mg_status st = nn_contig(c, src_in, &src, &ts);
  if (st) return st;
  if ((st = nn_contig(c, idx_in, &idx, &ti))) {
    mg_tensor_release(ts);
    return st;
  }
  int64_t nidx = nn_numel(idx), size = out->shape[a], lead = 1, inner = 1;
  const int64_t *v = (const int64_t *)mg_ptr(idx);
  for (int d = 0; d < a; d++) lead *= out->shape[d];
  for (int d = a + 1; d < out->ndim; d++) inner *= out->shape[d];
  if (lead * inner > 0) st = nn_check_index(c, v, nidx, size, base, "index");
  if (!st && !x) memset(mg_ptr(out), 0, mg_tensor_nbytes(out));  /* zero bits are 0.0 */
  else if (!st && !inplace) st = mg_copy_into(out, x);
  if (!st) add_rows(out, src, v, lead, nidx, size, inner, base);
  mg_tensor_release(ts);
  mg_tensor_release(ti);
  return st;
}

/* take_grad(g, index, axis, size): zeros with g's slices added at the rows. */
mg_status k_take_grad(const mg_call *c, mg_tensor *out) { return add_indexed(c, out, NULL, c->in[0], c->in[1]); }

/* index_add(x, index, src, axis): x with src's slices added at the rows. */
mg_status k_index_add(const mg_call *c, mg_tensor *out) { return add_indexed(c, out, c->in[0], c->in[2], c->in[1]); }

/* ---- softmax cross-entropy ------------------------------------------------------------ */

typedef struct xent_job {
  const char *x, *y, *g;   /* logits, labels (dense: values; sparse: int64), upstream gradient */
  char *out;
  int64_t rows, cols;
  int base;
  int sparse, grad;
} xent_job;

static inline float xent_expf(float v) { return ew_expf(v); }
static inline double xent_exp(double v) { return exp(v); }

#define XENT_SUM _Pragma("omp simd reduction(+ : s)")
#define XENT_LOSS _Pragma("omp simd reduction(+ : loss)")
#define XENT_YSUM _Pragma("omp simd reduction(+ : ysum)")

/* One row: lse = max + log(sum(exp(x - max))); then the loss or the gradient. */
#define XENT_ROWS(NAME_, T, EXP, LOG)                                                     \
  static void NAME_(const xent_job *j, int64_t r0, int64_t r1) {                          \
    int64_t C = j->cols;                                                                 \
    for (int64_t r = r0; r < r1; r++) {                                                  \
      const T *restrict x = (const T *)j->x + r * C;                                     \
      const T *restrict y = j->sparse ? NULL : (const T *)j->y + r * C;                  \
      int64_t lab = j->sparse ? ((const int64_t *)j->y)[r] - j->base : -1;               \
      T m = C ? x[0] : (T)0, s = 0, ysum = 0;                                            \
      for (int64_t q = 1; q < C; q++) m = (x[q] > m || x[q] != x[q]) ? x[q] : m;         \
      XENT_SUM for (int64_t q = 0; q < C; q++) s += EXP(x[q] - m);                       \
      T lse = m + LOG(s);                                                                \
      if (!j->grad) {                                                                    \
        T loss = 0;                                                                      \
        if (j->sparse) loss = C ? lse - x[lab] : (T)0;                                   \
        else {                                                                           \
          XENT_LOSS for (int64_t q = 0; q < C; q++) loss += y[q] * (lse - x[q]);         \
        }                                                                                \
        ((T *)j->out)[r] = loss;                                                         \
        continue;                                                                        \
      }                                                                                  \
      T gr = ((const T *)j->g)[r], *restrict o = (T *)j->out + r * C;                     \
      if (j->sparse) {                                                                   \
        EW_SIMD for (int64_t q = 0; q < C; q++) o[q] = EXP(x[q] - lse) * gr;             \
        if (C) o[lab] -= gr;                                                             \
      } else {                                                                           \
        XENT_YSUM for (int64_t q = 0; q < C; q++) ysum += y[q];                          \
        EW_SIMD for (int64_t q = 0; q < C; q++) o[q] = (EXP(x[q] - lse) * ysum - y[q]) * gr; \
      }                                                                                  \
    }                                                                                    \
  }
XENT_ROWS(xent_f32, float, xent_expf, logf)
XENT_ROWS(xent_f64, double, xent_exp, log)

static mg_status xent_run(const mg_call *c, mg_tensor *out, int sparse, int grad) {
  const mg_tensor *x, *y, *g = NULL;
  mg_tensor *tx, *ty, *tg = NULL;
  mg_status st = nn_contig(c, c->in[0], &x, &tx);
  if (st) return st;
  if ((st = nn_contig(c, c->in[1], &y, &ty))) {
    mg_tensor_release(tx);
    return st;
  }
  if (grad) st = nn_contig(c, c->in[2], &g, &tg);
  xent_job j = {mg_ptr(x), mg_ptr(y), g ? mg_ptr(g) : NULL, mg_ptr(out), 0, x->shape[x->ndim - 1],
                c->ctx ? c->ctx->index_base : 0, sparse, grad};
  j.rows = j.cols ? nn_numel(x) / j.cols : 0;
  if (!st && sparse) st = nn_check_index(c, (const int64_t *)j.y, nn_numel(y), j.cols, j.base, "label");
  if (!st && !j.cols && !grad) memset(j.out, 0, mg_tensor_nbytes(out));  /* no classes: zero loss */
  if (!st && j.cols) {
    int par = j.rows * j.cols >= MG_PAR_MIN && j.rows > 1, f32 = out->dtype == MG_FLOAT32;
#pragma omp parallel num_threads(mg_threads()) if (par)
    {
      int t = omp_get_thread_num(), n = omp_get_num_threads();
      int64_t r0 = j.rows * t / n, r1 = j.rows * (t + 1) / n;
      if (f32) xent_f32(&j, r0, r1);
      else xent_f64(&j, r0, r1);
    }
  }
  mg_tensor_release(tx);
  mg_tensor_release(ty);
  mg_tensor_release(tg);
  return st;
}

mg_status k_softmax_xent(const mg_call *c, mg_tensor *out) { return xent_run(c, out, 0, 0); }
mg_status k_softmax_xent_grad(const mg_call *c, mg_tensor *out) { return xent_run(c, out, 0, 1); }
mg_status k_sparse_softmax_xent(const mg_call *c, mg_tensor *out) { return xent_run(c, out, 1, 0); }
mg_status k_sparse_softmax_xent_grad(const mg_call *c, mg_tensor *out) { return xent_run(c, out, 1, 1); }
