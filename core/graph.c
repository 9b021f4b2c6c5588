/*
 * graph.c — graphs and tracing: how mg_apply builds nodes, placeholders and
 * captures, constants and variable state, cond/while/host-call nodes, and
 * the text forms.
 *
 * While a trace is active, mg_apply adds a node (instead of computing) when
 * an input is symbolic or a Variable, and for creation and random ops; every
 * other op still runs, and its result, once used by a node, becomes a
 * constant of the graph. Variables are read by a READ node at each use, so
 * reads and assigns stay in program order. A subgraph (a cond branch, a while
 * condition or body) uses outer values through capture placeholders, made
 * on demand and listed in `captures`; the cond/while node takes the captured
 * outer values as extra inputs.
 */
#include "graph.h"
#include "passes/passes.h"
#include "ptrmap.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void mg_plan_free(struct mg_plan *plan);  /* exec.c */

/* ---- graph objects ----------------------------------------------------------- */

static mg_graph *graph_new(const char *name, mg_graph *parent) {
  mg_graph *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  atomic_init(&g->refs, 1);
  g->name = strdup(name ? name : "graph");
  g->parent = parent;
  g->consts_map = calloc(1, sizeof(ptrmap));
  if (!g->name || !g->consts_map) {
    free(g->name);
    free(g->consts_map);
    free(g);
    return NULL;
  }
  return g;
}

void mg_graph_retain(mg_graph *g) {
  if (g) atomic_fetch_add(&g->refs, 1);
}

void mg_graph_kill_node(mg_graph *g, int i) {
  mg_gnode *n = &g->nodes[i];
  free(n->in);
  free(n->attrs);
  mg_tensor_release(n->tensor);
  mg_graph_release(n->sub[0]);
  mg_graph_release(n->sub[1]);
  if (n->free_ud) n->free_ud(n->ud);
  free(n->label);
  memset(n, 0, sizeof *n);
  n->kind = MG_N_DEAD;
}

void mg_graph_release(mg_graph *g) {
  if (!g || atomic_fetch_sub(&g->refs, 1) != 1) return;
  for (int i = 0; i < g->nnodes; i++) mg_graph_kill_node(g, i);
  for (int v = 0; v < g->nvalues; v++) free(g->values[v].where);
  if (g->consts_map) map_free(g->consts_map);
  free(g->consts_map);
  mg_plan_free(g->plan);
  free(g->nodes);
  free(g->values);
  free(g->inputs);
  free(g->captures);
  for (int k = 0; k < g->next; k++) mg_tensor_release(g->ext[k]);
  free(g->ext);
  free(g->outputs);
  free(g->name);
  mg_gfile_free(g->file);
  free(g);
}

void mg_graph_invalidate(mg_graph *g) {
  mg_plan_free(g->plan);
  g->plan = NULL;
}

static int grow(void **p, int *cap, int need, size_t size) {
  if (need <= *cap) return 1;
  int cap2 = *cap ? *cap * 2 : 16;
  while (cap2 < need) cap2 *= 2;
  void *q = realloc(*p, (size_t)cap2 * size);
  if (!q) return 0;
  *p = q;
  *cap = cap2;
  return 1;
}

int mg_graph_add_node(mg_graph *g, mg_node_kind kind, int nin, const int *in, int nout) {
  if (!grow((void **)&g->nodes, &g->cap_nodes, g->nnodes + 1, sizeof *g->nodes) ||
      !grow((void **)&g->values, &g->cap_values, g->nvalues + nout, sizeof *g->values))
    return -1;
  mg_gnode *n = &g->nodes[g->nnodes];
  memset(n, 0, sizeof *n);
  n->kind = kind;
  n->nin = nin;
  if (nin) {
    n->in = malloc((size_t)nin * sizeof *n->in);
    if (!n->in) return -1;
    memcpy(n->in, in, (size_t)nin * sizeof *n->in);
  }
  n->nout = nout;
  n->out0 = g->nvalues;
  n->max_iter = -1;
  for (int k = 0; k < nout; k++) {
    memset(&g->values[g->nvalues + k], 0, sizeof g->values[0]);
    g->values[g->nvalues + k].node = g->nnodes;
  }
  g->nvalues += nout;
  return g->nnodes++;
}

void mg_graph_set_value_meta(mg_graph *g, int v, mg_dtype dt, int ndim, const int64_t *shape) {
  g->values[v].dtype = (uint8_t)dt;
  g->values[v].ndim = (uint8_t)ndim;
  if (ndim) memcpy(g->values[v].shape, shape, (size_t)ndim * sizeof(int64_t));
}

void mg_graph_compact(mg_graph *g) {
  int k = 0;
  for (int i = 0; i < g->nnodes; i++) {
    if (g->nodes[i].kind == MG_N_DEAD) continue;
    if (k != i) g->nodes[k] = g->nodes[i];
    for (int o = 0; o < g->nodes[k].nout; o++) g->values[g->nodes[k].out0 + o].node = k;
    k++;
  }
  g->nnodes = k;
  mg_graph_invalidate(g);
}

/* ---- tracing state ------------------------------------------------------------- */

int mg_tracing(const mg_ctx *ctx) { return ctx && ctx->ntraces > 0; }
const char *mg_trace_name(const mg_ctx *ctx) { return ctx && ctx->ntraces ? ctx->traces[0]->name : NULL; }
int mg_size_is_unknown(int64_t d) { return mg_is_probe(d); }

static mg_graph *current(const mg_ctx *ctx) { return ctx->ntraces ? ctx->traces[ctx->ntraces - 1] : NULL; }

void mg_ctx_set_where_hook(mg_ctx *ctx, const char *(*where)(void *ud), void *ud) {
  ctx->where = where;
  ctx->where_ud = ud;
}

mg_status mg_trace_begin(mg_ctx *ctx, const char *name, mg_graph **out) {
  if (!grow((void **)&ctx->traces, &ctx->cap_traces, ctx->ntraces + 1, sizeof *ctx->traces))
    return mg_seterror(MG_ENOMEM, "trace: out of memory");
  mg_graph *g = graph_new(name, current(ctx));
  if (!g) return mg_seterror(MG_ENOMEM, "trace: out of memory");
  if (!ctx->ntraces) ctx->next_probe = 0;
  ctx->traces[ctx->ntraces++] = g;
  mg_graph_retain(g);  /* one for the trace stack, one for the caller */
  *out = g;
  return MG_OK;
}

