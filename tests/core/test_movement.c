/*
 * test_movement.c — views, copying movement, index ops and creation ops
 * through mg_apply: values, which results alias their input, strides, and
 * the error statuses and messages of bad arguments.
 */
#include "harness.h"
#include "internal.h"
#include <string.h>

static mg_tensor *mv_f32(int ndim, const int64_t *shape, const float *data) {
  mg_tensor *t = NULL;
  mg_tensor_from_data(MG_FLOAT32, ndim, shape, data, &t);
  return t;
}

static mg_tensor *mv_i64(int ndim, const int64_t *shape, const int64_t *data) {
  mg_tensor *t = NULL;
  mg_tensor_from_data(MG_INT64, ndim, shape, data, &t);
  return t;
}

/* 0, 1, 2, ... as float32 in the given shape. */
static mg_tensor *mv_iota(int ndim, const int64_t *shape) {
  mg_tensor *t = NULL;
  if (mg_tensor_empty(MG_FLOAT32, ndim, shape, &t)) return NULL;
  float *p = mg_tensor_data(t);
  for (int64_t i = 0; i < mg_tensor_numel(t); i++) p[i] = (float)i;
  return t;
}

static void mv_list(mg_attrs *a, int k, int n, const int64_t *v) {
  a->set |= 1u << k;
  a->v[k].n = n;
  for (int i = 0; i < n; i++) a->v[k].i[i] = v[i];
}

static void mv_int(mg_attrs *a, int k, int64_t v) {
  a->set |= 1u << k;
  a->v[k].n = 1;
  a->v[k].i[0] = v;
}

static void mv_float(mg_attrs *a, int k, double v) {
  a->set |= 1u << k;
  a->v[k].n = 1;
  a->v[k].f = v;
}

static mg_status mv_apply(mg_op op, mg_tensor *x, const mg_attrs *a, mg_tensor **out) {
  return mg_apply(mg_test_ctx(), op, &x, 1, a, out);
}

/* Whether t's row-major values are `want`. */
static int mv_values(const mg_tensor *t, const double *want, int64_t n) {
  if (mg_tensor_numel(t) != n) return 0;
  for (int64_t i = 0; i < n; i++)
    if (mg_tensor_get_f64(t, i) != want[i]) {
      fprintf(stderr, "  element %lld: %g, want %g\n", (long long)i, mg_tensor_get_f64(t, i), want[i]);
      return 0;
    }
  return 1;
}

static int mv_shape(const mg_tensor *t, int ndim, const int64_t *shape) {
  return mg_tensor_ndim(t) == ndim && (ndim == 0 || !memcmp(mg_tensor_shape(t), shape, ndim * sizeof(int64_t)));
}

static int mv_shares(const mg_tensor *a, const mg_tensor *b) { return a->storage == b->storage; }

TEST(movement_reshape_view_and_infer) {
  int64_t s23[] = {2, 3}, s32[] = {3, -1};
  mg_tensor *x = mv_iota(2, s23), *y = NULL;
  mg_attrs a = {0};
  mv_list(&a, 0, 2, s32);
  CHECK_OK(mv_apply(MG_OP_RESHAPE, x, &a, &y));
  int64_t want[] = {3, 2};
  CHECK(mv_shape(y, 2, want));
  CHECK(mv_shares(x, y));
  double v[] = {0, 1, 2, 3, 4, 5};
  CHECK(mv_values(y, v, 6));
  mg_tensor_release(y);

  int64_t bad[] = {4, -1}, two[] = {-1, -1};
  mv_list(&a, 0, 2, bad);
  CHECK(mv_apply(MG_OP_RESHAPE, x, &a, &y) == MG_ESHAPE);
  CHECK(strstr(mg_last_error(), "reshape") && strstr(mg_last_error(), "(2,3)") && strstr(mg_last_error(), "(4,-1)"));
  mv_list(&a, 0, 2, two);
  CHECK(mv_apply(MG_OP_RESHAPE, x, &a, &y) == MG_ESHAPE);
  mg_tensor_release(x);
}

