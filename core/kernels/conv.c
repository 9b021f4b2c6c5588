/*
 * conv.c — convolution over channels-last tensors (NWC, NHWC, NDHWC) and its
 * two gradients (conv{1,2,3}d, *_backprop_input = *_transpose,
 * *_backprop_filter). The geometry is 3-d (nn.h): conv1d and conv2d run the
 * same loops with unit leading axes.
 *
 * All three are one GEMM per (image, band of output rows, group) over an
 * im2col matrix: row p of `col` holds the window of output pixel p, laid
 * out (kd, kh, kw, ci) like the filter's rows, so with W the filter as a
 * (kd*kh*kw*cin_g) x cout matrix:
 *
 *   forward          out[p, :]  = col[p, :] W                  (col: m x K)
 *   filter gradient  dW        += col^T dy[p, :]               (summed over p)
 *   input gradient   dcol       = dy[p, :] W^T, then col2im adds each row of
 *                                 dcol back into its window of dx
 *
 * A band is sized so its col (at most CONV_COL_BYTES) stays in the core's
 * L2 cache while BLIS packs it: im2col writes it and the GEMM reads it back
 * from cache, never from memory. 1x1 convolutions with stride 1 and no
 * padding skip im2col (col is x itself).
 *
 * Threads: BLIS runs single-threaded inside our parallel loops, which split
 * the (image, band) items across cores: on the demo's small per-image
 * products (196 x 64 x 800) that beats BLIS's own threading, which would
 * split every small GEMM. The filter gradient gives each thread its own
 * accumulator and sums them at the end; the input gradient splits whole
 * images (neighbouring bands' windows overlap in dx). With one image and
 * several threads the loops run serially and BLIS gets the threads.
 * Products too small for BLIS (its per-call packing costs more than it
 * saves, below CONV_SMALL multiply-adds) and degenerate shapes use the
 * plain loops below. float32 goes to sgemm, float64 to dgemm.
 *
 * float32 first tries the direct kernels of conv_direct.c, which read the
 * padded image in place of col and run at the core's FMA peak (the demo's
 * layers: 4.4 ms for all passes of a step on two cores, against 8.2 ms
 * here); this path serves float64, groups, width dilation and strided
 * input gradients.
 */
#include "conv.h"
#include <blis.h>
#include <omp.h>
#include <stdlib.h>

#define NAME(c) ((c)->info->name)
#define CONV_COL_BYTES (512 * 1024)  /* one band's im2col matrix: about half an L2 */
#define CONV_SMALL 32768             /* multiply-adds below which plain loops beat BLIS */

typedef struct conv_job {
  mg_conv_geom g;
  int f32;
  size_t es;
  int64_t P;        /* output pixels per image */
  int64_t K;        /* filter rows per group: kd * kh * kw * cin_g */
  int64_t cig, cog; /* channels per group */
  int64_t band;     /* output rows per band */
  int64_t nbands;
  int direct;       /* 1x1, stride 1, no padding: col is x itself */
  int flat;         /* no depth axis (id = kd = od = 1): the 2-d im2col */
  int gemm_threads; /* threads each GEMM may use */
  const char *x, *w, *dy;
  char *out;
} conv_job;

/* ---- GEMM: C (m x n) = [C +] A (m x k) B (k x n), strides in elements --------------- */

