/*
 * algebra.c — algebraic simplification: op nodes that give back one of
 * their inputs unchanged are replaced by that input.
 *
 *   x*1, 1*x, x/1, x^1, x+0, 0+x, x-0   (the constant: every element 1 or 0)
 *   neg(neg(x)), cast(x) to x's own dtype, reshape(x) to x's own shape,
 *   transpose(transpose(x)) swapping the same two axes, transpose of a
 *   1-d tensor, permute(permute(x)) composing to the identity
 *   reshape(reshape(x)) -> one reshape of x
 *
 * A rule applies only when the result has exactly x's dtype and shape (so
 * x*ones that broadcasts, or int/1 giving float, stays), and never when x
 * is a weak Lua-number constant (the op's result was strong, which changes
 * how later ops promote). x*0 is never folded: NaN*0 and inf*0 are NaN.
 * x+0 -> x differs from IEEE only for x = -0.0 (which +0.0 turns into
 * +0.0), the same liberty compilers take with the sign of zero.
 *
 * One rewrite makes a cheaper op instead: a + take_grad(g, index, axis)
 * (the gradient of a sliced tensor added to an accumulator, as a reverse
 * while loop sums it) becomes index_add(a, index, g, axis) when nothing else
 * reads the take_grad and a has the result's dtype and shape: no zero-filled
 * full-size tensor per step, and the executor may add in place (exec.c).
 *
 * A result that can reach the caller is only replaced by a fresh op result
 * nobody else gets (passes.h): f(x) = x*1 must still hand back a new tensor,
 * not the caller's x. The replaced node is removed here; what it used may
 * become dead for DCE.
 */
#include "passes.h"
#include <stdlib.h>

#define ALGEBRA_MAX_CHECK 65536  /* elements examined to call a constant "all ones" */

static int algebra_const_is(const mg_graph *g, int v, double want) {
  const mg_gnode *d = passes_def(g, v);
  if (!d || d->kind != MG_N_CONST) return 0;
  int64_t n = mg_tensor_numel(d->tensor);
  if (n < 1 || n > ALGEBRA_MAX_CHECK) return 0;
  for (int64_t i = 0; i < n; i++)
    if (mg_tensor_get_f64(d->tensor, i) != want) return 0;
  return 1;
}

static const mg_gnode *algebra_def_op(const mg_graph *g, int v, mg_op op) {
  const mg_gnode *d = passes_def(g, v);
  return d && d->kind == MG_N_OP && d->op == op ? d : NULL;
}

/* An axis attribute against rank nd, as mg_norm_axis reads it (-1: invalid). */
static int algebra_axis(const mg_ctx *ctx, int64_t a, int nd) {
  int64_t r = a < 0 ? a + nd : a - ctx->index_base;
  return r >= 0 && r < nd ? (int)r : -1;
}

static int algebra_transposes_cancel(const mg_ctx *ctx, const mg_gnode *n, const mg_gnode *inner, int nd) {
  int a = algebra_axis(ctx, n->attrs->v[0].i[0], nd), b = algebra_axis(ctx, n->attrs->v[1].i[0], nd);
  int c = algebra_axis(ctx, inner->attrs->v[0].i[0], nd), d = algebra_axis(ctx, inner->attrs->v[1].i[0], nd);
  if (a < 0 || b < 0 || c < 0 || d < 0) return 0;
  return (a == c && b == d) || (a == d && b == c);
}

/* The permutation of a permute node over rank nd into p (0 if invalid). */
static int algebra_perm(const mg_ctx *ctx, const mg_gnode *n, int nd, int *p) {
  const mg_attrs *at = n->attrs;
  int given = (at->set & 1u) || at->v[0].n > 0;
  if (given && at->v[0].n != nd) return 0;
  for (int i = 0; i < nd; i++)
    if ((p[i] = given ? algebra_axis(ctx, at->v[0].i[i], nd) : nd - 1 - i) < 0) return 0;
  return 1;
}

/* permute(permute(x, p), q) reads x[p[q[i]]]: the identity when p[q[i]] == i. */
static int algebra_permutes_cancel(const mg_ctx *ctx, const mg_gnode *n, const mg_gnode *inner, int nd) {
  int p[MG_MAX_DIMS], q[MG_MAX_DIMS];
  if (!algebra_perm(ctx, inner, nd, p) || !algebra_perm(ctx, n, nd, q)) return 0;
  for (int i = 0; i < nd; i++)
    if (p[q[i]] != i) return 0;
  return 1;
}

static int algebra_perm_is_identity(const mg_ctx *ctx, const mg_gnode *n, int nd) {
  int p[MG_MAX_DIMS];
  if (!algebra_perm(ctx, n, nd, p)) return 0;
  for (int i = 0; i < nd; i++)
    if (p[i] != i) return 0;
  return 1;
}

