/*
 * test_graph_split.c — mg_graph_split (core/graph_split.c): a function traced
 * under a tape together with the tape's gradient is cut into a forward graph
 * (results and saved intermediates) and a backward graph (saved values and
 * upstream gradient to gradients). The tests check which nodes land where,
 * that running forward then backward gives the eager gradient, that a
 * Variable's value is saved (the backward reads no Variable), that dead
 * gradient parts cause no saves, selecting outputs, and the errors.
 */
#include "harness.h"
#include "graph.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static mg_tensor *pool[128];
static int npool;

static mg_tensor *keep(mg_tensor *t) {
  if (t && npool < 128) pool[npool++] = t;
  return t;
}

static void drain(void) {
  while (npool) mg_tensor_release(pool[--npool]);
}

static mg_tensor *op1(mg_op op, mg_tensor *a) {
  mg_tensor *r = NULL;
  if (mg_apply(mg_test_ctx(), op, &a, 1, NULL, &r)) fprintf(stderr, "  %s\n", mg_last_error());
  return keep(r);
}

static mg_tensor *op2(mg_op op, mg_tensor *a, mg_tensor *b) {
  mg_tensor *in[2] = {a, b}, *r = NULL;
  if (mg_apply(mg_test_ctx(), op, in, 2, NULL, &r)) fprintf(stderr, "  %s\n", mg_last_error());
  return keep(r);
}

static mg_tensor *vec(int n, const float *v) {
  int64_t shape[1] = {n};
  mg_tensor *t = NULL;
  mg_tensor_from_data(MG_FLOAT32, 1, shape, v, &t);
  return keep(t);
}

static mg_tensor *scalar(float v) {
  mg_tensor *t = NULL;
  mg_tensor_from_data(MG_FLOAT32, 0, NULL, &v, &t);
  return keep(t);
}

static int count_op(const mg_graph *g, mg_op op) {
  int n = 0;
  for (int i = 0; i < g->nnodes; i++) n += g->nodes[i].kind == MG_N_OP && g->nodes[i].op == op;
  return n;
}

static int count_kind(const mg_graph *g, mg_node_kind kind) {
  int n = 0;
  for (int i = 0; i < g->nnodes; i++) n += g->nodes[i].kind == kind;
  return n;
}

/* f(x) = sum(tanh(x * v)) with v a Variable, traced with its gradient with
 * respect to x and v for an upstream placeholder. */
static mg_graph *trace_fwd_bwd(mg_tensor *v) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL;
  if (mg_trace_begin(ctx, "f", &g)) return NULL;
  int64_t shape[1] = {3};
  mg_tensor *x = NULL, *up = NULL, *grads[2] = {NULL, NULL};
  mg_trace_placeholder(ctx, MG_FLOAT32, 1, shape, &x);
  keep(x);
  mg_tape *tape = mg_tape_new(ctx, 0, 1);
  mg_tape_start(tape);
  mg_tape_watch(tape, x);
  mg_tape_watch(tape, v);
  mg_tensor *y = op1(MG_OP_SUM, op1(MG_OP_TANH, op2(MG_OP_MUL, x, v)));
  /* a gradient no output uses (as func.lua's reachability check makes): dead */
  mg_tensor *dead = NULL;
  mg_tape_set_persistent(tape, 1);
  mg_tape_gradient(tape, 1, &y, NULL, 1, &x, 0, &dead);
  keep(dead);
  mg_tape_set_persistent(tape, 0);
  mg_tape_stop(tape);
  mg_trace_placeholder(ctx, MG_FLOAT32, 0, NULL, &up);
  keep(up);
  mg_tensor *src[2] = {x, v};
  mg_tape_gradient(tape, 1, &y, &up, 2, src, 0, grads);
  keep(grads[0]);
  keep(grads[1]);
  mg_tape_free(tape);
  mg_tensor *outs[3] = {y, grads[0], grads[1]};
  if (mg_trace_end(ctx, g, 3, outs)) {
    mg_graph_release(g);
    return NULL;
  }
  return g;
}

