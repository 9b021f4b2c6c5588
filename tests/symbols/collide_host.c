/*
 * collide_host.c — a host whose own functions have the names of moongrad's
 * internals (map_get, k_add, infer_matmul, grad_add, mgL_error, ...). It must
 * link beside libmoongrad statically (no duplicate symbols) and dynamically
 * (its functions must not replace the library's: before, `mg.ones{2,2} + 1`
 * then ran the host's k_add and failed with an empty message), and the engine
 * must compute right. Any of the host's functions that the library calls
 * marks `hijacked`, and the run fails.
 */
#include <moongrad.h>
#include <stdio.h>
#include <string.h>

static int hijacked;

/* The host's own functions, with moongrad's internal names. */
void *map_get(void *m, const void *k) { (void)m; (void)k; hijacked = 1; return NULL; }
int k_add(const void *c, void *out) { (void)c; (void)out; hijacked = 1; return 1; }
int infer_matmul(const void *c, void *out) { (void)c; (void)out; hijacked = 1; return 1; }
int infer_bcast(const void *c, void *out) { (void)c; (void)out; hijacked = 1; return 1; }
int grad_add(const void *g) { (void)g; hijacked = 1; return 1; }
int mgL_error(void *L, const char *fmt, ...) { (void)L; (void)fmt; hijacked = 1; return 0; }
void *mgL_checktensor(void *L, int idx) { (void)L; (void)idx; hijacked = 1; return NULL; }
int embed_subset(void) { hijacked = 1; return 0; }

int main(void) {
  mg_runtime *rt = mg_runtime_new(NULL);
  if (!rt) {
    printf("not ok - mg_runtime_new: %s\n", mg_last_error());
    return 1;
  }
  mg_value r[1];
  const char *code =
      "local y = mg.ones{2, 2} + 1\n"
      "local z = mg.matmul(y, y):sum() + mg.func(function(a) return (a * a):sum() end)(y)\n"
      "local t = {} t[y] = 1\n"
      "return z:item()";
  if (mg_eval(rt, code, r, 1)) {
    printf("not ok - the script failed: %s\n", mg_runtime_errmsg(rt));
    return 1;
  }
  double v = mg_value_number(&r[0], NULL);
  mg_runtime_free(rt);
  if (v != 48.0 || hijacked) {
    printf("not ok - result %g (want 48), host functions called: %d\n", v, hijacked);
    return 1;
  }
  puts("ok - the engine ran its own functions beside the host's");
  return 0;
}
