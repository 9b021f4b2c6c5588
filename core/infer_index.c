/*
 * infer_index.c — shape and dtype inference for the N-d indexing ops
 * (issue 17): gather_nd, tensor_scatter_nd_{update,add,sub,max,min}, the
 * segment reductions and argwhere.
 *
 * TF's shape rules: an index tensor of shape (..., K) names slices of x by
 * their first K coordinates, so gather_nd gives shape (...) + x.shape[K:],
 * and a scatter's updates must have exactly that shape. Segment ids have the
 * shape of data's leading axes (1-d for the sorted segment_* ops, as TF) and
 * the result has num_segments rows. argwhere's row count is data it cannot
 * see: the caller counts the nonzero elements and passes `count` (the stdlib
 * does, eagerly; kernels/index_nd.c checks it). Index tensors are cast to
 * int64 here so the kernels read one type. Sizes unknown while a function is
 * staged (probes) pass every equality check.
 */
#include "graph.h"  /* mg_is_probe */

#define NAME(c) ((c)->info->name)

static mg_status need_int(const mg_call *c, const mg_tensor *t, const char *arg) {
  if (mg_dtype_is_int((mg_dtype)t->dtype)) return MG_OK;
  return mg_seterror(MG_EDTYPE, "%s: %s must be an integer tensor, got %s", NAME(c), arg,
                     mg_dtype_name((mg_dtype)t->dtype));
}

static int same_size(int64_t a, int64_t b) { return a == b || mg_is_probe(a) || mg_is_probe(b); }

/* K, the length of the index's last axis: the coordinates each row gives. */
static mg_status index_depth(const mg_call *c, const mg_tensor *x, const mg_tensor *idx, int *K) {
  char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
  mg_status st = need_int(c, idx, "indices");
  if (st) return st;
  if (idx->ndim == 0)
    return mg_seterror(MG_ESHAPE, "%s: indices must have at least one dimension (its last axis holds the coordinates "
                       "of each index), got a 0-d tensor", NAME(c));
  int64_t k = idx->shape[idx->ndim - 1];
  if (mg_is_probe(k))
    return mg_seterror(MG_ESHAPE, "%s: the last axis of indices (the coordinates per index) must have a known size",
                       NAME(c));
  if (k > x->ndim)
    return mg_seterror(MG_ESHAPE, "%s: indices of shape %s give %lld coordinates, but the tensor of shape %s has only "
                       "%d axes", NAME(c), mg_shape_str(idx->ndim, idx->shape, sa, sizeof sa), (long long)k,
                       mg_shape_str(x->ndim, x->shape, sb, sizeof sb), x->ndim);
  *K = (int)k;
  return MG_OK;
}

/* (...) + x.shape[K:], the shape of the gathered slices. */
static mg_status slices_shape(const mg_call *c, const mg_tensor *x, const mg_tensor *idx, int K, int *nd,
                              int64_t *shape) {
  int n = idx->ndim - 1 + x->ndim - K;
  if (n > MG_MAX_DIMS)
    return mg_seterror(MG_ESHAPE, "%s: the result would have %d dimensions (at most %d)", NAME(c), n, MG_MAX_DIMS);
  *nd = 0;
  for (int d = 0; d < idx->ndim - 1; d++) shape[(*nd)++] = idx->shape[d];
  for (int d = K; d < x->ndim; d++) shape[(*nd)++] = x->shape[d];
  return MG_OK;
}

mg_status infer_gather_nd(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0], *idx = c->in[1];
  int K;
  mg_status st = index_depth(c, x, idx, &K);
  if (!st) st = slices_shape(c, x, idx, K, &out->ndim, out->shape);
  if (st) return st;
  out->dtype = (mg_dtype)x->dtype;
  out->cast[1] = MG_INT64;
  return MG_OK;
}

