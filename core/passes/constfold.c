/*
 * constfold.c — constant folding: an op node whose inputs are all constants
 * is computed once, now, and becomes a constant node (same value id, so no
 * use needs rewriting). Creation ops (full, arange, eye, linspace) have no
 * inputs and fold when their sizes are static; folding walks forward, so a
 * chain of ops on constants folds in one pass.
 *
 * Not folded: random ops (they must draw at every call), anything whose
 * attributes or result size holds a probe (an unknown size is only known at
 * the call), results larger than CONSTFOLD_MAX_BYTES (a constant is kept
 * for the graph's lifetime; TF's grappler draws the same line at 10 MB),
 * and values that can reach the caller (passes.h: the caller could write
 * into the graph's constant). An op that fails now is left alone: the run
 * reports the error where it happens.
 *
 * Cond/while subgraphs that capture a constant of the parent get the
 * constant itself (the capture placeholder becomes a constant node), so
 * folding continues inside the branch or loop body.
 */
#include "passes.h"
#include <stdlib.h>

#define CONSTFOLD_MAX_BYTES (10 << 20)

static int constfold_can(const mg_graph *g, const mg_gnode *n, const unsigned char *esc) {
  const mg_opinfo *info = mg_op_info(n->op);
  if ((info->flags & MG_RANDOM) || esc[n->out0] || n->nout != 1) return 0;
  for (int k = 0; k < n->nin; k++) {
    const mg_gnode *d = passes_def(g, n->in[k]);
    if (!d || d->kind != MG_N_CONST) return 0;
  }
  if (passes_attrs_have_probes(n) || passes_value_has_probes(g, n->out0)) return 0;
  if (info->flags & MG_VIEW) return 1;  /* no new storage (a copy at most the input's size) */
  const mg_gvalue *v = &g->values[n->out0];
  int64_t numel;
  return mg_shape_numel(v->ndim, v->shape, &numel) &&
         numel <= CONSTFOLD_MAX_BYTES / (int64_t)mg_dtype_size((mg_dtype)v->dtype);
}

static int constfold_node(mg_ctx *ctx, mg_graph *g, mg_gnode *n) {
  mg_tensor *small[8], **ins = n->nin <= 8 ? small : malloc((size_t)n->nin * sizeof *ins), *r = NULL;
  if (!ins) return 0;  /* not folding is always correct */
  for (int k = 0; k < n->nin; k++) ins[k] = passes_def(g, n->in[k])->tensor;
  mg_status st = mg_apply(ctx, n->op, ins, n->nin, n->attrs, &r);
  if (ins != small) free(ins);
  if (st) return 0;
  const mg_gvalue *v = &g->values[n->out0];
  if (r->dtype != v->dtype || r->ndim != v->ndim ||
      (v->ndim && memcmp(r->shape, v->shape, (size_t)v->ndim * sizeof(int64_t)))) {
    mg_tensor_release(r);  /* infer disagrees with the trace: leave it to the run */
    return 0;
  }
  r->flags &= (uint16_t)~MG_TF_WEAK;  /* op results are strong, as the traced value was */
  free(n->in);
  free(n->attrs);
  n->in = NULL;
  n->nin = 0;
  n->attrs = NULL;
  n->kind = MG_N_CONST;
  n->tensor = r;
  return 1;
}

/* Captured constants of the parent become constants of the subgraph. */
static int constfold_captures(mg_graph *g, mg_gnode *n) {
  int changes = 0;
  for (int s = 0; s < 2; s++) {
    mg_graph *sub = n->sub[s];
    for (int k = 0; k < sub->ncaptures;) {
      const mg_gnode *d = passes_def(g, sub->captures[k].outer);
      mg_gnode *ph = passes_def(sub, sub->captures[k].inner);
      if (!d || d->kind != MG_N_CONST || !ph || ph->kind != MG_N_INPUT) {
        k++;
        continue;
      }
      ph->kind = MG_N_CONST;
      ph->tensor = d->tensor;
      mg_tensor_retain(d->tensor);
      passes_drop_capture(n, s, k, 1);
      changes++;
    }
  }
  return changes;
}

int mg_pass_constfold(mg_ctx *ctx, mg_graph *g) {
  unsigned char *esc = passes_escapes(g);
  if (!esc) return -1;
  int changes = 0;
  for (int i = 0; i < g->nnodes; i++) {
    mg_gnode *n = &g->nodes[i];
    if (n->kind == MG_N_OP) {
      if (constfold_can(g, n, esc)) changes += constfold_node(ctx, g, n);
    } else if (n->kind == MG_N_COND || n->kind == MG_N_WHILE) {
      changes += constfold_captures(g, n);
      for (int s = 0; s < 2; s++) {
        int r = mg_pass_constfold(ctx, n->sub[s]);
        if (r < 0) {
          free(esc);
          return -1;
        }
        changes += r;
      }
    }
  }
  free(esc);
  return changes;
}