/* The input value n's result equals, or -1. */
static int algebra_identity_of(const mg_ctx *ctx, const mg_graph *g, const mg_gnode *n) {
  const mg_gnode *inner;
  int nd = n->nin ? g->values[n->in[0]].ndim : 0;
  switch (n->op) {
  case MG_OP_ADD:
    return algebra_const_is(g, n->in[1], 0) ? n->in[0] : algebra_const_is(g, n->in[0], 0) ? n->in[1] : -1;
  case MG_OP_MUL:
    return algebra_const_is(g, n->in[1], 1) ? n->in[0] : algebra_const_is(g, n->in[0], 1) ? n->in[1] : -1;
  case MG_OP_SUB: return algebra_const_is(g, n->in[1], 0) ? n->in[0] : -1;
  case MG_OP_DIV: return algebra_const_is(g, n->in[1], 1) ? n->in[0] : -1;
  case MG_OP_POW: return algebra_const_is(g, n->in[1], 1) ? n->in[0] : -1;  /* x^2's gradient makes x^1 */
  case MG_OP_NEG: return (inner = algebra_def_op(g, n->in[0], MG_OP_NEG)) ? inner->in[0] : -1;
  case MG_OP_CAST:
  case MG_OP_RESHAPE: return n->in[0];  /* the meta check decides */
  case MG_OP_TRANSPOSE:
    if (nd < 2) return n->in[0];
    if (algebra_axis(ctx, n->attrs->v[0].i[0], nd) == algebra_axis(ctx, n->attrs->v[1].i[0], nd) &&
        algebra_axis(ctx, n->attrs->v[0].i[0], nd) >= 0)
      return n->in[0];
    inner = algebra_def_op(g, n->in[0], MG_OP_TRANSPOSE);
    return inner && algebra_transposes_cancel(ctx, n, inner, nd) ? inner->in[0] : -1;
  case MG_OP_PERMUTE:
    if (algebra_perm_is_identity(ctx, n, nd)) return n->in[0];
    inner = algebra_def_op(g, n->in[0], MG_OP_PERMUTE);
    return inner && algebra_permutes_cancel(ctx, n, inner, nd) ? inner->in[0] : -1;
  default: return -1;
  }
}

/* May the uses of y read x instead? */
static int algebra_may_replace(const mg_graph *g, int y, int x, const unsigned char *esc) {
  if (!passes_same_meta(g, y, x) || passes_is_weak_const(g, x)) return 0;
  if (!esc[y]) return 1;
  const mg_gnode *d = passes_def(g, x);  /* y reaches the caller: x must be a fresh result only it gets */
  return d && !esc[x] &&
         (d->kind == MG_N_FUSED || (d->kind == MG_N_OP && !(mg_op_info(d->op)->flags & MG_VIEW)));
}

/* a + take_grad(src, index) -> index_add(a, index, src) (see the top). */
static int algebra_index_add(mg_graph *g, int i, int **uses) {
  mg_gnode *n = &g->nodes[i];
  if (n->op != MG_OP_ADD || n->nin != 2) return 0;
  for (int j = 0; j < 2; j++) {
    int t = n->in[j], a = n->in[1 - j];
    const mg_gnode *d = algebra_def_op(g, t, MG_OP_TAKE_GRAD);
    if (!d || !passes_same_meta(g, n->out0, a) || !passes_same_meta(g, n->out0, t) || passes_is_weak_const(g, a))
      continue;
    if (!*uses && !(*uses = passes_use_counts(g))) return -1;
    if ((*uses)[t] != 1) continue;
    int *in = malloc(3 * sizeof *in);
    mg_attrs *at = malloc(sizeof *at);
    if (!in || !at) {
      free(in);
      free(at);
      mg_seterror(MG_ENOMEM, "optimize: out of memory");
      return -1;
    }
    in[0] = a;
    in[1] = d->in[1];
    in[2] = d->in[0];
    memset(at, 0, sizeof *at);
    at->set = d->attrs->set & 1u;  /* take_grad's axis, read the same way by index_add */
    at->v[0] = d->attrs->v[0];
    free(n->in);
    free(n->attrs);
    n->in = in;
    n->nin = 3;
    n->attrs = at;
    n->op = MG_OP_INDEX_ADD;
    (*uses)[t] = 0;
    mg_graph_kill_node(g, (int)(d - g->nodes));
    return 1;
  }
  return 0;
}

static int algebra_node(mg_ctx *ctx, mg_graph *g, int i, unsigned char *esc) {
  mg_gnode *n = &g->nodes[i];
  int changes = 0;
  const mg_gnode *inner;
  if (n->op == MG_OP_RESHAPE && (inner = algebra_def_op(g, n->in[0], MG_OP_RESHAPE))) {
    n->in[0] = inner->in[0];  /* reshape(reshape(x), s) == reshape(x, s) */
    changes++;
  }
  int y = n->out0, x = algebra_identity_of(ctx, g, n);
  if (x < 0 || !algebra_may_replace(g, y, x, esc)) return changes;
  passes_replace_uses(g, y, x);
  esc[x] |= esc[y];
  mg_graph_kill_node(g, i);
  return changes + 1;
}

int mg_pass_algebra(mg_ctx *ctx, mg_graph *g) {
  unsigned char *esc = passes_escapes(g);
  if (!esc) return -1;
  int changes = 0, *uses = NULL;
  for (int i = 0; i < g->nnodes; i++) {
    mg_gnode *n = &g->nodes[i];
    if (n->kind == MG_N_OP && n->nout == 1) {
      int r = algebra_index_add(g, i, &uses);
      if (r < 0) {
        free(esc);
        free(uses);
        return -1;
      }
      int k = algebra_node(ctx, g, i, esc);
      if (k) {  /* uses moved: count again when needed */
        free(uses);
        uses = NULL;
      }
      changes += r + k;
    } else if (n->kind == MG_N_COND || n->kind == MG_N_WHILE) {
      for (int s = 0; s < 2; s++) {
        int r = mg_pass_algebra(ctx, n->sub[s]);
        if (r < 0) {
          free(esc);
          free(uses);
          return -1;
        }
        changes += r;
      }
    }
  }
  free(esc);
  free(uses);
  return changes;
}