static void pop_trace(mg_ctx *ctx) {
  mg_graph *g = ctx->traces[--ctx->ntraces];
  g->finished = 1;
  if (!g->parent) g->next_probe = ctx->next_probe;  /* mg_trace_resume goes on from here */
  map_free(g->consts_map);
  free(g->consts_map);
  g->consts_map = NULL;
  mg_graph_release(g);
  if (!ctx->ntraces) {
    free(ctx->traces);
    ctx->traces = NULL;
    ctx->cap_traces = 0;
  }
}

/* Reopens a finished top-level graph for tracing: its symbolic tensors are
 * live again and new nodes append (a TF1 Graph entered again with
 * as_default). Unknown sizes go on getting fresh probes. */
mg_status mg_trace_resume(mg_ctx *ctx, mg_graph *g) {
  if (ctx->ntraces)
    return mg_seterror(MG_ESTATE, "graph '%s': cannot be entered while '%s' is being traced", g->name,
                       ctx->traces[0]->name);
  if (!g->finished || g->parent || g->ncaptures)
    return mg_seterror(MG_ESTATE, "graph '%s': only a finished top-level graph can be entered again", g->name);
  if (!grow((void **)&ctx->traces, &ctx->cap_traces, 1, sizeof *ctx->traces) ||
      (!g->consts_map && !(g->consts_map = calloc(1, sizeof(ptrmap)))))
    return mg_seterror(MG_ENOMEM, "trace: out of memory");
  free(g->outputs);
  g->outputs = NULL;
  g->noutputs = 0;
  mg_graph_invalidate(g);
  g->finished = 0;
  g->resumable = 1;
  ctx->next_probe = g->next_probe;
  ctx->traces[ctx->ntraces++] = g;
  mg_graph_retain(g);
  return MG_OK;
}

int mg_tensor_graph_value(const mg_tensor *t, const mg_graph *g) {
  return t && (t->flags & MG_TF_SYMBOLIC) && t->graph == g ? t->value : -1;
}

void mg_trace_abort(mg_ctx *ctx) {
  if (ctx->ntraces) pop_trace(ctx);
}

/* A symbolic tensor standing for value v of g. */
static mg_status symbolic(mg_ctx *ctx, mg_graph *g, int v, mg_tensor **out) {
  mg_gvalue *val = &g->values[v];
  mg_tensor *t = mg_tensor_header((mg_dtype)val->dtype, val->ndim, val->shape);
  if (!t) return mg_seterror(MG_ENOMEM, "trace: out of memory");
  t->flags |= MG_TF_SYMBOLIC;
  t->graph = g;
  t->value = v;
  mg_graph_retain(g);
  if (ctx->where && !val->where) {
    const char *w = ctx->where(ctx->where_ud);
    if (w) val->where = strdup(w);
  }
  *out = t;
  return MG_OK;
}

int mg_tensor_is_symbolic(const mg_tensor *t) { return (t->flags & MG_TF_SYMBOLIC) != 0; }

mg_status mg_symbolic_misuse(const mg_ctx *ctx, const mg_opinfo *info, const mg_tensor *t) {
  const mg_gvalue *v = &t->graph->values[t->value];
  (void)ctx;
  if (t->graph->resumable)  /* a TF1-style graph's tensor (stdlib/moongrad/graph_mode.lua) */
    return mg_seterror(MG_ESTATE,
                       "%s: a tensor of graph '%s'%s%s%s has no value outside it: fetch it with a Session "
                       "(sess:run) or use it inside the graph's as_default",
                       info ? info->name : "use", t->graph->name, v->where ? " (created at " : "",
                       v->where ? v->where : "", v->where ? ")" : "");
  return mg_seterror(MG_ESTATE,
                     "%s: a symbolic tensor of the traced function '%s'%s%s%s escaped its trace: it only "
                     "exists while '%s' is being traced (return it from the function instead of storing it)",
                     info ? info->name : "use", t->graph->name, v->where ? " (created at " : "",
                     v->where ? v->where : "", v->where ? ")" : "", t->graph->name);
}

/* Gives each unknown size (-1) a fresh probe size. */
static mg_status probe_shape(mg_ctx *ctx, mg_graph *g, int ndim, const int64_t *shape, int64_t *out) {
  for (int d = 0; d < ndim; d++) {
    out[d] = shape[d];
    if (shape[d] >= 0) continue;
    if (ctx->next_probe >= MG_PROBE_COUNT)
      return mg_seterror(MG_ESHAPE, "trace: more than %d unknown sizes in one trace", MG_PROBE_COUNT);
    out[d] = MG_PROBE_BASE - ctx->next_probe++;
    g->has_probes = 1;
    for (mg_graph *p = g->parent; p; p = p->parent) p->has_probes = 1;
  }
  return MG_OK;
}

static int add_input_node(mg_graph *g, mg_dtype dt, int ndim, const int64_t *shape) {
  int n = mg_graph_add_node(g, MG_N_INPUT, 0, NULL, 1);
  if (n < 0) return -1;
  mg_graph_set_value_meta(g, g->nodes[n].out0, dt, ndim, shape);
  return g->nodes[n].out0;
}

mg_status mg_trace_placeholder(mg_ctx *ctx, mg_dtype dt, int ndim, const int64_t *shape, mg_tensor **out) {
  mg_graph *g = current(ctx);
  int64_t s[MG_MAX_DIMS];
  mg_status st;
  if (!g) return mg_seterror(MG_ESTATE, "placeholder: no trace is active");
  if (ndim < 0 || ndim > MG_MAX_DIMS) return mg_seterror(MG_ESHAPE, "placeholder: bad rank %d", ndim);
  if ((st = probe_shape(ctx, g, ndim, shape, s))) return st;
  if (!grow((void **)&g->inputs, &g->cap_inputs, g->ninputs + 1, sizeof *g->inputs))
    return mg_seterror(MG_ENOMEM, "trace: out of memory");
  int v = add_input_node(g, dt, ndim, s);
  if (v < 0) return mg_seterror(MG_ENOMEM, "trace: out of memory");
  g->inputs[g->ninputs++] = v;
  return symbolic(ctx, g, v, out);
}

/* The id of outer value `ov` of g's parent inside g (a capture of tensor t,
 * which g keeps so a tape can give the capture a gradient). */
