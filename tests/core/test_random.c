/*
 * test_random.c — the Philox generator against Random123's known answers,
 * and the random ops: reproducibility from seeds, independence from the
 * thread count, ranges and moments.
 */
#include "harness.h"
#include "internal.h"
#include <string.h>

/* Full-counter Philox4x32-10, defined in kernels/random.c. */
void mg_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

TEST(random_philox_known_answers) {
  /* Random123 tests/kat_vectors, "philox4x32 10": counter, key, result. */
  static const uint32_t kat[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
      {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e,
       0xa20bc7c6, 0x6d5451fd},
      {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb,
       0x5001e420, 0x24126ea1},
  };
  for (int v = 0; v < 3; v++) {
    uint32_t out[4];
    mg_philox4x32(kat[v], kat[v] + 4, out);
    CHECK(memcmp(out, kat[v] + 6, sizeof out) == 0);
  }
  uint32_t z[4];
  mg_philox(0, 0, z);
  CHECK(z[0] == 0x6627e8d5 && z[3] == 0x9b00dbd8);
  mg_philox(0xffffffffffffffffull, 0x85a308d3243f6a88ull, z);  /* words are little-endian halves */
  uint32_t ctr[4] = {0x243f6a88, 0x85a308d3, 0, 0}, key[2] = {0xffffffff, 0xffffffff}, w[4];
  mg_philox4x32(ctr, key, w);
  CHECK(memcmp(z, w, sizeof z) == 0);
}

static void rnd_shape(mg_attrs *a, int64_t n) {
  a->set |= 1u;
  a->v[0].n = 1;
  a->v[0].i[0] = n;
}

static void rnd_f(mg_attrs *a, int k, double v) {
  a->set |= 1u << k;
  a->v[k].n = 1;
  a->v[k].f = v;
}

static void rnd_i(mg_attrs *a, int k, int64_t v) {
  a->set |= 1u << k;
  a->v[k].n = 1;
  a->v[k].i[0] = v;
}

static mg_tensor *rnd_run(mg_ctx *ctx, mg_op op, const mg_attrs *a) {
  mg_tensor *t = NULL;
  if (mg_apply(ctx, op, NULL, 0, a, &t)) fprintf(stderr, "  %s\n", mg_last_error());
  return t;
}

static int rnd_same(const mg_tensor *a, const mg_tensor *b) {
  return a && b && mg_tensor_nbytes(a) == mg_tensor_nbytes(b) &&
         memcmp(mg_tensor_data(a), mg_tensor_data(b), mg_tensor_nbytes(a)) == 0;
}

static void rnd_moments(const mg_tensor *t, double *mean, double *sd, double *lo, double *hi) {
  int64_t n = mg_tensor_numel(t);
  double s = 0, s2 = 0;
  *lo = INFINITY;
  *hi = -INFINITY;
  for (int64_t i = 0; i < n; i++) {
    double v = mg_tensor_get_f64(t, i);
    s += v;
    s2 += v * v;
    if (v < *lo) *lo = v;
    if (v > *hi) *hi = v;
  }
  *mean = s / n;
  *sd = sqrt(s2 / n - *mean * *mean);
}

TEST(random_seed_reproduces_sequence) {
  mg_ctx *ctx = mg_ctx_new();
  mg_attrs a = {0};
  rnd_shape(&a, 1001);
  mg_ctx_seed(ctx, 42);
  mg_tensor *x1 = rnd_run(ctx, MG_OP_UNIFORM, &a), *x2 = rnd_run(ctx, MG_OP_NORMAL, &a);
  mg_ctx_seed(ctx, 42);
  mg_tensor *y1 = rnd_run(ctx, MG_OP_UNIFORM, &a), *y2 = rnd_run(ctx, MG_OP_NORMAL, &a);
  CHECK(rnd_same(x1, y1) && rnd_same(x2, y2));
  mg_tensor *y3 = rnd_run(ctx, MG_OP_UNIFORM, &a);
  CHECK(!rnd_same(y1, y3));  /* consecutive calls differ */
  mg_ctx_seed(ctx, 43);
  mg_tensor *z1 = rnd_run(ctx, MG_OP_UNIFORM, &a);
  CHECK(!rnd_same(y1, z1));
  rnd_i(&a, 4, 7);  /* an explicit seed: the same tensor every call */
  mg_tensor *s1 = rnd_run(ctx, MG_OP_UNIFORM, &a), *s2 = rnd_run(ctx, MG_OP_UNIFORM, &a);
  CHECK(rnd_same(s1, s2));
  mg_tensor *all[] = {x1, x2, y1, y2, y3, z1, s1, s2};
  for (int i = 0; i < 8; i++) mg_tensor_release(all[i]);
  mg_ctx_free(ctx);
}

