/*
 * harness.h — the assert harness of the embedding tests (C).
 *
 * Same shape as tests/core's: TEST(name) registers a test through a
 * constructor, CHECK records a failure and goes on, REQUIRE returns. The
 * runner is in this header (define EMBED_TEST_MAIN in one file): it runs the
 * tests whose name contains argv[1] (all without it) and prints
 * "N passed, N failed".
 */
#ifndef MG_EMBED_HARNESS_H
#define MG_EMBED_HARNESS_H

#include "moongrad.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*embed_test_fn)(void);
void embed_test_register(const char *name, embed_test_fn fn);
void embed_test_fail(const char *file, int line, const char *expr);

#define TEST(name)                                                     \
  static void test_##name(void);                                       \
  __attribute__((constructor)) static void register_##name(void) {    \
    embed_test_register(#name, test_##name);                           \
  }                                                                    \
  static void test_##name(void)

#define CHECK(cond) \
  do { if (!(cond)) embed_test_fail(__FILE__, __LINE__, #cond); } while (0)
#define REQUIRE(cond) \
  do { if (!(cond)) { embed_test_fail(__FILE__, __LINE__, #cond); return; } } while (0)
/* A runtime call that must succeed; prints the runtime's message if not. */
#define CHECK_RT(rt, call)                                                          \
  do { mg_status st_ = (call); if (st_ != MG_OK) {                                  \
       fprintf(stderr, "  status %d: %s\n", (int)st_, mg_runtime_errmsg(rt));       \
       embed_test_fail(__FILE__, __LINE__, #call); } } while (0)
#define CHECK_CONTAINS(s, sub) CHECK((s) != NULL && strstr((s), (sub)) != NULL)

#ifdef EMBED_TEST_MAIN
#define EMBED_MAX_TESTS 256
static struct { const char *name; embed_test_fn fn; } embed_tests[EMBED_MAX_TESTS];
static int embed_ntests, embed_failures;

void embed_test_register(const char *name, embed_test_fn fn) {
  if (embed_ntests < EMBED_MAX_TESTS) {
    embed_tests[embed_ntests].name = name;
    embed_tests[embed_ntests++].fn = fn;
  }
}

void embed_test_fail(const char *file, int line, const char *expr) {
  fprintf(stderr, "  %s:%d: CHECK failed: %s\n", file, line, expr);
  embed_failures++;
}

int main(int argc, char **argv) {
  int passed = 0, failed = 0;
  for (int i = 0; i < embed_ntests; i++) {
    if (argc > 1 && !strstr(embed_tests[i].name, argv[1])) continue;
    embed_failures = 0;
    embed_tests[i].fn();
    if (embed_failures) {
      fprintf(stderr, "not ok %s\n", embed_tests[i].name);
      failed++;
    } else {
      passed++;
    }
  }
  mg_thread_cache_drain();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
#endif
#endif
