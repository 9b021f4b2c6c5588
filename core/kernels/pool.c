/*
 * pool.c — max and average pooling over channels-last tensors (NWC, NHWC,
 * NDHWC), and their gradients; one set of kernels for 1, 2 and 3 spatial
 * axes (the geometry is 3-d, nn.h).
 *
 * Every kernel walks output pixels (n, od, oh, ow) and, for each, the
 * window's input positions inside x (padding is never read: a padded window
 * is just clipped; a dilated one steps over the input), with the channels as
 * the contiguous inner loop, which vectorises. The maximum of a window is the first largest value in
 * row-major window order, NaN winning (as reduce max does); max_pool2d,
 * max_pool2d_grad and max_pool2d_grad_grad all pick the same position, so
 * the three are exact adjoints of one another. Average pooling divides by
 * the number of positions inside x (TF's "same" behaviour), or by the whole
 * window with count_include_pad.
 *
 * max_pool2d also takes int32, int64 and uint8 (as TF's max_pool); average
 * pooling is float only (TF's avg_pool too).
 *
 * Forward kernels split output rows across threads; the gradient kernels
 * scatter into overlapping windows, so they split across images.
 */
#include "nn.h"
#include <omp.h>
#include <stdlib.h>

#define NAME(c) ((c)->info->name)

/* The taps of one window inside x: along each axis the first position and
 * the count (consecutive taps are the dilation apart). Infer made sure no
 * window is empty. */
typedef struct pool_win {
  int64_t d0, nd, h0, nh, w0, nw;
} pool_win;

static inline void pool_axis(int64_t o, int64_t s, int64_t pad, int64_t k, int64_t dil, int64_t in, int64_t *first,
                             int64_t *count) {
  int64_t st = o * s - pad, k0 = st < 0 ? (-st + dil - 1) / dil : 0, last = in - 1 - st;
  int64_t k1 = last < 0 ? 0 : last / dil + 1;
  if (k1 > k) k1 = k;
  *first = st + k0 * dil;
  *count = k1 > k0 ? k1 - k0 : 0;
}

static inline void pool_window(const mg_pool_geom *g, int64_t od, int64_t oh, int64_t ow, pool_win *w) {
  pool_axis(od, g->sd, g->pf, g->kd, g->dd, g->id, &w->d0, &w->nd);
  pool_axis(oh, g->sh, g->pt, g->kh, g->dh, g->ih, &w->h0, &w->nh);
  pool_axis(ow, g->sw, g->pl, g->kw, g->dw, g->iw, &w->w0, &w->nw);
}

/* Flat input pixel (within an image) of tap (a, b, e) of window w. */
#define POOL_PIX(g, w, a, b, e) ((((w).d0 + (a) * (g)->dd) * (g)->ih + (w).h0 + (b) * (g)->dh) * (g)->iw + (w).w0 + (e) * (g)->dw)
/* Loops over the taps of window w, with p the flat input pixel. */
#define POOL_TAPS(g, w, p)                                                                  \
  for (int64_t ta_ = 0; ta_ < (w).nd; ta_++)                                                \
    for (int64_t tb_ = 0; tb_ < (w).nh; tb_++)                                              \
      for (int64_t te_ = 0, p = POOL_PIX(g, w, ta_, tb_, 0); te_ < (w).nw; te_++, p += (g)->dw)

/* Output row r (over n, od, oh) as image n and window row (od, oh). */
static inline void pool_row(const mg_pool_geom *g, int64_t r, int64_t *n, int64_t *od, int64_t *oh) {
  *n = r / (g->od * g->oh);
  *od = r / g->oh % g->od;
  *oh = r % g->oh;
}

/* The plain 2-d case the AVX-512 kernels handle: no depth, no dilation. */
static inline int pool_plain2d(const mg_pool_geom *g) {
  return g->id == 1 && g->od == 1 && g->kd == 1 && g->dh == 1 && g->dw == 1;
}

