/*
 * infer_attn.c — shape and dtype inference for the fused attention op and
 * its gradient (kernels/attention.c).
 *
 * dot_product_attention(q, k, v[, mask]): q (B, Tq, Hq, D), k (B, Tk, Hk, D),
 * v (B, Tk, Hk, Dv), Keras 3's layout; Hk divides Hq; the mask is bool and
 * broadcasts to (B, Hq, Tq, Tk). The result is packed, (B, Tq, Hq, Dv + 1):
 * the output with each row's logsumexp appended (the stdlib's
 * mg.dot_product_attention slices the output off). The gradient op takes
 * q, k, v, the packed output, its gradient and the mask, and gives dq, dk,
 * dv or (part 3) the three stacked when they share one shape. Sizes unknown
 * while staging (probes) pass the checks that need their values; the head
 * size of v must be known, since the packed output's last axis is one more.
 */
#include "graph.h"  /* mg_is_probe */
#include <math.h>

#define NAME(c) ((c)->info->name)

static int same_size(int64_t a, int64_t b) { return a == b || mg_is_probe(a) || mg_is_probe(b); }

static mg_status att_err_pair(const mg_call *c, const char *what, const char *an, const mg_tensor *a,
                              const char *bn, const mg_tensor *b) {
  char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
  return mg_seterror(MG_ESHAPE, "%s: %s: %s has shape %s, %s has shape %s", NAME(c), what, an,
                     mg_shape_str(a->ndim, a->shape, sa, sizeof sa), bn,
                     mg_shape_str(b->ndim, b->shape, sb, sizeof sb));
}

/* Checks q, k, v (inputs 0-2) and the mask (input `mi`, or none); the
 * common float dtype in *dt. */
static mg_status att_check(const mg_call *c, int mi, mg_dtype *dt) {
  static const char *names[3] = {"query", "key", "value"};
  const mg_tensor *q = c->in[0], *k = c->in[1], *v = c->in[2];
  char sb[MG_SHAPE_BUF];
  for (int i = 0; i < 3; i++)
    if (c->in[i]->ndim != 4)
      return mg_seterror(MG_ESHAPE, "%s: %s must be 4-d (batch, sequence, heads, head size), got shape %s",
                         NAME(c), names[i], mg_shape_str(c->in[i]->ndim, c->in[i]->shape, sb, sizeof sb));
  *dt = mg_promote_inputs(c->in, 3);
  if (*dt != MG_FLOAT32 && *dt != MG_FLOAT64)  /* named, not mg_dtype_is_float: the kernels have these two */
    return mg_seterror(MG_EDTYPE, "%s: query, key and value must be float32 or float64, got %s, %s and %s",
                       NAME(c), mg_dtype_name((mg_dtype)q->dtype), mg_dtype_name((mg_dtype)k->dtype),
                       mg_dtype_name((mg_dtype)v->dtype));
  if (!same_size(q->shape[0], k->shape[0]) || !same_size(q->shape[0], v->shape[0]))
    return mg_seterror(MG_ESHAPE, "%s: query, key and value must have the same batch size, got %lld, %lld and %lld",
                       NAME(c), (long long)q->shape[0], (long long)k->shape[0], (long long)v->shape[0]);
  if (!same_size(k->shape[1], v->shape[1]) || !same_size(k->shape[2], v->shape[2]))
    return att_err_pair(c, "key and value must have the same sequence length and number of heads", "key", k,
                        "value", v);
  if (!same_size(q->shape[3], k->shape[3]))
    return att_err_pair(c, "query and key must have the same head size (last axis)", "query", q, "key", k);
  if (!mg_is_probe(q->shape[2]) && !mg_is_probe(k->shape[2]) &&
      (k->shape[2] == 0 ? q->shape[2] != 0 : q->shape[2] % k->shape[2] != 0))
    return att_err_pair(c, "the number of key/value heads must divide the number of query heads", "query", q,
                        "key", k);
  if (k->shape[1] == 0 && q->shape[1] != 0 && !mg_is_probe(q->shape[1]))
    return att_err_pair(c, "the key sequence is empty (a softmax over no keys)", "query", q, "key", k);
  if (mi >= 0) {
    const mg_tensor *m = c->in[mi];
    if (m->dtype != MG_BOOL)
      return mg_seterror(MG_EDTYPE, "%s: mask must be a bool tensor (true = attend), got %s", NAME(c),
                         mg_dtype_name((mg_dtype)m->dtype));
    int64_t want[4] = {q->shape[0], q->shape[2], q->shape[1], k->shape[1]};
    int ok = m->ndim <= 4;
    for (int d = 0; ok && d < m->ndim; d++) {
      int64_t s = m->shape[d], w = want[4 - m->ndim + d];
      ok = s == 1 || same_size(s, w);
    }
    if (!ok) {
      char sm[MG_SHAPE_BUF];
      return mg_seterror(MG_ESHAPE, "%s: mask of shape %s does not broadcast to (batch, heads, query length, "
                         "key length) = %s", NAME(c), mg_shape_str(m->ndim, m->shape, sm, sizeof sm),
                         mg_shape_str(4, want, sb, sizeof sb));
    }
  }
  if (A_N(c, 0) && !isfinite(A_F(c, 0)))
    return mg_seterror(MG_EARG, "%s: scale must be a finite number, got %g", NAME(c), A_F(c, 0));
  return MG_OK;
}

