/*
 * passes.c — mg_graph_optimize, the pass driver, and the graph utilities
 * the passes share (passes.h).
 *
 * The cleanup passes (algebraic simplification, constant folding, common
 * subexpression elimination, dead code elimination) feed each other: a
 * folded constant makes x*1 visible, a simplification leaves dead nodes,
 * CSE makes two chains one. So they run in rounds until a round changes
 * nothing (a few rounds at most in practice; capped). Fusion runs last,
 * once, on the cleaned graph: it needs exact use counts, and nothing after
 * it looks inside a fused node. Then dead nodes are compacted away and
 * every executor plan below g is dropped.
 *
 * While the passes run the context neither traces nor records: folding
 * computes with mg_apply, which must not add nodes to a graph being traced
 * around us nor show up on a tape.
 */
#include "passes.h"
#include <stdlib.h>

#define PASSES_MAX_ROUNDS 8

static const struct {
  const char *name;
  mg_pass_fn fn;
} passes_table[MG_NPASSES] = {
    {"constfold", mg_pass_constfold}, {"cse", mg_pass_cse},   {"dce", mg_pass_dce},
    {"algebra", mg_pass_algebra},     {"fuse", mg_pass_fuse},
};

const char *mg_pass_name(int i) { return i >= 0 && i < MG_NPASSES ? passes_table[i].name : NULL; }

/* ---- utilities ------------------------------------------------------------------ */

int *passes_use_counts(const mg_graph *g) {
  int *uses = calloc((size_t)(g->nvalues ? g->nvalues : 1), sizeof *uses);
  if (!uses) {
    mg_seterror(MG_ENOMEM, "optimize: out of memory");
    return NULL;
  }
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i].nin; k++) uses[g->nodes[i].in[k]]++;
  for (int k = 0; k < g->noutputs; k++) uses[g->outputs[k]]++;
  return uses;
}

int passes_is_output(const mg_graph *g, int v) {
  for (int k = 0; k < g->noutputs; k++)
    if (g->outputs[k] == v) return 1;
  return 0;
}

/* A cond/while node hands some inputs straight back: a loop's initial
 * values when it runs no iteration, and captures a branch or body returns
 * (or returns a view of). Those escape when a result of the node does. */
static int passes_escapes_control(const mg_gnode *n, unsigned char *esc) {
  int any = 0;
  for (int o = 0; o < n->nout; o++) any |= esc[n->out0 + o];
  if (!any) return 0;
  for (int k = 0; n->kind == MG_N_WHILE && k < n->nvars; k++) esc[n->in[k]] |= esc[n->out0 + k];
  for (int s = 0; s < 2; s++) {
    unsigned char *inner = passes_escapes(n->sub[s]);
    if (!inner) return -1;
    for (int k = 0; k < n->sub[s]->ncaptures; k++)
      if (inner[n->sub[s]->captures[k].inner]) esc[n->in[passes_capture_base(n, s) + k]] = 1;
    free(inner);
  }
  return 0;
}

/* Outputs escape; so does what a host function is handed, the input of a
 * view op whose result escapes (it shares the storage), and what cond/while
 * nodes pass through. Walking backwards sees every use of a value before
 * its definition. */
unsigned char *passes_escapes(const mg_graph *g) {
  unsigned char *esc = calloc((size_t)(g->nvalues ? g->nvalues : 1), 1);
  if (!esc) {
    mg_seterror(MG_ENOMEM, "optimize: out of memory");
    return NULL;
  }
  for (int k = 0; k < g->noutputs; k++) esc[g->outputs[k]] = 1;
  for (int i = g->nnodes - 1; i >= 0; i--) {
    const mg_gnode *n = &g->nodes[i];
    if (n->kind == MG_N_CALL) {
      for (int k = 0; k < n->nin; k++) esc[n->in[k]] = 1;
    } else if (n->kind == MG_N_OP && (mg_op_info(n->op)->flags & MG_VIEW) && n->nin && esc[n->out0]) {
      esc[n->in[0]] = 1;
    } else if ((n->kind == MG_N_COND || n->kind == MG_N_WHILE) && passes_escapes_control(n, esc)) {
      free(esc);
      return NULL;
    }
  }
  return esc;
}

void passes_replace_uses(mg_graph *g, int from, int to) {
  for (int i = 0; i < g->nnodes; i++) {
    mg_gnode *n = &g->nodes[i];
    for (int k = 0; k < n->nin; k++)
      if (n->in[k] == from) n->in[k] = to;
    for (int s = 0; s < 2; s++)  /* cond/while: the subgraph reads captures by parent id */
      if (n->sub[s])
        for (int k = 0; k < n->sub[s]->ncaptures; k++)
          if (n->sub[s]->captures[k].outer == from) n->sub[s]->captures[k].outer = to;
  }
  for (int k = 0; k < g->noutputs; k++)
    if (g->outputs[k] == from) g->outputs[k] = to;
}

int passes_same_meta(const mg_graph *g, int a, int b) {
  const mg_gvalue *x = &g->values[a], *y = &g->values[b];
  return x->dtype == y->dtype && x->ndim == y->ndim &&
         (!x->ndim || memcmp(x->shape, y->shape, (size_t)x->ndim * sizeof(int64_t)) == 0);
}

