/*
 * graph_split.c — cuts a traced forward-and-backward graph into a forward
 * graph and a backward graph, the way TensorFlow builds the two functions of
 * a concrete function called under a tape.
 *
 * The input graph is one trace of a function run under a tape followed by
 * the tape's gradient: its inputs are the forward inputs, then one
 * placeholder per upstream gradient; its outputs are the forward results,
 * then the gradients. Every node that does not depend on an upstream
 * gradient belongs to the forward graph (the forward computation, and the
 * parts of the gradient that only need forward values: transposed weights,
 * masks, saved loop stacks); the rest is the backward graph. Forward values
 * the backward uses become extra outputs of the forward graph ("saved"
 * intermediates) and inputs of the backward graph, so the backward neither
 * recomputes the forward nor reads a Variable again: a Variable's value is
 * the one its READ node saw during the call. Constants are copied into
 * whichever graph uses them rather than saved, and nodes no output needs
 * (the tape's unused gradients) are left out of both.
 */
#include "graph.h"
#include <stdio.h>
#include <stdlib.h>

enum { SIDE_FWD = 0, SIDE_BWD = 1 };

/* A finished, empty graph (its nodes are added by copying). */
static mg_graph *empty_graph(const char *name, const mg_graph *like) {
  mg_graph *g = calloc(1, sizeof *g);
  if (!g) return NULL;
  atomic_init(&g->refs, 1);
  g->name = strdup(name);
  if (!g->name) {
    free(g);
    return NULL;
  }
  g->finished = 1;
  g->has_probes = like->has_probes;  /* conservative: both halves may see the call's unknown sizes */
  return g;
}

static int copy_node(mg_graph *dst, const mg_graph *src, int i, int *map, int clone_subs);

/* A copy of finished graph g with the same value ids (a subgraph's captures
 * name outer values by id, so a copied node gets copies of its subgraphs
 * when the original stays in use). NULL when out of memory. */
static mg_graph *clone_graph(const mg_graph *g) {
  mg_graph *c = empty_graph(g->name, g);
  int *map = malloc((size_t)(g->nvalues ? g->nvalues : 1) * sizeof *map);
  if (!c || !map) goto oom;
  for (int v = 0; v < g->nvalues; v++) map[v] = v;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].kind != MG_N_DEAD && copy_node(c, g, i, map, 1) < 0) goto oom;
  if (c->nvalues != g->nvalues) goto oom;  /* dead nodes: ids would shift (never after tracing) */
  c->inputs = malloc((size_t)(g->ninputs ? g->ninputs : 1) * sizeof *c->inputs);
  c->outputs = malloc((size_t)(g->noutputs ? g->noutputs : 1) * sizeof *c->outputs);
  c->captures = malloc((size_t)(g->ncaptures ? g->ncaptures : 1) * sizeof *c->captures);
  if (!c->inputs || !c->outputs || !c->captures) goto oom;
  if (g->ninputs) memcpy(c->inputs, g->inputs, (size_t)g->ninputs * sizeof *c->inputs);
  if (g->noutputs) memcpy(c->outputs, g->outputs, (size_t)g->noutputs * sizeof *c->outputs);
  if (g->ncaptures) memcpy(c->captures, g->captures, (size_t)g->ncaptures * sizeof *c->captures);
  c->ninputs = c->cap_inputs = g->ninputs;
  c->noutputs = g->noutputs;
  c->ncaptures = c->cap_captures = g->ncaptures;
  free(map);
  return c;
oom:
  free(map);
  mg_graph_release(c);
  return NULL;
}

/* Copies node i of src into dst with its inputs renamed by map (src value id
 * -> dst value id); map gets the new node's outputs. Subgraphs move with the
 * node (src is not run again) or, with clone_subs, are copied. Returns -1
 * when out of memory. */
