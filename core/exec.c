/*
 * exec.c — runs graphs in C: no Lua call per node (host-call nodes aside).
 *
 * A plan, built at the first run, records each value's last use so
 * intermediates are released as soon as nothing needs them. Op nodes go
 * through mg_apply, so a recording tape sees every op of a run (that is how
 * gradients flow through staged functions, conds and loops: each iteration's
 * values are kept by the tape's records, as TF's while_v2 keeps them).
 *
 * Graphs with static shapes also get buffers planned once: each op node's
 * output tensor is kept after a run and, when nobody else holds it at the next
 * run, reused, so a steady-state call allocates nothing for intermediates;
 * the kernel is called directly with the dtypes and shapes inferred at the
 * first run. Unknown sizes were traced as probe sizes (graph.h); a run binds
 * each probe to the size of its input and rewrites probe entries in
 * attributes, so a graph traced once serves every batch size.
 */
#include "graph.h"
#include "passes/passes.h"
#include <stdio.h>
#include <stdlib.h>

typedef struct node_plan {
  mg_meta meta;         /* static graphs: what infer said at the first run */
  mg_attrs *attrs;      /* the node's attributes, defaults filled */
  mg_tensor *keep;      /* static graphs: the output buffer kept for reuse */
  mg_tensor *cast[MG_CAST_SLOTS];  /* constant inputs already cast to what infer asked for */
  int direct;           /* the kernel may be called directly */
} node_plan;

struct mg_plan {
  int *last_use;        /* per value: the last node reading it (INT32_MAX: an output) */
  node_plan *nodes;
  int nnodes;
  int primed;           /* metas filled by one run */
  void *scratch;        /* vals + owned for one run, reused when not busy */
  int scratch_busy;
};

void mg_plan_free(struct mg_plan *p) {
  if (!p) return;
  for (int i = 0; i < p->nnodes; i++) {
    mg_tensor_release(p->nodes[i].keep);
    for (int k = 0; k < MG_CAST_SLOTS; k++) mg_tensor_release(p->nodes[i].cast[k]);
  }
  free(p->scratch);
  free(p->last_use);
  free(p->nodes);
  free(p);
}

static struct mg_plan *plan_build(mg_graph *g) {
  struct mg_plan *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->last_use = malloc((size_t)(g->nvalues ? g->nvalues : 1) * sizeof *p->last_use);
  p->nodes = calloc((size_t)(g->nnodes ? g->nnodes : 1), sizeof *p->nodes);
  p->nnodes = g->nnodes;
  if (!p->last_use || !p->nodes) {
    mg_plan_free(p);
    return NULL;
  }
  for (int v = 0; v < g->nvalues; v++) p->last_use[v] = -1;
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i].nin; k++) p->last_use[g->nodes[i].in[k]] = i;
  for (int k = 0; k < g->noutputs; k++) p->last_use[g->outputs[k]] = INT32_MAX;
  for (int k = 0; k < g->ncaptures; k++)  /* held by the caller's frame */
    p->last_use[g->captures[k].inner] = INT32_MAX;
  return p;
}

typedef struct frame {
  mg_ctx *ctx;
  mg_graph *g;
  mg_tensor **vals;
  unsigned char *owned; /* vals[v] holds a reference (inputs and constants are borrowed) */
  mg_tensor **outer;    /* the parent frame's values, for captures */
  int64_t *probes;      /* probe index -> size bound in this run (0 = not yet) */
} frame;

static mg_status run_graph(mg_ctx *ctx, mg_graph *g, mg_tensor *const *inputs, mg_tensor **outer,
                           int64_t *probes, mg_tensor **outputs);

/* Checks an input against its placeholder, binding the probes it carries. */
static mg_status bind_input(frame *f, int k, mg_tensor *t) {
  const mg_gvalue *p = &f->g->values[f->g->inputs[k]];
  char a[MG_SHAPE_BUF], b[MG_SHAPE_BUF];
  int ok = t->dtype == p->dtype && t->ndim == p->ndim;
  for (int d = 0; ok && d < p->ndim; d++) {
    if (mg_is_probe(p->shape[d])) f->probes[MG_PROBE_BASE - p->shape[d]] = t->shape[d];
    else ok = p->shape[d] == t->shape[d];
  }
  if (ok) return MG_OK;
  int64_t want[MG_MAX_DIMS];
  for (int d = 0; d < p->ndim; d++) want[d] = mg_is_probe(p->shape[d]) ? -1 : p->shape[d];
  return mg_seterror(MG_EARG, "%s: input %d is %s %s, the traced graph takes %s %s", f->g->name, k + 1,
                     mg_dtype_name((mg_dtype)t->dtype), mg_shape_str(t->ndim, t->shape, a, sizeof a),
                     mg_dtype_name((mg_dtype)p->dtype), mg_shape_str(p->ndim, want, b, sizeof b));
}

