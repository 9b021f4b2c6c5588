/*
 * test_reduce.c — reductions, softmax and matmul through mg_apply: values on
 * every loop of the reduction engine (rows, columns, split rows, strided
 * views), accuracy (a float32 sum of 1e7 ones), NaN rules, the two-pass ops,
 * matmul against a naive product on both sides of the BLIS threshold and on
 * transposed and broadcast operands, and error messages.
 */
#include "harness.h"
#include "internal.h"
#include <stdlib.h>
#include <string.h>

static mg_tensor *rd_make(mg_dtype dt, int ndim, const int64_t *shape, const double *v) {
  mg_tensor *t = NULL;
  if (mg_tensor_empty(dt, ndim, shape, &t)) return NULL;
  for (int64_t i = 0; i < mg_tensor_numel(t); i++) {
    char *p = (char *)mg_tensor_data(t) + i * (int64_t)mg_dtype_size(dt);
    switch (dt) {
    case MG_FLOAT32: *(float *)p = (float)v[i]; break;
    case MG_FLOAT64: *(double *)p = v[i]; break;
    case MG_INT32: *(int32_t *)p = (int32_t)v[i]; break;
    case MG_INT64: *(int64_t *)p = (int64_t)v[i]; break;
    default: *(uint8_t *)p = (uint8_t)v[i]; break;
    }
  }
  return t;
}

/* i * scale + shift for i = 0, 1, ... in the given shape. */
static mg_tensor *rd_iota(mg_dtype dt, int ndim, const int64_t *shape, double scale, double shift) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  double *v = calloc((size_t)(n ? n : 1), sizeof *v);
  for (int64_t i = 0; i < n; i++) v[i] = (double)i * scale + shift;
  mg_tensor *t = rd_make(dt, ndim, shape, v);
  free(v);
  return t;
}

static void rd_axes(mg_attrs *a, int n, const int64_t *axes, int keepdims) {
  a->set = 0;
  if (n) {
    a->set |= 1u;
    a->v[0].n = n;
    for (int i = 0; i < n; i++) a->v[0].i[i] = axes[i];
  }
  a->set |= 2u;
  a->v[1].n = 1;
  a->v[1].i[0] = keepdims;
}

static mg_status rd_apply(mg_op op, mg_tensor *x, const mg_attrs *a, mg_tensor **out) {
  return mg_apply(mg_test_ctx(), op, &x, 1, a, out);
}

static int rd_close(const mg_tensor *t, const double *want, int64_t n, double tol) {
  if (mg_tensor_numel(t) != n) return 0;
  for (int64_t i = 0; i < n; i++) {
    double g = mg_tensor_get_f64(t, i), w = want[i];
    if (!(g == w || fabs(g - w) <= tol * (1 + fabs(w)) || (g != g && w != w))) {
      fprintf(stderr, "  element %lld: %.9g, want %.9g\n", (long long)i, g, w);
      return 0;
    }
  }
  return 1;
}

/* The transpose (last two axes) of t, a view. */
static mg_tensor *rd_t(mg_tensor *t) {
  mg_tensor *o = NULL;
  mg_apply(mg_test_ctx(), MG_OP_TRANSPOSE, &t, 1, NULL, &o);
  return o;
}

TEST(reduce_sum_axes) {
  int64_t sh[3] = {2, 3, 4};
  mg_tensor *x = rd_iota(MG_FLOAT32, 3, sh, 1, 0), *y = NULL;
  mg_attrs a;
  rd_axes(&a, 0, NULL, 0);
  CHECK_OK(rd_apply(MG_OP_SUM, x, &a, &y));
  CHECK(mg_tensor_ndim(y) == 0 && mg_tensor_get_f64(y, 0) == 276);
  mg_tensor_release(y);
  int64_t ax1[1] = {1};
  rd_axes(&a, 1, ax1, 1);
  CHECK_OK(rd_apply(MG_OP_SUM, x, &a, &y));
  CHECK(mg_tensor_ndim(y) == 3 && mg_tensor_shape(y)[1] == 1);
  double w1[8] = {12, 15, 18, 21, 48, 51, 54, 57};
  CHECK(rd_close(y, w1, 8, 0));
  mg_tensor_release(y);
  int64_t ax02[2] = {-1, 0};  /* negative axes, any order */
  rd_axes(&a, 2, ax02, 0);
  CHECK_OK(rd_apply(MG_OP_SUM, x, &a, &y));
  double w02[3] = {60, 92, 124};
  CHECK(mg_tensor_ndim(y) == 1 && rd_close(y, w02, 3, 0));
  mg_tensor_release(y);
  mg_tensor_release(x);
}