static int capture(mg_graph *g, int ov, mg_tensor *t) {
  for (int k = 0; k < g->ncaptures; k++)
    if (g->captures[k].outer == ov) return g->captures[k].inner;
  const mg_gvalue *pv = &g->parent->values[ov];
  if (!grow((void **)&g->captures, &g->cap_captures, g->ncaptures + 1, sizeof *g->captures) ||
      !grow((void **)&g->ext, &g->cap_ext, g->next + 1, sizeof *g->ext))
    return -1;
  int v = add_input_node(g, (mg_dtype)pv->dtype, pv->ndim, pv->shape);
  if (v < 0) return -1;
  if (pv->where) g->values[v].where = strdup(pv->where);
  g->captures[g->ncaptures++] = (mg_capture){ov, v};
  g->ext[g->next++] = t;
  mg_tensor_retain(t);
  return v;
}

/* Value id in g of symbolic tensor t, capturing through enclosing graphs. */
static int symbolic_value(mg_graph *g, mg_tensor *t) {
  if (t->graph == g) return t->value;
  if (!g->parent) return -1;
  int ov = symbolic_value(g->parent, t);
  return ov < 0 ? -1 : capture(g, ov, t);
}

static int const_value(mg_graph *g, mg_tensor *t) {
  void *hit = map_get(g->consts_map, t);
  if (hit) return (int)(intptr_t)hit - 1;
  int n = mg_graph_add_node(g, MG_N_CONST, 0, NULL, 1);
  if (n < 0) return -1;
  g->nodes[n].tensor = t;
  mg_tensor_retain(t);
  mg_graph_set_value_meta(g, g->nodes[n].out0, (mg_dtype)t->dtype, t->ndim, t->shape);
  map_put(g->consts_map, t, (void *)(intptr_t)(g->nodes[n].out0 + 1));
  return g->nodes[n].out0;
}

static mg_status read_node(mg_ctx *ctx, mg_graph *g, mg_tensor *var, mg_tensor **out) {
  int n = mg_graph_add_node(g, MG_N_READ, 0, NULL, 1);
  if (n < 0) return mg_seterror(MG_ENOMEM, "trace: out of memory");
  g->nodes[n].tensor = var;
  mg_tensor_retain(var);
  mg_graph_set_value_meta(g, g->nodes[n].out0, (mg_dtype)var->dtype, var->ndim, var->shape);
  mg_status st = symbolic(ctx, g, g->nodes[n].out0, out);
  if (!st) {  /* the tape knows the read as the Variable itself */
    (*out)->snapshot_of = var;
    mg_tensor_retain(var);
  }
  return st;
}

mg_status mg_trace_read_variable(mg_ctx *ctx, mg_tensor *var, mg_tensor **out) {
  mg_graph *g = current(ctx);
  if (!g) return mg_variable_read(var, out);
  return read_node(ctx, g, var, out);
}

/* Value id of any tensor used by a node of g (NULL-free, checked inputs). */
static mg_status value_of(mg_ctx *ctx, mg_graph *g, mg_tensor *t, int *v) {
  if (t->flags & MG_TF_SYMBOLIC) {
    *v = symbolic_value(g, t);
    if (*v < 0) return t->graph->finished ? mg_symbolic_misuse(ctx, NULL, t)
                                          : mg_seterror(MG_ENOMEM, "trace: out of memory");
    return MG_OK;
  }
  if (t->flags & MG_TF_VARIABLE) {
    mg_tensor *r;
    mg_status st = read_node(ctx, g, t, &r);
    if (st) return st;
    *v = r->value;
    mg_tensor_release(r);
    return MG_OK;
  }
  *v = const_value(g, t);
  return *v < 0 ? mg_seterror(MG_ENOMEM, "trace: out of memory") : MG_OK;
}

int mg_trace_wants(const mg_ctx *ctx, const mg_opinfo *info, mg_tensor *const *in, int nin) {
  (void)ctx;
  if (info->flags & MG_CREATE) return 1;  /* creation (sizes may be unknown) and random: run every call */
  for (int i = 0; i < nin; i++)
    if (in[i]->flags & (MG_TF_SYMBOLIC | MG_TF_VARIABLE)) return 1;
  return 0;
}

/* An op given an unknown size (a probe) in an attribute: its graph, and
 * every graph around it, resolves attributes when run. A subgraph (a while
 * body) may hold one with no unknown size among its own placeholders. */
static void mark_attr_probes(mg_graph *g, mg_op op, const mg_attrs *a) {
  const mg_opinfo *info = mg_op_info(op);
  for (int k = 0; k < info->nattrs; k++)
    for (int j = 0; j < a->v[k].n && info->attrs[k].kind != MG_A_FLOAT; j++)
      if (mg_is_probe(a->v[k].i[j]))
        for (mg_graph *p = g; p; p = p->parent) p->has_probes = 1;
}

mg_status mg_trace_op(mg_ctx *ctx, mg_op op, mg_tensor *const *in, int nin, const mg_attrs *a,
                      const mg_meta *m, mg_tensor **out) {
  mg_graph *g = current(ctx);
  mg_status st = MG_OK;
  int small[8] = {0}, *ids = nin <= 8 ? small : malloc((size_t)nin * sizeof *ids);
  mg_tensor *tsmall[8], **tin = nin <= 8 ? tsmall : malloc((size_t)nin * sizeof *tin);
  if (!ids || !tin) {
    st = mg_seterror(MG_ENOMEM, "trace: out of memory");
    goto done;
  }
  int ntin = 0;
  for (int i = 0; i < nin && !st; i++, ntin++) {
    if (in[i]->flags & MG_TF_VARIABLE) {  /* read it here, in program order */
      st = read_node(ctx, g, in[i], &tin[i]);
      if (!st) ids[i] = tin[i]->value;
    } else {
      tin[i] = in[i];
      mg_tensor_retain(in[i]);
      st = value_of(ctx, g, in[i], &ids[i]);
    }
  }
  if (st) goto release;
  int n = mg_graph_add_node(g, MG_N_OP, nin, ids, 1);
  if (n < 0 || !(g->nodes[n].attrs = malloc(sizeof *a))) {
    st = mg_seterror(MG_ENOMEM, "trace: out of memory");
    goto release;
  }
  g->nodes[n].op = op;
  *g->nodes[n].attrs = *a;
  mark_attr_probes(g, op, a);
  mg_graph_set_value_meta(g, g->nodes[n].out0, m->dtype, m->ndim, m->shape);
  if ((st = symbolic(ctx, g, g->nodes[n].out0, out))) goto release;
  if (ctx->ntapes && !ctx->paused && (st = mg_tape_record_op(ctx, op, tin, nin, a, *out))) {
    mg_tensor_release(*out);
    *out = NULL;
  }
release:
  for (int i = 0; i < ntin; i++) mg_tensor_release(tin[i]);
done:
  if (ids != small) free(ids);
  if (tin != tsmall) free(tin);
  return st;
}

