/*
 * test_prefetch.c — the prefetch worker (core/prefetch.c) through mg.h:
 * batches gathered in order with and without drop_remainder, a full-buffer
 * shuffle that is a permutation and the same for the same seed, reshuffles
 * across repeats, plans refused with a message, and handles freed while the
 * worker is blocked on a full ring or never read (no hang, no leak under
 * ASan). That the elements equal the Lua iterators' is checked in
 * tests/spec/data_spec.lua.
 */
#include "harness.h"

#include <string.h>

static mg_tensor *rows_tensor(int64_t n) {  /* n rows of 2 int32: {10*i, 10*i+1} */
  int64_t shape[2] = {n, 2};
  int32_t data[2 * 64];
  for (int64_t i = 0; i < n; i++) data[2 * i] = (int32_t)(10 * i), data[2 * i + 1] = (int32_t)(10 * i + 1);
  mg_tensor *t = NULL;
  mg_tensor_from_data(MG_INT32, 2, shape, data, &t);
  return t;
}

/* Reads every element: the first column of each row, in order, into out; returns the row count. */
static int drain(mg_prefetch *p, int32_t *out, int cap, int *nelems, int64_t *sizes) {
  int n = 0, got = 1;
  *nelems = 0;
  while (got) {
    mg_tensor *t[1];
    if (mg_prefetch_next(p, t, &got) != MG_OK || !got) break;
    const int64_t *sh = mg_tensor_shape(t[0]);
    int64_t rows = mg_tensor_ndim(t[0]) == 2 ? sh[0] : 1;
    const int32_t *d = mg_tensor_data(t[0]);
    for (int64_t r = 0; r < rows && n < cap; r++) out[n++] = d[2 * r];
    sizes[(*nelems)++] = rows;
    mg_tensor_release(t[0]);
  }
  return n;
}

TEST(prefetch_batches_in_order) {
  mg_tensor *x = rows_tensor(10);
  REQUIRE(x);
  mg_pf_stage st[1] = {{MG_PF_BATCH, 4, 0, 0, 0}};
  mg_prefetch *p;
  CHECK_OK(mg_prefetch_new(1, &x, 1, st, 2, &p));
  int32_t v[32];
  int64_t sizes[8];
  int ne, n = drain(p, v, 32, &ne, sizes);
  CHECK(n == 10 && ne == 3 && sizes[0] == 4 && sizes[2] == 2);
  for (int i = 0; i < n; i++) CHECK(v[i] == 10 * i);
  mg_prefetch_free(p);
  st[0].flag = 1;  /* drop_remainder */
  CHECK_OK(mg_prefetch_new(1, &x, 1, st, 1, &p));
  n = drain(p, v, 32, &ne, sizes);
  CHECK(n == 8 && ne == 2);
  mg_prefetch_free(p);
  mg_tensor_release(x);
}

TEST(prefetch_shuffle_is_a_seeded_permutation) {
  mg_tensor *x = rows_tensor(20);
  REQUIRE(x);
  mg_pf_stage st[2] = {{MG_PF_SHUFFLE, 20, 42, 0, 1}, {MG_PF_REPEAT, 2, 0, 0, 0}};
  int32_t a[64], b[64];
  int64_t sizes[64];
  int ne;
  mg_prefetch *p;
  CHECK_OK(mg_prefetch_new(1, &x, 2, st, 3, &p));
  int64_t ep[MG_PF_MAX_SHUFFLES];
  CHECK(mg_prefetch_epochs(p, ep) == 1 && ep[0] == 1);  /* the first iterator is open */
  CHECK(drain(p, a, 64, &ne, sizes) == 40);
  CHECK(mg_prefetch_epochs(p, ep) == 1 && ep[0] == 2);  /* reopened once by the repeat */
  mg_prefetch_free(p);
  CHECK_OK(mg_prefetch_new(1, &x, 2, st, 1, &p));
  CHECK(drain(p, b, 64, &ne, sizes) == 40);
  mg_prefetch_free(p);
  CHECK(memcmp(a, b, sizeof(int32_t) * 40) == 0);    /* same seed, same order */
  CHECK(memcmp(a, a + 20, sizeof(int32_t) * 20) != 0);  /* the second pass reshuffled */
  for (int pass = 0; pass < 2; pass++) {
    int seen[20] = {0}, moved = 0;
    for (int i = 0; i < 20; i++) {
      int r = a[pass * 20 + i] / 10;
      CHECK(r >= 0 && r < 20);
      if (r >= 0 && r < 20) seen[r]++;
      moved += r != i;
    }
    for (int i = 0; i < 20; i++) CHECK(seen[i] == 1);
    CHECK(moved > 0);
  }
  mg_pf_stage one[1] = {{MG_PF_SHUFFLE, 1, 7, 0, 1}};  /* a buffer of 1 keeps the order */
  CHECK_OK(mg_prefetch_new(1, &x, 1, one, 2, &p));
  CHECK(drain(p, a, 64, &ne, sizes) == 20);
  for (int i = 0; i < 20; i++) CHECK(a[i] == 10 * i);
  mg_prefetch_free(p);
  mg_tensor_release(x);
}