/* A contiguous version of t: t itself, or a copy in *tmp. */
static mg_status pool_contig(const mg_call *c, const mg_tensor *t, const mg_tensor **out, mg_tensor **tmp) {
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

/* "a beats b": larger, or NaN over a number (integers: larger). */
#define POOL_BEATS(a, b) ((a) > (b) || ((a) != (a) && (b) == (b)))
#define POOL_BEATS_INT(a, b) ((a) > (b))

/* The best value (and, if pos, the flat input pixel of it) per channel over
 * one window: best[c], pos[c]. x points at image n. */
#define POOL_ARGMAX(NAME_, T, BEATS)                                                         \
  static void NAME_(const mg_pool_geom *g, const T *x, int64_t od, int64_t oh, int64_t ow, T *restrict best, \
                    int64_t *restrict pos) {                                                 \
    int64_t C = g->ch;                                                                      \
    pool_win wn;                                                                            \
    pool_window(g, od, oh, ow, &wn);                                                        \
    int64_t p0 = POOL_PIX(g, wn, 0, 0, 0);                                                  \
    const T *first = x + p0 * C;                                                            \
    for (int64_t c = 0; c < C; c++) best[c] = first[c];                                     \
    if (pos)                                                                                \
      for (int64_t c = 0; c < C; c++) pos[c] = p0;                                          \
    POOL_TAPS(g, wn, p) {                                                                   \
        const T *restrict v = x + p * C;                                                    \
        if (pos) {                                                                          \
          _Pragma("omp simd") for (int64_t c = 0; c < C; c++) {                             \
            int win = BEATS(v[c], best[c]);                                                 \
            best[c] = win ? v[c] : best[c];                                                 \
            pos[c] = win ? p : pos[c];                                                      \
          }                                                                                 \
        } else {                                                                            \
          _Pragma("omp simd") for (int64_t c = 0; c < C; c++) best[c] = BEATS(v[c], best[c]) ? v[c] : best[c]; \
        }                                                                                   \
      }                                                                                     \
  }
POOL_ARGMAX(pool_argmax_f32, float, POOL_BEATS)
POOL_ARGMAX(pool_argmax_f64, double, POOL_BEATS)
POOL_ARGMAX(pool_argmax_i32, int32_t, POOL_BEATS_INT)  /* max_pool2d of integers (as TF) */
POOL_ARGMAX(pool_argmax_i64, int64_t, POOL_BEATS_INT)
POOL_ARGMAX(pool_argmax_u8, uint8_t, POOL_BEATS_INT)

#ifdef __AVX512F__
#include <immintrin.h>

/* The larger of a and b per lane, NaN winning; where v equals b (or both are NaN). */
static inline __m512 pool_max16(__m512 a, __m512 b) {
  __mmask16 win = _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ) |
                  (_mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q) & (__mmask16)~_mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q));
  return _mm512_mask_mov_ps(a, win, b);
}
static inline __mmask16 pool_eq16(__m512 v, __m512 b) {
  return _mm512_cmp_ps_mask(v, b, _CMP_EQ_OQ) | (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q));
}

/* max_pool2d rows [r0, r1) for float32, 16 channels at a time in registers;
 * unclipped 2x2 windows as a tree of maxima (no dependency chain). */
static void pool_max_avx(const mg_pool_geom *g, const void *xv, void *yv, int64_t r0, int64_t r1) {
  const float *x = xv;
  float *y = yv;
  int64_t C = g->ch, rs = g->iw * C;
  for (int64_t r = r0; r < r1; r++) {
    int64_t n = r / g->oh, oh = r % g->oh;
    for (int64_t ow = 0; ow < g->ow; ow++) {
      pool_win wn;
      pool_window(g, 0, oh, ow, &wn);
      int64_t h0 = wn.h0, h1 = wn.h0 + wn.nh, w0 = wn.w0, w1 = wn.w0 + wn.nw;
      const float *xw = x + ((n * g->ih + h0) * g->iw + w0) * C;
      float *o = y + (r * g->ow + ow) * C;
      for (int64_t c0 = 0; c0 < C; c0 += 16) {
        __mmask16 m = C - c0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (C - c0)) - 1);
        const float *p = xw + c0;
        __m512 b;
        if (h1 - h0 == 2 && w1 - w0 == 2) {
          b = pool_max16(pool_max16(_mm512_maskz_loadu_ps(m, p), _mm512_maskz_loadu_ps(m, p + C)),
                         pool_max16(_mm512_maskz_loadu_ps(m, p + rs), _mm512_maskz_loadu_ps(m, p + rs + C)));
        } else {
          b = _mm512_maskz_loadu_ps(m, p);
          for (int64_t h = 0; h < h1 - h0; h++)
            for (int64_t w = 0; w < w1 - w0; w++) b = pool_max16(b, _mm512_maskz_loadu_ps(m, p + h * rs + w * C));
        }
        _mm512_mask_storeu_ps(o + c0, m, b);
      }
    }
  }
}
#endif

