/* What the eddy benchmarks and their libuv peers share.  Nothing here may
 * depend on either library, so that both sides time their work, check it
 * and report it the same way. */
#ifndef PERF_BENCH_H
#define PERF_BENCH_H

#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BENCH_N 1000000

/* A run that takes longer than this is a hang (a lost wakeup, a job that
 * never completes): fail loudly instead of stalling `make perf-core`. */
#define BENCH_WATCHDOG_S 60

/* Round trips of the async-rt benchmark: each costs a wakeup of the loop,
 * tens of microseconds on a VM, so fewer than BENCH_N keep the run short. */
#define BENCH_RT_N 20000

/* The largest timeout the timer benchmarks draw, in ms. */
#define BENCH_TIMEOUT_MAX 1000000

/* Live timers the start-then-stop benchmark keeps in the heap, so that it
 * measures a heap of realistic size rather than an empty one. */
#define BENCH_BACKGROUND_TIMERS 10000

#define BENCH_CHECK(cond)                                                     \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);        \
      exit(2);                                                                \
    }                                                                         \
  } while (0)

static inline uint64_t bench_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64: the same fixed sequence of timeouts for both libraries. */
static inline uint64_t bench_rand(uint64_t *state) {
  uint64_t x = *state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *state = x;
  return x;
}

static inline uint64_t *bench_timeouts(size_t n, uint64_t seed) {
  uint64_t *t = malloc(n * sizeof *t);
  BENCH_CHECK(t != NULL);
  for (size_t i = 0; i < n; i++)
    t[i] = 1 + bench_rand(&seed) % BENCH_TIMEOUT_MAX;
  return t;
}

static void bench_on_alarm(int sig) {
  static const char msg[] = "FAIL watchdog: the benchmark did not finish\n";
  (void)sig;
  if (write(2, msg, sizeof msg - 1) < 0)
    _exit(3);
  _exit(3);
}

static inline void bench_watchdog(void) {
  signal(SIGALRM, bench_on_alarm);
  alarm(BENCH_WATCHDOG_S);
}

/* One machine-readable line per measurement, which run-core.sh
 * aggregates:  RESULT <bench> <impl> <ops per second> <key=value>...  */
static inline void bench_result(const char *bench, const char *impl,
                                size_t ops, uint64_t ns, const char *extra) {
  printf("RESULT %s %s %.6e ms=%.3f%s%s\n", bench, impl,
         (double)ops * 1e9 / (double)(ns ? ns : 1), (double)ns / 1e6,
         extra[0] ? " " : "", extra);
  fflush(stdout);
}

/* argv: <bench> [n].  n defaults to BENCH_N (BENCH_RT_N for async-rt); a
 * smaller n suits callgrind. */
static inline size_t bench_n(int argc, char **argv) {
  if (argc < 3)
    return strcmp(argv[1], "async-rt") == 0 ? BENCH_RT_N : BENCH_N;
  long n = strtol(argv[2], NULL, 10);
  BENCH_CHECK(n > 0);
  return (size_t)n;
}

/* Waits until *flag reaches want: spins a little (the other side usually
 * answers within microseconds), then yields the CPU so that on a loaded
 * machine the waiter does not starve the thread it waits for. */
static inline void bench_wait_for(_Atomic size_t *flag, size_t want) {
  for (unsigned spins = 0;
       atomic_load_explicit(flag, memory_order_acquire) != want; spins++) {
    if (spins >= 200)
      sched_yield();
  }
}

/* Pins the calling thread to the nth CPU it may use (nth < 0: the last),
 * if it may use two or more.  Threads it creates later inherit that. */
static inline void bench_pin(int nth) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0 || CPU_COUNT(&set) < 2)
    return;
  if (nth < 0)
    nth = CPU_COUNT(&set) - 1;
  for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
    if (CPU_ISSET(cpu, &set) && nth-- == 0) {
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      sched_setaffinity(0, sizeof set, &set);
      return;
    }
  }
}

/* BENCH_PIN=1: the async benchmark puts its loop and its sender on two
 * different CPUs.  Off by default: unpinned, Linux tends to wake the loop
 * on the sender's CPU, where it runs only when the sender is preempted;
 * pinned, the two really run at once, but each wakeup crosses CPUs, which
 * on a VM can take milliseconds. */
static inline int bench_pin_apart(void) {
  const char *env = getenv("BENCH_PIN");
  return env != NULL && strcmp(env, "1") == 0;
}

static inline void bench_usage(const char *prog) {
  fprintf(stderr, "usage: %s timers|timers-ss|pool|async|async-rt [n]\n", prog);
  exit(64);
}

#endif
