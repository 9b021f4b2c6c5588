/*
 * infer_reduce.c — shape and dtype inference for reductions, softmax and
 * matmul.
 *
 * Reductions share one helper: the "axis" attribute (kind axes: a list, or
 * absent for all axes; an empty list reduces nothing, as NumPy's axis=())
 * becomes a bit mask of reduced dimensions, and the
 * output shape drops them (or keeps them as size 1 with keepdims). The
 * kernels read their input in its own dtype wherever they can (a sum of
 * int32 accumulates in int64 without a cast copy); only the float-valued
 * reductions of integers (mean, logsumexp, variance) ask for a float64 cast,
 * so an int64 mean keeps its precision and still returns float32.
 *
 * matmul follows NumPy: 1-d operands are promoted to matrices (a row vector
 * on the left, a column vector on the right) and the added dimension is
 * removed again, batch dimensions broadcast, dtypes promote. Two bool
 * operands are rejected (a bool product has no useful meaning here; cast
 * first), and 0-d operands are rejected as NumPy does.
 */
#include "internal.h"

/* Mask of the axes named by attribute slot 0 (all of them when absent, none
 * for an empty list). */
static mg_status reduce_mask(const mg_call *c, const mg_tensor *x, unsigned *mask) {
  int n = A_N(c, 0);
  *mask = 0;
  if (A_ALL_AXES(c, 0)) {
    *mask = x->ndim ? (1u << x->ndim) - 1 : 0;
    return MG_OK;
  }
  for (int i = 0; i < n; i++) {
    int a;
    mg_status st = mg_norm_axis(c, "axis", A_LIST(c, 0)[i], x->ndim, &a);
    if (st) return st;
    if (*mask & (1u << a))
      return mg_seterror(MG_EARG, "%s: axis %lld is given twice", c->info->name,
                         (long long)A_LIST(c, 0)[i]);
    *mask |= 1u << a;
  }
  return MG_OK;
}

/* The output shape of reducing the masked axes, keeping them as 1s when
 * keepdims (attribute slot 1) is set. */
static void reduce_out_shape(const mg_call *c, const mg_tensor *x, unsigned mask, mg_meta *out) {
  int keep = A_I(c, 1) != 0, n = 0;
  for (int d = 0; d < x->ndim; d++) {
    if (!(mask & (1u << d))) out->shape[n++] = x->shape[d];
    else if (keep) out->shape[n++] = 1;
  }
  out->ndim = n;
}

/* The dtype the input counts as: its own, or float32/int64 for a weak Lua
 * scalar (which is stored as float64/int64); a cast is requested if needed. */
static mg_dtype reduce_in_dtype(const mg_call *c, mg_meta *out) {
  mg_dtype dt = mg_promote_inputs(c->in, 1);
  if (dt != (mg_dtype)c->in[0]->dtype) out->cast[0] = dt;
  return dt;
}

static mg_status reduce_common(const mg_call *c, mg_meta *out, unsigned *mask) {
  const mg_tensor *x = c->in[0];
  mg_status st = reduce_mask(c, x, mask);
  if (st) return st;
  reduce_out_shape(c, x, *mask, out);
  return MG_OK;
}

/* An error when a reduction without identity would reduce nothing into a
 * non-empty output (NumPy's "zero-size array to reduction operation"). */
static mg_status reduce_nonempty(const mg_call *c, unsigned mask, const mg_meta *out) {
  const mg_tensor *x = c->in[0];
  int64_t nred = 1, nout = 1;
  for (int d = 0; d < x->ndim; d++)
    if (mask & (1u << d)) nred *= x->shape[d];
  for (int d = 0; d < out->ndim; d++) nout *= out->shape[d];
  if (nred == 0 && nout != 0) {
    char sb[MG_SHAPE_BUF];
    return mg_seterror(MG_ESHAPE, "%s: cannot reduce over an empty axis (input shape %s); the op has no identity",
                       c->info->name, mg_shape_str(x->ndim, x->shape, sb, sizeof sb));
  }
  return MG_OK;
}

/* sum{dtype=} and mean{dtype=} (slot 2): the dtype to accumulate in and
 * return (NumPy's dtype argument): x is cast to it before the kernel, so a
 * bfloat16 x summed with dtype=float32 gives the float32 sum of its values. */
static mg_status reduce_dtype_attr(const mg_call *c, mg_meta *out) {
  if (A_N(c, 2) == 0) return MG_OK;
  mg_dtype want = (mg_dtype)A_I(c, 2);
  if (c->op == MG_OP_MEAN && !mg_dtype_is_float(want))
    return mg_seterror(MG_EDTYPE, "mean: dtype must be a float dtype (float16, bfloat16, float32, float64), got %s",
                       mg_dtype_name(want));
  if (want == MG_BOOL)
    return mg_seterror(MG_EDTYPE, "sum: dtype bool cannot hold a sum (use any, or an integer dtype)");
  out->dtype = want;
  out->cast[0] = want == (mg_dtype)c->in[0]->dtype ? MG_NDTYPES : want;
  return MG_OK;
}

/* sum, prod: integers and bools accumulate into int64, floats keep their dtype. */
mg_status infer_reduce_sum(const mg_call *c, mg_meta *out) {
  unsigned mask;
  mg_status st = reduce_common(c, out, &mask);
  if (st) return st;
  mg_dtype dt = reduce_in_dtype(c, out);
  out->dtype = mg_dtype_is_float(dt) ? dt : MG_INT64;
  return c->op == MG_OP_SUM ? reduce_dtype_attr(c, out) : MG_OK;
}

/* mean, logsumexp, variance: float results; integer inputs are read as
 * float64 and give float32. */
