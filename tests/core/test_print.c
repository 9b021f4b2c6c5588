/*
 * test_print.c — mg_tensor_format: exact text for each dtype family, the
 * NumPy float rules (trimmed "1.", aligned points, scientific notation when the
 * range needs it, nan/inf), 0-d, empty, freed, summarised, wrapped rows, and a
 * strided (transposed) view built by hand so the test needs no kernel.
 */
#include "harness.h"
#include "internal.h"
#include <stdlib.h>
#include <string.h>

/* Formats t, compares with `want`, prints both on a mismatch, releases t. */
static int print_is(mg_tensor *t, int width, const char *want) {
  char *s = mg_tensor_format(t, width);
  int ok = s && strcmp(s, want) == 0;
  if (!ok) fprintf(stderr, "  got:\n%s\n  want:\n%s\n", s ? s : "(null)", want);
  mg_free(s);
  mg_tensor_release(t);
  return ok;
}

static mg_tensor *make(mg_dtype dt, int ndim, const int64_t *shape, const void *data) {
  mg_tensor *t = NULL;
  if (mg_tensor_from_data(dt, ndim, shape, data, &t) != MG_OK) return NULL;
  return t;
}

static mg_tensor *arange_i64(int ndim, const int64_t *shape, int64_t n) {
  mg_tensor *t = NULL;
  if (mg_tensor_empty(MG_INT64, ndim, shape, &t) != MG_OK) return NULL;
  int64_t *d = mg_tensor_data(t);
  for (int64_t i = 0; i < n; i++) d[i] = i;
  return t;
}

TEST(print_ints) {
  int64_t a[] = {1, 2, 3, 4}, sh[] = {2, 2};
  CHECK(print_is(make(MG_INT64, 2, sh, a), 0, "tensor([[1, 2], [3, 4]], dtype=int64)"));
  int32_t b[] = {1, -2, 10, 4};
  CHECK(print_is(make(MG_INT32, 2, sh, b), 0, "tensor([[ 1, -2], [10,  4]], dtype=int32)"));
  uint8_t c[] = {0, 255, 7};
  int64_t s3[] = {3};
  CHECK(print_is(make(MG_UINT8, 1, s3, c), 0, "tensor([  0, 255,   7], dtype=uint8)"));
  int64_t d[] = {INT64_MIN, 0};
  int64_t s2[] = {2};
  CHECK(print_is(make(MG_INT64, 1, s2, d), 0,
                 "tensor([-9223372036854775808,                    0], dtype=int64)"));
}

TEST(print_floats) {
  int64_t s2[] = {2}, s3[] = {3};
  float a[] = {1, 0.5f};
  CHECK(print_is(make(MG_FLOAT32, 1, s2, a), 0, "tensor([1. , 0.5], dtype=float32)"));
  float b[] = {1, 2};
  CHECK(print_is(make(MG_FLOAT32, 1, s2, b), 0, "tensor([1., 2.], dtype=float32)"));
  double c[] = {1.23456789, 100, -2.5};
  CHECK(print_is(make(MG_FLOAT64, 1, s3, c), 0, "tensor([  1.2346, 100.    ,  -2.5   ], dtype=float64)"));
  float z[] = {0, -0.0f};
  CHECK(print_is(make(MG_FLOAT32, 1, s2, z), 0, "tensor([ 0., -0.], dtype=float32)"));
  float tiny[] = {0.1f, 0.00016f};   /* min >= 1e-4: stays positional, rounded to 4 places */
  CHECK(print_is(make(MG_FLOAT32, 1, s2, tiny), 0, "tensor([0.1   , 0.0002], dtype=float32)"));
}