int passes_is_weak_const(const mg_graph *g, int v) {
  const mg_gnode *d = passes_def(g, v);
  return d && d->kind == MG_N_CONST && (d->tensor->flags & MG_TF_WEAK);
}

int passes_op_has_effects(mg_op op) { return (mg_op_info(op)->flags & (MG_RANDOM | MG_STATE)) != 0; }

int passes_graph_has_state(const mg_graph *g) {
  for (int i = 0; i < g->nnodes; i++) {
    const mg_gnode *n = &g->nodes[i];
    switch (n->kind) {
    case MG_N_READ: case MG_N_ASSIGN: case MG_N_CALL: return 1;
    case MG_N_OP:
      if (passes_op_has_effects(n->op)) return 1;
      break;
    case MG_N_COND: case MG_N_WHILE:
      if (passes_graph_has_state(n->sub[0]) || passes_graph_has_state(n->sub[1])) return 1;
      break;
    default: break;
    }
  }
  return 0;
}

/* cond: in = pred, then's captures, else's; while: in = the nvars initial
 * values, cond's captures, body's (graph.c's append_captures). */
int passes_capture_base(const mg_gnode *n, int s) {
  int base = n->kind == MG_N_COND ? 1 : n->nvars;
  return s ? base + n->sub[0]->ncaptures : base;
}

void passes_drop_capture(mg_gnode *n, int s, int k, int keep_node) {
  mg_graph *sub = n->sub[s];
  int at = passes_capture_base(n, s) + k, inner = sub->captures[k].inner;
  memmove(&n->in[at], &n->in[at + 1], (size_t)(n->nin - at - 1) * sizeof *n->in);
  n->nin--;
  memmove(&sub->captures[k], &sub->captures[k + 1], (size_t)(sub->ncaptures - k - 1) * sizeof *sub->captures);
  sub->ncaptures--;
  mg_gnode *ph = passes_def(sub, inner);
  if (ph && !keep_node) mg_graph_kill_node(sub, (int)(ph - sub->nodes));
}

int passes_attrs_have_probes(const mg_gnode *n) {
  if (!n->attrs) return 0;
  const mg_opinfo *info = mg_op_info(n->op);
  for (int k = 0; k < info->nattrs; k++) {
    mg_attr_kind kind = info->attrs[k].kind;
    if (kind == MG_A_FLOAT) continue;
    for (int j = 0; j < n->attrs->v[k].n && j < MG_MAX_LIST; j++)
      if (mg_is_probe(n->attrs->v[k].i[j])) return 1;
  }
  return 0;
}

int passes_value_has_probes(const mg_graph *g, int v) {
  const mg_gvalue *val = &g->values[v];
  for (int d = 0; d < val->ndim; d++)
    if (mg_is_probe(val->shape[d])) return 1;
  return 0;
}

/* ---- the driver ------------------------------------------------------------------ */

static void passes_finish(mg_graph *g) {
  for (int i = 0; i < g->nnodes; i++)
    for (int s = 0; s < 2; s++)
      if (g->nodes[i].kind != MG_N_DEAD && g->nodes[i].sub[s]) passes_finish(g->nodes[i].sub[s]);
  mg_graph_compact(g);  /* also drops the plan */
}

static int passes_run(mg_ctx *ctx, mg_graph *g, unsigned passes, int *counts) {
  static const int order[] = {3, 0, 1, 2};  /* algebra, constfold, cse, dce */
  for (int round = 0; round < PASSES_MAX_ROUNDS; round++) {
    int changed = 0;
    for (int j = 0; j < 4; j++) {
      int p = order[j];
      if (!(passes & (1u << p))) continue;
      int r = passes_table[p].fn(ctx, g);
      if (r < 0) return -1;
      counts[p] += r;
      changed += r;
    }
    if (!changed) break;
  }
  if (passes & MG_PASS_FUSE) {
    int r = mg_pass_fuse(ctx, g);
    if (r < 0) return -1;
    counts[4] += r;
  }
  return 0;
}

mg_status mg_graph_optimize_counts(mg_ctx *ctx, mg_graph *g, unsigned passes, int *counts) {
  int local[MG_NPASSES] = {0};
  if (!ctx || !g) return mg_seterror(MG_EARG, "optimize: no context or graph");
  if (!g->finished) return mg_seterror(MG_ESTATE, "optimize: '%s' is still being traced", g->name);
  int saved = ctx->ntraces;
  ctx->ntraces = 0;  /* folding computes; it must not add nodes to an enclosing trace */
  ctx->paused++;     /* nor be recorded by a tape */
  int r = passes_run(ctx, g, passes & MG_PASS_ALL, local);
  ctx->paused--;
  ctx->ntraces = saved;
  passes_finish(g);  /* even after an error: the changes made so far are consistent */
  if (counts)
    for (int p = 0; p < MG_NPASSES; p++) counts[p] = local[p];
  return r < 0 ? MG_ENOMEM : MG_OK;
}

mg_status mg_graph_optimize(mg_ctx *ctx, mg_graph *g, unsigned passes) {
  return mg_graph_optimize_counts(ctx, g, passes, NULL);
}