TEST(random_independent_of_threads) {
  static const mg_op ops[] = {MG_OP_UNIFORM, MG_OP_NORMAL, MG_OP_TRUNCATED_NORMAL, MG_OP_BERNOULLI, MG_OP_RANDINT};
  int saved = mg_get_num_threads();
  for (int k = 0; k < 5; k++) {
    mg_attrs a = {0};
    rnd_shape(&a, 3 * MG_PAR_MIN + 3);
    rnd_i(&a, ops[k] == MG_OP_BERNOULLI ? 3 : 4, 5);
    if (ops[k] == MG_OP_RANDINT) {
      rnd_i(&a, 1, -3);
      rnd_i(&a, 2, 1000);
    }
    mg_set_num_threads(1);
    mg_tensor *one = rnd_run(mg_test_ctx(), ops[k], &a);
    mg_set_num_threads(2);
    mg_tensor *two = rnd_run(mg_test_ctx(), ops[k], &a);
    CHECK(rnd_same(one, two));
    mg_tensor_release(one);
    mg_tensor_release(two);
  }
  mg_set_num_threads(saved);
}

TEST(random_distributions) {
  mg_ctx *ctx = mg_ctx_new();
  double mean, sd, lo, hi;
  mg_attrs u = {0};
  rnd_shape(&u, 100000);
  rnd_f(&u, 1, -2);
  rnd_f(&u, 2, 6);
  mg_tensor *t = rnd_run(ctx, MG_OP_UNIFORM, &u);
  rnd_moments(t, &mean, &sd, &lo, &hi);
  CHECK_NEAR(mean, 2, 0.05);
  CHECK_NEAR(sd, 8 / sqrt(12), 0.03);
  CHECK(lo >= -2 && hi < 6);
  mg_tensor_release(t);

  mg_attrs n = {0};
  rnd_shape(&n, 100000);
  rnd_f(&n, 1, 3);
  rnd_f(&n, 2, 2);
  rnd_i(&n, 3, MG_FLOAT64);
  t = rnd_run(ctx, MG_OP_NORMAL, &n);
  rnd_moments(t, &mean, &sd, &lo, &hi);
  CHECK_NEAR(mean, 3, 0.03);
  CHECK_NEAR(sd, 2, 0.03);
  mg_tensor_release(t);

  t = rnd_run(ctx, MG_OP_TRUNCATED_NORMAL, &n);
  rnd_moments(t, &mean, &sd, &lo, &hi);
  CHECK(lo >= 3 - 4 && hi <= 3 + 4);
  CHECK_NEAR(mean, 3, 0.03);
  CHECK_NEAR(sd, 2 * 0.8796, 0.03);  /* sd of a standard normal truncated at +-2 */
  mg_tensor_release(t);

  mg_attrs b = {0};
  rnd_shape(&b, 100000);
  rnd_f(&b, 1, 0.3);
  rnd_i(&b, 2, MG_BOOL);
  t = rnd_run(ctx, MG_OP_BERNOULLI, &b);
  rnd_moments(t, &mean, &sd, &lo, &hi);
  CHECK_NEAR(mean, 0.3, 0.01);
  mg_tensor_release(t);

  mg_attrs r = {0};
  rnd_shape(&r, 100000);
  rnd_i(&r, 1, -2);
  rnd_i(&r, 2, 2);
  t = rnd_run(ctx, MG_OP_RANDINT, &r);
  int64_t count[5] = {0};
  int ok = 1;
  for (int64_t i = 0; i < 100000; i++) {
    int64_t v = mg_tensor_get_i64(t, i);
    ok &= v >= -2 && v <= 2;
    if (v >= -2 && v <= 2) count[v + 2]++;
  }
  CHECK(ok);
  for (int k = 0; k < 5; k++) CHECK_NEAR(count[k], 20000, 600);
  mg_tensor_release(t);

  rnd_i(&r, 1, INT64_MIN);  /* the full range works too */
  rnd_i(&r, 2, INT64_MAX);
  t = rnd_run(ctx, MG_OP_RANDINT, &r);
  CHECK(t != NULL);
  mg_tensor_release(t);
  mg_ctx_free(ctx);
}

