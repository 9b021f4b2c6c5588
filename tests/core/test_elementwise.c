/*
 * test_elementwise.c — elementwise ops through mg_apply: values and dtypes
 * for a few ops per family, the integer cases C leaves undefined (they must
 * give the documented results, and UBSan runs these under `make asan`),
 * saturating casts, strided and broadcast operands on both the direct path
 * and the threaded iterator path, mg_copy_into, and infer's error statuses.
 */
#include "harness.h"
#include "internal.h"
#include <string.h>

static mg_tensor *ew_make(mg_dtype dt, int ndim, const int64_t *shape, const void *data) {
  mg_tensor *t = NULL;
  mg_tensor_from_data(dt, ndim, shape, data, &t);
  return t;
}

static mg_status ew_apply2(mg_op op, mg_tensor *a, mg_tensor *b, mg_tensor **out) {
  mg_tensor *in[2] = {a, b};
  return mg_apply(mg_test_ctx(), op, in, b ? 2 : 1, NULL, out);
}

static mg_status ew_cast(mg_tensor *x, mg_dtype to, mg_tensor **out) {
  mg_attrs a = {.set = 1u};
  a.v[0].n = 1;
  a.v[0].i[0] = to;
  return mg_apply(mg_test_ctx(), MG_OP_CAST, &x, 1, &a, out);
}

TEST(ew_add_f32_broadcast_and_nan) {
  int64_t s23[2] = {2, 3}, s3[1] = {3};
  float a[6] = {1, 2, 3, 4, 5, NAN}, b[3] = {10, 20, 30};
  mg_tensor *ta = ew_make(MG_FLOAT32, 2, s23, a), *tb = ew_make(MG_FLOAT32, 1, s3, b), *o = NULL;
  REQUIRE(ta && tb);
  CHECK_OK(ew_apply2(MG_OP_ADD, ta, tb, &o));
  CHECK(mg_tensor_dtype(o) == MG_FLOAT32 && mg_tensor_ndim(o) == 2);
  const float *r = mg_tensor_data(o);
  CHECK(r[0] == 11 && r[1] == 22 && r[2] == 33 && r[3] == 14 && r[4] == 25 && isnan(r[5]));
  mg_tensor_release(o);
  mg_tensor_release(ta);
  mg_tensor_release(tb);
}

TEST(ew_integer_edge_cases_are_defined) {
  int64_t s[1] = {6};
  int64_t a[6] = {7, -7, INT64_MIN, 5, INT64_MAX, -7}, b[6] = {2, 2, -1, 0, 1, -2};
  mg_tensor *ta = ew_make(MG_INT64, 1, s, a), *tb = ew_make(MG_INT64, 1, s, b), *o = NULL;
  REQUIRE(ta && tb);
  CHECK_OK(ew_apply2(MG_OP_FLOORDIV, ta, tb, &o));
  const int64_t *r = mg_tensor_data(o);
  CHECK(r[0] == 3 && r[1] == -4 && r[2] == INT64_MIN && r[3] == 0 && r[4] == INT64_MAX && r[5] == 3);
  mg_tensor_release(o);
  CHECK_OK(ew_apply2(MG_OP_MOD, ta, tb, &o));
  r = mg_tensor_data(o);
  CHECK(r[0] == 1 && r[1] == 1 && r[2] == 0 && r[3] == 0 && r[4] == 0 && r[5] == -1);
  mg_tensor_release(o);
  CHECK_OK(ew_apply2(MG_OP_ADD, ta, tb, &o));  /* INT64_MAX + 1 wraps */
  r = mg_tensor_data(o);
  CHECK(r[4] == INT64_MIN && r[2] == INT64_MAX);
  mg_tensor_release(o);
  CHECK_OK(ew_apply2(MG_OP_POW, ta, tb, &o));
  r = mg_tensor_data(o);
  CHECK(r[0] == 49 && r[1] == 49 && r[2] == 0 && r[3] == 1 && r[4] == INT64_MAX && r[5] == 0);
  mg_tensor_release(o);
  CHECK_OK(ew_apply2(MG_OP_NEG, ta, NULL, &o));
  r = mg_tensor_data(o);
  CHECK(r[2] == INT64_MIN && r[0] == -7);
  mg_tensor_release(o);
  mg_tensor_release(ta);
  mg_tensor_release(tb);

  int64_t s2[1] = {2};
  int32_t c[2] = {INT32_MIN, 9}, d[2] = {-1, 0};
  mg_tensor *tc = ew_make(MG_INT32, 1, s2, c), *td = ew_make(MG_INT32, 1, s2, d);
  CHECK_OK(ew_apply2(MG_OP_FLOORDIV, tc, td, &o));
  CHECK(((int32_t *)mg_tensor_data(o))[0] == INT32_MIN && ((int32_t *)mg_tensor_data(o))[1] == 0);
  mg_tensor_release(o);
  CHECK_OK(ew_apply2(MG_OP_ABS, tc, NULL, &o));
  CHECK(((int32_t *)mg_tensor_data(o))[0] == INT32_MIN);
  mg_tensor_release(o);
  mg_tensor_release(tc);
  mg_tensor_release(td);
}

