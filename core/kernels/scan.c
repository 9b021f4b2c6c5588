/*
 * scan.c — cumulative ops along one axis: cumsum, cumprod, cummax, cummin,
 * cumulative_logsumexp, the running-extreme positions cumargmax/cumargmin
 * (cummax/cummin's gradients scatter through them) and cumprod's gradient.
 *
 * The input is viewed as a contiguous (outer, L, inner) block with the
 * scanned axis in the middle (a strided input is first copied into the
 * output, and the scan then runs in place: each element is read before its
 * slot is written). With inner == 1 every row is one scalar loop; otherwise a
 * chunk of up to CH columns is carried through the L steps together, so the
 * inner loop runs along contiguous memory and vectorises. Units (rows, or
 * column chunks) are independent and split across threads above MG_PAR_MIN
 * elements. exclusive writes the running value before taking the element in;
 * reverse walks the axis from its end.
 *
 * Accumulators: float32 sums, products and log-sum-exps run in double and
 * round once per output; integer sums and products in uint64 (wrap-around,
 * as sum/prod, no signed-overflow UB). max/min propagate NaN.
 *
 * cumprod's gradient is exact at zeros without dividing by x: with A_p the
 * exclusive product of the elements before p (in scan order) and
 * B_p = sum over the outputs q that contain x_p of g_q * prod(x_k, p < k <= q),
 * dx_p = A_p * B_p, where B follows the backward recurrence
 * B_p = g_p + x_{p+1} B_{p+1} (inclusive) or B_p = g_{p+1} + x_{p+1} B_{p+1}
 * (exclusive).
 */
#include "internal.h"
#include <math.h>
#include <omp.h>
#include <stdint.h>

#define CH 256

mg_status mg_scan_axis(const mg_call *c, int *a);

typedef struct splan {
  int64_t outer, L, inner;
  int excl, rev, base;
  const char *x, *g;
  char *y;
} splan;

static void splan_init(splan *p, const mg_call *c, const mg_tensor *x, int a) {
  p->outer = 1;
  p->inner = 1;
  p->L = x->ndim ? x->shape[a] : 1;
  for (int d = 0; d < a; d++) p->outer *= x->shape[d];
  for (int d = a + 1; d < x->ndim; d++) p->inner *= x->shape[d];
  p->base = c->ctx ? c->ctx->index_base : 0;
}

static int64_t scan_units(const splan *p) {
  return p->inner == 1 ? p->outer : p->outer * ((p->inner + CH - 1) / CH);
}

/* Unit u as (element offset of its first column, its width). */
static int64_t unit_at(const splan *p, int64_t u, int *len) {
  if (p->inner == 1) {
    *len = 1;
    return u * p->L;
  }
  int64_t nch = (p->inner + CH - 1) / CH, o = u / nch, j0 = (u % nch) * CH;
  *len = p->inner - j0 < CH ? (int)(p->inner - j0) : CH;
  return o * p->L * p->inner + j0;
}

typedef void (*unit_fn)(const splan *p, int64_t off, int len);

static mg_status run_units(const splan *p, unit_fn fn, int64_t n) {
  int64_t units = scan_units(p);
  if (n == 0 || units == 0) return MG_OK;
  int nt = n >= MG_PAR_MIN && units > 1 ? mg_threads() : 1;
  mg_limits *lim = n >= MG_POLL_CHUNK ? mg_tl_kernel : NULL;
  int64_t per_unit = n / units, every = per_unit >= MG_POLL_CHUNK ? 1 : MG_POLL_CHUNK / (per_unit + 1) + 1;
  if (nt > 1) {
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t u = 0; u < units; u++)
      if (!(u % every ? mg_kernel_stopped(lim) : mg_kernel_stop(lim))) {
        int len;
        int64_t off = unit_at(p, u, &len);
        fn(p, off, len);
      }
  } else {
    for (int64_t u = 0; u < units && !(u % every ? mg_kernel_stopped(lim) : mg_kernel_stop(lim)); u++) {
      int len;
      int64_t off = unit_at(p, u, &len);
      fn(p, off, len);
    }
  }
  return MG_OK;
}

/* ---- value scans ------------------------------------------------------------- */

