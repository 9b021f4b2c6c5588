/*
 * shape.c — shape helpers shared by infer functions: broadcasting and axis
 * normalisation, each writing an error message that names the op; and
 * mg_shape_size, the one place where a shape's element count and byte size
 * are computed with overflow checks.
 *
 * Every shape a tensor can take passes mg_shape_size first (mg_apply checks
 * each op's result, views included; mg_tensor_empty, mg_tensor_borrow and the
 * loaders check theirs), so a tensor that exists has at most MG_MAX_BYTES
 * bytes of logical elements and every later product (numel, nbytes, strides
 * times the element size, byte offsets) fits an int64 without checks.
 */
#include "internal.h"
#include <stdio.h>

mg_status mg_shape_size(const char *what, mg_dtype dt, int ndim, const int64_t *shape, int64_t *numel,
                        int64_t *nbytes) {
  /* nz is the product with zero sizes counted as 1: it bounds the product of
   * any subset of the axes (what kernels compute for outer/inner extents), so
   * an empty (0, 2^62, 2^62) cannot overflow one either. */
  int64_t nz = 1, es = (int64_t)mg_dtype_size(dt);
  int over = 0, zero = 0;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) {
      char sb[MG_SHAPE_BUF];
      return mg_seterror(MG_ESHAPE, "%s: size %lld of dimension %d of shape %s is negative", what,
                         (long long)shape[i], i + 1, mg_shape_str(ndim, shape, sb, sizeof sb));
    }
    if (shape[i] == 0) zero = 1;
    else if (!over && __builtin_mul_overflow(nz, shape[i], &nz)) over = 1;
  }
  if (over || nz > MG_MAX_BYTES / es) {
    char sb[MG_SHAPE_BUF];
    const char *sh = mg_shape_str(ndim, shape, sb, sizeof sb);
    if (zero)
      return mg_seterror(MG_ENOMEM, "%s: a %s tensor of shape %s is too large (without its zero sizes, the others "
                         "multiply past 2^%d bytes)", what, mg_dtype_name(dt), sh, MG_MAX_BYTES_LOG2);
    if (over)
      return mg_seterror(MG_ENOMEM, "%s: a %s tensor of shape %s is too large (its element count overflows 64 bits)",
                         what, mg_dtype_name(dt), sh);
    return mg_seterror(MG_ENOMEM, "%s: a %s tensor of shape %s is too large (%lld elements of %lld bytes; at most 2^%d bytes)",
                       what, mg_dtype_name(dt), sh, (long long)nz, (long long)es, MG_MAX_BYTES_LOG2);
  }
  if (numel) *numel = zero ? 0 : nz;
  if (nbytes) *nbytes = zero ? 0 : nz * es;
  return MG_OK;
}

mg_status mg_broadcast_shapes(const char *opname, int na, const int64_t *a, int nb,
                              const int64_t *b, int *nout, int64_t *out) {
  int n = na > nb ? na : nb;
  for (int i = 0; i < n; i++) {
    int ia = i - (n - na), ib = i - (n - nb);
    int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    if (da != db && da != 1 && db != 1) {
      char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
      return mg_seterror(MG_ESHAPE, "%s: shapes %s and %s cannot be broadcast (dimension %d: %lld vs %lld)",
                         opname, mg_shape_str(na, a, sa, sizeof sa), mg_shape_str(nb, b, sb, sizeof sb),
                         i + 1, (long long)da, (long long)db);
    }
    out[i] = da == 1 ? db : da;
  }
  *nout = n;
  return MG_OK;
}

/* Axis `axis`, counted from the index base (negative from the end), of a
 * tensor with ndim dimensions, as a 0-based index. */
mg_status mg_norm_axis(const mg_call *c, const char *arg, int64_t axis, int ndim, int *out) {
  int base = c->ctx ? c->ctx->index_base : 0;
  int64_t a = axis < 0 ? axis + ndim : axis - base;
  if (a < 0 || a >= ndim) {
    if (base)
      return mg_seterror(MG_EINDEX, "%s: %s %lld is out of range for a %d-d tensor (valid: 1..%d or -%d..-1)",
                         c->info->name, arg, (long long)axis, ndim, ndim, ndim);
    return mg_seterror(MG_EINDEX, "%s: %s %lld is out of range for a %d-d tensor (valid: 0..%d or -%d..-1)",
                       c->info->name, arg, (long long)axis, ndim, ndim - 1, ndim);
  }
  *out = (int)a;
  return MG_OK;
}
