/*
 * infer_shape.c — shape and dtype inference for the movement, indexing,
 * creation and random ops.
 *
 * Each function validates everything its kernel will rely on (attribute
 * presence and ranges, ranks, sizes, index dtypes, sizes that would overflow)
 * and writes an error that names the op, the argument and the shapes, so the
 * kernels in kernels/movement.c, create.c and random.c never fail on user
 * input. Axis attributes count from the context's index base (mg_norm_axis);
 * slice bounds are 0-based Python slices (the Lua layer translates its
 * inclusive ranges). Index tensors are cast to int64 through meta.cast, and
 * their values are checked by the kernels, which alone see the data.
 */
#include "internal.h"
#include <math.h>
#include <stdint.h>

#define NAME(c) ((c)->info->name)

static int infer_base(const mg_call *c) { return c->ctx ? c->ctx->index_base : 0; }

/* A scalar attribute with no default that the caller must give. */
static mg_status infer_need(const mg_call *c, int k) {
  if (A_N(c, k) > 0) return MG_OK;
  return mg_seterror(MG_EARG, "%s: the '%s' argument is required", NAME(c), c->info->attrs[k].name);
}

/* A shape attribute: present when set even if empty (a 0-d shape). */
static int infer_has_list(const mg_call *c, int k) { return A_SET(c, k) || A_N(c, k) > 0; }

static mg_status infer_rank(const mg_call *c, int ndim) {
  if (ndim <= MG_MAX_DIMS) return MG_OK;
  return mg_seterror(MG_ESHAPE, "%s: the result would have %d dimensions (at most %d)", NAME(c), ndim,
                     MG_MAX_DIMS);
}

static void infer_like(mg_meta *out, const mg_tensor *t) {
  out->dtype = (mg_dtype)t->dtype;
  out->ndim = t->ndim;
  if (t->ndim) memcpy(out->shape, t->shape, (size_t)t->ndim * sizeof(int64_t));
}

static mg_status infer_dtype_attr(const mg_call *c, int k, mg_dtype *dt) {
  int64_t v = A_I(c, k);
  if (v < 0 || v >= MG_NDTYPES) return mg_seterror(MG_EDTYPE, "%s: unknown dtype %lld", NAME(c), (long long)v);
  *dt = (mg_dtype)v;
  return MG_OK;
}

/* Whether v converts to dt without overflow (ints) — floats take anything. */
static int infer_value_fits(double v, mg_dtype dt) {
  switch (dt) {
  case MG_INT32: return v > -2147483649.0 && v < 2147483648.0;
  case MG_INT64: return v >= -9223372036854775808.0 && v < 9223372036854775808.0;
  case MG_UINT8: return v > -1.0 && v < 256.0;
  default: return 1;
  }
}

/* A value the user gave becoming an element (full's value, pad's value,
 * arange's start and step): it must fit the dtype exactly (mg_check_number). */
static mg_status infer_value(const mg_call *c, const char *arg, double v, mg_dtype dt) {
  return mg_check_number(NAME(c), arg, dt, 0, 0, v);
}

/* linspace's bounds: in range (the values between are floored into an
 * integer dtype, as NumPy does). */
static mg_status infer_bound(const mg_call *c, const char *arg, double v, mg_dtype dt) {
  if (infer_value_fits(v, dt)) return MG_OK;
  return mg_seterror(MG_EARG, "%s: %s %g cannot be converted to %s without overflow", NAME(c), arg, v,
                     mg_dtype_name(dt));
}

/* A shape attribute with every size >= 0 (and, if `minus_one`, -1 allowed). */
static mg_status infer_shape_attr(const mg_call *c, int k, int minus_one, int *ndim, int64_t *shape) {
  if (!infer_has_list(c, k))
    return mg_seterror(MG_EARG, "%s: the '%s' argument is required", NAME(c), c->info->attrs[k].name);
  int n = A_N(c, k);
  mg_status st = infer_rank(c, n);
  if (st) return st;
  for (int i = 0; i < n; i++) {
    shape[i] = A_LIST(c, k)[i];
    if (shape[i] < 0 && !(minus_one && shape[i] == -1))
      return mg_seterror(MG_ESHAPE, "%s: size %lld at position %d of %s is negative", NAME(c),
                         (long long)shape[i], i + infer_base(c), c->info->attrs[k].name);
  }
  *ndim = n;
  return MG_OK;
}