static inline double lse2(double a, double v) {
  if (a != a || v != v) return NAN;
  double m = a > v ? a : v, d = a > v ? v - a : a - v;
  if (m == -INFINITY || m == INFINITY) return m;
  return m + log1p(exp(d));
}

#define ADD(a, v) ((a) + (v))
#define MULT(a, v) ((a) * (v))
#define MAXV(a, v) (((v) > (a) || (v) != (v)) ? (v) : (a))
#define MINV(a, v) (((v) < (a) || (v) != (v)) ? (v) : (a))
#define LSE(a, v) lse2((a), (v))

/* One unit of a scan: T elements, ACC accumulator, COMB(acc, v). */
#define SCAN_FN(NAME, T, ACC, INIT, COMB)                                                   \
  static void NAME(const splan *p, int64_t off, int len) {                                  \
    const T *x = (const T *)p->x + off;                                                     \
    T *y = (T *)p->y + off;                                                                 \
    int64_t L = p->L, in = p->inner;                                                        \
    if (len == 1) {                                                                         \
      ACC acc = INIT;                                                                       \
      for (int64_t s = 0; s < L; s++) {                                                     \
        int64_t l = (p->rev ? L - 1 - s : s) * in;                                          \
        ACC v = (ACC)x[l];                                                                  \
        if (p->excl) {                                                              \
          y[l] = (T)acc;                                                                    \
          acc = COMB(acc, v);                                                               \
        } else {                                                                            \
          acc = COMB(acc, v);                                                               \
          y[l] = (T)acc;                                                                    \
        }                                                                                   \
      }                                                                                     \
      return;                                                                               \
    }                                                                                       \
    ACC acc[CH];                                                                            \
    for (int j = 0; j < len; j++) acc[j] = INIT;                                            \
    for (int64_t s = 0; s < L; s++) {                                                       \
      int64_t l = (p->rev ? L - 1 - s : s) * in;                                            \
      const T *xr = x + l;                                                                  \
      T *yr = y + l;                                                                        \
      if (p->excl) {                                                                        \
        for (int j = 0; j < len; j++) {                                                     \
          ACC v = (ACC)xr[j];                                                               \
          yr[j] = (T)acc[j];                                                                \
          acc[j] = COMB(acc[j], v);                                                         \
        }                                                                                   \
      } else {                                                                              \
        _Pragma("omp simd") for (int j = 0; j < len; j++) {                                 \
          acc[j] = COMB(acc[j], (ACC)xr[j]);                                                \
          yr[j] = (T)acc[j];                                                                \
        }                                                                                   \
      }                                                                                     \
    }                                                                                       \
  }

SCAN_FN(sum_f32, float, double, 0.0, ADD)
SCAN_FN(sum_f64, double, double, 0.0, ADD)
SCAN_FN(sum_i64, int64_t, uint64_t, 0u, ADD)
SCAN_FN(prod_f32, float, double, 1.0, MULT)
SCAN_FN(prod_f64, double, double, 1.0, MULT)
SCAN_FN(prod_i64, int64_t, uint64_t, 1u, MULT)
SCAN_FN(lse_f32, float, double, -INFINITY, LSE)
SCAN_FN(lse_f64, double, double, -INFINITY, LSE)
SCAN_FN(max_f32, float, float, -INFINITY, MAXV)
SCAN_FN(max_f64, double, double, -INFINITY, MAXV)
SCAN_FN(max_i32, int32_t, int32_t, INT32_MIN, MAXV)
SCAN_FN(max_i64, int64_t, int64_t, INT64_MIN, MAXV)
SCAN_FN(max_u8, uint8_t, uint8_t, 0, MAXV)
SCAN_FN(min_f32, float, float, INFINITY, MINV)
SCAN_FN(min_f64, double, double, INFINITY, MINV)
SCAN_FN(min_i32, int32_t, int32_t, INT32_MAX, MINV)
SCAN_FN(min_i64, int64_t, int64_t, INT64_MAX, MINV)
SCAN_FN(min_u8, uint8_t, uint8_t, UINT8_MAX, MINV)
/* bool is stored as one byte 0/1: its max and min are those of uint8, with
 * min starting from true. */
SCAN_FN(min_b8, uint8_t, uint8_t, 1, MINV)