TEST(reduce_columns_and_views) {
  /* (300, 40): axis 0 takes the column loop, axis 1 the row loop; the
   * transposed view swaps them. Big enough to use threads. */
  int64_t sh[2] = {300, 400};
  mg_tensor *x = rd_iota(MG_FLOAT64, 2, sh, 1, 0), *xt = rd_t(x), *y = NULL;
  mg_attrs a;
  int64_t ax0[1] = {0}, ax1[1] = {1};
  rd_axes(&a, 1, ax0, 0);
  CHECK_OK(rd_apply(MG_OP_SUM, x, &a, &y));
  double *w = malloc(400 * sizeof *w);
  for (int j = 0; j < 400; j++) w[j] = 300.0 * j + 400.0 * (299.0 * 300 / 2);
  CHECK(rd_close(y, w, 400, 1e-12));
  mg_tensor_release(y);
  rd_axes(&a, 1, ax1, 0);  /* the same sums through the transposed view */
  CHECK_OK(rd_apply(MG_OP_SUM, xt, &a, &y));
  CHECK(rd_close(y, w, 400, 1e-12));
  mg_tensor_release(y);
  CHECK_OK(rd_apply(MG_OP_MAX, xt, &a, &y));
  for (int j = 0; j < 400; j++) w[j] = 299.0 * 400 + j;
  CHECK(rd_close(y, w, 400, 0));
  mg_tensor_release(y);
  CHECK_OK(rd_apply(MG_OP_ARGMIN, xt, &a, &y));  /* argmin along rows of the view: all 0 */
  for (int j = 0; j < 400; j++) w[j] = 0;
  CHECK(mg_tensor_dtype(y) == MG_INT64 && rd_close(y, w, 400, 0));
  mg_tensor_release(y);
  free(w);
  mg_tensor_release(xt);
  mg_tensor_release(x);
}

TEST(reduce_sum_accuracy) {
  int64_t n[1] = {10000000};
  mg_tensor *x = NULL, *y = NULL;
  REQUIRE(mg_tensor_empty(MG_FLOAT32, 1, n, &x) == MG_OK);
  float *p = mg_tensor_data(x);
  for (int64_t i = 0; i < n[0]; i++) p[i] = 1.0f;
  CHECK_OK(rd_apply(MG_OP_SUM, x, NULL, &y));
  CHECK(mg_tensor_get_f64(y, 0) == 1e7);
  mg_tensor_release(y);
  for (int64_t i = 0; i < n[0]; i++) p[i] = 0.1f;
  CHECK_OK(rd_apply(MG_OP_MEAN, x, NULL, &y));
  CHECK_NEAR(mg_tensor_get_f64(y, 0), 0.1f, 1e-7);
  mg_tensor_release(y);
  mg_tensor_release(x);
}

