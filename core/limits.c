/*
 * limits.c — the limits of a host call: a deadline, an instruction
 * allowance, an interrupt flag and a memory account (mg_limits in mg.h).
 *
 * The engine never calls Lua, so the embedding's budgets reach it through an
 * mg_limits object made current on the calling thread (mg_limits_enter)
 * around each call into a runtime, and the REPL makes its own current around
 * each chunk so that Ctrl-C can stop a staged graph. The engine checks it
 * where work can go on for long: before each kernel (an eager loop of large
 * ops), at every while-loop iteration of a graph (which also charges the
 * body's nodes as instructions), and between the chunks of long kernels
 * (mg_iter, matmul panels, reductions, convolutions). A kernel that stops
 * early has written a partial result, so the one place that runs kernels
 * (mg_kernel_run) turns a stop into an error: no partial result is ever
 * seen.
 *
 * Polling must be cheap: an atomic load of the stop reason, of the interrupt
 * flag, and, with a deadline, the coarse monotonic clock (a vDSO read of a
 * few nanoseconds with 1-4 ms resolution, well below the 50 ms overshoot we
 * aim at). mg_limits_interrupt only stores to an atomic, so it is safe from
 * another thread and from a signal handler.
 *
 * The memory account counts the bytes of every heap buffer the engine makes
 * while the limits are current on the thread (tensor storage, graph
 * buffers, kernel workspaces) and refuses an allocation that would pass the
 * cap before it is made, after asking the owner to reclaim garbage once (the
 * embedding runs a full Lua collection: tensors waiting for the collector
 * free their storage). Each buffer holds a reference to the account it was
 * charged to, so a buffer freed later, on any thread, after its runtime is
 * gone, still gives its bytes back to the right account.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct mg_limits {
  atomic_int refs;
  atomic_int stop;            /* an mg_stop: sticky until the next mg_limits_start */
  atomic_int interrupt;       /* set by mg_limits_interrupt (any thread, signal handlers) */
  double deadline;            /* CLOCK_MONOTONIC seconds; 0 = none */
  double time_limit;
  uint64_t instruction_limit; /* 0 = none */
  uint64_t used;              /* instructions charged in this call (the calling thread only) */
  size_t memory_cap;          /* 0 = none */
  atomic_llong bytes, peak;
  int (*reclaim)(void *ud);
  void *reclaim_ud;
  int reclaiming;
  atomic_int refused;         /* allocations refused since mg_limits_start */
};

_Thread_local mg_limits *mg_tl_limits __attribute__((tls_model("initial-exec")));
_Thread_local mg_limits *mg_tl_kernel __attribute__((tls_model("initial-exec")));