/* ---- forward ------------------------------------------------------------------------ */

/* Output rows (n, od, oh) [r0, r1). */
#define POOL_MAX_FWD(NAME_, T, ARGMAX)                                                      \
  static void NAME_(const mg_pool_geom *g, const void *xv, void *yv, int64_t r0, int64_t r1) { \
    const T *x = xv;                                                                        \
    T *y = yv;                                                                              \
    for (int64_t r = r0; r < r1; r++) {                                                     \
      int64_t n, od, oh;                                                                    \
      pool_row(g, r, &n, &od, &oh);                                                         \
      for (int64_t ow = 0; ow < g->ow; ow++)                                                \
        ARGMAX(g, x + n * g->id * g->ih * g->iw * g->ch, od, oh, ow, y + (r * g->ow + ow) * g->ch, NULL); \
    }                                                                                       \
  }
POOL_MAX_FWD(pool_max_f32, float, pool_argmax_f32)
POOL_MAX_FWD(pool_max_f64, double, pool_argmax_f64)
POOL_MAX_FWD(pool_max_i32, int32_t, pool_argmax_i32)
POOL_MAX_FWD(pool_max_i64, int64_t, pool_argmax_i64)
POOL_MAX_FWD(pool_max_u8, uint8_t, pool_argmax_u8)

/* What a window's average divides by. */
static inline int64_t pool_count(const mg_pool_geom *g, const pool_win *w) {
  return g->incl ? g->kd * g->kh * g->kw : w->nd * w->nh * w->nw;
}

#define POOL_AVG_FWD(NAME_, T)                                                               \
  static void NAME_(const mg_pool_geom *g, const void *xv, void *yv, int64_t r0, int64_t r1) { \
    const T *x = xv;                                                                        \
    T *y = yv;                                                                              \
    int64_t C = g->ch;                                                                      \
    for (int64_t r = r0; r < r1; r++) {                                                     \
      int64_t n, od, oh;                                                                    \
      pool_row(g, r, &n, &od, &oh);                                                         \
      const T *xn = x + n * g->id * g->ih * g->iw * C;                                      \
      for (int64_t ow = 0; ow < g->ow; ow++) {                                              \
        pool_win wn;                                                                        \
        pool_window(g, od, oh, ow, &wn);                                                    \
        T *restrict o = y + (r * g->ow + ow) * C;                                           \
        for (int64_t c = 0; c < C; c++) o[c] = 0;                                           \
        POOL_TAPS(g, wn, p) {                                                               \
            const T *restrict v = xn + p * C;                                               \
            _Pragma("omp simd") for (int64_t c = 0; c < C; c++) o[c] += v[c];               \
          }                                                                                 \
        T inv = (T)1 / (T)(pool_count(g, &wn));                                             \
        _Pragma("omp simd") for (int64_t c = 0; c < C; c++) o[c] *= inv;                    \
      }                                                                                     \
    }                                                                                       \
  }
POOL_AVG_FWD(pool_avg_f32, float)
POOL_AVG_FWD(pool_avg_f64, double)

typedef void (*pool_fwd_fn)(const mg_pool_geom *, const void *, void *, int64_t, int64_t);

