/*
 * grad.c — the gradient rules of the op table.
 *
 * Each rule builds the input gradients from the output gradient with
 * mg_apply, so gradients are recorded by any tape that is watching (that is
 * how nested tapes differentiate gradients) and will stage into graphs the
 * same way. Rules compute in the output's dtype and shape; the tape sums
 * broadcast axes away and casts back to each input's dtype (tape.c), so no
 * rule repeats that. A scope (gs) collects temporaries and the first error:
 * once an apply fails, the following ones do nothing, and gs_end releases
 * everything, so each rule reads as straight-line math.
 */
#include "graph.h"  /* mg_is_probe: unknown sizes of traced graphs */
#include "grad_scope.h"

/* Which axes of x a reduction (attribute slot 0: axes) reduced: all of them
 * when the attribute is absent, none for an empty list (NumPy's axis=()). */
static void reduced_axes(const mg_grad_call *g, int ndim, int *mask) {
  const mg_attrs *a = g->attrs;
  for (int d = 0; d < ndim; d++) mask[d] = !(a->set & 1u) && a->v[0].n == 0;
  for (int k = 0; k < a->v[0].n; k++) mask[norm_axis(g, a->v[0].i[k], ndim)] = 1;
}

/* t (a reduction's output or its gradient) reshaped with the reduced axes
 * kept as size 1, then broadcast to x's shape. */
static mg_tensor *unreduce(gs *s, const mg_grad_call *g, mg_tensor *t) {
  const mg_tensor *x = g->in[0];
  int mask[MG_MAX_DIMS];
  int64_t keep_shape[MG_MAX_DIMS];
  reduced_axes(g, x->ndim, mask);
  for (int d = 0; d < x->ndim; d++) keep_shape[d] = mask[d] ? 1 : x->shape[d];
  mg_tensor *k = reshape(s, t, x->ndim, keep_shape);
  mg_attrs a = attrs_list(0, x->ndim, x->shape);
  return app(s, MG_OP_EXPAND, &k, 1, &a);
}

/* Number of elements a reduction folded into each output. */
static double reduced_count(const mg_grad_call *g) {
  const mg_tensor *x = g->in[0];
  int mask[MG_MAX_DIMS];
  double n = 1;
  reduced_axes(g, x->ndim, mask);
  for (int d = 0; d < x->ndim; d++)
    if (mask[d]) n *= (double)x->shape[d];
  return n;
}

RULE(grad_none) {
  return mg_seterror(MG_ESTATE, "%s: no gradient (the op is not differentiable)", g->info->name);
}

/* Piecewise-constant functions (sign, floor, ceil, round, floordiv): zero almost everywhere. */
RULE(grad_zero) {
  gs s = gs_begin(g);
  for (int i = 0; i < g->nin; i++) SET(i, zeros(&s, g->in[i]));
  return gs_end(&s);
}

