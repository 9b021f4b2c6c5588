/*
 * conv_direct.c — float32 convolution kernels that never build an im2col
 * matrix (AVX-512; conv.c's GEMM path covers everything else).
 *
 * In NHWC with unit width dilation, the window of output pixel (oh, ow) at
 * filter row kh is one contiguous run of kw * cin floats of the input row,
 * and the window of the next pixel starts stride * cin floats later. So with
 * the image zero-padded once (pt/pl/pb/pr, per thread), the im2col matrix
 * of a filter row is the padded image itself read with a row step of
 * stride * cin: overlapping rows that no BLIS call accepts, but that a
 * register-tiled kernel reads directly:
 *
 *   forward  out[pixels ow0.., co0..] = sum over kh, k of  x_pad[...] w[kh, k, co]
 *            MR pixels x NR*16 channels in MR*NR zmm accumulators; per k,
 *            NR filter loads and MR broadcasts feed MR*NR FMAs (MR x NR is
 *            7x4, 9x3 or 14x2: 28 accumulators plus the filter row fit the
 *            32 registers, and no broadcast needs one: it is an operand).
 *   filter   dW[k0.., co0..] += sum over pixels of x_pad[pixel + off(k)] dy[pixel, co]
 *            the same tile with MR consecutive filter rows k in place of
 *            pixels and the pixels as the sum; off(k) steps over filter
 *            rows, so one tile may span kh boundaries (no waste at cin = 1).
 *   input    for unit strides, dx is the forward convolution of dy with the
 *            filter rotated 180 degrees and its channels swapped, padded by
 *            (dilated kernel - 1 - padding): the forward kernel again (with
 *            at least 16 input channels, else most vector lanes would idle
 *            and the GEMM path is faster).
 *
 * Measured on the project's machine (Zen 5, one core): the demo's 14x14x32
 * -> 64 5x5 layer forward at 230 GFLOP/s (BLIS over im2col: ~130).
 * Work is split across threads by images, or by bands of output rows when
 * there are fewer images than threads; filter gradients accumulate per
 * thread and are summed at the end.
 */
#include "conv.h"
#include <omp.h>
#include <stdlib.h>

#ifndef __AVX512F__

int conv_direct_forward(const mg_call *c, const mg_conv_geom *g, const float *x, const float *w, float *out,
                        mg_status *st) {
  (void)c, (void)g, (void)x, (void)w, (void)out, (void)st;
  return 0;
}
int conv_direct_filter(const mg_call *c, const mg_conv_geom *g, const float *x, const float *dy, float *dw,
                       mg_status *st) {
  (void)c, (void)g, (void)x, (void)dy, (void)dw, (void)st;
  return 0;
}
int conv_direct_input(const mg_call *c, const mg_conv_geom *g, const float *dy, const float *w, float *dx,
                      mg_status *st) {
  (void)c, (void)g, (void)dy, (void)w, (void)dx, (void)st;
  return 0;
}

#else
#include <immintrin.h>

/* One direct convolution, per image: in (H, W, C) -> out (OH, OW, CO) with
 * filter w (KH, KW, C, CO), strides sh/sw, height dilation dh, top/left
 * padding pt/pl; the padded image is Hp x Wp. */
typedef struct dconv {
  int64_t n, H, W, C, OH, OW, CO, KH, KW, sh, sw, dh, pt, pl, Hp, Wp;
  const float *in, *w, *dy;
  float *out;
} dconv;

static const int dc_mr[5] = {0, 14, 14, 9, 7};  /* rows of the register tile for NR vectors */

/* ---- the two register-tiled kernels ------------------------------------------------ */

/* o[r, :] = sum over nkh filter rows, klen elements: a[r*rs + kh*ks + k] w[kh*wks + k*ldw + :]
 * for r < rows (rows past it read row rows-1 and are dropped); the last of
 * the NR vectors is masked. */
