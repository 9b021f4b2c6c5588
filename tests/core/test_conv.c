/*
 * test_conv.c — the convolution kernels through mg_apply: conv2d and its two
 * gradients against naive loops, on the direct float32 kernels and on the
 * im2col + GEMM path (float64, groups, width dilation), on one thread and on
 * all of them (per-image and per-band splits), plus the pooling kernels and
 * the errors infer reports (status and message).
 */
#include "harness.h"
#include "internal.h"
#include <stdlib.h>
#include <string.h>

typedef struct cv_case {
  int64_t n, h, w, ci, kh, kw, co, sh, sw, dh, dw, groups;
  int same;
} cv_case;

static double cv_value(int64_t i, int salt) { return (double)((i * 7919 + salt * 104729) % 2001) / 1000.0 - 1.0; }

static mg_tensor *cv_fill(mg_dtype dt, const int64_t *shape, int salt) {
  mg_tensor *t = NULL;
  if (mg_tensor_empty(dt, 4, shape, &t)) return NULL;
  for (int64_t i = 0; i < mg_tensor_numel(t); i++) {
    if (dt == MG_FLOAT32) ((float *)mg_tensor_data(t))[i] = (float)cv_value(i, salt);
    else ((double *)mg_tensor_data(t))[i] = cv_value(i, salt);
  }
  return t;
}

static void cv_attrs(const cv_case *k, mg_attrs *a, int first, const int64_t *shape) {
  memset(a, 0, sizeof *a);
  a->set = 0xfu << first;
  a->v[first].n = 2, a->v[first].i[0] = k->sh, a->v[first].i[1] = k->sw;
  a->v[first + 1].n = 1, a->v[first + 1].i[0] = k->same;
  a->v[first + 2].n = 2, a->v[first + 2].i[0] = k->dh, a->v[first + 2].i[1] = k->dw;
  a->v[first + 3].n = 1, a->v[first + 3].i[0] = k->groups;
  if (shape) {
    a->set |= 1u;
    a->v[0].n = 4;
    memcpy(a->v[0].i, shape, 4 * sizeof(int64_t));
  }
}

static void cv_axis(int64_t in, int64_t k, int64_t s, int64_t d, int same, int64_t *out, int64_t *pad) {
  int64_t keff = (k - 1) * d + 1;
  if (same) {
    *out = (in + s - 1) / s;
    int64_t tot = (*out - 1) * s + keff - in;
    *pad = tot > 0 ? tot / 2 : 0;
  } else {
    *out = (in - keff) / s + 1;
    *pad = 0;
  }
}

/* The three passes by naive loops over every (output pixel, window tap):
 * y = conv(x, w); dx += dy w; dw += x dy. */
static void cv_naive(const cv_case *k, const double *x, const double *w, const double *dy, double *y, double *dx,
                     double *dwt, int64_t oh, int64_t ow, int64_t pt, int64_t pl) {
  int64_t cig = k->ci / k->groups, cog = k->co / k->groups;
  for (int64_t n = 0; n < k->n; n++)
    for (int64_t a = 0; a < oh; a++)
      for (int64_t b = 0; b < ow; b++)
        for (int64_t co = 0; co < k->co; co++) {
          int64_t g = co / cog, o = ((n * oh + a) * ow + b) * k->co + co;
          double s = 0;
          for (int64_t i = 0; i < k->kh; i++)
            for (int64_t j = 0; j < k->kw; j++) {
              int64_t ih = a * k->sh - pt + i * k->dh, iw = b * k->sw - pl + j * k->dw;
              if (ih < 0 || ih >= k->h || iw < 0 || iw >= k->w) continue;
              for (int64_t c = 0; c < cig; c++) {
                int64_t xi = ((n * k->h + ih) * k->w + iw) * k->ci + g * cig + c;
                int64_t wi = ((i * k->kw + j) * cig + c) * k->co + co;
                s += x[xi] * w[wi];
                dx[xi] += dy[o] * w[wi];
                dwt[wi] += x[xi] * dy[o];
              }
            }
          y[o] = s;
        }
}

static int cv_match(const mg_tensor *t, const double *want, double tol) {
  for (int64_t i = 0; i < mg_tensor_numel(t); i++) {
    double g = mg_tensor_get_f64(t, i);
    if (!(fabs(g - want[i]) <= tol * (1 + fabs(want[i])))) {
      fprintf(stderr, "  element %lld: got %.9g, want %.9g\n", (long long)i, g, want[i]);
      return 0;
    }
  }
  return 1;
}

