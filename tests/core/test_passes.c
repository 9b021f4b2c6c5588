/*
 * test_passes.c — the graph optimisation passes (core/passes/). Each test
 * traces a small graph twice with mg_trace_begin/placeholder/mg_apply/
 * mg_trace_end, optimises one copy (one pass, or all), checks that the node
 * list changed the way the pass should change it, and that both copies give
 * the same results bit for bit on the same inputs. Also: what must not
 * change (random ops, state nodes, probe sizes, outputs that would alias
 * an input), subgraphs of cond/while nodes and their captures, the fused
 * node's fallbacks (tape recording, non-contiguous inputs) and its
 * threaded path, and the TF variable example with every pass on.
 */
#include "harness.h"
#include "graph.h"
#include "passes/passes.h"
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------- */

/* Every tensor a test makes goes into the pool, released at the end. */
static mg_tensor *pass_pool[512];
static int pass_npool;

static mg_tensor *pass_keep(mg_tensor *t) {
  if (t && pass_npool < 512) pass_pool[pass_npool++] = t;
  return t;
}

static void pass_drain(void) {
  while (pass_npool) mg_tensor_release(pass_pool[--pass_npool]);
}

static mg_tensor *op1(mg_op op, mg_tensor *a) {
  mg_tensor *r = NULL;
  if (mg_apply(mg_test_ctx(), op, &a, 1, NULL, &r)) fprintf(stderr, "  %s\n", mg_last_error());
  return pass_keep(r);
}

static mg_tensor *op2(mg_op op, mg_tensor *a, mg_tensor *b) {
  mg_tensor *in[2] = {a, b}, *r = NULL;
  if (mg_apply(mg_test_ctx(), op, in, 2, NULL, &r)) fprintf(stderr, "  %s\n", mg_last_error());
  return pass_keep(r);
}

static mg_tensor *opa(mg_op op, mg_tensor *a, const mg_attrs *at) {
  mg_tensor *r = NULL;
  if (mg_apply(mg_test_ctx(), op, a ? &a : NULL, a ? 1 : 0, at, &r)) fprintf(stderr, "  %s\n", mg_last_error());
  return pass_keep(r);
}

static mg_tensor *num(double v) {  /* a Lua number: a weak scalar */
  mg_tensor *t = NULL;
  mg_scalar_f64(v, 1, &t);
  return pass_keep(t);
}

static mg_tensor *inum(int64_t v) {  /* a Lua integer */
  mg_tensor *t = NULL;
  mg_scalar_i64(v, 1, &t);
  return pass_keep(t);
}

static mg_tensor *ph(mg_dtype dt, int ndim, const int64_t *shape) {
  mg_tensor *t = NULL;
  if (mg_trace_placeholder(mg_test_ctx(), dt, ndim, shape, &t)) fprintf(stderr, "  %s\n", mg_last_error());
  return pass_keep(t);
}

static mg_tensor *data_f32(int ndim, const int64_t *shape, double start, double step) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  float *buf = malloc((size_t)(n ? n : 1) * sizeof *buf);
  for (int64_t i = 0; i < n; i++) buf[i] = (float)(start + step * (double)(i % 1000) - (i % 7 == 3 ? 9.5 : 0));
  mg_tensor *t = NULL;
  mg_tensor_from_data(MG_FLOAT32, ndim, shape, buf, &t);
  free(buf);
  return pass_keep(t);
}

static mg_tensor *data_f64(int ndim, const int64_t *shape, double start, double step) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  double *buf = malloc((size_t)(n ? n : 1) * sizeof *buf);
  for (int64_t i = 0; i < n; i++) buf[i] = start + step * (double)(i % 1000);
  mg_tensor *t = NULL;
  mg_tensor_from_data(MG_FLOAT64, ndim, shape, buf, &t);
  free(buf);
  return pass_keep(t);
}

static void attr_shape(mg_attrs *a, int k, int n, const int64_t *v) {
  a->set |= 1u << k;
  a->v[k].n = n;
  for (int j = 0; j < n; j++) a->v[k].i[j] = v[j];
}

static void attr_int(mg_attrs *a, int k, int64_t v) {
  a->set |= 1u << k;
  a->v[k].n = 1;
  a->v[k].i[0] = v;
}

static void attr_float(mg_attrs *a, int k, double v) {
  a->set |= 1u << k;
  a->v[k].n = 1;
  a->v[k].f = v;
}

static mg_tensor *full(int n, const int64_t *shape, double v) {
  mg_attrs a = {0};
  attr_shape(&a, 0, n, shape);
  attr_float(&a, 1, v);
  return opa(MG_OP_FULL, NULL, &a);
}

/* Tracing calls whose failure the builders report (the test then fails on the graph). */
#define TRY(call) \
  do { if ((call) != MG_OK) fprintf(stderr, "  %s:%d: %s\n", __FILE__, __LINE__, mg_last_error()); } while (0)

/* Same dtype, shape and bytes. */
static int same_bits(const mg_tensor *a, const mg_tensor *b) {
  if (!a || !b || mg_tensor_dtype(a) != mg_tensor_dtype(b) || mg_tensor_ndim(a) != mg_tensor_ndim(b)) return 0;
  if (memcmp(mg_tensor_shape(a), mg_tensor_shape(b), (size_t)mg_tensor_ndim(a) * sizeof(int64_t))) return 0;
  size_t n = mg_tensor_nbytes(a);
  char *x = malloc(n ? n : 1), *y = malloc(n ? n : 1);
  int ok = x && y && !mg_tensor_copy_to(a, x, n) && !mg_tensor_copy_to(b, y, n) && memcmp(x, y, n) == 0;
  free(x);
  free(y);
  return ok;
}

/* Live nodes of g (not below it) of a kind, and op nodes of an op. */
static int count_kind(const mg_graph *g, mg_node_kind kind) {
  int c = 0;
  for (int i = 0; i < g->nnodes; i++) c += g->nodes[i].kind == kind;
  return c;
}

static int count_op(const mg_graph *g, mg_op op) {
  int c = 0;
  for (int i = 0; i < g->nnodes; i++) c += g->nodes[i].kind == MG_N_OP && g->nodes[i].op == op;
  return c;
}