#define CONV_PLAIN(NAME_, T)                                                                      \
  static void NAME_(int64_t m, int64_t n, int64_t k, const T *a, int64_t rsa, int64_t csa, const T *b, \
                    int64_t rsb, int64_t csb, int acc, T *c, int64_t rsc, int64_t csc) {          \
    if (csb == 1 && csc == 1) { /* rows of C += a[i][p] * rows of B: vectorises over j */         \
      for (int64_t i = 0; i < m; i++) {                                                           \
        T *restrict cr = c + i * rsc;                                                              \
        if (!acc)                                                                                 \
          for (int64_t j = 0; j < n; j++) cr[j] = 0;                                              \
        for (int64_t p = 0; p < k; p++) {                                                         \
          const T *restrict br = b + p * rsb;                                                     \
          T av = a[i * rsa + p * csa];                                                            \
          _Pragma("omp simd") for (int64_t j = 0; j < n; j++) cr[j] += av * br[j];                \
        }                                                                                         \
      }                                                                                           \
      return;                                                                                     \
    }                                                                                             \
    for (int64_t i = 0; i < m; i++) /* dot products */                                           \
      for (int64_t j = 0; j < n; j++) {                                                           \
        T s = 0;                                                                                  \
        for (int64_t p = 0; p < k; p++) s += a[i * rsa + p * csa] * b[p * rsb + j * csb];         \
        T *cv = c + i * rsc + j * csc;                                                            \
        *cv = acc ? *cv + s : s;                                                                  \
      }                                                                                           \
  }
CONV_PLAIN(conv_plain_f32, float)
CONV_PLAIN(conv_plain_f64, double)

/* The operands are never overlapping or zero-strided (BLIS would abort):
 * every stride here is positive and spans the other dimension. */
static void conv_gemm(const conv_job *j, int64_t m, int64_t n, int64_t k, const void *a, int64_t rsa,
                      int64_t csa, const void *b, int64_t rsb, int64_t csb, int acc, void *c, int64_t rsc,
                      int64_t csc) {
  if (m == 0 || n == 0) return;
  if (m < 2 || n < 2 || k < 2 || (double)m * (double)n * (double)k < CONV_SMALL) {
    if (j->f32) conv_plain_f32(m, n, k, a, rsa, csa, b, rsb, csb, acc, c, rsc, csc);
    else conv_plain_f64(m, n, k, a, rsa, csa, b, rsb, csb, acc, c, rsc, csc);
    return;
  }
  rntm_t rt = BLIS_RNTM_INITIALIZER;
  bli_rntm_set_num_threads(j->gemm_threads, &rt);
  if (j->f32) {
    float one = 1, beta = acc ? 1.0f : 0.0f;
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &one, (float *)a, rsa, csa, (float *)b, rsb, csb,
                 &beta, (float *)c, rsc, csc, NULL, &rt);
  } else {
    double one = 1, beta = acc ? 1.0 : 0.0;
    bli_dgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &one, (double *)a, rsa, csa, (double *)b, rsb, csb,
                 &beta, (double *)c, rsc, csc, NULL, &rt);
  }
}

/* ---- im2col and col2im ------------------------------------------------------------- */

/* Rows [p0, p0 + m) of image n's im2col matrix for group grp, into col (m x K).
 * With unit width dilation and one group, a window row (kw, ci) is one
 * contiguous run of x, copied as a block; else run by run of cin_g. ADD
 * turns the copy into col2im: x[...] += col[...] (padding dropped). */
/* The 2-d version (no depth axis: conv1d and conv2d), kept apart so that
 * their loops carry no depth bookkeeping (the 3-d one below costs conv2d's
 * first demo layer about 10% in im2col). */