static double *cv_values(const mg_tensor *t) {
  double *v = malloc((size_t)mg_tensor_numel(t) * sizeof *v + 8);
  for (int64_t i = 0; i < mg_tensor_numel(t); i++) v[i] = mg_tensor_get_f64(t, i);
  return v;
}

static void cv_check(const cv_case *k, mg_dtype dt) {
  mg_ctx *ctx = mg_test_ctx();
  int64_t oh, ow, pt, pl;
  cv_axis(k->h, k->kh, k->sh, k->dh, k->same, &oh, &pt);
  cv_axis(k->w, k->kw, k->sw, k->dw, k->same, &ow, &pl);
  int64_t xs[4] = {k->n, k->h, k->w, k->ci}, ws[4] = {k->kh, k->kw, k->ci / k->groups, k->co};
  int64_t ys[4] = {k->n, oh, ow, k->co};
  mg_tensor *x = cv_fill(dt, xs, 1), *w = cv_fill(dt, ws, 2), *dy = cv_fill(dt, ys, 3), *y = NULL, *dx = NULL, *dw = NULL;
  REQUIRE(x && w && dy);
  double *xv = cv_values(x), *wv = cv_values(w), *dyv = cv_values(dy);
  double *yv = calloc((size_t)(mg_tensor_numel(dy) + 1), sizeof(double));
  double *dxv = calloc((size_t)(mg_tensor_numel(x) + 1), sizeof(double));
  double *dwv = calloc((size_t)(mg_tensor_numel(w) + 1), sizeof(double));
  cv_naive(k, xv, wv, dyv, yv, dxv, dwv, oh, ow, pt, pl);
  double tol = dt == MG_FLOAT32 ? 2e-4 : 1e-11;
  mg_attrs a, ai, af;
  cv_attrs(k, &a, 0, NULL);
  cv_attrs(k, &ai, 1, xs);
  cv_attrs(k, &af, 1, ws);
  mg_tensor *in[2] = {x, w}, *inb[2] = {dy, w}, *inf[2] = {x, dy};
  CHECK_OK(mg_apply(ctx, MG_OP_CONV2D, in, 2, &a, &y));
  CHECK(cv_match(y, yv, tol));
  CHECK_OK(mg_apply(ctx, MG_OP_CONV2D_BACKPROP_INPUT, inb, 2, &ai, &dx));
  CHECK(cv_match(dx, dxv, tol));
  CHECK_OK(mg_apply(ctx, MG_OP_CONV2D_BACKPROP_FILTER, inf, 2, &af, &dw));
  CHECK(cv_match(dw, dwv, tol));
  mg_tensor *all[6] = {x, w, dy, y, dx, dw};
  for (int i = 0; i < 6; i++) mg_tensor_release(all[i]);
  free(xv), free(wv), free(dyv), free(yv), free(dxv), free(dwv);
}

static const cv_case cv_cases[] = {
  /* n  h   w  ci kh kw co sh sw dh dw g same */
  {2, 7, 6, 3, 3, 2, 5, 1, 1, 1, 1, 1, 1},
  {2, 9, 8, 17, 3, 3, 33, 2, 2, 1, 1, 1, 1},
  {1, 12, 11, 16, 5, 5, 20, 1, 1, 1, 1, 1, 1},     /* one image: bands of rows across threads */
  {3, 10, 9, 20, 2, 3, 70, 2, 1, 2, 1, 1, 0},      /* height dilation: still direct */
  {2, 8, 8, 4, 3, 3, 6, 1, 1, 1, 2, 1, 1},         /* width dilation: GEMM */
  {2, 8, 7, 6, 3, 3, 9, 1, 2, 1, 1, 3, 0},         /* groups: GEMM */
  {2, 5, 5, 32, 1, 1, 16, 1, 1, 1, 1, 1, 0},       /* 1x1 */
  {4, 14, 14, 32, 5, 5, 64, 1, 1, 1, 1, 1, 1},     /* the demo's second layer */
  {4, 28, 28, 1, 5, 5, 32, 1, 1, 1, 1, 1, 1},      /* and its first */
};

TEST(conv_passes_match_naive_loops) {
  int nt = mg_get_num_threads();
  for (size_t i = 0; i < sizeof cv_cases / sizeof cv_cases[0]; i++) {
    cv_check(&cv_cases[i], MG_FLOAT32);
    cv_check(&cv_cases[i], MG_FLOAT64);
  }
  mg_set_num_threads(1);
  cv_check(&cv_cases[2], MG_FLOAT32);
  cv_check(&cv_cases[7], MG_FLOAT32);
  mg_set_num_threads(nt);
}

