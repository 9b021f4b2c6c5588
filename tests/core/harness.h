/*
 * harness.h — a small assert harness for the C unit tests of core/.
 *
 * TEST(name) { ... } defines a test and registers it (a constructor adds it
 * to a list), so a test file needs nothing else; main.c runs them all and
 * prints "N passed, N failed". CHECK records a failure and keeps going;
 * REQUIRE returns from the test.
 */
#ifndef MG_TEST_HARNESS_H
#define MG_TEST_HARNESS_H

#include "mg.h"
#include <math.h>
#include <stdio.h>

typedef void (*mg_test_fn)(void);
void mg_test_register(const char *name, const char *file, mg_test_fn fn);
void mg_test_fail(const char *file, int line, const char *expr);
mg_ctx *mg_test_ctx(void);   /* a context shared by the tests (index base 0) */

#define TEST(name)                                                          \
  static void test_##name(void);                                            \
  __attribute__((constructor)) static void register_##name(void) {         \
    mg_test_register(#name, __FILE__, test_##name);                         \
  }                                                                         \
  static void test_##name(void)

#define CHECK(cond) \
  do { if (!(cond)) mg_test_fail(__FILE__, __LINE__, #cond); } while (0)
#define REQUIRE(cond) \
  do { if (!(cond)) { mg_test_fail(__FILE__, __LINE__, #cond); return; } } while (0)
#define CHECK_NEAR(a, b, tol) CHECK(fabs((double)(a) - (double)(b)) <= (tol))
/* An mg call that must succeed; prints mg_last_error() when it does not. */
#define CHECK_OK(call) \
  do { mg_status st_ = (call); if (st_ != MG_OK) { fprintf(stderr, "  %s\n", mg_last_error()); \
       mg_test_fail(__FILE__, __LINE__, #call); return; } } while (0)

#endif
