/*
 * shape.c — shape helpers shared by infer functions: broadcasting and axis
 * normalisation, each writing an error message that names the op.
 */
#include "internal.h"

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
