/*
 * copy.c — mg_copy_into: src's elements written into dst's (possibly
 * strided) elements, broadcasting src to dst's shape and converting dtypes
 * with the cast loops of elementwise.c, so t[i] = v, copy_to and
 * contiguous all convert exactly like cast does.
 *
 * Two contiguous tensors of one dtype and size are a memcpy. When src and
 * dst share storage the elements may overlap (t[{1,3}] = t[{2,4}]), so src
 * is first copied out to a temporary, as NumPy does.
 */
#include "ew.h"

static int copy_fits(const mg_tensor *dst, const mg_tensor *src) {
  if (src->ndim > dst->ndim) return 0;
  for (int i = 0; i < src->ndim; i++) {
    int64_t s = src->shape[src->ndim - 1 - i], d = dst->shape[dst->ndim - 1 - i];
    if (s != d && s != 1) return 0;
  }
  return 1;
}

mg_status mg_copy_into(mg_tensor *dst, const mg_tensor *src) {
  char a[MG_SHAPE_BUF], b[MG_SHAPE_BUF];
  if (!dst->storage || !src->storage) return mg_seterror(MG_ESTATE, "copy: a tensor was freed");
  if (!copy_fits(dst, src))
    return mg_seterror(MG_ESHAPE, "copy: a value of shape %s does not fit a target of shape %s",
                       mg_shape_str(src->ndim, src->shape, a, sizeof a),
                       mg_shape_str(dst->ndim, dst->shape, b, sizeof b));
  mg_storage_written(dst->storage);
  if (dst->storage == src->storage) {  /* may overlap: go through a copy */
    mg_tensor *tmp;
    mg_status st = mg_tensor_empty((mg_dtype)src->dtype, src->ndim, src->shape, &tmp);
    if (st) return st;
    if ((st = mg_copy_into(tmp, src)) == MG_OK) st = mg_copy_into(dst, tmp);
    mg_tensor_release(tmp);
    return st;
  }
  int64_t n = mg_tensor_numel(dst);
  if (dst->dtype == src->dtype && n == mg_tensor_numel(src) && mg_tensor_is_contiguous(dst) &&
      mg_tensor_is_contiguous(src)) {
    if (n) memcpy(mg_ptr(dst), mg_ptr(src), (size_t)n * mg_dtype_size((mg_dtype)dst->dtype));
    return MG_OK;
  }
  mg_loop_fn f = ew_cast_loop((mg_dtype)dst->dtype, (mg_dtype)src->dtype);
  if (!f) return mg_seterror(MG_EDTYPE, "copy: unknown dtype");
  const mg_tensor *ops[2] = {dst, src};
  mg_iter(2, ops, dst->ndim, dst->shape, f, NULL);
  return MG_OK;
}
