/* nn_stub.c — temporary stubs while the issue-6 ops are written. */
#include "internal.h"
mg_status k_conv2d(const mg_call *c, mg_tensor *out) { (void)out; return mg_seterror(MG_ESTATE, "%s: not implemented yet", c->info->name); }
mg_status k_conv2d_backprop_input(const mg_call *c, mg_tensor *out) { (void)out; return mg_seterror(MG_ESTATE, "%s: not implemented yet", c->info->name); }
mg_status k_conv2d_backprop_filter(const mg_call *c, mg_tensor *out) { (void)out; return mg_seterror(MG_ESTATE, "%s: not implemented yet", c->info->name); }
mg_status k_conv2d_transpose(const mg_call *c, mg_tensor *out) { (void)out; return mg_seterror(MG_ESTATE, "%s: not implemented yet", c->info->name); }
mg_status k_max_pool2d(const mg_call *c, mg_tensor *out) { (void)out; return mg_seterror(MG_ESTATE, "%s: not implemented yet", c->info->name); }
mg_status k_max_pool2d_grad(const mg_call *c, mg_tensor *out) { (void)out; return mg_seterror(MG_ESTATE, "%s: not implemented yet", c->info->name); }
mg_status k_max_pool2d_grad_grad(const mg_call *c, mg_tensor *out) { (void)out; return mg_seterror(MG_ESTATE, "%s: not implemented yet", c->info->name); }
mg_status k_avg_pool2d(const mg_call *c, mg_tensor *out) { (void)out; return mg_seterror(MG_ESTATE, "%s: not implemented yet", c->info->name); }
mg_status k_avg_pool2d_grad(const mg_call *c, mg_tensor *out) { (void)out; return mg_seterror(MG_ESTATE, "%s: not implemented yet", c->info->name); }
mg_status k_batch_norm(const mg_call *c, mg_tensor *out) { (void)out; return mg_seterror(MG_ESTATE, "%s: not implemented yet", c->info->name); }
mg_status k_dropout(const mg_call *c, mg_tensor *out) { (void)out; return mg_seterror(MG_ESTATE, "%s: not implemented yet", c->info->name); }
mg_status k_take_grad(const mg_call *c, mg_tensor *out) { (void)out; return mg_seterror(MG_ESTATE, "%s: not implemented yet", c->info->name); }
mg_status k_softmax_xent(const mg_call *c, mg_tensor *out) { (void)out; return mg_seterror(MG_ESTATE, "%s: not implemented yet", c->info->name); }
mg_status k_softmax_xent_grad(const mg_call *c, mg_tensor *out) { (void)out; return mg_seterror(MG_ESTATE, "%s: not implemented yet", c->info->name); }
mg_status k_sparse_softmax_xent(const mg_call *c, mg_tensor *out) { (void)out; return mg_seterror(MG_ESTATE, "%s: not implemented yet", c->info->name); }
mg_status k_sparse_softmax_xent_grad(const mg_call *c, mg_tensor *out) { (void)out; return mg_seterror(MG_ESTATE, "%s: not implemented yet", c->info->name); }
mg_status grad_conv2d(const mg_grad_call *g) { return mg_seterror(MG_ESTATE, "%s: no gradient yet", g->info->name); }
mg_status grad_conv2d_backprop_input(const mg_grad_call *g) { return mg_seterror(MG_ESTATE, "%s: no gradient yet", g->info->name); }
mg_status grad_conv2d_backprop_filter(const mg_grad_call *g) { return mg_seterror(MG_ESTATE, "%s: no gradient yet", g->info->name); }
mg_status grad_conv2d_transpose(const mg_grad_call *g) { return mg_seterror(MG_ESTATE, "%s: no gradient yet", g->info->name); }
mg_status grad_max_pool2d(const mg_grad_call *g) { return mg_seterror(MG_ESTATE, "%s: no gradient yet", g->info->name); }
mg_status grad_max_pool2d_grad(const mg_grad_call *g) { return mg_seterror(MG_ESTATE, "%s: no gradient yet", g->info->name); }
mg_status grad_max_pool2d_grad_grad(const mg_grad_call *g) { return mg_seterror(MG_ESTATE, "%s: no gradient yet", g->info->name); }
mg_status grad_avg_pool2d(const mg_grad_call *g) { return mg_seterror(MG_ESTATE, "%s: no gradient yet", g->info->name); }
mg_status grad_avg_pool2d_grad(const mg_grad_call *g) { return mg_seterror(MG_ESTATE, "%s: no gradient yet", g->info->name); }
mg_status grad_batch_norm(const mg_grad_call *g) { return mg_seterror(MG_ESTATE, "%s: no gradient yet", g->info->name); }
mg_status grad_dropout(const mg_grad_call *g) { return mg_seterror(MG_ESTATE, "%s: no gradient yet", g->info->name); }
mg_status grad_take_grad(const mg_grad_call *g) { return mg_seterror(MG_ESTATE, "%s: no gradient yet", g->info->name); }
mg_status grad_softmax_xent(const mg_grad_call *g) { return mg_seterror(MG_ESTATE, "%s: no gradient yet", g->info->name); }
mg_status grad_softmax_xent_grad(const mg_grad_call *g) { return mg_seterror(MG_ESTATE, "%s: no gradient yet", g->info->name); }
mg_status grad_sparse_softmax_xent(const mg_grad_call *g) { return mg_seterror(MG_ESTATE, "%s: no gradient yet", g->info->name); }
mg_status grad_sparse_softmax_xent_grad(const mg_grad_call *g) { return mg_seterror(MG_ESTATE, "%s: no gradient yet", g->info->name); }
