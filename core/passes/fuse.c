/*
 * fuse.c — fusion of elementwise chains: a tree of float elementwise op
 * nodes whose intermediate values have one use each becomes one fused node
 * (MG_N_FUSED) that computes the whole tree per element in one loop, with no
 * intermediate tensors (fused.c runs it).
 *
 * Which nodes: ops fused.c has a loop for (mg_fused_op_ok), with a float32
 * or float64 result, whose every input is either "full" (the result's dtype
 * and exact shape, probe sizes included) or a one-element value broadcast
 * over it (weak Lua numbers, scalar constants). A node joins the tree of
 * its consumer when its value has exactly that one use, is not an output,
 * and the consumer is a candidate with the same dtype and shape.
 *
 * Trees are found from their roots, walking the program backwards: each
 * unclaimed candidate is a root, and a depth-first walk over its operands
 * claims the members and emits instructions in post order (operands first),
 * so the last instruction is the root. A tree that would exceed
 * MG_FUSED_MAX_INSTR stops growing; the rest become roots of their own.
 * Registers (block-sized scratch buffers) are assigned by a linear scan:
 * each intermediate is read once, so its register is free again right after
 * its consumer; a result never shares a register with its operands. The
 * root node becomes the fused node (its value id stays), the members die.
 */
#include "passes.h"
#include <stdlib.h>

typedef struct fuse_state {
  mg_graph *g;
  const char *cand;         /* per node: a candidate */
  const int *parent;        /* per node: the candidate consuming its single use, or -1 */
  char *claimed;
  mg_fused *p;
  int ext[2 * MG_FUSED_MAX_INSTR];  /* the fused node's inputs (value ids) */
  int next;
  int nclaimed;             /* nodes of this tree so far (each emits one instruction) */
  int members[MG_FUSED_MAX_INSTR];
} fuse_state;

static int fuse_full(const mg_graph *g, int v, int like) { return passes_same_meta(g, v, like); }

static int fuse_scalar(const mg_graph *g, int v) {
  const mg_gvalue *val = &g->values[v];
  for (int d = 0; d < val->ndim; d++)
    if (val->shape[d] != 1) return 0;  /* probe sizes are never 1 */
  return 1;
}

static int fuse_candidate(const mg_graph *g, const mg_gnode *n) {
  if (n->kind != MG_N_OP || n->nout != 1 || !mg_fused_op_ok(n->op)) return 0;
  mg_dtype dt = (mg_dtype)g->values[n->out0].dtype;
  if (dt != MG_FLOAT32 && dt != MG_FLOAT64) return 0;
  for (int k = 0; k < n->nin; k++)
    if (!fuse_full(g, n->in[k], n->out0) && !fuse_scalar(g, n->in[k])) return 0;
  return 1;
}

/* The operand code of value v for the tree being built (see passes.h). */
static int fuse_external(fuse_state *st, int v) {
  for (int k = 0; k < st->next; k++)
    if (st->ext[k] == v) return -1 - k;
  st->ext[st->next] = v;
  return -1 - st->next++;
}

static int fuse_walk(fuse_state *st, int i);

static int fuse_operand(fuse_state *st, int i, int v) {
  const mg_gnode *d = passes_def(st->g, v);
  int j = d ? (int)(d - st->g->nodes) : -1;
  if (j >= 0 && st->cand[j] && st->parent[j] == i && !st->claimed[j] && st->nclaimed < MG_FUSED_MAX_INSTR)
    return fuse_walk(st, j);
  return fuse_external(st, v);
}

/* Emits node i's subtree; returns i's instruction index. */
static int fuse_walk(fuse_state *st, int i) {
  const mg_gnode *n = &st->g->nodes[i];
  st->claimed[i] = 1;
  st->nclaimed++;
  int a = fuse_operand(st, i, n->in[0]);
  int b = n->nin > 1 ? fuse_operand(st, i, n->in[1]) : a;  /* unary: b repeats a */
  int t = st->p->ninstr++;
  st->p->code[t] = (mg_fused_instr){n->op, a, b, -1};
  st->members[t] = i;
  return t;
}

/* Linear-scan registers: broadcast scalars first (live throughout), then
 * one per intermediate, freed after its single read. 0 if too many. */
