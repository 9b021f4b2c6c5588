/*
 * infer_scan.c — shape and dtype inference for the scans (cumsum, cumprod,
 * cummax, cummin, cumargmax, cumargmin, cumulative_logsumexp and cumprod's
 * gradient) and for sorting and selection (sort, argsort, top_k_indices,
 * searchsorted).
 *
 * A scan keeps its input's shape and runs along one axis: the first when the
 * axis is not given (TensorFlow's axis=0), a 0-d input counting as one
 * element. Sums and products follow sum/prod (integers and bools accumulate
 * into int64), cumulative_logsumexp gives floats, cummax/cummin keep the
 * dtype. The input is cast to the output dtype before the kernel runs, so
 * each scan kernel reads and writes one dtype. Sorting runs along axis -1 by
 * default; top_k along the last axis, as TF. Sizes that are unknown while a
 * function is staged (probes) pass every check that needs their value.
 */
#include "graph.h"  /* mg_is_probe */

/* The scan axis (0-based) from attribute slot 0: the first axis when unset. */
mg_status mg_scan_axis(const mg_call *c, int *a) {
  int nd = c->in[0]->ndim ? c->in[0]->ndim : 1;
  if (A_N(c, 0) == 0) {
    *a = 0;
    return MG_OK;
  }
  return mg_norm_axis(c, "axis", A_I(c, 0), nd, a);
}

static void same_shape(const mg_tensor *x, mg_meta *out) {
  out->ndim = x->ndim;
  if (x->ndim) memcpy(out->shape, x->shape, (size_t)x->ndim * sizeof(int64_t));
}

/* cumsum, cumprod: floats keep their dtype, integers and bools give int64. */
mg_status infer_cumsum(const mg_call *c, mg_meta *out) {
  int a;
  mg_status st = mg_scan_axis(c, &a);
  if (st) return st;
  mg_dtype dt = mg_promote_inputs(c->in, 1);
  out->dtype = mg_dtype_is_float(dt) ? dt : MG_INT64;
  out->cast[0] = out->dtype;
  same_shape(c->in[0], out);
  return MG_OK;
}

/* cumulative_logsumexp: floats keep their dtype, integers and bools give float32. */
mg_status infer_cum_float(const mg_call *c, mg_meta *out) {
  int a;
  mg_status st = mg_scan_axis(c, &a);
  if (st) return st;
  mg_dtype dt = mg_promote_inputs(c->in, 1);
  out->dtype = mg_dtype_is_float(dt) ? dt : MG_FLOAT32;
  out->cast[0] = out->dtype;
  same_shape(c->in[0], out);
  return MG_OK;
}

/* cummax, cummin: the input's dtype. */
mg_status infer_cum_same(const mg_call *c, mg_meta *out) {
  int a;
  mg_status st = mg_scan_axis(c, &a);
  if (st) return st;
  out->dtype = mg_promote_inputs(c->in, 1);
  out->cast[0] = out->dtype;
  same_shape(c->in[0], out);
  return MG_OK;
}

/* cumargmax, cumargmin: int64 positions (from the index base). */
mg_status infer_cum_arg(const mg_call *c, mg_meta *out) {
  int a;
  mg_status st = mg_scan_axis(c, &a);
  if (st) return st;
  mg_dtype dt = mg_promote_inputs(c->in, 1);
  if (dt != (mg_dtype)c->in[0]->dtype) out->cast[0] = dt;
  out->dtype = MG_INT64;
  same_shape(c->in[0], out);
  return MG_OK;
}

