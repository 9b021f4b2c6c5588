/*
 * attention.c — fused scaled dot-product attention (Keras 3's
 * keras.ops.dot_product_attention), forward and backward, after
 * FlashAttention (Dao et al. 2022; FlashAttention-2's loop order).
 *
 * Layout as Keras: q (B, Tq, Hq, D), k (B, Tk, Hk, D), v (B, Tk, Hk, Dv),
 * Hk dividing Hq (grouped-query attention: query head h reads key/value head
 * h / (Hq/Hk)); an optional boolean mask broadcast to (B, Hq, Tq, Tk); the
 * causal mask keeps key j <= query i (Keras's tril, top-left aligned).
 *
 * The score matrix is never formed: for each block of ATT_BR query rows the
 * key blocks of ATT_BC keys are visited in order, the block's scores
 * S = scale Q K^T computed by one gemm, and an online softmax keeps each
 * row's running maximum m and sum l, rescaling the partial output before
 * adding P V. The op's output is packed: the attention output with the
 * row's logsumexp m + log l appended as column Dv, (B, Tq, Hq, Dv + 1); the
 * stdlib slices the output off, and the backward reads the logsumexp from
 * it instead of keeping the probabilities. The backward, per (batch, key
 * head), recomputes each block's P = exp(S - lse), accumulates
 * dV += P^T dO, dS = P (dO V^T - D_i) with D_i = rowsum(dO * O) (minus the
 * logsumexp column's own gradient, which makes that column differentiable
 * too), dQ += scale dS K and dK += scale dS^T Q; dK and dV of a head live in
 * the thread's workspace until the head is done. Masked logits are Keras's
 * large negative constant (-0.7 * float32 max), so a row with every key
 * masked averages all values uniformly, as Keras and JAX do; with only the
 * causal mask, key blocks entirely past a query block are skipped.
 *
 * Work: forward tasks are (batch, head, query block), backward tasks
 * (batch, key head), spread over OpenMP threads; each gemm runs on one
 * BLIS thread (small products as plain loops). Workspace per thread: two
 * ATT_BR x ATT_BC blocks plus, backward, one head's dK and dV.
 *
 * dtypes: float32 and float64 (the gradient check). The blocks are read in
 * place through their strides; a bfloat16 input would enter by converting
 * each block of Q, K, V (and dO) into float32 scratch where att_scores and
 * the P V / dO V^T gemms read them, accumulating in float32 as here.
 */
#include "internal.h"
#include "ew.h"
#include <blis.h>
#include <math.h>
#include <omp.h>

#define ATT_BR 128             /* query rows per block */
#define ATT_BC 128             /* keys per block (128 x 128: within a few % of larger blocks, 64 KiB of scores) */
#define ATT_SMALL (24.0 * 24 * 24) /* multiply-adds below which a gemm runs as plain loops */
#define ATT_PAR_WORK (1 << 18) /* multiply-adds worth more than one thread */
#define ATT_NEG (-0.7 * 3.4028234663852886e38) /* Keras's masked logit for float32 */

typedef struct att_geom {
  int64_t B, Tq, Tk, Hq, Hk, D, Dv, group;
  int64_t qs[4], ks[4], vs[4];  /* element strides */
  const unsigned char *mask;    /* bool, or NULL */
  int64_t ms[4];                /* mask strides on (B, Hq, Tq, Tk), 0 where broadcast */
  int causal;
  double scale;
} att_geom;

#define T float
#define SFX _f32
#define ATT_EXP ew_expf
#define ATT_LOG logf
#define ATT_GEMM bli_sgemm_ex
#include "attention_body.h"
#undef T
#undef SFX
#undef ATT_EXP
#undef ATT_LOG
#undef ATT_GEMM

#define T double
#define SFX _f64
#define ATT_EXP exp
#define ATT_LOG log
#define ATT_GEMM bli_dgemm_ex
#include "attention_body.h"
#undef T
#undef SFX
#undef ATT_EXP
#undef ATT_LOG
#undef ATT_GEMM

/* x as the gemms can read it: itself when its last axis is unit-stride and
 * no other axis of size > 1 is broadcast (stride 0, which BLIS refuses);
 * otherwise a contiguous copy (*tmp, released by the caller). */
static mg_status att_readable(const mg_tensor *x, mg_tensor **use, mg_tensor **tmp) {
  int ok = x->ndim == 4 && (x->shape[3] <= 1 || x->strides[3] == 1);
  for (int d = 0; ok && d < 3; d++) ok = x->shape[d] <= 1 || x->strides[d] > 0;
  *tmp = NULL;
  *use = (mg_tensor *)x;
  if (ok) return MG_OK;
  mg_tensor *c = mg_tensor_header((mg_dtype)x->dtype, x->ndim, x->shape);
  if (!c) return mg_seterror(MG_ENOMEM, "dot_product_attention: out of memory");
  mg_status st = mg_tensor_alloc_storage(c);
  if (!st) st = mg_copy_into(c, x);
  if (st) {
    mg_tensor_release(c);
    return st;
  }
  *use = *tmp = c;
  return MG_OK;
}

