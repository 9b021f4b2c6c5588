/*
 * policy_graph.c — a game that runs a trained policy network with libmoongrad
 * alone: no Lua library is linked, no script runs. The network was written by
 * mg.export (here tests/fixtures/graphs/mlp.mgg: an MLP from 8 observations
 * to 4 action logits, exported from Lua by tests/fixtures/make_graph_files.lua);
 * the host loads it once with mg_graph_load and, every frame, writes the
 * observation into a host buffer and runs the graph into another
 * (mg_graph_run_into: after the first frame it allocates nothing).
 *
 *   build/examples/policy_graph [file.mgg] [--quick]
 *
 * The "game" is a toy: an agent on a line whose 8 observations are sines of
 * its position; the action (argmax of the logits) moves it. It prints the
 * graph's signature, then the first frames' actions and a checksum.
 */
#include "mg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(const char *what) {
  fprintf(stderr, "policy_graph: %s: %s\n", what, mg_last_error());
  return 1;
}

int main(int argc, char **argv) {
  const char *path = "tests/fixtures/graphs/mlp.mgg";
  int frames = 1000;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) frames = 50;
    else path = argv[i];
  }
  if (getenv("MG_QUICK")) frames = 50;

  mg_ctx *ctx = mg_ctx_new();
  if (!ctx) return die("mg_ctx_new");
  mg_graph *policy;
  if (mg_graph_load(ctx, path, &policy)) return die("mg_graph_load");

  /* the signature: one float32 input (-1, 8), one float32 output (-1, 4) */
  mg_dtype dt;
  int nd;
  int64_t in_shape[MG_MAX_DIMS], out_shape[MG_MAX_DIMS];
  mg_graph_input_meta(policy, 0, &dt, &nd, in_shape);
  if (mg_graph_ninputs(policy) != 1 || dt != MG_FLOAT32 || nd != 2 || in_shape[1] != 8) {
    fprintf(stderr, "policy_graph: %s does not take float32 (-1, 8) observations\n", path);
    return 1;
  }
  mg_graph_output_meta(policy, 0, &dt, &nd, out_shape);
  printf("policy_graph: %s: %s (-1, 8) -> %s (-1, %lld)\n", path, mg_graph_input_name(policy, 0),
         mg_graph_output_name(policy, 0), (long long)out_shape[1]);

  /* host buffers, borrowed by tensors once: the graph reads and writes them in place */
  float obs[8], logits[16];
  int64_t os[2] = {1, 8}, ls[2] = {1, out_shape[1]};
  if (out_shape[1] < 1 || out_shape[1] > 16) return die("unexpected output size");
  mg_tensor *obs_t, *logits_t;
  if (mg_tensor_borrow(MG_FLOAT32, 2, os, obs, NULL, NULL, &obs_t) ||
      mg_tensor_borrow(MG_FLOAT32, 2, ls, logits, NULL, NULL, &logits_t))
    return die("mg_tensor_borrow");

  double x = 0.3, checksum = 0;
  for (int f = 0; f < frames; f++) {
    for (int k = 0; k < 8; k++) obs[k] = (float)sin(x * (k + 1));
    if (mg_graph_run_into(ctx, policy, 1, &obs_t, 1, &logits_t)) return die("mg_graph_run_into");
    int best = 0;
    for (int k = 1; k < ls[1]; k++)
      if (logits[k] > logits[best]) best = k;
    x += (best - 1.5) * 0.05;  /* the action moves the agent */
    checksum += logits[best];
    if (f < 8) printf("frame %d: action %d (logit %.4f)\n", f, best, logits[best]);
  }
  printf("policy_graph: %d frames, final position %.4f, checksum %.6f\n", frames, x, checksum);
  mg_tensor_release(obs_t);
  mg_tensor_release(logits_t);
  mg_graph_free(policy);
  mg_ctx_free(ctx);
  return 0;
}