mg_status infer_dot_product_attention(const mg_call *c, mg_meta *out) {
  if (c->nin != 3 && c->nin != 4)
    return mg_seterror(MG_EARG, "%s: takes query, key, value and an optional mask, got %d tensors", NAME(c), c->nin);
  mg_dtype dt;
  mg_status st = att_check(c, c->nin == 4 ? 3 : -1, &dt);
  if (st) return st;
  const mg_tensor *q = c->in[0], *v = c->in[2];
  if (mg_is_probe(v->shape[3]))
    return mg_seterror(MG_ESHAPE, "%s: the head size of value (its last axis) must be known when staged", NAME(c));
  out->dtype = dt;
  out->ndim = 4;
  out->shape[0] = q->shape[0], out->shape[1] = q->shape[1], out->shape[2] = q->shape[2];
  out->shape[3] = v->shape[3] + 1;
  for (int i = 0; i < 3; i++) out->cast[i] = dt;
  out->cast[3] = MG_NDTYPES;
  return MG_OK;
}

mg_status infer_dot_product_attention_grad(const mg_call *c, mg_meta *out) {
  if (c->nin != 5 && c->nin != 6)
    return mg_seterror(MG_EARG, "%s: takes query, key, value, the packed output, its gradient and an optional mask, "
                       "got %d tensors", NAME(c), c->nin);
  mg_dtype dt;
  mg_status st = att_check(c, c->nin == 6 ? 5 : -1, &dt);
  if (st) return st;
  const mg_tensor *q = c->in[0], *k = c->in[1], *v = c->in[2];
  int64_t packed[4] = {q->shape[0], q->shape[1], q->shape[2], v->shape[3] + 1};
  for (int i = 3; i < 5; i++) {
    const mg_tensor *p = c->in[i];
    int ok = p->ndim == 4;
    for (int d = 0; ok && d < 4; d++) ok = same_size(p->shape[d], packed[d]);
    if (!ok) {
      char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
      return mg_seterror(MG_ESHAPE, "%s: %s must have the packed output's shape %s, got %s", NAME(c),
                         i == 3 ? "the output" : "the output gradient", mg_shape_str(4, packed, sa, sizeof sa),
                         mg_shape_str(p->ndim, p->shape, sb, sizeof sb));
    }
  }
  int part = (int)A_I(c, 2);
  const mg_tensor *src = part == 0 ? q : part == 1 ? k : v;
  if (part == 3) {
    for (int d = 0; d < 4; d++)
      if (q->shape[d] != k->shape[d] || q->shape[d] != v->shape[d] || mg_is_probe(q->shape[d]))
        return att_err_pair(c, "part 3 (all three gradients stacked) needs query, key and value of one known shape",
                            "query", q, "value", v);
  }
  out->dtype = dt;
  out->ndim = part == 3 ? 5 : 4;
  int off = part == 3;
  if (part == 3) out->shape[0] = 3;
  memcpy(out->shape + off, src->shape, 4 * sizeof(int64_t));
  for (int i = 0; i < MG_CAST_SLOTS; i++) out->cast[i] = dt;
  out->cast_rest = dt;  /* the output gradient (input 4) */
  if (c->nin == 6) {    /* inputs past the cast slots share cast_rest: the mask must stay bool */
    if (c->in[4]->dtype != dt)
      return mg_seterror(MG_EDTYPE, "%s: the output gradient must be %s like the inputs, got %s", NAME(c),
                         mg_dtype_name(dt), mg_dtype_name((mg_dtype)c->in[4]->dtype));
    out->cast_rest = MG_NDTYPES;
  }
  return MG_OK;
}