/* A builder traces one graph (twice per test: one to optimise, one not). */
typedef mg_graph *(*pass_build_fn)(void);

/* Optimises a second trace of `build` with `passes`, runs both on the
 * inputs and checks every output agrees bit for bit. Returns the optimised
 * graph (the caller releases it) with each pass's changes in counts. */
static mg_graph *check_same(pass_build_fn build, unsigned passes, int nin, mg_tensor **in, int *counts) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *ref = build(), *opt = build();
  if (!ref || !opt) {
    mg_graph_release(ref);
    mg_graph_release(opt);
    return NULL;
  }
  if (mg_graph_optimize_counts(ctx, opt, passes, counts)) {
    fprintf(stderr, "  optimize: %s\n", mg_last_error());
    mg_graph_release(ref);
    mg_graph_release(opt);
    return NULL;
  }
  int nout = mg_graph_noutputs(ref);
  mg_tensor *a[8] = {0}, *b[8] = {0};
  int ok = !mg_graph_run(ctx, ref, nin, in, nout, a);
  if (!ok) fprintf(stderr, "  run ref: %s\n", mg_last_error());
  for (int rep = 0; ok && rep < 2; rep++) {  /* twice: the second run reuses buffers */
    for (int k = 0; k < nout; k++) mg_tensor_release(b[k]), b[k] = NULL;
    ok = !mg_graph_run(ctx, opt, nin, in, nout, b);
    if (!ok) fprintf(stderr, "  run opt: %s\n", mg_last_error());
    for (int k = 0; ok && k < nout; k++) ok = same_bits(a[k], b[k]);
  }
  for (int k = 0; k < nout; k++) {
    mg_tensor_release(a[k]);
    mg_tensor_release(b[k]);
  }
  mg_graph_release(ref);
  if (!ok) {
    mg_test_fail(__FILE__, __LINE__, "optimised and plain graphs give the same results");
    mg_graph_release(opt);
    return NULL;
  }
  return opt;
}

#define F32 MG_FLOAT32

/* ---- constant folding -------------------------------------------------------------- */

/* y = x + exp(full({4}, 2) * 3): full, mul and exp fold. */
static mg_graph *build_fold(void) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL;
  int64_t s[1] = {4};
  TRY(mg_trace_begin(ctx, "fold", &g));
  mg_tensor *x = ph(F32, 1, s);
  mg_tensor *c = op1(MG_OP_EXP, op2(MG_OP_MUL, full(1, s, 2), num(3)));
  mg_tensor *y = op2(MG_OP_ADD, x, c);
  TRY(mg_trace_end(ctx, g, 1, &y));
  return g;
}

TEST(passes_constfold_folds_creation_and_chains) {
  int64_t s[1] = {4};
  mg_tensor *in[1] = {data_f32(1, s, -1, 0.5)};
  int counts[MG_NPASSES];
  mg_graph *g = check_same(build_fold, MG_PASS_CONSTFOLD, 1, in, counts);
  REQUIRE(g);
  CHECK(counts[0] == 3);  /* full, mul, exp */
  CHECK(counts[1] == 0 && counts[2] == 0 && counts[3] == 0 && counts[4] == 0);
  CHECK(count_op(g, MG_OP_FULL) == 0 && count_op(g, MG_OP_MUL) == 0 && count_op(g, MG_OP_EXP) == 0);
  CHECK(count_op(g, MG_OP_ADD) == 1);
  mg_graph_release(g);
  g = check_same(build_fold, MG_PASS_CONSTFOLD | MG_PASS_DCE, 1, in, counts);
  REQUIRE(g);
  CHECK(counts[2] >= 2);               /* the constants the folds used are dead */
  CHECK(count_kind(g, MG_N_CONST) == 1 && mg_graph_nnodes(g) == 3);  /* x, the constant, add */
  mg_graph_release(g);
  pass_drain();
}

/* Random ops never fold; probe sizes never fold; outputs do not fold. */
static mg_graph *build_nofold(void) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL;
  int64_t s[1] = {-1}, s3[1] = {3};
  TRY(mg_trace_begin(ctx, "nofold", &g));
  mg_tensor *x = ph(F32, 1, s);
  int64_t probe = mg_tensor_shape(x)[0];
  mg_attrs u = {0};
  attr_shape(&u, 0, 1, s3);
  attr_int(&u, 4, 7);                  /* seeded: the same draw both times */
  mg_tensor *r = opa(MG_OP_UNIFORM, NULL, &u);
  mg_tensor *z = full(1, &probe, 1);   /* sized by x: a probe in its attributes */
  mg_tensor *outs[3] = {op2(MG_OP_ADD, x, z), op2(MG_OP_MUL, r, num(2)), full(1, s3, 5)};
  TRY(mg_trace_end(ctx, g, 3, outs));
  return g;
}

TEST(passes_constfold_leaves_random_probes_and_outputs) {
  int64_t s[1] = {6};
  mg_tensor *in[1] = {data_f32(1, s, 0, 1)};
  int counts[MG_NPASSES];
  mg_graph *g = check_same(build_nofold, MG_PASS_ALL, 1, in, counts);
  REQUIRE(g);
  CHECK(counts[0] == 0);
  CHECK(count_op(g, MG_OP_UNIFORM) == 1 && count_op(g, MG_OP_FULL) == 2);
  mg_graph_release(g);
  pass_drain();
}

/* ---- common subexpressions --------------------------------------------------------- */

