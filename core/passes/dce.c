/*
 * dce.c — dead code elimination: nodes whose results nothing uses go.
 *
 * One backward walk per graph: the graph's outputs are used; a node is live
 * when one of its results is used or it must run anyway, and a live node
 * marks its inputs used. Program order is topological, so every use of a
 * value is seen before its definition. Always live: placeholders, variable
 * reads and assigns, host calls (they may print), random ops (they advance
 * the generator). A cond/while node is live when a result is used or a
 * subgraph holds any of those; a live one has its subgraphs cleaned first
 * (a subgraph's outputs are its roots), then the captures that nothing
 * inside reads any more are dropped, placeholder and node input both, so
 * the parent's values they held can die too.
 */
#include "passes.h"
#include <stdlib.h>

static int dce_must_run(const mg_gnode *n) {
  switch (n->kind) {
  case MG_N_INPUT: case MG_N_READ: case MG_N_ASSIGN: case MG_N_CALL: return 1;
  case MG_N_OP: return passes_op_has_effects(n->op);
  case MG_N_COND: case MG_N_WHILE: return passes_graph_has_state(n->sub[0]) || passes_graph_has_state(n->sub[1]);
  default: return 0;
  }
}

/* Drops the captures of n's subgraphs that nothing inside reads. */
static int dce_prune_captures(mg_gnode *n) {
  int changes = 0;
  for (int s = 0; s < 2; s++) {
    mg_graph *sub = n->sub[s];
    int *uses = passes_use_counts(sub);
    if (!uses) return -1;
    for (int k = sub->ncaptures - 1; k >= 0; k--)
      if (!uses[sub->captures[k].inner]) {
        passes_drop_capture(n, s, k, 0);
        changes++;
      }
    free(uses);
  }
  return changes;
}

static int dce_sub(mg_ctx *ctx, mg_gnode *n) {
  int changes = 0;
  for (int s = 0; s < 2; s++) {
    int r = mg_pass_dce(ctx, n->sub[s]);
    if (r < 0) return -1;
    changes += r;
  }
  int r = dce_prune_captures(n);
  return r < 0 ? -1 : changes + r;
}

int mg_pass_dce(mg_ctx *ctx, mg_graph *g) {
  unsigned char *used = calloc((size_t)(g->nvalues ? g->nvalues : 1), 1);
  if (!used) return mg_seterror(MG_ENOMEM, "optimize: out of memory"), -1;
  for (int k = 0; k < g->noutputs; k++) used[g->outputs[k]] = 1;
  int changes = 0;
  for (int i = g->nnodes - 1; i >= 0; i--) {
    mg_gnode *n = &g->nodes[i];
    if (n->kind == MG_N_DEAD) continue;
    int live = dce_must_run(n);
    for (int o = 0; o < n->nout && !live; o++) live = used[n->out0 + o];
    if (!live) {
      mg_graph_kill_node(g, i);
      changes++;
      continue;
    }
    if (n->kind == MG_N_COND || n->kind == MG_N_WHILE) {
      int r = dce_sub(ctx, n);
      if (r < 0) {
        free(used);
        return -1;
      }
      changes += r;
    }
    for (int k = 0; k < n->nin; k++) used[n->in[k]] = 1;
  }
  free(used);
  return changes;
}
