/*
 * infer_ew.c — shape and dtype inference for the elementwise ops.
 *
 * Every infer here picks one compute dtype, asks mg_apply to cast the inputs
 * to it (so kernels see a single dtype) and broadcasts the shapes. The
 * compute dtype comes from mg_promote_inputs (NumPy/PyTorch promotion with
 * weak Lua scalars), then each family adjusts it:
 *   unary_num     keeps it;                unary_float  ints/bool -> float32;
 *   binary        keeps it;                div, atan2   ints/bool -> float32;
 *   compare       keeps it, output bool;   logical      inputs -> bool;
 *   where         cond -> bool, a/b promoted;  clip     x's dtype.
 *
 * Bools, after PyTorch and NumPy: add and maximum of two bools are logical
 * or, mul and minimum logical and, and stay bool. neg and sub of bools are
 * errors pointing at logical_not / logical_xor; floordiv, mod and pow of two
 * bools are errors (cast first). abs, sign, relu, square, floor, ceil and
 * round map {false, true} onto itself, so on a bool they are the identity
 * and stay bool. clip refuses bools. A bool meeting a number promotes to
 * the number's dtype (bool_tensor + 1 is int64).
 */
#include "internal.h"
#include <math.h>
#include <stdio.h>

static mg_status infer_ew_same_shape(const mg_tensor *x, mg_meta *out) {
  out->ndim = x->ndim;
  if (x->ndim) memcpy(out->shape, x->shape, (size_t)x->ndim * sizeof(int64_t));
  return MG_OK;
}

static mg_status infer_ew_bcast2(const mg_call *c, mg_meta *out) {
  const mg_tensor *a = c->in[0], *b = c->in[1];
  return mg_broadcast_shapes(c->info->name, a->ndim, a->shape, b->ndim, b->shape, &out->ndim, out->shape);
}

static const char *infer_ew_dt(const mg_tensor *t) { return mg_dtype_name((mg_dtype)t->dtype); }

/* ---- unary ---------------------------------------------------------------- */

mg_status infer_unary_num(const mg_call *c, mg_meta *out) {
  mg_dtype dt = mg_promote_inputs(c->in, 1);
  if (dt == MG_BOOL && c->op == MG_OP_NEG)
    return mg_seterror(MG_EDTYPE, "neg: negation of a bool tensor is not supported; use logical_not");
  out->dtype = out->cast[0] = dt;
  return infer_ew_same_shape(c->in[0], out);
}

mg_status infer_unary_float(const mg_call *c, mg_meta *out) {
  mg_dtype dt = mg_promote_inputs(c->in, 1);
  if (!mg_dtype_is_float(dt)) dt = MG_FLOAT32;
  out->dtype = out->cast[0] = dt;
  return infer_ew_same_shape(c->in[0], out);
}

/* isnan, isinf, isfinite: the input as it is (integers have a kernel that
 * answers at once), a bool result. */
mg_status infer_isfloat_test(const mg_call *c, mg_meta *out) {
  out->dtype = MG_BOOL;
  out->cast[0] = mg_promote_inputs(c->in, 1);
  return infer_ew_same_shape(c->in[0], out);
}

/* elu, celu, leaky_relu, gelu, hard_sigmoid, hard_swish: float functions
 * (integer inputs give float32) with a checked alpha (attribute 0). */
mg_status infer_activation(const mg_call *c, mg_meta *out) {
  if (c->op == MG_OP_ELU || c->op == MG_OP_CELU || c->op == MG_OP_LEAKY_RELU) {
    double alpha = A_F(c, 0);
    if (!isfinite(alpha)) return mg_seterror(MG_EARG, "%s: alpha must be a finite number, got %g", c->info->name, alpha);
    if (c->op == MG_OP_CELU && alpha == 0)
      return mg_seterror(MG_EARG, "celu: alpha must not be 0 (the negative branch divides by it)");
  }
  return infer_unary_float(c, out);
}

mg_status infer_cast(const mg_call *c, mg_meta *out) {
  if (A_N(c, 0) == 0) return mg_seterror(MG_EARG, "cast: the dtype argument is required");
  int64_t dt = A_I(c, 0);
  if (dt < 0 || dt >= MG_NDTYPES) return mg_seterror(MG_EDTYPE, "cast: unknown dtype %lld", (long long)dt);
  out->dtype = (mg_dtype)dt;
  out->cast[0] = MG_NDTYPES;  /* the kernel converts: no cast before it (that would recurse) */
  return infer_ew_same_shape(c->in[0], out);
}

