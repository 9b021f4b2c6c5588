/*
 * ew_binary.c — the binary elementwise kernels (arithmetic, comparisons,
 * logical ops), where and clip.
 *
 * Infer has promoted and cast both inputs to one dtype, so each op is one
 * table of loops indexed by that dtype, stamped from one element expression
 * per type family (ew.h). Integer expressions pick their safe form per type
 * with _Generic: add/sub/mul wrap through the unsigned twin type, and
 * floordiv/mod/pow go through small helpers that define every case C leaves
 * undefined (x // 0 and x % 0 give 0, INT_MIN // -1 wraps to INT_MIN).
 * floordiv and mod follow Lua: floored, so mod takes the sign of the
 * divisor. Float ops call <tgmath.h> names, which pick the float or double
 * libm function. greater(a, b) runs less's loops on (b, a).
 */
#include "ew.h"
#include <tgmath.h>

static mg_status ew_binary_run(const mg_call *c, mg_tensor *out, const mg_loop_fn *table, int swap) {
  mg_dtype dt = (mg_dtype)c->in[0]->dtype;
  if (!table[dt] || c->in[1]->dtype != dt)  /* infer casts both: an engine bug */
    return mg_seterror(MG_EDTYPE, "%s: no kernel for %s and %s", c->info->name, mg_dtype_name(dt),
                       mg_dtype_name((mg_dtype)c->in[1]->dtype));
  mg_tensor *in[2] = {c->in[swap], c->in[!swap]};
  ew_run(out, in, 2, table[dt], NULL);
  return MG_OK;
}

