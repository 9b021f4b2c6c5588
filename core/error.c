/*
 * error.c — the thread-local error message behind mg_last_error().
 *
 * The engine reports failure by returning an mg_status; the words go here so
 * the caller (the Lua binding, the FFI, a C host) can raise or print them.
 */
#include "internal.h"
#include <stdarg.h>
#include <stdio.h>

static _Thread_local char error_buf[1024];

const char *mg_last_error(void) { return error_buf; }

mg_status mg_seterror(mg_status st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(error_buf, sizeof error_buf, fmt, ap);
  va_end(ap);
  return st;
}

const char *mg_status_name(mg_status st) {
  static const char *const names[] = {"ok", "bad argument", "shape error", "dtype error",
                                      "index error", "out of memory", "state error", "i/o error",
                                      "script error", "limit reached"};
  return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "unknown error";
}

char *mg_shape_str(int ndim, const int64_t *shape, char *buf, size_t cap) {
  size_t n = 0;
  n += (size_t)snprintf(buf + n, cap - n, "(");
  for (int i = 0; i < ndim && n < cap; i++)
    n += (size_t)snprintf(buf + n, cap - n, i ? ",%lld" : "%lld", (long long)shape[i]);
  if (n < cap) snprintf(buf + n, cap - n, ")");
  return buf;
}
