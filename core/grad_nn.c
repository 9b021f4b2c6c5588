/*
 * grad_nn.c — the gradient rules of the neural-network ops.
 *
 * Written like grad.c (grad_scope.h): each rule is straight-line mg_apply
 * calls, so the gradients are recorded by outer tapes and stage into graphs.
 * The convolution family closes under differentiation as in TensorFlow:
 * conv2d's gradients are conv2d_backprop_input and conv2d_backprop_filter
 * (conv1d's and conv3d's their own 1-d and 3-d ops, by the same rules),
 * and since each of the three is linear in each input, the gradient of any
 * one of them is built from the other two (conv2d_transpose is
 * backprop_input under another name). Pooling closes the same way:
 * avg_pool2d and avg_pool2d_grad are each other's adjoints, and max pooling
 * goes max_pool2d -> max_pool2d_grad -> max_pool2d_grad_grad -> back to
 * max_pool2d_grad (the position of each window's maximum is locally
 * constant, so x gets a zero gradient from the gradient ops). Dropout is
 * linear with a fixed mask, so its gradient is dropout with the same seed.
 */
#include "grad_scope.h"
#include "nn.h"

/* The conv attributes "strides padding dilation groups explicit_padding" of
 * the recorded op, starting at slot `from`, moved to slot `to` of a new set;
 * slot 0 of the result holds `shape` (ndim values) when given. Every slot is
 * marked set: the recorded values already carry the defaults. */
static mg_attrs nn_conv_attrs(const mg_grad_call *g, int from, int to, int count, const int64_t *shape, int ndim) {
  mg_attrs a;
  a.set = 0;
  for (int k = 0; k < count; k++) {
    a.v[to + k] = g->attrs->v[from + k];
    a.set |= 1u << (to + k);
  }
  if (shape) {
    a.v[0].n = ndim;
    memcpy(a.v[0].i, shape, (size_t)ndim * sizeof(int64_t));
    a.set |= 1u;
  }
  return a;
}

static mg_tensor *nn_app2(gs *s, mg_op op, mg_tensor *a, mg_tensor *b, const mg_attrs *at) {
  mg_tensor *in[2] = {a, b};
  return app(s, op, in, 2, at);
}

/* The ops of one family, by the number of spatial axes (1, 2, 3): a rule
 * recorded for conv3d builds its gradient from conv3d's own adjoints. */
static const mg_op nn_conv_ops[3][3] = {
    {MG_OP_CONV1D, MG_OP_CONV1D_BACKPROP_INPUT, MG_OP_CONV1D_BACKPROP_FILTER},
    {MG_OP_CONV2D, MG_OP_CONV2D_BACKPROP_INPUT, MG_OP_CONV2D_BACKPROP_FILTER},
    {MG_OP_CONV3D, MG_OP_CONV3D_BACKPROP_INPUT, MG_OP_CONV3D_BACKPROP_FILTER}};
static const mg_op nn_pool_ops[3][4] = {
    {MG_OP_MAX_POOL1D_GRAD, MG_OP_MAX_POOL1D_GRAD_GRAD, MG_OP_AVG_POOL1D, MG_OP_AVG_POOL1D_GRAD},
    {MG_OP_MAX_POOL2D_GRAD, MG_OP_MAX_POOL2D_GRAD_GRAD, MG_OP_AVG_POOL2D, MG_OP_AVG_POOL2D_GRAD},
    {MG_OP_MAX_POOL3D_GRAD, MG_OP_MAX_POOL3D_GRAD_GRAD, MG_OP_AVG_POOL3D, MG_OP_AVG_POOL3D_GRAD}};
enum { NN_FWD, NN_BIN, NN_BFIL };
enum { NN_MAXG, NN_MAXGG, NN_AVG, NN_AVGG };
#define CONV_OP(k) (nn_conv_ops[mg_nn_spatial(g->op) - 1][k])
#define POOL_OP(k) (nn_pool_ops[mg_nn_spatial(g->op) - 1][k])

/* ---- convolutions ------------------------------------------------------------ */

RULE(grad_conv) {  /* x: backprop_input(g, w); w: backprop_filter(x, g) */
  gs s = gs_begin(g);
  mg_attrs ai = nn_conv_attrs(g, 0, 1, 5, X->shape, X->ndim), af = nn_conv_attrs(g, 0, 1, 5, Y->shape, Y->ndim);
  SET(0, nn_app2(&s, CONV_OP(NN_BIN), GOUT, Y, &ai));
  SET(1, nn_app2(&s, CONV_OP(NN_BFIL), X, GOUT, &af));
  return gs_end(&s);
}

RULE(grad_conv_backprop_input) {  /* dx = B_in(dy, w): dy gets conv(G, w), w gets B_f(G, dy) */
  gs s = gs_begin(g);
  mg_attrs ac = nn_conv_attrs(g, 1, 0, 5, NULL, 0), af = nn_conv_attrs(g, 1, 1, 5, Y->shape, Y->ndim);
  SET(0, nn_app2(&s, CONV_OP(NN_FWD), GOUT, Y, &ac));
  SET(1, nn_app2(&s, CONV_OP(NN_BFIL), GOUT, X, &af));
  return gs_end(&s);
}