mg_status mg_trace_end(mg_ctx *ctx, mg_graph *g, int nout, mg_tensor *const *outputs) {
  if (current(ctx) != g) return mg_seterror(MG_ESTATE, "trace: '%s' is not the innermost trace", g->name);
  mg_status st = MG_OK;
  g->outputs = malloc((size_t)(nout > 0 ? nout : 1) * sizeof *g->outputs);
  if (!g->outputs) st = mg_seterror(MG_ENOMEM, "trace: out of memory");
  for (int k = 0; k < nout && !st; k++) {
    if (!outputs[k]) st = mg_seterror(MG_EARG, "trace: output %d of '%s' is missing", k + 1, g->name);
    else st = value_of(ctx, g, outputs[k], &g->outputs[k]);
  }
  g->noutputs = st ? 0 : nout;
  pop_trace(ctx);
  return st;
}

/* ---- control flow and host calls ---------------------------------------------------- */

/* Adds captures of a finished subgraph as inputs of its node: their values
 * in the parent (which the parent may itself capture). */
/* Once its node exists a subgraph lets go of its captured tensors: they hold
 * the parent graph, which now holds the subgraph (no cycle). */
static void drop_ext(mg_graph *sub) {
  for (int k = 0; k < sub->next; k++) mg_tensor_release(sub->ext[k]);
  free(sub->ext);
  sub->ext = NULL;
  sub->next = sub->cap_ext = 0;
}

static int append_captures(mg_graph *sub, int *ids, int n) {
  for (int k = 0; k < sub->ncaptures; k++) ids[n++] = sub->captures[k].outer;
  return n;
}

static mg_status outputs_of(mg_ctx *ctx, mg_graph *g, int node, int nout, mg_graph *like, mg_tensor **outs) {
  for (int k = 0; k < nout; k++) {
    const mg_gvalue *lv = &like->values[like->outputs[k]];
    mg_graph_set_value_meta(g, g->nodes[node].out0 + k, (mg_dtype)lv->dtype, lv->ndim, lv->shape);
  }
  for (int k = 0; k < nout; k++) {
    mg_status st = symbolic(ctx, g, g->nodes[node].out0 + k, &outs[k]);
    if (st) {
      while (k-- > 0) mg_tensor_release(outs[k]);
      return st;
    }
  }
  return MG_OK;
}

static mg_status same_outputs(const char *what, mg_graph *a, mg_graph *b, int nout) {
  char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
  if (a->noutputs != nout || b->noutputs != nout)
    return mg_seterror(MG_EARG, "%s: the branches return %d and %d values", what, a->noutputs, b->noutputs);
  for (int k = 0; k < nout; k++) {
    const mg_gvalue *x = &a->values[a->outputs[k]], *y = &b->values[b->outputs[k]];
    if (x->dtype != y->dtype || x->ndim != y->ndim || memcmp(x->shape, y->shape, x->ndim * sizeof(int64_t)))
      return mg_seterror(MG_EARG, "%s: value %d is %s %s in one branch and %s %s in the other", what, k + 1,
                         mg_dtype_name((mg_dtype)x->dtype), mg_shape_str(x->ndim, x->shape, sa, sizeof sa),
                         mg_dtype_name((mg_dtype)y->dtype), mg_shape_str(y->ndim, y->shape, sb, sizeof sb));
  }
  return MG_OK;
}

mg_status mg_trace_cond(mg_ctx *ctx, mg_tensor *pred, mg_graph *then_g, mg_graph *else_g, int nout,
                        mg_tensor **outs) {
  mg_graph *g = current(ctx);
  mg_status st;
  if (!g) return mg_seterror(MG_ESTATE, "cond: no trace is active");
  if (mg_tensor_numel(pred) != 1 && !mg_is_probe(pred->ndim ? pred->shape[0] : 1))
    return mg_seterror(MG_ESHAPE, "cond: the condition must have one element, got %lld",
                       (long long)mg_tensor_numel(pred));
  if ((st = same_outputs("cond", then_g, else_g, nout))) return st;
  int *ids = malloc((size_t)(1 + then_g->ncaptures + else_g->ncaptures) * sizeof *ids);
  if (!ids) return mg_seterror(MG_ENOMEM, "cond: out of memory");
  if ((st = value_of(ctx, g, pred, &ids[0]))) {
    free(ids);
    return st;
  }
  int n = append_captures(else_g, ids, append_captures(then_g, ids, 1));
  int node = mg_graph_add_node(g, MG_N_COND, n, ids, nout);
  free(ids);
  if (node < 0) return mg_seterror(MG_ENOMEM, "cond: out of memory");
  g->nodes[node].sub[0] = then_g;
  g->nodes[node].sub[1] = else_g;
  mg_graph_retain(then_g);
  mg_graph_retain(else_g);
  drop_ext(then_g);
  drop_ext(else_g);
  return outputs_of(ctx, g, node, nout, then_g, outs);
}