TEST(movement_transpose_then_reshape_copies) {
  int64_t s23[] = {2, 3}, flat[] = {6}, s321[] = {3, 2, 1};
  mg_tensor *x = mv_iota(2, s23), *t = NULL, *y = NULL, *z = NULL;
  CHECK_OK(mv_apply(MG_OP_TRANSPOSE, x, NULL, &t));
  CHECK(mv_shares(x, t) && !mg_tensor_is_contiguous(t));
  CHECK(mg_tensor_strides(t)[0] == 1 && mg_tensor_strides(t)[1] == 3);
  mg_attrs a = {0};
  mv_list(&a, 0, 1, flat);
  CHECK_OK(mv_apply(MG_OP_RESHAPE, t, &a, &y));
  CHECK(!mv_shares(x, y));
  double v[] = {0, 3, 1, 4, 2, 5};
  CHECK(mv_values(y, v, 6));
  mv_list(&a, 0, 3, s321);  /* adding a size-1 axis keeps it a view */
  CHECK_OK(mv_apply(MG_OP_RESHAPE, t, &a, &z));
  CHECK(mv_shares(x, z));
  CHECK(mv_values(z, v, 6));
  mg_tensor_release(x);
  mg_tensor_release(t);
  mg_tensor_release(y);
  mg_tensor_release(z);
}

TEST(movement_permute_squeeze_unsqueeze_expand) {
  int64_t s[] = {2, 1, 3}, perm[] = {2, 0, 1};
  mg_tensor *x = mv_iota(3, s), *p = NULL, *q = NULL, *u = NULL, *e = NULL;
  mg_attrs a = {0};
  mv_list(&a, 0, 3, perm);
  CHECK_OK(mv_apply(MG_OP_PERMUTE, x, &a, &p));
  int64_t ps[] = {3, 2, 1};
  CHECK(mv_shape(p, 3, ps) && mv_shares(x, p));
  double pv[] = {0, 3, 1, 4, 2, 5};
  CHECK(mv_values(p, pv, 6));
  int64_t dup[] = {0, 0, 1};
  mv_list(&a, 0, 3, dup);
  CHECK(mv_apply(MG_OP_PERMUTE, x, &a, &q) == MG_EARG);

  CHECK_OK(mv_apply(MG_OP_SQUEEZE, x, NULL, &q));
  int64_t qs[] = {2, 3};
  CHECK(mv_shape(q, 2, qs) && mv_shares(x, q));
  mg_attrs b = {0};
  int64_t ax0[] = {0};
  mv_list(&b, 0, 1, ax0);
  mg_tensor *bad = NULL;
  CHECK(mv_apply(MG_OP_SQUEEZE, x, &b, &bad) == MG_ESHAPE);
  CHECK(strstr(mg_last_error(), "not 1") != NULL);

  mg_attrs c = {0};
  mv_int(&c, 0, -1);
  CHECK_OK(mv_apply(MG_OP_UNSQUEEZE, q, &c, &u));
  int64_t us[] = {2, 3, 1};
  CHECK(mv_shape(u, 3, us));

  mg_attrs d = {0};
  int64_t es[] = {4, 2, -1, 3};
  mv_list(&d, 0, 4, es);
  CHECK_OK(mv_apply(MG_OP_EXPAND, x, &d, &e));
  int64_t ew[] = {4, 2, 1, 3};
  CHECK(mv_shape(e, 4, ew) && mv_shares(x, e));
  CHECK(mg_tensor_strides(e)[0] == 0);
  CHECK(mg_tensor_get_f64(e, 23) == 5);
  int64_t bad_es[] = {3, 3, 3};
  mv_list(&d, 0, 3, bad_es);
  CHECK(mv_apply(MG_OP_EXPAND, x, &d, &bad) == MG_ESHAPE);
  mg_tensor_release(x);
  mg_tensor_release(p);
  mg_tensor_release(q);
  mg_tensor_release(u);
  mg_tensor_release(e);
}