/* Runs a value scan: the kernel for the output dtype (NULL: none). */
static mg_status scan_values(const mg_call *c, mg_tensor *out, const unit_fn fns[MG_NDTYPES], int excl_attr) {
  const mg_tensor *x = c->in[0];
  int a = 0;
  mg_status st = mg_scan_axis(c, &a);
  if (st) return st;
  unit_fn fn = fns[out->dtype];
  if (!fn)
    return mg_seterror(MG_EDTYPE, "%s: internal error: no kernel for %s", c->info->name,
                       mg_dtype_name((mg_dtype)out->dtype));
  splan p;
  splan_init(&p, c, x, a);
  p.excl = excl_attr ? A_I(c, 1) != 0 : 0;
  p.rev = excl_attr ? A_I(c, 2) != 0 : A_I(c, 1) != 0;
  int64_t n = mg_tensor_numel(x);
  if (n == 0) return MG_OK;
  p.x = mg_ptr(x);
  p.y = mg_ptr(out);
  if (!mg_tensor_is_contiguous(x)) {  /* copy into out, then scan in place */
    if ((st = mg_copy_into(out, x))) return st;
    p.x = mg_ptr(out);
  }
  return run_units(&p, fn, n);
}

mg_status k_cumsum(const mg_call *c, mg_tensor *out) {
  static const unit_fn f[MG_NDTYPES] = {[MG_FLOAT32] = sum_f32, [MG_FLOAT64] = sum_f64, [MG_INT64] = sum_i64};
  return scan_values(c, out, f, 1);
}
mg_status k_cumprod(const mg_call *c, mg_tensor *out) {
  static const unit_fn f[MG_NDTYPES] = {[MG_FLOAT32] = prod_f32, [MG_FLOAT64] = prod_f64, [MG_INT64] = prod_i64};
  return scan_values(c, out, f, 1);
}
mg_status k_cumulative_logsumexp(const mg_call *c, mg_tensor *out) {
  static const unit_fn f[MG_NDTYPES] = {[MG_FLOAT32] = lse_f32, [MG_FLOAT64] = lse_f64};
  return scan_values(c, out, f, 1);
}
mg_status k_cummax(const mg_call *c, mg_tensor *out) {
  static const unit_fn f[MG_NDTYPES] = {[MG_FLOAT32] = max_f32, [MG_FLOAT64] = max_f64, [MG_INT32] = max_i32,
                                        [MG_INT64] = max_i64, [MG_UINT8] = max_u8, [MG_BOOL] = max_u8};
  return scan_values(c, out, f, 0);
}
mg_status k_cummin(const mg_call *c, mg_tensor *out) {
  static const unit_fn f[MG_NDTYPES] = {[MG_FLOAT32] = min_f32, [MG_FLOAT64] = min_f64, [MG_INT32] = min_i32,
                                        [MG_INT64] = min_i64, [MG_UINT8] = min_u8, [MG_BOOL] = min_b8};
  return scan_values(c, out, f, 0);
}

/* ---- running-extreme positions ------------------------------------------------- */

/* The position (from the index base) of the running max (min), the first in
 * scan order that holds it; from a NaN on, the NaN's position. */
#define ARG_FN(NAME, T, BETTER)                                                    \
  static void NAME(const splan *p, int64_t off, int len) {                         \
    const T *x = (const T *)p->x + off;                                            \
    int64_t *y = (int64_t *)p->y + off, L = p->L, in = p->inner;                   \
    for (int j = 0; j < len; j++) {                                                \
      T best = 0;                                                                  \
      int64_t at = 0;                                                              \
      int nan = 0;                                                                 \
      for (int64_t s = 0; s < L; s++) {                                            \
        int64_t l = p->rev ? L - 1 - s : s;                                        \
        T v = x[l * in + j];                                                       \
        if (!nan && (s == 0 || v != v || BETTER(v, best))) {                       \
          best = v;                                                                \
          at = l;                                                                  \
          nan = v != v;                                                            \
        }                                                                          \
        y[l * in + j] = at + p->base;                                              \
      }                                                                            \
    }                                                                              \
  }