/* Index tensors: any integer dtype, read as int64 by the kernel. */
static mg_status infer_index_dtype(const mg_call *c, const mg_tensor *idx, const char *arg) {
  if (mg_dtype_is_int((mg_dtype)idx->dtype)) return MG_OK;
  return mg_seterror(MG_EDTYPE, "%s: %s must be an integer tensor, got %s", NAME(c), arg,
                     mg_dtype_name((mg_dtype)idx->dtype));
}

/* ---- views ------------------------------------------------------------------ */

mg_status infer_reshape(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  int n;
  int64_t shape[MG_MAX_LIST], numel, known = 1;
  mg_status st = infer_shape_attr(c, 0, 1, &n, shape);
  if (st) return st;
  mg_shape_numel(x->ndim, x->shape, &numel);
  int infer_at = -1, ok = 1;
  for (int i = 0; i < n; i++) {
    if (shape[i] == -1) {
      if (infer_at >= 0) return mg_seterror(MG_ESHAPE, "%s: only one size may be -1", NAME(c));
      infer_at = i;
    } else if (shape[i] && known > INT64_MAX / shape[i]) {
      ok = 0;  /* the product overflows: it cannot match numel */
    } else {
      known *= shape[i];
    }
  }
  if (ok && infer_at >= 0) {
    ok = known != 0 && numel % known == 0;  /* -1 next to a 0 size is ambiguous */
    if (ok) shape[infer_at] = numel / known;
  } else if (ok) {
    ok = known == numel;
  }
  if (!ok) {
    char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
    return mg_seterror(MG_ESHAPE, "%s: cannot reshape a tensor of shape %s (%lld elements) into shape %s", NAME(c),
                       mg_shape_str(x->ndim, x->shape, sa, sizeof sa), (long long)numel,
                       mg_shape_str(n, A_LIST(c, 0), sb, sizeof sb));
  }
  out->dtype = (mg_dtype)x->dtype;
  out->ndim = n;
  memcpy(out->shape, shape, (size_t)n * sizeof(int64_t));
  return MG_OK;
}

mg_status infer_permute(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  int nd = x->ndim, given = infer_has_list(c, 0);
  char sb[MG_SHAPE_BUF];
  if (given && A_N(c, 0) != nd)
    return mg_seterror(MG_EARG, "%s: axes has %d entries for a tensor of shape %s (it must name every axis once)",
                       NAME(c), A_N(c, 0), mg_shape_str(nd, x->shape, sb, sizeof sb));
  int seen[MG_MAX_DIMS] = {0};
  out->dtype = (mg_dtype)x->dtype;
  out->ndim = nd;
  for (int i = 0; i < nd; i++) {
    int a = nd - 1 - i;  /* no axes: reversed, like numpy.transpose */
    if (given) {
      mg_status st = mg_norm_axis(c, "axis", A_LIST(c, 0)[i], nd, &a);
      if (st) return st;
    }
    if (seen[a]++)
      return mg_seterror(MG_EARG, "%s: axis %lld appears twice in axes (they must be a permutation)", NAME(c),
                         (long long)A_LIST(c, 0)[i]);
    out->shape[i] = x->shape[a];
  }
  return MG_OK;
}

mg_status infer_transpose(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  infer_like(out, x);
  if (x->ndim < 2) return MG_OK;
  int a, b;
  mg_status st = mg_norm_axis(c, "axis0", A_I(c, 0), x->ndim, &a);
  if (!st) st = mg_norm_axis(c, "axis1", A_I(c, 1), x->ndim, &b);
  if (st) return st;
  out->shape[a] = x->shape[b];
  out->shape[b] = x->shape[a];
  return MG_OK;
}

/* Marks the axes squeeze drops: the named ones, or every size-1 axis when
 * none is given (an empty list names none: x is returned as it is). */
static mg_status infer_squeeze_mask(const mg_call *c, const mg_tensor *x, int *drop) {
  memset(drop, 0, MG_MAX_DIMS * sizeof *drop);
  if (A_ALL_AXES(c, 0)) {
    for (int d = 0; d < x->ndim; d++) drop[d] = x->shape[d] == 1;
    return MG_OK;
  }
  for (int i = 0; i < A_N(c, 0); i++) {
    int a;
    mg_status st = mg_norm_axis(c, "axis", A_LIST(c, 0)[i], x->ndim, &a);
    if (st) return st;
    if (x->shape[a] != 1) {
      char sb[MG_SHAPE_BUF];
      return mg_seterror(MG_ESHAPE, "%s: axis %lld has size %lld, not 1 (shape %s)", NAME(c),
                         (long long)A_LIST(c, 0)[i], (long long)x->shape[a],
                         mg_shape_str(x->ndim, x->shape, sb, sizeof sb));
    }
    drop[a] = 1;
  }
  return MG_OK;
}

