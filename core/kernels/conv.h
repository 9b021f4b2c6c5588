/*
 * conv.h — the direct float32 convolution kernels (conv_direct.c) that
 * conv.c tries before its im2col + GEMM path. Each returns 0 when it does
 * not handle the case (no AVX-512, groups, width dilation, strided input
 * gradient) and the caller falls back; else 1, with *st set (MG_ENOMEM).
 * Arrays are contiguous NHWC / (kh, kw, cin, cout) float32.
 */
#ifndef MG_CONV_H
#define MG_CONV_H

#include "nn.h"

int conv_direct_forward(const mg_call *c, const mg_conv_geom *g, const float *x, const float *w, float *out,
                        mg_status *st);
int conv_direct_filter(const mg_call *c, const mg_conv_geom *g, const float *x, const float *dy, float *dw,
                       mg_status *st);
int conv_direct_input(const mg_call *c, const mg_conv_geom *g, const float *dy, const float *w, float *dx,
                      mg_status *st);

#endif