#define CONV_IM2COL2D(NAME_, T, ADD)                                                               \
  static void NAME_(const conv_job *j, int64_t n, int64_t p0, int64_t m, int64_t grp, T *xv, T *col) { \
    const mg_conv_geom *g = &j->g;                                                               \
    int64_t K = j->K, cig = j->cig, CI = g->ci, run = g->dw == 1 && g->groups == 1;              \
    T *xn = xv + n * g->ih * g->iw * CI + grp * cig;                                             \
    int64_t oh = p0 / g->ow, ow = p0 % g->ow;                                                    \
    for (int64_t r = 0; r < m; r++) {                                                            \
      T *crow = col + r * K;                                                                     \
      int64_t hs = oh * g->sh - g->pt, ws = ow * g->sw - g->pl;                                  \
      for (int64_t kh = 0; kh < g->kh; kh++) {                                                   \
        int64_t ih = hs + kh * g->dh;                                                            \
        T *cseg = crow + kh * g->kw * cig;                                                       \
        if (ih < 0 || ih >= g->ih) {                                                             \
          if (!ADD)                                                                              \
            for (int64_t q = 0; q < g->kw * cig; q++) cseg[q] = 0;                               \
          continue;                                                                              \
        }                                                                                        \
        T *xrow = xn + ih * g->iw * CI;                                                          \
        if (run) { /* kw in [k0, k1) lies inside the row */                                      \
          int64_t k0 = ws < 0 ? -ws : 0, k1 = g->iw - ws < g->kw ? g->iw - ws : g->kw;           \
          if (k1 < k0) k1 = k0;                                                                  \
          if (!ADD) {                                                                            \
            for (int64_t q = 0; q < k0 * CI; q++) cseg[q] = 0;                                   \
            for (int64_t q = k1 * CI; q < g->kw * CI; q++) cseg[q] = 0;                          \
          }                                                                                      \
          T *restrict xs = xrow + (ws + k0) * CI, *restrict cs = cseg + k0 * CI;                 \
          if (ADD) { _Pragma("omp simd") for (int64_t q = 0; q < (k1 - k0) * CI; q++) xs[q] += cs[q]; } \
          else { _Pragma("omp simd") for (int64_t q = 0; q < (k1 - k0) * CI; q++) cs[q] = xs[q]; }   \
          continue;                                                                              \
        }                                                                                        \
        for (int64_t kw = 0; kw < g->kw; kw++) {                                                 \
          int64_t iw = ws + kw * g->dw;                                                          \
          T *restrict cs = cseg + kw * cig;                                                      \
          if (iw < 0 || iw >= g->iw) {                                                           \
            if (!ADD)                                                                            \
              for (int64_t q = 0; q < cig; q++) cs[q] = 0;                                       \
            continue;                                                                            \
          }                                                                                      \
          T *restrict xs = xrow + iw * CI;                                                       \
          if (ADD) { _Pragma("omp simd") for (int64_t q = 0; q < cig; q++) xs[q] += cs[q]; }     \
          else { _Pragma("omp simd") for (int64_t q = 0; q < cig; q++) cs[q] = xs[q]; }          \
        }                                                                                        \
      }                                                                                          \
      if (++ow == g->ow) {                                                                       \
        ow = 0;                                                                                  \
        oh++;                                                                                    \
      }                                                                                          \
    }                                                                                            \
  }
CONV_IM2COL2D(conv_im2col2d_f32, float, 0)
CONV_IM2COL2D(conv_im2col2d_f64, double, 0)
CONV_IM2COL2D(conv_col2im2d_f32, float, 1)
CONV_IM2COL2D(conv_col2im2d_f64, double, 1)

/* The 3-d version: each depth tap a (kh, kw, cin_g) block of the row, zero
 * where the tap falls in the padding. */