TEST(conv_transpose_is_backprop_input) {
  mg_ctx *ctx = mg_test_ctx();
  int64_t xs[4] = {2, 4, 3, 16}, ws[4] = {3, 3, 8, 16};
  mg_tensor *x = cv_fill(MG_FLOAT32, xs, 4), *w = cv_fill(MG_FLOAT32, ws, 5), *y = NULL, *z = NULL;
  REQUIRE(x && w);
  mg_attrs a = {0};
  a.set = 3u;
  a.v[0].n = 1, a.v[0].i[0] = 2;  /* strides 2, padding same */
  a.v[1].n = 1, a.v[1].i[0] = 1;
  mg_tensor *in[2] = {x, w};
  CHECK_OK(mg_apply(ctx, MG_OP_CONV2D_TRANSPOSE, in, 2, &a, &y));
  CHECK(y->shape[1] == 8 && y->shape[2] == 6 && y->shape[3] == 8);
  mg_attrs b = {0};
  b.set = 7u;
  b.v[0].n = 4;
  memcpy(b.v[0].i, y->shape, 4 * sizeof(int64_t));
  b.v[1] = a.v[0];
  b.v[2] = a.v[1];
  CHECK_OK(mg_apply(ctx, MG_OP_CONV2D_BACKPROP_INPUT, in, 2, &b, &z));
  double *zv = cv_values(z);
  CHECK(cv_match(y, zv, 0));
  free(zv);
  mg_tensor_release(x), mg_tensor_release(w), mg_tensor_release(y), mg_tensor_release(z);
}

TEST(pool_kernels_match_windows) {
  mg_ctx *ctx = mg_test_ctx();
  int64_t xs[4] = {2, 5, 5, 3};
  mg_tensor *x = cv_fill(MG_FLOAT64, xs, 6), *mx = NULL, *av = NULL;
  REQUIRE(x);
  mg_attrs a = {0};
  a.set = 7u;  /* ksize 3, strides 2, same: 3x3 outputs, windows clipped at the border */
  a.v[0].n = 1, a.v[0].i[0] = 3;
  a.v[1].n = 1, a.v[1].i[0] = 2;
  a.v[2].n = 1, a.v[2].i[0] = 1;
  CHECK_OK(mg_apply(ctx, MG_OP_MAX_POOL2D, &x, 1, &a, &mx));
  CHECK_OK(mg_apply(ctx, MG_OP_AVG_POOL2D, &x, 1, &a, &av));
  REQUIRE(mx->shape[1] == 3 && mx->shape[2] == 3);
  for (int64_t n = 0; n < 2; n++)
    for (int64_t i = 0; i < 3; i++)
      for (int64_t j = 0; j < 3; j++)
        for (int64_t c = 0; c < 3; c++) {
          double best = -1e300, sum = 0;
          int cnt = 0;
          for (int64_t u = 2 * i - 1; u <= 2 * i + 1; u++)
            for (int64_t v = 2 * j - 1; v <= 2 * j + 1; v++) {
              if (u < 0 || u >= 5 || v < 0 || v >= 5) continue;
              double e = cv_value(((n * 5 + u) * 5 + v) * 3 + c, 6);
              best = e > best ? e : best;
              sum += e, cnt++;
            }
          int64_t o = ((n * 3 + i) * 3 + j) * 3 + c;
          CHECK(mg_tensor_get_f64(mx, o) == best);
          CHECK_NEAR(mg_tensor_get_f64(av, o), sum / cnt, 1e-14);
        }
  mg_tensor_release(x), mg_tensor_release(mx), mg_tensor_release(av);
}

TEST(conv_errors_name_op_and_shapes) {
  mg_ctx *ctx = mg_test_ctx();
  int64_t xs[4] = {1, 5, 5, 2}, ws[4] = {3, 3, 3, 4};
  mg_tensor *x = cv_fill(MG_FLOAT32, xs, 1), *w = cv_fill(MG_FLOAT32, ws, 2), *y = NULL;
  REQUIRE(x && w);
  mg_tensor *in[2] = {x, w};
  CHECK(mg_apply(ctx, MG_OP_CONV2D, in, 2, NULL, &y) == MG_ESHAPE);
  CHECK(strstr(mg_last_error(), "conv2d: filter (3,3,3,4) does not fit x (1,5,5,2)") != NULL);
  mg_attrs a = {0};
  a.set = 1u;
  a.v[0].n = 1, a.v[0].i[0] = -1;
  in[1] = x;
  CHECK(mg_apply(ctx, MG_OP_CONV2D, in, 2, &a, &y) == MG_EARG);
  CHECK(strstr(mg_last_error(), "strides must be at least 1") != NULL);
  mg_tensor_release(x), mg_tensor_release(w);
}
