/*
 * nn.h — what the neural-network ops' inference (infer_nn.c) and kernels
 * (kernels/conv.c, pool.c, nn.c) share: the geometry of a convolution or
 * pooling window over channels-last tensors with 1, 2 or 3 spatial axes
 * (NWC, NHWC, NDHWC), computed once from shapes and attributes by the same
 * function in infer (which validates) and in the kernel (which then cannot
 * fail on it).
 *
 * Every geometry is held as 3-d (depth, height, width): an op with fewer
 * spatial axes has size-1 leading axes with window 1, stride 1 and no
 * padding, so one kernel serves conv1d, conv2d and conv3d (a unit depth
 * costs one trip of an outer loop).
 *
 * Padding follows TensorFlow: "valid" takes only windows inside the input;
 * "same" gives ceil(in / stride) outputs and pads the total shortfall, the
 * smaller half before (top/left) and the larger after; "explicit" takes
 * explicit_padding = {before, after} per spatial axis (TF's EXPLICIT).
 */
#ifndef MG_NN_H
#define MG_NN_H

#include "internal.h"

enum { MG_PAD_VALID = 0, MG_PAD_SAME = 1, MG_PAD_EXPLICIT = 2 };

/* The number of spatial axes (1, 2 or 3) of a conv/pool op's tensors. */
int mg_nn_spatial(mg_op op);

/* A convolution: input (n, id, ih, iw, ci), filter (kd, kh, kw, ci/groups,
 * co), output (n, od, oh, ow, co); pf/pt/pl are the front/top/left padding. */
typedef struct mg_conv_geom {
  int64_t n, id, ih, iw, ci, od, oh, ow, co;
  int64_t kd, kh, kw, sd, sh, sw, dd, dh, dw, pf, pt, pl, groups;
  int nsp; /* spatial axes of the op's tensors: 1, 2 or 3 */
} mg_conv_geom;

/* Attribute slots of the conv ops' shared schema tail
 * "strides padding dilation groups explicit_padding" (groups < 0: the op has
 * none). */
typedef struct mg_conv_slots {
  int strides, padding, dilation, groups, expl;
} mg_conv_slots;

/* Fills g from the input shape xs (nsp + 2 values), filter shape ws (nsp + 2) and
 * the attributes in the given slots; validates ranges and fit, naming the op.
 * `what` names the input-shape argument in messages ("x", "input_shape"). */
mg_status mg_conv_geom_init(const mg_call *c, const int64_t *xs, const int64_t *ws, const char *what,
                            mg_conv_slots k, mg_conv_geom *g);

/* conv{1,2,3}d_transpose's output spatial sizes for input x and filter w. */
mg_status mg_conv_transpose_size(const mg_call *c, const mg_tensor *x, const mg_tensor *w, int64_t out[3]);

/* A pooling window over (n, id, ih, iw, ch) giving (n, od, oh, ow, ch);
 * incl: average pooling divides by the whole window (count_include_pad). */
typedef struct mg_pool_geom {
  int64_t n, id, ih, iw, ch, od, oh, ow, kd, kh, kw, sd, sh, sw, dd, dh, dw, pf, pt, pl;
  int incl, nsp;
} mg_pool_geom;

/* From the input shape xs and the attributes ksize (slot k), strides (k+1),
 * padding (k+2), dilation (k+3), explicit_padding (k+4) and, where the op
 * has it, count_include_pad (k+5). ksize defaults to 2 per axis and strides
 * to ksize (Keras). */
mg_status mg_pool_geom_init(const mg_call *c, const int64_t *xs, int k, mg_pool_geom *g);

#endif