TEST(ew_cast_saturates_and_maps_nan_to_zero) {
  int64_t s[1] = {5};
  double v[5] = {NAN, INFINITY, -INFINITY, -3.7, 1e300};
  mg_tensor *x = ew_make(MG_FLOAT64, 1, s, v), *o = NULL;
  REQUIRE(x);
  CHECK_OK(ew_cast(x, MG_INT32, &o));
  const int32_t *r = mg_tensor_data(o);
  CHECK(r[0] == 0 && r[1] == INT32_MAX && r[2] == INT32_MIN && r[3] == -3 && r[4] == INT32_MAX);
  mg_tensor_release(o);
  CHECK_OK(ew_cast(x, MG_INT64, &o));
  const int64_t *q = mg_tensor_data(o);
  CHECK(q[0] == 0 && q[1] == INT64_MAX && q[2] == INT64_MIN && q[3] == -3 && q[4] == INT64_MAX);
  mg_tensor_release(o);
  CHECK_OK(ew_cast(x, MG_UINT8, &o));
  const uint8_t *u = mg_tensor_data(o);
  CHECK(u[0] == 0 && u[1] == 255 && u[2] == 0 && u[3] == 0 && u[4] == 255);
  mg_tensor_release(o);
  CHECK_OK(ew_cast(x, MG_BOOL, &o));
  u = mg_tensor_data(o);
  CHECK(u[0] == 1 && u[1] == 1 && u[2] == 1 && u[3] == 1 && u[4] == 1);
  mg_tensor_release(o);
  mg_tensor_release(x);
}

/* The same op on a transposed view must match a contiguous copy: once small
 * (the direct loop is refused, mg_iter's single thread runs), once past
 * MG_PAR_MIN (the threaded split). */