static int copy_node(mg_graph *dst, const mg_graph *src, int i, int *map, int clone_subs) {
  const mg_gnode *n = &src->nodes[i];
  int small[16] = {0}, *in = n->nin <= 16 ? small : malloc((size_t)n->nin * sizeof *in);
  if (!in) return -1;
  for (int k = 0; k < n->nin; k++) in[k] = map[n->in[k]];
  int j = mg_graph_add_node(dst, n->kind, n->nin, in, n->nout);
  if (in != small) free(in);
  if (j < 0) return -1;
  mg_gnode *c = &dst->nodes[j];
  c->op = n->op;
  c->nvars = n->nvars;
  c->max_iter = n->max_iter;
  if (n->attrs) {
    if (!(c->attrs = malloc(sizeof *c->attrs))) return -1;
    *c->attrs = *n->attrs;
  }
  if ((c->tensor = n->tensor)) mg_tensor_retain(c->tensor);
  for (int s = 0; s < 2; s++) {
    mg_graph *sub = n->sub[s];
    if (!sub) continue;
    if (clone_subs) {
      if (!(sub = clone_graph(sub))) return -1;
    } else {
      mg_graph_retain(sub);
    }
    c->sub[s] = sub;
    /* a subgraph names the outer values it captures by the parent's ids */
    for (int k = 0; k < sub->ncaptures; k++) sub->captures[k].outer = map[sub->captures[k].outer];
  }
  for (int o = 0; o < n->nout; o++) {
    const mg_gvalue *v = &src->values[n->out0 + o];
    mg_graph_set_value_meta(dst, c->out0 + o, (mg_dtype)v->dtype, v->ndim, v->shape);
    if (v->where && !(dst->values[c->out0 + o].where = strdup(v->where))) return -1;
    map[n->out0 + o] = c->out0 + o;
  }
  return j;
}

/* A placeholder in dst standing for src's value v. */
static int add_input(mg_graph *dst, const mg_graph *src, int v, int *map) {
  const mg_gvalue *sv = &src->values[v];
  int j = mg_graph_add_node(dst, MG_N_INPUT, 0, NULL, 1);
  if (j < 0) return -1;
  int id = dst->nodes[j].out0;
  mg_graph_set_value_meta(dst, id, (mg_dtype)sv->dtype, sv->ndim, sv->shape);
  if (sv->where && !(dst->values[id].where = strdup(sv->where))) return -1;
  dst->inputs[dst->ninputs++] = id;
  map[v] = id;
  return id;
}

/* dst's id for src's value v, copying v's constant node on first use. */
static int use_value(mg_graph *dst, const mg_graph *src, int v, int *map) {
  if (map[v] >= 0) return map[v];
  const mg_gnode *def = &src->nodes[src->values[v].node];
  if (def->kind != MG_N_CONST) return -1;  /* cannot happen: saved values are mapped first */
  return copy_node(dst, src, src->values[v].node, map, 0) < 0 ? -1 : map[v];
}

typedef struct split_state {
  const mg_graph *g;
  int nfwd_in, nfwd_out;
  unsigned char *side;  /* per node */
  unsigned char *dep;   /* per value: depends on an upstream gradient */
  unsigned char *live;  /* per value: some output needs it */
  int *saved;           /* forward values the backward reads, in value order */
  int nsaved;
  int *fmap, *bmap;     /* g's value ids in the forward and backward graphs (-1: none) */
} split_state;

static int node_live(const split_state *s, int i) {
  const mg_gnode *n = &s->g->nodes[i];
  for (int o = 0; o < n->nout; o++)
    if (s->live[n->out0 + o]) return 1;
  return 0;
}

static int is_const_value(const mg_graph *g, int v) { return g->nodes[g->values[v].node].kind == MG_N_CONST; }

/* Marks which nodes depend on an upstream gradient and which forward values
 * the backward part reads. */