mg_status infer_same(const mg_call *c, mg_meta *out) {
  out->dtype = (mg_dtype)c->in[0]->dtype;
  out->cast[0] = MG_NDTYPES;
  return infer_ew_same_shape(c->in[0], out);
}

/* logical_not (one input) and logical_and/or/xor (two): all inputs as bool. */
mg_status infer_logical(const mg_call *c, mg_meta *out) {
  out->dtype = MG_BOOL;
  for (int i = 0; i < c->nin && i < MG_CAST_SLOTS; i++) out->cast[i] = MG_BOOL;
  return c->nin == 1 ? infer_ew_same_shape(c->in[0], out) : infer_ew_bcast2(c, out);
}

/* ---- binary --------------------------------------------------------------- */

mg_status infer_binary(const mg_call *c, mg_meta *out) {
  mg_dtype dt = mg_promote_inputs(c->in, 2);
  if (dt == MG_BOOL) {
    if (c->op == MG_OP_SUB)
      return mg_seterror(MG_EDTYPE, "sub: subtraction of two bool tensors is not supported; use logical_xor");
    if (c->op == MG_OP_FLOORDIV || c->op == MG_OP_MOD || c->op == MG_OP_POW || c->op == MG_OP_FMOD)
      return mg_seterror(MG_EDTYPE, "%s: not supported for two bool tensors (bool, bool); cast to an integer dtype first",
                         c->info->name);
  }
  out->dtype = out->cast[0] = out->cast[1] = dt;
  return infer_ew_bcast2(c, out);
}

/* div and atan2: true division of integers gives float32. */
mg_status infer_div(const mg_call *c, mg_meta *out) {
  mg_dtype dt = mg_promote_inputs(c->in, 2);
  if (!mg_dtype_is_float(dt)) dt = MG_FLOAT32;
  out->dtype = out->cast[0] = out->cast[1] = dt;
  return infer_ew_bcast2(c, out);
}

mg_status infer_binary_float(const mg_call *c, mg_meta *out) { return infer_div(c, out); }

/* 1 if the integer v is a value of dtype dt. */
static int infer_ew_fits(int64_t v, mg_dtype dt) {
  switch (dt) {
  case MG_UINT8: return v >= 0 && v <= 255;
  case MG_INT32: return v >= INT32_MIN && v <= INT32_MAX;
  default: return 1;
  }
}

/* Comparisons run in the promoted dtype, except that a weak integer scalar
 * the promoted dtype cannot hold (uint8_tensor < -1, int32 == 2^40) would
 * wrap when cast, so those compare in int64 and give the true answer. */
mg_status infer_compare(const mg_call *c, mg_meta *out) {
  mg_dtype dt = mg_promote_inputs(c->in, 2);
  if (mg_dtype_is_int(dt))
    for (int i = 0; i < 2; i++) {
      const mg_tensor *t = c->in[i];
      if ((t->flags & MG_TF_WEAK) && t->dtype == MG_INT64 && !infer_ew_fits(mg_tensor_get_i64(t, 0), dt))
        dt = MG_INT64;
    }
  out->dtype = MG_BOOL;
  out->cast[0] = out->cast[1] = dt;
  return infer_ew_bcast2(c, out);
}

/* Bitwise ops: integer or bool tensors, promoted as the arithmetic ops
 * (int_tensor & 3 keeps the tensor's dtype); floats are refused, as in
 * NumPy and TF, and so are bools for the shifts. */
