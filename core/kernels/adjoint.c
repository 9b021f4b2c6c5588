/*
 * adjoint.c — ops that exist for autodiff: stop_gradient, and the adjoints of
 * the linear movement ops slice and pad (their gradient rules), with infer and
 * kernel side by side since each is small.
 *
 * slice_grad and pad_grad are ops of the table rather than ad-hoc code in the
 * rules so that gradients of gradients work: slice and slice_grad are each
 * other's gradient, and so are pad and pad_grad.
 */
#include "../internal.h"

/* Python slice rules shared with infer_slice (infer_shape.c). */
int64_t mg_slice_axis(int64_t n, int64_t *begin, int64_t end, int64_t step);
void mg_slice_params(const mg_call *c, int d, int64_t *begin, int64_t *end, int64_t *step);

mg_status infer_stop_gradient(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  out->dtype = (mg_dtype)x->dtype;
  out->ndim = x->ndim;
  memcpy(out->shape, x->shape, sizeof out->shape);
  return MG_OK;
}

mg_status k_stop_gradient(const mg_call *c, mg_tensor *out) {
  mg_view_of(out, c->in[0], c->in[0]->strides, c->in[0]->offset);
  return MG_OK;
}

/* ---- slice_grad --------------------------------------------------------------- */

mg_status infer_slice_grad(const mg_call *c, mg_meta *out) {
  const mg_tensor *g = c->in[0];
  char a[MG_SHAPE_BUF], b[MG_SHAPE_BUF];
  int n = A_N(c, 3);
  if (n != g->ndim)
    return mg_seterror(MG_ESHAPE, "slice_grad: shape %s has %d dimensions, the gradient %s has %d",
                       mg_shape_str(n, A_LIST(c, 3), a, sizeof a), n, mg_shape_str(g->ndim, g->shape, b, sizeof b),
                       g->ndim);
  for (int d = 0; d < n; d++) {
    int64_t bg, e, s;
    mg_slice_params(c, d, &bg, &e, &s);
    if (s == 0 || s == INT64_MIN || A_LIST(c, 3)[d] < 0)
      return mg_seterror(MG_EARG, "slice_grad: invalid step or size on axis %d", d);
    if (mg_slice_axis(A_LIST(c, 3)[d], &bg, e, s) != g->shape[d])
      return mg_seterror(MG_ESHAPE, "slice_grad: a gradient of shape %s does not match the slice of %s",
                         mg_shape_str(g->ndim, g->shape, b, sizeof b), mg_shape_str(n, A_LIST(c, 3), a, sizeof a));
  }
  out->dtype = (mg_dtype)g->dtype;
  out->ndim = n;
  memcpy(out->shape, A_LIST(c, 3), (size_t)n * sizeof(int64_t));
  return MG_OK;
}

mg_status k_slice_grad(const mg_call *c, mg_tensor *out) {
  const mg_tensor *g = c->in[0];
  memset(out->storage->data, 0, out->storage->nbytes);
  int64_t strides[MG_MAX_DIMS], offset = 0;
  for (int d = 0; d < out->ndim; d++) {
    int64_t b, e, s;
    mg_slice_params(c, d, &b, &e, &s);
    mg_slice_axis(out->shape[d], &b, e, s);
    offset += b * out->strides[d];
    strides[d] = out->strides[d] * s;
  }
  mg_tensor *view = mg_tensor_header((mg_dtype)g->dtype, g->ndim, g->shape);
  if (!view) return mg_seterror(MG_ENOMEM, "slice_grad: out of memory");
  mg_view_of(view, out, strides, offset);
  mg_status st = mg_copy_into(view, g);
  mg_tensor_release(view);
  return st;
}

/* ---- pad_grad ----------------------------------------------------------------- */

enum { PAD_CONSTANT, PAD_REFLECT, PAD_REPLICATE };

