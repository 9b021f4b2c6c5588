/*
 * elementwise.c — the unary elementwise kernels, dtype conversion (cast and
 * the loops mg_copy_into reuses), and ew_run_iter, the strided half of the
 * driver every elementwise kernel goes through (ew_run in ew.h). The binary
 * ops live in ew_binary.c.
 *
 * Each op is a table of inner loops indexed by dtype, stamped by the macros
 * of ew.h from one element expression per type. Infer has already cast the
 * input to a dtype the op accepts, so a missing table entry is an internal
 * error, never a user one. Ops that are the identity on integers or bools
 * (floor of an int, abs of a bool, ...) reuse the same-type copy loop.
 * Integer arithmetic wraps: it is done in the unsigned twin type, so there
 * is no signed-overflow UB (abs(INT32_MIN) == INT32_MIN, as in C and
 * PyTorch). Float-to-int conversion saturates and maps NaN to 0. float32
 * exp, log, tanh, sigmoid and softplus use the inline approximations of
 * ew.h (within ~2 ulp of libm), so their loops vectorise; the other
 * transcendental functions, and all float64 ones, call libm per element.
 */
#include "ew.h"

void ew_run_iter(mg_tensor *out, mg_tensor *const *in, int nin, mg_loop_fn loop, void *ud) {
  const mg_tensor *ops[MG_ITER_MAX];
  ops[0] = out;
  for (int i = 0; i < nin; i++) ops[i + 1] = in[i];
  mg_iter(nin + 1, ops, out->ndim, out->shape, loop, ud);
}

/* ---- conversions ---------------------------------------------------------- */

#define CAST_PLAIN(to, TO, from, TI) EW_UNARY(cast_##to##_##from, TI, TO, x)
#define CAST_BOOL(to, TO, from, TI) EW_UNARY(cast_##to##_##from, TI, TO, x != 0)
/* Float to integer: NaN -> 0, out of range -> the nearest limit, else truncate. */
#define CAST_SAT(to, TO, from, TI, LO, HI, TMIN, TMAX)                       \
  EW_UNARY(cast_##to##_##from, TI, TO,                                      \
           x != x ? (TO)0 : x <= (TI)(LO) ? (TO)(TMIN) : x >= (TI)(HI) ? (TO)(TMAX) : (TO)x)

#define CAST_TO_FLOAT(to, TO)                                               \
  CAST_PLAIN(to, TO, f32, float)                                            \
  CAST_PLAIN(to, TO, f64, double)                                           \
  CAST_PLAIN(to, TO, i32, int32_t)                                          \
  CAST_PLAIN(to, TO, i64, int64_t)                                          \
  CAST_PLAIN(to, TO, u8, uint8_t)                                           \
  CAST_BOOL(to, TO, b, uint8_t)
#define CAST_TO_INT(to, TO, LO, HI, TMIN, TMAX)                             \
  CAST_SAT(to, TO, f32, float, LO, HI, TMIN, TMAX)                          \
  CAST_SAT(to, TO, f64, double, LO, HI, TMIN, TMAX)                         \
  CAST_PLAIN(to, TO, i32, int32_t) /* int to int wraps, as in C and NumPy */ \
  CAST_PLAIN(to, TO, i64, int64_t)                                          \
  CAST_PLAIN(to, TO, u8, uint8_t)                                           \
  CAST_BOOL(to, TO, b, uint8_t)

CAST_TO_FLOAT(f32, float)
CAST_TO_FLOAT(f64, double)
CAST_TO_INT(i32, int32_t, -2147483648.0, 2147483648.0, INT32_MIN, INT32_MAX)
CAST_TO_INT(i64, int64_t, -9223372036854775808.0, 9223372036854775808.0, INT64_MIN, INT64_MAX)
CAST_TO_INT(u8, uint8_t, 0.0, 256.0, 0, 255)
CAST_BOOL(b, uint8_t, f32, float)  /* NaN != 0: true, as in PyTorch */
CAST_BOOL(b, uint8_t, f64, double)
CAST_BOOL(b, uint8_t, i32, int32_t)
CAST_BOOL(b, uint8_t, i64, int64_t)
CAST_BOOL(b, uint8_t, u8, uint8_t)
CAST_BOOL(b, uint8_t, b, uint8_t)