TEST(print_scientific) {
  int64_t s2[] = {2}, s3[] = {3};
  float a[] = {1, 123456};           /* max/min > 1000 */
  CHECK(print_is(make(MG_FLOAT32, 1, s2, a), 0, "tensor([1.0000e+00, 1.2346e+05], dtype=float32)"));
  double b[] = {0.00001, 1};         /* min < 1e-4 */
  CHECK(print_is(make(MG_FLOAT64, 1, s2, b), 0, "tensor([1.e-05, 1.e+00], dtype=float64)"));
  double c[] = {-1e8, 2.5, 0};       /* max >= 1e8; zero does not count for the range */
  CHECK(print_is(make(MG_FLOAT64, 1, s3, c), 0,
                 "tensor([-1.0e+08,  2.5e+00,  0.0e+00], dtype=float64)"));
  double d[] = {1e-300, 1e300};      /* three exponent digits; all exponents padded alike */
  CHECK(print_is(make(MG_FLOAT64, 1, s2, d), 0, "tensor([1.e-300, 1.e+300], dtype=float64)"));
  double e[] = {1e-5, 1e200};
  CHECK(print_is(make(MG_FLOAT64, 1, s2, e), 0, "tensor([1.e-005, 1.e+200], dtype=float64)"));
}

TEST(print_nan_inf) {
  int64_t s1[] = {1}, s3[] = {3}, s4[] = {4};
  float a[] = {1.5f, NAN, -INFINITY};
  CHECK(print_is(make(MG_FLOAT32, 1, s3, a), 0, "tensor([ 1.5,  nan, -inf], dtype=float32)"));
  float b[] = {INFINITY};
  CHECK(print_is(make(MG_FLOAT32, 1, s1, b), 0, "tensor([inf], dtype=float32)"));
  double c[] = {NAN, -INFINITY, INFINITY, NAN};
  CHECK(print_is(make(MG_FLOAT64, 1, s4, c), 0, "tensor([ nan, -inf,  inf,  nan], dtype=float64)"));
  float d[] = {1e-5f, NAN, 1};
  CHECK(print_is(make(MG_FLOAT32, 1, s3, d), 0, "tensor([1.e-05,    nan, 1.e+00], dtype=float32)"));
  float e[] = {2, 3, INFINITY};      /* widths grow to fit "inf" */
  CHECK(print_is(make(MG_FLOAT32, 1, s3, e), 0, "tensor([ 2.,  3., inf], dtype=float32)"));
}

TEST(print_bool) {
  uint8_t a[] = {1, 0, 1};
  int64_t s3[] = {3};
  CHECK(print_is(make(MG_BOOL, 1, s3, a), 0, "tensor([ true, false,  true], dtype=bool)"));
  uint8_t b[] = {1, 1};
  int64_t s2[] = {2};
  CHECK(print_is(make(MG_BOOL, 1, s2, b), 0, "tensor([true, true], dtype=bool)"));
}

TEST(print_scalar_empty_freed) {
  float v = 3.5f;
  CHECK(print_is(make(MG_FLOAT32, 0, NULL, &v), 0, "tensor(3.5, dtype=float32)"));
  int64_t i = -7;
  CHECK(print_is(make(MG_INT64, 0, NULL, &i), 0, "tensor(-7, dtype=int64)"));
  double w = 1e10;
  CHECK(print_is(make(MG_FLOAT64, 0, NULL, &w), 0, "tensor(1.e+10, dtype=float64)"));
  uint8_t bo = 0;
  CHECK(print_is(make(MG_BOOL, 0, NULL, &bo), 0, "tensor(false, dtype=bool)"));
  int64_t e2[] = {0, 3}, e1[] = {0}, e3[] = {2, 0, 4};
  CHECK(print_is(make(MG_FLOAT32, 2, e2, NULL), 0, "tensor([], shape=(0,3), dtype=float32)"));
  CHECK(print_is(make(MG_INT64, 1, e1, NULL), 0, "tensor([], dtype=int64)"));
  CHECK(print_is(make(MG_BOOL, 3, e3, NULL), 0, "tensor([], shape=(2,0,4), dtype=bool)"));
  int64_t s2[] = {2};
  float f[] = {1, 2};
  mg_tensor *t = make(MG_FLOAT32, 1, s2, f);
  REQUIRE(t);
  mg_tensor_free_storage(t);
  CHECK(print_is(t, 0, "tensor(<freed>)"));
}