/* exp(x) + exp(x) + x*2 + 2*x + sum(m, axis 0) + sum(m, axis 1) (sums differ). */
static mg_graph *build_cse(void) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL;
  int64_t s[1] = {3}, sm[2] = {3, 3};
  TRY(mg_trace_begin(ctx, "cse", &g));
  mg_tensor *x = ph(F32, 1, s), *m = ph(F32, 2, sm);
  mg_tensor *e = op2(MG_OP_ADD, op1(MG_OP_EXP, x), op1(MG_OP_EXP, x));
  mg_tensor *t = op2(MG_OP_ADD, op2(MG_OP_MUL, x, num(2)), op2(MG_OP_MUL, num(2), x));
  mg_attrs a0 = {0}, a1 = {0};
  attr_shape(&a0, 0, 1, (int64_t[]){0});
  attr_shape(&a1, 0, 1, (int64_t[]){1});
  mg_tensor *sums = op2(MG_OP_ADD, opa(MG_OP_SUM, m, &a0), opa(MG_OP_SUM, m, &a1));
  mg_tensor *y = op2(MG_OP_ADD, op2(MG_OP_ADD, e, t), sums);
  TRY(mg_trace_end(ctx, g, 1, &y));
  return g;
}

TEST(passes_cse_merges_ops_and_constants) {
  int64_t s[1] = {3}, sm[2] = {3, 3};
  mg_tensor *in[2] = {data_f32(1, s, 0.25, 0.5), data_f32(2, sm, -2, 0.75)};
  int counts[MG_NPASSES];
  mg_graph *g = check_same(build_cse, MG_PASS_CSE, 2, in, counts);
  REQUIRE(g);
  CHECK(counts[1] == 3);  /* the second exp, the second 2, the second mul (commuted) */
  CHECK(count_op(g, MG_OP_EXP) == 1 && count_op(g, MG_OP_MUL) == 1 && count_kind(g, MG_N_CONST) == 1);
  CHECK(count_op(g, MG_OP_SUM) == 2);  /* different axes stay apart */
  CHECK(counts[0] == 0 && counts[2] == 0 && counts[3] == 0 && counts[4] == 0);
  mg_graph_release(g);
  pass_drain();
}

/* Two seeded-alike random draws stay two; two equal outputs stay two tensors. */
static mg_graph *build_cse_keep(void) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL;
  int64_t s[1] = {4};
  TRY(mg_trace_begin(ctx, "cse_keep", &g));
  mg_tensor *x = ph(F32, 1, s);
  mg_attrs u = {0};
  attr_shape(&u, 0, 1, s);
  mg_tensor *outs[4] = {opa(MG_OP_UNIFORM, NULL, &u), opa(MG_OP_UNIFORM, NULL, &u), op1(MG_OP_EXP, x),
                        op1(MG_OP_EXP, x)};
  TRY(mg_trace_end(ctx, g, 4, outs));
  return g;
}

TEST(passes_cse_keeps_random_ops_and_distinct_outputs) {
  mg_ctx *ctx = mg_test_ctx();
  int64_t s[1] = {4};
  mg_tensor *in[1] = {data_f32(1, s, 0, 1)};
  mg_graph *g = build_cse_keep();
  REQUIRE(g);
  int counts[MG_NPASSES];
  CHECK_OK(mg_graph_optimize_counts(ctx, g, MG_PASS_ALL, counts));
  CHECK(counts[1] == 0);
  CHECK(count_op(g, MG_OP_UNIFORM) == 2 && count_op(g, MG_OP_EXP) == 2);
  mg_tensor *out[4] = {0};
  CHECK_OK(mg_graph_run(ctx, g, 1, in, 4, out));
  CHECK(out[2] != out[3] && same_bits(out[2], out[3]));
  CHECK(!same_bits(out[0], out[1]));  /* two draws */
  for (int k = 0; k < 4; k++) mg_tensor_release(out[k]);
  mg_graph_release(g);
  pass_drain();
}

/* ---- dead code --------------------------------------------------------------------- */

static mg_tensor *dce_var;

/* Dead: sin(exp(x)), a cond nobody reads. Kept: an assign (and the read it
 * uses), a cond whose branch assigns. */
static mg_graph *build_dce(void) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL, *t1 = NULL, *e1 = NULL, *t2 = NULL, *e2 = NULL;
  int64_t s[1] = {2};
  TRY(mg_trace_begin(ctx, "dce", &g));
  mg_tensor *x = ph(F32, 1, s), *p = ph(MG_BOOL, 0, NULL);
  op1(MG_OP_SIN, op1(MG_OP_EXP, x));
  TRY(mg_variable_assign(ctx, dce_var, op2(MG_OP_ADD, dce_var, x)));
  mg_tensor *o1 = NULL, *o2 = NULL;
  TRY(mg_trace_begin(ctx, "then", &t1));  /* a pure cond, unused */
  mg_tensor *r = op1(MG_OP_EXP, x);
  TRY(mg_trace_end(ctx, t1, 1, &r));
  TRY(mg_trace_begin(ctx, "else", &e1));
  r = op1(MG_OP_NEG, x);
  TRY(mg_trace_end(ctx, e1, 1, &r));
  TRY(mg_trace_cond(ctx, p, t1, e1, 1, &o1));
  TRY(mg_trace_begin(ctx, "then2", &t2));  /* a cond that assigns, unused */
  TRY(mg_variable_assign(ctx, dce_var, x));
  r = op1(MG_OP_EXP, x);
  TRY(mg_trace_end(ctx, t2, 1, &r));
  TRY(mg_trace_begin(ctx, "else2", &e2));
  r = op1(MG_OP_NEG, x);
  TRY(mg_trace_end(ctx, e2, 1, &r));
  TRY(mg_trace_cond(ctx, p, t2, e2, 1, &o2));
  pass_keep(o1);
  pass_keep(o2);
  mg_graph_release(t1);
  mg_graph_release(e1);
  mg_graph_release(t2);
  mg_graph_release(e2);
  mg_tensor *y = op2(MG_OP_MUL, x, num(3));
  TRY(mg_trace_end(ctx, g, 1, &y));
  return g;
}