mg_status infer_squeeze(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  int drop[MG_MAX_DIMS];
  mg_status st = infer_squeeze_mask(c, x, drop);
  if (st) return st;
  out->dtype = (mg_dtype)x->dtype;
  out->ndim = 0;
  for (int d = 0; d < x->ndim; d++)
    if (!drop[d]) out->shape[out->ndim++] = x->shape[d];
  return MG_OK;
}

mg_status infer_unsqueeze(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  int a;
  mg_status st = infer_need(c, 0);
  if (!st) st = infer_rank(c, x->ndim + 1);
  if (!st) st = mg_norm_axis(c, "axis", A_I(c, 0), x->ndim + 1, &a);  /* an axis of the result */
  if (st) return st;
  out->dtype = (mg_dtype)x->dtype;
  out->ndim = x->ndim + 1;
  for (int d = 0, s = 0; d < out->ndim; d++) out->shape[d] = d == a ? 1 : x->shape[s++];
  return MG_OK;
}

mg_status infer_expand(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  int n;
  int64_t shape[MG_MAX_LIST];
  mg_status st = infer_shape_attr(c, 0, 1, &n, shape);
  if (st) return st;
  char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
  if (n < x->ndim)
    return mg_seterror(MG_ESHAPE, "%s: cannot expand shape %s to %s: the target has fewer dimensions", NAME(c),
                       mg_shape_str(x->ndim, x->shape, sa, sizeof sa), mg_shape_str(n, shape, sb, sizeof sb));
  int lead = n - x->ndim;
  for (int i = 0; i < n; i++) {
    int64_t have = i < lead ? -1 : x->shape[i - lead];
    if (shape[i] == -1 && have >= 0) shape[i] = have;
    else if (shape[i] >= 0 && (i < lead || have == 1 || have == shape[i])) continue;
    else
      return mg_seterror(MG_ESHAPE, "%s: cannot expand shape %s to %s (dimension %d: only size-1 or new leading "
                         "dimensions expand, and -1 needs an existing dimension)", NAME(c),
                         mg_shape_str(x->ndim, x->shape, sa, sizeof sa), mg_shape_str(n, A_LIST(c, 0), sb, sizeof sb),
                         i + infer_base(c));
  }
  out->dtype = (mg_dtype)x->dtype;
  out->ndim = n;
  memcpy(out->shape, shape, (size_t)n * sizeof(int64_t));
  return MG_OK;
}

/* Python's slice rules for one axis of length n (defined in this file, used
 * by k_slice too): clamps *begin in place and returns the count. Absent
 * bounds arrive as INT64_MAX / INT64_MIN sentinels (see mg_slice_params). */
int64_t mg_slice_axis(int64_t n, int64_t *begin, int64_t end, int64_t step);
int64_t mg_slice_axis(int64_t n, int64_t *begin, int64_t end, int64_t step) {
  int64_t b = *begin, e = end;
  if (b < 0) {
    b += n;
    if (b < 0) b = step < 0 ? -1 : 0;
  } else if (b >= n) {
    b = step < 0 ? n - 1 : n;
  }
  if (e < 0) {
    e += n;
    if (e < 0) e = step < 0 ? -1 : 0;
  } else if (e >= n) {
    e = step < 0 ? n - 1 : n;
  }
  *begin = b;
  if (step > 0) return b < e ? (e - b - 1) / step + 1 : 0;
  return b > e ? (b - e - 1) / (-step) + 1 : 0;
}

/* The begin/end/step of axis d of a slice call, absent ones filled in. */
void mg_slice_params(const mg_call *c, int d, int64_t *begin, int64_t *end, int64_t *step);
void mg_slice_params(const mg_call *c, int d, int64_t *begin, int64_t *end, int64_t *step) {
  int64_t s = d < A_N(c, 2) ? A_LIST(c, 2)[d] : 1;
  *step = s;
  *begin = d < A_N(c, 0) ? A_LIST(c, 0)[d] : s > 0 ? 0 : INT64_MAX;
  *end = d < A_N(c, 1) ? A_LIST(c, 1)[d] : s > 0 ? INT64_MAX : INT64_MIN;
}