TEST(movement_slice_steps) {
  int64_t s[] = {10};
  mg_tensor *x = mv_iota(1, s), *y = NULL, *z = NULL, *w = NULL;
  mg_attrs a = {0};
  int64_t b[] = {1}, e[] = {8}, st[] = {3};
  mv_list(&a, 0, 1, b);
  mv_list(&a, 1, 1, e);
  mv_list(&a, 2, 1, st);
  CHECK_OK(mv_apply(MG_OP_SLICE, x, &a, &y));
  double v1[] = {1, 4, 7};
  CHECK(mv_values(y, v1, 3) && mv_shares(x, y) && mg_tensor_strides(y)[0] == 3);

  int64_t nb[] = {-2}, ne[] = {INT64_MIN}, ns[] = {-2};  /* x[-2::-2] */
  mv_list(&a, 0, 1, nb);
  mv_list(&a, 1, 1, ne);
  mv_list(&a, 2, 1, ns);
  CHECK_OK(mv_apply(MG_OP_SLICE, x, &a, &z));
  double v2[] = {8, 6, 4, 2, 0};
  CHECK(mv_values(z, v2, 5));
  CHECK(!mv_shares(x, z));  /* no negative strides: a copy */

  int64_t cb[] = {-100}, ce[] = {100}, cs[] = {1};  /* clamped */
  mv_list(&a, 0, 1, cb);
  mv_list(&a, 1, 1, ce);
  mv_list(&a, 2, 1, cs);
  CHECK_OK(mv_apply(MG_OP_SLICE, x, &a, &w));
  CHECK(mg_tensor_numel(w) == 10);
  int64_t zero[] = {0};
  mv_list(&a, 2, 1, zero);
  mg_tensor *bad = NULL;
  CHECK(mv_apply(MG_OP_SLICE, x, &a, &bad) == MG_EARG);
  mg_tensor_release(x);
  mg_tensor_release(y);
  mg_tensor_release(z);
  mg_tensor_release(w);
}

TEST(movement_slice_2d_negative_view_chain) {
  int64_t s[] = {3, 4};
  mg_tensor *x = mv_iota(2, s), *t = NULL, *y = NULL;
  CHECK_OK(mv_apply(MG_OP_TRANSPOSE, x, NULL, &t));  /* (4,3), strides (1,4) */
  mg_attrs a = {0};
  int64_t b[] = {INT64_MAX, 0}, e[] = {INT64_MIN, 3}, st[] = {-1, 2};
  mv_list(&a, 0, 2, b);
  mv_list(&a, 1, 2, e);
  mv_list(&a, 2, 2, st);
  CHECK_OK(mv_apply(MG_OP_SLICE, t, &a, &y));
  int64_t ys[] = {4, 2};
  CHECK(mv_shape(y, 2, ys));
  double v[] = {3, 11, 2, 10, 1, 9, 0, 8};
  CHECK(mv_values(y, v, 8));
  mg_tensor_release(x);
  mg_tensor_release(t);
  mg_tensor_release(y);
}

TEST(movement_select_and_base1) {
  int64_t s[] = {3, 2};
  mg_tensor *x = mv_iota(2, s), *y = NULL;
  mg_attrs a = {0};
  mv_int(&a, 0, 0);
  mv_int(&a, 1, -1);
  CHECK_OK(mv_apply(MG_OP_SELECT, x, &a, &y));
  double v[] = {4, 5};
  CHECK(mv_values(y, v, 2) && mv_shares(x, y));
  mg_tensor_release(y);
  mv_int(&a, 1, 3);
  CHECK(mv_apply(MG_OP_SELECT, x, &a, &y) == MG_EINDEX);
  CHECK(strstr(mg_last_error(), "select") && strstr(mg_last_error(), "size 3"));

  mg_ctx *ctx = mg_ctx_new();
  mg_ctx_set_index_base(ctx, 1);
  mv_int(&a, 0, 2);  /* second axis */
  mv_int(&a, 1, 1);  /* first element */
  CHECK_OK(mg_apply(ctx, MG_OP_SELECT, &x, 1, &a, &y));
  double w[] = {0, 2, 4};
  CHECK(mv_values(y, w, 3));
  mg_tensor_release(y);
  mv_int(&a, 1, 0);
  CHECK(mg_apply(ctx, MG_OP_SELECT, &x, 1, &a, &y) == MG_EINDEX);
  CHECK(strstr(mg_last_error(), "1..2") != NULL);
  mg_attrs u = {0};
  mv_int(&u, 0, 1);
  CHECK_OK(mg_apply(ctx, MG_OP_UNSQUEEZE, &x, 1, &u, &y));
  int64_t us[] = {1, 3, 2};
  CHECK(mv_shape(y, 3, us));
  mg_tensor_release(y);
  mg_ctx_free(ctx);
  mg_tensor_release(x);
}

