/*
 * harness.h — the assert harness of the embedding tests (C).
 *
 * Same shape as tests/core's: TEST(name) registers a test through a
 * constructor, CHECK records a failure and goes on, REQUIRE returns. The
 * runner is in this header (define EMBED_TEST_MAIN in one file): it runs the
 * tests whose name contains argv[1] (all without it) and prints
 * "N passed, N failed".
 *
 * HOSTILE_TEST(name, seconds) runs its body in a child process (fork, then
 * exec of this program for that one test, so the child starts with a fresh
 * OpenMP runtime) under a watchdog: a hang past `seconds` is killed and
 * fails the test, as does a crash, instead of stalling the suite.
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
void embed_test_isolated(const char *name, embed_test_fn body, double seconds);
double embed_test_now(void);

#define HOSTILE_TEST(name, seconds)                                   \
  static void hostile_##name(void);                                   \
  TEST(name) { embed_test_isolated(#name, hostile_##name, seconds); } \
  static void hostile_##name(void)

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
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EMBED_MAX_TESTS 256
static struct { const char *name; embed_test_fn fn; } embed_tests[EMBED_MAX_TESTS];
static int embed_ntests, embed_failures;

double embed_test_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void embed_test_isolated(const char *name, embed_test_fn body, double seconds) {
  const char *child = getenv("MG_EMBED_CHILD");
  if (child && strcmp(child, name) == 0) {   /* we are the child: run it */
    body();
    return;
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    embed_test_fail(__FILE__, __LINE__, "fork");
    return;
  }
  if (pid == 0) {
    setenv("MG_EMBED_CHILD", name, 1);
    char *argv[] = {(char *)"embed_tests", (char *)name, NULL};
    execv("/proc/self/exe", argv);
    _exit(127);
  }
  double deadline = embed_test_now() + seconds;
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (embed_test_now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      fprintf(stderr, "  %s: killed by the watchdog after %g s (a hang)\n", name, seconds);
      embed_test_fail(__FILE__, __LINE__, "the test finished before its watchdog");
      return;
    }
    usleep(10000);
  }
  if (WIFSIGNALED(status)) {
    fprintf(stderr, "  %s: the child died of signal %d\n", name, WTERMSIG(status));
    embed_test_fail(__FILE__, __LINE__, "the child did not crash");
  } else if (WEXITSTATUS(status) != 0) {
    embed_test_fail(__FILE__, __LINE__, "the child's checks passed");
  }
}

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
  const char *child = getenv("MG_EMBED_CHILD");   /* a HOSTILE_TEST's child: that test alone */
  for (int i = 0; i < embed_ntests; i++) {
    if (child && strcmp(embed_tests[i].name, child) != 0) continue;
    if (argc > 1 && !strstr(embed_tests[i].name, argv[1])) continue;
    embed_failures = 0;
    embed_tests[i].fn();
    if (embed_failures) {
      if (!child) fprintf(stderr, "not ok %s\n", embed_tests[i].name);   /* a child's parent says it */
      failed++;
    } else {
      passed++;
    }
  }
  mg_thread_cache_drain();
  if (child) return failed ? 1 : 0;   /* the parent counts this test */
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
#endif
#endif