mg_status infer_slice(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  static const char *const lists[3] = {"begin", "end", "step"};
  for (int k = 0; k < 3; k++)
    if (A_N(c, k) > x->ndim)
      return mg_seterror(MG_EARG, "%s: %s has %d entries for a %d-d tensor", NAME(c), lists[k], A_N(c, k),
                         x->ndim);
  infer_like(out, x);
  for (int d = 0; d < x->ndim; d++) {
    int64_t b, e, s;
    mg_slice_params(c, d, &b, &e, &s);
    if (s == 0 || s == INT64_MIN)
      return mg_seterror(MG_EARG, "%s: step %lld of axis %d is invalid (it must be nonzero)", NAME(c),
                         (long long)s, d + infer_base(c));
    out->shape[d] = mg_slice_axis(x->shape[d], &b, e, s);
  }
  return MG_OK;
}

/* The 0-based position of an index counted from the base (negative from the
 * end) along an axis of `size`, or an error naming op, axis and size. */
static mg_status infer_index(const mg_call *c, int64_t index, int axis, int64_t size, int64_t *pos) {
  int base = infer_base(c);
  int64_t p = index < 0 ? index + size : index - base;
  if (p >= 0 && p < size) {
    *pos = p;
    return MG_OK;
  }
  if (size == 0)
    return mg_seterror(MG_EINDEX, "%s: index %lld is out of range: axis %d is empty", NAME(c), (long long)index,
                       axis + base);
  return mg_seterror(MG_EINDEX,
                     "%s: index %lld is out of range for axis %d of size %lld (valid: %lld..%lld or -%lld..-1)%s",
                     NAME(c), (long long)index, axis + base, (long long)size, (long long)base,
                     (long long)(size - 1 + base), (long long)size,
                     base == 1 && index == 0 ? ": indices count from 1, t[1] is the first and t[-1] the last" : "");
}

/* The axis and 0-based position select picks (for infer and k_select). */
mg_status mg_select_params(const mg_call *c, int *axis, int64_t *pos);
mg_status mg_select_params(const mg_call *c, int *axis, int64_t *pos) {
  const mg_tensor *x = c->in[0];
  mg_status st = infer_need(c, 0);
  if (!st) st = infer_need(c, 1);
  if (st) return st;
  if (x->ndim == 0) return mg_seterror(MG_ESHAPE, "%s: cannot index a 0-d tensor", NAME(c));
  if ((st = mg_norm_axis(c, "axis", A_I(c, 0), x->ndim, axis))) return st;
  return infer_index(c, A_I(c, 1), *axis, x->shape[*axis], pos);
}

mg_status infer_select(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  int a;
  int64_t pos;
  mg_status st = mg_select_params(c, &a, &pos);
  if (st) return st;
  out->dtype = (mg_dtype)x->dtype;
  out->ndim = 0;
  for (int d = 0; d < x->ndim; d++)
    if (d != a) out->shape[out->ndim++] = x->shape[d];
  return MG_OK;
}

/* ---- copying movement ----------------------------------------------------------- */

/* An axis attribute whose schema default is the first axis (0): unset means
 * axis 0 whatever the index base, so the Lua default works too. */
static mg_status infer_axis_or_first(const mg_call *c, int k, int ndim, int *a) {
  if (!A_SET(c, k)) {
    *a = 0;
    return MG_OK;
  }
  return mg_norm_axis(c, "axis", A_I(c, k), ndim, a);
}

mg_status infer_concat(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
  if (x->ndim == 0) return mg_seterror(MG_ESHAPE, "%s: cannot join 0-d tensors (unsqueeze them first)", NAME(c));
  int a;
  mg_status st = infer_axis_or_first(c, 0, x->ndim, &a);
  if (st) return st;
  int64_t total = 0;
  for (int i = 0; i < c->nin; i++) {
    const mg_tensor *t = c->in[i];
    int bad = t->ndim != x->ndim;
    for (int d = 0; d < x->ndim && !bad; d++) bad = d != a && t->shape[d] != x->shape[d];
    if (bad)
      return mg_seterror(MG_ESHAPE, "%s: tensor %d has shape %s, which does not fit tensor 1's %s along axis %d",
                         NAME(c), i + 1, mg_shape_str(t->ndim, t->shape, sa, sizeof sa),
                         mg_shape_str(x->ndim, x->shape, sb, sizeof sb), a + infer_base(c));
    if (t->shape[a] > INT64_MAX - total) return mg_seterror(MG_ENOMEM, "%s: the result is too large", NAME(c));
    total += t->shape[a];
  }
  mg_dtype dt = mg_promote_inputs(c->in, c->nin);
  infer_like(out, x);
  out->dtype = dt;
  out->shape[a] = total;
  for (int i = 0; i < MG_CAST_SLOTS; i++) out->cast[i] = dt;
  out->cast_rest = dt;
  return MG_OK;  /* sizes: mg_apply (mg_shape_size) */
}