static mg_status trace_while(mg_ctx *ctx, mg_graph *cond_g, mg_graph *body_g, int nvars, mg_tensor *const *init,
                             int64_t max_iterations, int save, mg_tensor **outs) {
  mg_graph *g = current(ctx);
  mg_status st = MG_OK;
  char sa[MG_SHAPE_BUF], sb[MG_SHAPE_BUF];
  if (!g) return mg_seterror(MG_ESTATE, "while_loop: no trace is active");
  if (cond_g->ninputs != nvars || body_g->ninputs != nvars || body_g->noutputs != nvars || cond_g->noutputs != 1)
    return mg_seterror(MG_EARG, "while_loop: the condition and body must take the %d loop variables and the body "
                                "return %d values (it returns %d)", nvars, nvars, body_g->noutputs);
  for (int k = 0; k < nvars; k++) {  /* the body keeps each variable's dtype and (allowed) shape */
    const mg_gvalue *p = &body_g->values[body_g->inputs[k]], *o = &body_g->values[body_g->outputs[k]];
    int ok = p->dtype == o->dtype && p->ndim == o->ndim;
    for (int d = 0; ok && d < p->ndim; d++) ok = mg_is_probe(p->shape[d]) || p->shape[d] == o->shape[d];
    if (!ok)
      return mg_seterror(MG_EARG, "while_loop: loop variable %d enters as %s %s and leaves the body as %s %s; "
                                  "keep its dtype and shape, or allow the size to change with shape_invariants (-1)",
                         k + 1, mg_dtype_name((mg_dtype)p->dtype), mg_shape_str(p->ndim, p->shape, sa, sizeof sa),
                         mg_dtype_name((mg_dtype)o->dtype), mg_shape_str(o->ndim, o->shape, sb, sizeof sb));
  }
  const mg_gvalue *cv = &cond_g->values[cond_g->outputs[0]];
  int64_t cn = 1;
  for (int d = 0; d < cv->ndim; d++) cn *= cv->shape[d];
  if (cn != 1) return mg_seterror(MG_ESHAPE, "while_loop: the condition must give one element, got shape %s",
                                  mg_shape_str(cv->ndim, cv->shape, sa, sizeof sa));
  int *ids = malloc((size_t)(nvars + cond_g->ncaptures + body_g->ncaptures + 1) * sizeof *ids);
  if (!ids) return mg_seterror(MG_ENOMEM, "while_loop: out of memory");
  for (int k = 0; k < nvars && !st; k++) st = value_of(ctx, g, init[k], &ids[k]);
  if (st) {
    free(ids);
    return st;
  }
  int64_t trips = 0;  /* the stacks' first size: unknown, a probe of its own */
  if (save) {
    for (int k = 0; k < nvars && !st; k++)
      if (body_g->values[body_g->inputs[k]].ndim >= MG_MAX_DIMS)
        st = mg_seterror(MG_ESHAPE, "while_loop gradient: loop variable %d has %d dimensions; the gradient stacks "
                                    "its per-iteration values and needs one more (at most %d)", k + 1, MG_MAX_DIMS,
                         MG_MAX_DIMS);
    if (!st && ctx->next_probe >= MG_PROBE_COUNT)
      st = mg_seterror(MG_ESHAPE, "while_loop gradient: more than %d unknown sizes in one trace", MG_PROBE_COUNT);
    if (st) {
      free(ids);
      return st;
    }
    trips = MG_PROBE_BASE - ctx->next_probe++;
  }
  int n = append_captures(body_g, ids, append_captures(cond_g, ids, nvars));
  int nout = save ? 2 * nvars + 1 : nvars;
  int node = mg_graph_add_node(g, MG_N_WHILE, n, ids, nout);
  free(ids);
  if (node < 0) return mg_seterror(MG_ENOMEM, "while_loop: out of memory");
  mg_gnode *nd = &g->nodes[node];
  nd->sub[0] = cond_g;
  nd->sub[1] = body_g;
  nd->nvars = nvars;
  nd->max_iter = max_iterations;
  mg_graph_retain(cond_g);
  mg_graph_retain(body_g);
  drop_ext(cond_g);
  drop_ext(body_g);
  for (int k = 0; k < nvars; k++) {  /* outputs: the placeholders' (possibly relaxed) shapes */
    const mg_gvalue *p = &body_g->values[body_g->inputs[k]];
    mg_graph_set_value_meta(g, nd->out0 + k, (mg_dtype)p->dtype, p->ndim, p->shape);
    if (save) {
      /* Only the gradient's take ops read a stack, and their results do not
       * depend on its first size, so the graph is not marked has_probes:
       * its static parts keep the executor's planned buffers. */
      int64_t shape[MG_MAX_DIMS];
      shape[0] = trips;
      memcpy(shape + 1, p->shape, (size_t)p->ndim * sizeof(int64_t));
      mg_graph_set_value_meta(g, nd->out0 + nvars + k, (mg_dtype)p->dtype, p->ndim + 1, shape);
    }
  }
  if (save) mg_graph_set_value_meta(g, nd->out0 + 2 * nvars, MG_INT64, 0, NULL);
  for (int k = 0; k < nout; k++)
    if ((st = symbolic(ctx, g, nd->out0 + k, &outs[k]))) {
      while (k-- > 0) mg_tensor_release(outs[k]);
      return st;
    }
  return MG_OK;
}

mg_status mg_trace_while(mg_ctx *ctx, mg_graph *cond_g, mg_graph *body_g, int nvars, mg_tensor *const *init,
                         int64_t max_iterations, mg_tensor **outs) {
  return trace_while(ctx, cond_g, body_g, nvars, init, max_iterations, 0, outs);
}

mg_status mg_trace_while_save(mg_ctx *ctx, mg_graph *cond_g, mg_graph *body_g, int nvars, mg_tensor *const *init,
                              int64_t max_iterations, mg_tensor **outs) {
  return trace_while(ctx, cond_g, body_g, nvars, init, max_iterations, 1, outs);
}

/* Does any node of g (or an output) read value v? A stack nothing reads
 * (the optimiser dropped the backward's use: a write-only accumulator, say)
 * is not kept. */
static int value_used(const mg_graph *g, int v) {
  for (int k = 0; k < g->noutputs; k++)
    if (g->outputs[k] == v) return 1;
  for (int i = 0; i < g->nnodes; i++)
    for (int k = 0; k < g->nodes[i].nin; k++)
      if (g->nodes[i].in[k] == v) return 1;
  return 0;
}

int mg_while_passthrough(const mg_gnode *n, int k) {
  const mg_graph *body = n->sub[1];
  return k >= 0 && k < n->nvars && k < body->noutputs && k < body->ninputs && body->outputs[k] == body->inputs[k];
}

/* Loop variable k's iterations are kept when its stack is read and the body
 * changes it: a passthrough variable starts every iteration with the same
 * value, so its stack (if read at all) is a view of the final value. */
static int save_keeps(const mg_graph *g, const mg_gnode *n, int k) {
  return !mg_while_passthrough(n, k) && value_used(g, n->out0 + n->nvars + k);
}