TEST(reduce_int_dtypes) {
  int64_t sh[2] = {2, 2};
  double v[4] = {1, 2, 3, 200};
  mg_tensor *x = rd_make(MG_UINT8, 2, sh, v), *y = NULL;
  CHECK_OK(rd_apply(MG_OP_SUM, x, NULL, &y));
  CHECK(mg_tensor_dtype(y) == MG_INT64 && mg_tensor_get_i64(y, 0) == 206);
  mg_tensor_release(y);
  CHECK_OK(rd_apply(MG_OP_MAX, x, NULL, &y));
  CHECK(mg_tensor_dtype(y) == MG_UINT8 && mg_tensor_get_i64(y, 0) == 200);
  mg_tensor_release(y);
  CHECK_OK(rd_apply(MG_OP_PROD, x, NULL, &y));
  CHECK(mg_tensor_get_i64(y, 0) == 1200);
  mg_tensor_release(y);
  CHECK_OK(rd_apply(MG_OP_MEAN, x, NULL, &y));
  CHECK(mg_tensor_dtype(y) == MG_FLOAT32 && mg_tensor_get_f64(y, 0) == 51.5);
  mg_tensor_release(y);
  mg_tensor_release(x);
  int64_t s2[1] = {2};
  mg_tensor *xi = NULL;
  int64_t iv[2] = {INT64_MAX, 1};  /* wraps instead of overflowing */
  REQUIRE(mg_tensor_from_data(MG_INT64, 1, s2, iv, &xi) == MG_OK);
  CHECK_OK(rd_apply(MG_OP_SUM, xi, NULL, &y));
  CHECK(mg_tensor_get_i64(y, 0) == INT64_MIN);
  mg_tensor_release(y);
  mg_tensor_release(xi);
}

TEST(reduce_nan_rules) {
  int64_t sh[1] = {5};
  double v[5] = {1, NAN, 7, NAN, 2};
  mg_tensor *x = rd_make(MG_FLOAT32, 1, sh, v), *y = NULL;
  CHECK_OK(rd_apply(MG_OP_MAX, x, NULL, &y));
  CHECK(isnan(mg_tensor_get_f64(y, 0)));
  mg_tensor_release(y);
  CHECK_OK(rd_apply(MG_OP_MIN, x, NULL, &y));
  CHECK(isnan(mg_tensor_get_f64(y, 0)));
  mg_tensor_release(y);
  CHECK_OK(rd_apply(MG_OP_ARGMAX, x, NULL, &y));
  CHECK(mg_tensor_get_i64(y, 0) == 1);  /* the first NaN */
  mg_tensor_release(y);
  CHECK_OK(rd_apply(MG_OP_ALL, x, NULL, &y));
  CHECK(mg_tensor_dtype(y) == MG_BOOL && mg_tensor_get_i64(y, 0) == 1);
  mg_tensor_release(y);
  mg_tensor_release(x);
}

TEST(reduce_two_pass) {
  int64_t sh[2] = {2, 3};
  double v[6] = {1000, 1001, 1002, -INFINITY, -INFINITY, -INFINITY};
  mg_tensor *x = rd_make(MG_FLOAT32, 2, sh, v), *y = NULL;
  mg_attrs a;
  int64_t ax[1] = {1};
  rd_axes(&a, 1, ax, 0);
  CHECK_OK(rd_apply(MG_OP_LOGSUMEXP, x, &a, &y));
  double w[2] = {1002 + log(1 + exp(-1) + exp(-2)), -INFINITY};
  CHECK(rd_close(y, w, 2, 1e-6));
  mg_tensor_release(y);
  mg_tensor_release(x);
  double v2[4] = {1, 2, 3, 4};
  int64_t s1[1] = {4};
  x = rd_make(MG_FLOAT64, 1, s1, v2);
  a.set = 4u;
  a.v[2].n = 1;
  a.v[2].i[0] = 1;
  CHECK_OK(rd_apply(MG_OP_VARIANCE, x, &a, &y));
  CHECK_NEAR(mg_tensor_get_f64(y, 0), 5.0 / 3, 1e-12);
  mg_tensor_release(y);
  a.v[2].i[0] = 4;  /* N - correction <= 0: NumPy's max(N - ddof, 0) divisor gives inf */
  CHECK_OK(rd_apply(MG_OP_VARIANCE, x, &a, &y));
  CHECK(isinf(mg_tensor_get_f64(y, 0)) && mg_tensor_get_f64(y, 0) > 0);
  mg_tensor_release(y);
  mg_tensor_release(x);
}

