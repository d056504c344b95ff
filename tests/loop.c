/* The loop: phase order, Node's tick/microtask semantics, liveness,
 * run modes, the close contract. */
#include <string.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(loop, .timeout = 30);

/* A log of small integers, to compare orders. */
typedef struct {
  int v[64];
  int n;
} order_t;

static order_t order;
static eddy_loop_t *the_loop;

static void logv(int v) {
  if (order.n < 64)
    order.v[order.n++] = v;
}

static void assert_order(const int *want, int n) {
  char got[256] = "", exp[256] = "";
  for (int i = 0; i < order.n; i++)
    snprintf(got + strlen(got), sizeof got - strlen(got), "%d ", order.v[i]);
  for (int i = 0; i < n; i++)
    snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%d ", want[i]);
  cr_assert(eq(str, got, exp));
}

/* ---- The seed's example, in C ------------------------------------------ */

static void print_v(void *arg) { logv((int)(intptr_t)arg); }

static void seed_timer1(eddy_timer_t *t) {
  logv(2);
  eddy_next_tick(the_loop, print_v, (void *)3);
  logv(4); /* the promise executor runs synchronously */
  eddy_queue_microtask(the_loop, print_v, (void *)5);
  eddy_close((eddy_handle_t *)t, NULL);
}

static void seed_timer2(eddy_timer_t *t) {
  logv(9);
  eddy_next_tick(the_loop, print_v, (void *)10);
  logv(11);
  eddy_queue_microtask(the_loop, print_v, (void *)12);
  eddy_close((eddy_handle_t *)t, NULL);
}

EDDY_IO_TEST(loop, seed_example_prints_node_order) {
  eddy_loop_t loop;
  eddy_timer_t t1, t2;
  eddy_test_loop_init(&loop, *backend);
  the_loop = &loop;

  logv(1);
  eddy_timer_init(&loop, &t1);
  eddy_timer_start(&t1, seed_timer1, 0, 0);
  logv(7);
  eddy_queue_microtask(&loop, print_v, (void *)8);
  eddy_next_tick(&loop, print_v, (void *)6);
  eddy_timer_init(&loop, &t2);
  eddy_timer_start(&t2, seed_timer2, 0, 0);
  eddy_test_loop_close(&loop);

  int want[] = {1, 7, 6, 8, 2, 4, 3, 5, 9, 11, 10, 12};
  assert_order(want, 12);
}

/* ---- Ticks and microtasks ---------------------------------------------- */

static void micro_queues_tick(void *arg) {
  logv(20);
  eddy_next_tick(the_loop, print_v, (void *)22);
  eddy_queue_microtask(the_loop, print_v, (void *)21);
}

static void tick_queues_tick(void *arg) {
  logv(10);
  eddy_next_tick(the_loop, print_v, (void *)11);
}

EDDY_IO_TEST(loop, ticks_drain_before_microtasks_and_nest_like_node) {
  eddy_loop_t loop;
  eddy_test_loop_init(&loop, *backend);
  the_loop = &loop;

  /* Node: ticks (including ticks from ticks), then the whole microtask
   * queue (including microtasks from microtasks), then ticks queued by
   * microtasks. */
  eddy_queue_microtask(&loop, micro_queues_tick, NULL);
  eddy_next_tick(&loop, tick_queues_tick, NULL);
  eddy_next_tick(&loop, print_v, (void *)1);
  eddy_test_loop_close(&loop);

  int want[] = {10, 1, 11, 20, 21, 22};
  assert_order(want, 6);
}

EDDY_IO_TEST(loop, next_tick_rejects_null_callback) {
  eddy_loop_t loop;
  eddy_test_loop_init(&loop, *backend);
  cr_assert(eq(int, eddy_next_tick(&loop, NULL, NULL), EDDY_EINVAL));
  cr_assert(eq(int, eddy_queue_microtask(&loop, NULL, NULL), EDDY_EINVAL));
  eddy_test_loop_close(&loop);
}

/* ---- Check before a zero timer inside an IO callback -------------------- */

static eddy_timer_t io_timer;
static eddy_check_t io_check;

static void io_timer_cb(eddy_timer_t *t) {
  logv(2);
  eddy_close((eddy_handle_t *)t, NULL);
}

static void io_check_cb(eddy_check_t *c) {
  logv(1);
  eddy_close((eddy_handle_t *)c, NULL);
}

static void start_timer_and_check(eddy_loop_t *loop) {
  eddy_timer_init(loop, &io_timer);
  eddy_check_init(loop, &io_check);
  eddy_timer_start(&io_timer, io_timer_cb, 0, 0);
  eddy_check_start(&io_check, io_check_cb);
}

static void after_work_starts_both(eddy_work_t *req, int status) {
  cr_assert(eq(int, eddy_loop_phase(req->loop), EDDY_PHASE_POLL));
  start_timer_and_check(req->loop);
}

