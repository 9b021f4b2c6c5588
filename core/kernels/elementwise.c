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

/* logical_not: infer casts the input to bool. */
EW_UNARY(logical_not_b, uint8_t, uint8_t, x == 0)
mg_status k_logical_not(const mg_call *c, mg_tensor *out) {
  static const mg_loop_fn t[MG_NDTYPES] = {[MG_BOOL] = logical_not_b};
  return elementwise_unary(c, out, t);
}
