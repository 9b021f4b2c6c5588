/*
 * test_host_call.c — mg_call_host's result checks (graph.c, exec.c): a host
 * function's results must match the declared dtype and shape (-1 matches any
 * size and binds it for the rest of the run) every time it runs, eagerly and
 * in a traced graph; the error names the label and both metas; a weak scalar
 * result takes the declared dtype; nothing leaks on an error (make asan).
 */
#include "harness.h"
#include "graph.h"
#include <string.h>

/* Returns a float32 vector of n ones, n read from the ud. */
static mg_status host_ones(void *ud, int nin, mg_tensor *const *in, int nout, mg_tensor **out) {
  (void)nin, (void)in, (void)nout;
  int64_t n = *(const int64_t *)ud;
  mg_status st = mg_tensor_empty(MG_FLOAT32, 1, &n, &out[0]);
  if (st) return st;
  float *p = mg_tensor_data(out[0]);
  for (int64_t i = 0; i < n; i++) p[i] = 1;
  return MG_OK;
}

static mg_status host_weak(void *ud, int nin, mg_tensor *const *in, int nout, mg_tensor **out) {
  (void)nin, (void)in, (void)nout;
  return mg_scalar_i64(*(const int64_t *)ud, 1, &out[0]);
}

TEST(host_call_eager_checks_results) {
  mg_ctx *ctx = mg_test_ctx();
  int64_t n = 1, declared[1][MG_MAX_DIMS] = {{2000}}, any[1][MG_MAX_DIMS] = {{-1}};
  mg_dtype f32 = MG_FLOAT32, u8 = MG_UINT8;
  int one = 1, zero = 0;
  mg_tensor *out[1] = {NULL};
  CHECK(mg_call_host(ctx, "the function f", host_ones, &n, NULL, 0, NULL, 1, &f32, &one,
                     (const int64_t(*)[MG_MAX_DIMS])declared, out) == MG_ESHAPE);
  CHECK(strstr(mg_last_error(), "lua_function: result 1 of the function f is float32 (1), but it was declared "
                                "float32 (2000)") != NULL);
  CHECK(out[0] == NULL);
  n = 7;
  CHECK_OK(mg_call_host(ctx, "f", host_ones, &n, NULL, 0, NULL, 1, &f32, &one, (const int64_t(*)[MG_MAX_DIMS])any, out));
  CHECK(mg_tensor_numel(out[0]) == 7);
  mg_tensor_release(out[0]);
  n = 300;
  CHECK(mg_call_host(ctx, "f", host_weak, &n, NULL, 0, NULL, 1, &u8, &zero, NULL, out) == MG_EARG);
  CHECK(strstr(mg_last_error(), "300 is out of bounds for uint8") != NULL);
  n = 200;
  CHECK_OK(mg_call_host(ctx, "f", host_weak, &n, NULL, 0, NULL, 1, &u8, &zero, NULL, out));
  CHECK(mg_tensor_dtype(out[0]) == MG_UINT8 && !mg_tensor_is_weak(out[0]));
  mg_tensor_release(out[0]);
}

TEST(host_call_traced_checks_every_run) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL;
  int64_t n = 3, declared[1][MG_MAX_DIMS] = {{3}}, any[1][MG_MAX_DIMS] = {{-1}};
  mg_dtype f32 = MG_FLOAT32;
  int one = 1;
  mg_tensor *y[2] = {NULL, NULL}, *r[2] = {NULL, NULL};
  REQUIRE(!mg_trace_begin(ctx, "host", &g));
  CHECK_OK(mg_call_host(ctx, "the fixed one", host_ones, &n, NULL, 0, NULL, 1, &f32, &one,
                        (const int64_t(*)[MG_MAX_DIMS])declared, &y[0]));
  CHECK_OK(mg_call_host(ctx, "the free one", host_ones, &n, NULL, 0, NULL, 1, &f32, &one,
                        (const int64_t(*)[MG_MAX_DIMS])any, &y[1]));
  mg_tensor *sum = NULL;
  CHECK_OK(mg_apply(ctx, MG_OP_SUM, &y[1], 1, NULL, &sum));
  mg_tensor *outs[2] = {y[0], sum};
  CHECK_OK(mg_trace_end(ctx, g, 2, outs));
  mg_tensor_release(y[0]);
  mg_tensor_release(y[1]);
  mg_tensor_release(sum);
  CHECK_OK(mg_graph_run(ctx, g, 0, NULL, 2, r));
  CHECK(mg_tensor_numel(r[0]) == 3 && ((const float *)mg_tensor_data(r[1]))[0] == 3);
  mg_tensor_release(r[0]);
  mg_tensor_release(r[1]);
  n = 5;  /* both functions now return 5 ones: the fixed one is wrong */
  CHECK(mg_graph_run(ctx, g, 0, NULL, 2, r) == MG_ESHAPE);
  CHECK(strstr(mg_last_error(), "result 1 of the fixed one is float32 (5), but it was declared float32 (3)") != NULL);
  mg_graph_release(g);
}