static void ew_check_transposed(int64_t n, int64_t m) {
  int64_t shape[2] = {n, m};
  mg_tensor *x = NULL, *xt = NULL, *o = NULL, *ref = NULL;
  REQUIRE(mg_tensor_empty(MG_FLOAT32, 2, shape, &x) == MG_OK);
  float *p = mg_tensor_data(x);
  for (int64_t i = 0; i < n * m; i++) p[i] = (float)(i % 1000) - 500.0f;
  int64_t tshape[2] = {m, n};
  REQUIRE(mg_tensor_empty(MG_FLOAT32, 2, tshape, &xt) == MG_OK);
  int64_t tstr[2] = {1, m};
  mg_tensor *view = mg_tensor_header(MG_FLOAT32, 2, tshape);  /* x transposed, as a view */
  REQUIRE(view);
  mg_view_of(view, x, tstr, 0);
  CHECK_OK(mg_copy_into(xt, view));  /* the contiguous reference input */
  CHECK_OK(ew_apply2(MG_OP_RELU, view, NULL, &o));
  CHECK_OK(ew_apply2(MG_OP_RELU, xt, NULL, &ref));
  CHECK(memcmp(mg_tensor_data(o), mg_tensor_data(ref), (size_t)(n * m) * 4) == 0);
  const float *r = mg_tensor_data(o);
  CHECK(r[1] == (p[m] > 0 ? p[m] : 0));  /* o[0][1] is x[1][0] */
  mg_tensor_release(o);
  mg_tensor_release(ref);
  /* a broadcast (stride 0) operand against the view */
  mg_tensor *half = NULL;
  CHECK_OK(mg_scalar_f64(0.5, 1, &half));
  CHECK_OK(ew_apply2(MG_OP_MUL, view, half, &o));
  CHECK(((float *)mg_tensor_data(o))[1] == p[m] * 0.5f);
  CHECK(((float *)mg_tensor_data(o))[n * m - 1] == p[n * m - 1] * 0.5f);
  mg_tensor_release(o);
  mg_tensor_release(half);
  mg_tensor_release(view);
  mg_tensor_release(xt);
  mg_tensor_release(x);
}

TEST(ew_strided_small_and_threaded) {
  ew_check_transposed(3, 5);
  ew_check_transposed(300, 257);
}

TEST(ew_copy_into_casts_broadcasts_and_handles_overlap) {
  int64_t s4[1] = {4}, s22[2] = {2, 2}, s2[1] = {2};
  int64_t v[4] = {1, 2, 3, 4};
  mg_tensor *t = ew_make(MG_INT64, 1, s4, v), *dst = NULL;
  REQUIRE(t);
  /* overlapping: elements 1..3 <- elements 0..2 (a forward copy would smear) */
  mg_tensor *d = mg_tensor_header(MG_INT64, 1, (int64_t[]){3}), *s = mg_tensor_header(MG_INT64, 1, (int64_t[]){3});
  int64_t one[1] = {1};
  mg_view_of(d, t, one, 1);
  mg_view_of(s, t, one, 0);
  CHECK_OK(mg_copy_into(d, s));
  const int64_t *r = mg_tensor_data(t);
  CHECK(r[0] == 1 && r[1] == 1 && r[2] == 2 && r[3] == 3);
  mg_tensor_release(d);
  mg_tensor_release(s);
  /* broadcast a (2,) float64 row into a (2,2) uint8 tensor, saturating */
  double row[2] = {-4.0, 300.0};
  mg_tensor *src = ew_make(MG_FLOAT64, 1, s2, row);
  CHECK_OK(mg_tensor_empty(MG_UINT8, 2, s22, &dst));
  CHECK_OK(mg_copy_into(dst, src));
  const uint8_t *u = mg_tensor_data(dst);
  CHECK(u[0] == 0 && u[1] == 255 && u[2] == 0 && u[3] == 255);
  CHECK(mg_copy_into(src, dst) == MG_ESHAPE);  /* (2,2) does not fit into (2) */
  mg_tensor_release(dst);
  mg_tensor_release(src);
  mg_tensor_release(t);
}