TEST(movement_contiguous) {
  int64_t s[] = {2, 3};
  mg_tensor *x = mv_iota(2, s), *c = NULL, *t = NULL, *d = NULL;
  CHECK_OK(mv_apply(MG_OP_CONTIGUOUS, x, NULL, &c));
  CHECK(mv_shares(x, c));
  CHECK_OK(mv_apply(MG_OP_TRANSPOSE, x, NULL, &t));
  CHECK_OK(mv_apply(MG_OP_CONTIGUOUS, t, NULL, &d));
  CHECK(!mv_shares(x, d) && mg_tensor_is_contiguous(d));
  double v[] = {0, 3, 1, 4, 2, 5};
  CHECK(mv_values(d, v, 6));
  mg_tensor_release(x);
  mg_tensor_release(c);
  mg_tensor_release(t);
  mg_tensor_release(d);
}

TEST(movement_concat_promotes) {
  int64_t s1[] = {2, 1}, s2[] = {2, 2};
  mg_tensor *a = NULL, *b = mv_iota(2, s2), *y = NULL;
  int32_t ad[] = {7, 8};
  CHECK_OK(mg_tensor_from_data(MG_INT32, 2, s1, ad, &a));
  mg_tensor *in[] = {a, b};
  mg_attrs at = {0};
  mv_int(&at, 0, 1);
  CHECK_OK(mg_apply(mg_test_ctx(), MG_OP_CONCAT, in, 2, &at, &y));
  CHECK(mg_tensor_dtype(y) == MG_FLOAT32);
  double v[] = {7, 0, 1, 8, 2, 3};
  CHECK(mv_values(y, v, 6));
  mg_tensor_release(y);
  CHECK(mg_apply(mg_test_ctx(), MG_OP_CONCAT, in, 2, NULL, &y) == MG_ESHAPE);  /* axis 0: 1 vs 2 columns */
  CHECK(strstr(mg_last_error(), "concat") && strstr(mg_last_error(), "(2,2)"));
  mg_tensor_release(a);
  mg_tensor_release(b);
}

TEST(movement_gather_take_scatter) {
  int64_t s[] = {2, 3}, is[] = {2, 2};
  mg_tensor *x = mv_iota(2, s), *y = NULL;
  int64_t id[] = {2, 0, 1, 1};
  mg_tensor *idx = mv_i64(2, is, id);
  mg_tensor *in[] = {x, idx};
  mg_attrs a = {0};
  mv_int(&a, 0, 1);
  CHECK_OK(mg_apply(mg_test_ctx(), MG_OP_GATHER, in, 2, &a, &y));
  double g[] = {2, 0, 4, 4};
  CHECK(mv_values(y, g, 4));
  mg_tensor_release(y);

  mv_int(&a, 0, 1);
  CHECK_OK(mg_apply(mg_test_ctx(), MG_OP_TAKE, in, 2, &a, &y));
  int64_t ts[] = {2, 2, 2};
  CHECK(mv_shape(y, 3, ts));
  double t[] = {2, 0, 1, 1, 5, 3, 4, 4};
  CHECK(mv_values(y, t, 8));
  mg_tensor_release(y);

  int64_t sd[] = {1, 1, 2, 2};  /* duplicates add up */
  mg_tensor *sidx = mv_i64(2, is, sd), *src = NULL;
  float sv[] = {10, 20, 30, 40};
  src = mv_f32(2, is, sv);
  mg_tensor *sin3[] = {x, sidx, src};
  CHECK_OK(mg_apply(mg_test_ctx(), MG_OP_SCATTER_ADD, sin3, 3, &a, &y));
  double sa[] = {0, 31, 2, 3, 4, 75};
  CHECK(mv_values(y, sa, 6));
  mg_tensor_release(y);

  id[0] = 3;  /* out of range */
  mg_tensor *bad = mv_i64(2, is, id);
  mg_tensor *in2[] = {x, bad};
  CHECK(mg_apply(mg_test_ctx(), MG_OP_GATHER, in2, 2, &a, &y) == MG_EINDEX);
  CHECK(strstr(mg_last_error(), "index 3") && strstr(mg_last_error(), "(0,0)") && strstr(mg_last_error(), "0..2"));
  mg_tensor *fidx = mv_f32(2, is, sv);
  mg_tensor *in3[] = {x, fidx};
  CHECK(mg_apply(mg_test_ctx(), MG_OP_TAKE, in3, 2, &a, &y) == MG_EDTYPE);
  mg_tensor_release(x);
  mg_tensor_release(idx);
  mg_tensor_release(sidx);
  mg_tensor_release(src);
  mg_tensor_release(bad);
  mg_tensor_release(fidx);
}