mg_status mg_while_save_push(const mg_graph *g, const mg_gnode *n, mg_tensor ***saved, int64_t *nsaved,
                             int64_t *cap, mg_tensor *const *cur) {
  int nvars = n->nvars;
  if (*nsaved + nvars > *cap) {  /* unknown trip count: double */
    int64_t c = *cap ? *cap * 2 : 16 * (int64_t)(nvars ? nvars : 1);
    while (c < *nsaved + nvars) c *= 2;
    mg_tensor **p = realloc(*saved, (size_t)c * sizeof *p);
    if (!p) return mg_seterror(MG_ENOMEM, "while_loop: out of memory keeping the iterations for the gradient");
    *saved = p;
    *cap = c;
  }
  for (int k = 0; k < nvars; k++) {
    /* decided on the first iteration (a scan of g), then read off it */
    int keep = *nsaved ? (*saved)[k] != NULL : save_keeps(g, n, k);
    (*saved)[*nsaved + k] = keep ? cur[k] : NULL;
    if (keep) mg_tensor_retain(cur[k]);
  }
  *nsaved += nvars;
  return MG_OK;
}

/* A passthrough variable's stack: its value (the same every iteration)
 * broadcast along a new first axis of size iters, a view (no copy). */
static mg_status passthrough_stack(mg_ctx *ctx, mg_tensor *x, int64_t iters, mg_tensor **out) {
  mg_attrs a = {.set = 1u};
  a.v[0].n = x->ndim + 1;
  a.v[0].i[0] = 1;
  memcpy(&a.v[0].i[1], x->shape, (size_t)x->ndim * sizeof(int64_t));
  mg_tensor *one;
  mg_status st = mg_apply(ctx, MG_OP_RESHAPE, &x, 1, &a, &one);
  if (st) return st;
  a.v[0].i[0] = iters;
  st = mg_apply(ctx, MG_OP_EXPAND, &one, 1, &a, out);
  mg_tensor_release(one);
  return st;
}

/* outs[k] = the values of variable k at the start of each iteration, joined
 * on a new first axis (a size-0 one for no iteration); outs[nvars] = iters. */
mg_status mg_while_save_finish(mg_ctx *ctx, const mg_graph *g, const mg_gnode *n, mg_tensor *const *first,
                               mg_tensor **saved, int64_t iters, mg_tensor **outs) {
  int nvars = n->nvars;
  mg_status st = MG_OK;
  mg_tensor **parts = malloc((size_t)(iters ? iters : 1) * sizeof *parts);
  if (!parts) return mg_seterror(MG_ENOMEM, "while_loop: out of memory stacking the iterations for the gradient");
  for (int k = 0; k < nvars; k++) outs[k] = NULL;
  for (int k = 0; k < nvars && !st; k++) {
    const mg_tensor *x = first[k];
    mg_attrs a = {.set = 1u};
    a.v[0].n = x->ndim + 1;
    a.v[0].i[0] = 1;
    memcpy(&a.v[0].i[1], x->shape, (size_t)x->ndim * sizeof(int64_t));
    if (!iters) {
      a.v[0].i[0] = 0;
      st = mg_tensor_empty((mg_dtype)x->dtype, x->ndim + 1, a.v[0].i, &outs[k]);
      continue;
    }
    int64_t np = 0;
    if (!saved[k]) {  /* not kept: a view for a passthrough variable something reads, else nothing */
      if (mg_while_passthrough(n, k) && value_used(g, n->out0 + nvars + k))
        st = passthrough_stack(ctx, first[k], iters, &outs[k]);
      continue;
    }
    for (int64_t it = 0; it < iters && !st; it++) {
      mg_tensor *e = saved[it * nvars + k];
      memcpy(&a.v[0].i[1], e->shape, (size_t)e->ndim * sizeof(int64_t));
      if ((st = mg_apply(ctx, MG_OP_RESHAPE, &e, 1, &a, &parts[np]))) break;
      np++;
    }
    if (!st) {
      mg_attrs c = {.set = 1u};
      c.v[0].n = 1;
      c.v[0].i[0] = ctx->index_base;
      st = mg_apply(ctx, MG_OP_CONCAT, parts, (int)np, &c, &outs[k]);
      if (st) {
        char why[400];
        snprintf(why, sizeof why, "%s", mg_last_error());
        st = mg_seterror(st, "while_loop gradient: cannot keep loop variable %d's iterations (its shape changes "
                             "between iterations?): %s", k + 1, why);
      }
    }
    for (int64_t i = 0; i < np; i++) mg_tensor_release(parts[i]);
  }
  free(parts);
  if (!st) st = mg_scalar_i64(iters, 0, &outs[nvars]);
  if (st)
    for (int k = 0; k < nvars; k++) {
      mg_tensor_release(outs[k]);
      outs[k] = NULL;
    }
  return st;
}

/* Adds t (once) to out[0..*n), counting past cap. */
static void ext_add(mg_tensor *t, int cap, mg_tensor **out, int *n) {
  for (int k = 0; k < *n && k < cap; k++)
    if (out[k] == t) return;
  if (*n < cap) out[*n] = t;
  (*n)++;
}

/* The Variables g and its subgraphs read. */
static void externals(const mg_graph *g, int cap, mg_tensor **out, int *n) {
  for (int i = 0; i < g->nnodes; i++) {
    const mg_gnode *nd = &g->nodes[i];
    if (nd->kind == MG_N_READ) ext_add(nd->tensor, cap, out, n);
    for (int s = 0; s < 2; s++)
      if (nd->sub[s]) externals(nd->sub[s], cap, out, n);
  }
}

const char *mg_graph_effect(const mg_graph *g) {
  for (int i = 0; i < g->nnodes; i++) {
    const mg_gnode *n = &g->nodes[i];
    if (n->kind == MG_N_ASSIGN) return "assigns a Variable";
    if (n->kind == MG_N_CALL) return "calls Lua (mg.lua_function or mg.print)";
    if (n->kind == MG_N_OP && (mg_op_info(n->op)->flags & MG_RANDOM)) return "draws random numbers";
    if (n->kind == MG_N_OP && (mg_op_info(n->op)->flags & MG_STATE)) return "updates a Variable (an optimizer step)";
    for (int s = 0; s < 2; s++) {
      const char *e = n->sub[s] ? mg_graph_effect(n->sub[s]) : NULL;
      if (e) return e;
    }
  }
  return NULL;
}