TEST(print_transposed_view) {
  int64_t a[] = {1, 2, 3, 4, 5, 6}, sh[] = {2, 3}, tsh[] = {3, 2}, tst[] = {1, 3};
  mg_tensor *src = make(MG_INT64, 2, sh, a);
  REQUIRE(src);
  mg_tensor *t = mg_tensor_header(MG_INT64, 2, tsh);
  REQUIRE(t);
  mg_view_of(t, src, tst, 0);
  mg_tensor_release(src);
  CHECK(!mg_tensor_is_contiguous(t));
  CHECK(print_is(t, 0, "tensor([[1, 4], [2, 5], [3, 6]], dtype=int64)"));
  /* a column (offset 1, stride 3) of a float matrix */
  float b[] = {1, 0.5f, 9, 2, -0.25f, 9};
  int64_t c_sh[] = {2}, c_st[] = {3};
  src = make(MG_FLOAT32, 2, sh, b);
  REQUIRE(src);
  t = mg_tensor_header(MG_FLOAT32, 1, c_sh);
  REQUIRE(t);
  mg_view_of(t, src, c_st, 1);
  mg_tensor_release(src);
  CHECK(print_is(t, 0, "tensor([ 0.5 , -0.25], dtype=float32)"));
}

TEST(print_wrapped) {
  int64_t s40[] = {40};
  CHECK(print_is(arange_i64(1, s40, 40), 0,
                 "tensor([ 0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14, 15, 16, 17,\n"
                 "        18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35,\n"
                 "        36, 37, 38, 39], dtype=int64)"));
  float a[] = {1, 0.5f, 10, -2.25f};
  int64_t sh[] = {2, 2};
  CHECK(print_is(make(MG_FLOAT32, 2, sh, a), 40,
                 "tensor([[ 1.  ,  0.5 ],\n"
                 "        [10.  , -2.25]], dtype=float32)"));
  int64_t s3d[] = {2, 2, 2};
  CHECK(print_is(arange_i64(3, s3d, 8), 30,
                 "tensor([[[0, 1],\n"
                 "         [2, 3]],\n"
                 "\n"
                 "        [[4, 5],\n"
                 "         [6, 7]]],\n"
                 "       dtype=int64)"));
  CHECK(print_is(arange_i64(3, s3d, 8), 0, "tensor([[[0, 1], [2, 3]], [[4, 5], [6, 7]]], dtype=int64)"));
}

TEST(print_summarised) {
  int64_t s1[] = {2000};
  CHECK(print_is(arange_i64(1, s1, 2000), 0,
                 "tensor([   0,    1,    2, ..., 1997, 1998, 1999], dtype=int64)"));
  int64_t s2[] = {100, 100};
  CHECK(print_is(arange_i64(2, s2, 10000), 0,
                 "tensor([[   0,    1,    2, ...,   97,   98,   99],\n"
                 "        [ 100,  101,  102, ...,  197,  198,  199],\n"
                 "        [ 200,  201,  202, ...,  297,  298,  299],\n"
                 "        ...,\n"
                 "        [9700, 9701, 9702, ..., 9797, 9798, 9799],\n"
                 "        [9800, 9801, 9802, ..., 9897, 9898, 9899],\n"
                 "        [9900, 9901, 9902, ..., 9997, 9998, 9999]], dtype=int64)"));
  /* 1001 elements: only the axis longer than 6 is cut */
  int64_t s3[] = {7, 143};
  mg_tensor *t = arange_i64(2, s3, 1001);
  REQUIRE(t);
  char *s = mg_tensor_format(t, 0);
  REQUIRE(s);
  CHECK(strstr(s, "tensor([[   0,    1,    2, ...,  140,  141,  142],\n") == s);
  CHECK(strstr(s, "        ...,\n        [ 572,  573,  574, ...,  712,  713,  714],\n") != NULL);
  CHECK(strstr(s, "[ 858,  859,  860, ...,  998,  999, 1000]], dtype=int64)") != NULL);
  mg_free(s);
  mg_tensor_release(t);
  /* the format is chosen from the shown elements only (NumPy does the same) */
  double *d;
  int64_t s4[] = {2001};
  REQUIRE(mg_tensor_empty(MG_FLOAT64, 1, s4, &t) == MG_OK);
  d = mg_tensor_data(t);
  for (int i = 0; i < 2001; i++) d[i] = i == 1000 ? 1e30 : 0.5;
  CHECK(print_is(t, 0, "tensor([0.5, 0.5, 0.5, ..., 0.5, 0.5, 0.5], dtype=float64)"));
}