TEST(movement_take_base1_strided) {
  int64_t s[] = {3, 2}, is[] = {3};
  mg_tensor *x = mv_iota(2, s), *t = NULL, *y = NULL;
  CHECK_OK(mv_apply(MG_OP_TRANSPOSE, x, NULL, &t));  /* (2,3): rows 0 2 4 / 1 3 5 */
  int64_t id[] = {3, 1, 3};
  mg_tensor *idx = mv_i64(1, is, id);
  mg_ctx *ctx = mg_ctx_new();
  mg_ctx_set_index_base(ctx, 1);
  mg_tensor *in[] = {t, idx};
  mg_attrs a = {0};
  mv_int(&a, 0, 2);
  CHECK_OK(mg_apply(ctx, MG_OP_TAKE, in, 2, &a, &y));
  double v[] = {4, 0, 4, 5, 1, 5};
  CHECK(mv_values(y, v, 6));
  mg_tensor_release(y);
  CHECK(mg_apply(ctx, MG_OP_TAKE, in, 2, NULL, &y) == MG_EINDEX);  /* default: the first axis, size 2 */
  CHECK(strstr(mg_last_error(), "index 3 at position (1)") && strstr(mg_last_error(), "1..2"));
  int64_t id2[] = {2, 1, 2};
  mg_tensor *idx2 = mv_i64(1, is, id2);
  in[1] = idx2;
  CHECK_OK(mg_apply(ctx, MG_OP_TAKE, in, 2, NULL, &y));
  double w[] = {1, 3, 5, 0, 2, 4, 1, 3, 5};
  CHECK(mv_values(y, w, 9));
  mg_tensor_release(y);
  mg_tensor_release(idx2);
  mg_ctx_free(ctx);
  mg_tensor_release(x);
  mg_tensor_release(t);
  mg_tensor_release(idx);
}

TEST(movement_one_hot) {
  int64_t s[] = {4}, id[] = {0, 2, 5, -1};
  mg_tensor *idx = mv_i64(1, s, id), *y = NULL;
  mg_attrs a = {0};
  mv_int(&a, 0, 3);
  /* outside = "error" (the default): with these calls' base 0, 5 is outside 0..2 (the Lua
   * binding's base 1 and its "labels count from 1" message are in tests/spec/habits_spec.lua) */
  CHECK(mv_apply(MG_OP_ONE_HOT, idx, &a, &y) == MG_EINDEX);
  CHECK(strstr(mg_last_error(), "index 5 (element 2) is outside 0..2") != NULL);
  mv_int(&a, 2, 1);  /* outside = "zero": TF's zero rows */
  CHECK_OK(mv_apply(MG_OP_ONE_HOT, idx, &a, &y));
  double v[] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
  CHECK(mv_values(y, v, 12));
  CHECK(mg_tensor_dtype(y) == MG_FLOAT32);
  mg_tensor_release(y);
  mv_int(&a, 0, -1);
  CHECK(mv_apply(MG_OP_ONE_HOT, idx, &a, &y) == MG_EARG);
  mg_tensor_release(idx);
}