/* The geometry from q, k, v, the optional mask (input 3 of the forward,
 * `mask` here) and the attributes scale (slot 0, unset = 1/sqrt(D)) and
 * causal (slot 1). */
static void att_setup(att_geom *g, const mg_call *c, const mg_tensor *q, const mg_tensor *k, const mg_tensor *v,
                      const mg_tensor *mask) {
  memset(g, 0, sizeof *g);
  g->B = q->shape[0], g->Tq = q->shape[1], g->Hq = q->shape[2], g->D = q->shape[3];
  g->Tk = k->shape[1], g->Hk = k->shape[2], g->Dv = v->shape[3];
  g->group = g->Hk ? g->Hq / g->Hk : 1;
  memcpy(g->qs, q->strides, sizeof g->qs);
  memcpy(g->ks, k->strides, sizeof g->ks);
  memcpy(g->vs, v->strides, sizeof g->vs);
  g->scale = A_N(c, 0) ? A_F(c, 0) : 1.0 / sqrt((double)(g->D ? g->D : 1));
  g->causal = (int)A_I(c, 1);
  if (mask) {
    g->mask = (const unsigned char *)mg_ptr(mask);
    int off = 4 - mask->ndim;  /* the mask's axes align with (B, Hq, Tq, Tk) from the right */
    for (int d = 0; d < mask->ndim; d++) g->ms[off + d] = mask->shape[d] == 1 ? 0 : mask->strides[d];
  }
}

mg_status k_dot_product_attention(const mg_call *c, mg_tensor *out) {
  mg_tensor *in[3], *tmp[3] = {NULL, NULL, NULL};
  mg_status st = MG_OK;
  for (int i = 0; i < 3 && !st; i++) st = att_readable(c->in[i], &in[i], &tmp[i]);
  if (!st) {
    att_geom g;
    att_setup(&g, c, in[0], in[1], in[2], c->nin > 3 ? c->in[3] : NULL);
    if (g.B * g.Tq * g.Hq == 0) {
    } else if (out->dtype == MG_FLOAT32) {
      st = att_forward_f32(&g, (const float *)mg_ptr(in[0]), (const float *)mg_ptr(in[1]),
                           (const float *)mg_ptr(in[2]), (float *)mg_ptr(out));
    } else {
      st = att_forward_f64(&g, (const double *)mg_ptr(in[0]), (const double *)mg_ptr(in[1]),
                           (const double *)mg_ptr(in[2]), (double *)mg_ptr(out));
    }
  }
  for (int i = 0; i < 3; i++)
    if (tmp[i]) mg_tensor_release(tmp[i]);
  return st;
}

/* Inputs q, k, v, the packed output, its gradient and the optional mask;
 * attribute slot 2 (`part`) picks dq (0), dk (1), dv (2) or all three
 * stacked (3: q, k and v of one shape). */
mg_status k_dot_product_attention_grad(const mg_call *c, mg_tensor *out) {
  mg_tensor *in[5], *tmp[5] = {NULL, NULL, NULL, NULL, NULL};
  mg_status st = MG_OK;
  for (int i = 0; i < 5 && !st; i++) st = att_readable(c->in[i], &in[i], &tmp[i]);
  if (!st) {
    att_geom g;
    att_setup(&g, c, in[0], in[1], in[2], c->nin > 5 ? c->in[5] : NULL);
    int part = (int)A_I(c, 2);
    size_t es = mg_dtype_size((mg_dtype)out->dtype);
    char *o = mg_ptr(out), *dst[3] = {NULL, NULL, NULL};
    if (part < 3) {
      dst[part] = o;
    } else {
      int64_t n = mg_tensor_numel(out) / 3;
      for (int i = 0; i < 3; i++) dst[i] = o + (size_t)(i * n) * es;
    }
    for (int i = 0; i < 3; i++) {  /* a head with no keys or no queries leaves zeros */
      int64_t n = i == 0 ? g.B * g.Tq * g.Hq * g.D : g.B * g.Tk * g.Hk * (i == 1 ? g.D : g.Dv);
      if (dst[i]) memset(dst[i], 0, (size_t)n * es);
    }
    if (g.B * g.Hk == 0 || g.Tq == 0 || g.Tk == 0) {
    } else if (out->dtype == MG_FLOAT32) {
      st = att_backward_f32(&g, (const float *)mg_ptr(in[0]), (const float *)mg_ptr(in[1]),
                            (const float *)mg_ptr(in[2]), (const float *)mg_ptr(in[3]), in[3]->strides,
                            (const float *)mg_ptr(in[4]), in[4]->strides, (float *)dst[0], (float *)dst[1],
                            (float *)dst[2]);
    } else {
      st = att_backward_f64(&g, (const double *)mg_ptr(in[0]), (const double *)mg_ptr(in[1]),
                            (const double *)mg_ptr(in[2]), (const double *)mg_ptr(in[3]), in[3]->strides,
                            (const double *)mg_ptr(in[4]), in[4]->strides, (double *)dst[0], (double *)dst[1],
                            (double *)dst[2]);
    }
  }
  for (int i = 0; i < 5; i++)
    if (tmp[i]) mg_tensor_release(tmp[i]);
  return st;
}
