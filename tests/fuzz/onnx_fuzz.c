/*
 * onnx_fuzz.c — libFuzzer target for the ONNX loader (core/onnx_import.c):
 * any byte string must load into a graph or fail with a message, never
 * crash, read out of bounds (ASan), overflow (UBSan) or leak. A graph that
 * loads is also run once on zeros (its unknown sizes as 1) under a budget:
 * a model may legitimately loop forever, and stopping it is the host's
 * limits' job, not the loader's. Built and run by `make fuzz-onnx`
 * (FUZZ_TIME seconds, 60 by default), seeded from tests/fixtures/onnx/.
 */
#include "mg.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static mg_ctx *ctx;
  static mg_limits *lim;
  if (!ctx) {
    mg_init();
    ctx = mg_ctx_new();
    mg_ctx_set_index_base(ctx, 1);  /* as from Lua: the axis and index conversions run */
    lim = mg_limits_new();
  }
  mg_graph *g = NULL;
  if (mg_onnx_load_mem(ctx, data, size, &g) != MG_OK) {
    if (!mg_last_error()[0]) __builtin_trap();  /* an error always says why */
    return 0;
  }
  int nin = mg_graph_ninputs(g), nout = mg_graph_noutputs(g), ok = nin <= 8 && nout <= 16;
  mg_tensor *in[8] = {0}, *out[16] = {0};
  for (int i = 0; ok && i < nin; i++) {
    mg_dtype dt;
    int nd;
    int64_t shape[MG_MAX_DIMS], n = 1;
    mg_graph_input_meta(g, i, &dt, &nd, shape);
    for (int d = 0; d < nd; d++) {
      if (shape[d] < 0 || shape[d] > 1000) shape[d] = 1;
      n *= shape[d];
    }
    ok = n <= 100000 && mg_tensor_empty(dt, nd, shape, &in[i]) == MG_OK;
    if (ok) memset(mg_tensor_data(in[i]), 0, mg_tensor_nbytes(in[i]));
  }
  if (ok) {
    mg_limits_start(lim, 2000000, 1.0);
    mg_limits_set_memory(lim, (size_t)512 << 20, NULL, NULL);
    mg_limits *prev = mg_limits_enter(lim);
    int ran = mg_graph_run(ctx, g, nin, in, nout, out) == MG_OK;
    mg_limits_enter(prev);
    for (int k = 0; ran && k < nout; k++) mg_tensor_release(out[k]);
  }
  for (int i = 0; i < nin; i++) mg_tensor_release(in[i]);
  mg_graph_release(g);
  return 0;
}