#define DC_FWD(NR, MR)                                                                             \
  static void dc_fwd_##NR(const float *a, int64_t rs, int64_t ks, int64_t nkh, int64_t klen, const float *w, \
                          int64_t wks, int64_t ldw, int rows, __mmask16 mask, float *o, int64_t ldo) {       \
    __m512 c[MR][NR];                                                                              \
    const float *ap[MR];                                                                           \
    _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) {                                        \
      ap[r] = a + (r < rows ? r : rows > 0 ? rows - 1 : 0) * rs;                                   \
      _Pragma("GCC unroll 4") for (int v = 0; v < NR; v++) c[r][v] = _mm512_setzero_ps();          \
    }                                                                                              \
    for (int64_t kh = 0; kh < nkh; kh++) {                                                         \
      const float *wk = w + kh * wks;                                                              \
      int64_t ko = kh * ks;                                                                        \
      for (int64_t k = 0; k < klen; k++) {                                                         \
        __m512 wv[NR];                                                                             \
        _Pragma("GCC unroll 4") for (int v = 0; v < NR; v++) wv[v] =                               \
            v == NR - 1 ? _mm512_maskz_loadu_ps(mask, wk + k * ldw + 16 * v) : _mm512_loadu_ps(wk + k * ldw + 16 * v); \
        _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) {                                    \
          __m512 b = _mm512_set1_ps(ap[r][ko + k]);                                                \
          _Pragma("GCC unroll 4") for (int v = 0; v < NR; v++) c[r][v] = _mm512_fmadd_ps(b, wv[v], c[r][v]); \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
    _Pragma("GCC unroll 16") for (int r = 0; r < MR; r++) {                                        \
      if (r >= rows) break;                                                                        \
      _Pragma("GCC unroll 4") for (int v = 0; v < NR; v++)                                         \
        _mm512_mask_storeu_ps(o + r * ldo + 16 * v, v == NR - 1 ? mask : 0xffff, c[r][v]);         \
    }                                                                                              \
  }
DC_FWD(1, 14)
DC_FWD(2, 14)
DC_FWD(3, 9)
DC_FWD(4, 7)

/* o[j, :] += sum over nh x nw pixels: a[h*hs + p*rs + off[j]] d[(h*nw + p)*ldd + :], j < m. */
#define DC_FLT(NR, MR)                                                                             \
  static void dc_flt_##NR(const float *a, const int64_t *off, int m, int64_t nh, int64_t nw, int64_t rs, \
                          int64_t hs, const float *d, int64_t ldd, __mmask16 mask, float *o, int64_t ldo) { \
    __m512 c[MR][NR];                                                                              \
    int64_t of[MR];                                                                                \
    _Pragma("GCC unroll 16") for (int j = 0; j < MR; j++) {                                        \
      of[j] = off[j < m ? j : m > 0 ? m - 1 : 0];                                                  \
      _Pragma("GCC unroll 4") for (int v = 0; v < NR; v++) c[j][v] = _mm512_setzero_ps();          \
    }                                                                                              \
    for (int64_t h = 0; h < nh; h++) {                                                             \
      const float *ar = a + h * hs, *dr = d + h * nw * ldd;                                        \
      for (int64_t p = 0; p < nw; p++) {                                                           \
        __m512 dv[NR];                                                                             \
        const float *ap = ar + p * rs, *dp = dr + p * ldd;                                         \
        _Pragma("GCC unroll 4") for (int v = 0; v < NR; v++) dv[v] =                               \
            v == NR - 1 ? _mm512_maskz_loadu_ps(mask, dp + 16 * v) : _mm512_loadu_ps(dp + 16 * v); \
        _Pragma("GCC unroll 16") for (int j = 0; j < MR; j++) {                                    \
          __m512 b = _mm512_set1_ps(ap[of[j]]);                                                    \
          _Pragma("GCC unroll 4") for (int v = 0; v < NR; v++) c[j][v] = _mm512_fmadd_ps(b, dv[v], c[j][v]); \
        }                                                                                          \
      }                                                                                            \
    }                                                                                              \
    _Pragma("GCC unroll 16") for (int j = 0; j < MR; j++) {                                        \
      if (j >= m) break;                                                                           \
      _Pragma("GCC unroll 4") for (int v = 0; v < NR; v++) {                                       \
        __mmask16 mk = v == NR - 1 ? mask : 0xffff;                                                \
        float *q = o + j * ldo + 16 * v;                                                           \
        _mm512_mask_storeu_ps(q, mk, _mm512_add_ps(_mm512_maskz_loadu_ps(mk, q), c[j][v]));        \
      }                                                                                            \
    }                                                                                              \
  }
