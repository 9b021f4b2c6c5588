/*
 * grad_attn.c — the gradient rule of the fused attention op.
 *
 * The op's packed output (the attention output with each row's logsumexp
 * appended) carries what FlashAttention's backward needs, so the rule is one
 * call of dot_product_attention_grad on q, k, v, that output and its
 * gradient (and the mask). When query, key and value share one known shape
 * and all three gradients are wanted, one call computes them together (part
 * 3, stacked) and the rule takes the three slices as views; otherwise each
 * wanted gradient is its own call (part 0, 1, 2), each recomputing the
 * blocks it needs. The mask gets no gradient. The gradient op itself has no
 * rule: a second derivative of attention is an error that says so.
 */
#include "grad_scope.h"
#include "graph.h"  /* mg_is_probe */

RULE(grad_dot_product_attention) {
  gs s = gs_begin(g);
  int n = g->nin == 4 ? 6 : 5, stack = NEED(0) && NEED(1) && NEED(2);
  mg_tensor *in[6] = {g->in[0], g->in[1], g->in[2], OUT, GOUT, g->nin == 4 ? g->in[3] : NULL};
  for (int d = 0; stack && d < 4; d++)
    stack = X->shape[d] == g->in[1]->shape[d] && X->shape[d] == g->in[2]->shape[d] && !mg_is_probe(X->shape[d]);
  mg_attrs a = *g->attrs;
  if (stack) {
    attrs_add_int(&a, 2, 3);
    mg_tensor *all = app(&s, MG_OP_DOT_PRODUCT_ATTENTION_GRAD, in, n, &a);
    for (int i = 0; i < 3; i++) {
      mg_attrs sel = {.set = 3u};
      sel.v[0].n = sel.v[1].n = 1;
      sel.v[0].i[0] = base(g);
      sel.v[1].i[0] = i + base(g);
      SET(i, s.st ? NULL : app(&s, MG_OP_SELECT, &all, 1, &sel));
    }
  } else {
    for (int i = 0; i < 3; i++) {
      if (!NEED(i)) continue;
      attrs_add_int(&a, 2, i);
      SET(i, app(&s, MG_OP_DOT_PRODUCT_ATTENTION_GRAD, in, n, &a));
    }
  }
  return gs_end(&s);
}

RULE(grad_dot_product_attention_grad) {
  return mg_seterror(MG_ESTATE,
                     "%s: the second derivative of dot_product_attention is not implemented (its gradient "
                     "is a fused kernel with no gradient rule of its own)",
                     g->info->name);
}