/* The axis of gather/scatter_add and the shared rank rule: index has x's rank
 * and no larger size than `ref` on the other axes (torch.gather). */
static mg_status infer_along(const mg_call *c, const mg_tensor *x, const mg_tensor *idx, int *a) {
  char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
  mg_status st = infer_need(c, 0);
  if (!st) st = infer_index_dtype(c, idx, "index");
  if (st) return st;
  if (x->ndim == 0) return mg_seterror(MG_ESHAPE, "%s: x must have at least one dimension", NAME(c));
  if ((st = mg_norm_axis(c, "axis", A_I(c, 0), x->ndim, a))) return st;
  if (idx->ndim != x->ndim)
    return mg_seterror(MG_ESHAPE, "%s: index has shape %s but x has shape %s (they need the same rank)", NAME(c),
                       mg_shape_str(idx->ndim, idx->shape, sa, sizeof sa),
                       mg_shape_str(x->ndim, x->shape, sb, sizeof sb));
  for (int d = 0; d < x->ndim; d++)
    if (d != *a && idx->shape[d] > x->shape[d])
      return mg_seterror(MG_ESHAPE, "%s: index of shape %s is larger than x of shape %s on axis %d", NAME(c),
                         mg_shape_str(idx->ndim, idx->shape, sa, sizeof sa),
                         mg_shape_str(x->ndim, x->shape, sb, sizeof sb), d + infer_base(c));
  return MG_OK;
}

mg_status infer_gather(const mg_call *c, mg_meta *out) {
  int a;
  mg_status st = infer_along(c, c->in[0], c->in[1], &a);
  if (st) return st;
  infer_like(out, c->in[1]);
  out->dtype = (mg_dtype)c->in[0]->dtype;
  out->cast[1] = MG_INT64;
  return MG_OK;
}

mg_status infer_take(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0], *idx = c->in[1];
  mg_status st = infer_index_dtype(c, idx, "index");
  if (st) return st;
  if (x->ndim == 0) return mg_seterror(MG_ESHAPE, "%s: x must have at least one dimension", NAME(c));
  int a;
  if ((st = infer_axis_or_first(c, 0, x->ndim, &a))) return st;
  if ((st = infer_rank(c, x->ndim - 1 + idx->ndim))) return st;
  out->dtype = (mg_dtype)x->dtype;
  out->ndim = 0;
  for (int d = 0; d < x->ndim; d++) {
    if (d != a) {
      out->shape[out->ndim++] = x->shape[d];
      continue;
    }
    for (int j = 0; j < idx->ndim; j++) out->shape[out->ndim++] = idx->shape[j];
  }
  out->cast[1] = MG_INT64;
  return MG_OK;  /* sizes: mg_apply (mg_shape_size) */
}

mg_status infer_scatter_add(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0], *idx = c->in[1], *src = c->in[2];
  char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
  int a;
  mg_status st = infer_along(c, x, idx, &a);
  if (st) return st;
  int bad = src->ndim != 0 && src->ndim != idx->ndim;  /* a 0-d src is added everywhere */
  for (int d = 0; d < src->ndim && !bad; d++) bad = idx->shape[d] != src->shape[d];
  if (bad)
    return mg_seterror(MG_ESHAPE, "%s: src has shape %s but index has shape %s (they must match, or src be a scalar)",
                       NAME(c), mg_shape_str(src->ndim, src->shape, sa, sizeof sa),
                       mg_shape_str(idx->ndim, idx->shape, sb, sizeof sb));
  mg_tensor *pair[2] = {c->in[0], c->in[2]};
  mg_dtype dt = mg_promote_inputs(pair, 2);
  infer_like(out, x);
  out->dtype = dt;
  out->cast[0] = out->cast[2] = dt;
  out->cast[1] = MG_INT64;
  return MG_OK;
}