mg_status infer_pad_grad(const mg_call *c, mg_meta *out) {
  const mg_tensor *g = c->in[0];
  int mode = (int)A_I(c, 1);
  if (A_N(c, 0) != 2 * g->ndim)
    return mg_seterror(MG_EARG, "pad_grad: paddings has %d entries, a %d-d gradient needs %d", A_N(c, 0), g->ndim,
                       2 * g->ndim);
  out->dtype = (mg_dtype)g->dtype;
  out->ndim = g->ndim;
  for (int d = 0; d < g->ndim; d++) {
    int64_t before = A_LIST(c, 0)[2 * d], after = A_LIST(c, 0)[2 * d + 1];
    int64_t n = g->shape[d] - before - after;
    if (before < 0 || after < 0 || n < 0)
      return mg_seterror(MG_ESHAPE, "pad_grad: paddings %lld, %lld do not fit axis %d of size %lld", (long long)before,
                         (long long)after, d, (long long)g->shape[d]);
    if (mode == PAD_REFLECT && (before >= n || after >= n) && (before || after))
      return mg_seterror(MG_ESHAPE, "pad_grad: reflect padding %lld, %lld needs an axis longer than that (size %lld)",
                         (long long)before, (long long)after, (long long)n);
    if (mode == PAD_REPLICATE && n == 0 && (before || after))
      return mg_seterror(MG_ESHAPE, "pad_grad: replicate padding of an empty axis %d", d);
    out->shape[d] = n;
  }
  return MG_OK;
}

/* The input position a padded position copies (reflect/replicate). */
static int64_t pad_source(int mode, int64_t i, int64_t before, int64_t n) {
  int64_t p = i - before;
  if (p < 0) return mode == PAD_REFLECT ? -p : 0;
  if (p >= n) return mode == PAD_REFLECT ? 2 * (n - 1) - p : n - 1;
  return p;
}

#define PAD_ACCUMULATE(T)                                                     \
  for (int64_t flat = 0; flat < total; flat++) {                            \
    int64_t rem = flat, goff = 0, ooff = 0;                                  \
    for (int d = nd - 1; d >= 0; d--) {                                      \
      int64_t i = rem % g->shape[d];                                         \
      rem /= g->shape[d];                                                    \
      goff += i * g->strides[d];                                             \
      ooff += pad_source(mode, i, A_LIST(c, 0)[2 * d], out->shape[d]) * out->strides[d]; \
    }                                                                        \
    ((T *)mg_ptr(out))[ooff] += ((const T *)mg_ptr(g))[goff];               \
  }

mg_status k_pad_grad(const mg_call *c, mg_tensor *out) {
  const mg_tensor *g = c->in[0];
  int mode = (int)A_I(c, 1), nd = g->ndim;
  if (mode == PAD_CONSTANT) {  /* the interior of g */
    int64_t offset = g->offset;
    for (int d = 0; d < nd; d++) offset += A_LIST(c, 0)[2 * d] * g->strides[d];
    mg_tensor *view = mg_tensor_header((mg_dtype)g->dtype, nd, out->shape);
    if (!view) return mg_seterror(MG_ENOMEM, "pad_grad: out of memory");
    mg_view_of(view, g, g->strides, offset);
    mg_status st = mg_copy_into(out, view);
    mg_tensor_release(view);
    return st;
  }
  memset(out->storage->data, 0, out->storage->nbytes);
  int64_t total = mg_tensor_numel(g);
  switch ((mg_dtype)g->dtype) {  /* serial: several padded positions feed one element */
  case MG_FLOAT32: PAD_ACCUMULATE(float) break;
  case MG_FLOAT64: PAD_ACCUMULATE(double) break;
  case MG_INT32: PAD_ACCUMULATE(int32_t) break;
  case MG_INT64: PAD_ACCUMULATE(int64_t) break;
  default: PAD_ACCUMULATE(uint8_t) break;
  }
  return MG_OK;
}