RULE(grad_conv_backprop_filter) {  /* dw = B_f(x, dy): x gets B_in(dy, G), dy gets conv(x, G) */
  gs s = gs_begin(g);
  mg_attrs ai = nn_conv_attrs(g, 1, 1, 5, X->shape, X->ndim), ac = nn_conv_attrs(g, 1, 0, 5, NULL, 0);
  SET(0, nn_app2(&s, CONV_OP(NN_BIN), Y, GOUT, &ai));
  SET(1, nn_app2(&s, CONV_OP(NN_FWD), X, GOUT, &ac));
  return gs_end(&s);
}

/* out = B_in(x, w) with input_shape = out's shape. The transposed schema is
 * strides 0, padding 1, output_padding 2, dilation 3, explicit_padding 4;
 * the conv schema strides 0, padding 1, dilation 2, groups 3 (default 1),
 * explicit_padding 4. */
RULE(grad_conv_transpose) {
  gs s = gs_begin(g);
  mg_attrs ac = nn_conv_attrs(g, 0, 0, 2, NULL, 0);  /* strides, padding */
  ac.v[2] = g->attrs->v[3];                           /* dilation */
  ac.v[4] = g->attrs->v[4];                           /* explicit_padding */
  ac.set |= 4u | 16u;
  mg_attrs af = ac;                                   /* the same, one slot later */
  af.set = 0;
  for (int k = 0; k < 5; k++)
    if ((ac.set >> k) & 1u) {
      af.v[k + 1] = ac.v[k];
      af.set |= 2u << k;
    }
  af.v[0].n = Y->ndim;
  memcpy(af.v[0].i, Y->shape, (size_t)Y->ndim * sizeof(int64_t));
  af.set |= 1u;
  SET(0, nn_app2(&s, CONV_OP(NN_FWD), GOUT, Y, &ac));
  SET(1, nn_app2(&s, CONV_OP(NN_BFIL), GOUT, X, &af));
  return gs_end(&s);
}

/* ---- pooling -------------------------------------------------------------------- */

RULE(grad_max_pool) {
  gs s = gs_begin(g);
  SET(0, nn_app2(&s, POOL_OP(NN_MAXG), X, GOUT, g->attrs));
  return gs_end(&s);
}

RULE(grad_max_pool_grad) {  /* linear in dy; locally constant in x */
  gs s = gs_begin(g);
  SET(0, zeros(&s, X));
  SET(1, nn_app2(&s, POOL_OP(NN_MAXGG), X, GOUT, g->attrs));
  return gs_end(&s);
}

RULE(grad_max_pool_grad_grad) {
  gs s = gs_begin(g);
  SET(0, zeros(&s, X));
  SET(1, nn_app2(&s, POOL_OP(NN_MAXG), X, GOUT, g->attrs));
  return gs_end(&s);
}

/* avg_pool's schema "ksize strides padding dilation explicit_padding
 * count_include_pad" is avg_pool_grad's after its input_shape. */
RULE(grad_avg_pool) {
  gs s = gs_begin(g);
  mg_attrs a = nn_conv_attrs(g, 0, 1, 6, X->shape, X->ndim);
  SET(0, app(&s, POOL_OP(NN_AVGG), (mg_tensor *const *)&g->gout, 1, &a));
  return gs_end(&s);
}

RULE(grad_avg_pool_grad) {
  gs s = gs_begin(g);
  mg_attrs a = nn_conv_attrs(g, 1, 0, 6, NULL, 0);
  SET(0, app(&s, POOL_OP(NN_AVG), (mg_tensor *const *)&g->gout, 1, &a));
  return gs_end(&s);
}

/* ---- batch norm, dropout, embedding --------------------------------------------- */

/* y = (x - mean) r scale + offset, r = (variance + eps)^-1/2. The rule works
 * in y's shape; the tape sums the broadcast axes back to each parameter. */
RULE(grad_batch_norm) {
  gs s = gs_begin(g);
  mg_tensor *mean = g->in[1], *var = g->in[2], *scale = g->in[4];
  mg_tensor *r = A1(&s, MG_OP_RSQRT, A2(&s, MG_OP_ADD, var, S(&s, g->attrs->v[0].f)));
  mg_tensor *gsc = mul(&s, GOUT, scale);
  mg_tensor *dx = mul(&s, gsc, r);
  mg_tensor *dev = NEED(2) || NEED(4) ? A2(&s, MG_OP_SUB, X, mean) : NULL;
  SET(0, dx);
  SET(1, A1(&s, MG_OP_NEG, dx));
  SET(2, mul(&s, mul(&s, gsc, dev), mulc(&s, mul(&s, r, mul(&s, r, r)), -0.5)));
  SET(3, GOUT);
  SET(4, mul(&s, GOUT, mul(&s, dev, r)));
  return gs_end(&s);
}