DC_FLT(1, 14)
DC_FLT(2, 14)
DC_FLT(3, 9)
DC_FLT(4, 7)

/* NR vectors for the channels from co0, and the mask of the last one. */
static int dc_block(int64_t co, int64_t co0, __mmask16 *mask) {
  int64_t rem = co - co0;
  int nr = rem >= 64 ? 4 : (int)((rem + 15) / 16);
  int64_t last = rem >= 64 ? 16 : rem - 16 * (nr - 1);
  *mask = last == 16 ? (__mmask16)0xffff : (__mmask16)((1u << last) - 1);
  return nr;
}

/* ---- rows of one image ------------------------------------------------------------------ */

static void dc_forward_rows(const dconv *d, const float *xp, int64_t n, int64_t oh0, int64_t oh1) {
  int64_t C = d->C, klen = d->KW * C, wks = klen * d->CO, ks = d->dh * d->Wp * C;
  for (int64_t oh = oh0; oh < oh1; oh++) {
    int64_t kh0 = 0, kh1 = d->KH;  /* filter rows that meet the image, not its padding */
    while (kh0 < kh1 && oh * d->sh + kh0 * d->dh < d->pt) kh0++;
    while (kh1 > kh0 && oh * d->sh + (kh1 - 1) * d->dh >= d->pt + d->H) kh1--;
    for (int64_t co0 = 0; co0 < d->CO; co0 += 64) {
      __mmask16 mask;
      int nr = dc_block(d->CO, co0, &mask), mr = dc_mr[nr];
      for (int64_t ow0 = 0; ow0 < d->OW; ow0 += mr) {
        int rows = d->OW - ow0 < mr ? (int)(d->OW - ow0) : mr;
        const float *a = kh1 > kh0 ? xp + ((oh * d->sh + kh0 * d->dh) * d->Wp + ow0 * d->sw) * C : xp;
        const float *w = d->w + kh0 * wks + co0;
        float *o = d->out + ((n * d->OH + oh) * d->OW + ow0) * d->CO + co0;
        int64_t rs = d->sw * C;
        switch (nr) {
        case 4: dc_fwd_4(a, rs, ks, kh1 - kh0, klen, w, wks, d->CO, rows, mask, o, d->CO); break;
        case 3: dc_fwd_3(a, rs, ks, kh1 - kh0, klen, w, wks, d->CO, rows, mask, o, d->CO); break;
        case 2: dc_fwd_2(a, rs, ks, kh1 - kh0, klen, w, wks, d->CO, rows, mask, o, d->CO); break;
        default: dc_fwd_1(a, rs, ks, kh1 - kh0, klen, w, wks, d->CO, rows, mask, o, d->CO); break;
        }
      }
    }
  }
}

/* acc (K x CO) += the filter gradient of image n's output rows [oh0, oh1). */
static void dc_filter_rows(const dconv *d, const float *xp, int64_t n, int64_t oh0, int64_t oh1, float *acc) {
  int64_t C = d->C, klen = d->KW * C, K = d->KH * klen, off[16];
  const float *a = xp + oh0 * d->sh * d->Wp * C, *dy = d->dy + (n * d->OH + oh0) * d->OW * d->CO;
  for (int64_t co0 = 0; co0 < d->CO; co0 += 64) {
    __mmask16 mask;
    int nr = dc_block(d->CO, co0, &mask), mr = dc_mr[nr];
    for (int64_t k0 = 0; k0 < K; k0 += mr) {
      int m = K - k0 < mr ? (int)(K - k0) : mr;
      for (int j = 0; j < m; j++) off[j] = (k0 + j) / klen * d->dh * d->Wp * C + (k0 + j) % klen;
      float *o = acc + k0 * d->CO + co0;
      int64_t nh = oh1 - oh0, rs = d->sw * C, hs = d->sh * d->Wp * C;
      switch (nr) {
      case 4: dc_flt_4(a, off, m, nh, d->OW, rs, hs, dy + co0, d->CO, mask, o, d->CO); break;
      case 3: dc_flt_3(a, off, m, nh, d->OW, rs, hs, dy + co0, d->CO, mask, o, d->CO); break;
      case 2: dc_flt_2(a, off, m, nh, d->OW, rs, hs, dy + co0, d->CO, mask, o, d->CO); break;
      default: dc_flt_1(a, off, m, nh, d->OW, rs, hs, dy + co0, d->CO, mask, o, d->CO); break;
      }
    }
  }
}

