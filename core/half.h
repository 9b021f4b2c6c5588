/*
 * half.h — float16 and bfloat16 conversions, bit exact and branch-light.
 *
 * Narrowing rounds to nearest, ties to even (IEEE's default, as NumPy,
 * JAX and PyTorch do); NaN stays a (quiet) NaN with its sign, inf stays inf,
 * and float16 overflow gives inf and underflow float16's subnormals, then 0.
 * Widening to float32 is exact. A double is first rounded to float32 "to
 * odd" (truncate, then set the lowest bit when anything was dropped), which
 * makes the second rounding to 16 bits the correctly rounded result
 * (the classic cure for double rounding: float32 keeps more than 2 extra bits).
 */
#ifndef MG_HALF_H
#define MG_HALF_H
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t half_f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static inline float half_bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static inline float mg_bf16_to_f32(uint16_t h) { return half_bits_f32((uint32_t)h << 16); }

static inline uint16_t mg_f32_to_bf16(float f) {
  uint32_t u = half_f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);  /* NaN: keep it quiet */
  u += 0x7fffu + ((u >> 16) & 1u);                                               /* ties to even */
  return (uint16_t)(u >> 16);
}

static inline float mg_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1f) return half_bits_f32(sign | 0x7f800000u | (m << 13));  /* inf, NaN */
  if (e == 0) {                                                          /* zero, subnormal: m * 2^-24 */
    float v = (float)m * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return half_bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

static inline uint16_t mg_f32_to_f16(float f) {
  uint32_t u = half_f32_bits(f);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  /* NaN */
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  /* rounds past 65504: inf */
  if (a < 0x38800000u) {                                     /* below 2^-14: a subnormal or 0 */
    /* adding 0.5 (2^-1) makes the float's own rounding put m * 2^-24 in the low bits, ties to even */
    float r = half_bits_f32(a) + 0.5f;
    return (uint16_t)(sign | (half_f32_bits(r) - 0x3f000000u));
  }
  uint32_t mant_odd = (a >> 13) & 1u;
  a += 0xc8000fffu + mant_odd;  /* rebias the exponent (-112 << 23) and round to nearest even */
  return (uint16_t)(sign | (a >> 13));
}

/* A double rounded to float32 "to odd", so a later rounding to 16 bits is exact. */
static inline float mg_f64_to_f32_odd(double d) {
  float f = (float)d;
  if ((double)f == d || d != d) return f;
  if (isinf(f)) f = f > 0 ? 3.4028234663852886e38f : -3.4028234663852886e38f;
  else if (fabs((double)f) > fabs(d)) f = nextafterf(f, 0.0f);
  return half_bits_f32(half_f32_bits(f) | 1u);
}

static inline uint16_t mg_f64_to_f16(double d) { return mg_f32_to_f16(mg_f64_to_f32_odd(d)); }
static inline uint16_t mg_f64_to_bf16(double d) { return mg_f32_to_bf16(mg_f64_to_f32_odd(d)); }

#endif