/* fns: the kernel per dtype (infer admitted only dtypes that have one). */
static mg_status pool_forward(const mg_call *c, mg_tensor *out, const pool_fwd_fn *fns) {
  const mg_tensor *x;
  mg_tensor *tmp;
  mg_pool_geom g;
  mg_pool_geom_init(c, c->in[0]->shape, 0, &g);  /* validated by infer */
  pool_fwd_fn fn = fns[out->dtype];
#ifdef __AVX512F__
  if (fn == pool_max_avx && !pool_plain2d(&g)) fn = pool_max_f32;
#endif
  if (!fn) return mg_seterror(MG_EDTYPE, "%s: no kernel for %s", NAME(c), mg_dtype_name((mg_dtype)out->dtype));
  mg_status st = pool_contig(c, c->in[0], &x, &tmp);
  if (st) return st;
  int64_t rows = g.n * g.od * g.oh;
  int par = mg_tensor_numel(x) + mg_tensor_numel(out) >= MG_PAR_MIN && rows > 1;
#pragma omp parallel num_threads(mg_threads()) if (par)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    fn(&g, mg_ptr(x), mg_ptr(out), rows * t / nt, rows * (t + 1) / nt);
  }
  mg_tensor_release(tmp);
  return MG_OK;
}

mg_status k_max_pool(const mg_call *c, mg_tensor *out) {
  static const pool_fwd_fn fns[MG_NDTYPES] = {
#ifdef __AVX512F__
      [MG_FLOAT32] = pool_max_avx,
#else
      [MG_FLOAT32] = pool_max_f32,
#endif
      [MG_FLOAT64] = pool_max_f64, [MG_INT32] = pool_max_i32, [MG_INT64] = pool_max_i64, [MG_UINT8] = pool_max_u8};
  return pool_forward(c, out, fns);
}

mg_status k_avg_pool(const mg_call *c, mg_tensor *out) {
  static const pool_fwd_fn fns[MG_NDTYPES] = {[MG_FLOAT32] = pool_avg_f32, [MG_FLOAT64] = pool_avg_f64};
  return pool_forward(c, out, fns);
}

/* ---- max gradients ------------------------------------------------------------------ */

/* Images [n0, n1): dx[argmax] += dy (grad) or y = gx[argmax] (grad_grad).
 * best/pos are per-thread scratch of g->ch elements. */
#define POOL_MAX_BWD(NAME_, T, ARGMAX)                                                       \
  static void NAME_(const mg_pool_geom *g, const T *x, const T *src, T *dst, int grad, int64_t n0, \
                    int64_t n1, T *best, int64_t *pos) {                                     \
    int64_t C = g->ch, img = g->id * g->ih * g->iw * C, oimg = g->od * g->oh * g->ow * C;    \
    for (int64_t n = n0; n < n1; n++) {                                                     \
      if (grad) memset(dst + n * img, 0, (size_t)img * sizeof(T));                          \
      for (int64_t od = 0; od < g->od; od++)                                                \
      for (int64_t oh = 0; oh < g->oh; oh++)                                                \
        for (int64_t ow = 0; ow < g->ow; ow++) {                                            \
          int64_t o = n * oimg + ((od * g->oh + oh) * g->ow + ow) * C;                      \
          ARGMAX(g, x + n * img, od, oh, ow, best, pos);                                    \
          if (grad)                                                                         \
            for (int64_t c = 0; c < C; c++) dst[n * img + pos[c] * C + c] += src[o + c];    \
          else                                                                              \
            for (int64_t c = 0; c < C; c++) dst[o + c] = src[n * img + pos[c] * C + c];     \
        }                                                                                   \
    }                                                                                       \
  }
POOL_MAX_BWD(pool_max_bwd_f32, float, pool_argmax_f32)
POOL_MAX_BWD(pool_max_bwd_f64, double, pool_argmax_f64)

/* Whether non-overlapping windows cover every position of x. */
static int pool_covered(const mg_pool_geom *g) {
  return g->sd == g->kd && g->sh == g->kh && g->sw == g->kw && g->dd == 1 && g->dh == 1 && g->dw == 1 &&
         g->od * g->sd - g->pf >= g->id && g->oh * g->sh - g->pt >= g->ih && g->ow * g->sw - g->pl >= g->iw;
}