TEST(ew_infer_errors) {
  int64_t s2[1] = {2}, s3[1] = {3};
  uint8_t bv[3] = {1, 0, 1};
  float fv[3] = {1, 2, 3};
  mg_tensor *b = ew_make(MG_BOOL, 1, s3, bv), *f2 = NULL, *f3 = ew_make(MG_FLOAT32, 1, s3, fv), *o = NULL;
  CHECK_OK(mg_tensor_empty(MG_FLOAT32, 1, s2, &f2));
  CHECK(ew_apply2(MG_OP_NEG, b, NULL, &o) == MG_EDTYPE && strstr(mg_last_error(), "logical_not"));
  CHECK(ew_apply2(MG_OP_SUB, b, b, &o) == MG_EDTYPE && strstr(mg_last_error(), "logical_xor"));
  CHECK(ew_apply2(MG_OP_POW, b, b, &o) == MG_EDTYPE);
  CHECK(ew_apply2(MG_OP_ADD, f2, f3, &o) == MG_ESHAPE && strstr(mg_last_error(), "add") &&
        strstr(mg_last_error(), "(2)") && strstr(mg_last_error(), "(3)"));
  CHECK(mg_apply(mg_test_ctx(), MG_OP_CAST, &f2, 1, NULL, &o) == MG_EARG);
  mg_attrs a = {.set = 3u};
  a.v[0].n = a.v[1].n = 1;
  a.v[0].f = 2;
  a.v[1].f = 1;
  CHECK(mg_apply(mg_test_ctx(), MG_OP_CLIP, &f3, 1, &a, &o) == MG_EARG && strstr(mg_last_error(), "min (2)"));
  a.v[0].f = 0;
  CHECK(mg_apply(mg_test_ctx(), MG_OP_CLIP, &b, 1, &a, &o) == MG_EDTYPE);
  CHECK_OK(mg_apply(mg_test_ctx(), MG_OP_CLIP, &f3, 1, &a, &o));
  const float *r = mg_tensor_data(o);
  CHECK(r[0] == 1 && r[1] == 1 && r[2] == 1);
  mg_tensor_release(o);
  mg_tensor *in[3] = {b, f3, f3};
  CHECK_OK(mg_apply(mg_test_ctx(), MG_OP_WHERE, in, 3, NULL, &o));
  CHECK(mg_tensor_dtype(o) == MG_FLOAT32);
  mg_tensor_release(o);
  in[1] = f2;
  CHECK(mg_apply(mg_test_ctx(), MG_OP_WHERE, in, 3, NULL, &o) == MG_ESHAPE);
  mg_tensor_release(b);
  mg_tensor_release(f2);
  mg_tensor_release(f3);
}

TEST(ew_compare_and_promotion) {
  int64_t s2[1] = {2};
  uint8_t uv[2] = {0, 255};
  mg_tensor *u = ew_make(MG_UINT8, 1, s2, uv), *neg = NULL, *o = NULL;
  CHECK_OK(mg_scalar_i64(-1, 1, &neg));
  CHECK_OK(ew_apply2(MG_OP_LESS, u, neg, &o));  /* compared by value, not after wrapping -1 to 255 */
  CHECK(mg_tensor_dtype(o) == MG_BOOL);
  CHECK(((uint8_t *)mg_tensor_data(o))[0] == 0 && ((uint8_t *)mg_tensor_data(o))[1] == 0);
  mg_tensor_release(o);
  CHECK(ew_apply2(MG_OP_ADD, u, neg, &o) == MG_EARG);  /* -1 is no uint8: an error, not a wrap (NumPy 2) */
  CHECK_OK(ew_apply2(MG_OP_DIV, u, u, &o));
  CHECK(mg_tensor_dtype(o) == MG_FLOAT32 && isnan(((float *)mg_tensor_data(o))[0]));
  mg_tensor_release(o);
  mg_tensor_release(neg);
  mg_tensor_release(u);
}

/* mg_check_number: exact integer ranges, floats that must be integral and
 * finite, and no limits for floats and bool (the rule of doc/tensors.md). */
