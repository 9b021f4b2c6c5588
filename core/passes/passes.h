/*
 * passes.h — what the optimisation passes (core/passes/) share: the pass
 * functions the driver (passes.c) runs, the small graph utilities they all
 * use (use counts, rewriting uses, capture bookkeeping, escape analysis),
 * and the fused-elementwise node that the fusion pass makes and the
 * executor runs (fused.c).
 *
 * A pass works on one graph and every subgraph below it, changes nodes in
 * place (a removed node becomes MG_N_DEAD; the driver compacts at the end)
 * and returns how many changes it made, or -1 with the error set (out of
 * memory). Value ids never change, so a rewrite is "every use of value a
 * now reads value b": node inputs, graph outputs, and the capture entries of
 * cond/while subgraphs, which name parent values directly (the executor
 * reads captures through them, not through the node's inputs).
 *
 * Rules every pass keeps: state nodes (read, assign, host calls) and random
 * ops are never moved, merged or removed; placeholders stay; a value that
 * can reach the caller (an output, or a view of one, or a host call's
 * argument) is never made to alias another such value, an input or a
 * constant, because callers may write into the tensors they get.
 */
#ifndef MG_PASSES_H
#define MG_PASSES_H

#include "graph.h"

/* ---- the passes (each returns its number of changes, or -1 on error) ---- */
int mg_pass_constfold(mg_ctx *ctx, mg_graph *g);
int mg_pass_cse(mg_ctx *ctx, mg_graph *g);
int mg_pass_dce(mg_ctx *ctx, mg_graph *g);
int mg_pass_algebra(mg_ctx *ctx, mg_graph *g);
int mg_pass_fuse(mg_ctx *ctx, mg_graph *g);

/* ---- shared utilities (passes.c) ---- */

/* Uses of each value of g (node inputs, capture inputs of cond/while nodes,
 * and graph outputs), live nodes only. malloc'd, g->nvalues entries; NULL
 * (error set) on out of memory. */
int *passes_use_counts(const mg_graph *g);
/* Per value: 1 when the caller can get hold of it (see above). malloc'd. */
unsigned char *passes_escapes(const mg_graph *g);
int passes_is_output(const mg_graph *g, int v);
/* Every use of value `from` reads `to` instead (to must be defined first). */
void passes_replace_uses(mg_graph *g, int from, int to);
/* Same dtype, rank and sizes (probe sizes compare as themselves). */
int passes_same_meta(const mg_graph *g, int a, int b);
/* The node defining value v (NULL for none). */
static inline mg_gnode *passes_def(const mg_graph *g, int v) {
  int i = g->values[v].node;
  return i >= 0 && i < g->nnodes && g->nodes[i].kind != MG_N_DEAD && v >= g->nodes[i].out0 &&
                 v < g->nodes[i].out0 + g->nodes[i].nout
             ? &g->nodes[i]
             : NULL;
}
/* A weakly typed scalar constant (a Lua number): replacing it, or replacing
 * a value by it, would change how later ops promote. */
int passes_is_weak_const(const mg_graph *g, int v);
/* Ops whose node must run every call: random ones advance the generator. */
int passes_op_has_effects(mg_op op);
/* Whether a subgraph (and those below it) holds a state node or a random op. */
int passes_graph_has_state(const mg_graph *g);
/* Where sub[s]'s captures start among a cond/while node's inputs. */
int passes_capture_base(const mg_gnode *n, int s);
/* Removes capture k of n->sub[s] and its input of n; the placeholder node
 * inside becomes dead unless keep_node (the caller turns it into something). */
void passes_drop_capture(mg_gnode *n, int s, int k, int keep_node);
/* Whether some probe size occurs in the node's attributes. */
int passes_attrs_have_probes(const mg_gnode *n);
int passes_value_has_probes(const mg_graph *g, int v);

/* ---- fused elementwise nodes (fused.c) ---- */

#define MG_FUSED_MAX_INSTR 32  /* ops in one fused node */
#define MG_FUSED_MAX_REGS 16   /* block-sized scratch buffers: intermediates and broadcast scalars */

/* Operand encoding: k >= 0 is the result of instruction k, -1 - k is the
 * node's input k. */
typedef struct mg_fused_instr {
  mg_op op;
  int a, b;                /* b unused for unary ops */
  int reg;                 /* scratch register of the result (-1: the output, last instruction) */
} mg_fused_instr;

typedef struct mg_fused {
  int ninstr;
  mg_fused_instr code[MG_FUSED_MAX_INSTR];
  mg_dtype dtype;          /* float32 or float64: every value of the chain */
  int nin;
  unsigned char *full;     /* per input: 1 = the output's shape, 0 = one element broadcast */
  int *scalar_reg;         /* per input: its broadcast register (scalars), else -1 */
  int nregs;
  mg_tensor *keep;         /* the output buffer, reused when nobody holds it */
} mg_fused;

/* Whether op can be part of a fused chain (and the interpreter has a loop for it). */
int mg_fused_op_ok(mg_op op);
void mg_fused_free(void *p);
/* Runs fused node n on its inputs: one pass over the elements, a block at a
 * time; unfused through mg_apply when a tape records (so it sees each op)
 * or the inputs are not laid out as traced. *out is a new reference. */
mg_status mg_fused_run(mg_ctx *ctx, const mg_gnode *n, mg_tensor *const *ins, mg_tensor **out);
/* The executor's compiled programs: runs n into `out` (contiguous, of the
 * node's dtype and shape). Returns 0, or -1 without touching `out` when the
 * inputs are not laid out as traced (the caller then runs mg_fused_run). */
int mg_fused_run_into(const mg_gnode *n, mg_tensor *const *ins, mg_tensor *out);
/* The fused program's loops over n elements (fused.c), and the copy of them
 * compiled for the ISA in use (core/isa.c: NULL = this baseline one). */
typedef void (*mg_fused_exec_fn)(const mg_fused *p, mg_tensor *const *ins, mg_tensor *out, int64_t n);
void mg_fused_exec(const mg_fused *p, mg_tensor *const *ins, mg_tensor *out, int64_t n);
mg_fused_exec_fn mg_isa_fused_exec(void);
/* "fused(mul,add,relu)" into buf; returns the length it needed. */
int mg_fused_describe(const mg_gnode *n, char *buf, size_t cap);

#endif