#define CONV_IM2COL(NAME_, T, ADD)                                                               \
  static void NAME_(const conv_job *j, int64_t n, int64_t p0, int64_t m, int64_t grp, T *xv, T *col) { \
    const mg_conv_geom *g = &j->g;                                                               \
    int64_t K = j->K, cig = j->cig, CI = g->ci, run = g->dw == 1 && g->groups == 1;              \
    int64_t plane = g->ih * g->iw * CI, seg = g->kw * cig;                                       \
    T *xn = xv + n * g->id * plane + grp * cig;                                                  \
    int64_t od = p0 / (g->oh * g->ow), oh = p0 / g->ow % g->oh, ow = p0 % g->ow;                 \
    for (int64_t r = 0; r < m; r++) {                                                            \
      T *crow = col + r * K;                                                                     \
      int64_t ds = od * g->sd - g->pf, hs = oh * g->sh - g->pt, ws = ow * g->sw - g->pl;         \
      for (int64_t kd = 0; kd < g->kd; kd++) {                                                   \
        int64_t idp = ds + kd * g->dd;                                                           \
        T *dseg = crow + kd * g->kh * seg;                                                       \
        if (idp < 0 || idp >= g->id) {                                                           \
          if (!ADD)                                                                              \
            for (int64_t q = 0; q < g->kh * seg; q++) dseg[q] = 0;                               \
          continue;                                                                              \
        }                                                                                        \
        T *xd = xn + idp * plane;                                                                \
        for (int64_t kh = 0; kh < g->kh; kh++) {                                                 \
          int64_t ih = hs + kh * g->dh;                                                          \
          T *cseg = dseg + kh * seg;                                                             \
          if (ih < 0 || ih >= g->ih) {                                                           \
            if (!ADD)                                                                            \
              for (int64_t q = 0; q < seg; q++) cseg[q] = 0;                                     \
            continue;                                                                            \
          }                                                                                      \
          T *xrow = xd + ih * g->iw * CI;                                                        \
          if (run) { /* kw in [k0, k1) lies inside the row */                                    \
            int64_t k0 = ws < 0 ? -ws : 0, k1 = g->iw - ws < g->kw ? g->iw - ws : g->kw;         \
            if (k1 < k0) k1 = k0;                                                                \
            if (!ADD) {                                                                          \
              for (int64_t q = 0; q < k0 * CI; q++) cseg[q] = 0;                                 \
              for (int64_t q = k1 * CI; q < g->kw * CI; q++) cseg[q] = 0;                        \
            }                                                                                    \
            T *restrict xs = xrow + (ws + k0) * CI, *restrict cs = cseg + k0 * CI;               \
            if (ADD) { _Pragma("omp simd") for (int64_t q = 0; q < (k1 - k0) * CI; q++) xs[q] += cs[q]; } \
            else { _Pragma("omp simd") for (int64_t q = 0; q < (k1 - k0) * CI; q++) cs[q] = xs[q]; }   \
            continue;                                                                            \
          }                                                                                      \
          for (int64_t kw = 0; kw < g->kw; kw++) {                                               \
            int64_t iw = ws + kw * g->dw;                                                        \
            T *restrict cs = cseg + kw * cig;                                                    \
            if (iw < 0 || iw >= g->iw) {                                                         \
              if (!ADD)                                                                          \
                for (int64_t q = 0; q < cig; q++) cs[q] = 0;                                     \
              continue;                                                                          \
            }                                                                                    \
            T *restrict xs = xrow + iw * CI;                                                     \
            if (ADD) { _Pragma("omp simd") for (int64_t q = 0; q < cig; q++) xs[q] += cs[q]; }   \
            else { _Pragma("omp simd") for (int64_t q = 0; q < cig; q++) cs[q] = xs[q]; }        \
          }                                                                                      \
        }                                                                                        \
      }                                                                                          \
      if (++ow == g->ow) {                                                                       \
        ow = 0;                                                                                  \
        if (++oh == g->oh) {                                                                     \
          oh = 0;                                                                                \
          od++;                                                                                  \
        }                                                                                        \
      }                                                                                          \
    }                                                                                            \
  }
CONV_IM2COL(conv_im2col_f32, float, 0)
CONV_IM2COL(conv_im2col_f64, double, 0)
CONV_IM2COL(conv_col2im_f32, float, 1)
CONV_IM2COL(conv_col2im_f64, double, 1)

static void conv_im2col(const conv_job *j, int64_t n, int64_t p0, int64_t m, int64_t grp, void *col) {
  if (j->flat) {
    if (j->f32) conv_im2col2d_f32(j, n, p0, m, grp, (float *)j->x, col);
    else conv_im2col2d_f64(j, n, p0, m, grp, (double *)j->x, col);
  } else {
    if (j->f32) conv_im2col_f32(j, n, p0, m, grp, (float *)j->x, col);
    else conv_im2col_f64(j, n, p0, m, grp, (double *)j->x, col);
  }
}