/* The node's attributes with probe sizes replaced by this run's sizes. */
static mg_status resolve_attrs(frame *f, const mg_gnode *n, mg_attrs *out) {
  *out = *n->attrs;
  const mg_opinfo *info = mg_op_info(n->op);
  for (int k = 0; k < info->nattrs; k++) {
    int count = out->v[k].n > 0 ? out->v[k].n : 0;
    for (int j = 0; j < count; j++) {
      int64_t v = out->v[k].i[j];
      if (!mg_is_probe(v)) continue;
      int64_t size = f->probes[MG_PROBE_BASE - v];
      if (!size) return mg_seterror(MG_ESTATE, "%s: an unknown size in attribute '%s' of %s was not bound by the inputs",
                                    f->g->name, info->attrs[k].name, info->name);
      out->v[k].i[j] = size;
    }
  }
  return MG_OK;
}

/* Static graphs, after the first run: the kernel straight into the buffer the
 * plan keeps for this node (reused when the last run's result was let go). */
static mg_status run_direct(frame *f, int i, node_plan *np, mg_tensor **ins, mg_tensor **out) {
  const mg_gnode *n = &f->g->nodes[i];
  const mg_opinfo *info = mg_op_info(n->op);
  mg_tensor *cin_small[8], **cin = ins;
  for (int k = 0; k < n->nin; k++) {  /* inputs must have the dtypes infer asked for */
    mg_dtype want = k < MG_CAST_SLOTS ? np->meta.cast[k] : np->meta.cast_rest;
    if (want == MG_NDTYPES || want == (mg_dtype)ins[k]->dtype) continue;
    /* a constant (a Lua number meeting float32, say) is cast once and kept */
    if (k >= MG_CAST_SLOTS || n->nin > 8 || f->g->nodes[f->g->values[n->in[k]].node].kind != MG_N_CONST)
      return MG_EDTYPE;  /* the caller falls back to mg_apply */
    if (!np->cast[k]) {
      mg_attrs ca = {.set = 1u};
      ca.v[0].n = 1;
      ca.v[0].i[0] = want;
      if (mg_apply(f->ctx, MG_OP_CAST, &ins[k], 1, &ca, &np->cast[k])) return MG_EDTYPE;
    }
    if (cin == ins) {
      memcpy(cin_small, ins, (size_t)n->nin * sizeof *ins);
      cin = cin_small;
    }
    cin[k] = np->cast[k];
  }
  ins = cin;
  mg_tensor *res = np->keep;
  if (!(res && atomic_load(&res->refs) == 1 && res->storage && atomic_load(&res->storage->refs) == 1)) {
    /* last run's buffer is still held by someone: a fresh one, which the plan keeps */
    res = mg_tensor_header(np->meta.dtype, np->meta.ndim, np->meta.shape);
    if (!res) return mg_seterror(MG_ENOMEM, "%s: out of memory", info->name);
    mg_status st = mg_tensor_alloc_storage(res);
    if (st) {
      mg_tensor_release(res);
      return st;
    }
    mg_tensor_release(np->keep);
    np->keep = res;
  }
  mg_call call = {f->ctx, n->op, info, ins, n->nin, np->attrs};
  f->ctx->paused++;
  mg_status st = mg_op_kernel(n->op)(&call, res);
  f->ctx->paused--;
  if (st) return st;
  *out = res;  /* borrowed from the plan: no refcount traffic per node */
  return MG_OK;
}

static mg_status run_op(frame *f, int i, mg_tensor **ins) {
  const mg_gnode *n = &f->g->nodes[i];
  struct mg_plan *plan = f->g->plan;
  node_plan *np = &plan->nodes[i];
  mg_tensor *out = NULL;
  mg_status st;
  if (np->direct && plan->primed && !f->ctx->ntapes && run_direct(f, i, np, ins, &out) == MG_OK) {
    f->vals[n->out0] = out;
    f->owned[n->out0] = 0;
    return MG_OK;
  }
  mg_attrs a;
  if (f->g->has_probes) {
    if ((st = resolve_attrs(f, n, &a))) return st;
  } else {
    a = *n->attrs;
  }
  if ((st = mg_apply(f->ctx, n->op, ins, n->nin, &a, &out))) {
    char why[600];
    snprintf(why, sizeof why, "%s", mg_last_error());
    return mg_seterror(st, "%s (in staged function '%s')", why, f->g->name);
  }
  f->vals[n->out0] = out;
  if (!plan->primed && !f->g->has_probes && !(mg_op_info(n->op)->flags & (MG_VIEW | MG_RANDOM))) {
    /* remember what infer said, for direct calls on later runs */
    mg_call call = {f->ctx, n->op, mg_op_info(n->op), ins, n->nin, n->attrs};
    np->meta.cast_rest = MG_NDTYPES;
    for (int k = 0; k < MG_CAST_SLOTS; k++) np->meta.cast[k] = MG_NDTYPES;
    np->attrs = n->attrs;
    np->direct = mg_op_infer(n->op)(&call, &np->meta) == MG_OK;
  }
  return MG_OK;
}