#define GT(a, b) ((a) > (b))
#define LT(a, b) ((a) < (b))
ARG_FN(amax_f32, float, GT)
ARG_FN(amax_f64, double, GT)
ARG_FN(amax_i32, int32_t, GT)
ARG_FN(amax_i64, int64_t, GT)
ARG_FN(amax_u8, uint8_t, GT)
ARG_FN(amin_f32, float, LT)
ARG_FN(amin_f64, double, LT)
ARG_FN(amin_i32, int32_t, LT)
ARG_FN(amin_i64, int64_t, LT)
ARG_FN(amin_u8, uint8_t, LT)

static mg_status scan_arg(const mg_call *c, mg_tensor *out, const unit_fn fns[MG_NDTYPES]) {
  const mg_tensor *x = c->in[0];
  int a = 0;
  mg_status st = mg_scan_axis(c, &a);
  if (st) return st;
  splan p;
  splan_init(&p, c, x, a);
  p.excl = 0;
  p.rev = A_I(c, 1) != 0;
  int64_t n = mg_tensor_numel(x);
  if (n == 0) return MG_OK;
  mg_tensor *tmp;
  if ((st = mg_contiguous_input(c->info->name, x, &p.x, &tmp))) return st;
  p.y = mg_ptr(out);
  st = run_units(&p, fns[x->dtype], n);
  mg_tensor_release(tmp);
  return st;
}
mg_status k_cumargmax(const mg_call *c, mg_tensor *out) {
  static const unit_fn f[MG_NDTYPES] = {amax_f32, amax_f64, amax_i32, amax_i64, amax_u8, amax_u8};
  return scan_arg(c, out, f);
}
mg_status k_cumargmin(const mg_call *c, mg_tensor *out) {
  static const unit_fn f[MG_NDTYPES] = {amin_f32, amin_f64, amin_i32, amin_i64, amin_u8, amin_u8};
  return scan_arg(c, out, f);
}

/* ---- cumprod's gradient ----------------------------------------------------------- */

#define PGRAD_FN(NAME, T)                                                               \
  static void NAME(const splan *p, int64_t off, int len) {                              \
    const T *x = (const T *)p->x + off, *g = (const T *)p->g + off;                     \
    T *y = (T *)p->y + off;                                                             \
    int64_t L = p->L, in = p->inner;                                                    \
    for (int j = 0; j < len; j++) {                                                     \
      double A = 1.0;                                                                   \
      for (int64_t s = 0; s < L; s++) { /* y = exclusive products, in scan order */     \
        int64_t l = (p->rev ? L - 1 - s : s) * in + j;                                  \
        double v = x[l];                                                                \
        y[l] = (T)A;                                                                    \
        A *= v;                                                                         \
      }                                                                                 \
      double B = 0.0;                                                                   \
      for (int64_t s = L - 1; s >= 0; s--) {                                            \
        int64_t l = (p->rev ? L - 1 - s : s) * in + j;                                  \
        if (s == L - 1) {                                                               \
          B = p->excl ? 0.0 : (double)g[l];                                             \
        } else {                                                                        \
          int64_t ln = (p->rev ? L - 2 - s : s + 1) * in + j;                           \
          B = (p->excl ? (double)g[ln] : (double)g[l]) + (double)x[ln] * B;             \
        }                                                                               \
        y[l] = (T)((double)y[l] * B);                                                   \
      }                                                                                 \
    }                                                                                   \
  }
PGRAD_FN(pgrad_f32, float)
PGRAD_FN(pgrad_f64, double)

mg_status k_cumprod_grad(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0], *g = c->in[1];
  int a = 0;
  mg_status st = mg_scan_axis(c, &a);
  if (st) return st;
  splan p;
  splan_init(&p, c, x, a);
  p.excl = A_I(c, 1) != 0;
  p.rev = A_I(c, 2) != 0;
  int64_t n = mg_tensor_numel(x);
  if (n == 0) return MG_OK;
  mg_tensor *tx, *tg = NULL;
  if ((st = mg_contiguous_input(c->info->name, x, &p.x, &tx))) return st;
  if ((st = mg_contiguous_input(c->info->name, g, &p.g, &tg))) {
    mg_tensor_release(tx);
    return st;
  }
  p.y = mg_ptr(out);
  st = run_units(&p, out->dtype == MG_FLOAT32 ? pgrad_f32 : pgrad_f64, n);
  mg_tensor_release(tx);
  mg_tensor_release(tg);
  return st;
}
