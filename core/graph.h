/*
 * graph.h — the graph IR shared by tracing (graph.c), the executor (exec.c)
 * and the optimisation passes (passes/).
 *
 * A graph is a list of nodes in program order (which is also a topological
 * order); each node reads values by id and defines nout new values. Values
 * are SSA: defined once. Inputs are placeholder nodes; outer values used by
 * a subgraph (cond/while bodies) are "capture" placeholders bound to a value
 * of the parent graph, listed in `captures`. State nodes (read, assign, host
 * calls) keep their order; passes never move, merge or drop them.
 */
#ifndef MG_GRAPH_H
#define MG_GRAPH_H

#include "internal.h"

typedef enum mg_node_kind {
  MG_N_DEAD = 0,   /* removed by a pass */
  MG_N_OP,         /* an op of the table */
  MG_N_INPUT,      /* a placeholder (a graph input or a capture) */
  MG_N_CONST,      /* a constant tensor */
  MG_N_READ,       /* the current value of a Variable */
  MG_N_ASSIGN,     /* Variable = value (no outputs) */
  MG_N_COND,       /* sub[0] or sub[1] on the captures, chosen by in[0] */
  MG_N_WHILE,      /* loop: sub[0] = condition, sub[1] = body */
  MG_N_CALL,       /* a host function */
  MG_N_FUSED       /* a chain of elementwise ops run as one loop (passes/fused.c; program in ud) */
} mg_node_kind;

typedef struct mg_gnode {
  mg_node_kind kind;
  mg_op op;
  int nin;
  int *in;                 /* value ids */
  int nout;
  int out0;                /* outputs are values out0 .. out0 + nout - 1 */
  mg_attrs *attrs;         /* OP: the call's attributes (defaults filled) */
  mg_tensor *tensor;       /* CONST: the value; READ/ASSIGN: the Variable */
  struct mg_graph *sub[2]; /* COND: then, else; WHILE: cond, body */
  int nvars;               /* WHILE: loop variables (in[0 .. nvars-1]) */
  int64_t max_iter;        /* WHILE: < 0 for none */
  mg_host_fn fn;           /* CALL */
  void *ud;
  void (*free_ud)(void *);
  char *label;             /* CALL: the host function's name in errors (or NULL) */
} mg_gnode;

typedef struct mg_gvalue {
  uint8_t dtype;
  uint8_t ndim;
  int64_t shape[MG_MAX_DIMS];  /* probe sizes stand for unknown ones (graph_probe) */
  int node;
  char *where;             /* source position it was made at, or NULL */
} mg_gvalue;

/* What a graph loaded from a graph file (graphfile.c) keeps besides its
 * nodes: its inputs' and outputs' names, the file's metadata strings, and
 * the index base its attributes count from (it runs under that base). */
typedef struct mg_gfile {
  int index_base;
  int nin, nout;
  char **in_names, **out_names;
  int nmeta;
  char **keys, **vals;
} mg_gfile;
void mg_gfile_free(mg_gfile *f);

typedef struct mg_capture {
  int outer;               /* value id in the parent graph */
  int inner;               /* placeholder value id here */
} mg_capture;

struct mg_graph {
  atomic_int refs;
  char *name;
  struct mg_graph *parent; /* while tracing a subgraph */
  int finished;
  mg_gnode *nodes;
  int nnodes, cap_nodes;
  mg_gvalue *values;
  int nvalues, cap_values;
  int *inputs;             /* placeholder value ids, in order */
  int ninputs, cap_inputs;
  mg_capture *captures;
  int ncaptures, cap_captures;
  int *outputs;
  int noutputs;
  int has_probes;          /* some size is unknown (probe values) */
  struct mg_plan *plan;    /* executor state, built at first run */
  void *consts_map;        /* tracing: tensor -> constant value id */
  mg_tensor **ext;         /* the outer tensors captured (held; for the gradient, graph.c) */
  int next, cap_ext;
  int next_probe;          /* a resumable graph (mg_trace_resume): the probe count to go on from */
  int resumable;           /* made by mg_trace_resume: a TF1-style graph (stdlib/moongrad/graph_mode.lua) */
  mg_gfile *file;          /* loaded from a graph file, else NULL */
};

/* Unknown sizes are traced as "probe" sizes: large numbers no real tensor
 * uses, so every infer function works unchanged and the executor can map
 * them back to the sizes of the call (also inside attributes). */
#define MG_PROBE_BASE 16777213LL
#define MG_PROBE_COUNT 64
static inline int mg_is_probe(int64_t d) { return d <= MG_PROBE_BASE && d > MG_PROBE_BASE - MG_PROBE_COUNT; }

/* Appends a node with room for nin inputs and nout outputs (values made with
 * the given metas, which may be NULL for none). Returns its index or -1. */
int mg_graph_add_node(mg_graph *g, mg_node_kind kind, int nin, const int *in, int nout);
void mg_graph_set_value_meta(mg_graph *g, int v, mg_dtype dt, int ndim, const int64_t *shape);
/* Frees everything a node owns and marks it dead. */
void mg_graph_kill_node(mg_graph *g, int i);
/* Removes dead nodes, keeping order (value ids stay valid). */
void mg_graph_compact(mg_graph *g);
/* Drops the executor's cached plan (passes call it after changing g). */
void mg_graph_invalidate(mg_graph *g);

/* A WHILE node with nout == 2 * nvars + 1 also gives, for its gradient, the
 * values each iteration started from, stacked, and the trip count: the
 * executor hands each iteration's values to mg_while_save_push (saved grows
 * by doubling) and the stacks are made by mg_while_save_finish. A stack no
 * node of g reads is not kept and comes out NULL; a passthrough variable's
 * (mg_while_passthrough) is never kept: read, it is a broadcast view of the
 * final value, which every iteration started from. */
mg_status mg_while_save_push(const mg_graph *g, const mg_gnode *n, mg_tensor ***saved, int64_t *nsaved,
                             int64_t *cap, mg_tensor *const *cur);
mg_status mg_while_save_finish(mg_ctx *ctx, const mg_graph *g, const mg_gnode *n, mg_tensor *const *first,
                               mg_tensor **saved, int64_t iters, mg_tensor **outs);
/* Whether the body of WHILE node n hands loop variable k back unchanged
 * (its output k is its input placeholder k). */
int mg_while_passthrough(const mg_gnode *n, int k);

/* Checks result k of host call `label` against its declaration (dt, ndim,
 * shape; -1 or a probe size matches any size, and with `probes` the probe
 * is bound to the size returned). A weak scalar result is replaced by one of
 * dt (the old reference released). The error names label and both metas. */
mg_status mg_host_result(const char *label, int k, mg_dtype dt, int ndim, const int64_t *shape, mg_tensor **out,
                         int64_t *probes);

/* Optimisation passes: each returns how many changes it made. */
typedef int (*mg_pass_fn)(mg_ctx *ctx, mg_graph *g);

#endif