TEST(movement_pad_modes) {
  int64_t s[] = {1, 3}, pads[] = {0, 0, 2, 1};
  mg_tensor *x = mv_iota(2, s), *y = NULL;
  mg_attrs a = {0};
  mv_list(&a, 0, 4, pads);
  mv_float(&a, 1, -1);
  CHECK_OK(mv_apply(MG_OP_PAD, x, &a, &y));
  double c[] = {-1, -1, 0, 1, 2, -1};
  CHECK(mv_values(y, c, 6));
  mg_tensor_release(y);
  mv_int(&a, 2, 1);
  CHECK_OK(mv_apply(MG_OP_PAD, x, &a, &y));
  double r[] = {2, 1, 0, 1, 2, 1};
  CHECK(mv_values(y, r, 6));
  mg_tensor_release(y);
  mv_int(&a, 2, 2);
  CHECK_OK(mv_apply(MG_OP_PAD, x, &a, &y));
  double p[] = {0, 0, 0, 1, 2, 2};
  CHECK(mv_values(y, p, 6));
  mg_tensor_release(y);
  int64_t big[] = {0, 0, 3, 0};
  mv_list(&a, 0, 4, big);
  mv_int(&a, 2, 1);
  CHECK(mv_apply(MG_OP_PAD, x, &a, &y) == MG_ESHAPE);
  CHECK(strstr(mg_last_error(), "reflect") != NULL);
  mv_list(&a, 0, 2, big);
  CHECK(mv_apply(MG_OP_PAD, x, &a, &y) == MG_EARG);
  mg_tensor_release(x);
}

TEST(movement_tile_flip) {
  int64_t s[] = {2}, reps[] = {2, 2};
  mg_tensor *x = mv_iota(1, s), *y = NULL;
  mg_attrs a = {0};
  mv_list(&a, 0, 2, reps);
  CHECK_OK(mv_apply(MG_OP_TILE, x, &a, &y));
  int64_t ys[] = {2, 4};
  CHECK(mv_shape(y, 2, ys));
  double t[] = {0, 1, 0, 1, 0, 1, 0, 1};
  CHECK(mv_values(y, t, 8));
  mg_tensor_release(y);
  mg_tensor_release(x);

  int64_t s2[] = {2, 3};
  x = mv_iota(2, s2);
  mg_attrs f = {0};
  int64_t ax[] = {1};
  mv_list(&f, 0, 1, ax);
  CHECK_OK(mv_apply(MG_OP_FLIP, x, &f, &y));
  double fv[] = {2, 1, 0, 5, 4, 3};
  CHECK(mv_values(y, fv, 6));
  mg_tensor_release(y);
  CHECK_OK(mv_apply(MG_OP_FLIP, x, NULL, &y));
  double all[] = {5, 4, 3, 2, 1, 0};
  CHECK(mv_values(y, all, 6));
  mg_tensor_release(y);
  mg_tensor_release(x);
}

TEST(movement_large_parallel_paths) {
  int64_t s[] = {300, 257}, reps[] = {1, 2};
  mg_tensor *x = mv_iota(2, s), *t = NULL, *y = NULL, *f = NULL;
  CHECK_OK(mv_apply(MG_OP_TRANSPOSE, x, NULL, &t));
  mg_attrs a = {0};
  mv_list(&a, 0, 2, reps);
  CHECK_OK(mv_apply(MG_OP_TILE, t, &a, &y));  /* (257, 600) */
  int ok = 1;
  for (int64_t i = 0; i < 257 && ok; i++)
    for (int64_t j = 0; j < 600; j++)
      ok &= mg_tensor_get_f64(y, i * 600 + j) == (double)((j % 300) * 257 + i);
  CHECK(ok);
  CHECK_OK(mv_apply(MG_OP_FLIP, t, NULL, &f));
  CHECK(mg_tensor_get_f64(f, 0) == 300 * 257 - 1);
  mg_tensor_release(x);
  mg_tensor_release(t);
  mg_tensor_release(y);
  mg_tensor_release(f);
}