static void conv_col2im(const conv_job *j, int64_t n, int64_t p0, int64_t m, int64_t grp, const void *col) {
  if (j->flat) {
    if (j->f32) conv_col2im2d_f32(j, n, p0, m, grp, (float *)j->out, (float *)col);
    else conv_col2im2d_f64(j, n, p0, m, grp, (double *)j->out, (double *)col);
  } else {
    if (j->f32) conv_col2im_f32(j, n, p0, m, grp, (float *)j->out, (float *)col);
    else conv_col2im_f64(j, n, p0, m, grp, (double *)j->out, (double *)col);
  }
}

/* ---- the three passes over one band ---------------------------------------------------- */

#define AT(p, elems) ((const char *)(p) + (int64_t)(elems) * (int64_t)j->es)
#define ATW(p, elems) ((char *)(p) + (int64_t)(elems) * (int64_t)j->es)

/* Rows [p0, p0 + m) of image n: out = col W, group by group. */
static void conv_band_forward(const conv_job *j, int64_t n, int64_t p0, int64_t m, void *col) {
  const mg_conv_geom *g = &j->g;
  int64_t row0 = n * j->P + p0;
  for (int64_t grp = 0; grp < g->groups; grp++) {
    const void *a = col;
    int64_t rsa = j->K;
    if (j->direct) {
      a = AT(j->x, row0 * g->ci + grp * j->cig);
      rsa = g->ci;
    } else {
      conv_im2col(j, n, p0, m, grp, col);
    }
    conv_gemm(j, m, j->cog, j->K, a, rsa, 1, AT(j->w, grp * j->cog), g->co, 1, 0,
              ATW(j->out, row0 * g->co + grp * j->cog), g->co, 1);
  }
}

/* dW (the thread's accumulator) += col^T dy over rows [p0, p0 + m) of image n. */
static void conv_band_filter(const conv_job *j, int64_t n, int64_t p0, int64_t m, void *col, void *dw) {
  const mg_conv_geom *g = &j->g;
  int64_t row0 = n * j->P + p0;
  for (int64_t grp = 0; grp < g->groups; grp++) {
    const void *a = col;
    int64_t csa = j->K;
    if (j->direct) {
      a = AT(j->x, row0 * g->ci + grp * j->cig);
      csa = g->ci;
    } else {
      conv_im2col(j, n, p0, m, grp, col);
    }
    conv_gemm(j, j->K, j->cog, m, a, 1, csa, AT(j->dy, row0 * g->co + grp * j->cog), g->co, 1, 1,
              ATW(dw, grp * j->cog), g->co, 1);
  }
}

/* dx of rows [p0, p0 + m) of image n: dcol = dy W^T, added back by col2im. */
static void conv_band_input(const conv_job *j, int64_t n, int64_t p0, int64_t m, void *col) {
  const mg_conv_geom *g = &j->g;
  int64_t row0 = n * j->P + p0;
  for (int64_t grp = 0; grp < g->groups; grp++) {
    const void *a = AT(j->dy, row0 * g->co + grp * j->cog), *b = AT(j->w, grp * j->cog);
    if (j->direct) {
      conv_gemm(j, m, j->cig, j->cog, a, g->co, 1, b, 1, g->co, 0, ATW(j->out, row0 * g->ci + grp * j->cig), g->ci, 1);
    } else {
      conv_gemm(j, m, j->K, j->cog, a, g->co, 1, b, 1, g->co, 0, col, j->K, 1);
      conv_col2im(j, n, p0, m, grp, col);
    }
  }
}

/* ---- drivers --------------------------------------------------------------------------- */

enum { CONV_FORWARD, CONV_FILTER, CONV_INPUT };

