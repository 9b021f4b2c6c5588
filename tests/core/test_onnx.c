/*
 * test_onnx.c — mg_onnx_export / mg_onnx_load / mg_onnx_load_mem from C,
 * where the index base is 0 (the Lua spec, tests/spec/onnx_spec.lua, covers
 * base 1, PyTorch's files and onnxruntime). A traced function with axes and
 * index tensors (take, argmax, sum over an axis, softmax, concat) is exported,
 * loaded back and run: the results must be the traced graph's, exactly. Also:
 * the errors for an op with no ONNX form, a file that does not parse, and an
 * unsupported operator.
 */
#include "harness.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static mg_tensor *pool[64];
static int npool;

static mg_tensor *keep(mg_tensor *t) {
  if (t && npool < 64) pool[npool++] = t;
  return t;
}

static void drain(void) {
  while (npool) mg_tensor_release(pool[--npool]);
}

static mg_tensor *ap(mg_op op, int nin, mg_tensor **in, const char *attr, int64_t v) {
  mg_attrs a = {0};
  if (attr) {
    int k = mg_op_attr_index(op, attr);
    a.set = 1u << k;
    a.v[k].n = 1;
    a.v[k].i[0] = v;
  }
  mg_tensor *r = NULL;
  if (mg_apply(mg_test_ctx(), op, in, nin, attr ? &a : NULL, &r)) fprintf(stderr, "  %s\n", mg_last_error());
  return keep(r);
}

/* f(x, idx) = (take(x, idx, axis 1), argmax(x, axis 1), sum(x, axis 0), softmax(x @ w), concat(x, x, axis 1)) */
static mg_graph *trace_f(void) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL;
  if (mg_trace_begin(ctx, "f", &g)) return NULL;
  int64_t xs[2] = {3, 4}, is[1] = {2}, ws[2] = {4, 2};
  float wv[8] = {0.5f, -1, 0.25f, 2, -0.75f, 1, 1.5f, -0.5f};
  mg_tensor *x = NULL, *idx = NULL, *w = NULL;
  mg_trace_placeholder(ctx, MG_FLOAT32, 2, xs, &x);
  mg_trace_placeholder(ctx, MG_INT64, 1, is, &idx);
  mg_tensor_from_data(MG_FLOAT32, 2, ws, wv, &w);
  keep(x), keep(idx), keep(w);
  mg_tensor *in2[2] = {x, idx}, *xw[2] = {x, w}, *xx[2] = {x, x};
  mg_tensor *outs[5];
  outs[0] = ap(MG_OP_TAKE, 2, in2, "axis", 1);
  outs[1] = ap(MG_OP_ARGMAX, 1, &x, "axis", 1);
  outs[2] = ap(MG_OP_SUM, 1, &x, "axis", 0);
  mg_tensor *m = ap(MG_OP_MATMUL, 2, xw, NULL, 0);
  outs[3] = ap(MG_OP_SOFTMAX, 1, &m, "axis", -1);
  outs[4] = ap(MG_OP_CONCAT, 2, xx, "axis", 1);
  if (mg_trace_end(ctx, g, 5, outs)) {
    mg_graph_release(g);
    return NULL;
  }
  return g;
}

static int same(mg_tensor *a, mg_tensor *b) {
  if (mg_tensor_dtype(a) != mg_tensor_dtype(b) || mg_tensor_numel(a) != mg_tensor_numel(b)) return 0;
  for (int64_t i = 0; i < mg_tensor_numel(a); i++)
    if (mg_tensor_get_f64(a, i) != mg_tensor_get_f64(b, i)) return 0;
  return 1;
}

TEST(onnx_round_trip_base0) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = trace_f();
  REQUIRE(g);
  char path[] = "/tmp/mg_onnx_testXXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  CHECK_OK(mg_onnx_export(ctx, g, path, 17));
  mg_graph *back = NULL;
  CHECK_OK(mg_onnx_load(ctx, path, &back));
  REQUIRE(back && mg_graph_ninputs(back) == 2 && mg_graph_noutputs(back) == 5);
  float xv[12] = {1, 5, 2, 0, 7, 3, 9, 4, 0, 8, 6, 2};
  int64_t iv[2] = {3, 0}, xs[2] = {3, 4}, is[1] = {2};
  mg_tensor *in[2] = {NULL, NULL}, *a[5] = {0}, *b[5] = {0};
  mg_tensor_from_data(MG_FLOAT32, 2, xs, xv, &in[0]);
  mg_tensor_from_data(MG_INT64, 1, is, iv, &in[1]);
  keep(in[0]), keep(in[1]);
  CHECK_OK(mg_graph_run(ctx, g, 2, in, 5, a));
  CHECK_OK(mg_graph_run(ctx, back, 2, in, 5, b));
  for (int k = 0; k < 5; k++) {
    CHECK(same(a[k], b[k]));
    keep(a[k]), keep(b[k]);
  }
  CHECK(mg_tensor_get_i64(b[1], 0) == 1 && mg_tensor_get_i64(b[1], 2) == 1);  /* 0-based argmax */
  CHECK(mg_tensor_get_f64(b[0], 0) == 0 && mg_tensor_get_f64(b[0], 1) == 1);   /* take: x[0][3], x[0][0] */
  /* the same bytes from memory */
  FILE *f = fopen(path, "rb");
  REQUIRE(f);
  static unsigned char buf[1 << 16];
  size_t len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  mg_graph *mem = NULL;
  CHECK_OK(mg_onnx_load_mem(ctx, buf, len, &mem));
  CHECK(mem && mg_graph_noutputs(mem) == 5);
  mg_graph_release(mem);
  /* a cut-short file does not parse */
  mem = NULL;
  CHECK(mg_onnx_load_mem(ctx, buf, len / 2, &mem) != MG_OK && !mem);
  CHECK(strstr(mg_last_error(), "onnx load") != NULL);
  close(fd);
  remove(path);
  mg_graph_release(back);
  mg_graph_release(g);
  drain();
}

TEST(onnx_export_names_ops_without_onnx_form) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL;
  CHECK_OK(mg_trace_begin(ctx, "inv", &g));
  int64_t s[2] = {2, 2};
  mg_tensor *x = NULL;
  mg_trace_placeholder(ctx, MG_FLOAT32, 2, s, &x);
  keep(x);
  mg_tensor *y = ap(MG_OP_LINALG_INV, 1, &x, NULL, 0);
  mg_tensor *z = ap(MG_OP_SORT, 1, &y, NULL, 0);
  CHECK_OK(mg_trace_end(ctx, g, 1, &z));
  CHECK(mg_onnx_export(ctx, g, "/tmp/mg_onnx_never_written.onnx", 17) == MG_EARG);
  CHECK(strstr(mg_last_error(), "linalg_inv") && strstr(mg_last_error(), "sort"));
  CHECK(mg_onnx_export(ctx, g, "/tmp/x.onnx", 9) == MG_EARG);  /* opset out of range */
  mg_graph_release(g);
  drain();
}

TEST(onnx_load_errors) {
  mg_ctx *ctx = mg_test_ctx();
  mg_graph *g = NULL;
  CHECK(mg_onnx_load(ctx, "/nonexistent/model.onnx", &g) == MG_EIO && !g);
  const unsigned char junk[] = {0xff, 0xff, 0xff, 0xff, 0x01};
  CHECK(mg_onnx_load_mem(ctx, junk, sizeof junk, &g) == MG_EIO && !g);
  CHECK(mg_onnx_load_mem(ctx, junk, 0, &g) == MG_EIO && !g);   /* parses, but no graph */
}