mg_status infer_one_hot(const mg_call *c, mg_meta *out) {
  const mg_tensor *idx = c->in[0];
  mg_dtype dt = MG_FLOAT32;
  mg_status st = infer_index_dtype(c, idx, "index");
  if (!st) st = infer_need(c, 0);
  if (!st) st = infer_dtype_attr(c, 1, &dt);
  if (!st) st = infer_rank(c, idx->ndim + 1);
  if (st) return st;
  if (A_I(c, 0) < 0) return mg_seterror(MG_EARG, "%s: depth must be >= 0, got %lld", NAME(c), (long long)A_I(c, 0));
  infer_like(out, idx);
  out->dtype = dt;
  out->shape[out->ndim++] = A_I(c, 0);
  out->cast[0] = MG_INT64;
  return MG_OK;  /* sizes: mg_apply (mg_shape_size) */
}

mg_status infer_pad(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  static const char *const modes[] = {"constant", "reflect", "replicate"};
  int mode = (int)A_I(c, 2);
  if (A_N(c, 0) != 2 * x->ndim)
    return mg_seterror(MG_EARG, "%s: paddings has %d entries; a %d-d tensor needs %d (before, after per axis)",
                       NAME(c), A_N(c, 0), x->ndim, 2 * x->ndim);
  if (mode < 0 || mode > 2) return mg_seterror(MG_EARG, "%s: unknown mode %d", NAME(c), mode);
  mg_status st = mode == 0 ? infer_value(c, "value", A_F(c, 1), (mg_dtype)x->dtype) : MG_OK;
  if (st) return st;
  infer_like(out, x);
  for (int d = 0; d < x->ndim; d++) {
    int64_t lo = A_LIST(c, 0)[2 * d], hi = A_LIST(c, 0)[2 * d + 1], n = x->shape[d];
    if (lo < 0 || hi < 0)
      return mg_seterror(MG_EARG, "%s: paddings of axis %d are negative (%lld, %lld)", NAME(c), d + infer_base(c),
                         (long long)lo, (long long)hi);
    if ((mode == 1 && (lo >= n || hi >= n)) || (mode == 2 && n == 0 && (lo || hi)))
      return mg_seterror(MG_ESHAPE, "%s: %s padding (%lld, %lld) of axis %d needs %s than its size %lld", NAME(c),
                         modes[mode], (long long)lo, (long long)hi, d + infer_base(c),
                         mode == 1 ? "pads smaller" : "more elements", (long long)n);
    if (lo > INT64_MAX / 4 - n || hi > INT64_MAX / 4 - n - lo)
      return mg_seterror(MG_ENOMEM, "%s: paddings of axis %d are too large", NAME(c), d + infer_base(c));
    out->shape[d] = n + lo + hi;
  }
  return MG_OK;  /* sizes: mg_apply (mg_shape_size) */
}

/* Tile's reps and x's shape aligned at the right (ones prepended to the
 * shorter one, as numpy.tile does); returns the result's rank. */
int mg_tile_align(const mg_call *c, int64_t *reps, int64_t *shape);
int mg_tile_align(const mg_call *c, int64_t *reps, int64_t *shape) {
  const mg_tensor *x = c->in[0];
  int nr = A_N(c, 0), n = nr > x->ndim ? nr : x->ndim;
  if (n > MG_MAX_DIMS) return n;
  for (int d = 0; d < n; d++) {
    int r = d - (n - nr), s = d - (n - x->ndim);
    reps[d] = r >= 0 ? A_LIST(c, 0)[r] : 1;
    shape[d] = s >= 0 ? x->shape[s] : 1;
  }
  return n;
}

mg_status infer_tile(const mg_call *c, mg_meta *out) {
  int64_t reps[MG_MAX_LIST], shape[MG_MAX_LIST];
  if (!infer_has_list(c, 0)) return mg_seterror(MG_EARG, "%s: the 'reps' argument is required", NAME(c));
  int n = mg_tile_align(c, reps, shape);
  mg_status st = infer_rank(c, n);
  if (st) return st;
  out->dtype = (mg_dtype)c->in[0]->dtype;
  out->ndim = n;
  for (int d = 0; d < n; d++) {
    if (reps[d] < 0)
      return mg_seterror(MG_EARG, "%s: reps must be >= 0, got %lld", NAME(c), (long long)reps[d]);
    if (shape[d] && reps[d] > INT64_MAX / 4 / shape[d])
      return mg_seterror(MG_ENOMEM, "%s: the result is too large", NAME(c));
    out->shape[d] = shape[d] * reps[d];
  }
  return MG_OK;  /* sizes: mg_apply (mg_shape_size) */
}

/* The axes flip reverses (all when the option is absent, none for an empty
 * list; duplicates refused). */