/* ---- unary ---------------------------------------------------------------------- */
RULE(grad_neg) { gs s = gs_begin(g); SET(0, A1(&s, MG_OP_NEG, GOUT)); return gs_end(&s); }
RULE(grad_abs) { gs s = gs_begin(g); SET(0, mul(&s, GOUT, A1(&s, MG_OP_SIGN, X))); return gs_end(&s); }
RULE(grad_exp) { gs s = gs_begin(g); SET(0, mul(&s, GOUT, OUT)); return gs_end(&s); }
RULE(grad_expm1) {
  gs s = gs_begin(g);
  SET(0, mul(&s, GOUT, A2(&s, MG_OP_ADD, OUT, S(&s, 1))));
  return gs_end(&s);
}
RULE(grad_log) { gs s = gs_begin(g); SET(0, A2(&s, MG_OP_DIV, GOUT, X)); return gs_end(&s); }
RULE(grad_log1p) {
  gs s = gs_begin(g);
  SET(0, A2(&s, MG_OP_DIV, GOUT, A2(&s, MG_OP_ADD, X, S(&s, 1))));
  return gs_end(&s);
}
RULE(grad_sqrt) { gs s = gs_begin(g); SET(0, A2(&s, MG_OP_DIV, mulc(&s, GOUT, 0.5), OUT)); return gs_end(&s); }
RULE(grad_rsqrt) {  /* d x^-1/2 = -1/2 x^-3/2 = -1/2 out^3 */
  gs s = gs_begin(g);
  SET(0, mul(&s, mulc(&s, GOUT, -0.5), mul(&s, OUT, mul(&s, OUT, OUT))));
  return gs_end(&s);
}
RULE(grad_square) { gs s = gs_begin(g); SET(0, mul(&s, GOUT, mulc(&s, X, 2))); return gs_end(&s); }
RULE(grad_sin) { gs s = gs_begin(g); SET(0, mul(&s, GOUT, A1(&s, MG_OP_COS, X))); return gs_end(&s); }
RULE(grad_cos) {
  gs s = gs_begin(g);
  SET(0, A1(&s, MG_OP_NEG, mul(&s, GOUT, A1(&s, MG_OP_SIN, X))));
  return gs_end(&s);
}
RULE(grad_tanh) {
  gs s = gs_begin(g);
  SET(0, mul(&s, GOUT, A2(&s, MG_OP_SUB, S(&s, 1), mul(&s, OUT, OUT))));
  return gs_end(&s);
}
RULE(grad_sigmoid) {
  gs s = gs_begin(g);
  SET(0, mul(&s, GOUT, mul(&s, OUT, A2(&s, MG_OP_SUB, S(&s, 1), OUT))));
  return gs_end(&s);
}
RULE(grad_softplus) { gs s = gs_begin(g); SET(0, mul(&s, GOUT, A1(&s, MG_OP_SIGMOID, X))); return gs_end(&s); }
RULE(grad_erf) {  /* 2/sqrt(pi) exp(-x^2) */
  gs s = gs_begin(g);
  mg_tensor *e = A1(&s, MG_OP_EXP, A1(&s, MG_OP_NEG, mul(&s, X, X)));
  SET(0, mul(&s, GOUT, mulc(&s, e, 1.1283791670955126)));
  return gs_end(&s);
}
RULE(grad_relu) {
  gs s = gs_begin(g);
  mg_tensor *in[3] = {A2(&s, MG_OP_GREATER, X, S(&s, 0)), GOUT, S(&s, 0)};
  SET(0, s.st ? NULL : app(&s, MG_OP_WHERE, in, 3, NULL));
  return gs_end(&s);
}
/* Issue 17's float functions. */
RULE(grad_tan) {  /* 1 + tan^2 */
  gs s = gs_begin(g);
  SET(0, mul(&s, GOUT, A2(&s, MG_OP_ADD, mul(&s, OUT, OUT), S(&s, 1))));
  return gs_end(&s);
}
RULE(grad_asin) {  /* 1 / sqrt(1 - x^2) */
  gs s = gs_begin(g);
  SET(0, mul(&s, GOUT, A1(&s, MG_OP_RSQRT, A2(&s, MG_OP_SUB, S(&s, 1), mul(&s, X, X)))));
  return gs_end(&s);
}
RULE(grad_acos) {
  gs s = gs_begin(g);
  SET(0, A1(&s, MG_OP_NEG, mul(&s, GOUT, A1(&s, MG_OP_RSQRT, A2(&s, MG_OP_SUB, S(&s, 1), mul(&s, X, X))))));
  return gs_end(&s);
}
RULE(grad_atan) {
  gs s = gs_begin(g);
  SET(0, A2(&s, MG_OP_DIV, GOUT, A2(&s, MG_OP_ADD, mul(&s, X, X), S(&s, 1))));
  return gs_end(&s);
}
RULE(grad_sinh) { gs s = gs_begin(g); SET(0, mul(&s, GOUT, A1(&s, MG_OP_COSH, X))); return gs_end(&s); }
RULE(grad_cosh) { gs s = gs_begin(g); SET(0, mul(&s, GOUT, A1(&s, MG_OP_SINH, X))); return gs_end(&s); }
RULE(grad_asinh) {  /* 1 / sqrt(x^2 + 1) */
  gs s = gs_begin(g);
  SET(0, mul(&s, GOUT, A1(&s, MG_OP_RSQRT, A2(&s, MG_OP_ADD, mul(&s, X, X), S(&s, 1)))));
  return gs_end(&s);
}
RULE(grad_acosh) {  /* 1 / sqrt(x^2 - 1) */
  gs s = gs_begin(g);
  SET(0, mul(&s, GOUT, A1(&s, MG_OP_RSQRT, A2(&s, MG_OP_SUB, mul(&s, X, X), S(&s, 1)))));
  return gs_end(&s);
}
RULE(grad_atanh) {  /* 1 / (1 - x^2) */
  gs s = gs_begin(g);
  SET(0, A2(&s, MG_OP_DIV, GOUT, A2(&s, MG_OP_SUB, S(&s, 1), mul(&s, X, X))));
  return gs_end(&s);
}
RULE(grad_log2) {
  gs s = gs_begin(g);
  SET(0, A2(&s, MG_OP_DIV, GOUT, mulc(&s, X, 0.69314718055994531)));
  return gs_end(&s);
}
RULE(grad_log10) {
  gs s = gs_begin(g);
  SET(0, A2(&s, MG_OP_DIV, GOUT, mulc(&s, X, 2.302585092994046)));
  return gs_end(&s);
}
RULE(grad_exp2) { gs s = gs_begin(g); SET(0, mul(&s, GOUT, mulc(&s, OUT, 0.69314718055994531))); return gs_end(&s); }
RULE(grad_reciprocal) {  /* -1/x^2 = -out^2 */
  gs s = gs_begin(g);
  SET(0, A1(&s, MG_OP_NEG, mul(&s, GOUT, mul(&s, OUT, OUT))));
  return gs_end(&s);
}
RULE(grad_log_sigmoid) {  /* sigmoid(-x) */
  gs s = gs_begin(g);
  SET(0, mul(&s, GOUT, A1(&s, MG_OP_SIGMOID, A1(&s, MG_OP_NEG, X))));
  return gs_end(&s);
}
/* ---- activations ---- */
/* where(x > 0, g, g * d) for the slope d of the negative branch. */
static mg_tensor *grad_pos_or(gs *s, const mg_grad_call *g, mg_tensor *d) {
  mg_tensor *in[3] = {A2(s, MG_OP_GREATER, X, S(s, 0)), GOUT, mul(s, GOUT, d)};
  return s->st ? NULL : app(s, MG_OP_WHERE, in, 3, NULL);
}
RULE(grad_elu) {  /* alpha e^x = out + alpha below 0 */
  gs s = gs_begin(g);
  SET(0, grad_pos_or(&s, g, A2(&s, MG_OP_ADD, OUT, S(&s, g->attrs->v[0].f))));
  return gs_end(&s);
}
RULE(grad_celu) {  /* e^(x / alpha) below 0 */
  gs s = gs_begin(g);
  SET(0, grad_pos_or(&s, g, A1(&s, MG_OP_EXP, mulc(&s, X, 1.0 / g->attrs->v[0].f))));
  return gs_end(&s);
}
RULE(grad_leaky_relu) {
  gs s = gs_begin(g);
  SET(0, grad_pos_or(&s, g, S(&s, g->attrs->v[0].f)));
  return gs_end(&s);
}
/* exact: Phi(x) + x phi(x); tanh form: with t = tanh(u), u = c (x + k x^3):
 * 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3k x^2). */
