/*
 * infer_dtypes.c — shape and dtype inference of the dtype section's ops
 * (issue 17, "dtypes"): bitcast.
 *
 * bitcast follows tf.bitcast: the same bytes read as another dtype. Equal
 * sizes keep the shape; a wider input gains a last axis of size
 * in_size/out_size (float32 -> int16: (n) -> (n, 2)); a narrower one must
 * end in an axis of out_size/in_size, which goes ((n, 2) int16 -> (n)
 * float32). bool is refused both ways: a bool byte must be 0 or 1.
 */
#include "internal.h"

mg_status infer_bitcast(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  if (A_N(c, 0) == 0) return mg_seterror(MG_EARG, "bitcast: the dtype argument is required");
  int64_t want = A_I(c, 0);
  if (want < 0 || want >= MG_NDTYPES) return mg_seterror(MG_EDTYPE, "bitcast: unknown dtype %lld", (long long)want);
  mg_dtype from = (mg_dtype)x->dtype, to = (mg_dtype)want;
  if (from == MG_BOOL || to == MG_BOOL)
    return mg_seterror(MG_EDTYPE, "bitcast: cannot bitcast %s to %s (a bool byte must be 0 or 1: use cast)",
                       mg_dtype_name(from), mg_dtype_name(to));
  size_t si = mg_dtype_size(from), so = mg_dtype_size(to);
  out->dtype = to;
  out->cast[0] = MG_NDTYPES;
  out->ndim = x->ndim;
  memcpy(out->shape, x->shape, (size_t)x->ndim * sizeof(int64_t));
  if (si > so) {
    if (x->ndim == MG_MAX_DIMS)
      return mg_seterror(MG_ESHAPE, "bitcast: %s to %s adds an axis, and x already has %d", mg_dtype_name(from),
                         mg_dtype_name(to), MG_MAX_DIMS);
    out->shape[out->ndim++] = (int64_t)(si / so);
  } else if (si < so) {
    int64_t ratio = (int64_t)(so / si);
    if (x->ndim == 0 || x->shape[x->ndim - 1] != ratio) {
      char sb[MG_SHAPE_BUF];
      return mg_seterror(MG_ESHAPE, "bitcast: %s to %s needs a last axis of size %lld (the size ratio), x has shape %s",
                         mg_dtype_name(from), mg_dtype_name(to), (long long)ratio,
                         mg_shape_str(x->ndim, x->shape, sb, sizeof sb));
    }
    out->ndim--;
  }
  return MG_OK;
}