TEST(prefetch_refuses_bad_plans) {
  mg_tensor *x = rows_tensor(6), *y = rows_tensor(5), *xt = NULL;
  REQUIRE(x && y);
  mg_prefetch *p = NULL;
  mg_pf_stage after[2] = {{MG_PF_BATCH, 2, 0, 0, 0}, {MG_PF_SHUFFLE, 4, 1, 0, 1}};
  CHECK(mg_prefetch_new(1, &x, 2, after, 2, &p) == MG_EARG && strstr(mg_last_error(), "after the batch"));
  mg_pf_stage two[2] = {{MG_PF_BATCH, 2, 0, 0, 0}, {MG_PF_BATCH, 2, 0, 0, 0}};
  CHECK(mg_prefetch_new(1, &x, 2, two, 2, &p) == MG_EARG && strstr(mg_last_error(), "second batch"));
  CHECK(mg_prefetch_new(1, &x, 0, NULL, 0, &p) == MG_EARG && strstr(mg_last_error(), "at least 1"));
  mg_tensor *xy[2] = {x, y};
  CHECK(mg_prefetch_new(2, xy, 0, NULL, 1, &p) == MG_ESHAPE && strstr(mg_last_error(), "5 rows"));
  mg_attrs a = {.set = 1u};
  a.v[0].n = 2, a.v[0].i[0] = 1, a.v[0].i[1] = 0;
  CHECK_OK(mg_apply(mg_test_ctx(), MG_OP_PERMUTE, &x, 1, &a, &xt));
  CHECK(mg_prefetch_new(1, &xt, 0, NULL, 1, &p) == MG_EARG && strstr(mg_last_error(), "contiguous"));
  CHECK(p == NULL);
  mg_tensor_release(xt);
  mg_tensor_release(x);
  mg_tensor_release(y);
}

TEST(prefetch_free_while_the_worker_waits) {
  mg_tensor *x = rows_tensor(8);
  REQUIRE(x);
  mg_pf_stage st[3] = {{MG_PF_SHUFFLE, 8, 3, 0, 1}, {MG_PF_REPEAT, -1, 0, 0, 0}, {MG_PF_BATCH, 3, 0, 0, 0}};
  mg_prefetch *p;
  CHECK_OK(mg_prefetch_new(1, &x, 3, st, 2, &p));  /* endless: the ring fills and the worker blocks */
  mg_tensor *t[1];
  int got;
  CHECK_OK(mg_prefetch_next(p, t, &got));
  CHECK(got && mg_tensor_shape(t[0])[0] == 3);
  mg_prefetch_free(p);    /* joins the blocked worker, frees the ring */
  mg_tensor_release(t[0]);  /* a handed-out batch outlives its prefetcher */
  CHECK_OK(mg_prefetch_new(1, &x, 3, st, 4, &p));
  mg_prefetch_free(p);    /* never read */
  mg_prefetch_free(NULL);
  mg_tensor_release(x);
}