static void noop_work(eddy_work_t *req) {}

EDDY_IO_TEST(loop, check_runs_before_zero_timer_from_pool_callback) {
  eddy_loop_t loop;
  eddy_work_t req;
  eddy_test_loop_init(&loop, *backend);
  cr_assert(eq(int, eddy_queue_work(&loop, &req, EDDY_WORK_FAST, noop_work,
                                    after_work_starts_both), 0));
  eddy_test_loop_close(&loop);
  int want[] = {1, 2};
  assert_order(want, 2);
}

static void pipe_readable(eddy_poll_t *p, int status, int events) {
  cr_assert(eq(int, status, 0));
  cr_assert(eq(int, events & EDDY_READABLE, EDDY_READABLE));
  cr_assert(eq(int, eddy_loop_phase(p->handle.loop), EDDY_PHASE_POLL));
  start_timer_and_check(p->handle.loop);
  eddy_close((eddy_handle_t *)p, NULL);
}

EDDY_IO_TEST(loop, check_runs_before_zero_timer_from_poll_callback) {
  eddy_loop_t loop;
  eddy_poll_t p;
  int fds[2];
  cr_assert(eq(int, pipe(fds), 0));
  cr_assert(eq(long, (long)write(fds[1], "x", 1), 1L));
  eddy_test_loop_init(&loop, *backend);
  eddy_poll_init(&loop, &p, fds[0]);
  eddy_poll_start(&p, EDDY_READABLE, pipe_readable);
  eddy_test_loop_close(&loop);
  close(fds[0]);
  close(fds[1]);
  int want[] = {1, 2};
  assert_order(want, 2);
}

/* ---- Phase order within one iteration ----------------------------------- */

static eddy_loop_t *phase_loop;

static void note_phase(void) { logv((int)eddy_loop_phase(phase_loop)); }
static void phase_close(eddy_handle_t *h) { note_phase(); }
static void phase_timer(eddy_timer_t *t) {
  note_phase();
  eddy_close((eddy_handle_t *)t, phase_close);
}
static void phase_hook(eddy_idle_t *h) {
  note_phase();
  eddy_close((eddy_handle_t *)h, NULL);
}
static void phase_poll(eddy_poll_t *p, int status, int events) {
  note_phase();
  eddy_close((eddy_handle_t *)p, NULL);
}

EDDY_IO_TEST(loop, one_iteration_runs_the_phases_in_order) {
  eddy_loop_t loop;
  eddy_timer_t t;
  eddy_idle_t idle;
  eddy_prepare_t prep;
  eddy_check_t check;
  eddy_poll_t p;
  int fds[2];
  cr_assert(eq(int, pipe(fds), 0));
  cr_assert(eq(long, (long)write(fds[1], "x", 1), 1L));
  eddy_test_loop_init(&loop, *backend);
  phase_loop = &loop;

  /* Started in reverse order, to show the order comes from the phases. */
  eddy_check_init(&loop, &check);
  eddy_check_start(&check, phase_hook);
  eddy_poll_init(&loop, &p, fds[0]);
  eddy_poll_start(&p, EDDY_READABLE, phase_poll);
  eddy_prepare_init(&loop, &prep);
  eddy_prepare_start(&prep, phase_hook);
  eddy_idle_init(&loop, &idle);
  eddy_idle_start(&idle, phase_hook);
  eddy_timer_init(&loop, &t);
  eddy_timer_start(&t, phase_timer, 0, 0);
  cr_assert(eq(int, eddy_run(&loop, EDDY_RUN_ONCE), 0));
  eddy_test_loop_close(&loop);
  close(fds[0]);
  close(fds[1]);

  int want[] = {EDDY_PHASE_TIMERS, EDDY_PHASE_IDLE, EDDY_PHASE_PREPARE,
                EDDY_PHASE_POLL, EDDY_PHASE_CHECK, EDDY_PHASE_CLOSE};
  assert_order(want, 6);
}

static int fired;
static void count_fired(eddy_timer_t *t) { fired++; }

/* ---- Close contract ----------------------------------------------------- */

static void close_logs_type(eddy_handle_t *h) {
  cr_assert(eq(int, eddy_loop_phase(h->loop), EDDY_PHASE_CLOSE));
  cr_assert(eddy_is_closing(h));
  logv((int)(intptr_t)h->data);
}