mg_status mg_flip_mask(const mg_call *c, int *flip);
mg_status mg_flip_mask(const mg_call *c, int *flip) {
  const mg_tensor *x = c->in[0];
  for (int d = 0; d < MG_MAX_DIMS; d++) flip[d] = A_ALL_AXES(c, 0) && d < x->ndim;
  for (int i = 0; i < A_N(c, 0); i++) {
    int a;
    mg_status st = mg_norm_axis(c, "axis", A_LIST(c, 0)[i], x->ndim, &a);
    if (st) return st;
    if (flip[a]++)
      return mg_seterror(MG_EARG, "%s: axis %lld is named twice", NAME(c), (long long)A_LIST(c, 0)[i]);
  }
  return MG_OK;
}

mg_status infer_flip(const mg_call *c, mg_meta *out) {
  int flip[MG_MAX_DIMS];
  mg_status st = mg_flip_mask(c, flip);
  if (st) return st;
  infer_like(out, c->in[0]);
  return MG_OK;
}

/* ---- creation ------------------------------------------------------------------ */

mg_status infer_create(const mg_call *c, mg_meta *out) {
  mg_status st = infer_shape_attr(c, 0, 0, &out->ndim, out->shape);
  if (!st) st = infer_dtype_attr(c, 2, &out->dtype);
  if (!st) st = infer_value(c, "value", A_F(c, 1), out->dtype);
  return st;
}

/* arange's start/stop/step: arange(n) alone means 0..n-1, like range(n). */
void mg_arange_params(const mg_call *c, double *start, double *stop, double *step);
void mg_arange_params(const mg_call *c, double *start, double *stop, double *step) {
  *start = A_F(c, 0);
  *stop = A_F(c, 1);
  *step = A_F(c, 2);
  if (A_N(c, 1) == 0) {
    *stop = *start;
    *start = 0;
  }
}

static int infer_integral(double v) { return v == floor(v); }

mg_status infer_arange(const mg_call *c, mg_meta *out) {
  double start, stop, step;
  mg_arange_params(c, &start, &stop, &step);
  if (!isfinite(start) || !isfinite(stop) || !isfinite(step))
    return mg_seterror(MG_EARG, "%s: start, stop and step must be finite numbers (got %g, %g, %g)", NAME(c), start,
                       stop, step);
  if (step == 0) return mg_seterror(MG_EARG, "%s: step must not be zero", NAME(c));
  mg_status st = infer_dtype_attr(c, 3, &out->dtype);
  if (st) return st;
  if (out->dtype == MG_BOOL)  /* as TF's range (NumPy's fails past two elements) */
    return mg_seterror(MG_EDTYPE, "%s: dtype bool is not supported; use a number dtype", NAME(c));
  /* No dtype given and fractional bounds: float32, as numpy.arange(0, 1, 0.1). */
  if (!A_SET(c, 3) && !(infer_integral(start) && infer_integral(stop) && infer_integral(step)))
    out->dtype = MG_FLOAT32;
  double n = ceil((stop - start) / step);
  if (!(n < 4.0e15))  /* also catches inf/nan from overflowing differences */
    return mg_seterror(MG_ENOMEM, "%s: %g..%g step %g would have %g elements", NAME(c), start, stop, step, n);
  out->ndim = 1;
  out->shape[0] = n > 0 ? (int64_t)n : 0;
  if ((st = infer_value(c, "start", start, out->dtype))) return st;
  if (mg_dtype_is_int(out->dtype) && step != floor(step))
    return mg_seterror(MG_EARG, "%s: step %g has a fraction; %s values need an integer step (or use a float dtype)",
                       NAME(c), step, mg_dtype_name(out->dtype));
  if (out->shape[0] && (st = infer_value(c, "last value", start + (double)(out->shape[0] - 1) * step, out->dtype)))
    return st;
  return MG_OK;  /* sizes: mg_apply (mg_shape_size) */
}