static void conv_plan(conv_job *j, const mg_conv_geom *g, mg_dtype dt) {
  j->g = *g;
  j->f32 = dt == MG_FLOAT32;
  j->es = mg_dtype_size(dt);
  j->P = g->od * g->oh * g->ow;
  j->cig = g->ci / g->groups;
  j->cog = g->co / g->groups;
  j->K = g->kd * g->kh * g->kw * j->cig;
  j->flat = g->id == 1 && g->kd == 1 && g->od == 1;
  j->direct = g->kd == 1 && g->kh == 1 && g->kw == 1 && g->sd == 1 && g->sh == 1 && g->sw == 1 && g->pf == 0 &&
              g->pt == 0 && g->pl == 0 && g->od == g->id && g->oh == g->ih && g->ow == g->iw;
  int64_t rows = CONV_COL_BYTES / (int64_t)((j->K ? j->K : 1) * j->es);
  if (rows < 16) rows = 16;
  j->nbands = j->P <= rows ? 1 : (j->P + rows - 1) / rows;
  j->band = j->nbands ? (j->P + j->nbands - 1) / j->nbands : 0;
  if (j->P == 0) j->nbands = 0;
}

/* Sums the per-thread filter accumulators into out. */
static void conv_reduce(const conv_job *j, const char *scratch, size_t per, size_t off, int nth, int64_t count) {
  for (int t = 0; t < nth; t++) {
    const char *acc = scratch + per * (size_t)t + off;
    if (j->f32) {
      float *o = (float *)j->out;
      const float *a = (const float *)acc;
      _Pragma("omp simd") for (int64_t i = 0; i < count; i++) o[i] = t ? o[i] + a[i] : a[i];
    } else {
      double *o = (double *)j->out;
      const double *a = (const double *)acc;
      _Pragma("omp simd") for (int64_t i = 0; i < count; i++) o[i] = t ? o[i] + a[i] : a[i];
    }
  }
}

/* Image n's share of the input gradient: zeroed, then every band added. */
static void conv_image_input(const conv_job *j, int64_t n, void *col) {
  const mg_conv_geom *g = &j->g;
  int64_t img = g->id * g->ih * g->iw * g->ci;
  if (!j->direct) memset(ATW(j->out, n * img), 0, (size_t)img * j->es);
  for (int64_t b = 0; b < j->nbands; b++) {
    int64_t p0 = b * j->band, m = j->P - p0 < j->band ? j->P - p0 : j->band;
    conv_band_input(j, n, p0, m, col);
  }
}

/* Runs `pass` over every (image, band): items split across threads (whole
 * images for CONV_INPUT). CONV_FILTER sums per-thread accumulators into out. */
static mg_status conv_run(const mg_call *c, conv_job *j, int pass) {
  const mg_conv_geom *g = &j->g;
  int nt = mg_threads();
  double work = 2.0 * (double)g->n * (double)j->P * (double)j->K * (double)g->co;
  if (work < 4e6) nt = 1;                     /* thread start-up would cost more */
  int64_t items = pass == CONV_INPUT ? g->n : g->n * j->nbands;
  int nth = nt > 1 && items >= nt ? nt : 1;   /* threads over items, else inside BLIS */
  j->gemm_threads = nth > 1 ? 1 : nt;
  int64_t wcount = g->kd * g->kh * g->kw * j->cig * g->co;
  size_t colb = j->direct ? 0 : (size_t)(j->band * j->K) * j->es;
  size_t accb = pass == CONV_FILTER ? (size_t)wcount * j->es : 0;
  colb = (colb + 63) / 64 * 64;
  size_t per = colb + (accb + 63) / 64 * 64;
  char *scratch;
  mg_status st = mg_work_alloc(per * (size_t)nth + 64, NAME(c), (void **)&scratch);
  if (st) return st;
  mg_limits *lim = mg_tl_kernel;   /* polled between items (limits.c) */
#pragma omp parallel num_threads(nth) if (nth > 1)
  {
    int t = omp_get_thread_num();
    char *col = scratch + per * (size_t)t, *acc = col + colb;
    if (pass == CONV_FILTER) memset(acc, 0, accb);
    int64_t i0 = items * t / nth, i1 = items * (t + 1) / nth;
    for (int64_t it = i0; it < i1 && !mg_kernel_stop(lim); it++) {
      if (pass == CONV_INPUT) {
        conv_image_input(j, it, col);
        continue;
      }
      int64_t n = it / j->nbands, p0 = it % j->nbands * j->band;
      int64_t m = j->P - p0 < j->band ? j->P - p0 : j->band;
      if (pass == CONV_FORWARD) conv_band_forward(j, n, p0, m, col);
      else conv_band_filter(j, n, p0, m, col, acc);
    }
  }
  if (pass == CONV_FILTER) conv_reduce(j, scratch, per, colb, nth, wcount);
  mg_work_free(scratch);
  return MG_OK;
}