/* max_pool2d_grad when windows do not overlap (stride >= window, the usual
 * 2x2/2): every dx position belongs to at most one window, so each is
 * written once, dy at the window's first maximum and 0 elsewhere, with the
 * channels vectorised (no scatter, no zero pass unless some positions lie
 * outside every window). U is the unsigned type of T's width. */
#define POOL_MAX_BWD_TILED(NAME_, T, U)                                                      \
  static void NAME_(const mg_pool_geom *g, const T *x, const T *dy, T *dx, int64_t n0, int64_t n1, \
                    T *restrict best, U *restrict taken) {                                   \
    int64_t C = g->ch, img = g->id * g->ih * g->iw * C;                                     \
    for (int64_t n = n0; n < n1; n++) {                                                     \
      if (!pool_covered(g)) memset(dx + n * img, 0, (size_t)img * sizeof(T));              \
      for (int64_t od = 0; od < g->od; od++)                                                \
      for (int64_t oh = 0; oh < g->oh; oh++)                                                \
        for (int64_t ow = 0; ow < g->ow; ow++) {                                            \
          pool_win wn;                                                                      \
          pool_window(g, od, oh, ow, &wn);                                                  \
          const T *restrict d = dy + (((n * g->od + od) * g->oh + oh) * g->ow + ow) * C;    \
          int64_t p0 = POOL_PIX(g, wn, 0, 0, 0);                                            \
          for (int64_t c = 0; c < C; c++) {                                                 \
            best[c] = x[n * img + p0 * C + c];                                              \
            taken[c] = 0;                                                                   \
          }                                                                                 \
          POOL_TAPS(g, wn, p) {                                                             \
              const T *restrict v = x + n * img + p * C;                                    \
              _Pragma("omp simd") for (int64_t c = 0; c < C; c++) best[c] = POOL_BEATS(v[c], best[c]) ? v[c] : best[c]; \
            }                                                                               \
          POOL_TAPS(g, wn, p) {                                                             \
              const T *restrict v = x + n * img + p * C;                                    \
              T *restrict o = dx + n * img + p * C;                                         \
              _Pragma("omp simd") for (int64_t c = 0; c < C; c++) {                         \
                U hit = (U)(!taken[c] && (v[c] == best[c] || (v[c] != v[c] && best[c] != best[c]))); \
                o[c] = hit ? d[c] : (T)0;                                                   \
                taken[c] |= hit;                                                            \
              }                                                                             \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
  }
POOL_MAX_BWD_TILED(pool_max_tiled_f32, float, uint32_t)
POOL_MAX_BWD_TILED(pool_max_tiled_f64, double, uint64_t)

#ifdef __AVX512F__
/* The float32 version with each window's maximum and "taken" mask kept in
 * registers, 16 channels at a time (the generic loops above go through
 * memory for both, which costs 4x on 32-channel images). */
static void pool_max_tiled_avx(const mg_pool_geom *g, const float *x, const float *dy, float *dx, int64_t n0,
                               int64_t n1) {
  int64_t C = g->ch, img = g->ih * g->iw * C, rs = g->iw * C;
  for (int64_t n = n0; n < n1; n++) {
    if (!pool_covered(g)) memset(dx + n * img, 0, (size_t)img * sizeof(float));
    for (int64_t oh = 0; oh < g->oh; oh++)
      for (int64_t ow = 0; ow < g->ow; ow++) {
        pool_win wn;
        pool_window(g, 0, oh, ow, &wn);
        int64_t h0 = wn.h0, h1 = wn.h0 + wn.nh, w0 = wn.w0, w1 = wn.w0 + wn.nw;
        const float *d = dy + ((n * g->oh + oh) * g->ow + ow) * C, *xw = x + n * img + (h0 * g->iw + w0) * C;
        float *o = dx + n * img + (h0 * g->iw + w0) * C;
        for (int64_t c0 = 0; c0 < C; c0 += 16) {
          __mmask16 m = C - c0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (C - c0)) - 1);
          if (h1 - h0 == 2 && w1 - w0 == 2) {  /* the 2x2 case unrolled: no dependency chains */
            const float *p0 = xw + c0, *p2 = p0 + rs;
            __m512 v0 = _mm512_maskz_loadu_ps(m, p0), v1 = _mm512_maskz_loadu_ps(m, p0 + C);
            __m512 v2 = _mm512_maskz_loadu_ps(m, p2), v3 = _mm512_maskz_loadu_ps(m, p2 + C);
            __m512 b = pool_max16(pool_max16(v0, v1), pool_max16(v2, v3)), dv = _mm512_maskz_loadu_ps(m, d + c0);
            __mmask16 e0 = pool_eq16(v0, b), e1 = pool_eq16(v1, b), e2 = pool_eq16(v2, b), e3 = pool_eq16(v3, b);
            e1 &= (__mmask16)~e0;
            e2 &= (__mmask16)~(e0 | e1);
            e3 &= (__mmask16)~(e0 | e1 | e2);
            _mm512_mask_storeu_ps(o + c0, m, _mm512_maskz_mov_ps(e0, dv));
            _mm512_mask_storeu_ps(o + c0 + C, m, _mm512_maskz_mov_ps(e1, dv));
            _mm512_mask_storeu_ps(o + c0 + rs, m, _mm512_maskz_mov_ps(e2, dv));
            _mm512_mask_storeu_ps(o + c0 + rs + C, m, _mm512_maskz_mov_ps(e3, dv));
            continue;
          }
          __m512 b = _mm512_maskz_loadu_ps(m, xw + c0);
          for (int64_t h = 0; h < h1 - h0; h++)
            for (int64_t w = 0; w < w1 - w0; w++) {
              __m512 v = _mm512_maskz_loadu_ps(m, xw + h * rs + w * C + c0);
              __mmask16 nanb = _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q);
              __mmask16 win = _mm512_cmp_ps_mask(v, b, _CMP_GT_OQ) | (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & ~nanb);
              b = _mm512_mask_mov_ps(b, win, v);
            }
          __m512 dv = _mm512_maskz_loadu_ps(m, d + c0);
          __mmask16 taken = 0, nanb = _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q);
          for (int64_t h = 0; h < h1 - h0; h++)
            for (int64_t w = 0; w < w1 - w0; w++) {
              __m512 v = _mm512_maskz_loadu_ps(m, xw + h * rs + w * C + c0);
              __mmask16 eq = _mm512_cmp_ps_mask(v, b, _CMP_EQ_OQ) | (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & nanb);
              __mmask16 hit = eq & (__mmask16)~taken;
              _mm512_mask_storeu_ps(o + h * rs + w * C + c0, m, _mm512_maskz_mov_ps(hit, dv));
              taken |= hit;
            }
        }
      }
  }
}
#endif