static mg_status classify(split_state *s) {
  const mg_graph *g = s->g;
  for (int k = 0; k < g->noutputs; k++) s->live[g->outputs[k]] = 1;
  for (int i = g->nnodes - 1; i >= 0; i--) {  /* dead parts of the gradient must not cause saves */
    const mg_gnode *n = &g->nodes[i];
    int used = 0;
    for (int o = 0; o < n->nout && !used; o++) used = s->live[n->out0 + o];
    for (int k = 0; k < n->nin && used; k++) s->live[n->in[k]] = 1;
  }
  for (int k = s->nfwd_in; k < g->ninputs; k++) s->dep[g->inputs[k]] = 1;
  for (int i = 0; i < g->nnodes; i++) {
    const mg_gnode *n = &g->nodes[i];
    if (n->kind == MG_N_ASSIGN || n->kind == MG_N_CALL)
      return mg_seterror(MG_EARG, "%s: a graph with effects (%s) cannot be split into forward and backward",
                         g->name, n->kind == MG_N_ASSIGN ? "a Variable assignment" : "a host call");
    int d = n->kind == MG_N_INPUT && s->dep[n->out0];
    for (int k = 0; k < n->nin && !d; k++) d = s->dep[n->in[k]];
    s->side[i] = d ? SIDE_BWD : SIDE_FWD;
    for (int o = 0; o < n->nout; o++) s->dep[n->out0 + o] = (unsigned char)d;
  }
  for (int k = 0; k < s->nfwd_out; k++)
    if (s->dep[g->outputs[k]])
      return mg_seterror(MG_EARG, "%s: forward result %d depends on an upstream gradient", g->name, k + 1);
  /* saved: forward values (not constants) read by a backward node or given as a gradient */
  unsigned char *want = calloc((size_t)(g->nvalues ? g->nvalues : 1), 1);
  if (!want) return mg_seterror(MG_ENOMEM, "%s: out of memory", g->name);
  for (int i = 0; i < g->nnodes; i++)
    if (s->side[i] == SIDE_BWD && node_live(s, i))
      for (int k = 0; k < g->nodes[i].nin; k++) want[g->nodes[i].in[k]] = 1;
  for (int k = s->nfwd_out; k < g->noutputs; k++) want[g->outputs[k]] = 1;
  for (int v = 0; v < g->nvalues; v++)
    if (want[v] && !s->dep[v] && !is_const_value(g, v)) s->saved[s->nsaved++] = v;
  free(want);
  return MG_OK;
}

/* The forward graph: g's forward inputs, nodes and results, then the saved
 * values that are neither an input nor a result. src[k] tells where the
 * backward's input k comes from: an index into (forward inputs, forward
 * graph outputs). */
static mg_status build_forward(split_state *s, mg_graph *f, int *src) {
  const mg_graph *g = s->g;
  int extra = 0;
  if (!(f->inputs = malloc((size_t)(s->nfwd_in > 0 ? s->nfwd_in : 1) * sizeof *f->inputs))) goto oom;
  for (int i = 0; i < g->nnodes; i++) {
    if (s->side[i] != SIDE_FWD || (g->nodes[i].kind != MG_N_INPUT && !node_live(s, i))) continue;
    if (copy_node(f, g, i, s->fmap, 0) < 0) goto oom;
  }
  f->ninputs = s->nfwd_in;
  for (int k = 0; k < s->nfwd_in; k++) f->inputs[k] = s->fmap[g->inputs[k]];
  int cap = s->nfwd_out + s->nsaved;
  if (!(f->outputs = malloc((size_t)(cap > 0 ? cap : 1) * sizeof *f->outputs))) goto oom;
  for (int k = 0; k < s->nfwd_out; k++) f->outputs[k] = s->fmap[g->outputs[k]];
  for (int j = 0; j < s->nsaved; j++) {
    int v = s->saved[j], at = -1;
    for (int k = 0; k < s->nfwd_in && at < 0; k++)
      if (g->inputs[k] == v) at = k;
    for (int k = 0; k < s->nfwd_out && at < 0; k++)
      if (g->outputs[k] == v) at = s->nfwd_in + k;
    if (at < 0) {
      at = s->nfwd_in + s->nfwd_out + extra;
      f->outputs[s->nfwd_out + extra++] = s->fmap[v];
    }
    src[j] = at;
  }
  f->noutputs = s->nfwd_out + extra;
  return MG_OK;
oom:
  return mg_seterror(MG_ENOMEM, "%s: out of memory", g->name);
}

