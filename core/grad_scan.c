/*
 * grad_scan.c — gradient rules of the scans and of sort.
 *
 * cumsum's gradient is the cumsum of g in the other direction (the same
 * exclusive flag). cumulative_logsumexp's is TF's: the positive and the
 * negative parts of g go through a reverse cumulative_logsumexp in log space
 * (log|g| - out), so nothing overflows, and are exponentiated back with x
 * added. cumprod's is its own kernel (cumprod_grad, exact at zeros; see
 * kernels/scan.c), whose own gradient is not implemented: differentiating
 * cumprod twice is an error that says so. cummax/cummin scatter g back to the
 * position of the running extreme (cumargmax/cumargmin), and sort scatters g
 * back through argsort's positions.
 */
#include "grad_scope.h"
#include <math.h>

/* Attributes naming the 0-based axis a as an axis attribute value. */
static mg_attrs axis_attr(const mg_grad_call *g, int a) {
  mg_attrs at = {.set = 1u};
  at.v[0].n = 1;
  at.v[0].i[0] = a + base(g);
  return at;
}

/* The scan axis of a scan's attributes (slot 0; the first when unset). */
static int scan_axis0(const mg_grad_call *g) {
  if (g->attrs->v[0].n == 0) return 0;
  return norm_axis(g, g->attrs->v[0].i[0], X->ndim ? X->ndim : 1);
}

/* The same scan with reverse (slot rslot) flipped. */
static mg_attrs flipped(const mg_grad_call *g, int rslot) {
  mg_attrs a = *g->attrs;
  a.set |= 1u << rslot;
  a.v[rslot].n = 1;
  a.v[rslot].i[0] = !g->attrs->v[rslot].i[0];
  return a;
}

RULE(grad_cumsum) {
  gs s = gs_begin(g);
  mg_attrs a = flipped(g, 2);
  SET(0, app(&s, MG_OP_CUMSUM, (mg_tensor *const *)&g->gout, 1, &a));
  return gs_end(&s);
}

/* TF's rule in log space: dx = exp(rcum(log g+ - out) + x) - exp(rcum(log g- - out) + x), rcum
 * the cumulative_logsumexp the other way. A NaN in g stays NaN (both logs are NaN), and a
 * part with no weight (log 0 = -inf) stays -inf even where out is -inf, rather than
 * -inf - -inf = NaN (which a zero output gradient would otherwise turn into NaN, and which
 * a second derivative would carry through the other part). */
RULE(grad_cumulative_logsumexp) {
  gs s = gs_begin(g);
  mg_attrs a = flipped(g, 2);
  mg_tensor *ninf = S(&s, -INFINITY);
  mg_tensor *gneg = A1(&s, MG_OP_NEG, GOUT);
  mg_tensor *pos_in[3] = {A2(&s, MG_OP_LESS, GOUT, S(&s, 0)), ninf, A1(&s, MG_OP_LOG, GOUT)};
  mg_tensor *lpos = s.st ? NULL : app(&s, MG_OP_WHERE, pos_in, 3, NULL);
  mg_tensor *neg_in[3] = {A2(&s, MG_OP_GREATER, GOUT, S(&s, 0)), ninf, A1(&s, MG_OP_LOG, gneg)};
  mg_tensor *lneg = s.st ? NULL : app(&s, MG_OP_WHERE, neg_in, 3, NULL);
  mg_tensor *part[2] = {lpos, lneg}, *res[2] = {NULL, NULL};
  for (int k = 0; k < 2; k++) {
    mg_tensor *d_in[3] = {A2(&s, MG_OP_EQUAL, part[k], ninf), ninf, A2(&s, MG_OP_SUB, part[k], OUT)};
    mg_tensor *d = s.st ? NULL : app(&s, MG_OP_WHERE, d_in, 3, NULL);
    mg_tensor *c = app(&s, MG_OP_CUMULATIVE_LOGSUMEXP, &d, 1, &a);
    res[k] = A1(&s, MG_OP_EXP, A2(&s, MG_OP_ADD, c, X));
  }
  SET(0, A2(&s, MG_OP_SUB, res[0], res[1]));
  return gs_end(&s);
}

RULE(grad_cumprod) {
  gs s = gs_begin(g);
  mg_tensor *in[2] = {X, GOUT};
  SET(0, app(&s, MG_OP_CUMPROD_GRAD, in, 2, g->attrs));
  return gs_end(&s);
}

RULE(grad_cumprod_grad) {
  return mg_seterror(MG_ESTATE,
                     "%s: the second derivative of cumprod is not implemented (cumprod's gradient is "
                     "exact at zeros through its own kernel, which has no gradient rule)",
                     g->info->name);
}

/* g added at the positions idx (an int64 tensor of x's shape) name along axis a. */
static mg_tensor *scatter_back(gs *s, const mg_grad_call *g, mg_tensor *idx, int a) {
  if (X->ndim == 0) return GOUT;
  mg_attrs at = axis_attr(g, a);
  mg_tensor *in[3] = {zeros(s, X), idx, GOUT};
  return s->st ? NULL : app(s, MG_OP_SCATTER_ADD, in, 3, &at);
}

static mg_status grad_cumext(const mg_grad_call *g, mg_op argop) {
  gs s = gs_begin(g);
  mg_tensor *idx = app(&s, argop, (mg_tensor *const *)&g->in[0], 1, g->attrs);
  SET(0, scatter_back(&s, g, idx, scan_axis0(g)));
  return gs_end(&s);
}
RULE(grad_cummax) { return grad_cumext(g, MG_OP_CUMARGMAX); }
RULE(grad_cummin) { return grad_cumext(g, MG_OP_CUMARGMIN); }

RULE(grad_sort) {
  gs s = gs_begin(g);
  mg_tensor *idx = app(&s, MG_OP_ARGSORT, (mg_tensor *const *)&g->in[0], 1, g->attrs);
  SET(0, scatter_back(&s, g, idx, norm_axis(g, g->attrs->v[0].i[0], X->ndim ? X->ndim : 1)));
  return gs_end(&s);
}
