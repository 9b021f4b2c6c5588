/*
 * main.c — runs every TEST registered by the tests/core files, each in order,
 * and prints "N passed, N failed". A test fails if any CHECK in it failed.
 */
#include "harness.h"
#include <stdlib.h>
#include <string.h>

#define MAX_TESTS 1024

static struct { const char *name, *file; mg_test_fn fn; } tests[MAX_TESTS];
static int ntests, failures_in_test;
static mg_ctx *ctx;

void mg_test_register(const char *name, const char *file, mg_test_fn fn) {
  if (ntests < MAX_TESTS) {
    tests[ntests].name = name;
    tests[ntests].file = file;
    tests[ntests++].fn = fn;
  }
}

void mg_test_fail(const char *file, int line, const char *expr) {
  fprintf(stderr, "  %s:%d: CHECK failed: %s\n", file, line, expr);
  failures_in_test++;
}

mg_ctx *mg_test_ctx(void) { return ctx; }

int main(int argc, char **argv) {
  const char *only = argc > 1 ? argv[1] : NULL;
  int passed = 0, failed = 0;
  ctx = mg_ctx_new();
  for (int i = 0; i < ntests; i++) {
    if (only && !strstr(tests[i].name, only)) continue;
    failures_in_test = 0;
    tests[i].fn();
    if (failures_in_test) {
      fprintf(stderr, "FAIL %s (%s)\n", tests[i].name, tests[i].file);
      failed++;
    } else {
      passed++;
    }
  }
  mg_ctx_free(ctx);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