/* Image n of the input, zero-padded into buf (Hp x Wp x C). */
static void dc_pad(const dconv *d, int64_t n, float *buf) {
  int64_t C = d->C, row = d->Wp * C;
  const float *src = d->in + n * d->H * d->W * C;
  memset(buf, 0, (size_t)(d->pt * row) * sizeof(float));
  for (int64_t h = 0; h < d->H; h++) {
    float *r = buf + (d->pt + h) * row;
    memset(r, 0, (size_t)(d->pl * C) * sizeof(float));
    memcpy(r + d->pl * C, src + h * d->W * C, (size_t)(d->W * C) * sizeof(float));
    memset(r + (d->pl + d->W) * C, 0, (size_t)((d->Wp - d->pl - d->W) * C) * sizeof(float));
  }
  memset(buf + (d->pt + d->H) * row, 0, (size_t)((d->Hp - d->pt - d->H) * row) * sizeof(float));
}

/* Sizes the padded image: enough rows and columns for every window. */
static void dc_fit(dconv *d, int64_t keh, int64_t kew) {
  int64_t pb = (d->OH - 1) * d->sh + keh - d->pt - d->H, pr = (d->OW - 1) * d->sw + kew - d->pl - d->W;
  d->Hp = d->pt + d->H + (pb > 0 ? pb : 0);
  d->Wp = d->pl + d->W + (pr > 0 ? pr : 0);
}

/* Runs the forward (filter = NULL) or filter pass over all images: items
 * are (image, band of output rows); per-thread padded image and filter
 * accumulator, summed into `filter` at the end. */
static int dc_run(const mg_call *c, const dconv *d, float *filter, mg_status *st) {
  int64_t K = d->KH * d->KW * d->C;
  int nt = mg_threads();
  if (2.0 * (double)(d->n * d->OH * d->OW) * (double)(K * d->CO) < 2e6) nt = 1;
  int64_t nb = d->n >= nt || d->n == 0 ? 1 : (2 * nt + d->n - 1) / d->n, items;
  if (nb > d->OH) nb = d->OH > 0 ? d->OH : 1;
  items = d->n * nb;
  int nth = nt > 1 && items > 1 ? (items < nt ? (int)items : nt) : 1;
  int padded = d->Hp != d->H || d->Wp != d->W;
  size_t padb = padded ? ((size_t)(d->Hp * d->Wp * d->C) * sizeof(float) + 63) / 64 * 64 : 0;
  size_t accb = filter ? ((size_t)(K * d->CO) * sizeof(float) + 63) / 64 * 64 : 0;
  char *scratch;
  if ((*st = mg_work_alloc((padb + accb) * (size_t)nth + 64, c->info->name, (void **)&scratch))) return 1;
  mg_limits *lim = mg_tl_kernel;   /* polled between items (limits.c) */
#pragma omp parallel num_threads(nth) if (nth > 1)
  {
    int t = omp_get_thread_num();
    float *buf = (float *)(scratch + (padb + accb) * (size_t)t), *acc = (float *)((char *)buf + padb);
    if (filter) memset(acc, 0, accb);
    int64_t cur = -1, i0 = items * t / nth, i1 = items * (t + 1) / nth;
    for (int64_t it = i0; it < i1 && !mg_kernel_stop(lim); it++) {
      int64_t n = it / nb, b = it % nb, oh0 = d->OH * b / nb, oh1 = d->OH * (b + 1) / nb;
      const float *xp = padded ? buf : d->in + n * d->H * d->W * d->C;
      if (padded && n != cur) dc_pad(d, n, buf);
      cur = n;
      if (filter) dc_filter_rows(d, xp, n, oh0, oh1, acc);
      else dc_forward_rows(d, xp, n, oh0, oh1);
    }
  }
  if (filter) {
    int64_t count = K * d->CO;
    for (int t = 0; t < nth; t++) {
      const float *a = (const float *)(scratch + (padb + accb) * (size_t)t + padb);
      _Pragma("omp simd") for (int64_t i = 0; i < count; i++) filter[i] = t ? filter[i] + a[i] : a[i];
    }
  }
  mg_work_free(scratch);
  *st = MG_OK;
  return 1;
}