TEST(graph_split_forward_saves_backward_computes) {
  mg_ctx *ctx = mg_test_ctx();
  const float xv[3] = {0.5f, -1.0f, 2.0f}, vv[3] = {1.0f, 0.25f, -0.5f};
  mg_tensor *v = NULL;
  CHECK_OK(mg_variable_new(ctx, vec(3, vv), 1, &v));
  keep(v);
  mg_graph *g = trace_fwd_bwd(v);
  REQUIRE(g);
  mg_graph *f = NULL, *b = NULL;
  int nsrc = 0, *src = NULL;
  CHECK_OK(mg_graph_split(g, 1, 1, &f, &b, &nsrc, &src));
  mg_graph_release(g);
  /* the forward has the forward ops and the variable read; the backward reads no variable and
   * recomputes nothing: no tanh, no read */
  CHECK(count_op(f, MG_OP_TANH) == 1);
  CHECK(count_kind(f, MG_N_READ) >= 1);
  CHECK(count_op(b, MG_OP_TANH) == 0);
  CHECK(count_kind(b, MG_N_READ) == 0);
  CHECK(f->ninputs == 1 && b->ninputs == nsrc + 1 && b->noutputs == 2);
  /* the dead gradient (seeded with ones, as func.lua's reachability check makes) is left out of
   * both graphs: the forward keeps its own multiply and the one for tanh's derivative (8 nodes
   * in all; copying the dead part too made 16 with 5 multiplies) */
  CHECK(count_op(f, MG_OP_MUL) == 2);
  CHECK(f->nnodes == 8);
  CHECK(count_op(b, MG_OP_MUL) == 3);
  CHECK(nsrc == 3);  /* x, the Variable's value, tanh's derivative */
  CHECK(f->noutputs >= 1);
  /* run: forward, then backward on what it saved */
  mg_tensor *x = vec(3, xv), *fout[8] = {NULL}, *bin[8] = {NULL}, *grads[2] = {NULL, NULL};
  REQUIRE(f->noutputs <= 8 && nsrc < 8);
  CHECK_OK(mg_graph_run(ctx, f, 1, &x, f->noutputs, fout));
  for (int k = 0; k < f->noutputs; k++) keep(fout[k]);
  for (int k = 0; k < nsrc; k++) {
    REQUIRE(src[k] >= 0 && src[k] < 1 + f->noutputs);
    bin[k] = src[k] == 0 ? x : fout[src[k] - 1];
  }
  bin[nsrc] = scalar(2.0f);  /* upstream gradient 2 */
  /* the Variable changes after the call: the backward must not see it */
  const float later[3] = {9.0f, 9.0f, 9.0f};
  CHECK_OK(mg_variable_assign(ctx, v, vec(3, later)));
  CHECK_OK(mg_graph_run(ctx, b, nsrc + 1, bin, 2, grads));
  keep(grads[0]);
  keep(grads[1]);
  const float *gx = mg_tensor_data(grads[0]), *gv = mg_tensor_data(grads[1]);
  double y = 0;
  for (int i = 0; i < 3; i++) {
    double t = tanh((double)xv[i] * vv[i]), d = 2.0 * (1.0 - t * t);
    y += t;
    CHECK_NEAR(gx[i], d * vv[i], 1e-5);
    CHECK_NEAR(gv[i], d * xv[i], 1e-5);
  }
  CHECK_NEAR(*(const float *)mg_tensor_data(fout[0]), y, 1e-5);
  /* the backward for the Variable alone: fewer nodes, the same gradient */
  mg_graph *bv = NULL, *none = NULL;
  int which[1] = {1}, bad[1] = {2};
  CHECK_OK(mg_graph_select_outputs(b, 1, which, &bv));
  CHECK(bv->noutputs == 1 && bv->ninputs == b->ninputs && bv->nnodes < b->nnodes);
  mg_tensor *gv_only = NULL;
  CHECK_OK(mg_graph_run(ctx, bv, nsrc + 1, bin, 1, &gv_only));
  keep(gv_only);
  for (int i = 0; i < 3; i++) CHECK(((const float *)mg_tensor_data(gv_only))[i] == gv[i]);
  CHECK(mg_graph_select_outputs(b, 1, bad, &none) == MG_EARG && !none);
  CHECK(strstr(mg_last_error(), "has 2 outputs, asked for output 3"));
  mg_graph_release(bv);
  mg_free(src);
  mg_graph_release(f);
  mg_graph_release(b);
  drain();
}

TEST(graph_split_refuses_effects_and_bad_counts) {
  mg_ctx *ctx = mg_test_ctx();
  const float vv[2] = {1.0f, 2.0f};
  mg_tensor *v = NULL;
  CHECK_OK(mg_variable_new(ctx, vec(2, vv), 1, &v));
  keep(v);
  mg_graph *g = NULL;
  CHECK_OK(mg_trace_begin(ctx, "assigning", &g));
  int64_t shape[1] = {2};
  mg_tensor *x = NULL;
  mg_trace_placeholder(ctx, MG_FLOAT32, 1, shape, &x);
  keep(x);
  CHECK_OK(mg_trace_assign(ctx, v, x));
  mg_tensor *y = op1(MG_OP_SUM, x);
  CHECK_OK(mg_trace_end(ctx, g, 1, &y));
  mg_graph *f = NULL, *b = NULL;
  int nsrc = 0, *src = NULL;
  CHECK(mg_graph_split(g, 1, 1, &f, &b, &nsrc, &src) == MG_EARG);
  CHECK(strstr(mg_last_error(), "assigning") && strstr(mg_last_error(), "Variable assignment"));
  CHECK(!f && !b && !src);
  CHECK(mg_graph_split(g, 2, 1, &f, &b, &nsrc, &src) == MG_EARG);
  CHECK(strstr(mg_last_error(), "has 1 inputs and 1 outputs"));
  mg_graph_release(g);
  drain();
}