#define TABLE_ALL(op)                                                        \
  {[MG_FLOAT32] = op##_f32, [MG_FLOAT64] = op##_f64, [MG_INT32] = op##_i32,  \
   [MG_INT64] = op##_i64,   [MG_UINT8] = op##_u8,    [MG_BOOL] = op##_b}
#define TABLE_NUM(op)                                                        \
  {[MG_FLOAT32] = op##_f32, [MG_FLOAT64] = op##_f64, [MG_INT32] = op##_i32,  \
   [MG_INT64] = op##_i64,   [MG_UINT8] = op##_u8}
#define TABLE_INT(op) {[MG_INT32] = op##_i32, [MG_INT64] = op##_i64, [MG_UINT8] = op##_u8}
#define TABLE_FLOAT(op) {[MG_FLOAT32] = op##_f32, [MG_FLOAT64] = op##_f64}
#define KERNEL(op, TABLE, swap)                                              \
  mg_status k_##op(const mg_call *c, mg_tensor *out) {                       \
    static const mg_loop_fn t[MG_NDTYPES] = TABLE;                           \
    return ew_binary_run(c, out, t, swap);                                   \
  }

/* Loops for the float dtypes, the integer dtypes and bool (as uint8 0/1;
 * any nonzero byte counts as true). */
#define BIN_F(op, TO32, TO64, E)                                             \
  EW_BINARY(op##_f32, float, TO32, E)                                        \
  EW_BINARY(op##_f64, double, TO64, E)
#define BIN_I(op, TO32, TO64, TO8, E)                                        \
  EW_BINARY(op##_i32, int32_t, TO32, E)                                      \
  EW_BINARY(op##_i64, int64_t, TO64, E)                                      \
  EW_BINARY(op##_u8, uint8_t, TO8, E)
#define BIN_B(op, E) EW_BINARY(op##_b, uint8_t, uint8_t, E)
#define BIN_NUM(op, EF, EI)                                                  \
  BIN_F(op, float, double, EF)                                               \
  BIN_I(op, int32_t, int64_t, uint8_t, EI)

/* Wrapping integer arithmetic (uint8 computes in int and is truncated). */
#define WRAP(a, OP, b)                                                       \
  _Generic((a), int32_t: (int32_t)((uint32_t)(a) OP (uint32_t)(b)),          \
           int64_t: (int64_t)((uint64_t)(a) OP (uint64_t)(b)),               \
           default: (a) OP (b))

/* ---- integer helpers ---------------------------------------------------------- */

/* Floored division and modulo, as Lua's // and % on integers (Lua raises on
 * a zero divisor; a kernel may not, so x // 0 == x % 0 == 0). */
#define SIGNED_DIVMOD(sfx, T, U)                                             \
  static inline T ew_binary_fdiv_##sfx(T a, T b) {                           \
    if (b == 0) return 0;                                                    \
    if (b == -1) return (T)((U)0 - (U)a); /* INT_MIN // -1 wraps */           \
    T q = (T)(a / b);                                                        \
    return (a % b != 0 && (a < 0) != (b < 0)) ? (T)(q - 1) : q;              \
  }                                                                          \
  static inline T ew_binary_mod_##sfx(T a, T b) {                            \
    if (b == 0 || b == -1) return 0;                                         \
    T m = (T)(a % b);                                                        \
    return (m != 0 && (m < 0) != (b < 0)) ? (T)(m + b) : m;                  \
  }                                                                          \
  /* Repeated squaring, wrapping; b < 0 gives 0 unless a is 1 or -1. */      \
  static inline T ew_binary_pow_##sfx(T a, T b) {                            \
    if (b < 0) return a == 1 ? 1 : a == -1 ? (b % 2 ? -1 : 1) : 0;           \
    U r = 1, x = (U)a;                                                       \
    for (; b; b /= 2) {                                                      \
      if (b % 2) r *= x;                                                     \
      x *= x;                                                                \
    }                                                                        \
    return (T)r;                                                             \
  }
SIGNED_DIVMOD(i32, int32_t, uint32_t)
SIGNED_DIVMOD(i64, int64_t, uint64_t)

static inline uint8_t ew_binary_fdiv_u8(uint8_t a, uint8_t b) { return b ? (uint8_t)(a / b) : 0; }
static inline uint8_t ew_binary_mod_u8(uint8_t a, uint8_t b) { return b ? (uint8_t)(a % b) : 0; }
static inline uint8_t ew_binary_pow_u8(uint8_t a, uint8_t b) {
  uint32_t r = 1, x = a;  /* mod 2^32 agrees with mod 2^8 */
  for (; b; b /= 2) {
    if (b % 2) r *= x;
    x *= x;
  }
  return (uint8_t)r;
}

#define INT_HELPER(name, a, b)                                               \
  _Generic((a), int32_t: ew_binary_##name##_i32, int64_t: ew_binary_##name##_i64, \
           uint8_t: ew_binary_##name##_u8)(a, b)

/* Lua's float modulo: fmod, moved into the divisor's sign (a % inf is a for
 * a >= 0 and inf for a < 0; x % 0 is NaN). */
static inline float ew_binary_fmodf(float a, float b) {
  float m = fmod(a, b);
  return (m > 0 ? b < 0 : (m < 0 && b > 0)) ? m + b : m;
}
static inline double ew_binary_fmod(double a, double b) {
  double m = fmod(a, b);
  return (m > 0 ? b < 0 : (m < 0 && b > 0)) ? m + b : m;
}
#define LUA_FMOD(a, b) _Generic((a), float: ew_binary_fmodf, double: ew_binary_fmod)(a, b)

/* ---- arithmetic --------------------------------------------------------------- */

/* Two bools: add and maximum are logical or, mul and minimum logical and
 * (bool in, bool out, like PyTorch and NumPy); infer refuses the rest. */
BIN_NUM(add, a + b, WRAP(a, +, b))
BIN_B(add, (a | b) != 0)
KERNEL(add, TABLE_ALL(add), 0)

BIN_NUM(sub, a - b, WRAP(a, -, b))
KERNEL(sub, TABLE_NUM(sub), 0)

BIN_NUM(mul, a * b, WRAP(a, *, b))
BIN_B(mul, (a != 0) & (b != 0))
KERNEL(mul, TABLE_ALL(mul), 0)

BIN_F(div, float, double, a / b)
KERNEL(div, TABLE_FLOAT(div), 0)

BIN_NUM(floordiv, _Generic((a), float: ew_floorf, double: ew_floor)(a / b), INT_HELPER(fdiv, a, b))
KERNEL(floordiv, TABLE_NUM(floordiv), 0)

BIN_NUM(mod, LUA_FMOD(a, b), INT_HELPER(mod, a, b))
KERNEL(mod, TABLE_NUM(mod), 0)

/* NaN wins in either position, as in NumPy's maximum. */
BIN_NUM(maximum, (a > b || a != a) ? a : b, a > b ? a : b)
BIN_B(maximum, (a | b) != 0)
KERNEL(maximum, TABLE_ALL(maximum), 0)

BIN_NUM(minimum, (a < b || a != a) ? a : b, a < b ? a : b)
BIN_B(minimum, (a != 0) & (b != 0))
KERNEL(minimum, TABLE_ALL(minimum), 0)

BIN_F(atan2, float, double, atan2(a, b))
KERNEL(atan2, TABLE_FLOAT(atan2), 0)

BIN_F(copysign, float, double, copysign(a, b))
KERNEL(copysign, TABLE_FLOAT(copysign), 0)

/* max(a, b) + log1p(e^-|a - b|); equal infinities (inf, inf) give inf, not
 * inf - inf = NaN; NaN in either gives NaN. */
static inline float ew_binary_logaddexpf(float a, float b) {
  float m = a > b ? a : b;
  if (a == b) return a + 0.69314718f;
  return m + log1pf(expf(-fabsf(a - b)));
}
static inline double ew_binary_logaddexp(double a, double b) {
  double m = a > b ? a : b;
  if (a == b) return a + 0.6931471805599453;
  return m + log1p(exp(-fabs(a - b)));
}
BIN_F(logaddexp, float, double, _Generic((a), float: ew_binary_logaddexpf, double: ew_binary_logaddexp)(a, b))
KERNEL(logaddexp, TABLE_FLOAT(logaddexp), 0)

/* C's fmod: the sign of the dividend. Integers: C's % (truncated), with
 * x fmod 0 == 0 and INT_MIN fmod -1 == 0 (C leaves both undefined). */
#define TRUNC_MOD(sfx, T)                                                    \
  static inline T ew_binary_tmod_##sfx(T a, T b) { return (b == 0 || b == -1) ? 0 : (T)(a % b); }
TRUNC_MOD(i32, int32_t)
TRUNC_MOD(i64, int64_t)
static inline uint8_t ew_binary_tmod_u8(uint8_t a, uint8_t b) { return b ? (uint8_t)(a % b) : 0; }
BIN_NUM(fmod, fmod(a, b), INT_HELPER(tmod, a, b))
KERNEL(fmod, TABLE_NUM(fmod), 0)

/* pow: x^2 with a scalar exponent (the common case: squared errors) is a
 * multiply, exact and vectorised, instead of a libm call per element. */
BIN_NUM(pow, pow(a, b), INT_HELPER(pow, a, b))
EW_UNARY(pow2_f32, float, float, x * x)
EW_UNARY(pow2_f64, double, double, x * x)
mg_status k_pow(const mg_call *c, mg_tensor *out) {
  static const mg_loop_fn t[MG_NDTYPES] = TABLE_NUM(pow);
  mg_tensor *e = c->in[1];
  if (mg_dtype_is_float((mg_dtype)e->dtype) && e->dtype == c->in[0]->dtype &&
      mg_tensor_numel(e) == 1 && mg_tensor_get_f64(e, 0) == 2.0) {
    ew_run(out, c->in, 1, e->dtype == MG_FLOAT32 ? pow2_f32 : pow2_f64, NULL);
    return MG_OK;
  }
  return ew_binary_run(c, out, t, 0);
}

/* ---- comparisons and logical ops (bool results) ------------------------------ */

#define CMP(op, E, EB)                                                       \
  BIN_F(op, uint8_t, uint8_t, E)                                             \
  BIN_I(op, uint8_t, uint8_t, uint8_t, E)                                    \
  BIN_B(op, EB)

CMP(equal, a == b, (a != 0) == (b != 0))
CMP(not_equal, a != b, (a != 0) != (b != 0))
CMP(less, a < b, (a != 0) < (b != 0))
CMP(less_equal, a <= b, (a != 0) <= (b != 0))
KERNEL(equal, TABLE_ALL(equal), 0)
KERNEL(not_equal, TABLE_ALL(not_equal), 0)
KERNEL(less, TABLE_ALL(less), 0)
KERNEL(less_equal, TABLE_ALL(less_equal), 0)
KERNEL(greater, TABLE_ALL(less), 1)
KERNEL(greater_equal, TABLE_ALL(less_equal), 1)

/* Infer casts both inputs to bool. */
BIN_B(logical_and, (a != 0) & (b != 0))
BIN_B(logical_or, (a | b) != 0)
BIN_B(logical_xor, (a != 0) != (b != 0))
KERNEL(logical_and, {[MG_BOOL] = logical_and_b}, 0)
KERNEL(logical_or, {[MG_BOOL] = logical_or_b}, 0)
KERNEL(logical_xor, {[MG_BOOL] = logical_xor_b}, 0)

/* ---- bitwise ops (infer allows integers and bools) ------------------------------ */

BIN_I(bitwise_and, int32_t, int64_t, uint8_t, a & b)
BIN_B(bitwise_and, (a != 0) & (b != 0))
BIN_I(bitwise_or, int32_t, int64_t, uint8_t, a | b)
BIN_B(bitwise_or, (a | b) != 0)
BIN_I(bitwise_xor, int32_t, int64_t, uint8_t, a ^ b)
BIN_B(bitwise_xor, (a != 0) != (b != 0))
#define TABLE_INT_B(op)                                                      \
  {[MG_INT32] = op##_i32, [MG_INT64] = op##_i64, [MG_UINT8] = op##_u8, [MG_BOOL] = op##_b}
KERNEL(bitwise_and, TABLE_INT_B(bitwise_and), 0)
KERNEL(bitwise_or, TABLE_INT_B(bitwise_or), 0)
KERNEL(bitwise_xor, TABLE_INT_B(bitwise_xor), 0)

/* Shifts as NumPy defines them: in the unsigned twin (no UB for negative a
 * or bits shifted out); a count outside [0, width) gives 0, or for a right
 * shift of a negative value -1 (the sign filled in all the way). */
#define SHIFTS(sfx, T, U, W)                                                 \
  static inline T ew_binary_shl_##sfx(T a, T b) {                            \
    return (b >= 0 && b < W) ? (T)((U)a << b) : 0;                           \
  }                                                                          \
  static inline T ew_binary_shr_##sfx(T a, T b) {                            \
    return (b >= 0 && b < W) ? (T)(a >> b) : (a < 0 ? (T)-1 : 0);            \
  }
SHIFTS(i32, int32_t, uint32_t, 32)
SHIFTS(i64, int64_t, uint64_t, 64)
static inline uint8_t ew_binary_shl_u8(uint8_t a, uint8_t b) { return b < 8 ? (uint8_t)(a << b) : 0; }
static inline uint8_t ew_binary_shr_u8(uint8_t a, uint8_t b) { return b < 8 ? (uint8_t)(a >> b) : 0; }
BIN_I(left_shift, int32_t, int64_t, uint8_t, INT_HELPER(shl, a, b))
BIN_I(right_shift, int32_t, int64_t, uint8_t, INT_HELPER(shr, a, b))
KERNEL(left_shift, TABLE_INT(left_shift), 0)
KERNEL(right_shift, TABLE_INT(right_shift), 0)

/* bitwise_not (unary; operands 0 and 1). */
EW_UNARY(bitwise_not_i32, int32_t, int32_t, ~x)
EW_UNARY(bitwise_not_i64, int64_t, int64_t, ~x)
EW_UNARY(bitwise_not_u8, uint8_t, uint8_t, ~x)
EW_UNARY(bitwise_not_b, uint8_t, uint8_t, x == 0)
mg_status k_bitwise_not(const mg_call *c, mg_tensor *out) {
  static const mg_loop_fn t[MG_NDTYPES] = TABLE_INT_B(bitwise_not);
  mg_dtype dt = (mg_dtype)c->in[0]->dtype;
  if (!t[dt]) return mg_seterror(MG_EDTYPE, "bitwise_not: no kernel for %s", mg_dtype_name(dt));
  ew_run(out, c->in, 1, t[dt], NULL);
  return MG_OK;
}

/* ---- where -------------------------------------------------------------------- */

/* out = cond ? a : b; operands 1..3 are cond (bool), a, b. Fast paths for
 * all contiguous and for a or b a scalar (where(mask, x, 0)). */
#define WHERE_LOOP(sfx, T)                                                   \
  static void where_##sfx(char **p, const int64_t *s, int64_t n, void *ud) {  \
    (void)ud;                                                                \
    const uint8_t *restrict m = (const uint8_t *)p[1];                       \
    int unit = s[0] == EW_SZ(T) && s[1] == 1;                                \
    if (unit && s[2] == EW_SZ(T) && s[3] == EW_SZ(T)) {                      \
      T *restrict o = (T *)p[0];                                             \
      const T *restrict a = (const T *)p[2], *restrict b = (const T *)p[3];  \
      EW_SIMD                                                                \
      for (int64_t i = 0; i < n; i++) o[i] = m[i] ? a[i] : b[i];             \
    } else if (unit && s[2] == EW_SZ(T) && s[3] == 0) {                      \
      T *restrict o = (T *)p[0];                                             \
      const T *restrict a = (const T *)p[2];                                 \
      const T b = *(const T *)p[3];                                          \
      EW_SIMD                                                                \
      for (int64_t i = 0; i < n; i++) o[i] = m[i] ? a[i] : b;                \
    } else if (unit && s[2] == 0 && s[3] == EW_SZ(T)) {                      \
      T *restrict o = (T *)p[0];                                             \
      const T a = *(const T *)p[2];                                          \
      const T *restrict b = (const T *)p[3];                                 \
      EW_SIMD                                                                \
      for (int64_t i = 0; i < n; i++) o[i] = m[i] ? a : b[i];                \
    } else {                                                                 \
      for (int64_t i = 0; i < n; i++)                                        \
        *(T *)(p[0] + i * s[0]) = p[1][i * s[1]] ? *(const T *)(p[2] + i * s[2]) \
                                                 : *(const T *)(p[3] + i * s[3]); \
    }                                                                        \
  }
WHERE_LOOP(f32, float)
WHERE_LOOP(f64, double)
WHERE_LOOP(i32, int32_t)
WHERE_LOOP(i64, int64_t)
WHERE_LOOP(u8, uint8_t)
WHERE_LOOP(b, uint8_t)

mg_status k_where(const mg_call *c, mg_tensor *out) {
  static const mg_loop_fn t[MG_NDTYPES] = TABLE_ALL(where);
  mg_dtype dt = (mg_dtype)out->dtype;
  if (c->in[0]->dtype != MG_BOOL || c->in[1]->dtype != dt || c->in[2]->dtype != dt)
    return mg_seterror(MG_EDTYPE, "where: no kernel for %s, %s, %s", mg_dtype_name((mg_dtype)c->in[0]->dtype),
                       mg_dtype_name((mg_dtype)c->in[1]->dtype), mg_dtype_name((mg_dtype)c->in[2]->dtype));
  ew_run(out, c->in, 3, t[dt], NULL);
  return MG_OK;
}

/* ---- clip --------------------------------------------------------------------- */

/* The bounds as infer checked them (absent = no bound). */
typedef struct clip_bounds {
  double lo, hi;
  int has_lo, has_hi;
} clip_bounds;

/* For integer x the bounds become the integers inside them (ceil of min,
 * floor of max), saturated to the dtype's range. */
static int64_t ew_binary_bound(double v, int up, int64_t tmin, int64_t tmax) {
  v = up ? ceil(v) : floor(v);
  return v != v ? 0 : v <= (double)tmin ? tmin : v >= (double)tmax ? tmax : (int64_t)v;
}

/* min(max(x, lo), hi): NaN stays NaN; with lo > hi (only possible for ints,
 * e.g. [0.2, 0.8]) every value becomes hi, like NumPy and PyTorch. */
#define CLAMP(x, lo, hi) ((x < lo ? lo : x) > hi ? hi : (x < lo ? lo : x))
#define CLIP_FLOAT(sfx, T)                                                   \
  EW_UNARY_PRE(clip_##sfx, T, T,                                             \
               const clip_bounds *cb = ud;                                   \
               const T lo = cb->has_lo ? (T)cb->lo : (T)-INFINITY;           \
               const T hi = cb->has_hi ? (T)cb->hi : (T)INFINITY,            \
               CLAMP(x, lo, hi))
#define CLIP_INT(sfx, T, TMIN, TMAX)                                         \
  EW_UNARY_PRE(clip_##sfx, T, T,                                             \
               const clip_bounds *cb = ud;                                   \
               const T lo = (T)(cb->has_lo ? ew_binary_bound(cb->lo, 1, TMIN, TMAX) : TMIN); \
               const T hi = (T)(cb->has_hi ? ew_binary_bound(cb->hi, 0, TMIN, TMAX) : TMAX), \
               CLAMP(x, lo, hi))
CLIP_FLOAT(f32, float)
CLIP_FLOAT(f64, double)
CLIP_INT(i32, int32_t, INT32_MIN, INT32_MAX)
CLIP_INT(i64, int64_t, INT64_MIN, INT64_MAX)
CLIP_INT(u8, uint8_t, 0, 255)

mg_status k_clip(const mg_call *c, mg_tensor *out) {
  static const mg_loop_fn t[MG_NDTYPES] = TABLE_NUM(clip);
  mg_dtype dt = (mg_dtype)c->in[0]->dtype;
  if (!t[dt]) return mg_seterror(MG_EDTYPE, "clip: no kernel for %s", mg_dtype_name(dt));
  clip_bounds cb = {A_F(c, 0), A_F(c, 1), A_N(c, 0) > 0, A_N(c, 1) > 0};
  ew_run(out, c->in, 1, t[dt], &cb);
  return MG_OK;
}