RULE(grad_gelu) {
  gs s = gs_begin(g);
  mg_tensor *d;
  if (g->attrs->v[0].i[0]) {
    mg_tensor *x2 = mul(&s, X, X);
    mg_tensor *u = mulc(&s, mul(&s, X, A2(&s, MG_OP_ADD, mulc(&s, x2, 0.044715), S(&s, 1))), 0.7978845608028654);
    mg_tensor *t = A1(&s, MG_OP_TANH, u);
    mg_tensor *du = mulc(&s, A2(&s, MG_OP_ADD, mulc(&s, x2, 3 * 0.044715), S(&s, 1)), 0.7978845608028654);
    mg_tensor *dt = mul(&s, A2(&s, MG_OP_SUB, S(&s, 1), mul(&s, t, t)), du);
    d = mulc(&s, A2(&s, MG_OP_ADD, A2(&s, MG_OP_ADD, t, S(&s, 1)), mul(&s, X, dt)), 0.5);
  } else {
    mg_tensor *cdf = mulc(&s, A2(&s, MG_OP_ADD, A1(&s, MG_OP_ERF, mulc(&s, X, 0.7071067811865476)), S(&s, 1)), 0.5);
    mg_tensor *pdf = mulc(&s, A1(&s, MG_OP_EXP, mulc(&s, mul(&s, X, X), -0.5)), 0.3989422804014327);
    d = A2(&s, MG_OP_ADD, cdf, mul(&s, X, pdf));
  }
  SET(0, mul(&s, GOUT, d));
  return gs_end(&s);
}
/* 1/6 strictly inside (-3, 3), else 0. */
static mg_tensor *grad_inside3(gs *s, const mg_grad_call *g) {
  return A2(s, MG_OP_LOGICAL_AND, A2(s, MG_OP_GREATER, X, S(s, -3)), A2(s, MG_OP_LESS, X, S(s, 3)));
}
RULE(grad_hard_sigmoid) {
  gs s = gs_begin(g);
  mg_tensor *in[3] = {grad_inside3(&s, g), mulc(&s, GOUT, 1.0 / 6), S(&s, 0)};
  SET(0, s.st ? NULL : app(&s, MG_OP_WHERE, in, 3, NULL));
  return gs_end(&s);
}
RULE(grad_hard_swish) {  /* (2x + 3) / 6 inside, 1 from 3 up, 0 below -3 */
  gs s = gs_begin(g);
  mg_tensor *mid = mul(&s, GOUT, A2(&s, MG_OP_ADD, mulc(&s, X, 1.0 / 3), S(&s, 0.5)));
  mg_tensor *hi_in[3] = {A2(&s, MG_OP_GREATER_EQUAL, X, S(&s, 3)), GOUT, S(&s, 0)};
  mg_tensor *hi = s.st ? NULL : app(&s, MG_OP_WHERE, hi_in, 3, NULL);
  mg_tensor *in[3] = {grad_inside3(&s, g), mid, hi};
  SET(0, s.st ? NULL : app(&s, MG_OP_WHERE, in, 3, NULL));
  return gs_end(&s);
}
/* cast, contiguous: the gradient passes through (the tape casts it back). */
RULE(grad_identity) { gs s = gs_begin(g); SET(0, GOUT); return gs_end(&s); }

/* ---- binary --------------------------------------------------------------------- */
RULE(grad_add) { gs s = gs_begin(g); SET(0, GOUT); SET(1, GOUT); return gs_end(&s); }
RULE(grad_sub) { gs s = gs_begin(g); SET(0, GOUT); SET(1, A1(&s, MG_OP_NEG, GOUT)); return gs_end(&s); }
RULE(grad_mul) { gs s = gs_begin(g); SET(0, mul(&s, GOUT, Y)); SET(1, mul(&s, GOUT, X)); return gs_end(&s); }
RULE(grad_div) {  /* d(a/b)/db = -a/b^2 = -out/b */
  gs s = gs_begin(g);
  SET(0, A2(&s, MG_OP_DIV, GOUT, Y));
  SET(1, A1(&s, MG_OP_NEG, A2(&s, MG_OP_DIV, mul(&s, GOUT, OUT), Y)));
  return gs_end(&s);
}
RULE(grad_mod) {  /* a - floor(a/b) b */
  gs s = gs_begin(g);
  SET(0, GOUT);
  SET(1, A1(&s, MG_OP_NEG, mul(&s, GOUT, A1(&s, MG_OP_FLOOR, A2(&s, MG_OP_DIV, X, Y)))));
  return gs_end(&s);
}
/* pow(a, b): da = b a^(b-1), which must be 0 where b == 0 (a^0 is the
 * constant 1) but is 0 * 0^-1 = NaN at a = 0. So a is replaced by 1 where
 * a == 0 and b == 0: the product is then 0 * 1 = 0, and the replaced branch
 * stays finite for the next derivative (a where that only masked the result
 * would leave 0 * inf = NaN in the second one). PyTorch also gives 0 there.
 * db = a^b log a, with log a taken as 0 where a <= 0 (TF: a^b is 0 or 1
 * there for b >= 0, and the true value is complex for a < 0). */