static int truthy(const mg_tensor *t) { return mg_tensor_get_f64(t, 0) != 0; }

static mg_status check_pred(const frame *f, const mg_tensor *t, const char *what) {
  if (mg_tensor_numel(t) == 1) return MG_OK;
  char sb[MG_SHAPE_BUF];
  return mg_seterror(MG_ESHAPE, "%s: the %s condition must have one element, got shape %s (in '%s')", what, what,
                     mg_shape_str(t->ndim, t->shape, sb, sizeof sb), f->g->name);
}

static mg_status run_cond(frame *f, const mg_gnode *n) {
  mg_tensor *pred = f->vals[n->in[0]];
  mg_status st = check_pred(f, pred, "cond");
  if (st) return st;
  mg_graph *sub = n->sub[truthy(pred) ? 0 : 1];
  return run_graph(f->ctx, sub, NULL, f->vals, f->probes, f->vals + n->out0);
}

static mg_status run_while(frame *f, const mg_gnode *n) {
  mg_tensor *small[8], **cur = n->nvars <= 8 ? small : malloc((size_t)n->nvars * sizeof *cur);
  mg_tensor *small2[8], **next = n->nvars <= 8 ? small2 : malloc((size_t)n->nvars * sizeof *next);
  mg_status st = cur && next ? MG_OK : mg_seterror(MG_ENOMEM, "while_loop: out of memory");
  for (int k = 0; !st && k < n->nvars; k++) {
    cur[k] = f->vals[n->in[k]];
    mg_tensor_retain(cur[k]);
  }
  for (int64_t iter = 0; !st && (n->max_iter < 0 || iter < n->max_iter); iter++) {
    mg_tensor *c;
    if ((st = run_graph(f->ctx, n->sub[0], cur, f->vals, f->probes, &c))) break;
    st = check_pred(f, c, "while_loop");
    int go = !st && truthy(c);
    mg_tensor_release(c);
    if (!go) break;
    if ((st = run_graph(f->ctx, n->sub[1], cur, f->vals, f->probes, next))) break;
    for (int k = 0; k < n->nvars; k++) {
      mg_tensor_release(cur[k]);
      cur[k] = next[k];
    }
  }
  for (int k = 0; k < n->nvars && cur; k++) {
    if (st) mg_tensor_release(cur[k]);
    else f->vals[n->out0 + k] = cur[k];
  }
  if (cur != small) free(cur);
  if (next != small2) free(next);
  return st;
}

static mg_status run_call(frame *f, const mg_gnode *n, mg_tensor **ins) {
  mg_tensor **outs = f->vals + n->out0;
  for (int k = 0; k < n->nout; k++) outs[k] = NULL;
  mg_status st = n->fn(n->ud, n->nin, ins, n->nout, outs);
  for (int k = 0; !st && k < n->nout; k++) {
    const mg_gvalue *v = &f->g->values[n->out0 + k];
    if (!outs[k] || outs[k]->dtype != v->dtype)
      st = mg_seterror(MG_EDTYPE, "lua_function: result %d should be a %s tensor, got %s", k + 1,
                       mg_dtype_name((mg_dtype)v->dtype), outs[k] ? mg_dtype_name((mg_dtype)outs[k]->dtype) : "nothing");
  }
  return st;
}

static mg_status run_node(frame *f, int i) {
  const mg_gnode *n = &f->g->nodes[i];
  mg_tensor *small[8], **ins = n->nin <= 8 ? small : malloc((size_t)n->nin * sizeof *ins);
  if (!ins) return mg_seterror(MG_ENOMEM, "%s: out of memory", f->g->name);
  for (int k = 0; k < n->nin; k++) ins[k] = f->vals[n->in[k]];
  mg_status st = MG_OK;
  switch (n->kind) {
  case MG_N_OP: st = run_op(f, i, ins); break;
  case MG_N_CONST:  /* borrowed: the node holds it */
    f->vals[n->out0] = n->tensor;
    f->owned[n->out0] = 0;
    break;
  case MG_N_READ: st = mg_variable_read(n->tensor, &f->vals[n->out0]); break;
  case MG_N_ASSIGN: st = mg_variable_assign(f->ctx, n->tensor, ins[0]); break;
  case MG_N_COND: st = run_cond(f, n); break;
  case MG_N_WHILE: st = run_while(f, n); break;
  case MG_N_CALL: st = run_call(f, n, ins); break;
  case MG_N_FUSED: st = mg_fused_run(f->ctx, n, ins, &f->vals[n->out0]); break;
  default: break;  /* inputs are bound before the run; dead nodes do nothing */
  }
  if (ins != small) free(ins);
  return st;
}

