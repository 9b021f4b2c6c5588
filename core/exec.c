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
 *
 * A static graph of plain op nodes is then compiled into a program (below):
 * a flat loop of kernel calls over buffers planned once, intermediates
 * sharing them by lifetime. mg_graph_run_into runs a graph into the caller's
 * tensors (the embedding API's per-frame call).
 */
#include "graph.h"
#include "passes/passes.h"
#include <stdio.h>
#include <stdlib.h>

typedef struct node_plan {
  mg_meta meta;         /* static graphs: what infer said at the first run */
  mg_attrs *attrs;      /* the node's attributes, defaults filled */
  mg_tensor *keep;      /* static graphs: the output buffer kept for reuse */
  mg_tensor *spare;     /* the one before, taken in turns with keep (a loop's carried value holds one) */
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
  struct mg_prog *prog; /* static graphs: the compiled program (NULL: none) */
  int prog_tried;
};

static void prog_free(struct mg_prog *p);

void mg_plan_free(struct mg_plan *p) {
  if (!p) return;
  prog_free(p->prog);
  for (int i = 0; i < p->nnodes; i++) {
    mg_tensor_release(p->nodes[i].keep);
    mg_tensor_release(p->nodes[i].spare);
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
  int donated;          /* the caller lets go of the inputs right after the run (run_while's
                           body): an MG_ACCUM op may write into one nothing else holds */
} frame;

static mg_status run_graph(mg_ctx *ctx, mg_graph *g, mg_tensor *const *inputs, int donated, mg_tensor **outer,
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

/* Nobody but the plan holds t (or its storage). */
static int unheld(const mg_tensor *t) {
  return t && atomic_load(&t->refs) == 1 && t->storage && atomic_load(&t->storage->refs) == 1;
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
  if (!unheld(res) && unheld(np->spare)) {  /* a loop's last value holds keep: the one before is free */
    np->keep = np->spare;
    np->spare = res;
    res = np->keep;
  } else if (!unheld(res)) {
    /* last run's buffer is still held by someone: a fresh one, which the plan keeps */
    res = mg_tensor_header(np->meta.dtype, np->meta.ndim, np->meta.shape);
    if (!res) return mg_seterror(MG_ENOMEM, "%s: out of memory", info->name);
    mg_status st = mg_tensor_alloc_storage(res);
    if (st) {
      mg_tensor_release(res);
      return st;
    }
    mg_tensor_release(np->spare);
    np->spare = np->keep;  /* reusable once its holder lets go */
    np->keep = res;
  }
  mg_call call = {f->ctx, n->op, info, ins, n->nin, np->attrs};
  f->ctx->paused++;
  mg_status st = mg_kernel_run(mg_op_kernel(n->op), &call, res);
  f->ctx->paused--;
  if (st) return st;
  *out = res;  /* borrowed from the plan: no refcount traffic per node */
  return MG_OK;
}

/* An op node's failure at run time: the message with the position of the
 * user's code that made the node and the staged function's name, e.g.
 * "take: index 5 is out of range ... (train.lua:7, in staged function 'step')". */
static mg_status node_error(const mg_ctx *ctx, const mg_graph *g, const mg_gnode *n, mg_status st) {
  char why[600];
  snprintf(why, sizeof why, "%s", mg_last_error());
  const char *where = n->nout > 0 ? g->values[n->out0].where : NULL;
  const char *name = ctx->run_name ? ctx->run_name : g->name;
  if (where) return mg_seterror(st, "%s (%s, in staged function '%s')", why, where, name);
  return mg_seterror(st, "%s (in staged function '%s')", why, name);
}

/* An MG_ACCUM op (index_add) writes into its first input when that is a
 * donated loop variable (a reverse while loop's gradient accumulator) that
 * this node reads last and nobody else holds: the refs are run_while's and,
 * from earlier iterations, the plan's keep or spare. Its result then costs the added
 * slices, not a copy of the accumulator. 1 = done (st set), 0 = not taken. */
static int reuse_input0(frame *f, int i, node_plan *np, mg_tensor **ins, mg_status *st) {
  const mg_gnode *n = &f->g->nodes[i];
  const mg_graph *g = f->g;
  int v = n->in[0], k = 0;
  mg_tensor *t = ins[0];
  if (!f->donated || g->plan->last_use[v] != i || !t->storage) return 0;
  while (k < g->ninputs && g->inputs[k] != v) k++;
  if (k == g->ninputs) return 0;  /* not a loop variable */
  for (int j = 0; j < n->nin; j++) {  /* the dtypes infer asked for (run_direct's rule; no casts here) */
    mg_dtype want = j < MG_CAST_SLOTS ? np->meta.cast[j] : np->meta.cast_rest;
    if (want != MG_NDTYPES && want != (mg_dtype)ins[j]->dtype) return 0;
  }
  if (t->dtype != np->meta.dtype || t->ndim != np->meta.ndim ||
      memcmp(t->shape, np->meta.shape, (size_t)t->ndim * sizeof(int64_t)) || !mg_tensor_is_contiguous(t))
    return 0;
  if (atomic_load(&t->refs) != 1 + (np->keep == t) + (np->spare == t) || atomic_load(&t->storage->refs) != 1)
    return 0;
  mg_call call = {f->ctx, n->op, mg_op_info(n->op), ins, n->nin, np->attrs};
  f->ctx->paused++;
  *st = mg_kernel_run(mg_op_kernel(n->op), &call, t);
  f->ctx->paused--;
  if (*st) {
    *st = node_error(f->ctx, g, n, *st);
    return 1;
  }
  if (np->spare == t) {  /* the plan holds it, as it holds run_direct's results */
    np->spare = np->keep;
    np->keep = t;
  } else if (np->keep != t) {
    mg_tensor_retain(t);
    mg_tensor_release(np->spare);
    np->spare = np->keep;
    np->keep = t;
  }
  f->vals[n->out0] = t;
  f->owned[n->out0] = 0;
  return 1;
}

static mg_status run_op(frame *f, int i, mg_tensor **ins) {
  const mg_gnode *n = &f->g->nodes[i];
  struct mg_plan *plan = f->g->plan;
  node_plan *np = &plan->nodes[i];
  mg_tensor *out = NULL;
  mg_status st;
  if ((mg_op_info(n->op)->flags & MG_ACCUM) && np->direct && plan->primed && !mg_tapes_active(f->ctx) &&
      reuse_input0(f, i, np, ins, &st))
    return st;
  if (np->direct && plan->primed && !mg_tapes_active(f->ctx) && run_direct(f, i, np, ins, &out) == MG_OK) {
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
  if ((st = mg_apply(f->ctx, n->op, ins, n->nin, &a, &out))) return node_error(f->ctx, f->g, n, st);
  f->vals[n->out0] = out;
  if (!plan->primed && !f->g->has_probes && !(mg_op_info(n->op)->flags & (MG_VIEW | MG_RANDOM | MG_STATE))) {
    /* remember what infer said, for direct calls on later runs */
    mg_call call = {f->ctx, n->op, mg_op_info(n->op), ins, n->nin, n->attrs};
    np->meta.cast_rest = MG_NDTYPES;
    for (int k = 0; k < MG_CAST_SLOTS; k++) np->meta.cast[k] = MG_NDTYPES;
    np->attrs = n->attrs;
    np->direct = mg_op_infer(n->op)(&call, &np->meta) == MG_OK &&
                 !mg_apply_widens(call.info, &np->meta, ins, n->nin);  /* storage dtypes: mg_apply widens */
  }
  return MG_OK;
}

/* ---- static graphs: the compiled program ----------------------------------------------
 *
 * Once a static graph has run (its metas known), a graph of op, fused,
 * constant, input and variable-read nodes only is compiled into a flat array
 * of instructions, each a kernel with its mg_call prebuilt and its input
 * pointers filled in, so a call is a loop of kernel calls (no per-node
 * bookkeeping or refcounting). Values whose tensor changes between calls
 * (inputs, captures, variables, outputs the caller may still hold) are
 * patched into the input slots at the start of each call. Intermediates share
 * buffers when their lifetimes do not overlap (a free list by byte size, in
 * node order; a node's output never shares with its own inputs), so a chain
 * of 100 matmuls runs in two buffers. A call with a tape recording, or a
 * fused node whose inputs are not laid out as traced, takes the general path. */

typedef struct prog_instr {
  mg_kernel_fn kernel;      /* NULL: a fused node */
  const mg_gnode *node;
  mg_call call;             /* .in points into mg_prog.ins */
  mg_tensor *out;           /* where the result goes (held by the program) */
} prog_instr;

typedef struct prog_patch {
  mg_tensor **slot;
  int v;
} prog_patch;

typedef struct prog_out {   /* an instruction whose result the caller gets */
  int instr, v;
  mg_tensor *spare;         /* the other of two buffers taken in turns (a loop's variables, a
                               host keeping the last result while asking for the next) */
} prog_out;

typedef struct prog_buf {   /* a shared intermediate buffer */
  mg_tensor *t;             /* 1-d uint8, holds the storage */
  size_t bytes;
  int free;
} prog_buf;

struct mg_prog {
  prog_instr *code;
  int ncode;
  mg_tensor **ins;          /* every instruction's input pointers, one array */
  mg_tensor **vals;         /* per value: its tensor in this call */
  prog_patch *patches;
  int npatches;
  prog_out *outs;
  int nouts;
  int *reads;               /* node index of each variable read */
  int nreads;
  mg_tensor **held;         /* headers the program owns */
  int nheld;
  prog_buf *bufs;
  int nbufs;
  mg_ctx *ctx;              /* the context the calls were built for */
  int busy;
};

static void prog_free(struct mg_prog *p) {
  if (!p) return;
  for (int k = 0; k < p->nheld; k++) mg_tensor_release(p->held[k]);
  for (int k = 0; k < p->nouts; k++) {
    mg_tensor_release(p->code[p->outs[k].instr].out);
    mg_tensor_release(p->outs[k].spare);
  }
  for (int k = 0; k < p->nbufs; k++) mg_tensor_release(p->bufs[k].t);
  free(p->code);
  free(p->ins);
  free(p->vals);
  free(p->patches);
  free(p->outs);
  free(p->reads);
  free(p->held);
  free(p->bufs);
  free(p);
}

/* Whether node i can be an instruction (or needs none), the plan's metas
 * agreeing with the graph's. */
static int prog_node_ok(const mg_graph *g, const struct mg_plan *plan, int i) {
  const mg_gnode *n = &g->nodes[i];
  switch (n->kind) {
  case MG_N_DEAD: case MG_N_INPUT: case MG_N_CONST: return 1;
  case MG_N_READ:  /* borrowed from the Variable: it must not escape to the caller */
    return plan->last_use[n->out0] != INT32_MAX;
  case MG_N_FUSED: return n->nout == 1;
  case MG_N_OP: {
    const node_plan *np = &plan->nodes[i];
    const mg_gvalue *v = &g->values[n->out0];
    return np->direct && n->nout == 1 && np->meta.dtype == (mg_dtype)v->dtype && np->meta.ndim == v->ndim &&
           !memcmp(np->meta.shape, v->shape, (size_t)v->ndim * sizeof(int64_t));
  }
  default: return 0;
  }
}

/* A tensor for value v: its own buffer (graph outputs), or a view of a shared
 * one picked by best fit among the free ones. NULL when out of memory. */
static mg_tensor *prog_buffer(struct mg_prog *p, const mg_gvalue *v, int own, int *buf) {
  mg_tensor *t = mg_tensor_header((mg_dtype)v->dtype, v->ndim, v->shape);
  *buf = -1;
  if (!t) return NULL;
  if (own) {
    if (mg_tensor_alloc_storage(t)) goto fail;
    return t;
  }
  int64_t numel = 1;
  for (int d = 0; d < v->ndim; d++) numel *= v->shape[d];
  size_t bytes = (size_t)numel * mg_dtype_size((mg_dtype)v->dtype);
  for (int k = 0; k < p->nbufs; k++)
    if (p->bufs[k].free && p->bufs[k].bytes >= bytes && (*buf < 0 || p->bufs[k].bytes < p->bufs[*buf].bytes)) *buf = k;
  if (*buf < 0) {
    int64_t n8 = (int64_t)(bytes ? bytes : 1);
    mg_tensor *b = mg_tensor_header(MG_UINT8, 1, &n8);
    if (!b || mg_tensor_alloc_storage(b)) {
      mg_tensor_release(b);
      goto fail;
    }
    *buf = p->nbufs++;
    p->bufs[*buf] = (prog_buf){b, bytes, 1};
  }
  p->bufs[*buf].free = 0;
  int64_t strides[MG_MAX_DIMS];
  memcpy(strides, t->strides, sizeof strides);  /* contiguous: mg_view_of copies them back */
  mg_view_of(t, p->bufs[*buf].t, strides, 0);
  p->held[p->nheld++] = t;
  return t;
fail:
  mg_tensor_release(t);
  return NULL;
}

/* The cast of constant input k of node i that infer asked for (kept in the plan). */
static mg_tensor *prog_cast(mg_ctx *ctx, const mg_graph *g, node_plan *np, const mg_gnode *n, int k) {
  mg_dtype want = k < MG_CAST_SLOTS ? np->meta.cast[k] : np->meta.cast_rest;
  const mg_gnode *def = passes_def(g, n->in[k]);
  int is_const = def && def->kind == MG_N_CONST;
  if (want == MG_NDTYPES || want == (mg_dtype)g->values[n->in[k]].dtype) return is_const ? def->tensor : NULL;
  if (k >= MG_CAST_SLOTS || !is_const) return (mg_tensor *)-1;
  if (!np->cast[k]) {
    mg_attrs ca = {.set = 1u};
    ca.v[0].n = 1;
    ca.v[0].i[0] = want;
    mg_tensor *in = def->tensor;
    ctx->paused++;
    mg_status st = mg_apply(ctx, MG_OP_CAST, &in, 1, &ca, &np->cast[k]);
    ctx->paused--;
    if (st) return (mg_tensor *)-1;
  }
  return np->cast[k];
}

/* Fills instruction slots and buffers, node by node. Returns 0 or -1. */
static int prog_fill(mg_ctx *ctx, mg_graph *g, struct mg_plan *plan, struct mg_prog *p) {
  unsigned char *out_of = calloc((size_t)g->nvalues + 1, 1);
  int *bufof = malloc(((size_t)g->nvalues + 1) * sizeof *bufof), slot = 0, ok = out_of && bufof;
  for (int k = 0; ok && k < g->noutputs; k++) out_of[g->outputs[k]] = 1;
  for (int v = 0; ok && v < g->nvalues; v++) bufof[v] = -1;
  for (int i = 0; ok && i < g->nnodes; i++) {
    const mg_gnode *n = &g->nodes[i];
    if (n->kind == MG_N_CONST) p->vals[n->out0] = n->tensor;
    if (n->kind == MG_N_READ) p->reads[p->nreads++] = i;
    if (n->kind != MG_N_OP && n->kind != MG_N_FUSED) continue;
    prog_instr *I = &p->code[p->ncode];
    node_plan *np = &plan->nodes[i];
    mg_tensor **ins = p->ins + slot;
    for (int k = 0; ok && k < n->nin; k++) {
      int u = n->in[k];
      const mg_gnode *def = passes_def(g, u);
      mg_tensor *c = n->kind == MG_N_OP ? prog_cast(ctx, g, np, n, k) : def && def->kind == MG_N_CONST ? def->tensor : NULL;
      if (c == (mg_tensor *)-1) ok = 0;  /* a dtype only mg_apply can sort out */
      else if (c) ins[k] = c;
      else if (bufof[u] >= 0) ins[k] = p->vals[u];
      else p->patches[p->npatches++] = (prog_patch){&ins[k], u};  /* changes per call */
    }
    if (!ok) break;
    int own = out_of[n->out0] || plan->last_use[n->out0] == INT32_MAX;
    I->out = prog_buffer(p, &g->values[n->out0], own, &bufof[n->out0]);
    if (!I->out) {
      ok = 0;
      break;
    }
    if (own) p->outs[p->nouts++] = (prog_out){p->ncode, n->out0, NULL};
    else p->vals[n->out0] = I->out;
    I->kernel = n->kind == MG_N_OP ? mg_op_kernel(n->op) : NULL;
    I->node = n;
    I->call = (mg_call){ctx, n->op, mg_op_info(n->op), ins, n->nin, np->attrs};
    p->ncode++;
    slot += n->nin;
    for (int k = 0; k < n->nin; k++)  /* buffers whose last reader this was are free again */
      if (bufof[n->in[k]] >= 0 && plan->last_use[n->in[k]] == i) p->bufs[bufof[n->in[k]]].free = 1;
    if (bufof[n->out0] >= 0 && plan->last_use[n->out0] < 0) p->bufs[bufof[n->out0]].free = 1;  /* never read */
  }
  free(out_of);
  free(bufof);
  return ok ? 0 : -1;
}

/* The program of a primed static graph, or NULL when it cannot have one. */
static struct mg_prog *prog_compile(mg_ctx *ctx, mg_graph *g, struct mg_plan *plan) {
  int nslots = 0, ninstr = 0;
  for (int i = 0; i < g->nnodes; i++) {
    if (!prog_node_ok(g, plan, i)) return NULL;
    if (g->nodes[i].kind == MG_N_OP || g->nodes[i].kind == MG_N_FUSED) ninstr++, nslots += g->nodes[i].nin;
  }
  struct mg_prog *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  size_t ni = (size_t)ninstr + 1, nv = (size_t)g->nvalues + 1, nn = (size_t)g->nnodes + 1;
  p->code = calloc(ni, sizeof *p->code);
  p->ins = calloc((size_t)nslots + 1, sizeof *p->ins);
  p->vals = calloc(nv, sizeof *p->vals);
  p->patches = calloc((size_t)nslots + 1, sizeof *p->patches);
  p->outs = calloc(ni, sizeof *p->outs);
  p->reads = calloc(nn, sizeof *p->reads);
  p->held = calloc(ni, sizeof *p->held);
  p->bufs = calloc(ni, sizeof *p->bufs);
  p->ctx = ctx;
  if (!p->code || !p->ins || !p->vals || !p->patches || !p->outs || !p->reads || !p->held || !p->bufs ||
      prog_fill(ctx, g, plan, p)) {
    prog_free(p);
    return NULL;
  }
  for (int i = 0; i < g->nnodes; i++) {  /* the general path's kept buffers are not needed now */
    mg_tensor_release(plan->nodes[i].keep);
    mg_tensor_release(plan->nodes[i].spare);
    plan->nodes[i].keep = plan->nodes[i].spare = NULL;
  }
  return p;
}

static int prog_unheld(const mg_tensor *t) {
  return atomic_load(&t->refs) == 1 && atomic_load(&t->storage->refs) == 1;
}

/* A call's start: binds what changes per call. Returns 1 when the general
 * path must run instead (an input or Variable not as traced is its error). */
static mg_status prog_bind(frame *f, struct mg_prog *p, mg_tensor *const *inputs) {
  mg_graph *g = f->g;
  mg_status st;
  for (int k = 0; k < g->ninputs; k++) {
    if ((st = bind_input(f, k, inputs[k]))) return st;
    p->vals[g->inputs[k]] = inputs[k];
  }
  for (int k = 0; k < g->ncaptures; k++) p->vals[g->captures[k].inner] = f->outer[g->captures[k].outer];
  for (int k = 0; k < p->nreads; k++) {
    mg_tensor *var = g->nodes[p->reads[k]].tensor;
    if (!var->storage) return mg_seterror(MG_ESTATE, "read: the Variable was freed (in staged function '%s')", g->name);
    p->vals[g->nodes[p->reads[k]].out0] = var;
  }
  for (int k = 0; k < p->nouts; k++) {  /* the caller may still hold last call's result */
    prog_out *o = &p->outs[k];
    prog_instr *I = &p->code[o->instr];
    if (!prog_unheld(I->out)) {
      mg_tensor *r = o->spare;
      if (!r || !prog_unheld(r)) {
        r = mg_tensor_header((mg_dtype)I->out->dtype, I->out->ndim, I->out->shape);
        if (!r || mg_tensor_alloc_storage(r)) {
          mg_tensor_release(r);
          return mg_seterror(MG_ENOMEM, "%s: out of memory", g->name);
        }
        mg_tensor_release(o->spare);
      }
      o->spare = I->out;
      I->out = r;
    }
    p->vals[o->v] = I->out;
  }
  for (int k = 0; k < p->npatches; k++) *p->patches[k].slot = p->vals[p->patches[k].v];
  return MG_OK;
}

/* Runs the instructions: 1 = a fused node wants the general path. */
static int prog_exec(mg_ctx *ctx, const mg_graph *g, struct mg_prog *p, mg_status *st) {
  ctx->paused++;
  for (int i = 0; i < p->ncode; i++) {
    prog_instr *I = &p->code[i];
    if (I->kernel) {
      if ((*st = mg_kernel_run(I->kernel, &I->call, I->out))) {
        *st = node_error(ctx, g, I->node, *st);
        break;
      }
    } else {
      mg_limits *outer = mg_kernel_begin();
      int general = mg_fused_run_into(I->node, I->call.in, I->out);
      if ((*st = mg_kernel_end(outer, MG_OK))) {
        *st = node_error(ctx, g, I->node, *st);
        break;
      }
      if (general) {
        ctx->paused--;
        return 1;
      }
    }
  }
  ctx->paused--;
  return 0;
}

/* A whole call through the program; 1 = run the general path instead. */
static int prog_run(frame *f, struct mg_prog *p, mg_tensor *const *inputs, mg_tensor **outputs, mg_status *st) {
  mg_graph *g = f->g;
  if (p->ctx != f->ctx) {  /* kernels see the running context */
    p->ctx = f->ctx;
    for (int i = 0; i < p->ncode; i++) p->code[i].call.ctx = f->ctx;
  }
  p->busy = 1;
  if (!(*st = prog_bind(f, p, inputs))) {
    if (prog_exec(f->ctx, g, p, st)) {
      p->busy = 0;
      return 1;
    }
  }
  for (int k = 0; k < g->noutputs; k++) {
    outputs[k] = *st ? NULL : p->vals[g->outputs[k]];
    if (!*st) mg_tensor_retain(outputs[k]);
  }
  p->busy = 0;
  return 0;
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
  return run_graph(f->ctx, sub, NULL, 0, f->vals, f->probes, f->vals + n->out0);
}

static mg_status run_while(frame *f, const mg_gnode *n) {
  mg_tensor *small[8], **cur = n->nvars <= 8 ? small : malloc((size_t)n->nvars * sizeof *cur);
  mg_tensor *small2[8], **next = n->nvars <= 8 ? small2 : malloc((size_t)n->nvars * sizeof *next);
  mg_status st = cur && next ? MG_OK : mg_seterror(MG_ENOMEM, "while_loop: out of memory");
  mg_tensor **saved = NULL;  /* a node with the gradient's outputs keeps each iteration's values (graph.h) */
  int64_t nsaved = 0, cap_saved = 0, iters = 0;
  for (int k = 0; !st && k < n->nvars; k++) {
    cur[k] = f->vals[n->in[k]];
    mg_tensor_retain(cur[k]);
  }
  mg_limits *lim = mg_tl_limits;
  uint64_t cost = (uint64_t)n->sub[0]->nnodes + (uint64_t)n->sub[1]->nnodes + 1;
  for (int64_t iter = 0; !st && (n->max_iter < 0 || iter < n->max_iter); iter++) {
    mg_tensor *c;
    if (lim && (st = mg_limits_charge(lim, cost))) {   /* budgets and interrupts stop a graph's loop too */
      st = node_error(f->ctx, f->g, n, st);
      break;
    }
    if ((st = run_graph(f->ctx, n->sub[0], cur, 0, f->vals, f->probes, &c))) break;
    st = check_pred(f, c, "while_loop");
    int go = !st && truthy(c);
    mg_tensor_release(c);
    if (!go) break;
    if (n->nout > n->nvars && (st = mg_while_save_push(f->g, n, &saved, &nsaved, &cap_saved, cur))) break;
    iters++;
    /* cur[] is let go of right after the body: donated (see reuse_input0) */
    if ((st = run_graph(f->ctx, n->sub[1], cur, 1, f->vals, f->probes, next))) break;
    for (int k = 0; k < n->nvars; k++) {
      mg_tensor_release(cur[k]);
      cur[k] = next[k];
    }
  }
  if (!st && n->nout > n->nvars)
    st = mg_while_save_finish(f->ctx, f->g, n, cur, saved, iters, f->vals + n->out0 + n->nvars);
  for (int64_t i = 0; i < nsaved; i++) mg_tensor_release(saved[i]);
  free(saved);
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
  for (int k = 0; !st && k < n->nout; k++) {  /* as declared (graph.c), binding its -1 sizes */
    const mg_gvalue *v = &f->g->values[n->out0 + k];
    st = mg_host_result(n->label, k, (mg_dtype)v->dtype, v->ndim, v->shape, &outs[k], f->probes);
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

static mg_status run_graph(mg_ctx *ctx, mg_graph *g, mg_tensor *const *inputs, int donated, mg_tensor **outer,
                           int64_t *probes, mg_tensor **outputs) {
  if (!g->plan && !(g->plan = plan_build(g))) return mg_seterror(MG_ENOMEM, "%s: out of memory", g->name);
  struct mg_plan *plan = g->plan;
  if (plan->primed && !mg_tapes_active(ctx)) {  /* a static graph that ran once: its program */
    if (!plan->prog_tried) {
      plan->prog_tried = 1;
      plan->prog = prog_compile(ctx, g, plan);
    }
    mg_status st;
    frame pf = {ctx, g, NULL, NULL, outer, probes, 0};
    if (plan->prog && !plan->prog->busy && !prog_run(&pf, plan->prog, inputs, outputs, &st)) return st;
  }
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
  frame f = {ctx, g, vals, owned, outer, probes, donated};
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
  ctx->running++;    /* optimizer ops may write through the run's READs (variable.c) */
  const char *outer_name = ctx->run_name;
  ctx->run_name = g->name;  /* node errors name the innermost staged function run */
  int base = ctx->index_base;
  if (g->file) ctx->index_base = g->file->index_base;  /* a loaded graph's axes count from its file's base */
  mg_status st = run_graph(ctx, g, inputs, 0, NULL, probes, outputs);
  ctx->index_base = base;
  ctx->run_name = outer_name;
  ctx->running--;
  ctx->ntraces = saved;
  return st;
}

/* Output k of a run_into: the caller's tensor must take exactly what the
 * graph gives (shape is checked here for known sizes, after the run for
 * unknown ones). */
static mg_status check_into(const mg_graph *g, int k, const mg_tensor *t, const mg_tensor *res) {
  const mg_gvalue *v = &g->values[g->outputs[k]];
  char a[MG_SHAPE_BUF], b[MG_SHAPE_BUF];
  int64_t want[MG_MAX_DIMS];
  for (int d = 0; d < v->ndim; d++) want[d] = res ? res->shape[d] : mg_is_probe(v->shape[d]) ? -1 : v->shape[d];
  if (!t || (!t->storage && !(t->flags & MG_TF_SYMBOLIC)))
    return mg_seterror(MG_EARG, "%s: output %d is missing or freed", g->name, k + 1);
  if (t->flags & (MG_TF_SYMBOLIC | MG_TF_VARIABLE))
    return mg_seterror(MG_EARG, "%s: output %d is %s; results are written into plain tensors", g->name, k + 1,
                       t->flags & MG_TF_SYMBOLIC ? "symbolic" : "a Variable (assign to it instead)");
  int ok = t->dtype == v->dtype && t->ndim == v->ndim;
  for (int d = 0; ok && d < v->ndim; d++) ok = want[d] < 0 || want[d] == t->shape[d];
  if (ok) return MG_OK;
  return mg_seterror(MG_EARG, "%s: output %d is %s %s, the graph gives %s %s", g->name, k + 1,
                     mg_dtype_name((mg_dtype)t->dtype), mg_shape_str(t->ndim, t->shape, a, sizeof a),
                     mg_dtype_name((mg_dtype)v->dtype), mg_shape_str(v->ndim, want, b, sizeof b));
}

mg_status mg_graph_run_into(mg_ctx *ctx, mg_graph *g, int nin, mg_tensor *const *inputs, int nout,
                            mg_tensor *const *outputs) {
  if (nout != g->noutputs)
    return mg_seterror(MG_EARG, "%s: gives %d outputs, %d given to write into", g->name, g->noutputs, nout);
  mg_status st = MG_OK;
  for (int k = 0; k < nout && !st; k++) st = check_into(g, k, outputs[k], NULL);
  if (st) return st;
  mg_tensor *small[8], **res = nout <= 8 ? small : malloc((size_t)nout * sizeof *res);
  if (!res) return mg_seterror(MG_ENOMEM, "%s: out of memory", g->name);
  mg_status ran = mg_graph_run(ctx, g, nin, inputs, nout, res);
  st = ran;
  for (int k = 0; k < nout && !st; k++)  /* all checked before any is written */
    st = check_into(g, k, outputs[k], res[k]);
  for (int k = 0; k < nout && !st; k++) st = mg_copy_into(outputs[k], res[k]);
  for (int k = 0; k < nout && !ran; k++) mg_tensor_release(res[k]);  /* the program's buffers: free again */
  if (res != small) free(res);
  return st;
}