RULE(grad_pow) {
  gs s = gs_begin(g);
  if (NEED(0)) {
    mg_tensor *both0 = A2(&s, MG_OP_LOGICAL_AND, A2(&s, MG_OP_EQUAL, X, S(&s, 0)), A2(&s, MG_OP_EQUAL, Y, S(&s, 0)));
    mg_tensor *safe_in[3] = {both0, S(&s, 1), X};
    mg_tensor *a = s.st ? NULL : app(&s, MG_OP_WHERE, safe_in, 3, NULL);
    SET(0, mul(&s, GOUT, mul(&s, Y, A2(&s, MG_OP_POW, a, A2(&s, MG_OP_SUB, Y, S(&s, 1))))));
  }
  if (NEED(1)) {
    mg_tensor *pos = A2(&s, MG_OP_GREATER, X, S(&s, 0));
    mg_tensor *safe_in[3] = {pos, X, S(&s, 1)};
    mg_tensor *safe = s.st ? NULL : app(&s, MG_OP_WHERE, safe_in, 3, NULL);
    mg_tensor *log_in[3] = {pos, A1(&s, MG_OP_LOG, safe), S(&s, 0)};
    mg_tensor *lg = s.st ? NULL : app(&s, MG_OP_WHERE, log_in, 3, NULL);
    SET(1, mul(&s, GOUT, mul(&s, OUT, lg)));
  }
  return gs_end(&s);
}
/* maximum/minimum: the gradient goes to the chosen input (ties to the first). */
static mg_status grad_pick(const mg_grad_call *g, mg_op cmp) {
  gs s = gs_begin(g);
  mg_tensor *m = A2(&s, cmp, X, Y), *z = S(&s, 0);
  mg_tensor *ia[3] = {m, GOUT, z}, *ib[3] = {m, z, GOUT};
  if (NEED(0)) g->gin[0] = give(&s, s.st ? NULL : app(&s, MG_OP_WHERE, ia, 3, NULL));
  if (NEED(1)) g->gin[1] = give(&s, s.st ? NULL : app(&s, MG_OP_WHERE, ib, 3, NULL));
  return gs_end(&s);
}
RULE(grad_maximum) { return grad_pick(g, MG_OP_GREATER_EQUAL); }
RULE(grad_minimum) { return grad_pick(g, MG_OP_LESS_EQUAL); }
RULE(grad_atan2) {  /* atan2(y, x): dy = x/(x^2+y^2), dx = -y/(x^2+y^2) */
  gs s = gs_begin(g);
  mg_tensor *den = A2(&s, MG_OP_ADD, mul(&s, X, X), mul(&s, Y, Y));
  mg_tensor *gd = A2(&s, MG_OP_DIV, GOUT, den);
  SET(0, mul(&s, gd, Y));
  SET(1, A1(&s, MG_OP_NEG, mul(&s, gd, X)));
  return gs_end(&s);
}
/* copysign(a, b) = |a| s(b): d/da = sign(a) s(b) = sign(a) sign(out) (0 at
 * a == 0, abs's convention); b only moves the sign: 0. */
RULE(grad_copysign) {
  gs s = gs_begin(g);
  SET(0, mul(&s, GOUT, mul(&s, A1(&s, MG_OP_SIGN, X), A1(&s, MG_OP_SIGN, OUT))));
  SET(1, zeros(&s, Y));
  return gs_end(&s);
}
RULE(grad_logaddexp) {  /* e^(a - out), e^(b - out) */
  gs s = gs_begin(g);
  SET(0, mul(&s, GOUT, A1(&s, MG_OP_EXP, A2(&s, MG_OP_SUB, X, OUT))));
  SET(1, mul(&s, GOUT, A1(&s, MG_OP_EXP, A2(&s, MG_OP_SUB, Y, OUT))));
  return gs_end(&s);
}
RULE(grad_fmod) {  /* a - trunc(a/b) b */
  gs s = gs_begin(g);
  SET(0, GOUT);
  SET(1, A1(&s, MG_OP_NEG, mul(&s, GOUT, A1(&s, MG_OP_TRUNC, A2(&s, MG_OP_DIV, X, Y)))));
  return gs_end(&s);
}
RULE(grad_where) {
  gs s = gs_begin(g);
  mg_tensor *z = S(&s, 0);
  mg_tensor *ia[3] = {X, GOUT, z}, *ib[3] = {X, z, GOUT};
  if (NEED(1)) g->gin[1] = give(&s, s.st ? NULL : app(&s, MG_OP_WHERE, ia, 3, NULL));
  if (NEED(2)) g->gin[2] = give(&s, s.st ? NULL : app(&s, MG_OP_WHERE, ib, 3, NULL));
  return gs_end(&s);
}
RULE(grad_clip) {  /* passes where min <= x <= max */
  gs s = gs_begin(g);
  mg_tensor *keep_mask = NULL;
  if (g->attrs->v[0].n) keep_mask = A2(&s, MG_OP_GREATER_EQUAL, X, S(&s, g->attrs->v[0].f));
  if (g->attrs->v[1].n) {
    mg_tensor *hi = A2(&s, MG_OP_LESS_EQUAL, X, S(&s, g->attrs->v[1].f));
    keep_mask = keep_mask ? A2(&s, MG_OP_LOGICAL_AND, keep_mask, hi) : hi;
  }
  if (!keep_mask) {
    SET(0, GOUT);
  } else {
    mg_tensor *in[3] = {keep_mask, GOUT, S(&s, 0)};
    SET(0, s.st ? NULL : app(&s, MG_OP_WHERE, in, 3, NULL));
  }
  return gs_end(&s);
}

/* ---- reductions ---------------------------------------------------------------- */
RULE(grad_sum) { gs s = gs_begin(g); SET(0, unreduce(&s, g, GOUT)); return gs_end(&s); }
/* Whether a reduced size is unknown (a probe size of a traced graph): then
 * the count must be computed when the graph runs, not baked in. */
static int count_unknown(const mg_grad_call *g) {
  const mg_tensor *x = g->in[0];
  int mask[MG_MAX_DIMS];
  reduced_axes(g, x->ndim, mask);
  for (int d = 0; d < x->ndim; d++)
    if (mask[d] && mg_is_probe(x->shape[d])) return 1;
  return 0;
}