/* 2-d only (conv.c sends nothing with a real depth axis here). */
static int dc_applies(const mg_conv_geom *g) {
  return g->groups == 1 && g->dw == 1 && g->id == 1 && g->kd == 1 && g->od == 1;
}

static dconv dc_from_geom(const mg_conv_geom *g) {
  dconv d = {g->n, g->ih, g->iw, g->ci, g->oh, g->ow, g->co, g->kh, g->kw, g->sh, g->sw, g->dh, g->pt, g->pl,
             0, 0, NULL, NULL, NULL, NULL};
  dc_fit(&d, (g->kh - 1) * g->dh + 1, g->kw);
  return d;
}

int conv_direct_forward(const mg_call *c, const mg_conv_geom *g, const float *x, const float *w, float *out,
                        mg_status *st) {
  if (!dc_applies(g)) return 0;
  dconv d = dc_from_geom(g);
  d.in = x;
  d.w = w;
  d.out = out;
  return dc_run(c, &d, NULL, st);
}

int conv_direct_filter(const mg_call *c, const mg_conv_geom *g, const float *x, const float *dy, float *dw,
                       mg_status *st) {
  if (!dc_applies(g)) return 0;
  dconv d = dc_from_geom(g);
  d.in = x;
  d.dy = dy;
  return dc_run(c, &d, dw, st);
}

/* dx = the forward convolution of dy with w rotated and transposed
 * (KH, KW, CO, CI), padding (dilated kernel - 1 - padding): unit strides only. */
int conv_direct_input(const mg_call *c, const mg_conv_geom *g, const float *dy, const float *w, float *dx,
                      mg_status *st) {
  if (!dc_applies(g) || g->sh != 1 || g->sw != 1 || g->ci < 16) return 0;  /* few channels: lanes idle */
  int64_t keh = (g->kh - 1) * g->dh + 1, KC = g->ci * g->co;
  if (g->pt > keh - 1 || g->pl > g->kw - 1) return 0;  /* explicit padding beyond the window: no full correlation */
  float *wr;
  if ((*st = mg_work_alloc((size_t)(g->kh * g->kw * KC) * sizeof(float) + 1, c->info->name, (void **)&wr))) return 1;
  for (int64_t kh = 0; kh < g->kh; kh++)
    for (int64_t kw = 0; kw < g->kw; kw++) {
      const float *src = w + ((g->kh - 1 - kh) * g->kw + (g->kw - 1 - kw)) * KC;
      float *dst = wr + (kh * g->kw + kw) * KC;
      for (int64_t ci = 0; ci < g->ci; ci++)
        for (int64_t co = 0; co < g->co; co++) dst[co * g->ci + ci] = src[ci * g->co + co];
    }
  dconv d = {g->n, g->oh, g->ow, g->co, g->ih, g->iw, g->ci, g->kh, g->kw, 1, 1, g->dh, keh - 1 - g->pt,
             g->kw - 1 - g->pl, 0, 0, dy, wr, NULL, dx};
  dc_fit(&d, keh, g->kw);
  int r = dc_run(c, &d, NULL, st);
  mg_work_free(wr);
  return r;
}

#endif