mg_status infer_bitwise(const mg_call *c, mg_meta *out) {
  mg_dtype dt = mg_promote_inputs(c->in, c->nin);
  int shift = c->op == MG_OP_LEFT_SHIFT || c->op == MG_OP_RIGHT_SHIFT;
  if (mg_dtype_is_float(dt) || (shift && dt == MG_BOOL)) {
    if (c->nin == 1)
      return mg_seterror(MG_EDTYPE, "%s: x is %s; bitwise ops take integer or bool tensors (cast first)",
                         c->info->name, infer_ew_dt(c->in[0]));
    char d[2][48];
    for (int i = 0; i < 2; i++) {  /* a weak scalar is a Lua number: name its value, not its carrier dtype */
      const mg_tensor *t = c->in[i];
      if (t->flags & MG_TF_WEAK) snprintf(d[i], sizeof d[i], "the number %.17g", mg_tensor_get_f64(t, 0));
      else snprintf(d[i], sizeof d[i], "%s", infer_ew_dt(t));
    }
    return mg_seterror(MG_EDTYPE, "%s: not supported for %s and %s (promoted to %s); %s take integer%s tensors (cast first)",
                       c->info->name, d[0], d[1], mg_dtype_name(dt),
                       shift ? "shifts" : "bitwise ops", shift ? "" : " or bool");
  }
  out->dtype = dt;
  for (int i = 0; i < c->nin; i++) out->cast[i] = dt;
  return c->nin == 1 ? infer_ew_same_shape(c->in[0], out) : infer_ew_bcast2(c, out);
}

/* ---- where, clip ---------------------------------------------------------- */

mg_status infer_where(const mg_call *c, mg_meta *out) {
  mg_tensor *const *in = c->in;
  mg_dtype dt = mg_promote_inputs(in + 1, 2);
  int n;
  int64_t ab[MG_MAX_DIMS];
  if (mg_broadcast_shapes("where", in[1]->ndim, in[1]->shape, in[2]->ndim, in[2]->shape, &n, ab) ||
      mg_broadcast_shapes("where", in[0]->ndim, in[0]->shape, n, ab, &out->ndim, out->shape)) {
    char s0[MG_SHAPE_BUF], s1[MG_SHAPE_BUF], s2[MG_SHAPE_BUF];
    return mg_seterror(MG_ESHAPE, "where: shapes %s (cond), %s (a) and %s (b) cannot be broadcast together",
                       mg_shape_str(in[0]->ndim, in[0]->shape, s0, sizeof s0),
                       mg_shape_str(in[1]->ndim, in[1]->shape, s1, sizeof s1),
                       mg_shape_str(in[2]->ndim, in[2]->shape, s2, sizeof s2));
  }
  out->dtype = dt;
  out->cast[0] = MG_BOOL;
  out->cast[1] = out->cast[2] = dt;
  return MG_OK;
}

/* clip(x, min, max): attributes 0 and 1, either may be absent (n == 0).
 * Integer x keeps its dtype: the bounds act as the integers inside them. */
mg_status infer_clip(const mg_call *c, mg_meta *out) {
  mg_dtype dt = mg_promote_inputs(c->in, 1);
  int has_lo = A_N(c, 0) > 0, has_hi = A_N(c, 1) > 0;
  double lo = A_F(c, 0), hi = A_F(c, 1);
  if (dt == MG_BOOL) return mg_seterror(MG_EDTYPE, "clip: x is %s; bool tensors cannot be clipped", infer_ew_dt(c->in[0]));
  if ((has_lo && isnan(lo)) || (has_hi && isnan(hi)))
    return mg_seterror(MG_EARG, "clip: %s is NaN", has_lo && isnan(lo) ? "min" : "max");
  if (has_lo && has_hi && lo > hi) return mg_seterror(MG_EARG, "clip: min (%g) is greater than max (%g)", lo, hi);
  if (mg_dtype_is_int(dt)) {
    /* a bound past the dtype's range on the side that does nothing (max 300
     * for uint8) leaves x as it is, exactly; past the other side every
     * element would become a value the dtype cannot hold */
    double top = dt == MG_UINT8 ? 255.0 : dt == MG_INT32 ? 2147483647.0 : 9223372036854775807.0;
    double bottom = dt == MG_UINT8 ? 0.0 : dt == MG_INT32 ? -2147483648.0 : -9223372036854775808.0;
    if ((has_lo && ceil(lo) > top) || (has_hi && floor(hi) < bottom))
      return mg_seterror(MG_EARG, "clip: %s %.17g is out of bounds for %s (%.0f..%.0f): the result would not fit; "
                         "cast x to a wider dtype first", has_lo && ceil(lo) > top ? "min" : "max",
                         has_lo && ceil(lo) > top ? lo : hi, mg_dtype_name(dt), bottom, top);
  }
  out->dtype = out->cast[0] = dt;
  return infer_ew_same_shape(c->in[0], out);
}