TEST(passes_dce_removes_dead_nodes_keeps_state) {
  mg_ctx *ctx = mg_test_ctx();
  int64_t s[1] = {2};
  mg_tensor *v0 = data_f32(1, s, 1, 1);
  REQUIRE(!mg_variable_new(ctx, v0, 1, &dce_var));
  pass_keep(dce_var);
  mg_tensor *p = NULL;
  mg_scalar_i64(0, 0, &p);
  mg_tensor *pb = NULL;
  mg_attrs ca = {0};
  attr_int(&ca, 0, MG_BOOL);
  REQUIRE(!mg_apply(ctx, MG_OP_CAST, &p, 1, &ca, &pb));
  pass_keep(p);
  pass_keep(pb);
  mg_tensor *in[2] = {data_f32(1, s, 0.5, 1), pb};
  int counts[MG_NPASSES];
  mg_graph *g = check_same(build_dce, MG_PASS_DCE, 2, in, counts);
  REQUIRE(g);
  CHECK(counts[2] == 3);  /* sin, exp, the pure cond */
  CHECK(count_op(g, MG_OP_SIN) == 0 && count_op(g, MG_OP_EXP) == 0);
  CHECK(count_kind(g, MG_N_COND) == 1 && count_kind(g, MG_N_ASSIGN) == 1 && count_kind(g, MG_N_READ) >= 1);
  mg_graph_release(g);
  /* both graphs ran (twice for the optimised one): the variable saw every assign */
  float v[2];
  CHECK_OK(mg_tensor_copy_to(dce_var, v, sizeof v));
  CHECK(v[0] == 2.5f && v[1] == 6.5f);  /* three runs of var += x; the false branches never assign */
  pass_drain();
}

/* A loop whose body stops reading a captured value lets the value die. */
static mg_graph *build_capture_prune(void) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL, *c = NULL, *b = NULL;
  int64_t s[1] = {3};
  TRY(mg_trace_begin(ctx, "prune", &g));
  mg_tensor *x = ph(F32, 1, s);
  mg_tensor *w = op1(MG_OP_EXP, x);    /* captured by the body, only to be unused there */
  mg_tensor *init[2] = {pass_keep(NULL), x}, *outs[2];
  mg_scalar_i64(0, 0, &init[0]);
  pass_keep(init[0]);
  TRY(mg_trace_begin(ctx, "cond", &c));
  mg_tensor *ci = ph(MG_INT64, 0, NULL);
  ph(F32, 1, s);
  mg_tensor *more = op2(MG_OP_LESS, ci, num(4));
  TRY(mg_trace_end(ctx, c, 1, &more));
  TRY(mg_trace_begin(ctx, "body", &b));
  mg_tensor *bi = ph(MG_INT64, 0, NULL), *bs = ph(F32, 1, s);
  op2(MG_OP_MUL, w, bs);                /* dead inside the body */
  mg_tensor *next[2] = {op2(MG_OP_ADD, bi, inum(1)), op2(MG_OP_ADD, op2(MG_OP_MUL, bs, num(0.5)), x)};
  TRY(mg_trace_end(ctx, b, 2, next));
  TRY(mg_trace_while(ctx, c, b, 2, init, -1, outs));
  pass_keep(outs[0]);
  pass_keep(outs[1]);
  mg_graph_release(c);
  mg_graph_release(b);
  TRY(mg_trace_end(ctx, g, 1, &outs[1]));
  return g;
}

TEST(passes_dce_prunes_captures) {
  int64_t s[1] = {3};
  mg_tensor *in[1] = {data_f32(1, s, 1, 2)};
  int counts[MG_NPASSES];
  mg_graph *g = check_same(build_capture_prune, MG_PASS_DCE, 1, in, counts);
  REQUIRE(g);
  CHECK(counts[2] == 3);  /* the body's mul, the capture of w, exp in the parent */
  CHECK(count_op(g, MG_OP_EXP) == 0);
  mg_gnode *w = NULL;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].kind == MG_N_WHILE) w = &g->nodes[i];
  REQUIRE(w);
  CHECK(w->sub[1]->ncaptures == 1 && w->nin == 2 + w->sub[0]->ncaptures + 1);
  mg_graph_release(g);
  pass_drain();
}

/* ---- algebraic simplification -------------------------------------------------------- */

/* exp(cast(reshape(reshape(neg(neg(transpose(transpose(((1*(x*1) + 0) - 0) / 1))))), f32)) */
static mg_graph *build_algebra(void) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL;
  int64_t s[2] = {2, 3}, s32[2] = {3, 2};
  TRY(mg_trace_begin(ctx, "algebra", &g));
  mg_tensor *x = ph(F32, 2, s);
  mg_tensor *y = op2(MG_OP_MUL, num(1), op2(MG_OP_MUL, x, num(1)));
  y = op2(MG_OP_DIV, op2(MG_OP_SUB, op2(MG_OP_ADD, y, num(0)), num(0)), num(1));
  mg_attrs tr = {0};
  y = opa(MG_OP_TRANSPOSE, opa(MG_OP_TRANSPOSE, y, &tr), &tr);
  y = op1(MG_OP_NEG, op1(MG_OP_NEG, y));
  mg_attrs r1 = {0}, r2 = {0}, c = {0};
  attr_shape(&r1, 0, 2, s32);
  attr_shape(&r2, 0, 2, s);
  y = opa(MG_OP_RESHAPE, opa(MG_OP_RESHAPE, y, &r1), &r2);
  attr_int(&c, 0, F32);
  y = op1(MG_OP_EXP, opa(MG_OP_CAST, op2(MG_OP_POW, y, num(1)), &c));
  TRY(mg_trace_end(ctx, g, 1, &y));
  return g;
}

TEST(passes_algebra_removes_identities) {
  int64_t s[2] = {2, 3};
  mg_tensor *in[1] = {data_f32(2, s, -1.5, 0.5)};
  int counts[MG_NPASSES];
  mg_graph *g = check_same(build_algebra, MG_PASS_ALGEBRA, 1, in, counts);
  REQUIRE(g);
  CHECK(counts[3] == 11);  /* 2 muls, add, sub, div, transpose, neg, pow, cast, 2 for the reshapes */
  CHECK(counts[0] == 0 && counts[1] == 0 && counts[2] == 0 && counts[4] == 0);
  CHECK(count_op(g, MG_OP_MUL) == 0 && count_op(g, MG_OP_ADD) == 0 && count_op(g, MG_OP_SUB) == 0);
  CHECK(count_op(g, MG_OP_POW) == 0);
  CHECK(count_op(g, MG_OP_DIV) == 0 && count_op(g, MG_OP_CAST) == 0);
  CHECK(count_op(g, MG_OP_RESHAPE) == 1 && count_op(g, MG_OP_NEG) == 1);  /* inner ones, dead: DCE's job */
  CHECK(count_op(g, MG_OP_EXP) == 1 && g->nodes[g->values[g->outputs[0]].node].in[0] == g->inputs[0]);
  mg_graph_release(g);
  g = check_same(build_algebra, MG_PASS_ALL, 1, in, counts);
  REQUIRE(g);
  CHECK(mg_graph_nnodes(g) == 2);  /* x and exp */
  mg_graph_release(g);
  pass_drain();
}

