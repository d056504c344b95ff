/* libuv's side of the core benchmarks: the same work as
 * perf/core/core_eddy.c, line for line, so that the two can be compared in
 * one run.  Keep the two files in step. */
#include <pthread.h>
#include <uv.h>

#include "bench.h"

#define IMPL "libuv"

static void on_close(uv_handle_t *h) { (void)h; }

/* ---- timers -------------------------------------------------------------- */

static void on_timer(uv_timer_t *t) {
  (void)t;
  fprintf(stderr, "FAIL a timer fired during the benchmark\n");
  exit(2);
}

static void close_timers(uv_loop_t *loop, uv_timer_t *t, size_t n) {
  for (size_t i = 0; i < n; i++)
    uv_close((uv_handle_t *)&t[i], on_close);
  uv_run(loop, UV_RUN_DEFAULT);
}

static void bench_timers(size_t n) {
  uv_loop_t loop;
  BENCH_CHECK(uv_loop_init(&loop) == 0);
  uv_timer_t *t = calloc(n, sizeof *t);
  uint64_t *timeout = bench_timeouts(n, 0x9e3779b97f4a7c15u);
  BENCH_CHECK(t != NULL);
  for (size_t i = 0; i < n; i++)
    BENCH_CHECK(uv_timer_init(&loop, &t[i]) == 0);

  uint64_t t0 = bench_ns();
  for (size_t i = 0; i < n; i++)
    BENCH_CHECK(uv_timer_start(&t[i], on_timer, timeout[i], 0) == 0);
  uint64_t t1 = bench_ns();
  for (size_t i = 0; i < n; i++)
    BENCH_CHECK(uv_timer_stop(&t[i]) == 0);
  uint64_t t2 = bench_ns();

  char extra[128];
  snprintf(extra, sizeof extra, "start_ms=%.3f stop_ms=%.3f",
           (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6);
  bench_result("timers", IMPL, n, t2 - t0, extra);

  close_timers(&loop, t, n);
  BENCH_CHECK(uv_loop_close(&loop) == 0);
  free(timeout);
  free(t);
}

static void bench_timers_ss(size_t n) {
  const size_t bg = BENCH_BACKGROUND_TIMERS;
  uv_loop_t loop;
  BENCH_CHECK(uv_loop_init(&loop) == 0);
  uv_timer_t *t = calloc(n + bg, sizeof *t);
  uint64_t *timeout = bench_timeouts(n + bg, 0x2545f4914f6cdd1du);
  BENCH_CHECK(t != NULL);
  for (size_t i = 0; i < n + bg; i++)
    BENCH_CHECK(uv_timer_init(&loop, &t[i]) == 0);
  for (size_t i = n; i < n + bg; i++)
    BENCH_CHECK(uv_timer_start(&t[i], on_timer, timeout[i], 0) == 0);

  uint64_t t0 = bench_ns();
  for (size_t i = 0; i < n; i++) {
    BENCH_CHECK(uv_timer_start(&t[i], on_timer, timeout[i], 0) == 0);
    BENCH_CHECK(uv_timer_stop(&t[i]) == 0);
  }
  uint64_t t1 = bench_ns();

  char extra[64];
  snprintf(extra, sizeof extra, "live=%zu", bg);
  bench_result("timers-ss", IMPL, n, t1 - t0, extra);

  close_timers(&loop, t, n + bg);
  BENCH_CHECK(uv_loop_close(&loop) == 0);
  free(timeout);
  free(t);
}

/* ---- pool ---------------------------------------------------------------- */

static size_t jobs_done;

static void noop_work(uv_work_t *req) { (void)req; }

static void after_work(uv_work_t *req, int status) {
  (void)req;
  BENCH_CHECK(status == 0);
  jobs_done++;
}

static unsigned pool_size(void) {
  const char *s = getenv("UV_THREADPOOL_SIZE");
  return s ? (unsigned)strtoul(s, NULL, 10) : 4;
}

static void bench_pool(size_t n) {
  uv_loop_t loop;
  BENCH_CHECK(uv_loop_init(&loop) == 0);
  uv_work_t *reqs = calloc(n, sizeof *reqs);
  BENCH_CHECK(reqs != NULL);

  /* One job first, so that starting the pool's threads is not timed. */
  uv_work_t warm;
  BENCH_CHECK(uv_queue_work(&loop, &warm, noop_work, after_work) == 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  BENCH_CHECK(jobs_done == 1);
  jobs_done = 0;

  uint64_t t0 = bench_ns();
  for (size_t i = 0; i < n; i++)
    BENCH_CHECK(uv_queue_work(&loop, &reqs[i], noop_work, after_work) == 0);
  uint64_t t1 = bench_ns();
  uv_run(&loop, UV_RUN_DEFAULT);
  uint64_t t2 = bench_ns();
  BENCH_CHECK(jobs_done == n);

  char extra[96];
  snprintf(extra, sizeof extra, "submit_ms=%.3f threads=%u",
           (double)(t1 - t0) / 1e6, pool_size());
  bench_result("pool", IMPL, n, t2 - t0, extra);

  BENCH_CHECK(uv_loop_close(&loop) == 0);
  free(reqs);
}

/* ---- async --------------------------------------------------------------- */

static uv_async_t async;
static size_t sends;
static int round_trip;         /* async-rt: wait for each send's callback */
static _Atomic size_t go;      /* 1 once the loop runs */
static _Atomic size_t counter; /* the sender's progress: sends begun */
static _Atomic size_t seen;    /* counter as the latest callback read it */
static size_t wakeups;         /* callbacks run */
static uint64_t t_start, t_sent, t_delivered;

/* Every send publishes its number first, so a callback that reads `sends`
 * proves that the last send was delivered (on its own or coalesced). */
static void *sender(void *arg) {
  (void)arg;
  if (!round_trip && bench_pin_apart())
    bench_pin(1);
  bench_wait_for(&go, 1);
  t_start = bench_ns();
  for (size_t i = 1; i <= sends; i++) {
    atomic_store_explicit(&counter, i, memory_order_release);
    BENCH_CHECK(uv_async_send(&async) == 0);
    if (round_trip)
      bench_wait_for(&seen, i);
  }
  t_sent = bench_ns();
  return NULL;
}

/* The sender waits for this, so that it sends to a loop that runs (and
 * blocks in poll) rather than to one still being set up. */
static void on_kick(uv_timer_t *t) {
  (void)t;
  atomic_store_explicit(&go, 1, memory_order_release);
}

/* Stops the loop rather than closing the handle: the sender may still be
 * inside its last uv_async_send, so the handle is closed after the join. */
static void on_async(uv_async_t *a) {
  size_t c = atomic_load_explicit(&counter, memory_order_acquire);
  wakeups++;
  atomic_store_explicit(&seen, c, memory_order_release);
  if (c == sends) {
    t_delivered = bench_ns();
    uv_stop(a->loop);
  }
}

/* The cost of a send that finds one already pending, measured alone: one
 * thread, a loop that does not run, so every send after the first
 * coalesces.  That is the path a busy producer takes, free of the
 * scheduler's noise. */
static void on_async_unused(uv_async_t *a) { (void)a; }

static double coalesced_send_ns(size_t n) {
  static _Atomic size_t scratch;
  uv_loop_t loop;
  uv_async_t a;
  BENCH_CHECK(uv_loop_init(&loop) == 0);
  BENCH_CHECK(uv_async_init(&loop, &a, on_async_unused) == 0);
  BENCH_CHECK(uv_async_send(&a) == 0);
  uint64_t t0 = bench_ns();
  for (size_t i = 1; i <= n; i++) {
    atomic_store_explicit(&scratch, i, memory_order_release);
    BENCH_CHECK(uv_async_send(&a) == 0);
  }
  uint64_t t1 = bench_ns();
  uv_close((uv_handle_t *)&a, on_close);
  uv_run(&loop, UV_RUN_DEFAULT);
  BENCH_CHECK(uv_loop_close(&loop) == 0);
  return (double)(t1 - t0) / (double)n;
}

static void bench_async(const char *name, size_t n, int rt) {
  uv_loop_t loop;
  uv_timer_t kick;
  pthread_t tid;
  BENCH_CHECK(uv_loop_init(&loop) == 0);
  BENCH_CHECK(uv_async_init(&loop, &async, on_async) == 0);
  BENCH_CHECK(uv_timer_init(&loop, &kick) == 0);
  BENCH_CHECK(uv_timer_start(&kick, on_kick, 0, 0) == 0);
  sends = n;
  round_trip = rt;

  /* Round trips run both threads on one CPU, the sender inheriting the
   * loop's CPU: each wakeup then costs the syscalls and the library's
   * handshake, not the hypervisor's cross-CPU wake latency, which would
   * drown them. */
  if (rt)
    bench_pin(-1);
  BENCH_CHECK(pthread_create(&tid, NULL, sender, NULL) == 0);
  if (!rt && bench_pin_apart())
    bench_pin(0);
  uv_run(&loop, UV_RUN_DEFAULT);
  BENCH_CHECK(pthread_join(tid, NULL) == 0);
  size_t last = atomic_load(&seen);
  BENCH_CHECK(last == n);
  BENCH_CHECK(wakeups >= 1 && wakeups <= n);

  char extra[128];
  /* Sends per second as the sender saw them; the last delivery's latency
   * (delivered_ms - ms) is the scheduler's more than the library's. */
  int len = snprintf(extra, sizeof extra,
                     "wakeups=%zu last=%zu delivered_ms=%.3f ok=1", wakeups,
                     last, (double)(t_delivered - t_start) / 1e6);
  if (!rt)
    snprintf(extra + len, sizeof extra - (size_t)len, " coalesced_ns=%.2f",
             coalesced_send_ns(n));
  bench_result(name, IMPL, n, t_sent - t_start, extra);

  uv_close((uv_handle_t *)&async, on_close);
  uv_close((uv_handle_t *)&kick, on_close);
  uv_run(&loop, UV_RUN_DEFAULT);
  BENCH_CHECK(uv_loop_close(&loop) == 0);
}

int main(int argc, char **argv) {
  if (argc < 2)
    bench_usage(argv[0]);
  size_t n = bench_n(argc, argv);
  bench_watchdog();
  if (strcmp(argv[1], "timers") == 0)
    bench_timers(n);
  else if (strcmp(argv[1], "timers-ss") == 0)
    bench_timers_ss(n);
  else if (strcmp(argv[1], "pool") == 0)
    bench_pool(n);
  else if (strcmp(argv[1], "async") == 0)
    bench_async("async", n, 0);
  else if (strcmp(argv[1], "async-rt") == 0)
    bench_async("async-rt", n, 1);
  else
    bench_usage(argv[0]);
  return 0;
}
