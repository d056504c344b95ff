/* Timers: order, repeat, again, stop from callbacks, a million at once. */
#include <stdint.h>
#include <stdlib.h>

#include "helpers.h"

TestSuite(timer, .timeout = 60);

static int seen[16];
static int nseen;

static void log_id(eddy_timer_t *t) {
  seen[nseen++] = (int)(intptr_t)t->handle.data;
}

EDDY_IO_TEST(timer, timer_order_ties_by_start) {
  eddy_loop_t loop;
  eddy_timer_t t[5];
  eddy_test_loop_init(&loop, *backend);
  for (int i = 0; i < 5; i++) {
    eddy_timer_init(&loop, &t[i]);
    t[i].handle.data = (void *)(intptr_t)i;
    cr_assert(eq(int, eddy_timer_start(&t[i], log_id, 5, 0), 0));
  }
  /* Restarting timer 1 with the same timeout makes it the last started. */
  eddy_timer_start(&t[1], log_id, 5, 0);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  int want[] = {0, 2, 3, 4, 1};
  cr_assert(eq(int, nseen, 5));
  for (int i = 0; i < 5; i++)
    cr_assert(eq(int, seen[i], want[i]), "position %d", i);
  for (int i = 0; i < 5; i++)
    eddy_close((eddy_handle_t *)&t[i], NULL);
  eddy_test_loop_close(&loop);
}

EDDY_IO_TEST(timer, timer_order_by_due_time) {
  eddy_loop_t loop;
  eddy_timer_t t[3];
  uint64_t timeouts[] = {30, 10, 20};
  eddy_test_loop_init(&loop, *backend);
  for (int i = 0; i < 3; i++) {
    eddy_timer_init(&loop, &t[i]);
    t[i].handle.data = (void *)(intptr_t)i;
    eddy_timer_start(&t[i], log_id, timeouts[i], 0);
  }
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, nseen, 3));
  cr_assert(eq(int, seen[0], 1));
  cr_assert(eq(int, seen[1], 2));
  cr_assert(eq(int, seen[2], 0));
  for (int i = 0; i < 3; i++)
    eddy_close((eddy_handle_t *)&t[i], NULL);
  eddy_test_loop_close(&loop);
}

static int repeats;
static void repeat_then_stop(eddy_timer_t *t) {
  /* The timer is re-armed before its callback, so stopping it here wins. */
  cr_assert(eddy_is_active((eddy_handle_t *)t));
  if (++repeats == 5)
    cr_assert(eq(int, eddy_timer_stop(t), 0));
}

EDDY_IO_TEST(timer, repeat_runs_until_stopped_inside_its_callback) {
  eddy_loop_t loop;
  eddy_timer_t t;
  eddy_test_loop_init(&loop, *backend);
  eddy_timer_init(&loop, &t);
  eddy_timer_start(&t, repeat_then_stop, 1, 2);
  cr_assert(eq(long, (long)eddy_timer_get_repeat(&t), 2L));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, repeats, 5));
  cr_assert(not(eddy_is_active((eddy_handle_t *)&t)));
  eddy_close((eddy_handle_t *)&t, NULL);
  eddy_test_loop_close(&loop);
}

static void close_self(eddy_timer_t *t) {
  repeats++;
  eddy_close((eddy_handle_t *)t, NULL);
}

EDDY_IO_TEST(timer, repeating_timer_closed_inside_its_callback_stops) {
  eddy_loop_t loop;
  eddy_timer_t t;
  eddy_test_loop_init(&loop, *backend);
  eddy_timer_init(&loop, &t);
  eddy_timer_start(&t, close_self, 0, 1);
  eddy_test_loop_close(&loop);
  cr_assert(eq(int, repeats, 1));
}

static int restarts;
static int iterations;
static eddy_check_t counter;

/* A zero timer started from a timer callback runs next iteration: the
 * check handle counts the iterations in between. */
static void restart_zero(eddy_timer_t *t) {
  if (++restarts < 3)
    eddy_timer_start(t, restart_zero, 0, 0);
  else
    eddy_close((eddy_handle_t *)&counter, NULL);
}
static void count_iteration(eddy_check_t *c) { iterations++; }

EDDY_IO_TEST(timer, zero_timer_started_in_timer_callback_waits_an_iteration) {
  eddy_loop_t loop;
  eddy_timer_t t;
  eddy_test_loop_init(&loop, *backend);
  eddy_timer_init(&loop, &t);
  eddy_check_init(&loop, &counter);
  eddy_check_start(&counter, count_iteration);
  eddy_timer_start(&t, restart_zero, 0, 0);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, restarts, 3));
  cr_assert(eq(int, iterations, 2)); /* the third run closed the counter */
  eddy_close((eddy_handle_t *)&t, NULL);
  eddy_test_loop_close(&loop);
}