/* The backward graph: a placeholder per saved value, then per upstream
 * gradient; the nodes that depend on an upstream gradient; the gradients. */
static mg_status build_backward(split_state *s, mg_graph *b) {
  const mg_graph *g = s->g;
  int nin = s->nsaved + g->ninputs - s->nfwd_in, nout = g->noutputs - s->nfwd_out;
  if (!(b->inputs = malloc((size_t)(nin > 0 ? nin : 1) * sizeof *b->inputs)) ||
      !(b->outputs = malloc((size_t)(nout > 0 ? nout : 1) * sizeof *b->outputs)))
    goto oom;
  for (int j = 0; j < s->nsaved; j++)
    if (add_input(b, g, s->saved[j], s->bmap) < 0) goto oom;
  for (int k = s->nfwd_in; k < g->ninputs; k++)
    if (add_input(b, g, g->inputs[k], s->bmap) < 0) goto oom;
  for (int i = 0; i < g->nnodes; i++) {
    const mg_gnode *n = &g->nodes[i];
    if (s->side[i] != SIDE_BWD || n->kind == MG_N_INPUT || !node_live(s, i)) continue;
    for (int k = 0; k < n->nin; k++)
      if (use_value(b, g, n->in[k], s->bmap) < 0) goto oom;
    if (copy_node(b, g, i, s->bmap, 0) < 0) goto oom;
  }
  for (int k = 0; k < nout; k++)
    if ((b->outputs[k] = use_value(b, g, g->outputs[s->nfwd_out + k], s->bmap)) < 0) goto oom;
  b->noutputs = nout;
  return MG_OK;
oom:
  return mg_seterror(MG_ENOMEM, "%s: out of memory", g->name);
}

mg_status mg_graph_split(const mg_graph *g, int nfwd_in, int nfwd_out, mg_graph **fwd, mg_graph **bwd,
                         int *nsrc, int **src) {
  *fwd = *bwd = NULL;
  *src = NULL;
  *nsrc = 0;
  if (!g->finished) return mg_seterror(MG_ESTATE, "split: '%s' is still being traced", g->name);
  if (nfwd_in < 0 || nfwd_in > g->ninputs || nfwd_out < 0 || nfwd_out > g->noutputs)
    return mg_seterror(MG_EARG, "split: '%s' has %d inputs and %d outputs, asked to keep %d and %d for the forward",
                       g->name, g->ninputs, g->noutputs, nfwd_in, nfwd_out);
  size_t nv = (size_t)(g->nvalues ? g->nvalues : 1), nn = (size_t)(g->nnodes ? g->nnodes : 1);
  split_state s = {g, nfwd_in, nfwd_out, calloc(nn, 1), calloc(nv, 1), calloc(nv, 1), malloc(nv * sizeof(int)),
                   0, malloc(nv * sizeof(int)), malloc(nv * sizeof(int))};
  char name[256];
  mg_status st = MG_OK;
  mg_graph *f = NULL, *b = NULL;
  int *where = malloc(nv * sizeof *where);
  if (!s.side || !s.dep || !s.live || !s.saved || !s.fmap || !s.bmap || !where) {
    st = mg_seterror(MG_ENOMEM, "split: out of memory");
    goto done;
  }
  for (size_t v = 0; v < nv; v++) s.fmap[v] = s.bmap[v] = -1;
  if ((st = classify(&s))) goto done;
  snprintf(name, sizeof name, "%s_forward", g->name);
  if (!(f = empty_graph(name, g))) {
    st = mg_seterror(MG_ENOMEM, "split: out of memory");
    goto done;
  }
  snprintf(name, sizeof name, "%s_backward", g->name);
  if (!(b = empty_graph(name, g))) {
    st = mg_seterror(MG_ENOMEM, "split: out of memory");
    goto done;
  }
  if ((st = build_forward(&s, f, where)) || (st = build_backward(&s, b))) goto done;
  *fwd = f;
  *bwd = b;
  *src = where;
  *nsrc = s.nsaved;
  f = b = NULL;
  where = NULL;
done:
  mg_graph_release(f);
  mg_graph_release(b);
  free(where);
  free(s.side);
  free(s.dep);
  free(s.live);
  free(s.saved);
  free(s.fmap);
  free(s.bmap);
  return st;
}