static mg_status run_graph(mg_ctx *ctx, mg_graph *g, mg_tensor *const *inputs, mg_tensor **outer,
                           int64_t *probes, mg_tensor **outputs) {
  if (!g->plan && !(g->plan = plan_build(g))) return mg_seterror(MG_ENOMEM, "%s: out of memory", g->name);
  struct mg_plan *plan = g->plan;
  size_t nv = (size_t)(g->nvalues ? g->nvalues : 1), bytes = nv * (sizeof(mg_tensor *) + 1);
  void *mem;
  int own_scratch = !plan->scratch_busy;  /* a graph re-entered (recursion) gets its own */
  if (own_scratch && !plan->scratch) plan->scratch = malloc(bytes);
  mem = own_scratch ? plan->scratch : malloc(bytes);
  if (!mem) return mg_seterror(MG_ENOMEM, "%s: out of memory", g->name);
  memset(mem, 0, bytes);
  if (own_scratch) plan->scratch_busy = 1;
  mg_tensor **vals = mem;
  unsigned char *owned = (unsigned char *)(vals + nv);
  frame f = {ctx, g, vals, owned, outer, probes};
  mg_status st = MG_OK;
  for (int k = 0; k < g->ninputs && !st; k++)  /* borrowed from the caller */
    if (!(st = bind_input(&f, k, inputs[k]))) vals[g->inputs[k]] = inputs[k];
  for (int k = 0; k < g->ncaptures && !st; k++)  /* borrowed from the enclosing frame */
    vals[g->captures[k].inner] = outer[g->captures[k].outer];
  for (int i = 0; i < g->nnodes && !st; i++) {
    const mg_gnode *n = &g->nodes[i];
    if (n->kind != MG_N_INPUT)
      for (int o = 0; o < n->nout; o++) owned[n->out0 + o] = 1;
    st = run_node(&f, i);
    for (int k = 0; k < n->nin; k++) {  /* release what this node used last */
      int v = n->in[k];
      if (plan->last_use[v] == i && vals[v]) {
        if (owned[v]) mg_tensor_release(vals[v]);
        vals[v] = NULL;
      }
    }
  }
  if (!st) plan->primed = !g->has_probes;
  for (int k = 0; k < g->noutputs; k++) {
    int v = g->outputs[k];
    outputs[k] = st ? NULL : vals[v];
    if (!st) mg_tensor_retain(vals[v]);
  }
  for (int v = 0; v < g->nvalues; v++)
    if (owned[v]) mg_tensor_release(vals[v]);
  if (own_scratch) plan->scratch_busy = 0;
  else free(mem);
  return st;
}

mg_status mg_graph_run(mg_ctx *ctx, mg_graph *g, int nin, mg_tensor *const *inputs, int nout, mg_tensor **outputs) {
  if (!g->finished) return mg_seterror(MG_ESTATE, "%s: the graph is still being traced", g->name);
  if (nin != g->ninputs)
    return mg_seterror(MG_EARG, "%s: takes %d inputs, got %d", g->name, g->ninputs, nin);
  if (nout != g->noutputs)
    return mg_seterror(MG_EARG, "%s: gives %d outputs, %d asked for", g->name, g->noutputs, nout);
  for (int k = 0; k < nin; k++)
    if (!inputs[k] || (!inputs[k]->storage && !(inputs[k]->flags & MG_TF_SYMBOLIC)))
      return mg_seterror(MG_EARG, "%s: input %d is missing or freed", g->name, k + 1);
    else if (inputs[k]->flags & MG_TF_SYMBOLIC)
      return mg_seterror(MG_EARG, "%s: input %d is symbolic; a staged function called while tracing is inlined, "
                                  "not run", g->name, k + 1);
  int64_t probes[MG_PROBE_COUNT] = {0};
  int saved = ctx->ntraces;
  ctx->ntraces = 0;  /* a run computes, even when a host call started it during a trace */
  mg_status st = run_graph(ctx, g, inputs, NULL, probes, outputs);
  ctx->ntraces = saved;
  return st;
}