/* What must stay: x*0, x*ones that broadcast, int/1 (float result),
 * transposes of different axes, and x*1 as the output (a fresh tensor). */
static mg_graph *build_algebra_keep(void) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL;
  int64_t s[1] = {3}, s23[2] = {2, 3}, s234[3] = {2, 3, 4};
  TRY(mg_trace_begin(ctx, "algebra_keep", &g));
  mg_tensor *x = ph(F32, 1, s), *i = ph(MG_INT64, 1, s), *m = ph(F32, 3, s234);
  mg_attrs t01 = {0}, t12 = {0};
  attr_int(&t01, 0, 0);
  attr_int(&t01, 1, 1);
  attr_int(&t12, 0, 1);
  attr_int(&t12, 1, 2);
  mg_tensor *outs[5] = {
      op2(MG_OP_MUL, x, num(0)),
      op2(MG_OP_MUL, x, full(2, s23, 1)),
      op2(MG_OP_DIV, i, num(1)),
      opa(MG_OP_TRANSPOSE, opa(MG_OP_TRANSPOSE, m, &t01), &t12),
      op2(MG_OP_MUL, x, num(1)),
  };
  TRY(mg_trace_end(ctx, g, 5, outs));
  return g;
}

TEST(passes_algebra_keeps_what_is_not_an_identity) {
  mg_ctx *ctx = mg_test_ctx();
  int64_t s[1] = {3}, s234[3] = {2, 3, 4};
  int64_t iv[3] = {4, -7, 9};
  mg_tensor *it = NULL;
  mg_tensor_from_data(MG_INT64, 1, s, iv, &it);
  float xv[3] = {NAN, INFINITY, -2};
  mg_tensor *xt = NULL;
  mg_tensor_from_data(F32, 1, s, xv, &xt);
  mg_tensor *in[3] = {pass_keep(xt), pass_keep(it), data_f32(3, s234, 0, 1)};
  int counts[MG_NPASSES];
  mg_graph *g = check_same(build_algebra_keep, MG_PASS_ALGEBRA | MG_PASS_CONSTFOLD | MG_PASS_DCE, 3, in, counts);
  REQUIRE(g);
  CHECK(counts[3] == 0 && counts[0] == 1);  /* the ones fold, x*ones still broadcasts */
  CHECK(count_op(g, MG_OP_MUL) == 3 && count_op(g, MG_OP_DIV) == 1 && count_op(g, MG_OP_TRANSPOSE) == 2);
  mg_tensor *out[5] = {0};
  CHECK_OK(mg_graph_run(ctx, g, 3, in, 5, out));
  CHECK(out[4] != in[0]);  /* x*1 is still a new tensor, not the caller's x */
  float o0[3];
  CHECK_OK(mg_tensor_copy_to(out[0], o0, sizeof o0));
  CHECK(isnan(o0[0]) && isnan(o0[1]) && o0[2] == 0);  /* x*0 kept NaN semantics */
  for (int k = 0; k < 5; k++) mg_tensor_release(out[k]);
  mg_graph_release(g);
  pass_drain();
}

/* ---- fusion ---------------------------------------------------------------------------- */

static int64_t fuse_n = 1000;

/* relu(x*w + b)*2 - 1 */
static mg_graph *build_fuse(void) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL;
  int64_t s[1] = {fuse_n};
  TRY(mg_trace_begin(ctx, "fuse", &g));
  mg_tensor *x = ph(F32, 1, s), *w = ph(F32, 1, s), *b = ph(F32, 1, s);
  mg_tensor *y = op1(MG_OP_RELU, op2(MG_OP_ADD, op2(MG_OP_MUL, x, w), b));
  y = op2(MG_OP_SUB, op2(MG_OP_MUL, y, num(2)), num(1));
  TRY(mg_trace_end(ctx, g, 1, &y));
  return g;
}

static void fuse_check_chain(int64_t n) {
  fuse_n = n;
  int64_t s[1] = {n};
  mg_tensor *in[3] = {data_f32(1, s, -3, 0.01), data_f32(1, s, 0.5, 0.002), data_f32(1, s, 0.25, -0.001)};
  int counts[MG_NPASSES];
  mg_graph *g = check_same(build_fuse, MG_PASS_FUSE, 3, in, counts);
  REQUIRE(g);
  CHECK(counts[4] == 1 && counts[0] + counts[1] + counts[2] + counts[3] == 0);
  CHECK(count_kind(g, MG_N_FUSED) == 1 && count_kind(g, MG_N_OP) == 0 && mg_graph_nnodes(g) == 6);
  const mg_gnode *f = &g->nodes[g->values[g->outputs[0]].node];
  REQUIRE(f->kind == MG_N_FUSED);
  char text[128];
  mg_fused_describe(f, text, sizeof text);
  CHECK(strcmp(text, "fused(mul,add,relu,mul,sub)") == 0);
  CHECK(f->nin == 5);  /* x, w, b, 2, 1 */
  mg_graph_release(g);
  pass_drain();
}

TEST(passes_fuse_chain_small) { fuse_check_chain(1000); }
TEST(passes_fuse_chain_threaded) { fuse_check_chain((1 << 20) + 77); }

/* Every fusable op, float64, a tree (two chains meet), and a shared value
 * (used twice: stays its own node). */