TEST(random_bad_arguments) {
  mg_tensor *t = NULL;
  mg_attrs u = {0};
  rnd_shape(&u, 3);
  rnd_f(&u, 1, 1);
  rnd_f(&u, 2, 1);
  CHECK(mg_apply(mg_test_ctx(), MG_OP_UNIFORM, NULL, 0, &u, &t) == MG_EARG);
  CHECK(strstr(mg_last_error(), "uniform") && strstr(mg_last_error(), "low < high"));
  mg_attrs d = {0};
  rnd_shape(&d, 3);
  rnd_i(&d, 3, MG_INT32);
  CHECK(mg_apply(mg_test_ctx(), MG_OP_NORMAL, NULL, 0, &d, &t) == MG_EDTYPE);
  mg_attrs s = {0};
  rnd_shape(&s, 3);
  rnd_f(&s, 2, -1);
  CHECK(mg_apply(mg_test_ctx(), MG_OP_NORMAL, NULL, 0, &s, &t) == MG_EARG);
  mg_attrs p = {0};
  rnd_shape(&p, 3);
  rnd_f(&p, 1, 1.5);
  CHECK(mg_apply(mg_test_ctx(), MG_OP_BERNOULLI, NULL, 0, &p, &t) == MG_EARG);
  mg_attrs r = {0};
  rnd_shape(&r, 3);
  rnd_i(&r, 1, 5);
  rnd_i(&r, 2, 4);
  CHECK(mg_apply(mg_test_ctx(), MG_OP_RANDINT, NULL, 0, &r, &t) == MG_EARG);
  rnd_i(&r, 1, 0);
  rnd_i(&r, 2, 300);
  rnd_i(&r, 3, MG_UINT8);
  CHECK(mg_apply(mg_test_ctx(), MG_OP_RANDINT, NULL, 0, &r, &t) == MG_EARG);
  rnd_i(&r, 3, MG_FLOAT32);
  CHECK(mg_apply(mg_test_ctx(), MG_OP_RANDINT, NULL, 0, &r, &t) == MG_EDTYPE);
}

/* The documented layout: batch 0 holds blocks 0..15 of the counter; a
 * float64 normal e < 16 is r*cos from lane e, e >= 16 is r*sin from lane
 * e - 16, with 53-bit uniforms from 27 + 26 bits of word pairs. */
TEST(random_normal_known_values) {
  mg_attrs a = {0};
  rnd_shape(&a, 32);
  rnd_i(&a, 3, MG_FLOAT64);
  rnd_i(&a, 4, 5);
  mg_tensor *t = rnd_run(mg_test_ctx(), MG_OP_NORMAL, &a);
  REQUIRE(t != NULL);
  for (int e = 0; e < 32; e++) {
    uint32_t w[4];
    mg_philox(5, (uint64_t)(e % 16), w);
    double u1 = 1.0 - ((double)(w[0] >> 5) * 0x1p-27 + (double)(w[1] >> 6) * 0x1p-53);
    double u2 = (double)(w[2] >> 5) * 0x1p-27 + (double)(w[3] >> 6) * 0x1p-53;
    double r = sqrt(-2 * log(u1)), ang = 6.283185307179586 * u2;
    CHECK_NEAR(mg_tensor_get_f64(t, e), e < 16 ? r * cos(ang) : r * sin(ang), 1e-12);
  }
  mg_tensor_release(t);
  mg_attrs u = {0};  /* float32 uniform: element e reads word e / 16 of block e % 16 */
  rnd_shape(&u, 64);
  rnd_i(&u, 4, 9);
  t = rnd_run(mg_test_ctx(), MG_OP_UNIFORM, &u);
  REQUIRE(t != NULL);
  for (int e = 0; e < 64; e++) {
    uint32_t w[4];
    mg_philox(9, (uint64_t)(e % 16), w);
    CHECK(mg_tensor_get_f64(t, e) == (double)(float)((double)(w[e / 16] >> 8) * 0x1p-24));
  }
  mg_tensor_release(t);
}