/* The element count a reduction folded, minus `less`, as a tensor computed
 * from x's actual shape at run time: sum(ones like x) - less. */
static mg_tensor *count_tensor(gs *s, const mg_grad_call *g, double less) {
  const mg_tensor *x = g->in[0];
  mg_attrs fa = attrs_list(0, x->ndim, x->shape);
  fa.set |= 6u;
  fa.v[1].n = 1;
  fa.v[1].f = 1.0;
  fa.v[2].n = 1;
  fa.v[2].i[0] = g->out->dtype;
  mg_tensor *ones = app(s, MG_OP_FULL, NULL, 0, &fa);
  mg_attrs sa = *g->attrs;
  sa.set &= 1u;  /* the same axes (absent stays absent: all of them) */
  attrs_add_int(&sa, 1, 1);
  mg_tensor *n = app(s, MG_OP_SUM, &ones, 1, &sa);
  if (less == 0) return n;
  return A2(s, MG_OP_MAXIMUM, A2(s, MG_OP_SUB, n, S(s, less)), S(s, 0));  /* NumPy: max(N - ddof, 0) */
}

RULE(grad_mean) {
  gs s = gs_begin(g);
  if (count_unknown(g)) SET(0, A2(&s, MG_OP_DIV, unreduce(&s, g, GOUT), count_tensor(&s, g, 0)));
  else SET(0, mulc(&s, unreduce(&s, g, GOUT), 1.0 / reduced_count(g)));
  return gs_end(&s);
}
/* ---- prod: the product of the other elements ---------------------------------------
 * d prod(x) / d x_j is the product of every other element along the reduced
 * axes. out / x is that only where x has no zero (NaN at an exact zero), so,
 * as TensorFlow does, the rule multiplies two exclusive cumulative products:
 * of the elements before x_j and of those after it. With the reduced axes
 * moved first and flattened, x is an (R, O) matrix and the products run down
 * its R rows. Each exclusive product is a Hillis-Steele scan of mul, slice and
 * pad (log2 R steps), so it is exact with zeros, differentiable to any order
 * and stages like any rule. When R is unknown while tracing (a -1 size), the
 * number of steps is not known: the rule counts the zeros instead (exact
 * first derivatives; see prod_others_counted). */

/* t (R rows along axis 0) shifted down by k rows, the first k rows ones. */
static mg_tensor *shift_rows(gs *s, const mg_grad_call *g, mg_tensor *t, int64_t k, int64_t R) {
  (void)g;
  mg_attrs sa = {.set = 7u};
  sa.v[0].n = sa.v[1].n = sa.v[2].n = 1;
  sa.v[0].i[0] = 0;
  sa.v[1].i[0] = R - k;
  sa.v[2].i[0] = 1;
  mg_tensor *head = app(s, MG_OP_SLICE, &t, 1, &sa);
  mg_attrs pa = attrs_list(0, 4, (int64_t[]){k, 0, 0, 0});
  pa.set |= 2u;
  pa.v[1].n = 1;
  pa.v[1].f = 1.0;
  return app(s, MG_OP_PAD, &head, 1, &pa);
}

/* One scan step e * shift(e, k) in a scope of its own (a long scan would
 * overflow the rule's); steals e, returns a new reference. */
static mg_tensor *scan_step(const mg_grad_call *g, mg_tensor *e, int64_t k, int64_t R, mg_status *st) {
  gs s = gs_begin(g);
  keep(&s, e);
  mg_tensor *r = give(&s, mul(&s, e, shift_rows(&s, g, e, k, R)));
  *st = gs_end(&s);
  return r;
}

/* The exclusive cumulative product down the R rows of t: row i holds
 * t[0] * ... * t[i-1] (row 0 ones); reversed, of the rows after i. */
static mg_tensor *exclusive_cumprod(gs *s, const mg_grad_call *g, mg_tensor *t, int64_t R, int reverse) {
  mg_attrs fa = attrs_list(0, 1, (int64_t[]){base(g)});
  if (reverse) t = app(s, MG_OP_FLIP, &t, 1, &fa);
  mg_tensor *e = give(s, shift_rows(s, g, t, 1, R));
  for (int64_t k = 1; e && k < R; k *= 2) e = scan_step(g, e, k, R, &s->st);
  if (!e) return NULL;
  keep(s, e);
  return reverse ? app(s, MG_OP_FLIP, &e, 1, &fa) : e;
}

/* The products of the others by the two scans: x permuted to (reduced...,
 * kept...), viewed as (R, O), left * right, and back to x's layout. */
static mg_tensor *prod_others_scan(gs *s, const mg_grad_call *g, const int *mask, int64_t R) {
  const mg_tensor *x = X;
  int n = x->ndim, np = 0, moved = 0, o_unknown = 0;
  int64_t perm[MG_MAX_DIMS], pshape[MG_MAX_DIMS], O = 1;
  for (int pass = 0; pass < 2; pass++)
    for (int d = 0; d < n; d++)
      if (mask[d] == !pass) {
        moved |= d != np;
        pshape[np] = x->shape[d];
        perm[np++] = d;
        if (pass) {
          o_unknown |= mg_is_probe(x->shape[d]);
          O *= x->shape[d];
        }
      }
  mg_tensor *t = X;
  mg_attrs pa = {.set = 1u}, ia = {.set = 1u};
  pa.v[0].n = ia.v[0].n = n;
  for (int i = 0; i < n; i++) {
    pa.v[0].i[i] = perm[i] + base(g);
    ia.v[0].i[perm[i]] = i + base(g);
  }
  if (moved) t = app(s, MG_OP_PERMUTE, &t, 1, &pa);
  t = reshape(s, t, 2, (int64_t[]){R, o_unknown ? -1 : O});
  mg_tensor *others = mul(s, exclusive_cumprod(s, g, t, R, 0), exclusive_cumprod(s, g, t, R, 1));
  others = reshape(s, others, n, pshape);
  return moved ? app(s, MG_OP_PERMUTE, &others, 1, &ia) : others;
}