/* ---- a graph with some of its outputs ------------------------------------------------ */

/* Nodes a copy cannot reproduce (their programs and host functions are
 * owned by the node) or must not repeat, here or in a subgraph. */
static int has_opaque(const mg_graph *g) {
  for (int i = 0; i < g->nnodes; i++) {
    const mg_gnode *n = &g->nodes[i];
    if (n->kind == MG_N_FUSED || n->kind == MG_N_CALL || n->kind == MG_N_ASSIGN) return 1;
    for (int s = 0; s < 2; s++)
      if (n->sub[s] && has_opaque(n->sub[s])) return 1;
  }
  return 0;
}

mg_status mg_graph_select_outputs(const mg_graph *g, int n, const int *which, mg_graph **out) {
  *out = NULL;
  if (!g->finished) return mg_seterror(MG_ESTATE, "select: '%s' is still being traced", g->name);
  for (int k = 0; k < n; k++)
    if (which[k] < 0 || which[k] >= g->noutputs)
      return mg_seterror(MG_EARG, "select: '%s' has %d outputs, asked for output %d", g->name, g->noutputs,
                         which[k] + 1);
  if (has_opaque(g))
    return mg_seterror(MG_EARG, "select: '%s' has fused, host-call or assign nodes (select before optimising)",
                       g->name);
  size_t nv = (size_t)(g->nvalues ? g->nvalues : 1);
  split_state s = {g, g->ninputs, 0, NULL, NULL, calloc(nv, 1), NULL, 0, NULL, malloc(nv * sizeof(int))};
  mg_graph *c = NULL;
  mg_status st = MG_OK;
  if (!s.live || !s.bmap || !(c = empty_graph(g->name, g)) ||
      !(c->inputs = malloc((size_t)(g->ninputs > 0 ? g->ninputs : 1) * sizeof *c->inputs)) ||
      !(c->outputs = malloc((size_t)(n > 0 ? n : 1) * sizeof *c->outputs))) {
    st = mg_seterror(MG_ENOMEM, "select: out of memory");
    goto done;
  }
  for (size_t v = 0; v < nv; v++) s.bmap[v] = -1;
  for (int k = 0; k < n; k++) s.live[g->outputs[which[k]]] = 1;
  for (int i = g->nnodes - 1; i >= 0; i--)
    if (node_live(&s, i))
      for (int k = 0; k < g->nodes[i].nin; k++) s.live[g->nodes[i].in[k]] = 1;
  for (int k = 0; k < g->ninputs; k++)  /* every input stays, in order */
    if (add_input(c, g, g->inputs[k], s.bmap) < 0) st = mg_seterror(MG_ENOMEM, "select: out of memory");
  for (int i = 0; i < g->nnodes && !st; i++) {
    if (g->nodes[i].kind == MG_N_INPUT || !node_live(&s, i)) continue;
    if (copy_node(c, g, i, s.bmap, 1) < 0) st = mg_seterror(MG_ENOMEM, "select: out of memory");
  }
  for (int k = 0; k < n && !st; k++) c->outputs[k] = s.bmap[g->outputs[which[k]]];
  c->noutputs = n;
  if (!st) {
    *out = c;
    c = NULL;
  }
done:
  mg_graph_release(c);
  free(s.live);
  free(s.bmap);
  return st;
}

/* A copy of finished graph g computing only what the values out[] need, with
 * the values in[] as its inputs (a placeholder, or any single-output node's
 * value: what is upstream of it is left out), and the nodes keep[] (assigns
 * that a TF1 Session runs only when their op is fetched) with what they
 * need. A placeholder needed but not fed is an error, its position among g's
 * inputs written to *missing. */