/* cumprod_grad(x, g): x and g of one shape; a float result. */
mg_status infer_cumprod_grad(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0], *g = c->in[1];
  int a;
  mg_status st = mg_scan_axis(c, &a);
  if (st) return st;
  int same = x->ndim == g->ndim;
  for (int d = 0; same && d < x->ndim; d++) same = x->shape[d] == g->shape[d];
  if (!same) {
    char sx[MG_SHAPE_BUF], sg[MG_SHAPE_BUF];
    return mg_seterror(MG_ESHAPE, "cumprod_grad: x %s and g %s must have the same shape",
                       mg_shape_str(x->ndim, x->shape, sx, sizeof sx), mg_shape_str(g->ndim, g->shape, sg, sizeof sg));
  }
  mg_dtype dt = mg_promote_inputs(c->in, 2);
  out->dtype = mg_dtype_is_float(dt) ? dt : MG_FLOAT32;
  out->cast[0] = out->cast[1] = out->dtype;
  same_shape(x, out);
  return MG_OK;
}

/* sort and argsort: axis (slot 0, default -1); sort keeps the dtype,
 * argsort gives int64 positions. */
mg_status infer_sort(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  int a;
  mg_status st = mg_norm_axis(c, "axis", A_I(c, 0), x->ndim ? x->ndim : 1, &a);
  if (st) return st;
  mg_dtype dt = mg_promote_inputs(c->in, 1);
  if (dt != (mg_dtype)x->dtype) out->cast[0] = dt;
  out->dtype = c->op == MG_OP_ARGSORT ? MG_INT64 : dt;
  same_shape(x, out);
  return MG_OK;
}

/* top_k_indices(x, k): the last axis cut to k, int64 positions. */
mg_status infer_top_k(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  char sx[MG_SHAPE_BUF];
  if (x->ndim == 0)
    return mg_seterror(MG_ESHAPE, "%s: x must have at least 1 dimension, got a 0-d (scalar) %s", c->info->name,
                       mg_dtype_name((mg_dtype)x->dtype));
  int64_t k = A_I(c, 0), L = x->shape[x->ndim - 1];
  if (k < 0) return mg_seterror(MG_EARG, "%s: k must be >= 0, got %lld", c->info->name, (long long)k);
  if (!mg_is_probe(L) && k > L)
    return mg_seterror(MG_EARG, "%s: k = %lld is larger than the last axis of x %s (size %lld)", c->info->name,
                       (long long)k, mg_shape_str(x->ndim, x->shape, sx, sizeof sx), (long long)L);
  mg_dtype dt = mg_promote_inputs(c->in, 1);
  if (dt != (mg_dtype)x->dtype) out->cast[0] = dt;
  out->dtype = MG_INT64;
  same_shape(x, out);
  out->shape[x->ndim - 1] = k;
  return MG_OK;
}

/* searchsorted(sorted, values): a 1-d sorted (any values shape), or sorted
 * (..., M) and values (..., N) with the same leading dimensions (TF). */
mg_status infer_searchsorted(const mg_call *c, mg_meta *out) {
  const mg_tensor *s = c->in[0], *v = c->in[1];
  char ss[MG_SHAPE_BUF], sv[MG_SHAPE_BUF];
  if (s->ndim == 0)
    return mg_seterror(MG_ESHAPE, "searchsorted: sorted_sequence must have at least 1 dimension, got a 0-d (scalar) %s",
                       mg_dtype_name((mg_dtype)s->dtype));
  if (s->ndim > 1) {
    int ok = v->ndim == s->ndim;
    for (int d = 0; ok && d < s->ndim - 1; d++)
      ok = s->shape[d] == v->shape[d] || mg_is_probe(s->shape[d]) || mg_is_probe(v->shape[d]);
    if (!ok)
      return mg_seterror(MG_ESHAPE,
                         "searchsorted: sorted_sequence %s and values %s must have the same leading dimensions "
                         "(all but the last), or sorted_sequence must be 1-d",
                         mg_shape_str(s->ndim, s->shape, ss, sizeof ss), mg_shape_str(v->ndim, v->shape, sv, sizeof sv));
  }
  mg_dtype dt = mg_promote_inputs(c->in, 2);
  out->cast[0] = out->cast[1] = dt;
  out->dtype = MG_INT64;
  same_shape(v, out);
  return MG_OK;
}
