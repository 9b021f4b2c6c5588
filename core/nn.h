/*
 * nn.h — what the neural-network ops' inference (infer_nn.c) and kernels
 * (kernels/conv.c, pool.c, nn.c) share: the geometry of a 2-d convolution or
 * pooling window over NHWC tensors, computed once from shapes and attributes
 * by the same function in infer (which validates) and in the kernel (which
 * then cannot fail on it).
 *
 * Padding follows TensorFlow: "valid" takes only windows inside the input;
 * "same" gives ceil(in / stride) outputs and pads the total shortfall, the
 * smaller half before (top/left) and the larger after.
 */
#ifndef MG_NN_H
#define MG_NN_H

#include "internal.h"

enum { MG_PAD_VALID = 0, MG_PAD_SAME = 1 };

/* A convolution: input (n, ih, iw, ci), filter (kh, kw, ci/groups, co),
 * output (n, oh, ow, co); pt/pl are the top/left padding. */
typedef struct mg_conv_geom {
  int64_t n, ih, iw, ci, oh, ow, co;
  int64_t kh, kw, sh, sw, dh, dw, pt, pl, groups;
} mg_conv_geom;

/* Attribute slots of the conv ops' shared schema tail
 * "strides padding dilation groups" (groups < 0: the op has none). */
typedef struct mg_conv_slots {
  int strides, padding, dilation, groups;
} mg_conv_slots;

/* Fills g from the input shape xs (4 values), filter shape ws (4 values) and
 * the attributes in the given slots; validates ranges and fit, naming the op.
 * `what` names the input-shape argument in messages ("x", "input_shape"). */
mg_status mg_conv_geom_init(const mg_call *c, const int64_t *xs, const int64_t *ws, const char *what,
                            mg_conv_slots k, mg_conv_geom *g);

/* conv2d_transpose's output height and width for input x (4-d) and filter w. */
mg_status mg_conv_transpose_size(const mg_call *c, const mg_tensor *x, const mg_tensor *w, int64_t out[2]);

/* A pooling window over (n, ih, iw, ch) giving (n, oh, ow, ch). */
typedef struct mg_pool_geom {
  int64_t n, ih, iw, ch, oh, ow, kh, kw, sh, sw, pt, pl;
} mg_pool_geom;

/* From the input shape xs and the attributes ksize (slot k), strides (k+1),
 * padding (k+2). ksize defaults to 2x2 and strides to ksize (Keras). */
mg_status mg_pool_geom_init(const mg_call *c, const int64_t *xs, int k, mg_pool_geom *g);

#endif