TEST(reduce_softmax) {
  int64_t sh[2] = {3, 4};
  mg_tensor *x = rd_iota(MG_FLOAT32, 2, sh, 500, 0), *xt = rd_t(x), *y = NULL;
  for (int axis = 0; axis < 2; axis++) {
    mg_attrs a = {.set = 1u};
    a.v[0].n = 1;
    a.v[0].i[0] = axis;
    CHECK_OK(rd_apply(MG_OP_SOFTMAX, xt, &a, &y));  /* a strided input: copied first */
    int64_t rows = axis == 0 ? 3 : 4, len = axis == 0 ? 4 : 3;
    for (int64_t r = 0; r < rows; r++) {
      double s = 0;
      for (int64_t l = 0; l < len; l++) {
        double e = mg_tensor_get_f64(y, axis == 1 ? r * 3 + l : l * 3 + r);
        CHECK(e == e);
        s += e;
      }
      CHECK_NEAR(s, 1, 1e-6);
    }
    mg_tensor_release(y);
  }
  mg_attrs a = {.set = 0};
  CHECK_OK(rd_apply(MG_OP_LOG_SOFTMAX, x, &a, &y));
  CHECK_NEAR(mg_tensor_get_f64(y, 3), 0, 1e-6);   /* the largest of each row */
  CHECK_NEAR(mg_tensor_get_f64(y, 2), -500, 1e-3);
  mg_tensor_release(y);
  mg_tensor_release(xt);
  mg_tensor_release(x);
}

/* A naive reference product of row-major (m,k) and (k,n) doubles. */
static void rd_ref(const double *a, const double *b, double *c, int m, int n, int k) {
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = 0;
      for (int p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
      c[i * n + j] = s;
    }
}

static void rd_check_matmul(mg_dtype dt, int m, int n, int k, int transpose_b) {
  double *a = malloc(sizeof(double) * m * k), *b = malloc(sizeof(double) * k * n),
         *c = malloc(sizeof(double) * m * n), *bt = malloc(sizeof(double) * k * n);
  for (int i = 0; i < m * k; i++) a[i] = (i * 7 % 11) - 5;
  for (int i = 0; i < k * n; i++) b[i] = (i * 5 % 13) - 6;
  for (int p = 0; p < k; p++)
    for (int j = 0; j < n; j++) bt[j * k + p] = b[p * n + j];
  rd_ref(a, b, c, m, n, k);
  int64_t sa[2] = {m, k}, sb[2] = {k, n}, sbt[2] = {n, k};
  mg_tensor *in[2] = {rd_make(dt, 2, sa, a), NULL}, *hold = NULL, *y = NULL;
  if (transpose_b) {
    hold = rd_make(dt, 2, sbt, bt);
    in[1] = rd_t(hold);
  } else {
    in[1] = rd_make(dt, 2, sb, b);
  }
  CHECK_OK(mg_apply(mg_test_ctx(), MG_OP_MATMUL, in, 2, NULL, &y));
  CHECK(mg_tensor_shape(y)[0] == m && mg_tensor_shape(y)[1] == n);
  CHECK(rd_close(y, c, (int64_t)m * n, dt == MG_FLOAT32 ? 1e-6 : 0));
  mg_tensor_release(y);
  mg_tensor_release(in[0]);
  mg_tensor_release(in[1]);
  mg_tensor_release(hold);
  free(a), free(b), free(c), free(bt);
}

TEST(matmul_values) {
  rd_check_matmul(MG_FLOAT32, 2, 2, 2, 0);
  rd_check_matmul(MG_FLOAT32, 5, 7, 3, 1);
  rd_check_matmul(MG_FLOAT64, 9, 1, 6, 0);
  rd_check_matmul(MG_FLOAT32, 70, 65, 80, 0);   /* BLIS */
  rd_check_matmul(MG_FLOAT64, 70, 65, 80, 1);   /* BLIS, column-major B */
  rd_check_matmul(MG_INT64, 6, 5, 4, 1);
  rd_check_matmul(MG_INT32, 3, 300, 2, 0);
}