RULE(grad_dropout) {  /* the same mask: dropout of the gradient with the same seed */
  gs s = gs_begin(g);
  SET(0, nn_app2(&s, MG_OP_DROPOUT, GOUT, Y, g->attrs));
  return gs_end(&s);
}

RULE(grad_take_grad) {  /* take_grad is take's adjoint, so its own adjoint is take */
  gs s = gs_begin(g);
  mg_attrs a = {.set = g->attrs->set & 1u};
  a.v[0] = g->attrs->v[0];
  SET(0, nn_app2(&s, MG_OP_TAKE, GOUT, Y, &a));
  return gs_end(&s);
}

RULE(grad_index_add) {  /* x passes through; src's slices were added: take reads them back */
  gs s = gs_begin(g);
  SET(0, GOUT);
  mg_attrs a = {.set = g->attrs->set & 1u};
  a.v[0] = g->attrs->v[0];
  SET(2, nn_app2(&s, MG_OP_TAKE, GOUT, Y, &a));
  return gs_end(&s);
}

/* ---- softmax cross-entropy ---------------------------------------------------------- */

/* The softmax VJP along the last axis: p * (v - sum(v * p)). */
static mg_tensor *nn_softmax_vjp(gs *s, const mg_grad_call *g, mg_tensor *p, mg_tensor *v) {
  int last = p ? p->ndim - 1 : 0;
  return mul(s, p, A2(s, MG_OP_SUB, v, sum_keep(s, g, mul(s, v, p), last)));
}

/* Sum over the last axis, that axis dropped. */
static mg_tensor *nn_sum_last(gs *s, const mg_grad_call *g, mg_tensor *t) {
  mg_attrs a = {.set = 1u};
  a.v[0].n = 1;
  a.v[0].i[0] = -1;
  (void)g;
  return app(s, MG_OP_SUM, &t, 1, &a);
}

RULE(grad_softmax_xent) {  /* loss = sum(labels * (lse - logits)) */
  gs s = gs_begin(g);
  mg_tensor *in[3] = {X, Y, GOUT};
  SET(0, app(&s, MG_OP_SOFTMAX_XENT_GRAD, in, 3, NULL));
  SET(1, A1(&s, MG_OP_NEG, mul(&s, A1(&s, MG_OP_LOG_SOFTMAX, X), unsqueeze(&s, g, GOUT, -1))));
  return gs_end(&s);
}

RULE(grad_softmax_xent_grad) {  /* out = (p S - y) g, S = sum(y) */
  gs s = gs_begin(g);
  mg_tensor *p = A1(&s, MG_OP_SOFTMAX, X), *gin = g->in[2];
  mg_tensor *gg = mul(&s, GOUT, unsqueeze(&s, g, gin, -1));
  if (NEED(0)) {
    mg_tensor *tot = sum_keep(&s, g, Y, X->ndim - 1);
    g->gin[0] = give(&s, mul(&s, tot, nn_softmax_vjp(&s, g, p, gg)));
  }
  SET(1, A2(&s, MG_OP_SUB, sum_keep(&s, g, mul(&s, gg, p), X->ndim - 1), gg));
  if (NEED(2)) {
    mg_tensor *d = A2(&s, MG_OP_SUB, mul(&s, p, sum_keep(&s, g, Y, X->ndim - 1)), Y);
    g->gin[2] = give(&s, nn_sum_last(&s, g, mul(&s, GOUT, d)));
  }
  return gs_end(&s);
}

RULE(grad_sparse_softmax_xent) {
  gs s = gs_begin(g);
  mg_tensor *in[3] = {X, Y, GOUT};
  SET(0, app(&s, MG_OP_SPARSE_SOFTMAX_XENT_GRAD, in, 3, NULL));
  return gs_end(&s);
}

RULE(grad_sparse_softmax_xent_grad) {  /* out = (p - onehot) g */
  gs s = gs_begin(g);
  mg_tensor *p = A1(&s, MG_OP_SOFTMAX, X), *gin = g->in[2];
  SET(0, nn_softmax_vjp(&s, g, p, mul(&s, GOUT, unsqueeze(&s, g, gin, -1))));
  if (NEED(2)) {
    mg_attrs oa = {.set = 3u};
    oa.v[0].n = oa.v[1].n = 1;
    oa.v[0].i[0] = X->shape[X->ndim - 1];
    oa.v[1].i[0] = X->dtype;
    mg_tensor *oh = app(&s, MG_OP_ONE_HOT, (mg_tensor *const *)&g->in[1], 1, &oa);
    g->gin[2] = give(&s, nn_sum_last(&s, g, mul(&s, GOUT, A2(&s, MG_OP_SUB, p, oh))));
  }
  return gs_end(&s);
}