#define CAST_ROW(to)                                                        \
  {[MG_FLOAT32] = cast_##to##_f32, [MG_FLOAT64] = cast_##to##_f64,          \
   [MG_INT32] = cast_##to##_i32,   [MG_INT64] = cast_##to##_i64,            \
   [MG_UINT8] = cast_##to##_u8,    [MG_BOOL] = cast_##to##_b}
static const mg_loop_fn cast_loops[MG_NDTYPES][MG_NDTYPES] = {
    [MG_FLOAT32] = CAST_ROW(f32), [MG_FLOAT64] = CAST_ROW(f64), [MG_INT32] = CAST_ROW(i32),
    [MG_INT64] = CAST_ROW(i64),   [MG_UINT8] = CAST_ROW(u8),    [MG_BOOL] = CAST_ROW(b),
};

mg_loop_fn ew_cast_loop(mg_dtype to, mg_dtype from) {
  if ((unsigned)to >= MG_NDTYPES || (unsigned)from >= MG_NDTYPES) return NULL;
  if (mg_dtype_is_storage(to) || mg_dtype_is_storage(from)) return ew_cast_loop_storage(to, from);
  return cast_loops[to][from];
}

mg_status k_cast(const mg_call *c, mg_tensor *out) {
  mg_loop_fn f = ew_cast_loop((mg_dtype)out->dtype, (mg_dtype)c->in[0]->dtype);
  if (!f) return mg_seterror(MG_EDTYPE, "cast: unknown dtype");
  ew_run(out, c->in, 1, f, NULL);
  return MG_OK;
}

/* ---- element helpers ------------------------------------------------------ */

/* 1 / (1 + e^-x) from e = e^-|x|, which never overflows: for x < 0 the
 * value is e / (1 + e). Branch-free, so the float32 loop vectorises. */
static inline float elementwise_sigmoidf(float x) {
  float e = ew_expf(-fabsf(x)), r = 1.0f / (1.0f + e);
  return x >= 0.0f ? r : e * r;
}
static inline double elementwise_sigmoid(double x) {
  double e = exp(-fabs(x)), r = 1.0 / (1.0 + e);
  return x >= 0.0 ? r : e * r;
}
/* log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large x. The
 * float32 log1p(e), e in [0, 1], is log(u) * e / (u - 1) with u = 1 + e
 * (exact where u rounds to 1), which keeps the loop vectorisable. */
static inline float elementwise_softplusf(float x) {
  float e = ew_expf(-fabsf(x)), u = 1.0f + e;
  float l = u == 1.0f ? e : ew_logf(u) * (e / (u - 1.0f));
  return (x > 0.0f ? x : 0.0f) + l;
}
static inline double elementwise_softplus(double x) {
  return (x > 0.0 ? x : 0.0) + log1p(exp(-fabs(x)));
}

/* ---- unary tables --------------------------------------------------------- */

#define UN_FLOAT(op, EF, ED)                                                \
  EW_UNARY(op##_f32, float, float, EF)                                      \
  EW_UNARY(op##_f64, double, double, ED)
#define UN_INT(op, E32, E64, E8)                                            \
  EW_UNARY(op##_i32, int32_t, int32_t, E32)                                 \
  EW_UNARY(op##_i64, int64_t, int64_t, E64)                                 \
  EW_UNARY(op##_u8, uint8_t, uint8_t, E8)

static mg_status elementwise_unary(const mg_call *c, mg_tensor *out, const mg_loop_fn *table) {
  mg_dtype dt = (mg_dtype)c->in[0]->dtype;
  if (!table[dt])  /* infer should have cast or refused: an engine bug */
    return mg_seterror(MG_EDTYPE, "%s: no kernel for %s", c->info->name, mg_dtype_name(dt));
  ew_run(out, c->in, 1, table[dt], NULL);
  return MG_OK;
}

/* Kernels over floats only (infer casts ints and bools to float32). */
#define FLOAT_KERNEL(op, EF, ED)                                            \
  UN_FLOAT(op, EF, ED)                                                      \
  mg_status k_##op(const mg_call *c, mg_tensor *out) {                      \
    static const mg_loop_fn t[MG_NDTYPES] = {[MG_FLOAT32] = op##_f32,       \
                                             [MG_FLOAT64] = op##_f64};      \
    return elementwise_unary(c, out, t);                                    \
  }
/* Kernels over every numeric dtype; B is the bool loop (NULL: refused). */
#define NUM_KERNEL(op, I32, I64, U8, B)                                     \
  mg_status k_##op(const mg_call *c, mg_tensor *out) {                      \
    static const mg_loop_fn t[MG_NDTYPES] = {                               \
        [MG_FLOAT32] = op##_f32, [MG_FLOAT64] = op##_f64, [MG_INT32] = I32, \
        [MG_INT64] = I64,        [MG_UINT8] = U8,         [MG_BOOL] = B};   \
    return elementwise_unary(c, out, t);                                    \
  }

FLOAT_KERNEL(exp, ew_expf(x), exp(x))
FLOAT_KERNEL(expm1, expm1f(x), expm1(x))
FLOAT_KERNEL(log, ew_logf(x), log(x))
FLOAT_KERNEL(log1p, log1pf(x), log1p(x))
FLOAT_KERNEL(sqrt, sqrtf(x), sqrt(x))
FLOAT_KERNEL(rsqrt, 1.0f / sqrtf(x), 1.0 / sqrt(x))
FLOAT_KERNEL(sin, sinf(x), sin(x))
FLOAT_KERNEL(cos, cosf(x), cos(x))
FLOAT_KERNEL(tanh, ew_tanhf(x), tanh(x))
FLOAT_KERNEL(sigmoid, elementwise_sigmoidf(x), elementwise_sigmoid(x))
FLOAT_KERNEL(softplus, elementwise_softplusf(x), elementwise_softplus(x))
FLOAT_KERNEL(erf, erff(x), erf(x))

/* Issue 17's float functions: libm per element (float32 through the float
 * functions, so each keeps float32's own accuracy). */
FLOAT_KERNEL(tan, tanf(x), tan(x))
FLOAT_KERNEL(asin, asinf(x), asin(x))
FLOAT_KERNEL(acos, acosf(x), acos(x))
FLOAT_KERNEL(atan, atanf(x), atan(x))
FLOAT_KERNEL(sinh, sinhf(x), sinh(x))
FLOAT_KERNEL(cosh, coshf(x), cosh(x))
FLOAT_KERNEL(asinh, asinhf(x), asinh(x))
FLOAT_KERNEL(acosh, acoshf(x), acosh(x))
FLOAT_KERNEL(atanh, atanhf(x), atanh(x))
FLOAT_KERNEL(log2, log2f(x), log2(x))
FLOAT_KERNEL(log10, log10f(x), log10(x))
FLOAT_KERNEL(exp2, exp2f(x), exp2(x))
FLOAT_KERNEL(reciprocal, 1.0f / x, 1.0 / x)
/* log(sigmoid(x)) = -softplus(-x): the stable softplus, mirrored. */
FLOAT_KERNEL(log_sigmoid, -elementwise_softplusf(-x), -elementwise_softplus(-x))

/* neg: bool is refused by infer (use logical_not); uint8 wraps like C. */
UN_FLOAT(neg, -x, -x)
UN_INT(neg, (int32_t)(0u - (uint32_t)x), (int64_t)(0u - (uint64_t)x), -x)
NUM_KERNEL(neg, neg_i32, neg_i64, neg_u8, NULL)

UN_FLOAT(abs, fabsf(x), fabs(x))
UN_INT(abs, x < 0 ? (int32_t)(0u - (uint32_t)x) : x, x < 0 ? (int64_t)(0u - (uint64_t)x) : x, x)
NUM_KERNEL(abs, abs_i32, abs_i64, abs_u8, cast_b_b)

/* sign keeps zeros (and their sign) and NaN as they are. */
UN_FLOAT(sign, x > 0.0f ? 1.0f : x < 0.0f ? -1.0f : x, x > 0.0 ? 1.0 : x < 0.0 ? -1.0 : x)
UN_INT(sign, (x > 0) - (x < 0), (x > 0) - (x < 0), x != 0)
NUM_KERNEL(sign, sign_i32, sign_i64, sign_u8, cast_b_b)

UN_FLOAT(square, x * x, x * x)
UN_INT(square, (int32_t)((uint32_t)x * (uint32_t)x), (int64_t)((uint64_t)x * (uint64_t)x), x * x)
NUM_KERNEL(square, square_i32, square_i64, square_u8, cast_b_b)

/* relu(NaN) is NaN, as in PyTorch. */
UN_FLOAT(relu, x < 0.0f ? 0.0f : x, x < 0.0 ? 0.0 : x)
UN_INT(relu, x < 0 ? 0 : x, x < 0 ? 0 : x, x)
NUM_KERNEL(relu, relu_i32, relu_i64, relu_u8, cast_b_b)

/* Rounding is the identity on integers and bools. nearbyint rounds halves
 * to even under the default rounding mode, like NumPy's round. */
UN_FLOAT(floor, ew_floorf(x), ew_floor(x))
NUM_KERNEL(floor, cast_i32_i32, cast_i64_i64, cast_u8_u8, cast_b_b)
UN_FLOAT(ceil, ew_ceilf(x), ew_ceil(x))
NUM_KERNEL(ceil, cast_i32_i32, cast_i64_i64, cast_u8_u8, cast_b_b)
UN_FLOAT(round, nearbyintf(x), nearbyint(x))
NUM_KERNEL(round, cast_i32_i32, cast_i64_i64, cast_u8_u8, cast_b_b)

/* ---- activations with a parameter ------------------------------------------ */

/* A float kernel whose expression reads `al`, the op's float attribute 0
 * (alpha), passed to the loop through ud. */
#define ALPHA_KERNEL(op, EF, ED)                                            \
  EW_UNARY_PRE(op##_f32, float, float, const float al = (float)*(const double *)ud, EF) \
  EW_UNARY_PRE(op##_f64, double, double, const double al = *(const double *)ud, ED) \
  mg_status k_##op(const mg_call *c, mg_tensor *out) {                      \
    static const mg_loop_fn t[MG_NDTYPES] = {[MG_FLOAT32] = op##_f32,       \
                                             [MG_FLOAT64] = op##_f64};      \
    mg_dtype dt = (mg_dtype)c->in[0]->dtype;                                \
    if (!t[dt]) return mg_seterror(MG_EDTYPE, "%s: no kernel for %s", c->info->name, mg_dtype_name(dt)); \
    double alpha = A_F(c, 0);                                               \
    ew_run(out, c->in, 1, t[dt], &alpha);                                   \
    return MG_OK;                                                           \
  }
/* NaN goes through the else branch of x > 0 and stays NaN in each. */
ALPHA_KERNEL(elu, x > 0.0f ? x : al * expm1f(x), x > 0.0 ? x : al * expm1(x))
ALPHA_KERNEL(celu, x > 0.0f ? x : al * expm1f(x / al), x > 0.0 ? x : al * expm1(x / al))
ALPHA_KERNEL(leaky_relu, x > 0.0f ? x : al * x, x > 0.0 ? x : al * x)

/* gelu: exact x Phi(x) = x/2 (1 + erf(x / sqrt 2)), or (approximate = 1)
 * the tanh form; the flag (bool attribute 0) arrives through ud. Where the
 * factor Phi rounds to 0 the result is 0 (so gelu(-inf) is its limit 0, not
 * -inf * 0 = NaN). */
#define GELU_C 0.7978845608028654   /* sqrt(2/pi) */
static inline float elementwise_x_timesf(float x, float c) { return c == 0.0f ? 0.0f : x * c; }
static inline double elementwise_x_times(double x, double c) { return c == 0.0 ? 0.0 : x * c; }
EW_UNARY_PRE(gelu_f32, float, float, const int approx = *(const int *)ud,
             elementwise_x_timesf(x, approx ? 0.5f * (1.0f + ew_tanhf((float)GELU_C * (x + 0.044715f * x * x * x)))
                                            : 0.5f * (1.0f + erff(x * 0.70710678f))))
EW_UNARY_PRE(gelu_f64, double, double, const int approx = *(const int *)ud,
             elementwise_x_times(x, approx ? 0.5 * (1.0 + tanh(GELU_C * (x + 0.044715 * x * x * x)))
                                           : 0.5 * (1.0 + erf(x * 0.7071067811865476))))
mg_status k_gelu(const mg_call *c, mg_tensor *out) {
  static const mg_loop_fn t[MG_NDTYPES] = {[MG_FLOAT32] = gelu_f32, [MG_FLOAT64] = gelu_f64};
  mg_dtype dt = (mg_dtype)c->in[0]->dtype;
  if (!t[dt]) return mg_seterror(MG_EDTYPE, "gelu: no kernel for %s", mg_dtype_name(dt));
  int approx = A_I(c, 0) != 0;
  ew_run(out, c->in, 1, t[dt], &approx);
  return MG_OK;
}

/* relu6(x + 3) / 6, and x times it, piece by piece (hard_swish(-inf) is 0,
 * not -inf * 0; NaN stays NaN: the comparisons are false). */
#define HSIG(x, T) ((x) <= (T)-3 ? (T)0 : (x) >= (T)3 ? (T)1 : (x) * (T)(1.0 / 6) + (T)0.5)
#define HSWISH(x, T) ((x) <= (T)-3 ? (T)0 : (x) >= (T)3 ? (x) : (x) * ((x) * (T)(1.0 / 6) + (T)0.5))
FLOAT_KERNEL(hard_sigmoid, HSIG(x, float), HSIG(x, double))
FLOAT_KERNEL(hard_swish, HSWISH(x, float), HSWISH(x, double))

/* trunc: toward zero (keeps -0.0 and NaN); the identity on integers. */
UN_FLOAT(trunc, x < 0.0f ? ew_ceilf(x) : ew_floorf(x), x < 0.0 ? ew_ceil(x) : ew_floor(x))
NUM_KERNEL(trunc, cast_i32_i32, cast_i64_i64, cast_u8_u8, cast_b_b)

/* isnan, isinf, isfinite: infer keeps the input's dtype; integers and bools
 * are never NaN or infinite. */
#define FLOAT_TEST(op, EF, ED, INT_VALUE)                                   \
  EW_UNARY(op##_f32, float, uint8_t, EF)                                    \
  EW_UNARY(op##_f64, double, uint8_t, ED)                                   \
  EW_UNARY(op##_i32, int32_t, uint8_t, ((void)x, INT_VALUE))                \
  EW_UNARY(op##_i64, int64_t, uint8_t, ((void)x, INT_VALUE))                \
  EW_UNARY(op##_u8, uint8_t, uint8_t, ((void)x, INT_VALUE))                 \
  mg_status k_##op(const mg_call *c, mg_tensor *out) {                      \
    static const mg_loop_fn t[MG_NDTYPES] = {                               \
        [MG_FLOAT32] = op##_f32, [MG_FLOAT64] = op##_f64, [MG_INT32] = op##_i32, \
        [MG_INT64] = op##_i64,   [MG_UINT8] = op##_u8,    [MG_BOOL] = op##_u8}; \
    return elementwise_unary(c, out, t);                                    \
  }
FLOAT_TEST(isnan, x != x, x != x, 0)
FLOAT_TEST(isinf, fabsf(x) == INFINITY, fabs(x) == INFINITY, 0)
FLOAT_TEST(isfinite, fabsf(x) < INFINITY, fabs(x) < INFINITY, 1)

/* logical_not: infer casts the input to bool. */
EW_UNARY(logical_not_b, uint8_t, uint8_t, x == 0)
mg_status k_logical_not(const mg_call *c, mg_tensor *out) {
  static const mg_loop_fn t[MG_NDTYPES] = {[MG_BOOL] = logical_not_b};
  return elementwise_unary(c, out, t);
}
