/*
 * test_half.c — the storage dtypes' conversions through the cast op, against
 * the compiler's own _Float16 (GCC on x86-64, round to nearest even) and a
 * bit formula for bfloat16, over a sweep of float32 bit patterns; and the
 * widening in mg_apply: a float16 add is the float32 add rounded once.
 */
#include "harness.h"
#include "internal.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static mg_status half_cast(mg_tensor *x, mg_dtype to, mg_tensor **out) {
  mg_attrs a = {.set = 1u};
  a.v[0].n = 1;
  a.v[0].i[0] = to;
  return mg_apply(mg_test_ctx(), MG_OP_CAST, &x, 1, &a, out);
}

/* bfloat16 by the rule: round the float32 bits to nearest even at bit 16 (NaN aside). */
static uint16_t bf16_rule(uint32_t u) {
  uint32_t keep = u >> 16, rest = u & 0xffffu;
  if (rest > 0x8000u || (rest == 0x8000u && (keep & 1u))) keep++;
  return (uint16_t)keep;
}

TEST(half_cast_f32_sweep) {
  enum { N = 1 << 20 };
  uint32_t *bits = malloc(N * sizeof *bits);
  REQUIRE(bits);
  for (uint32_t i = 0; i < N; i++) bits[i] = i * 4099u + (i >> 7);  /* every exponent, varied mantissas */
  int64_t shape[1] = {N};
  mg_tensor *x = NULL, *h = NULL, *b = NULL;
  CHECK_OK(mg_tensor_from_data(MG_FLOAT32, 1, shape, bits, &x));
  CHECK_OK(half_cast(x, MG_FLOAT16, &h));
  CHECK_OK(half_cast(x, MG_BFLOAT16, &b));
  const uint16_t *hp = mg_tensor_data(h), *bp = mg_tensor_data(b);
  int bad_h = 0, bad_b = 0;
  for (uint32_t i = 0; i < N; i++) {
    float f;
    memcpy(&f, &bits[i], 4);
    _Float16 want = (_Float16)f;
    uint16_t w;
    memcpy(&w, &want, 2);
    if (isnan(f)) {
      bad_h += (hp[i] & 0x7c00u) != 0x7c00u || !(hp[i] & 0x3ffu);
      bad_b += (bp[i] & 0x7f80u) != 0x7f80u || !(bp[i] & 0x7fu);
    } else {
      bad_h += hp[i] != w;
      bad_b += bp[i] != bf16_rule(bits[i]);
    }
  }
  CHECK(bad_h == 0);
  CHECK(bad_b == 0);
  mg_tensor_release(x);
  mg_tensor_release(h);
  mg_tensor_release(b);
  free(bits);
}

TEST(half_add_is_f32_add_rounded_once) {
  float a[4] = {1.0f, 65504.0f, 1e-7f, 3.0f}, c[4] = {0.0009765625f, 16.0f, 1e-7f, -3.0f};
  int64_t shape[1] = {4};
  mg_tensor *fa = NULL, *fc = NULL, *ha = NULL, *hc = NULL, *s = NULL;
  CHECK_OK(mg_tensor_from_data(MG_FLOAT32, 1, shape, a, &fa));
  CHECK_OK(mg_tensor_from_data(MG_FLOAT32, 1, shape, c, &fc));
  CHECK_OK(half_cast(fa, MG_FLOAT16, &ha));
  CHECK_OK(half_cast(fc, MG_FLOAT16, &hc));
  mg_tensor *in[2] = {ha, hc};
  CHECK_OK(mg_apply(mg_test_ctx(), MG_OP_ADD, in, 2, NULL, &s));
  CHECK(mg_tensor_dtype(s) == MG_FLOAT16);
  for (int i = 0; i < 4; i++) {
    _Float16 x = (_Float16)a[i], y = (_Float16)c[i];
    _Float16 want = (_Float16)((float)x + (float)y);
    CHECK(mg_tensor_get_f64(s, i) == (double)(float)want);
  }
  CHECK(isinf(mg_tensor_get_f64(s, 1)));  /* 65504 + 16 rounds past the largest float16 */
  mg_tensor_release(fa);
  mg_tensor_release(fc);
  mg_tensor_release(ha);
  mg_tensor_release(hc);
  mg_tensor_release(s);
}