TEST(ew_check_number_bounds) {
  CHECK(mg_check_number("t", NULL, MG_UINT8, 1, 255, 0) == MG_OK);
  CHECK(mg_check_number("t", NULL, MG_UINT8, 1, 256, 0) == MG_EARG);
  CHECK(strstr(mg_last_error(), "t: the Lua number 256 is out of bounds for uint8 (0..255)") != NULL);
  CHECK(mg_check_number("t", NULL, MG_UINT8, 1, -1, 0) == MG_EARG);
  CHECK(mg_check_number("t", NULL, MG_INT32, 1, INT32_MIN, 0) == MG_OK);
  CHECK(mg_check_number("t", NULL, MG_INT32, 1, (int64_t)INT32_MAX + 1, 0) == MG_EARG);
  CHECK(mg_check_number("t", NULL, MG_INT32, 0, 0, 2147483647.0) == MG_OK);
  CHECK(mg_check_number("t", NULL, MG_INT32, 0, 0, 2147483648.0) == MG_EARG);
  CHECK(mg_check_number("t", NULL, MG_INT32, 0, 0, -2147483648.0) == MG_OK);
  CHECK(mg_check_number("t", NULL, MG_INT64, 0, 0, -9223372036854775808.0) == MG_OK);
  CHECK(mg_check_number("t", NULL, MG_INT64, 0, 0, 9223372036854775808.0) == MG_EARG);
  CHECK(mg_check_number("t", NULL, MG_INT64, 1, INT64_MAX, 0) == MG_OK);
  CHECK(mg_check_number("t", "value", MG_INT64, 0, 0, 2.5) == MG_EARG);
  CHECK(strstr(mg_last_error(), "t: value 2.5 has a fraction; an int64 element must be an integer") != NULL);
  CHECK(mg_check_number("t", NULL, MG_INT64, 0, 0, NAN) == MG_EARG);
  CHECK(strstr(mg_last_error(), "cannot convert the Lua number nan to int64") != NULL);
  CHECK(mg_check_number("t", NULL, MG_UINT8, 0, 0, -INFINITY) == MG_EARG);
  CHECK(strstr(mg_last_error(), "-inf") != NULL);
  CHECK(mg_check_number("t", NULL, MG_FLOAT32, 0, 0, 1e300) == MG_OK);
  CHECK(mg_check_number("t", NULL, MG_FLOAT64, 0, 0, NAN) == MG_OK);
  CHECK(mg_check_number("t", NULL, MG_BOOL, 1, 300, 0) == MG_OK);
}

/* A weak scalar meeting an integer tensor must fit its dtype: uint8 250 +
 * 300 is an error (it wrapped to 38); comparisons compare by value. */
TEST(ew_weak_scalar_must_fit) {
  int64_t s[1] = {1};
  uint8_t v[1] = {250};
  mg_tensor *u = ew_make(MG_UINT8, 1, s, v), *w = NULL, *o = NULL;
  REQUIRE(u && !mg_scalar_i64(300, 1, &w));
  CHECK(ew_apply2(MG_OP_ADD, u, w, &o) == MG_EARG);
  CHECK(strstr(mg_last_error(), "add: the Lua number 300 is out of bounds for uint8") != NULL);
  CHECK(ew_apply2(MG_OP_MAXIMUM, w, u, &o) == MG_EARG);
  CHECK_OK(ew_apply2(MG_OP_LESS, u, w, &o));
  CHECK(((const uint8_t *)mg_tensor_data(o))[0] == 1);
  mg_tensor_release(o);
  CHECK(ew_cast(w, MG_UINT8, &o) == MG_EARG);
  mg_tensor_release(w);
  REQUIRE(!mg_scalar_i64(5, 1, &w));
  CHECK_OK(ew_apply2(MG_OP_ADD, u, w, &o));
  CHECK(mg_tensor_dtype(o) == MG_UINT8 && ((const uint8_t *)mg_tensor_data(o))[0] == 255);
  mg_tensor_release(o);
  mg_tensor_release(w);
  REQUIRE(!mg_scalar_f64(2.7, 1, &w));
  CHECK_OK(ew_cast(w, MG_INT32, &o));  /* an explicit cast drops the fraction */
  CHECK(((const int32_t *)mg_tensor_data(o))[0] == 2);
  mg_tensor_release(o);
  mg_tensor_release(w);
  mg_tensor_release(u);
}
