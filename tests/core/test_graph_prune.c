/*
 * test_graph_prune.c — a TF1-style graph (stdlib/moongrad/graph_mode.lua) in C:
 * mg_trace_resume reopens a finished graph (its tensors usable again, unknown
 * sizes getting fresh probes), mg_graph_prune cuts it to some fetches with
 * some fed values, keeping named nodes (an assign) and nothing else, and
 * reports a placeholder needed but not fed.
 */
#include "harness.h"
#include "graph.h"
#include <math.h>
#include <stdlib.h>

static float item(mg_tensor *t) { return ((const float *)mg_tensor_data(t))[0]; }

static mg_tensor *mul(mg_tensor *a, mg_tensor *b) {
  mg_tensor *in[2] = {a, b}, *r = NULL;
  if (mg_apply(mg_test_ctx(), MG_OP_MUL, in, 2, NULL, &r)) fprintf(stderr, "  %s\n", mg_last_error());
  return r;
}

static mg_tensor *scalar(float v) {
  mg_tensor *t = NULL;
  mg_tensor_from_data(MG_FLOAT32, 0, NULL, &v, &t);
  return t;
}

static int count_kind(const mg_graph *g, mg_node_kind kind) {
  int n = 0;
  for (int i = 0; i < g->nnodes; i++) n += g->nodes[i].kind == kind;
  return n;
}

TEST(graph_resume_and_prune) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL, *p = NULL;
  mg_tensor *x = NULL, *y = NULL, *var = NULL, *three = scalar(3), *ten = scalar(10), *out = NULL;
  int64_t unknown[1] = {-1};
  CHECK_OK(mg_variable_new(ctx, three, 1, &var));
  CHECK_OK(mg_trace_begin(ctx, "g", &g));
  CHECK_OK(mg_trace_placeholder(ctx, MG_FLOAT32, 1, unknown, &x));
  CHECK_OK(mg_trace_end(ctx, g, 0, NULL));
  CHECK(mg_tensor_graph_value(x, g) >= 0);
  CHECK(mg_tensor_graph_value(three, g) == -1);
  /* entered again: x is live, a second unknown size gets another probe */
  CHECK_OK(mg_trace_resume(ctx, g));
  CHECK(mg_trace_resume(ctx, g) != MG_OK);  /* not while tracing */
  mg_tensor *xv = mul(x, var);              /* reads the Variable */
  int before = g->nnodes;
  CHECK_OK(mg_variable_assign(ctx, var, ten)); /* an assign nothing reads */
  int assign = before;
  while (assign < g->nnodes && g->nodes[assign].kind != MG_N_ASSIGN) assign++;
  CHECK_OK(mg_trace_placeholder(ctx, MG_FLOAT32, 1, unknown, &y));
  CHECK(y && x && mg_tensor_shape(y)[0] != mg_tensor_shape(x)[0]);
  CHECK_OK(mg_trace_end(ctx, g, 0, NULL));
  int ix = mg_tensor_graph_value(x, g), ixv = mg_tensor_graph_value(xv, g), iy = mg_tensor_graph_value(y, g);
  /* fetch x*v, feed x: no assign, y not needed */
  CHECK_OK(mg_graph_prune(g, 1, &ix, 1, &ixv, 0, NULL, &p, NULL));
  CHECK(p && p->ninputs == 1 && p->noutputs == 1 && count_kind(p, MG_N_ASSIGN) == 0);
  float two = 2;
  int64_t one[1] = {1};
  mg_tensor *in1 = NULL;
  CHECK_OK(mg_tensor_from_data(MG_FLOAT32, 1, one, &two, &in1));
  CHECK_OK(mg_graph_run(ctx, p, 1, &in1, 1, &out));
  CHECK(out && item(out) == 6.0f);
  mg_tensor_release(out);
  mg_graph_release(p);
  /* keeping the assign runs it */
  CHECK_OK(mg_graph_prune(g, 1, &ix, 1, &ixv, 1, &assign, &p, NULL));
  CHECK(p && count_kind(p, MG_N_ASSIGN) == 1);
  CHECK_OK(mg_graph_run(ctx, p, 1, &in1, 1, &out));
  mg_tensor_release(out);
  mg_graph_release(p);
  mg_tensor *now = NULL;
  CHECK_OK(mg_variable_read(var, &now));
  CHECK(now && item(now) == 10.0f);
  /* x needed but not fed: an error naming its position */
  int missing = -2;
  CHECK(mg_graph_prune(g, 1, &iy, 1, &ixv, 0, NULL, &p, &missing) != MG_OK);
  CHECK(p == NULL && missing == 0);
  /* feeding the intermediate x*v instead */
  CHECK_OK(mg_graph_prune(g, 1, &ixv, 1, &ixv, 0, NULL, &p, &missing));
  CHECK(p && missing == -1 && count_kind(p, MG_N_READ) == 0);
  mg_graph_release(p);
  mg_tensor_release(now);
  mg_tensor_release(in1);
  mg_tensor_release(x);
  mg_tensor_release(xv);
  mg_tensor_release(y);
  mg_tensor_release(var);
  mg_tensor_release(three);
  mg_tensor_release(ten);
  mg_graph_release(g);
}