EDDY_IO_TEST(loop, close_callbacks_run_in_close_phase_in_close_order) {
  eddy_loop_t loop;
  eddy_timer_t t;
  eddy_idle_t idle;
  eddy_async_t a;
  eddy_check_t c;
  eddy_test_loop_init(&loop, *backend);
  eddy_timer_init(&loop, &t);
  eddy_idle_init(&loop, &idle);
  eddy_async_init(&loop, &a, (eddy_async_cb)close_logs_type);
  eddy_check_init(&loop, &c);
  t.handle.data = (void *)1;
  idle.handle.data = (void *)2;
  a.handle.data = (void *)3;
  c.handle.data = (void *)4;
  eddy_timer_start(&t, count_fired, 1000, 0);
  eddy_close((eddy_handle_t *)&c, close_logs_type);
  eddy_close((eddy_handle_t *)&a, close_logs_type);
  eddy_close((eddy_handle_t *)&t, close_logs_type);
  eddy_close((eddy_handle_t *)&idle, close_logs_type);
  cr_assert(not(eddy_is_active((eddy_handle_t *)&t)));
  cr_assert(eq(int, order.n, 0)); /* nothing before the close phase */
  eddy_test_loop_close(&loop);
  int want[] = {4, 3, 1, 2};
  assert_order(want, 4);
}

EDDY_IO_TEST(loop, loop_close_is_ebusy_while_handles_are_open) {
  eddy_loop_t loop;
  eddy_timer_t t;
  eddy_test_loop_init(&loop, *backend);
  eddy_timer_init(&loop, &t);
  cr_assert(eq(int, eddy_loop_close(&loop), EDDY_EBUSY));
  eddy_close((eddy_handle_t *)&t, NULL);
  /* Closing, but its close callback has not run yet. */
  cr_assert(eq(int, eddy_loop_close(&loop), EDDY_EBUSY));
  eddy_test_loop_close(&loop);
}

EDDY_IO_TEST(loop, double_close_is_refused, .signal = EDDY_TEST_MISUSE_SIGNAL) {
  eddy_loop_t loop;
  eddy_timer_t t;
  eddy_test_loop_init(&loop, *backend);
  eddy_timer_init(&loop, &t);
  eddy_close((eddy_handle_t *)&t, NULL);
  eddy_close((eddy_handle_t *)&t, NULL); /* debug builds abort here */
  eddy_test_loop_close(&loop);
}

EDDY_IO_TEST(loop, start_after_close_is_refused,
             .signal = EDDY_TEST_MISUSE_SIGNAL) {
  eddy_loop_t loop;
  eddy_timer_t t;
  eddy_idle_t idle;
  eddy_test_loop_init(&loop, *backend);
  eddy_timer_init(&loop, &t);
  eddy_idle_init(&loop, &idle);
  eddy_close((eddy_handle_t *)&idle, NULL);
  cr_assert(eq(int, eddy_idle_start(&idle, phase_hook), EDDY_EINVAL));
  eddy_close((eddy_handle_t *)&t, NULL);
  cr_assert(eq(int, eddy_timer_start(&t, count_fired, 1, 0), EDDY_EINVAL));
  cr_assert(not(eddy_is_active((eddy_handle_t *)&t)));
  eddy_test_loop_close(&loop);
}

/* ---- Liveness and run modes --------------------------------------------- */

EDDY_IO_TEST(loop, unrefed_timer_does_not_keep_loop_alive) {
  eddy_loop_t loop;
  eddy_timer_t lazy, busy;
  eddy_test_loop_init(&loop, *backend);
  eddy_timer_init(&loop, &lazy);
  eddy_timer_start(&lazy, count_fired, 60000, 0);
  eddy_unref((eddy_handle_t *)&lazy);
  cr_assert(not(eddy_loop_alive(&loop)));
  cr_assert(eq(int, eddy_run(&loop, EDDY_RUN_DEFAULT), 0));
  cr_assert(eq(int, fired, 0));

  /* A referenced timer keeps it alive until it fired; then the loop ends
   * although the unreferenced one is still active. */
  eddy_timer_init(&loop, &busy);
  eddy_timer_start(&busy, count_fired, 5, 0);
  cr_assert(eq(int, eddy_run(&loop, EDDY_RUN_DEFAULT), 0));
  cr_assert(eq(int, fired, 1));
  cr_assert(eddy_is_active((eddy_handle_t *)&lazy));
  eddy_ref((eddy_handle_t *)&lazy);
  cr_assert(eddy_loop_alive(&loop));
  eddy_close((eddy_handle_t *)&lazy, NULL);
  eddy_close((eddy_handle_t *)&busy, NULL);
  eddy_test_loop_close(&loop);
}

static int idle_runs;
static void idle_count(eddy_idle_t *h) { idle_runs++; }
static void stop_idle_timer(eddy_timer_t *t) {
  eddy_close((eddy_handle_t *)t, NULL);
  eddy_close((eddy_handle_t *)t->handle.data, NULL);
}