static mg_graph *build_fuse_f64(void) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL;
  int64_t s[2] = {7, 33};
  TRY(mg_trace_begin(ctx, "fuse64", &g));
  mg_tensor *x = ph(MG_FLOAT64, 2, s), *y = ph(MG_FLOAT64, 2, s);
  mg_tensor *shared = op1(MG_OP_EXP, op1(MG_OP_NEG, x));
  mg_tensor *a = op1(MG_OP_SIGMOID, op2(MG_OP_DIV, op1(MG_OP_TANH, y), op2(MG_OP_ADD, shared, num(1))));
  mg_tensor *b = op1(MG_OP_LOG, op1(MG_OP_SQRT, op2(MG_OP_ADD, op1(MG_OP_SQUARE, x), num(1e-3))));
  mg_tensor *c = op2(MG_OP_MAXIMUM, op2(MG_OP_MINIMUM, a, b), op1(MG_OP_ABS, op1(MG_OP_RELU, y)));
  mg_tensor *outs[2] = {op2(MG_OP_MUL, c, shared), shared};
  TRY(mg_trace_end(ctx, g, 2, outs));
  return g;
}

TEST(passes_fuse_float64_tree) {
  int64_t s[2] = {7, 33};
  mg_tensor *in[2] = {data_f64(2, s, -4, 0.037), data_f64(2, s, 3, -0.021)};
  int counts[MG_NPASSES];
  mg_graph *g = check_same(build_fuse_f64, MG_PASS_FUSE, 2, in, counts);
  REQUIRE(g);
  CHECK(counts[4] == 2);  /* exp(neg x), and the rest */
  CHECK(count_kind(g, MG_N_FUSED) == 2 && count_kind(g, MG_N_OP) == 0);
  mg_graph_release(g);
  pass_drain();
}

/* Recording tapes see the ops (the fused node runs unfused): same gradient. */
TEST(passes_fuse_under_a_tape) {
  mg_ctx *ctx = mg_test_ctx();
  fuse_n = 64;
  int64_t s[1] = {64};
  mg_tensor *x = data_f32(1, s, -0.3, 0.01), *w = data_f32(1, s, 0.5, 0.01), *b = data_f32(1, s, 0.1, 0);
  mg_tensor *in[3] = {x, w, b};
  mg_graph *g0 = build_fuse(), *g1 = build_fuse();
  REQUIRE(g0 && g1);
  CHECK_OK(mg_graph_optimize(ctx, g1, MG_PASS_ALL));
  CHECK(count_kind(g1, MG_N_FUSED) == 1);
  mg_tensor *grads[2][2] = {{0}};
  for (int k = 0; k < 2; k++) {
    mg_tape *tape = mg_tape_new(ctx, 0, 1);
    CHECK_OK(mg_tape_start(tape));
    CHECK_OK(mg_tape_watch(tape, x));
    CHECK_OK(mg_tape_watch(tape, w));
    mg_tensor *y = NULL;
    CHECK_OK(mg_graph_run(ctx, k ? g1 : g0, 3, in, 1, &y));
    mg_tensor *loss = op1(MG_OP_SUM, y);
    mg_tensor *src[2] = {x, w};
    mg_tape_stop(tape);
    CHECK_OK(mg_tape_gradient(tape, 1, &loss, NULL, 2, src, 0, grads[k]));
    mg_tape_free(tape);
    mg_tensor_release(y);
  }
  CHECK(grads[0][0] && same_bits(grads[0][0], grads[1][0]));
  CHECK(grads[0][1] && same_bits(grads[0][1], grads[1][1]));
  float gx[64];
  CHECK_OK(mg_tensor_copy_to(grads[1][0], gx, sizeof gx));
  CHECK(gx[0] == 0.0f || gx[0] == 2.0f * 0.5f);  /* relu' * 2 * w */
  for (int k = 0; k < 2; k++)
    for (int j = 0; j < 2; j++) mg_tensor_release(grads[k][j]);
  mg_graph_release(g0);
  mg_graph_release(g1);
  pass_drain();
}

/* Unknown sizes, a non-contiguous input (the fallback), and a held result
 * that a later run must not overwrite. */
static mg_graph *build_fuse_probe(void) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL;
  int64_t s[2] = {-1, 3};
  TRY(mg_trace_begin(ctx, "fuse_probe", &g));
  mg_tensor *x = ph(F32, 2, s);
  mg_tensor *y = op2(MG_OP_MUL, op1(MG_OP_TANH, op2(MG_OP_ADD, x, num(0.5))), x);
  TRY(mg_trace_end(ctx, g, 1, &y));
  return g;
}

TEST(passes_fuse_unknown_sizes_and_layouts) {
  mg_ctx *ctx = mg_test_ctx();
  int64_t s4[2] = {4, 3}, s34[2] = {3, 4}, sbig[2] = {20000, 3};
  mg_tensor *a = data_f32(2, s4, -1, 0.3), *big = data_f32(2, sbig, -5, 0.01);
  mg_attrs tr = {0};
  mg_tensor *view = opa(MG_OP_TRANSPOSE, data_f32(2, s34, 2, -0.4), &tr);  /* (4,3), not contiguous */
  REQUIRE(view && !mg_tensor_is_contiguous(view));
  mg_tensor *inputs[3] = {a, big, view};
  for (int k = 0; k < 3; k++) {
    int counts[MG_NPASSES];
    mg_graph *g = check_same(build_fuse_probe, MG_PASS_ALL, 1, &inputs[k], counts);
    REQUIRE(g);
    CHECK(counts[4] == 1 && count_kind(g, MG_N_FUSED) == 1);
    mg_graph_release(g);
  }
  mg_graph *g = build_fuse_probe();
  CHECK_OK(mg_graph_optimize(ctx, g, MG_PASS_ALL));
  mg_tensor *r1 = NULL, *r2 = NULL;
  CHECK_OK(mg_graph_run(ctx, g, 1, &a, 1, &r1));
  float before[12], after[12];
  CHECK_OK(mg_tensor_copy_to(r1, before, sizeof before));
  mg_tensor *a2 = data_f32(2, s4, 3, 0.1);
  CHECK_OK(mg_graph_run(ctx, g, 1, &a2, 1, &r2));
  CHECK_OK(mg_tensor_copy_to(r1, after, sizeof after));
  CHECK(r1 != r2 && memcmp(before, after, sizeof before) == 0);
  mg_tensor_release(r1);
  mg_tensor_release(r2);
  mg_graph_release(g);
  pass_drain();
}