int mg_graph_externals(const mg_graph *g, int cap, mg_tensor **out) {
  int n = 0;
  for (int k = 0; k < g->next; k++) ext_add(g->ext[k], cap, out, &n);  /* captures from every level above */
  externals(g, cap, out, &n);
  return n;
}

/* A shape with unknown sizes (-1 or probes) written as -1. */
static char *host_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap) {
  int64_t s[MG_MAX_DIMS];
  for (int d = 0; d < ndim; d++) s[d] = shape[d] < 0 || mg_is_probe(shape[d]) ? -1 : shape[d];
  return mg_shape_str(ndim, s, buf, cap);
}

mg_status mg_host_result(const char *label, int k, mg_dtype dt, int ndim, const int64_t *shape, mg_tensor **out,
                         int64_t *probes) {
  const char *who = label ? label : "the host function";
  char a[MG_SHAPE_BUF], b[MG_SHAPE_BUF];
  mg_tensor *t = *out;
  if (!t) return mg_seterror(MG_EARG, "lua_function: %s gave no result %d", who, k + 1);
  if ((t->flags & MG_TF_WEAK) && t->dtype != dt) {  /* a Lua number: the declared dtype, if it fits */
    mg_tensor *c;
    mg_status st = mg_check_weak("lua_function", t, dt, 0);
    if (!st) st = mg_tensor_empty(dt, t->ndim, t->shape, &c);
    if (st) return st;
    if ((st = mg_copy_into(c, t))) {
      mg_tensor_release(c);
      return st;
    }
    mg_tensor_release(t);
    *out = t = c;
  }
  int ok = t->dtype == dt && t->ndim == ndim;
  for (int d = 0; ok && d < ndim; d++)
    ok = shape[d] < 0 || mg_is_probe(shape[d]) || shape[d] == t->shape[d];
  if (!ok)
    return mg_seterror(t->dtype != dt ? MG_EDTYPE : MG_ESHAPE,
                       "lua_function: result %d of %s is %s %s, but it was declared %s %s", k + 1, who,
                       mg_dtype_name((mg_dtype)t->dtype), mg_shape_str(t->ndim, t->shape, a, sizeof a),
                       mg_dtype_name(dt), host_shape_str(ndim, shape, b, sizeof b));
  for (int d = 0; probes && d < ndim; d++)  /* a -1 the function declared: its size from now on */
    if (mg_is_probe(shape[d])) probes[MG_PROBE_BASE - shape[d]] = t->shape[d];
  return MG_OK;
}

mg_status mg_call_host(mg_ctx *ctx, const char *label, mg_host_fn fn, void *ud, void (*free_ud)(void *), int nin,
                       mg_tensor *const *in, int nout, const mg_dtype *out_dtypes, const int *out_ndim,
                       const int64_t (*out_shapes)[MG_MAX_DIMS], mg_tensor **outs) {
  mg_graph *g = current(ctx);
  if (!g) {  /* eager: call it now */
    for (int k = 0; k < nout; k++) outs[k] = NULL;
    mg_status st = fn(ud, nin, in, nout, outs);
    for (int k = 0; k < nout && !st; k++)
      st = mg_host_result(label, k, out_dtypes[k], out_ndim ? out_ndim[k] : 0, out_shapes ? out_shapes[k] : NULL,
                          &outs[k], NULL);
    if (st)
      for (int k = 0; k < nout; k++) {
        mg_tensor_release(outs[k]);
        outs[k] = NULL;
      }
    if (free_ud) free_ud(ud);
    return st;
  }
  int small[8] = {0}, *ids = nin <= 8 ? small : malloc((size_t)nin * sizeof *ids);
  mg_status st = ids ? MG_OK : mg_seterror(MG_ENOMEM, "lua_function: out of memory");
  for (int i = 0; i < nin && !st; i++) st = value_of(ctx, g, in[i], &ids[i]);
  int node = st ? -1 : mg_graph_add_node(g, MG_N_CALL, nin, ids, nout);
  if (ids != small) free(ids);
  if (node < 0) {
    if (free_ud) free_ud(ud);
    return st ? st : mg_seterror(MG_ENOMEM, "lua_function: out of memory");
  }
  mg_gnode *nd = &g->nodes[node];
  nd->fn = fn;
  nd->ud = ud;
  nd->free_ud = free_ud;
  if (label && !(nd->label = strdup(label))) return mg_seterror(MG_ENOMEM, "lua_function: out of memory");
  for (int k = 0; k < nout; k++) {
    int64_t s[MG_MAX_DIMS];
    int nd_k = out_ndim ? out_ndim[k] : 0;
    if (nd_k && (st = probe_shape(ctx, g, nd_k, out_shapes[k], s))) return st;
    mg_graph_set_value_meta(g, nd->out0 + k, out_dtypes[k], nd_k, s);
  }
  for (int k = 0; k < nout; k++)
    if ((st = symbolic(ctx, g, nd->out0 + k, &outs[k]))) {
      while (k-- > 0) mg_tensor_release(outs[k]);
      return st;
    }
  return MG_OK;
}

/* Variable = value while tracing (variable.c calls it). */
mg_status mg_trace_assign(mg_ctx *ctx, mg_tensor *var, mg_tensor *value) {
  mg_graph *g = current(ctx);
  int v;
  mg_status st = value_of(ctx, g, value, &v);
  if (st) return st;
  int node = mg_graph_add_node(g, MG_N_ASSIGN, 1, &v, 0);
  if (node < 0) return mg_seterror(MG_ENOMEM, "assign: out of memory");
  g->nodes[node].tensor = var;
  mg_tensor_retain(var);
  return MG_OK;
}

/* ---- introspection -------------------------------------------------------------------- */

int mg_graph_ninputs(const mg_graph *g) { return g->ninputs; }
int mg_graph_noutputs(const mg_graph *g) { return g->noutputs; }
int mg_graph_nnodes(const mg_graph *g) { return g->nnodes; }

static void value_meta(const mg_graph *g, int v, mg_dtype *dt, int *ndim, int64_t *shape) {
  const mg_gvalue *val = &g->values[v];
  *dt = (mg_dtype)val->dtype;
  *ndim = val->ndim;
  for (int d = 0; d < val->ndim; d++) shape[d] = mg_is_probe(val->shape[d]) ? -1 : val->shape[d];
}