static int fuse_registers(mg_fused *p) {
  int busy[MG_FUSED_MAX_REGS] = {0}, nregs = 0;
  for (int k = 0; k < p->nin; k++) {
    p->scalar_reg[k] = -1;
    if (p->full[k]) continue;
    if (nregs == MG_FUSED_MAX_REGS) return 0;
    busy[nregs] = 1;
    p->scalar_reg[k] = nregs++;
  }
  for (int t = 0; t < p->ninstr; t++) {
    mg_fused_instr *in = &p->code[t];
    if (t < p->ninstr - 1) {  /* the last writes the output */
      int r = 0;
      while (r < MG_FUSED_MAX_REGS && busy[r]) r++;
      if (r == MG_FUSED_MAX_REGS) return 0;
      busy[r] = 1;
      in->reg = r;
      if (r + 1 > nregs) nregs = r + 1;
    }
    int nops = mg_op_info(in->op)->nin;
    for (int k = 0; k < nops; k++) {
      int src = k ? in->b : in->a;
      if (src >= 0) busy[p->code[src].reg] = 0;
    }
  }
  p->nregs = nregs;
  return 1;
}

/* Turns the tree rooted at node `root` into a fused node; 1 if it did. */
static int fuse_tree(fuse_state *st, int root) {
  mg_graph *g = st->g;
  mg_fused *p = calloc(1, sizeof *p);
  if (!p) return -1;
  st->p = p;
  st->next = 0;
  st->nclaimed = 0;
  fuse_walk(st, root);
  p->dtype = (mg_dtype)g->values[g->nodes[root].out0].dtype;
  p->nin = st->next;
  p->full = malloc((size_t)p->nin);
  p->scalar_reg = malloc((size_t)p->nin * sizeof *p->scalar_reg);
  int *in = malloc((size_t)p->nin * sizeof *in);
  if (!p->full || !p->scalar_reg || !in) {
    free(in);
    mg_fused_free(p);
    return -1;
  }
  int have_full = 0;
  for (int k = 0; k < p->nin; k++) {
    p->full[k] = (unsigned char)fuse_full(g, st->ext[k], g->nodes[root].out0);
    have_full |= p->full[k];
    in[k] = st->ext[k];
  }
  if (p->ninstr < 2 || !have_full || !fuse_registers(p)) {  /* not worth it, or cannot */
    free(in);
    mg_fused_free(p);
    return 0;
  }
  for (int t = 0; t < p->ninstr - 1; t++) mg_graph_kill_node(g, st->members[t]);
  mg_gnode *n = &g->nodes[root];
  free(n->in);
  free(n->attrs);
  n->attrs = NULL;
  n->in = in;
  n->nin = p->nin;
  n->kind = MG_N_FUSED;
  n->ud = p;
  n->free_ud = mg_fused_free;
  return 1;
}

static int fuse_graph(mg_graph *g) {
  int *uses = passes_use_counts(g);
  char *cand = calloc((size_t)(g->nnodes ? g->nnodes : 1), 1);
  char *claimed = calloc((size_t)(g->nnodes ? g->nnodes : 1), 1);
  int *parent = malloc((size_t)(g->nnodes ? g->nnodes : 1) * sizeof *parent);
  int changes = 0;
  if (!uses || !cand || !claimed || !parent) {
    changes = -1;
    goto done;
  }
  for (int i = 0; i < g->nnodes; i++) {
    cand[i] = (char)fuse_candidate(g, &g->nodes[i]);
    parent[i] = -1;
  }
  for (int i = 0; i < g->nnodes; i++) {  /* a candidate's single use by a like candidate */
    const mg_gnode *n = &g->nodes[i];
    if (!cand[i]) continue;
    for (int k = 0; k < n->nin; k++) {
      const mg_gnode *d = passes_def(g, n->in[k]);
      int j = d ? (int)(d - g->nodes) : -1;
      if (j >= 0 && cand[j] && uses[n->in[k]] == 1 && passes_same_meta(g, n->in[k], n->out0)) parent[j] = i;
    }
  }
  fuse_state st = {g, cand, parent, claimed, NULL, {0}, 0, 0, {0}};
  for (int i = g->nnodes - 1; i >= 0; i--) {
    if (!cand[i] || claimed[i]) continue;
    int r = fuse_tree(&st, i);
    if (r < 0) {
      changes = -1;
      break;
    }
    changes += r;
  }
done:
  if (changes < 0) mg_seterror(MG_ENOMEM, "optimize: out of memory");
  free(uses);
  free(cand);
  free(claimed);
  free(parent);
  return changes;
}

int mg_pass_fuse(mg_ctx *ctx, mg_graph *g) {
  int changes = fuse_graph(g);
  for (int i = 0; changes >= 0 && i < g->nnodes; i++)
    for (int s = 0; s < 2 && changes >= 0; s++)
      if (g->nodes[i].kind != MG_N_DEAD && g->nodes[i].sub[s]) {
        int r = mg_pass_fuse(ctx, g->nodes[i].sub[s]);
        changes = r < 0 ? -1 : changes + r;
      }
  return changes;
}