/* ---- subgraphs ---------------------------------------------------------------------------- */

/* A while loop whose body holds duplicates, identities and a chain, and
 * reads a constant of the parent (which folding moves into the body). */
static mg_graph *build_loop(void) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL, *c = NULL, *b = NULL;
  int64_t s[1] = {5};
  TRY(mg_trace_begin(ctx, "loop", &g));
  mg_tensor *x = ph(F32, 1, s);
  mg_tensor *k = full(1, s, 0.25);
  mg_tensor *init[2] = {NULL, full(1, s, 0)}, *outs[2];
  mg_scalar_i64(0, 0, &init[0]);
  pass_keep(init[0]);
  TRY(mg_trace_begin(ctx, "cond", &c));
  mg_tensor *ci = ph(MG_INT64, 0, NULL);
  ph(F32, 1, s);
  mg_tensor *more = op2(MG_OP_LESS, ci, num(6));
  TRY(mg_trace_end(ctx, c, 1, &more));
  TRY(mg_trace_begin(ctx, "body", &b));
  mg_tensor *bi = ph(MG_INT64, 0, NULL), *bs = ph(F32, 1, s);
  mg_tensor *e = op2(MG_OP_ADD, op1(MG_OP_EXP, op2(MG_OP_MUL, x, num(1))), op1(MG_OP_EXP, x));
  mg_tensor *ns = op2(MG_OP_ADD, bs, op2(MG_OP_MUL, op1(MG_OP_TANH, e), k));
  mg_tensor *next[2] = {op2(MG_OP_ADD, bi, inum(1)), ns};
  TRY(mg_trace_end(ctx, b, 2, next));
  TRY(mg_trace_while(ctx, c, b, 2, init, -1, outs));
  pass_keep(outs[0]);
  pass_keep(outs[1]);
  mg_graph_release(c);
  mg_graph_release(b);
  TRY(mg_trace_end(ctx, g, 1, &outs[1]));
  return g;
}

TEST(passes_work_inside_while_bodies) {
  int64_t s[1] = {5};
  mg_tensor *in[1] = {data_f32(1, s, -1, 0.4)};
  int counts[MG_NPASSES];
  mg_graph *g = check_same(build_loop, MG_PASS_ALL, 1, in, counts);
  REQUIRE(g);
  CHECK(counts[0] == 2);  /* k folds and moves into the body */
  CHECK(count_op(g, MG_OP_FULL) == 1);  /* the initial zeros could come back as the result: not folded */
  CHECK(counts[1] >= 1 && counts[3] >= 1 && counts[4] >= 1);
  mg_gnode *w = NULL;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].kind == MG_N_WHILE) w = &g->nodes[i];
  REQUIRE(w);
  mg_graph *body = w->sub[1];
  CHECK(count_op(body, MG_OP_EXP) == 1 && count_op(body, MG_OP_MUL) == 0);  /* one exp (CSE after x*1 -> x) */
  CHECK(count_kind(body, MG_N_FUSED) == 1);  /* add(bs, tanh(e + e) * k); exp has two uses */
  CHECK(body->ncaptures == 1);  /* x; the constant k is now the body's own */
  mg_graph_release(g);
  pass_drain();
}

/* cond(p, exp(x*1) + exp(x) + c, c) with c = full({3}, 2) made in the
 * parent: the else branch hands c back, so c must not become a constant
 * (the caller could write into the result); the then branch cleans up. */
static mg_graph *build_cond(void) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL, *t = NULL, *e = NULL;
  int64_t s[1] = {3};
  TRY(mg_trace_begin(ctx, "cond", &g));
  mg_tensor *p = ph(MG_BOOL, 0, NULL), *x = ph(F32, 1, s);
  mg_tensor *c = full(1, s, 2), *out = NULL;
  TRY(mg_trace_begin(ctx, "then", &t));
  mg_tensor *r = op2(MG_OP_ADD, op2(MG_OP_ADD, op1(MG_OP_EXP, op2(MG_OP_MUL, x, num(1))), op1(MG_OP_EXP, x)), c);
  TRY(mg_trace_end(ctx, t, 1, &r));
  TRY(mg_trace_begin(ctx, "else", &e));
  TRY(mg_trace_end(ctx, e, 1, &c));
  TRY(mg_trace_cond(ctx, p, t, e, 1, &out));
  pass_keep(out);
  mg_graph_release(t);
  mg_graph_release(e);
  TRY(mg_trace_end(ctx, g, 1, &out));
  return g;
}

TEST(passes_work_inside_cond_branches) {
  mg_ctx *ctx = mg_test_ctx();
  int64_t s[1] = {3};
  for (int which = 0; which < 2; which++) {
    mg_tensor *p = NULL, *pb = NULL;
    mg_scalar_i64(which, 0, &p);
    mg_attrs ca = {0};
    attr_int(&ca, 0, MG_BOOL);
    REQUIRE(!mg_apply(ctx, MG_OP_CAST, &p, 1, &ca, &pb));
    pass_keep(p);
    pass_keep(pb);
    mg_tensor *in[2] = {pb, data_f32(1, s, -0.5, 0.25)};
    int counts[MG_NPASSES];
    mg_graph *g = check_same(build_cond, MG_PASS_ALL, 2, in, counts);
    REQUIRE(g);
    CHECK(counts[0] == 0 && count_op(g, MG_OP_FULL) == 1);
    mg_gnode *cn = NULL;
    for (int i = 0; i < g->nnodes; i++)
      if (g->nodes[i].kind == MG_N_COND) cn = &g->nodes[i];
    REQUIRE(cn);
    CHECK(count_op(cn->sub[0], MG_OP_EXP) == 1 && count_op(cn->sub[0], MG_OP_MUL) == 0);
    CHECK(counts[1] == 1 && counts[3] == 1);
    mg_tensor *r1 = NULL, *r2 = NULL;  /* the else result is c: a new tensor each call */
    CHECK_OK(mg_graph_run(ctx, g, 2, in, 1, &r1));
    CHECK_OK(mg_graph_run(ctx, g, 2, in, 1, &r2));
    CHECK(r1 != r2 && mg_tensor_storage_id(r1) != mg_tensor_storage_id(r2));
    mg_tensor_release(r1);
    mg_tensor_release(r2);
    mg_graph_release(g);
  }
  pass_drain();
}

