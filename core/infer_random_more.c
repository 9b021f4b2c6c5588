/*
 * infer_random_more.c — shape, dtype and parameter checks of the issue-17
 * random ops (kernels/random_more.c): random_gamma and random_poisson (a
 * shape attribute, like uniform), random_categorical (samples per row of a
 * 2-d logits tensor) and random_permutation (of the first axis of its input:
 * mg.random.shuffle takes along it). Bad parameters are errors naming them:
 * alpha and beta must be finite and > 0, lam finite and >= 0.
 */
#include "graph.h"  /* mg_is_probe */
#include <math.h>

#define NAME(c) ((c)->info->name)

static mg_status rm_shape(const mg_call *c, int k, mg_meta *out) {
  if (A_N(c, k) > MG_MAX_DIMS)
    return mg_seterror(MG_ESHAPE, "%s: shape has %d dimensions, at most %d are supported", NAME(c), A_N(c, k),
                       MG_MAX_DIMS);
  out->ndim = A_N(c, k);
  for (int i = 0; i < out->ndim; i++) {
    out->shape[i] = A_LIST(c, k)[i];
    if (out->shape[i] < 0)
      return mg_seterror(MG_ESHAPE, "%s: size %lld at position %d of shape is negative", NAME(c),
                         (long long)out->shape[i], i + (c->ctx ? c->ctx->index_base : 0));
  }
  return MG_OK;
}

static mg_status rm_dtype(const mg_call *c, int k, int floats_only, mg_dtype *dt) {
  int64_t v = A_I(c, k);
  if (v < 0 || v >= MG_NDTYPES) return mg_seterror(MG_EDTYPE, "%s: unknown dtype %lld", NAME(c), (long long)v);
  *dt = (mg_dtype)v;
  /* named dtypes, not classes: the kernels store exactly these four */
  int isf = *dt == MG_FLOAT32 || *dt == MG_FLOAT64, isi = *dt == MG_INT32 || *dt == MG_INT64;
  if (!(isf || (isi && !floats_only)))
    return mg_seterror(MG_EDTYPE, "%s: dtype must be %s, got %s", NAME(c),
                       floats_only ? "float32 or float64" : "float32, float64, int32 or int64", mg_dtype_name(*dt));
  return MG_OK;
}

/* random_gamma(shape, alpha, beta, dtype, seed) */
mg_status infer_random_gamma(const mg_call *c, mg_meta *out) {
  double a = A_F(c, 1), b = A_F(c, 2);
  if (!(isfinite(a) && a > 0))
    return mg_seterror(MG_EARG, "%s: alpha (the shape parameter) must be finite and > 0, got %g", NAME(c), a);
  if (!(isfinite(b) && b > 0))
    return mg_seterror(MG_EARG, "%s: beta (the rate, 1/scale) must be finite and > 0, got %g", NAME(c), b);
  mg_status st = rm_shape(c, 0, out);
  if (!st) st = rm_dtype(c, 3, 1, &out->dtype);
  return st;
}

/* random_poisson(shape, lam, dtype, seed) */
mg_status infer_random_poisson(const mg_call *c, mg_meta *out) {
  double lam = A_F(c, 1);
  if (!(isfinite(lam) && lam >= 0 && lam < 1e15))
    return mg_seterror(MG_EARG, "%s: lam (the rate) must be finite, >= 0 and below 1e15, got %g", NAME(c), lam);
  mg_status st = rm_shape(c, 0, out);
  if (!st) st = rm_dtype(c, 2, 0, &out->dtype);
  if (!st && out->dtype == MG_INT32 && lam > 1e9)
    return mg_seterror(MG_EARG, "%s: lam=%g gives counts past int32's range: use int64 or a float dtype", NAME(c), lam);
  return st;
}

/* random_categorical(logits, num_samples, dtype, seed): (batch, classes) -> (batch, num_samples) */
mg_status infer_random_categorical(const mg_call *c, mg_meta *out) {
  const mg_tensor *lg = c->in[0];
  char sb[MG_SHAPE_BUF];
  if (lg->ndim != 2)
    return mg_seterror(MG_ESHAPE, "%s: logits must be 2-d (batch, classes), got shape %s", NAME(c),
                       mg_shape_str(lg->ndim, lg->shape, sb, sizeof sb));
  if (lg->dtype != MG_FLOAT32 && lg->dtype != MG_FLOAT64)
    return mg_seterror(MG_EDTYPE, "%s: logits must be float32 or float64, got %s", NAME(c),
                       mg_dtype_name((mg_dtype)lg->dtype));
  if (lg->shape[1] == 0 && lg->shape[0] != 0 && !mg_is_probe(lg->shape[0]))
    return mg_seterror(MG_ESHAPE, "%s: logits of shape %s have no classes to draw from", NAME(c),
                       mg_shape_str(lg->ndim, lg->shape, sb, sizeof sb));
  int64_t n = A_I(c, 0);
  if (n < 0) return mg_seterror(MG_EARG, "%s: num_samples must be >= 0, got %lld", NAME(c), (long long)n);
  mg_status st = rm_dtype(c, 1, 0, &out->dtype);
  if (st) return st;
  if (out->dtype != MG_INT32 && out->dtype != MG_INT64)
    return mg_seterror(MG_EDTYPE, "%s: dtype must be int32 or int64, got %s", NAME(c), mg_dtype_name(out->dtype));
  if (out->dtype == MG_INT32 && !mg_is_probe(lg->shape[1]) && lg->shape[1] > INT32_MAX)
    return mg_seterror(MG_EARG, "%s: %lld classes do not fit int32", NAME(c), (long long)lg->shape[1]);
  out->ndim = 2;
  out->shape[0] = lg->shape[0];
  out->shape[1] = n;
  out->cast[0] = MG_NDTYPES;
  return MG_OK;
}

/* random_permutation(x): the positions 1..n (from the index base) of x's first axis, shuffled */
mg_status infer_random_permutation(const mg_call *c, mg_meta *out) {
  const mg_tensor *x = c->in[0];
  if (x->ndim == 0)
    return mg_seterror(MG_ESHAPE, "%s: x must have at least one axis to shuffle along, got a 0-d tensor", NAME(c));
  out->dtype = MG_INT64;
  out->ndim = 1;
  out->shape[0] = x->shape[0];
  out->cast[0] = MG_NDTYPES;
  return MG_OK;
}