TEST(matmul_batched_broadcast) {
  /* (2,1,2,3) @ (3,3,2): batch (2,3); b broadcasts over the first dim */
  int64_t sa[4] = {2, 1, 2, 3}, sb[3] = {3, 3, 2};
  mg_tensor *in[2] = {rd_iota(MG_FLOAT32, 4, sa, 1, 0), rd_iota(MG_FLOAT32, 3, sb, 1, -4)}, *y = NULL;
  CHECK_OK(mg_apply(mg_test_ctx(), MG_OP_MATMUL, in, 2, NULL, &y));
  REQUIRE(mg_tensor_ndim(y) == 4);
  CHECK(mg_tensor_shape(y)[0] == 2 && mg_tensor_shape(y)[1] == 3 && mg_tensor_shape(y)[2] == 2 &&
        mg_tensor_shape(y)[3] == 2);
  for (int p = 0; p < 2; p++)
    for (int q = 0; q < 3; q++) {
      double a[6], b[6], c[4];
      for (int i = 0; i < 6; i++) a[i] = p * 6 + i, b[i] = q * 6 + i - 4;
      rd_ref(a, b, c, 2, 2, 3);
      for (int i = 0; i < 4; i++) CHECK(mg_tensor_get_f64(y, (p * 3 + q) * 4 + i) == c[i]);
    }
  mg_tensor_release(y);
  mg_tensor_release(in[0]);
  mg_tensor_release(in[1]);
}

TEST(matmul_errors) {
  int64_t sa[2] = {2, 3}, sb[2] = {4, 5};
  mg_tensor *in[2] = {rd_iota(MG_FLOAT32, 2, sa, 1, 0), rd_iota(MG_FLOAT32, 2, sb, 1, 0)}, *y = NULL;
  CHECK(mg_apply(mg_test_ctx(), MG_OP_MATMUL, in, 2, NULL, &y) == MG_ESHAPE);
  CHECK(strcmp(mg_last_error(), "matmul: inner dimensions differ: (2,3) @ (4,5)") == 0);
  mg_tensor_release(in[1]);
  mg_scalar_f64(2, 0, &in[1]);
  CHECK(mg_apply(mg_test_ctx(), MG_OP_MATMUL, in, 2, NULL, &y) == MG_ESHAPE);
  CHECK(strstr(mg_last_error(), "0-d") != NULL);
  mg_tensor_release(in[0]);
  mg_tensor_release(in[1]);
}

TEST(reduce_errors) {
  int64_t sh[2] = {0, 3};
  mg_tensor *x = rd_iota(MG_FLOAT32, 2, sh, 1, 0), *y = NULL;
  mg_attrs a;
  int64_t ax0[1] = {0}, dup[2] = {1, -1}, bad[1] = {2};
  rd_axes(&a, 1, ax0, 0);
  CHECK(rd_apply(MG_OP_MAX, x, &a, &y) == MG_ESHAPE);
  CHECK(strstr(mg_last_error(), "max: cannot reduce over an empty axis (input shape (0,3))") != NULL);
  CHECK_OK(rd_apply(MG_OP_SUM, x, &a, &y));  /* sums have an identity */
  double z[3] = {0, 0, 0};
  CHECK(rd_close(y, z, 3, 0));
  mg_tensor_release(y);
  rd_axes(&a, 2, dup, 0);
  CHECK(rd_apply(MG_OP_SUM, x, &a, &y) == MG_EARG);
  CHECK(strstr(mg_last_error(), "given twice") != NULL);
  rd_axes(&a, 1, bad, 0);
  CHECK(rd_apply(MG_OP_MEAN, x, &a, &y) == MG_EINDEX);
  mg_tensor_release(x);
}