/* Plans the job from the geometry and the (contiguous) operands, and runs it. */
static mg_status conv_exec(const mg_call *c, const mg_conv_geom *g, mg_tensor *out, int pass, const mg_tensor *a,
                           const mg_tensor *b) {
  conv_job j;
  mg_tensor *ta, *tb;
  const char *pa, *pb;
  mg_status st = mg_contiguous_input(NAME(c), a, &pa, &ta);
  if (st) return st;
  if ((st = mg_contiguous_input(NAME(c), b, &pb, &tb))) {
    mg_tensor_release(ta);
    return st;
  }
  conv_plan(&j, g, (mg_dtype)out->dtype);
  j.x = pass == CONV_INPUT ? NULL : pa;
  j.dy = pass == CONV_FORWARD ? NULL : pass == CONV_INPUT ? pa : pb;
  j.w = pass == CONV_FILTER ? NULL : pb;
  j.out = mg_ptr(out);
  int done = mg_tensor_numel(out) == 0;
  if (!done && j.f32 && g->id == 1 && g->kd == 1 && g->od == 1) {  /* 2-d: the direct kernels first (conv_direct.c) */
    float *o = (float *)j.out;
    if (pass == CONV_FORWARD) done = conv_direct_forward(c, g, (const float *)pa, (const float *)pb, o, &st);
    else if (pass == CONV_FILTER) done = conv_direct_filter(c, g, (const float *)pa, (const float *)pb, o, &st);
    else done = conv_direct_input(c, g, (const float *)pa, (const float *)pb, o, &st);
  }
  if (!done) st = conv_run(c, &j, pass);
  mg_tensor_release(ta);
  mg_tensor_release(tb);
  return st;
}

static const mg_conv_slots conv_slots = {0, 1, 2, 3, 4}, conv_grad_slots = {1, 2, 3, 4, 5};

mg_status k_conv(const mg_call *c, mg_tensor *out) {
  mg_conv_geom g;
  mg_conv_geom_init(c, c->in[0]->shape, c->in[1]->shape, "x", conv_slots, &g);  /* infer validated it */
  return conv_exec(c, &g, out, CONV_FORWARD, c->in[0], c->in[1]);
}

mg_status k_conv_backprop_input(const mg_call *c, mg_tensor *out) {
  mg_conv_geom g;
  mg_conv_geom_init(c, A_LIST(c, 0), c->in[1]->shape, "input_shape", conv_grad_slots, &g);
  return conv_exec(c, &g, out, CONV_INPUT, c->in[0], c->in[1]);
}

mg_status k_conv_backprop_filter(const mg_call *c, mg_tensor *out) {
  mg_conv_geom g;
  mg_conv_geom_init(c, c->in[0]->shape, A_LIST(c, 0), "x", conv_grad_slots, &g);
  return conv_exec(c, &g, out, CONV_FILTER, c->in[0], c->in[1]);
}

/* The transposed convolution is the input gradient of the convolution whose
 * input has this op's output shape. */
mg_status k_conv_transpose(const mg_call *c, mg_tensor *out) {
  mg_conv_geom g;
  mg_conv_geom_init(c, out->shape, c->in[1]->shape, "the output", (mg_conv_slots){0, 1, 3, -1, 4}, &g);
  return conv_exec(c, &g, out, CONV_INPUT, c->in[0], c->in[1]);
}