/* Without a known R: from the number of zeros z along the reduced axes and
 * the product p of the nonzero elements, the others' product is p / x (z = 0),
 * p at the zero (z = 1), else 0. Exact first derivatives; higher ones are
 * exact away from zeros (the counts are piecewise constant). */
static mg_tensor *prod_others_counted(gs *s, const mg_grad_call *g) {
  mg_tensor *zero = A2(s, MG_OP_EQUAL, X, S(s, 0));
  mg_tensor *safe_in[3] = {zero, S(s, 1), X};
  mg_tensor *safe = s->st ? NULL : app(s, MG_OP_WHERE, safe_in, 3, NULL);
  mg_tensor *p = unreduce(s, g, app(s, MG_OP_PROD, &safe, 1, g->attrs));
  mg_attrs ca = {.set = 1u};
  ca.v[0].n = 1;
  ca.v[0].i[0] = OUT->dtype;
  mg_tensor *zf = app(s, MG_OP_CAST, &zero, 1, &ca);
  mg_tensor *z = unreduce(s, g, app(s, MG_OP_SUM, &zf, 1, g->attrs));
  mg_tensor *at_zero_in[3] = {A2(s, MG_OP_EQUAL, z, S(s, 1)), p, S(s, 0)};
  mg_tensor *at_zero = s->st ? NULL : app(s, MG_OP_WHERE, at_zero_in, 3, NULL);
  mg_tensor *elsewhere_in[3] = {A2(s, MG_OP_EQUAL, z, S(s, 0)), A2(s, MG_OP_DIV, p, safe), S(s, 0)};
  mg_tensor *elsewhere = s->st ? NULL : app(s, MG_OP_WHERE, elsewhere_in, 3, NULL);
  mg_tensor *in[3] = {zero, at_zero, elsewhere};
  return s->st ? NULL : app(s, MG_OP_WHERE, in, 3, NULL);
}

RULE(grad_prod) {
  gs s = gs_begin(g);
  int mask[MG_MAX_DIMS], r_unknown = 0;
  int64_t R = 1;
  reduced_axes(g, X->ndim, mask);
  for (int d = 0; d < X->ndim; d++)
    if (mask[d]) {
      r_unknown |= mg_is_probe(X->shape[d]);
      R *= X->shape[d];
    }
  mg_tensor *others = r_unknown ? prod_others_counted(&s, g)
                      : mg_tensor_numel(X) == 0 ? zeros(&s, X)  /* nothing to scan */
                      : prod_others_scan(&s, g, mask, R);
  SET(0, mul(&s, unreduce(&s, g, GOUT), others));
  return gs_end(&s);
}

/* max/min: shared equally among the positions that hold the extreme (TF). */
RULE(grad_extreme) {
  gs s = gs_begin(g);
  mg_tensor *hit = A2(&s, MG_OP_EQUAL, X, unreduce(&s, g, OUT));
  mg_attrs ca = {.set = 1u};
  ca.v[0].n = 1;
  ca.v[0].i[0] = OUT->dtype;
  mg_tensor *hitf = app(&s, MG_OP_CAST, &hit, 1, &ca);
  mg_attrs sa = *g->attrs;
  attrs_add_int(&sa, 1, 1);
  mg_tensor *count = app(&s, MG_OP_SUM, &hitf, 1, &sa);
  mg_tensor *share = A2(&s, MG_OP_DIV, reshape(&s, GOUT, count ? count->ndim : 0, count ? count->shape : NULL), count);
  SET(0, mul(&s, unreduce(&s, g, share), hitf));
  return gs_end(&s);
}
RULE(grad_logsumexp) {
  gs s = gs_begin(g);
  mg_tensor *p = A1(&s, MG_OP_EXP, A2(&s, MG_OP_SUB, X, unreduce(&s, g, OUT)));
  SET(0, mul(&s, unreduce(&s, g, GOUT), p));
  return gs_end(&s);
}
/* 2 (x - mean) / max(N - correction, 0): the derivative of the forward's
 * division (NumPy's divisor); with no degrees of freedom left it is +-inf,
 * or NaN where x equals the mean, as the forward value is inf or NaN. */
RULE(grad_variance) {
  gs s = gs_begin(g);
  mg_attrs ma = *g->attrs;
  ma.set &= 1u;
  attrs_add_int(&ma, 1, 1);
  mg_tensor *mean = app(&s, MG_OP_MEAN, (mg_tensor *const *)&g->in[0], 1, &ma);
  mg_tensor *xs = g->in[0];
  mg_attrs ea = attrs_list(0, xs->ndim, xs->shape);
  mg_tensor *dev = A2(&s, MG_OP_SUB, X, app(&s, MG_OP_EXPAND, &mean, 1, &ea));
  double correction = (double)g->attrs->v[2].i[0], dof = reduced_count(g) - correction;
  if (count_unknown(g))
    SET(0, mul(&s, unreduce(&s, g, GOUT), A2(&s, MG_OP_DIV, mulc(&s, dev, 2.0), count_tensor(&s, g, correction))));
  else if (dof > 0)
    SET(0, mul(&s, unreduce(&s, g, GOUT), mulc(&s, dev, 2.0 / dof)));
  else
    SET(0, mul(&s, unreduce(&s, g, GOUT), A2(&s, MG_OP_DIV, mulc(&s, dev, 2.0), S(&s, 0))));
  return gs_end(&s);
}
RULE(grad_softmax) {  /* out * (g - sum(g * out)) */
  gs s = gs_begin(g);
  int ax = norm_axis(g, g->attrs->v[0].i[0], X->ndim);
  mg_tensor *dot = sum_keep(&s, g, mul(&s, GOUT, OUT), ax);
  SET(0, mul(&s, OUT, A2(&s, MG_OP_SUB, GOUT, dot)));
  return gs_end(&s);
}
RULE(grad_log_softmax) {  /* g - exp(out) * sum(g) */
  gs s = gs_begin(g);
  int ax = norm_axis(g, g->attrs->v[0].i[0], X->ndim);
  mg_tensor *tot = sum_keep(&s, g, GOUT, ax);
  SET(0, A2(&s, MG_OP_SUB, GOUT, mul(&s, A1(&s, MG_OP_EXP, OUT), tot)));
  return gs_end(&s);
}

