/*
 * cse.c — common subexpression elimination: of two op nodes with the same
 * op, the same inputs and the same attributes, the later one's uses read
 * the earlier one's value and the later node goes. Equal constants merge
 * the same way: the same tensor, or small contiguous tensors with the same
 * dtype, shape, weakness and bytes (each Lua number in a traced function
 * is its own constant, so x*2 + y*2 holds two 2s).
 *
 * One forward walk with a hash table of the nodes seen: a node's inputs are
 * already rewritten to their representatives when it is hashed, so chains
 * of duplicates collapse in one pass. add and mul are commutative in every
 * dtype (IEEE keeps a+b == b+a bit for bit), so their inputs hash sorted;
 * maximum/minimum are not (they pick between +0.0 and -0.0 by position).
 * Attributes compare over the op's schema slots only, by kind. Random ops
 * and state nodes never merge. Two values that both reach the caller stay
 * apart, so the caller never gets one tensor twice.
 */
#include "passes.h"
#include <stdint.h>
#include <stdlib.h>

#define CSE_CONST_MAX 64  /* elements compared for constants that are not the same tensor */

static uint64_t cse_mix(uint64_t h, uint64_t x) {
  h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

static int cse_commutative(mg_op op) { return op == MG_OP_ADD || op == MG_OP_MUL; }

/* Inputs in hash order: sorted for commutative ops. */
static void cse_inputs(const mg_gnode *n, int *a, int *b) {
  *a = n->nin > 0 ? n->in[0] : -1;
  *b = n->nin > 1 ? n->in[1] : -1;
  if (cse_commutative(n->op) && n->nin == 2 && *a > *b) {
    int t = *a;
    *a = *b;
    *b = t;
  }
}

static uint64_t cse_attr_hash(uint64_t h, const mg_gnode *n) {
  const mg_opinfo *info = mg_op_info(n->op);
  for (int k = 0; k < info->nattrs; k++) {
    int cnt = n->attrs->v[k].n;
    h = cse_mix(h, (uint64_t)cnt);
    if (info->attrs[k].kind == MG_A_FLOAT) {
      uint64_t bits = 0;
      if (cnt > 0) memcpy(&bits, &n->attrs->v[k].f, sizeof bits);
      h = cse_mix(h, bits);
    } else {
      for (int j = 0; j < cnt && j < MG_MAX_LIST; j++) h = cse_mix(h, (uint64_t)n->attrs->v[k].i[j]);
    }
  }
  return h;
}

static int cse_attrs_equal(const mg_gnode *x, const mg_gnode *y) {
  const mg_opinfo *info = mg_op_info(x->op);
  unsigned mask = (1u << info->nattrs) - 1u;
  if ((x->attrs->set & mask) != (y->attrs->set & mask)) return 0;
  for (int k = 0; k < info->nattrs; k++) {
    int cnt = x->attrs->v[k].n;
    if (cnt != y->attrs->v[k].n) return 0;
    if (info->attrs[k].kind == MG_A_FLOAT) {
      if (cnt > 0 && memcmp(&x->attrs->v[k].f, &y->attrs->v[k].f, sizeof(double))) return 0;
    } else {
      size_t len = (size_t)(cnt < 0 ? 0 : cnt < MG_MAX_LIST ? cnt : MG_MAX_LIST);
      if (len && memcmp(x->attrs->v[k].i, y->attrs->v[k].i, len * sizeof(int64_t))) return 0;
    }
  }
  return 1;
}

/* Constants merge by content when small and contiguous. */
static int cse_const_small(const mg_tensor *t) {
  return t->storage && mg_tensor_is_contiguous(t) && mg_tensor_numel(t) <= CSE_CONST_MAX;
}

static uint64_t cse_hash(const mg_gnode *n) {
  uint64_t h = cse_mix(0, (uint64_t)n->kind);
  if (n->kind == MG_N_CONST) {
    const mg_tensor *t = n->tensor;
    if (!cse_const_small(t)) return cse_mix(h, (uint64_t)(uintptr_t)t);
    h = cse_mix(h, t->dtype);
    for (int d = 0; d < t->ndim; d++) h = cse_mix(h, (uint64_t)t->shape[d]);
    const unsigned char *p = (const unsigned char *)mg_ptr(t);
    for (size_t i = 0; i < mg_tensor_nbytes(t); i++) h = cse_mix(h, p[i]);
    return h;
  }
  int a, b;
  cse_inputs(n, &a, &b);
  h = cse_mix(cse_mix(cse_mix(h, (uint64_t)n->op), (uint64_t)n->nin), (uint64_t)a);
  h = cse_mix(h, (uint64_t)b);
  for (int k = 2; k < n->nin; k++) h = cse_mix(h, (uint64_t)n->in[k]);
  return cse_attr_hash(h, n);
}

static int cse_const_equal(const mg_tensor *x, const mg_tensor *y) {
  if (x == y) return 1;
  if (!cse_const_small(x) || !cse_const_small(y)) return 0;
  if (x->dtype != y->dtype || x->ndim != y->ndim || (x->flags & MG_TF_WEAK) != (y->flags & MG_TF_WEAK)) return 0;
  if (x->ndim && memcmp(x->shape, y->shape, (size_t)x->ndim * sizeof(int64_t))) return 0;
  return memcmp(mg_ptr(x), mg_ptr(y), mg_tensor_nbytes(x)) == 0;  /* bits: NaN == NaN, -0 != +0 */
}

static int cse_equal(const mg_gnode *x, const mg_gnode *y) {
  if (x->kind != y->kind) return 0;
  if (x->kind == MG_N_CONST) return cse_const_equal(x->tensor, y->tensor);
  if (x->op != y->op || x->nin != y->nin) return 0;
  int xa, xb, ya, yb;
  cse_inputs(x, &xa, &xb);
  cse_inputs(y, &ya, &yb);
  if (xa != ya || xb != yb) return 0;
  for (int k = 2; k < x->nin; k++)
    if (x->in[k] != y->in[k]) return 0;
  return cse_attrs_equal(x, y);
}

static int cse_candidate(const mg_gnode *n) {
  if (n->kind == MG_N_CONST) return 1;
  return n->kind == MG_N_OP && n->nout == 1 && n->attrs && !passes_op_has_effects(n->op);
}

/* One graph level: returns changes, -1 on out of memory. */
static int cse_graph(mg_graph *g) {
  int cap = 16;
  while (cap < 2 * g->nnodes + 1) cap *= 2;
  int *table = malloc((size_t)cap * sizeof *table);
  unsigned char *esc = passes_escapes(g);
  if (!table || !esc) {
    free(table);
    free(esc);
    return mg_seterror(MG_ENOMEM, "optimize: out of memory"), -1;
  }
  for (int k = 0; k < cap; k++) table[k] = -1;
  int changes = 0;
  for (int i = 0; i < g->nnodes; i++) {
    mg_gnode *n = &g->nodes[i];
    if (!cse_candidate(n)) continue;
    size_t slot = (size_t)cse_hash(n) & (size_t)(cap - 1);
    while (table[slot] >= 0 && !cse_equal(&g->nodes[table[slot]], n)) slot = (slot + 1) & (size_t)(cap - 1);
    if (table[slot] < 0) {
      table[slot] = i;
      continue;
    }
    int x = g->nodes[table[slot]].out0, y = n->out0;
    if (esc[x] && esc[y]) continue;  /* the caller would get one tensor twice */
    passes_replace_uses(g, y, x);
    esc[x] |= esc[y];
    mg_graph_kill_node(g, i);
    changes++;
  }
  free(table);
  free(esc);
  return changes;
}

int mg_pass_cse(mg_ctx *ctx, mg_graph *g) {
  int changes = cse_graph(g);
  for (int i = 0; changes >= 0 && i < g->nnodes; i++)
    for (int s = 0; s < 2 && changes >= 0; s++)
      if (g->nodes[i].kind != MG_N_DEAD && g->nodes[i].sub[s]) {
        int r = mg_pass_cse(ctx, g->nodes[i].sub[s]);
        changes = r < 0 ? -1 : changes + r;
      }
  return changes;
}