mg_status mg_graph_prune(const mg_graph *g, int nin, const int *in, int nout, const int *out, int nkeep,
                         const int *keep, mg_graph **res, int *missing) {
  *res = NULL;
  if (missing) *missing = -1;
  if (!g->finished) return mg_seterror(MG_ESTATE, "prune: '%s' is still being traced", g->name);
  size_t nv = (size_t)(g->nvalues ? g->nvalues : 1), nn = (size_t)(g->nnodes ? g->nnodes : 1);
  unsigned char *live = calloc(nv, 1), *fed = calloc(nv, 1), *nlive = calloc(nn, 1), *kept = calloc(nn, 1);
  int *map = malloc(nv * sizeof *map);
  mg_graph *c = NULL;
  mg_status st = MG_OK;
  if (!live || !fed || !nlive || !kept || !map) {
    st = mg_seterror(MG_ENOMEM, "prune: out of memory");
    goto done;
  }
  for (int k = 0; k < nin && !st; k++) {
    if (in[k] < 0 || in[k] >= g->nvalues) st = mg_seterror(MG_EARG, "prune: feed %d is not a value of '%s'", k + 1, g->name);
    else if (g->nodes[g->values[in[k]].node].nout != 1)
      st = mg_seterror(MG_EARG, "prune: feed %d is a result of a node with several results (not feedable)", k + 1);
    else if (fed[in[k]]) st = mg_seterror(MG_EARG, "prune: feed %d is fed twice", k + 1);
    else fed[in[k]] = 1;
  }
  for (int k = 0; k < nout && !st; k++) {
    if (out[k] < 0 || out[k] >= g->nvalues) st = mg_seterror(MG_EARG, "prune: fetch %d is not a value of '%s'", k + 1, g->name);
    else live[out[k]] = 1;
  }
  for (int k = 0; k < nkeep && !st; k++) {
    if (keep[k] < 0 || keep[k] >= g->nnodes) st = mg_seterror(MG_EARG, "prune: node %d is not in '%s'", keep[k], g->name);
    else kept[keep[k]] = 1;
  }
  if (st) goto done;
  for (int i = g->nnodes - 1; i >= 0; i--) {
    const mg_gnode *n = &g->nodes[i];
    if (n->kind == MG_N_DEAD) continue;
    int l = kept[i] && n->kind != MG_N_INPUT;
    for (int o = 0; o < n->nout && !l; o++) l = live[n->out0 + o];
    if (!l) continue;
    nlive[i] = 1;
    if (n->nout == 1 && fed[n->out0]) continue;  /* fed: what it reads is not needed */
    for (int k = 0; k < n->nin; k++) live[n->in[k]] = 1;
  }
  for (int k = 0; k < g->ninputs; k++)
    if (live[g->inputs[k]] && !fed[g->inputs[k]]) {
      if (missing) *missing = k;
      st = mg_seterror(MG_EARG, "prune: input %d of '%s' is needed but not fed", k + 1, g->name);
      goto done;
    }
  if (!(c = empty_graph(g->name, g)) || !(c->inputs = malloc((size_t)(nin > 0 ? nin : 1) * sizeof *c->inputs)) ||
      !(c->outputs = malloc((size_t)(nout > 0 ? nout : 1) * sizeof *c->outputs))) {
    st = mg_seterror(MG_ENOMEM, "prune: out of memory");
    goto done;
  }
  for (size_t v = 0; v < nv; v++) map[v] = -1;
  for (int k = 0; k < nin && !st; k++)
    if (add_input(c, g, in[k], map) < 0) st = mg_seterror(MG_ENOMEM, "prune: out of memory");
  for (int i = 0; i < g->nnodes && !st; i++) {
    const mg_gnode *n = &g->nodes[i];
    if (!nlive[i] || n->kind == MG_N_INPUT || (n->nout == 1 && fed[n->out0])) continue;
    if (copy_node(c, g, i, map, 1) < 0) st = mg_seterror(MG_ENOMEM, "prune: out of memory");
  }
  for (int k = 0; k < nout && !st; k++) c->outputs[k] = map[out[k]];
  c->noutputs = nout;
  if (!st) {
    *res = c;
    c = NULL;
  }
done:
  mg_graph_release(c);
  free(live);
  free(fed);
  free(nlive);
  free(kept);
  free(map);
  return st;
}