/* ---- matmul ----------------------------------------------------------------------- */
/* ga = g b^T, gb = a^T g, with 1-d operands as matrices: the output gradient
 * gets back the axes the product dropped, the column's (-1) first, so a
 * vector . vector product's 0-d gradient becomes (1, 1). The tape sums and
 * reshapes ga and gb to the operands' shapes. */
RULE(grad_matmul) {
  gs s = gs_begin(g);
  mg_tensor *a = X, *b = Y, *go = GOUT;
  if (Y->ndim == 1) {
    b = unsqueeze(&s, g, b, -1);
    go = unsqueeze(&s, g, go, -1);
  }
  if (X->ndim == 1) {
    a = unsqueeze(&s, g, a, 0);
    go = unsqueeze(&s, g, go, -2);
  }
  SET(0, A2(&s, MG_OP_MATMUL, go, A1(&s, MG_OP_TRANSPOSE, b)));
  if (NEED(1)) {
    mg_tensor *gb = A2(&s, MG_OP_MATMUL, A1(&s, MG_OP_TRANSPOSE, a), go);
    if (Y->ndim == 1 && gb) {
      mg_attrs q = attrs_list(0, 1, (int64_t[]){-1});
      gb = app(&s, MG_OP_SQUEEZE, &gb, 1, &q);
    }
    SET(1, gb);
  }
  return gs_end(&s);
}

/* ---- movement ---------------------------------------------------------------------- */
/* reshape, squeeze, unsqueeze: back to the input's shape. expand: the tape's
 * broadcast reduction does the sum. */