mg_status infer_tensor_scatter_nd(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0], *idx = c->in[1], *upd = c->in[2];
  char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF], sc[MG_SHAPE_BUF], sd[MG_SHAPE_BUF];
  int K, nd;
  int64_t want[MG_MAX_DIMS];
  mg_status st = index_depth(c, x, idx, &K);
  if (!st) st = slices_shape(c, x, idx, K, &nd, want);
  if (st) return st;
  int ok = upd->ndim == nd;
  for (int d = 0; d < nd && ok; d++) ok = same_size(upd->shape[d], want[d]);
  if (!ok)
    return mg_seterror(MG_ESHAPE, "%s: updates have shape %s, but indices of shape %s into a tensor of shape %s need "
                       "updates of shape %s (indices.shape[:-1] + tensor.shape[K:])", NAME(c),
                       mg_shape_str(upd->ndim, upd->shape, sa, sizeof sa),
                       mg_shape_str(idx->ndim, idx->shape, sb, sizeof sb),
                       mg_shape_str(x->ndim, x->shape, sc, sizeof sc), mg_shape_str(nd, want, sd, sizeof sd));
  mg_tensor *pair[2] = {c->in[0], c->in[2]};
  mg_dtype dt = mg_promote_inputs(pair, 2);
  if (dt == MG_BOOL && c->op == MG_OP_TENSOR_SCATTER_ND_SUB)
    return mg_seterror(MG_EDTYPE, "%s: not defined for bool tensors (cast first)", NAME(c));
  out->dtype = dt;
  out->ndim = x->ndim;
  if (x->ndim) memcpy(out->shape, x->shape, (size_t)x->ndim * sizeof(int64_t));
  out->cast[0] = out->cast[2] = dt;
  out->cast[1] = MG_INT64;
  return MG_OK;
}

mg_status infer_segment(const mg_call *c, mg_meta *out) {
  const mg_tensor *data = c->in[0], *ids = c->in[1];
  char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
  int sorted = c->op == MG_OP_SEGMENT_SUM || c->op == MG_OP_SEGMENT_PROD || c->op == MG_OP_SEGMENT_MAX ||
               c->op == MG_OP_SEGMENT_MIN;
  mg_status st = need_int(c, ids, "segment_ids");
  if (st) return st;
  if (A_N(c, 0) == 0) return mg_seterror(MG_EARG, "%s: the 'num_segments' argument is required", NAME(c));
  if (A_I(c, 0) < 0)
    return mg_seterror(MG_EARG, "%s: num_segments must be >= 0, got %lld", NAME(c), (long long)A_I(c, 0));
  if (data->dtype == MG_BOOL)
    return mg_seterror(MG_EDTYPE, "%s: data is bool; it takes numbers (cast first)", NAME(c));
  if (data->ndim == 0) return mg_seterror(MG_ESHAPE, "%s: data must have at least one dimension", NAME(c));
  int ok = sorted ? ids->ndim == 1 : ids->ndim >= 1 && ids->ndim <= data->ndim;
  for (int d = 0; d < ids->ndim && ok; d++) ok = same_size(ids->shape[d], data->shape[d]);
  if (!ok)
    return mg_seterror(MG_ESHAPE, "%s: segment_ids of shape %s do not fit data of shape %s (%s)", NAME(c),
                       mg_shape_str(ids->ndim, ids->shape, sa, sizeof sa),
                       mg_shape_str(data->ndim, data->shape, sb, sizeof sb),
                       sorted ? "one id per row: a 1-d tensor of data's first size"
                              : "their shape must be the leading part of data's shape");
  out->dtype = (mg_dtype)data->dtype;
  out->ndim = 1 + data->ndim - ids->ndim;
  out->shape[0] = A_I(c, 0);
  for (int d = ids->ndim; d < data->ndim; d++) out->shape[1 + d - ids->ndim] = data->shape[d];
  out->cast[1] = MG_INT64;
  return MG_OK;
}

mg_status infer_argwhere(const mg_call *c, mg_meta *out) {
  if (A_N(c, 0) == 0) return mg_seterror(MG_EARG, "%s: the 'count' argument is required", NAME(c));
  if (A_I(c, 0) < 0) return mg_seterror(MG_EARG, "%s: count must be >= 0, got %lld", NAME(c), (long long)A_I(c, 0));
  out->dtype = MG_INT64;
  out->ndim = 2;
  out->shape[0] = A_I(c, 0);
  out->shape[1] = c->in[0]->ndim;
  out->cast[0] = MG_BOOL;
  return MG_OK;
}
