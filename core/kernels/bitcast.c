/*
 * bitcast.c — the bitcast kernel (infer_dtypes.c has its shape rules): a view
 * over x's bytes when x is contiguous and its offset falls on an element of
 * the new dtype, else a contiguous copy of x's bytes read as the new dtype.
 */
#include "../internal.h"

mg_status k_bitcast(const mg_call *c, mg_tensor *out) {
  const mg_tensor *x = c->in[0];
  size_t si = mg_dtype_size((mg_dtype)x->dtype), so = mg_dtype_size((mg_dtype)out->dtype);
  int64_t byte_off = x->offset * (int64_t)si;
  int64_t strides[MG_MAX_DIMS];
  mg_contiguous_strides(out->ndim, out->shape, strides);
  if (mg_tensor_is_contiguous(x) && byte_off % (int64_t)so == 0) {
    mg_view_of(out, x, strides, byte_off / (int64_t)so);
    return MG_OK;
  }
  mg_status st = mg_tensor_alloc_storage(out);
  if (st) return st;
  mg_tensor *bytes;  /* out's storage seen with x's dtype and shape: a plain strided copy fills it */
  st = mg_tensor_borrow((mg_dtype)x->dtype, x->ndim, x->shape, mg_tensor_data(out), NULL, NULL, &bytes);
  if (st) return st;
  st = mg_copy_into(bytes, x);
  mg_tensor_release(bytes);
  return st;
}