TEST(creation_ops) {
  mg_tensor *y = NULL;
  mg_attrs a = {0};
  int64_t s[] = {2, 2};
  mv_list(&a, 0, 2, s);
  mv_float(&a, 1, 7);
  mv_int(&a, 2, MG_INT32);
  CHECK_OK(mg_apply(mg_test_ctx(), MG_OP_FULL, NULL, 0, &a, &y));
  double f[] = {7, 7, 7, 7};
  CHECK(mv_values(y, f, 4) && mg_tensor_dtype(y) == MG_INT32);
  mg_tensor_release(y);
  int64_t neg[] = {2, -2};
  mv_list(&a, 0, 2, neg);
  CHECK(mg_apply(mg_test_ctx(), MG_OP_FULL, NULL, 0, &a, &y) == MG_ESHAPE);
  int64_t huge[] = {INT64_MAX / 2, 4};
  mv_list(&a, 0, 2, huge);
  CHECK(mg_apply(mg_test_ctx(), MG_OP_FULL, NULL, 0, &a, &y) == MG_ENOMEM);

  mg_attrs r = {0};
  mv_float(&r, 0, 10);
  mv_float(&r, 1, 1);
  mv_float(&r, 2, -3);
  CHECK_OK(mg_apply(mg_test_ctx(), MG_OP_ARANGE, NULL, 0, &r, &y));
  double ar[] = {10, 7, 4};
  CHECK(mv_values(y, ar, 3) && mg_tensor_dtype(y) == MG_INT64);
  mg_tensor_release(y);
  mv_float(&r, 2, 0);
  CHECK(mg_apply(mg_test_ctx(), MG_OP_ARANGE, NULL, 0, &r, &y) == MG_EARG);

  mg_attrs l = {0};
  mv_float(&l, 0, 0);
  mv_float(&l, 1, 1);
  mv_int(&l, 2, 7);
  CHECK_OK(mg_apply(mg_test_ctx(), MG_OP_LINSPACE, NULL, 0, &l, &y));
  CHECK(mg_tensor_get_f64(y, 0) == 0 && mg_tensor_get_f64(y, 6) == 1);
  CHECK_NEAR(mg_tensor_get_f64(y, 3), 0.5, 1e-7);
  mg_tensor_release(y);

  mg_attrs e = {0};
  mv_int(&e, 0, 2);
  mv_int(&e, 1, 3);
  CHECK_OK(mg_apply(mg_test_ctx(), MG_OP_EYE, NULL, 0, &e, &y));
  double ev[] = {1, 0, 0, 0, 1, 0};
  CHECK(mv_values(y, ev, 6));
  mg_tensor_release(y);
}

/* Long rows go through memcpy'd runs (tile, constant and replicate pads of
 * contiguous inputs): check every element against the index arithmetic. */
TEST(movement_table_runs) {
  int64_t s[] = {3, 50}, reps[] = {2, 3}, pads[] = {1, 2, 3, 4};
  mg_tensor *x = mv_iota(2, s), *y = NULL;
  mg_attrs a = {0};
  mv_list(&a, 0, 2, reps);
  CHECK_OK(mv_apply(MG_OP_TILE, x, &a, &y));
  int ok = 1;
  for (int64_t i = 0; i < 6; i++)
    for (int64_t j = 0; j < 150; j++) ok &= mg_tensor_get_f64(y, i * 150 + j) == (double)((i % 3) * 50 + j % 50);
  CHECK(ok);
  mg_tensor_release(y);
  for (int mode = 0; mode < 3; mode += 2) {
    mg_attrs p = {0};
    mv_list(&p, 0, 4, pads);
    mv_float(&p, 1, -7);
    mv_int(&p, 2, mode);
    CHECK_OK(mv_apply(MG_OP_PAD, x, &p, &y));
    int64_t ys[] = {6, 57};
    CHECK(mv_shape(y, 2, ys));
    ok = 1;
    for (int64_t i = 0; i < 6; i++)
      for (int64_t j = 0; j < 57; j++) {
        int64_t si = i - 1, sj = j - 3;
        double want;
        if (mode == 0) want = si < 0 || si > 2 || sj < 0 || sj > 49 ? -7 : (double)(si * 50 + sj);
        else want = (double)((si < 0 ? 0 : si > 2 ? 2 : si) * 50 + (sj < 0 ? 0 : sj > 49 ? 49 : sj));
        ok &= mg_tensor_get_f64(y, i * 57 + j) == want;
      }
    CHECK(ok);
    mg_tensor_release(y);
  }
  mg_tensor_release(x);
}