mg_status infer_linspace(const mg_call *c, mg_meta *out) {
  mg_status st = infer_need(c, 0);
  if (!st) st = infer_need(c, 1);
  if (!st) st = infer_need(c, 2);
  if (!st) st = infer_dtype_attr(c, 3, &out->dtype);
  if (st) return st;
  if (out->dtype == MG_BOOL)  /* NumPy would give nonzero-ness; TF refuses: no evenly spaced bools */
    return mg_seterror(MG_EDTYPE, "%s: dtype bool is not supported (evenly spaced values need a number dtype; "
                       "compare the result instead, e.g. mg.linspace(...):gt(0))", NAME(c));
  if (!isfinite(A_F(c, 0)) || !isfinite(A_F(c, 1)))
    return mg_seterror(MG_EARG, "%s: start and stop must be finite (got %g, %g)", NAME(c), A_F(c, 0), A_F(c, 1));
  if (A_I(c, 2) < 0) return mg_seterror(MG_EARG, "%s: num must be >= 0, got %lld", NAME(c), (long long)A_I(c, 2));
  if ((st = infer_bound(c, "start", A_F(c, 0), out->dtype)) || (st = infer_bound(c, "stop", A_F(c, 1), out->dtype)))
    return st;
  out->ndim = 1;
  out->shape[0] = A_I(c, 2);
  return MG_OK;  /* sizes: mg_apply (mg_shape_size) */
}

mg_status infer_eye(const mg_call *c, mg_meta *out) {
  mg_status st = infer_need(c, 0);
  if (!st) st = infer_dtype_attr(c, 2, &out->dtype);
  if (st) return st;
  int64_t n = A_I(c, 0), m = A_I(c, 1) == -1 ? n : A_I(c, 1);
  if (n < 0 || m < 0)
    return mg_seterror(MG_EARG, "%s: sizes must be >= 0, got n=%lld, m=%lld", NAME(c), (long long)n, (long long)m);
  out->ndim = 2;
  out->shape[0] = n;
  out->shape[1] = m;
  return MG_OK;  /* sizes: mg_apply (mg_shape_size) */
}

/* ---- random ---------------------------------------------------------------------- */

static mg_status infer_random_params(const mg_call *c, mg_dtype dt) {
  double a = A_F(c, 1), b = c->op == MG_OP_BERNOULLI ? 0 : A_F(c, 2);
  const char *name = NAME(c);
  switch (c->op) {
  case MG_OP_UNIFORM:
    if (!(isfinite(a) && isfinite(b) && a < b && isfinite(b - a)))
      return mg_seterror(MG_EARG, "%s: needs finite low < high, got low=%g, high=%g", name, a, b);
    break;
  case MG_OP_NORMAL:
  case MG_OP_TRUNCATED_NORMAL:
    if (!(isfinite(a) && isfinite(b) && b >= 0))
      return mg_seterror(MG_EARG, "%s: needs a finite mean and stddev >= 0, got mean=%g, stddev=%g", name, a, b);
    break;
  case MG_OP_BERNOULLI:
    if (!(a >= 0 && a <= 1)) return mg_seterror(MG_EARG, "%s: p must be in [0, 1], got %g", name, a);
    break;
  default: {  /* randint */
    mg_status st = infer_need(c, 1);
    if (!st) st = infer_need(c, 2);
    if (st) return st;
    int64_t lo = A_I(c, 1), hi = A_I(c, 2);
    if (lo > hi)
      return mg_seterror(MG_EARG, "%s: needs low <= high, got low=%lld, high=%lld", name, (long long)lo, (long long)hi);
    if ((dt == MG_INT32 && (lo < INT32_MIN || hi > INT32_MAX)) || (dt == MG_UINT8 && (lo < 0 || hi > 255)))
      return mg_seterror(MG_EARG, "%s: the range %lld..%lld does not fit %s", name, (long long)lo, (long long)hi,
                         mg_dtype_name(dt));
  }
  }
  return MG_OK;
}

mg_status infer_random(const mg_call *c, mg_meta *out) {
  int kdt = c->op == MG_OP_BERNOULLI ? 2 : 3;
  mg_status st = infer_shape_attr(c, 0, 0, &out->ndim, out->shape);
  if (!st) st = infer_dtype_attr(c, kdt, &out->dtype);
  if (st) return st;
  mg_dtype dt = out->dtype;
  int want_float = c->op == MG_OP_UNIFORM || c->op == MG_OP_NORMAL || c->op == MG_OP_TRUNCATED_NORMAL;
  if (want_float && !mg_dtype_is_float(dt))
    return mg_seterror(MG_EDTYPE, "%s: dtype must be float32 or float64, got %s", NAME(c), mg_dtype_name(dt));
  if (c->op == MG_OP_RANDINT && !mg_dtype_is_int(dt))
    return mg_seterror(MG_EDTYPE, "%s: dtype must be an integer type, got %s", NAME(c), mg_dtype_name(dt));
  if ((st = infer_random_params(c, dt))) return st;
  return MG_OK;  /* sizes: mg_apply (mg_shape_size) */
}