mg_status infer_reduce_float(const mg_call *c, mg_meta *out) {
  unsigned mask;
  mg_status st = reduce_common(c, out, &mask);
  if (st) return st;
  mg_dtype dt = reduce_in_dtype(c, out);
  if (c->op == MG_OP_VARIANCE && A_I(c, 2) < 0)
    return mg_seterror(MG_EARG, "variance: correction must be >= 0, got %lld", (long long)A_I(c, 2));
  out->dtype = mg_dtype_is_float(dt) ? dt : MG_FLOAT32;
  if (!mg_dtype_is_float(dt)) out->cast[0] = MG_FLOAT64;
  return c->op == MG_OP_MEAN ? reduce_dtype_attr(c, out) : MG_OK;
}

/* max, min: the input's dtype; an empty reduction is an error. */
mg_status infer_reduce_same(const mg_call *c, mg_meta *out) {
  unsigned mask;
  mg_status st = reduce_common(c, out, &mask);
  if (st) return st;
  out->dtype = reduce_in_dtype(c, out);
  return reduce_nonempty(c, mask, out);
}

/* all, any: bool. */
mg_status infer_reduce_bool(const mg_call *c, mg_meta *out) {
  unsigned mask;
  mg_status st = reduce_common(c, out, &mask);
  if (st) return st;
  reduce_in_dtype(c, out);
  out->dtype = MG_BOOL;
  return MG_OK;
}

/* argmax, argmin: one axis (slot 0, kind axis) or, when absent, the
 * flattened tensor; int64 indices. */
mg_status infer_reduce_arg(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  unsigned mask;
  if (A_N(c, 0) == 0) {
    mask = x->ndim ? (1u << x->ndim) - 1 : 0;
  } else {
    int a;
    mg_status st = mg_norm_axis(c, "axis", A_I(c, 0), x->ndim, &a);
    if (st) return st;
    mask = 1u << a;
  }
  reduce_out_shape(c, x, mask, out);
  reduce_in_dtype(c, out);
  out->dtype = MG_INT64;
  return reduce_nonempty(c, mask, out);
}

/* softmax, log_softmax: same shape; floats stay, integers give float32. A
 * 0-d input counts as one element along its only "axis" (like PyTorch). */
mg_status infer_softmax(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  int a;
  mg_status st = mg_norm_axis(c, "axis", A_I(c, 0), x->ndim ? x->ndim : 1, &a);
  if (st) return st;
  mg_dtype dt = mg_promote_inputs(c->in, 1);
  out->dtype = mg_dtype_is_float(dt) ? dt : MG_FLOAT32;
  out->cast[0] = out->dtype;
  out->ndim = x->ndim;
  if (x->ndim) memcpy(out->shape, x->shape, (size_t)x->ndim * sizeof(int64_t));
  return MG_OK;
}

/* ---- matmul ------------------------------------------------------------------- */

static mg_status matmul_dtype(const mg_call *c, mg_dtype *dt) {
  mg_tensor *const *in = c->in;
  for (int i = 0; i < 2; i++)
    if (in[i]->ndim == 0)
      return mg_seterror(MG_ESHAPE, "matmul: operand %d is 0-d (a scalar); use mul to scale a tensor", i + 1);
  *dt = mg_promote_inputs(in, 2);
  if (*dt == MG_BOOL)
    return mg_seterror(MG_EDTYPE, "matmul: bool @ bool is not supported; cast the operands to a number dtype first");
  return MG_OK;
}

/* The broadcast batch shape of a (na-d) and b (nb-d) into out[0..*n). */
static mg_status matmul_batch(const mg_tensor *a, const mg_tensor *b, int64_t *out, int *n) {
  int ba = a->ndim > 2 ? a->ndim - 2 : 0, bb = b->ndim > 2 ? b->ndim - 2 : 0;
  int nbt = ba > bb ? ba : bb;
  for (int i = 0; i < nbt; i++) {
    int ia = i - (nbt - ba), ib = i - (nbt - bb);
    int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
    if (da != db && da != 1 && db != 1) {
      char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
      return mg_seterror(MG_ESHAPE, "matmul: batch dimensions cannot be broadcast: %s @ %s (%lld vs %lld)",
                         mg_shape_str(a->ndim, a->shape, sa, sizeof sa),
                         mg_shape_str(b->ndim, b->shape, sb, sizeof sb), (long long)da, (long long)db);
    }
    out[i] = da == 1 ? db : da;
  }
  *n = nbt;
  return MG_OK;
}

mg_status infer_matmul(const mg_call *c, mg_meta *out) {
  const mg_tensor *a = c->in[0], *b = c->in[1];
  mg_dtype dt;
  mg_status st = matmul_dtype(c, &dt);
  if (st) return st;
  int64_t ka = a->shape[a->ndim - 1];
  int64_t kb = b->ndim == 1 ? b->shape[0] : b->shape[b->ndim - 2];
  if (ka != kb) {
    char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
    return mg_seterror(MG_ESHAPE, "matmul: inner dimensions differ: %s @ %s",
                       mg_shape_str(a->ndim, a->shape, sa, sizeof sa),
                       mg_shape_str(b->ndim, b->shape, sb, sizeof sb));
  }
  int n = 0;
  if ((st = matmul_batch(a, b, out->shape, &n))) return st;
  if (a->ndim > 1) out->shape[n++] = a->shape[a->ndim - 2];
  if (b->ndim > 1) out->shape[n++] = b->shape[b->ndim - 1];
  out->ndim = n;
  out->dtype = dt;
  out->cast[0] = out->cast[1] = dt;
  return MG_OK;
}