static eddy_timer_t victim;
static void stop_other(eddy_timer_t *t) {
  log_id(t);
  eddy_timer_stop(&victim);
}

EDDY_IO_TEST(timer, timer_stopped_by_earlier_callback_of_same_phase_does_not_run) {
  eddy_loop_t loop;
  eddy_timer_t first;
  eddy_test_loop_init(&loop, *backend);
  eddy_timer_init(&loop, &first);
  eddy_timer_init(&loop, &victim);
  first.handle.data = (void *)1;
  victim.handle.data = (void *)2;
  eddy_timer_start(&first, stop_other, 0, 0);
  eddy_timer_start(&victim, log_id, 0, 0);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, nseen, 1));
  cr_assert(eq(int, seen[0], 1));
  eddy_close((eddy_handle_t *)&first, NULL);
  eddy_close((eddy_handle_t *)&victim, NULL);
  eddy_test_loop_close(&loop);
}

EDDY_IO_TEST(timer, again_restarts_with_repeat_and_needs_a_start) {
  eddy_loop_t loop;
  eddy_timer_t t;
  eddy_test_loop_init(&loop, *backend);
  eddy_timer_init(&loop, &t);
  cr_assert(eq(int, eddy_timer_again(&t), EDDY_EINVAL));
  eddy_timer_start(&t, log_id, 10, 5000);
  cr_assert(le(long, (long)eddy_timer_get_due_in(&t), 10L));
  cr_assert(eq(int, eddy_timer_again(&t), 0));
  /* Now due after the repeat interval, not the first timeout. */
  cr_assert(gt(long, (long)eddy_timer_get_due_in(&t), 4000L));
  eddy_timer_set_repeat(&t, 0);
  cr_assert(eq(int, eddy_timer_again(&t), 0)); /* no repeat: unchanged */
  cr_assert(eddy_is_active((eddy_handle_t *)&t));
  eddy_close((eddy_handle_t *)&t, NULL);
  eddy_test_loop_close(&loop);
  cr_assert(eq(int, nseen, 0));
}

EDDY_IO_TEST(timer, negative_timeout_is_refused,
             .signal = EDDY_TEST_MISUSE_SIGNAL) {
  eddy_loop_t loop;
  eddy_timer_t t;
  eddy_test_loop_init(&loop, *backend);
  eddy_timer_init(&loop, &t);
  cr_assert(eq(int, eddy_timer_start(&t, log_id, (uint64_t)-1, 0),
               EDDY_EINVAL));
  cr_assert(not(eddy_is_active((eddy_handle_t *)&t)));
  cr_assert(eq(int, eddy_timer_start(&t, NULL, 1, 0), EDDY_EINVAL));
  eddy_close((eddy_handle_t *)&t, NULL);
  eddy_test_loop_close(&loop);
}

/* A million active timers, fired in due order. */
#define MANY 1000000
static uint64_t last_due;
static long fired_many;
static int out_of_order;

static void check_due_order(eddy_timer_t *t) {
  uint64_t due = (uint64_t)(uintptr_t)t->handle.data;
  if (due < last_due)
    out_of_order++;
  last_due = due;
  fired_many++;
}

EDDY_IO_TEST(timer, a_million_timers_fire_in_due_order) {
  eddy_loop_t loop;
  eddy_timer_t *t = malloc(MANY * sizeof *t);
  cr_assert(not(eq(ptr, t, NULL)));
  eddy_test_loop_init(&loop, *backend);
  srand(42);
  uint64_t base = eddy_now(&loop);
  for (long i = 0; i < MANY; i++) {
    uint64_t timeout = (uint64_t)(rand() % 50);
    eddy_timer_init(&loop, &t[i]);
    t[i].handle.data = (void *)(uintptr_t)(base + timeout);
    cr_assert(eq(int, eddy_timer_start(&t[i], check_due_order, timeout, 0), 0));
  }
  /* Stop every tenth one: stopped timers must not fire. */
  for (long i = 0; i < MANY; i += 10)
    eddy_timer_stop(&t[i]);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(long, fired_many, MANY - MANY / 10));
  cr_assert(eq(int, out_of_order, 0));
  for (long i = 0; i < MANY; i++)
    eddy_close((eddy_handle_t *)&t[i], NULL);
  eddy_test_loop_close(&loop);
  free(t);
}
