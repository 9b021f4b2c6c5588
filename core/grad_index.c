/*
 * grad_index.c — gradient rules of the N-d indexing ops (issue 17).
 *
 * gather_nd and the scatters are each other's adjoints: gather_nd's gradient
 * adds g back at the gathered slices (tensor_scatter_nd_add into zeros), a
 * scatter's updates get gather_nd of g. tensor_scatter_nd_update's tensor
 * loses the gradient of the overwritten slices. max/min follow TF: the
 * gradient is shared evenly among every input (tensor element or update)
 * equal to the result. The segment reductions read g back per row with take
 * along the first axis (segment_sum's adjoint); max/min share it among the
 * elements equal to the segment's result, prod uses TF's rule, exact when a
 * segment holds zeros (the product of the other elements).
 */
#include "grad_scope.h"

#define Z (g->in[2])

static mg_tensor *castto(gs *s, mg_tensor *x, mg_dtype dt) {
  mg_attrs a = {.set = 1u};
  a.v[0].n = 1;
  a.v[0].i[0] = dt;
  return app(s, MG_OP_CAST, &x, 1, &a);
}

static mg_tensor *gather_nd(gs *s, mg_tensor *x, mg_tensor *idx) { return A2(s, MG_OP_GATHER_ND, x, idx); }

static mg_tensor *scatter(gs *s, mg_op op, mg_tensor *x, mg_tensor *idx, mg_tensor *u) {
  mg_tensor *in[3] = {x, idx, u};
  return s->st ? NULL : app(s, op, in, 3, NULL);
}

static mg_tensor *where(gs *s, mg_tensor *c, mg_tensor *a, mg_tensor *b) {
  mg_tensor *in[3] = {c, a, b};
  return s->st ? NULL : app(s, MG_OP_WHERE, in, 3, NULL);
}

RULE(grad_gather_nd) {
  gs s = gs_begin(g);
  SET(0, scatter(&s, MG_OP_TENSOR_SCATTER_ND_ADD, zeros(&s, X), Y, GOUT));
  return gs_end(&s);
}

RULE(grad_tensor_scatter_nd_add) {
  gs s = gs_begin(g);
  SET(0, GOUT);
  SET(2, gather_nd(&s, GOUT, Y));
  return gs_end(&s);
}

RULE(grad_tensor_scatter_nd_sub) {
  gs s = gs_begin(g);
  SET(0, GOUT);
  SET(2, NEED(2) ? A1(&s, MG_OP_NEG, gather_nd(&s, GOUT, Y)) : NULL);
  return gs_end(&s);
}

RULE(grad_tensor_scatter_nd_update) {
  gs s = gs_begin(g);
  SET(0, NEED(0) ? scatter(&s, MG_OP_TENSOR_SCATTER_ND_UPDATE, GOUT, Y, zeros(&s, Z)) : NULL);
  SET(2, gather_nd(&s, GOUT, Y));
  return gs_end(&s);
}

/* TF's _TensorScatterMinOrMaxGrad: each input equal to the output shares g. */
RULE(grad_tensor_scatter_nd_minmax) {
  gs s = gs_begin(g);
  mg_dtype dt = (mg_dtype)GOUT->dtype;
  mg_tensor *x_ind = castto(&s, A2(&s, MG_OP_EQUAL, X, OUT), dt);
  mg_tensor *y_ind = castto(&s, A2(&s, MG_OP_EQUAL, Z, gather_nd(&s, OUT, Y)), dt);
  mg_tensor *ys_ind = scatter(&s, MG_OP_TENSOR_SCATTER_ND_ADD, zeros(&s, GOUT), Y, y_ind);
  mg_tensor *ind = A2(&s, MG_OP_ADD, x_ind, ys_ind);
  mg_tensor *share = A2(&s, MG_OP_DIV, GOUT, ind);
  SET(0, mul(&s, share, x_ind));
  SET(2, mul(&s, gather_nd(&s, share, Y), y_ind));
  return gs_end(&s);
}

/* Rows of a per-segment tensor t read back at each id: the shape of data. */
static mg_tensor *per_row(gs *s, const mg_grad_call *g, mg_tensor *t) {
  mg_attrs a = {.set = 1u};
  a.v[0].n = 1;
  a.v[0].i[0] = base(g);
  mg_tensor *in[2] = {t, Y};
  return s->st ? NULL : app(s, MG_OP_TAKE, in, 2, &a);
}

RULE(grad_segment_sum) {
  gs s = gs_begin(g);
  SET(0, per_row(&s, g, GOUT));
  return gs_end(&s);
}

/* max/min: g shared evenly among the elements equal to their segment's result (TF). */
RULE(grad_segment_minmax) {
  gs s = gs_begin(g);
  mg_dtype dt = (mg_dtype)GOUT->dtype;
  mg_tensor *sel = A2(&s, MG_OP_EQUAL, X, per_row(&s, g, OUT));
  mg_tensor *fsel = castto(&s, sel, dt);
  mg_tensor *cin[2] = {fsel, Y};
  mg_tensor *count = s.st ? NULL : app(&s, MG_OP_UNSORTED_SEGMENT_SUM, cin, 2, g->attrs);
  mg_tensor *share = per_row(&s, g, A2(&s, MG_OP_DIV, GOUT, count));
  SET(0, where(&s, sel, share, S(&s, 0)));
  return gs_end(&s);
}

/* prod: g * prod / x where x != 0; where x is the segment's only zero, g times
 * the product of the others; 0 where the segment has two zeros or more. */
RULE(grad_segment_prod) {
  gs s = gs_begin(g);
  mg_tensor *zero = A2(&s, MG_OP_EQUAL, X, S(&s, 0));
  mg_tensor *nzin[2] = {castto(&s, zero, MG_INT64), Y};
  mg_tensor *nzeros = s.st ? NULL : per_row(&s, g, app(&s, MG_OP_UNSORTED_SEGMENT_SUM, nzin, 2, g->attrs));
  mg_tensor *pin[2] = {where(&s, zero, S(&s, 1), X), Y};
  mg_tensor *prod_nz = s.st ? NULL : per_row(&s, g, app(&s, MG_OP_UNSORTED_SEGMENT_PROD, pin, 2, g->attrs));
  mg_tensor *at_zero = where(&s, A2(&s, MG_OP_EQUAL, nzeros, S(&s, 1)), prod_nz, S(&s, 0));
  mg_tensor *elsewhere = A2(&s, MG_OP_DIV, per_row(&s, g, OUT), where(&s, zero, S(&s, 1), X));
  mg_tensor *d = where(&s, zero, at_zero, elsewhere);
  SET(0, mul(&s, per_row(&s, g, GOUT), d));
  return gs_end(&s);
}