RULE(grad_reshape) { gs s = gs_begin(g); SET(0, reshape(&s, GOUT, X->ndim, X->shape)); return gs_end(&s); }
RULE(grad_permute) {
  gs s = gs_begin(g);
  mg_attrs inv = {.set = 1u};
  int n = X->ndim;
  inv.v[0].n = n;
  for (int d = 0; d < n; d++) inv.v[0].i[norm_axis(g, g->attrs->v[0].i[d], n)] = d + base(g);
  SET(0, app(&s, MG_OP_PERMUTE, (mg_tensor *const *)&g->gout, 1, &inv));
  return gs_end(&s);
}
RULE(grad_transpose) {
  gs s = gs_begin(g);
  SET(0, app(&s, MG_OP_TRANSPOSE, (mg_tensor *const *)&g->gout, 1, g->attrs));
  return gs_end(&s);
}
RULE(grad_flip) {
  gs s = gs_begin(g);
  SET(0, app(&s, MG_OP_FLIP, (mg_tensor *const *)&g->gout, 1, g->attrs));
  return gs_end(&s);
}
/* slice and slice_grad are each other's adjoints; so are pad and pad_grad. */
RULE(grad_slice) {
  gs s = gs_begin(g);
  mg_attrs a = *g->attrs;
  a.set |= 8u;
  a.v[3].n = X->ndim;
  memcpy(a.v[3].i, X->shape, (size_t)X->ndim * sizeof(int64_t));
  SET(0, app(&s, MG_OP_SLICE_GRAD, (mg_tensor *const *)&g->gout, 1, &a));
  return gs_end(&s);
}
RULE(grad_slice_grad) {
  gs s = gs_begin(g);
  mg_attrs a = *g->attrs;
  a.set &= 7u;
  SET(0, app(&s, MG_OP_SLICE, (mg_tensor *const *)&g->gout, 1, &a));
  return gs_end(&s);
}
RULE(grad_select) {  /* the gradient row placed back at its index */
  gs s = gs_begin(g);
  int ax = norm_axis(g, g->attrs->v[0].i[0], X->ndim);
  int64_t idx = g->attrs->v[1].i[0];
  idx = idx < 0 ? idx + X->shape[ax] : idx - base(g);
  mg_tensor *u = unsqueeze(&s, g, GOUT, ax);
  mg_attrs a = {.set = 15u};
  for (int k = 0; k < 3; k++) a.v[k].n = X->ndim;
  for (int d = 0; d < X->ndim; d++) {
    a.v[0].i[d] = d == ax ? idx : 0;
    a.v[1].i[d] = d == ax ? idx + 1 : X->shape[d];
    a.v[2].i[d] = 1;
  }
  a.v[3].n = X->ndim;
  memcpy(a.v[3].i, X->shape, (size_t)X->ndim * sizeof(int64_t));
  SET(0, app(&s, MG_OP_SLICE_GRAD, &u, 1, &a));
  return gs_end(&s);
}
RULE(grad_pad) {
  gs s = gs_begin(g);
  mg_attrs a = {.set = 3u};
  a.v[0] = g->attrs->v[0];
  a.v[1] = g->attrs->v[2];
  SET(0, app(&s, MG_OP_PAD_GRAD, (mg_tensor *const *)&g->gout, 1, &a));
  return gs_end(&s);
}
RULE(grad_pad_grad) {
  gs s = gs_begin(g);
  mg_attrs a = {.set = 7u};
  a.v[0] = g->attrs->v[0];
  a.v[1].n = 1;
  a.v[1].f = 0.0;
  a.v[2] = g->attrs->v[1];
  SET(0, app(&s, MG_OP_PAD, (mg_tensor *const *)&g->gout, 1, &a));
  return gs_end(&s);
}
RULE(grad_concat) {  /* each input gets its slice of the gradient */
  gs s = gs_begin(g);
  /* an axis left unset is the first, as infer_concat reads it (the schema's default 0 is
   * not an axis in Lua's 1-based counting) */
  int ax = (g->attrs->set & 1u) ? norm_axis(g, g->attrs->v[0].i[0], X->ndim) : 0;
  int64_t at = 0;
  for (int i = 0; i < g->nin; i++) {
    const mg_tensor *x = g->in[i];
    if (NEED(i)) {
      mg_attrs a = {.set = 7u};
      for (int k = 0; k < 3; k++) a.v[k].n = x->ndim;
      for (int d = 0; d < x->ndim; d++) {
        a.v[0].i[d] = d == ax ? at : 0;
        a.v[1].i[d] = d == ax ? at + x->shape[d] : x->shape[d];
        a.v[2].i[d] = 1;
      }
      /* straight to gin, not through the scope: a concat/stack may have
       * more inputs than the scope holds (the tape releases gin on error) */
      if ((s.st = mg_apply(s.ctx, MG_OP_SLICE, (mg_tensor *const *)&g->gout, 1, &a, &g->gin[i]))) break;
    }
    at += x->shape[ax];
  }
  return gs_end(&s);
}
RULE(grad_gather) {  /* scatter the gradient back to where it was gathered from */
  gs s = gs_begin(g);
  mg_tensor *in[3] = {zeros(&s, X), Y, GOUT};
  SET(0, s.st ? NULL : app(&s, MG_OP_SCATTER_ADD, in, 3, g->attrs));
  return gs_end(&s);
}
RULE(grad_scatter_add) {
  gs s = gs_begin(g);
  SET(0, GOUT);
  mg_tensor *in[2] = {GOUT, Y};
  SET(2, s.st ? NULL : app(&s, MG_OP_GATHER, in, 2, g->attrs));
  return gs_end(&s);
}
RULE(grad_take) {  /* take_grad: zeros with the gradient's slices added at the taken rows */
  gs s = gs_begin(g);
  int ax = (g->attrs->set & 1u) ? norm_axis(g, g->attrs->v[0].i[0], X->ndim) : 0;
  mg_attrs a = {.set = 3u};
  a.v[0].n = a.v[1].n = 1;
  a.v[0].i[0] = ax + base(g);
  a.v[1].i[0] = X->shape[ax];
  mg_tensor *in[2] = {GOUT, Y};
  SET(0, app(&s, MG_OP_TAKE_GRAD, in, 2, &a));
  return gs_end(&s);
}
/* tile: the copies summed, one tiled axis at a time. The gradient along
 * axis d is viewed as (..., reps, size, ...) and summed over reps; a result
 * of MG_MAX_DIMS axes has no room for the extra axis, so there the axes
 * before and after d are merged first: (before, reps, size, after). */
static mg_tensor *tile_fold(gs *s, const mg_grad_call *g, mg_tensor *t, int nd, int64_t *cur, int d,
                            int64_t reps, int64_t size) {
  int64_t split[MG_MAX_DIMS + 1];
  int n = 0, axis = d;
  if (nd < MG_MAX_DIMS) {
    for (int k = 0; k < nd; k++) {
      if (k == d) split[n++] = reps;
      split[n++] = k == d ? size : cur[k];
    }
  } else {
    int64_t before = 1, after = 1;
    int before_unknown = 0, after_unknown = 0;
    for (int k = 0; k < d; k++) before *= cur[k], before_unknown |= mg_is_probe(cur[k]);
    for (int k = d + 1; k < nd; k++) after *= cur[k], after_unknown |= mg_is_probe(cur[k]);
    if (before_unknown && after_unknown) {
      s->st = mg_seterror(MG_ESHAPE, "tile: the gradient of an %d-d result with unknown sizes on both sides of "
                          "tiled axis %d is not supported", nd, d + base(g));
      return NULL;
    }
    split[n++] = before_unknown ? -1 : before;
    split[n++] = reps;
    split[n++] = size;
    split[n++] = after_unknown ? -1 : after;
    axis = 1;
  }
  mg_tensor *r = reshape(s, t, n, split);
  mg_attrs sa = attrs_list(0, 1, (int64_t[]){axis + base(g)});
  r = app(s, MG_OP_SUM, &r, 1, &sa);
  cur[d] = size;
  return nd < MG_MAX_DIMS ? r : reshape(s, r, nd, cur);
}

RULE(grad_tile) {
  gs s = gs_begin(g);
  int nd = GOUT->ndim, lead = nd - X->ndim, nr = g->attrs->v[0].n;
  int64_t cur[MG_MAX_DIMS];
  memcpy(cur, GOUT->shape, (size_t)nd * sizeof(int64_t));
  mg_tensor *r = GOUT;
  for (int d = 0; d < nd && r; d++) {
    int64_t reps = d >= nd - nr ? g->attrs->v[0].i[d - (nd - nr)] : 1;
    int64_t size = d < lead ? 1 : X->shape[d - lead];
    if (reps != 1) r = tile_fold(&s, g, r, nd, cur, d, reps, size);
  }
  SET(0, r);  /* leading axes tile added are size 1 now: the tape drops them */
  return gs_end(&s);
}