static mg_status pool_max_backward(const mg_call *c, mg_tensor *out, int grad) {
  const mg_tensor *x, *src;
  mg_tensor *tx, *ts;
  mg_pool_geom g;
  mg_pool_geom_init(c, c->in[0]->shape, 0, &g);
  mg_status st = pool_contig(c, c->in[0], &x, &tx);
  if (st) return st;
  if ((st = pool_contig(c, c->in[1], &src, &ts))) {
    mg_tensor_release(tx);
    return st;
  }
  int nt = mg_tensor_numel(x) >= MG_PAR_MIN && g.n > 1 ? mg_threads() : 1;
  int tiled = g.sd >= g.kd && g.sh >= g.kh && g.sw >= g.kw && g.dd == 1 && g.dh == 1 && g.dw == 1;  /* windows do not overlap */
  size_t es = mg_dtype_size((mg_dtype)out->dtype);
  size_t per = ((size_t)g.ch * (es + sizeof(int64_t)) + 63) & ~(size_t)63;  /* keeps each thread's int64s aligned */
  char *scratch;
  st = mg_work_alloc(per * (size_t)nt + 1, NAME(c), (void **)&scratch);
  if (!st && g.od * g.oh * g.ow == 0 && grad) memset(mg_ptr(out), 0, mg_tensor_nbytes(out));
  if (!st && g.od * g.oh * g.ow > 0) {
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
      int t = omp_get_thread_num(), n = omp_get_num_threads();
      int64_t *pos = (int64_t *)(scratch + per * (size_t)t);
      void *best = pos + g.ch;
      int64_t n0 = g.n * t / n, n1 = g.n * (t + 1) / n;
      if (grad && tiled && out->dtype == MG_FLOAT32) {
#ifdef __AVX512F__
        if (pool_plain2d(&g))
          pool_max_tiled_avx(&g, (const float *)mg_ptr(x), (const float *)mg_ptr(src), (float *)mg_ptr(out), n0, n1);
        else
#endif
          pool_max_tiled_f32(&g, (const float *)mg_ptr(x), (const float *)mg_ptr(src), (float *)mg_ptr(out), n0, n1,
                             best, (uint32_t *)pos);
      }
      else if (grad && tiled)
        pool_max_tiled_f64(&g, (const double *)mg_ptr(x), (const double *)mg_ptr(src), (double *)mg_ptr(out), n0,
                           n1, best, (uint64_t *)pos);
      else if (out->dtype == MG_FLOAT32)
        pool_max_bwd_f32(&g, (const float *)mg_ptr(x), (const float *)mg_ptr(src), (float *)mg_ptr(out), grad, n0,
                         n1, best, pos);
      else
        pool_max_bwd_f64(&g, (const double *)mg_ptr(x), (const double *)mg_ptr(src), (double *)mg_ptr(out), grad,
                         n0, n1, best, pos);
    }
  }
  mg_work_free(scratch);
  mg_tensor_release(tx);
  mg_tensor_release(ts);
  return st;
}