EDDY_IO_TEST(loop, idle_handle_makes_poll_non_blocking) {
  eddy_loop_t loop;
  eddy_timer_t t;
  eddy_idle_t idle;
  eddy_test_loop_init(&loop, *backend);
  eddy_idle_init(&loop, &idle);
  eddy_idle_start(&idle, idle_count);
  eddy_timer_init(&loop, &t);
  t.handle.data = &idle;
  eddy_timer_start(&t, stop_idle_timer, 30, 0);
  eddy_test_loop_close(&loop);
  /* A blocking poll would have slept the whole 30 ms in one iteration. */
  cr_assert(gt(int, idle_runs, 5), "idle ran %d times", idle_runs);
}

EDDY_IO_TEST(loop, run_nowait_returns_without_blocking) {
  eddy_loop_t loop;
  eddy_timer_t t;
  eddy_test_loop_init(&loop, *backend);
  eddy_timer_init(&loop, &t);
  eddy_timer_start(&t, count_fired, 60000, 0);
  /* Still alive: the timer is pending; and it did not run. */
  cr_assert(eq(int, eddy_run(&loop, EDDY_RUN_NOWAIT), 1));
  cr_assert(eq(int, fired, 0));
  eddy_close((eddy_handle_t *)&t, NULL);
  eddy_test_loop_close(&loop);
}

EDDY_IO_TEST(loop, run_once_waits_for_the_timer_and_runs_it) {
  eddy_loop_t loop;
  eddy_timer_t t;
  eddy_test_loop_init(&loop, *backend);
  eddy_timer_init(&loop, &t);
  eddy_timer_start(&t, count_fired, 10, 0);
  while (fired == 0)
    eddy_run(&loop, EDDY_RUN_ONCE);
  cr_assert(eq(int, fired, 1));
  cr_assert(not(eddy_loop_alive(&loop)));
  eddy_close((eddy_handle_t *)&t, NULL);
  eddy_test_loop_close(&loop);
}

static void stop_loop_cb(eddy_timer_t *t) {
  fired++;
  eddy_stop(t->handle.loop);
}

EDDY_IO_TEST(loop, stop_ends_run_after_the_iteration) {
  eddy_loop_t loop;
  eddy_timer_t t;
  eddy_test_loop_init(&loop, *backend);
  eddy_timer_init(&loop, &t);
  eddy_timer_start(&t, stop_loop_cb, 1, 1);
  cr_assert(eq(int, eddy_run(&loop, EDDY_RUN_DEFAULT), 1));
  cr_assert(eq(int, fired, 1));
  cr_assert(eq(int, eddy_run(&loop, EDDY_RUN_DEFAULT), 1));
  cr_assert(eq(int, fired, 2));
  eddy_close((eddy_handle_t *)&t, NULL);
  eddy_test_loop_close(&loop);
}

Test(loop, backend_from_environment) {
  eddy_loop_t loop;
  setenv("EDDY_BACKEND", "kqueue", 1);
  cr_assert(eq(int, eddy_loop_init(&loop), EDDY_EINVAL));
  /* Forced io_uring on a kernel that refuses it: an error, no fallback. */
  setenv("EDDY_BACKEND", "io_uring", 1);
  setenv("EDDY_URING_FAIL", "1", 1);
  cr_assert(eq(int, eddy_loop_init(&loop), EDDY_EPERM));
  unsetenv("EDDY_URING_FAIL");
  setenv("EDDY_BACKEND", "epoll", 1);
  cr_assert(eq(int, eddy_loop_init(&loop), 0));
  cr_assert(eq(str, (char *)eddy_backend_name(&loop), "epoll"));
  cr_assert(eq(int, eddy_loop_close(&loop), 0));
}

Test(loop, phase_and_handle_names) {
  cr_assert(eq(str, (char *)eddy_phase_name(EDDY_PHASE_CHECK), "check"));
  cr_assert(eq(str, (char *)eddy_phase_name((eddy_phase)99), "unknown"));
  cr_assert(eq(str, (char *)eddy_handle_type_name(EDDY_ASYNC), "async"));
}

Test(loop, io_uring_setup_failure_falls_back_to_epoll) {
  eddy_loop_t loop;
  /* As a kernel that refuses io_uring (EPERM under seccomp) would. */
  setenv("EDDY_URING_FAIL", "1", 1);
  unsetenv("EDDY_BACKEND");
  cr_assert(eq(int, eddy_backend_available("io_uring"), 0));
  cr_assert(eq(int, eddy_loop_init(&loop), 0));
  cr_assert(eq(str, (char *)eddy_backend_name(&loop), "epoll"));
  eddy_timer_t t;
  eddy_timer_init(&loop, &t);
  eddy_timer_start(&t, count_fired, 1, 0);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, fired, 1), "the fallback loop runs");
  eddy_close((eddy_handle_t *)&t, NULL);
  eddy_test_loop_close(&loop);
}