static double limits_now_coarse(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double mg_monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

mg_limits *mg_limits_new(void) {
  mg_limits *l = calloc(1, sizeof *l);
  if (!l) {
    mg_seterror(MG_ENOMEM, "mg_limits_new: out of memory");
    return NULL;
  }
  atomic_init(&l->refs, 1);
  return l;
}

void mg_limits_retain(mg_limits *l) {
  if (l) atomic_fetch_add(&l->refs, 1);
}

void mg_limits_release(mg_limits *l) {
  if (l && atomic_fetch_sub(&l->refs, 1) == 1) free(l);
}

void mg_limits_start(mg_limits *l, uint64_t instruction_limit, double time_limit) {
  l->instruction_limit = instruction_limit;
  l->time_limit = time_limit;
  l->deadline = time_limit > 0 ? mg_monotonic() + time_limit : 0;
  l->used = 0;
  atomic_store(&l->refused, 0);
  atomic_store(&l->interrupt, 0);
  atomic_store(&l->stop, MG_STOP_NONE);
}

void mg_limits_interrupt(mg_limits *l) {
  if (l) atomic_store(&l->interrupt, 1);   /* lock-free: async-signal-safe */
}

static mg_stop limits_trip(mg_limits *l, mg_stop why) {
  int none = MG_STOP_NONE;
  atomic_compare_exchange_strong(&l->stop, &none, (int)why);  /* the first reason wins */
  return (mg_stop)atomic_load(&l->stop);
}

mg_stop mg_limits_poll(mg_limits *l) {
  if (!l) return MG_STOP_NONE;
  int s = atomic_load_explicit(&l->stop, memory_order_relaxed);
  if (s) return (mg_stop)s;
  if (atomic_load_explicit(&l->interrupt, memory_order_relaxed)) return limits_trip(l, MG_STOP_INTERRUPT);
  if (l->deadline > 0 && limits_now_coarse() > l->deadline) return limits_trip(l, MG_STOP_TIME);
  return MG_STOP_NONE;
}

mg_stop mg_limits_stopped(const mg_limits *l) {
  return l ? (mg_stop)atomic_load_explicit(&((mg_limits *)l)->stop, memory_order_relaxed) : MG_STOP_NONE;
}

void mg_limits_set_stop(mg_limits *l, mg_stop why) {
  if (l && why) limits_trip(l, why);
}

mg_status mg_limits_charge(mg_limits *l, uint64_t instructions) {
  if (!l) return MG_OK;
  l->used += instructions;
  if (l->instruction_limit && l->used > l->instruction_limit) limits_trip(l, MG_STOP_INSTRUCTIONS);
  return mg_limits_poll(l) ? mg_limits_error(l) : MG_OK;
}

uint64_t mg_limits_used(const mg_limits *l) { return l ? l->used : 0; }

const char *mg_limits_message(const mg_limits *l, char *buf, size_t cap) {
  switch (mg_limits_stopped(l)) {
  case MG_STOP_INSTRUCTIONS:
    snprintf(buf, cap, "instruction budget of %llu exceeded", (unsigned long long)l->instruction_limit);
    break;
  case MG_STOP_TIME: snprintf(buf, cap, "time budget of %g s exceeded", l->time_limit); break;
  case MG_STOP_INTERRUPT: snprintf(buf, cap, "interrupted"); break;
  default: snprintf(buf, cap, "no limit reached"); break;
  }
  return buf;
}

mg_status mg_limits_error(const mg_limits *l) {
  char msg[96];
  return mg_seterror(MG_ELIMIT, "%s", mg_limits_message(l, msg, sizeof msg));
}

/* ---- the memory account ---------------------------------------------------------------- */

void mg_limits_set_memory(mg_limits *l, size_t cap, int (*reclaim)(void *ud), void *ud) {
  l->memory_cap = cap;
  l->reclaim = reclaim;
  l->reclaim_ud = ud;
}

int mg_limits_refused(const mg_limits *l) { return l ? atomic_load(&((mg_limits *)l)->refused) : 0; }

size_t mg_limits_memory(const mg_limits *l, size_t *peak) {
  if (!l) {
    if (peak) *peak = 0;
    return 0;
  }
  if (peak) *peak = (size_t)atomic_load(&((mg_limits *)l)->peak);
  return (size_t)atomic_load(&((mg_limits *)l)->bytes);
}

mg_limits *mg_limits_enter(mg_limits *l) {
  mg_limits *prev = mg_tl_limits;
  mg_tl_limits = l;
  return prev;
}

mg_limits *mg_limits_current(void) { return mg_tl_limits; }

static int limits_fits(const mg_limits *l, size_t n) {
  long long live = atomic_load(&((mg_limits *)l)->bytes);
  return live >= 0 && (size_t)live <= l->memory_cap && n <= l->memory_cap - (size_t)live;
}

mg_limits *mg_limits_reserve(size_t n, const char *what) {
  mg_limits *l = mg_tl_limits;
  if (!l || !l->memory_cap) return NULL;   /* no cap: nothing to count against (no atomics on the hot path) */
  if (!limits_fits(l, n)) {
    if (l->reclaim && !l->reclaiming) {   /* garbage may be waiting for its owner's collector */
      l->reclaiming = 1;
      l->reclaim(l->reclaim_ud);
      l->reclaiming = 0;
    }
    if (!limits_fits(l, n)) {
      atomic_fetch_add(&l->refused, 1);
      mg_seterror(MG_ELIMIT, "%s%stensor memory limit of %zu bytes exceeded (%lld bytes in use, %zu more asked for)",
                  what ? what : "", what ? ": " : "", l->memory_cap, (long long)atomic_load(&l->bytes), n);
      return MG_LIMITS_REFUSED;
    }
  }
  long long now = atomic_fetch_add(&l->bytes, (long long)n) + (long long)n;
  long long pk = atomic_load(&l->peak);
  while (now > pk && !atomic_compare_exchange_weak(&l->peak, &pk, now)) {
  }
  atomic_fetch_add(&l->refs, 1);
  return l;
}

void mg_limits_unreserve(mg_limits *l, size_t n) {
  if (!l) return;
  atomic_fetch_sub(&l->bytes, (long long)n);
  mg_limits_release(l);
}

/* ---- kernel workspaces ------------------------------------------------------------------- */

typedef struct work_head {
  mg_limits *acct;
  size_t n;
} work_head;
#define WORK_HEAD 64   /* keeps the workspace MG_ALIGN-aligned */

mg_status mg_work_alloc(size_t n, const char *what, void **out) {
  *out = NULL;
  if (n > SIZE_MAX / 2) return mg_seterror(MG_ENOMEM, "%s: a workspace of %zu bytes is too large", what, n);
  size_t total = (n + WORK_HEAD + MG_ALIGN - 1) / MG_ALIGN * MG_ALIGN;
  mg_limits *acct = mg_limits_reserve(total, what);
  if (acct == MG_LIMITS_REFUSED) return MG_ELIMIT;
  char *p = aligned_alloc(MG_ALIGN, total);
  if (!p) {
    mg_limits_unreserve(acct, total);
    return mg_seterror(MG_ENOMEM, "%s: out of memory allocating a workspace of %zu bytes", what, n);
  }
  work_head *h = (work_head *)p;
  h->acct = acct;
  h->n = total;
  *out = p + WORK_HEAD;
  return MG_OK;
}

void mg_work_free(void *p) {
  if (!p) return;
  work_head *h = (work_head *)((char *)p - WORK_HEAD);
  mg_limits_unreserve(h->acct, h->n);
  free(h);
}

/* ---- running kernels --------------------------------------------------------------------- */

mg_status mg_kernel_run(mg_kernel_fn k, const mg_call *c, mg_tensor *out) {
  mg_limits *l = mg_tl_limits;
  if (!l) return k(c, out);
  if (mg_limits_poll(l)) return mg_limits_error(l);
  mg_limits *outer = mg_kernel_begin();
  return mg_kernel_end(outer, k(c, out));   /* stopped early: its result is partial, so an error */
}