mg_status k_max_pool_grad(const mg_call *c, mg_tensor *out) { return pool_max_backward(c, out, 1); }
mg_status k_max_pool_grad_grad(const mg_call *c, mg_tensor *out) { return pool_max_backward(c, out, 0); }

/* ---- average gradient ---------------------------------------------------------------- */

#define POOL_AVG_BWD(NAME_, T)                                                               \
  static void NAME_(const mg_pool_geom *g, const T *dy, T *dx, int64_t n0, int64_t n1) {    \
    int64_t C = g->ch, img = g->id * g->ih * g->iw * C;                                     \
    for (int64_t n = n0; n < n1; n++) {                                                     \
      memset(dx + n * img, 0, (size_t)img * sizeof(T));                                     \
      for (int64_t od = 0; od < g->od; od++)                                                \
      for (int64_t oh = 0; oh < g->oh; oh++)                                                \
        for (int64_t ow = 0; ow < g->ow; ow++) {                                            \
          pool_win wn;                                                                      \
          pool_window(g, od, oh, ow, &wn);                                                  \
          const T *restrict d = dy + (((n * g->od + od) * g->oh + oh) * g->ow + ow) * C;    \
          T inv = (T)1 / (T)(pool_count(g, &wn));                                           \
          POOL_TAPS(g, wn, p) {                                                             \
              T *restrict o = dx + n * img + p * C;                                         \
              _Pragma("omp simd") for (int64_t c = 0; c < C; c++) o[c] += d[c] * inv;       \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
  }
POOL_AVG_BWD(pool_avg_bwd_f32, float)
POOL_AVG_BWD(pool_avg_bwd_f64, double)

mg_status k_avg_pool_grad(const mg_call *c, mg_tensor *out) {
  const mg_tensor *dy;
  mg_tensor *tmp;
  mg_pool_geom g;
  mg_pool_geom_init(c, A_LIST(c, 0), 1, &g);
  mg_status st = pool_contig(c, c->in[0], &dy, &tmp);
  if (st) return st;
  int par = mg_tensor_numel(out) >= MG_PAR_MIN && g.n > 1;
#pragma omp parallel num_threads(mg_threads()) if (par)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    int64_t n0 = g.n * t / nt, n1 = g.n * (t + 1) / nt;
    if (out->dtype == MG_FLOAT32) pool_avg_bwd_f32(&g, (const float *)mg_ptr(dy), (float *)mg_ptr(out), n0, n1);
    else pool_avg_bwd_f64(&g, (const double *)mg_ptr(dy), (double *)mg_ptr(out), n0, n1);
  }
  mg_tensor_release(tmp);
  return MG_OK;
}