void mg_graph_input_meta(const mg_graph *g, int i, mg_dtype *dt, int *ndim, int64_t *shape) {
  value_meta(g, g->inputs[i], dt, ndim, shape);
}

void mg_graph_output_meta(const mg_graph *g, int i, mg_dtype *dt, int *ndim, int64_t *shape) {
  value_meta(g, g->outputs[i], dt, ndim, shape);
}

static const char *const kind_names[] = {"dead", "op", "input", "const", "read", "assign", "cond", "while", "call", "fused"};

int mg_graph_node(const mg_graph *g, int i, mg_node_info *info) {
  if (i < 0 || i >= g->nnodes) return 0;
  const mg_gnode *n = &g->nodes[i];
  info->kind = kind_names[n->kind];
  info->op = n->kind == MG_N_OP ? mg_op_info(n->op)->name : kind_names[n->kind];
  info->nin = n->nin;
  info->in = n->in;
  info->nout = n->nout;
  info->out0 = n->out0;
  return 1;
}

typedef struct sbuf {
  char *s;
  size_t n, cap;
  int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    size_t room = b->cap - b->n;
    va_start(ap, fmt);
    int k = b->cap ? vsnprintf(b->s + b->n, room, fmt, ap) : -1;
    va_end(ap);
    if (k >= 0 && (size_t)k < room) {
      b->n += (size_t)k;
      return;
    }
    size_t cap = b->cap ? b->cap * 2 : 1024;
    while (k >= 0 && cap < b->n + (size_t)k + 1) cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
      b->oom = 1;
      return;
    }
    b->s = s;
    b->cap = cap;
  }
}

static void sb_value(sbuf *b, const mg_graph *g, int v) {
  const mg_gvalue *val = &g->values[v];
  sb_printf(b, "%%%d:%s[", v, mg_dtype_name((mg_dtype)val->dtype));
  for (int d = 0; d < val->ndim; d++)
    mg_is_probe(val->shape[d]) ? sb_printf(b, d ? ",?" : "?") : sb_printf(b, d ? ",%lld" : "%lld", (long long)val->shape[d]);
  sb_printf(b, "]");
}

static void pretty_graph(sbuf *b, const mg_graph *g, int indent) {
  for (int i = 0; i < g->nnodes; i++) {
    const mg_gnode *n = &g->nodes[i];
    if (n->kind == MG_N_DEAD) continue;
    sb_printf(b, "%*s", indent, "");
    for (int k = 0; k < n->nout; k++) {
      if (k) sb_printf(b, ", ");
      sb_value(b, g, n->out0 + k);
    }
    sb_printf(b, "%s%s", n->nout ? " = " : "", n->kind == MG_N_OP ? mg_op_info(n->op)->name : kind_names[n->kind]);
    if (n->kind == MG_N_CONST && mg_tensor_numel(n->tensor) == 1)
      sb_printf(b, " %g", mg_tensor_get_f64(n->tensor, 0));
    if (n->kind == MG_N_FUSED) {
      char d[256];
      mg_fused_describe(n, d, sizeof d);
      sb_printf(b, " %s", d);
    }
    sb_printf(b, "(");
    for (int k = 0; k < n->nin; k++) sb_printf(b, k ? ", %%%d" : "%%%d", n->in[k]);
    sb_printf(b, ")\n");
    for (int s = 0; s < 2; s++)
      if (n->sub[s]) {
        sb_printf(b, "%*s  %s {\n", indent, "",
                  n->kind == MG_N_COND ? (s ? "else" : "then") : (s ? "body" : "cond"));
        pretty_graph(b, n->sub[s], indent + 4);
        sb_printf(b, "%*s  }\n", indent, "");
      }
  }
  sb_printf(b, "%*sreturn", indent, "");
  for (int k = 0; k < g->noutputs; k++) sb_printf(b, k ? ", %%%d" : " %%%d", g->outputs[k]);
  sb_printf(b, "\n");
}

char *mg_graph_pretty(const mg_graph *g) {
  sbuf b = {0};
  sb_printf(&b, "graph %s(", g->name);
  for (int k = 0; k < g->ninputs; k++) {
    if (k) sb_printf(&b, ", ");
    sb_value(&b, g, g->inputs[k]);
  }
  sb_printf(&b, ")\n");
  pretty_graph(&b, g, 2);
  if (b.oom) {
    free(b.s);
    return NULL;
  }
  return b.s;
}

static void dot_graph(sbuf *b, const mg_graph *g, const char *prefix) {
  for (int i = 0; i < g->nnodes; i++) {
    const mg_gnode *n = &g->nodes[i];
    if (n->kind == MG_N_DEAD) continue;
    const char *label = n->kind == MG_N_OP ? mg_op_info(n->op)->name : kind_names[n->kind];
    sb_printf(b, "  %sn%d [label=\"%s\"%s];\n", prefix, i, label,
              n->kind == MG_N_INPUT ? ", shape=box" : n->kind == MG_N_CONST ? ", shape=note" : "");
    for (int k = 0; k < n->nin; k++) {
      const mg_gvalue *v = &g->values[n->in[k]];
      sb_printf(b, "  %sn%d -> %sn%d [label=\"%s\"];\n", prefix, v->node, prefix, i,
                mg_dtype_name((mg_dtype)v->dtype));
    }
    for (int s = 0; s < 2; s++)
      if (n->sub[s]) {
        char sub[64];
        snprintf(sub, sizeof sub, "%s%d_%d_", prefix, i, s);
        sb_printf(b, "  subgraph cluster_%s {\n  label=\"%s %s\";\n", sub, label,
                  n->kind == MG_N_COND ? (s ? "else" : "then") : (s ? "body" : "cond"));
        dot_graph(b, n->sub[s], sub);
        sb_printf(b, "  }\n");
      }
  }
}

char *mg_graph_to_dot(const mg_graph *g, const char *name) {
  sbuf b = {0};
  sb_printf(&b, "digraph \"%s\" {\n  rankdir=TB;\n  node [fontname=\"Helvetica\"];\n", name ? name : g->name);
  dot_graph(&b, g, "");
  for (int k = 0; k < g->noutputs; k++)
    sb_printf(&b, "  out%d [shape=box, label=\"output %d\"];\n  n%d -> out%d;\n", k, k + 1,
              g->values[g->outputs[k]].node, k);
  sb_printf(&b, "}\n");
  if (b.oom) {
    free(b.s);
    return NULL;
  }
  return b.s;
}