/* A chain longer than one fused node holds becomes two fused nodes. */
static mg_graph *build_long_chain(void) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL;
  int64_t s[1] = {300};
  TRY(mg_trace_begin(ctx, "long", &g));
  mg_tensor *x = ph(F32, 1, s), *y = x;
  for (int k = 0; k < 40; k++)
    y = k % 3 == 0 ? op1(MG_OP_TANH, y) : k % 3 == 1 ? op2(MG_OP_MUL, y, num(1.5)) : op2(MG_OP_SUB, x, y);
  TRY(mg_trace_end(ctx, g, 1, &y));
  return g;
}

TEST(passes_fuse_splits_long_chains) {
  int64_t s[1] = {300};
  mg_tensor *in[1] = {data_f32(1, s, -2, 0.01)};
  int counts[MG_NPASSES];
  mg_graph *g = check_same(build_long_chain, MG_PASS_ALL, 1, in, counts);
  REQUIRE(g);
  CHECK(counts[4] == 2 && count_kind(g, MG_N_FUSED) == 2 && count_kind(g, MG_N_OP) == 0);
  int ninstr = 0;
  for (int i = 0; i < g->nnodes; i++)
    if (g->nodes[i].kind == MG_N_FUSED) ninstr += ((const mg_fused *)g->nodes[i].ud)->ninstr;
  CHECK(ninstr == 40);
  mg_graph_release(g);
  pass_drain();
}

/* ---- the driver -------------------------------------------------------------------------- */

TEST(passes_driver_flags_and_errors) {
  mg_ctx *ctx = mg_test_ctx();
  int64_t s[2] = {2, 3};
  mg_tensor *in[1] = {data_f32(2, s, 0, 1)};
  int counts[MG_NPASSES];
  mg_graph *g = check_same(build_algebra, 0, 1, in, counts);  /* no pass: nothing changes */
  REQUIRE(g);
  for (int p = 0; p < MG_NPASSES; p++) CHECK(counts[p] == 0);
  CHECK(mg_graph_nnodes(g) > 10);
  mg_graph_release(g);
  fuse_n = 100;  /* a second run finds nothing more to do */
  int64_t s100[1] = {100};
  mg_tensor *fin[3] = {data_f32(1, s100, -1, 0.02), data_f32(1, s100, 1, 0.01), data_f32(1, s100, 0, 0.5)};
  g = check_same(build_fuse, MG_PASS_ALL, 3, fin, counts);
  REQUIRE(g);
  CHECK_OK(mg_graph_optimize_counts(ctx, g, MG_PASS_ALL, counts));
  for (int p = 0; p < MG_NPASSES; p++) CHECK(counts[p] == 0);
  CHECK(count_kind(g, MG_N_FUSED) == 1 && mg_graph_nnodes(g) == 6);
  mg_graph_release(g);
  CHECK(strcmp(mg_pass_name(0), "constfold") == 0 && strcmp(mg_pass_name(4), "fuse") == 0 && !mg_pass_name(5));
  mg_graph *open = NULL;
  CHECK_OK(mg_trace_begin(ctx, "open", &open));
  CHECK(mg_graph_optimize(ctx, open, MG_PASS_ALL) == MG_ESTATE);
  mg_trace_abort(ctx);
  mg_graph_release(open);
  pass_drain();
}

/* TF 2's example: a = 1, b = 1; f(x, y): a = y*b; b = b + x*a; return a + b. */
static mg_tensor *tf_a, *tf_b;
static mg_graph *build_tf(void) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL;
  TRY(mg_trace_begin(ctx, "tf", &g));
  mg_tensor *x = ph(F32, 0, NULL), *y = ph(F32, 0, NULL);
  TRY(mg_variable_assign(ctx, tf_a, op2(MG_OP_MUL, y, tf_b)));
  TRY(mg_variable_assign(ctx, tf_b, op2(MG_OP_ADD, tf_b, op2(MG_OP_MUL, x, tf_a))));
  mg_tensor *r = op2(MG_OP_ADD, tf_a, tf_b);
  TRY(mg_trace_end(ctx, g, 1, &r));
  return g;
}

TEST(passes_keep_variable_order) {
  mg_ctx *ctx = mg_test_ctx();
  mg_tensor *one = NULL;
  mg_scalar_f64(1, 0, &one);
  mg_attrs c = {0};
  attr_int(&c, 0, F32);
  mg_tensor *one32 = opa(MG_OP_CAST, pass_keep(one), &c);
  REQUIRE(!mg_variable_new(ctx, one32, 1, &tf_a) && !mg_variable_new(ctx, one32, 1, &tf_b));
  pass_keep(tf_a);
  pass_keep(tf_b);
  mg_graph *g = build_tf();
  REQUIRE(g);
  CHECK_OK(mg_graph_optimize(ctx, g, MG_PASS_ALL));
  mg_tensor *x = NULL, *y = NULL, *r = NULL;
  mg_scalar_f64(1, 0, &x);
  mg_scalar_f64(2, 0, &y);
  mg_tensor *in[2] = {opa(MG_OP_CAST, pass_keep(x), &c), opa(MG_OP_CAST, pass_keep(y), &c)};
  CHECK_OK(mg_graph_run(ctx, g, 2, in, 1, &r));
  CHECK(mg_tensor_get_f64(r, 0) == 5.0 && mg_tensor_get_f64(tf_a, 0) == 2.0 && mg_tensor_get_f64(tf_b, 0) == 3.0);
  CHECK(count_kind(g, MG_N_ASSIGN) == 2);
  mg_tensor_release(r);
  mg_graph_release(g);
  pass_drain();
}
