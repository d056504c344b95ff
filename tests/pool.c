/* The worker pool: completion on the loop thread, cancel, the slow-work
 * limit, the size from the environment, fork, other-thread submission and
 * Node's next-tick drain after each after_work callback. */
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"
#include "pool.h"

TestSuite(pool, .timeout = 60);

static pthread_t loop_thread;

static void noop_work(eddy_work_t *req) { (void)req; }

static void sem_wait_all(sem_t *s) {
  while (sem_wait(s) != 0)
    ;
}

/* ---- 100k items ---------------------------------------------------------- */

#define MANY 100000

static unsigned *work_runs;  /* per item, written by workers (atomic) */
static unsigned *after_runs; /* per item, loop thread only */
static size_t after_total, after_bad_status, after_off_thread;

static void count_work(eddy_work_t *req) {
  __atomic_fetch_add(&work_runs[(size_t)req->data], 1, __ATOMIC_RELAXED);
}

static void count_after(eddy_work_t *req, int status) {
  after_runs[(size_t)req->data]++;
  after_total++;
  if (status != 0)
    after_bad_status++;
  if (!pthread_equal(pthread_self(), loop_thread))
    after_off_thread++;
}

EDDY_IO_TEST(pool, pool_100k_items_complete_once_on_loop_thread) {
  eddy_loop_t loop;
  eddy_test_loop_init(&loop, *backend);
  loop_thread = pthread_self();
  eddy_work_t *reqs = calloc(MANY, sizeof *reqs);
  work_runs = calloc(MANY, sizeof *work_runs);
  after_runs = calloc(MANY, sizeof *after_runs);
  cr_assert(reqs != NULL && work_runs != NULL && after_runs != NULL);

  for (size_t i = 0; i < MANY; i++) {
    reqs[i].data = (void *)i;
    eddy_work_class cls = i % 7 == 0 ? EDDY_WORK_SLOW : EDDY_WORK_FAST;
    int rc = eddy_queue_work(&loop, &reqs[i], cls, count_work, count_after);
    cr_assert(eq(int, rc, 0), "item %zu: %s", i, eddy_err_name(rc));
  }
  eddy_run(&loop, EDDY_RUN_DEFAULT);

  cr_assert(eq(sz, after_total, (size_t)MANY));
  cr_assert(eq(sz, after_bad_status, (size_t)0));
  cr_assert(eq(sz, after_off_thread, (size_t)0));
  for (size_t i = 0; i < MANY; i++) {
    unsigned w = __atomic_load_n(&work_runs[i], __ATOMIC_RELAXED);
    cr_assert(eq(u32, w, 1), "item %zu work ran %u times", i, w);
    cr_assert(eq(u32, after_runs[i], 1), "item %zu after ran %u times", i,
              after_runs[i]);
  }
  eddy_test_loop_close(&loop);
  free(reqs);
  free(work_runs);
  free(after_runs);
}

/* ---- cancel ------------------------------------------------------------- */

static sem_t blocker_started, blocker_release;
static int victim_work_ran; /* atomic */
static int blocker_status = 1, victim_status = 1;
static int blocker_calls, victim_calls;

static void blocker_work(eddy_work_t *req) {
  (void)req;
  sem_post(&blocker_started);
  sem_wait_all(&blocker_release);
}

static void blocker_after(eddy_work_t *req, int status) {
  (void)req;
  blocker_status = status;
  blocker_calls++;
}

static void victim_work(eddy_work_t *req) {
  (void)req;
  __atomic_store_n(&victim_work_ran, 1, __ATOMIC_RELAXED);
}

static void victim_after(eddy_work_t *req, int status) {
  (void)req;
  victim_status = status;
  victim_calls++;
}

/* With one thread, occupies it until blocker_release is posted. */
static void block_the_pool(eddy_loop_t *loop, eddy_work_t *blocker) {
  cr_assert(eq(int, sem_init(&blocker_started, 0, 0), 0));
  cr_assert(eq(int, sem_init(&blocker_release, 0, 0), 0));
  int rc = eddy_queue_work(loop, blocker, EDDY_WORK_FAST, blocker_work,
                           blocker_after);
  cr_assert(eq(int, rc, 0));
  sem_wait_all(&blocker_started);
}

EDDY_IO_TEST(pool, pool_cancel_gives_ecanceled) {
  setenv("EDDY_THREADPOOL_SIZE", "1", 1);
  eddy_loop_t loop;
  eddy_work_t blocker, victim;
  eddy_test_loop_init(&loop, *backend);
  block_the_pool(&loop, &blocker);
  cr_assert(eq(u32, eddy_threadpool_size(), 1));

  int rc = eddy_queue_work(&loop, &victim, EDDY_WORK_FAST, victim_work,
                           victim_after);
  cr_assert(eq(int, rc, 0));
  cr_assert(eq(int, eddy_cancel(&victim), 0));
  cr_assert(eq(int, eddy_cancel(&victim), EDDY_EBUSY), "cancelled twice");
  cr_assert(eq(int, eddy_cancel(&blocker), EDDY_EBUSY), "running");
  /* The callback comes later, from the loop, as for finished work. */
  cr_assert(eq(int, victim_calls, 0));

  sem_post(&blocker_release);
  eddy_run(&loop, EDDY_RUN_DEFAULT);

  cr_assert(eq(int, victim_calls, 1));
  cr_assert(eq(int, victim_status, EDDY_ECANCELED));
  cr_assert(eq(int, __atomic_load_n(&victim_work_ran, __ATOMIC_RELAXED), 0));
  cr_assert(eq(int, blocker_calls, 1));
  cr_assert(eq(int, blocker_status, 0));
  cr_assert(eq(int, eddy_cancel(&blocker), EDDY_EBUSY), "already ran");
  eddy_test_loop_close(&loop);
}

EDDY_IO_TEST(pool, pool_memory_usage_reports_queue_depth) {
  setenv("EDDY_THREADPOOL_SIZE", "1", 1);
  eddy_loop_t loop;
  eddy_work_t blocker, queued[3];
  eddy_memory_usage_t mu;
  eddy_test_loop_init(&loop, *backend);
  block_the_pool(&loop, &blocker);
  for (int i = 0; i < 3; i++)
    cr_assert(eq(int,
                 eddy_queue_work(&loop, &queued[i], EDDY_WORK_FAST, noop_work,
                                 NULL),
                 0));

  cr_assert(eq(int, eddy_memory_usage(&loop, &mu), 0));
  cr_assert(eq(sz, mu.pool_queued, (size_t)3));
  cr_assert(eq(sz, mu.pool_threads, (size_t)1));

  sem_post(&blocker_release);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(sz, eddy__pool_queued(), (size_t)0));
  eddy_test_loop_close(&loop);
}

/* ---- slow work ------------------------------------------------------------ */

#define SLOW_JOBS 20

static int slow_now, slow_max, slow_done; /* atomic */
static int fast_saw_slow_done = -1;       /* atomic */
static int slow_after_calls, fast_after_calls;

static void slow_work(eddy_work_t *req) {
  (void)req;
  int now = __atomic_add_fetch(&slow_now, 1, __ATOMIC_SEQ_CST);
  int max = __atomic_load_n(&slow_max, __ATOMIC_SEQ_CST);
  while (now > max && !__atomic_compare_exchange_n(&slow_max, &max, now, 0,
                                                   __ATOMIC_SEQ_CST,
                                                   __ATOMIC_SEQ_CST))
    ;
  usleep(20000);
  __atomic_sub_fetch(&slow_now, 1, __ATOMIC_SEQ_CST);
  __atomic_add_fetch(&slow_done, 1, __ATOMIC_SEQ_CST);
}

static void fast_work(eddy_work_t *req) {
  (void)req;
  __atomic_store_n(&fast_saw_slow_done,
                   __atomic_load_n(&slow_done, __ATOMIC_SEQ_CST),
                   __ATOMIC_SEQ_CST);
}

static void slow_after(eddy_work_t *req, int status) {
  (void)req;
  cr_assert(eq(int, status, 0));
  slow_after_calls++;
}

static void fast_after(eddy_work_t *req, int status) {
  (void)req;
  cr_assert(eq(int, status, 0));
  fast_after_calls++;
}

EDDY_IO_TEST(pool, pool_slow_work_at_most_half_threads) {
  setenv("EDDY_THREADPOOL_SIZE", "4", 1);
  eddy_loop_t loop;
  eddy_work_t slow[SLOW_JOBS], fast;
  eddy_test_loop_init(&loop, *backend);

  for (int i = 0; i < SLOW_JOBS; i++)
    cr_assert(eq(int,
                 eddy_queue_work(&loop, &slow[i], EDDY_WORK_SLOW, slow_work,
                                 slow_after),
                 0));
  cr_assert(eq(int,
               eddy_queue_work(&loop, &fast, EDDY_WORK_FAST, fast_work,
                               fast_after),
               0));
  eddy_run(&loop, EDDY_RUN_DEFAULT);

  cr_assert(eq(u32, eddy_threadpool_size(), 4));
  cr_assert(le(int, __atomic_load_n(&slow_max, __ATOMIC_SEQ_CST), 2));
  cr_assert(eq(int, __atomic_load_n(&slow_max, __ATOMIC_SEQ_CST), 2));
  cr_assert(eq(int, slow_after_calls, SLOW_JOBS));
  cr_assert(eq(int, fast_after_calls, 1));
  /* The fast job had threads of its own: it did not wait for slow ones.
   * One FIFO queue over four threads would have run it after 16. */
  int saw = __atomic_load_n(&fast_saw_slow_done, __ATOMIC_SEQ_CST);
  cr_assert(ge(int, saw, 0));
  cr_assert(lt(int, saw, 4), "the fast job waited for %d slow jobs", saw);
  eddy_test_loop_close(&loop);
}

/* ---- parallelism ---------------------------------------------------------- */

/* Each job waits (up to 10 s) until `want` jobs have arrived: it returns
 * having seen them all only if they ran at the same time. */
static int arrived, saw_all; /* atomic */
static int rendezvous_want;

static void rendezvous_work(eddy_work_t *req) {
  (void)req;
  __atomic_add_fetch(&arrived, 1, __ATOMIC_SEQ_CST);
  for (int i = 0; i < 10000; i++) {
    if (__atomic_load_n(&arrived, __ATOMIC_SEQ_CST) >= rendezvous_want) {
      __atomic_add_fetch(&saw_all, 1, __ATOMIC_SEQ_CST);
      return;
    }
    usleep(1000);
  }
}

static void run_rendezvous_on(eddy_loop_t *loop, eddy_work_class cls,
                              int n) {
  eddy_work_t reqs[4];
  __atomic_store_n(&arrived, 0, __ATOMIC_SEQ_CST);
  __atomic_store_n(&saw_all, 0, __ATOMIC_SEQ_CST);
  rendezvous_want = n;
  for (int i = 0; i < n; i++)
    cr_assert(eq(int,
                 eddy_queue_work(loop, &reqs[i], cls, rendezvous_work, NULL),
                 0));
  eddy_run(loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, __atomic_load_n(&saw_all, __ATOMIC_SEQ_CST), n));
}

static void run_rendezvous(const char *backend, eddy_work_class cls, int n) {
  eddy_loop_t loop;
  eddy_work_t warm;
  setenv("EDDY_THREADPOOL_SIZE", "4", 1);
  eddy_test_loop_init(&loop, backend);
  /* Start the threads and let them all fall asleep, so that the burst
   * must wake them rather than find them starting. */
  cr_assert(eq(int, eddy_queue_work(&loop, &warm, cls, noop_work, NULL), 0));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  usleep(100000);
  run_rendezvous_on(&loop, cls, n);
  eddy_test_loop_close(&loop);
}

/* Submission wakes one worker at a time; each wakes the next while work is
 * left, so a burst still reaches every thread. */
EDDY_IO_TEST(pool, pool_burst_runs_on_all_threads_at_once) {
  run_rendezvous(*backend, EDDY_WORK_FAST, 4);
}

EDDY_IO_TEST(pool, pool_slow_work_uses_its_half_at_once) {
  run_rendezvous(*backend, EDDY_WORK_SLOW, 2);
}

/* ---- size ----------------------------------------------------------------- */

Test(pool, pool_size_from_env) {
  static const struct {
    const char *value;
    unsigned size;
  } cases[] = {
      {"1", 1},   {"4", 4},    {"16", 16},    {"1024", 1024},
      {"0", 4},   {"abc", 4},  {"", 4},       {"-1", 4},
      {"12x", 4}, {"5000", 1024}, {"99999999999999999999999", 1024},
  };
  unsetenv("EDDY_THREADPOOL_SIZE");
  cr_assert(eq(u32, eddy_threadpool_size(), 4), "unset");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    setenv("EDDY_THREADPOOL_SIZE", cases[i].value, 1);
    cr_assert(eq(u32, eddy_threadpool_size(), cases[i].size), "\"%s\"",
              cases[i].value);
  }
}

/* ---- fork ----------------------------------------------------------------- */

static int done_calls;

static void count_done(eddy_work_t *req, int status) {
  (void)req;
  if (status == 0)
    done_calls++;
}

/* In the child: 0 if the pool starts afresh and runs work, else a code
 * saying what went wrong. */
static int child_uses_pool(void) {
  eddy_loop_t loop;
  eddy_work_t req;
  if (eddy__pool_threads() != 0)
    return 10;
  if (eddy_loop_init(&loop) != 0)
    return 11;
  done_calls = 0;
  if (eddy_queue_work(&loop, &req, EDDY_WORK_FAST, noop_work, count_done) != 0)
    return 12;
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  if (done_calls != 1)
    return 13;
  if (eddy__pool_threads() != (size_t)eddy_threadpool_size())
    return 14;
  if (eddy_loop_close(&loop) != 0)
    return 15;
  return 0;
}

/* Waits up to 20 s; a child still running then is killed, so that it
 * cannot outlive the test. */
static int wait_child(pid_t pid, int *st) {
  for (int i = 0; i < 2000; i++) {
    if (waitpid(pid, st, WNOHANG) == pid)
      return 0;
    usleep(10000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, st, 0);
  return -1;
}

EDDY_IO_TEST(pool, pool_child_after_fork_gets_fresh_pool) {
  eddy_loop_t loop;
  eddy_work_t req;
  setenv("EDDY_THREADPOOL_SIZE", "4", 1);
  eddy_test_loop_init(&loop, *backend);
  /* Every thread runs a job, so none is still starting when we fork: a
   * sanitizer's allocator (unlike glibc's malloc) is not fork-safe, and a
   * thread inside it at fork time would leave its lock held in the child. */
  run_rendezvous_on(&loop, EDDY_WORK_FAST, 4);
  cr_assert(eq(int,
               eddy_queue_work(&loop, &req, EDDY_WORK_FAST, noop_work,
                               count_done),
               0));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, done_calls, 1));
  cr_assert(eq(sz, eddy__pool_threads(), (size_t)4));

  pid_t pid = fork();
  cr_assert(ge(int, pid, 0));
  if (pid == 0)
    _exit(child_uses_pool());
  int st;
  cr_assert(eq(int, wait_child(pid, &st), 0), "the child hung");
  /* 0: exited with 0; the low byte is a signal, the next the exit code. */
  cr_assert(eq(int, st, 0), "child: exit code %d, signal %d",
            WIFEXITED(st) ? WEXITSTATUS(st) : -1,
            WIFSIGNALED(st) ? WTERMSIG(st) : 0);

  /* The parent's pool is untouched. */
  done_calls = 0;
  cr_assert(eq(int,
               eddy_queue_work(&loop, &req, EDDY_WORK_FAST, noop_work,
                               count_done),
               0));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, done_calls, 1));
  eddy_test_loop_close(&loop);
}

/* ---- other threads -------------------------------------------------------- */

static eddy_async_t keep_alive;
static eddy_work_t remote_req;
static int remote_submit_rc = 1; /* atomic */
static int remote_after_calls, remote_after_on_loop;

static void remote_after(eddy_work_t *req, int status) {
  (void)req;
  remote_after_calls++;
  remote_after_on_loop = pthread_equal(pthread_self(), loop_thread) && !status;
  eddy_close((eddy_handle_t *)&keep_alive, NULL);
}

static void *remote_submitter(void *arg) {
  int rc = eddy_queue_work(arg, &remote_req, EDDY_WORK_FAST, noop_work,
                           remote_after);
  __atomic_store_n(&remote_submit_rc, rc, __ATOMIC_SEQ_CST);
  return NULL;
}

static void unused_async(eddy_async_t *a) { (void)a; }

EDDY_IO_TEST(pool, pool_submission_from_other_thread) {
  eddy_loop_t loop;
  pthread_t t;
  eddy_test_loop_init(&loop, *backend);
  loop_thread = pthread_self();
  cr_assert(eq(int, eddy_async_init(&loop, &keep_alive, unused_async), 0));
  cr_assert(eq(int, pthread_create(&t, NULL, remote_submitter, &loop), 0));

  eddy_run(&loop, EDDY_RUN_DEFAULT);
  pthread_join(t, NULL);

  cr_assert(eq(int, __atomic_load_n(&remote_submit_rc, __ATOMIC_SEQ_CST), 0));
  cr_assert(eq(int, remote_after_calls, 1));
  cr_assert(eq(int, remote_after_on_loop, 1));
  eddy_test_loop_close(&loop);
}

/* ---- next tick ------------------------------------------------------------ */

#define TICK_JOBS 200

static char order[TICK_JOBS * 3 + 1];
static size_t norder;
static eddy_loop_t *tick_loop;

static void log_tick(void *arg) {
  (void)arg;
  order[norder++] = 't';
}

static void log_microtask(void *arg) {
  (void)arg;
  order[norder++] = 'm';
}

static void tick_after(eddy_work_t *req, int status) {
  (void)req;
  (void)status;
  order[norder++] = 'a';
  /* Microtask first: the tick must still run before it. */
  cr_assert(eq(int, eddy_queue_microtask(tick_loop, log_microtask, NULL), 0));
  cr_assert(eq(int, eddy_next_tick(tick_loop, log_tick, NULL), 0));
}

EDDY_IO_TEST(pool, pool_after_work_callback_drains_next_tick) {
  eddy_loop_t loop;
  eddy_work_t reqs[TICK_JOBS];
  eddy_test_loop_init(&loop, *backend);
  tick_loop = &loop;
  /* Many no-op jobs, so that most complete in the same batch. */
  for (int i = 0; i < TICK_JOBS; i++)
    cr_assert(eq(int,
                 eddy_queue_work(&loop, &reqs[i], EDDY_WORK_FAST, noop_work,
                                 tick_after),
                 0));
  eddy_run(&loop, EDDY_RUN_DEFAULT);

  cr_assert(eq(sz, norder, (size_t)TICK_JOBS * 3));
  for (size_t i = 0; i < norder; i += 3)
    cr_assert(eq(str, ((char[]){order[i], order[i + 1], order[i + 2], 0}),
                 "atm"),
              "at %zu", i);
  eddy_test_loop_close(&loop);
}

/* ---- reuse and shutdown --------------------------------------------------- */

#define REQUEUES 1000

static int requeue_count;
static eddy_loop_t *requeue_loop;

static void requeue_after(eddy_work_t *req, int status) {
  cr_assert(eq(int, status, 0));
  if (++requeue_count < REQUEUES)
    cr_assert(eq(int,
                 eddy_queue_work(requeue_loop, req, req->cls, noop_work,
                                 requeue_after),
                 0));
}

EDDY_IO_TEST(pool, pool_after_work_may_queue_the_same_request_again) {
  eddy_loop_t loop;
  eddy_work_t req;
  eddy_test_loop_init(&loop, *backend);
  requeue_loop = &loop;
  cr_assert(eq(int,
               eddy_queue_work(&loop, &req, EDDY_WORK_SLOW, noop_work,
                               requeue_after),
               0));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, requeue_count, REQUEUES));
  eddy_test_loop_close(&loop);
}

EDDY_IO_TEST(pool, pool_shutdown_joins_threads_and_next_submission_restarts) {
  setenv("EDDY_THREADPOOL_SIZE", "3", 1);
  eddy_loop_t loop;
  eddy_work_t req;
  eddy_test_loop_init(&loop, *backend);
  cr_assert(eq(sz, eddy__pool_threads(), (size_t)0));
  cr_assert(eq(int,
               eddy_queue_work(&loop, &req, EDDY_WORK_FAST, noop_work,
                               count_done),
               0));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(sz, eddy__pool_threads(), (size_t)3));

  eddy__pool_shutdown();
  cr_assert(eq(sz, eddy__pool_threads(), (size_t)0));
  setenv("EDDY_THREADPOOL_SIZE", "2", 1);
  cr_assert(eq(int,
               eddy_queue_work(&loop, &req, EDDY_WORK_FAST, noop_work,
                               count_done),
               0));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, done_calls, 2));
  cr_assert(eq(sz, eddy__pool_threads(), (size_t)2));
  eddy_test_loop_close(&loop);
  eddy__pool_shutdown();
}

/* ---- misuse --------------------------------------------------------------- */

EDDY_IO_TEST(pool, pool_queue_work_invalid_args) {
  eddy_loop_t loop;
  eddy_work_t req = {0};
  eddy_test_loop_init(&loop, *backend);

  cr_assert(eq(int,
               eddy_queue_work(NULL, &req, EDDY_WORK_FAST, noop_work, NULL),
               EDDY_EINVAL));
  cr_assert(eq(int,
               eddy_queue_work(&loop, NULL, EDDY_WORK_FAST, noop_work, NULL),
               EDDY_EINVAL));
  cr_assert(eq(int, eddy_queue_work(&loop, &req, EDDY_WORK_FAST, NULL, NULL),
               EDDY_EINVAL));
  cr_assert(eq(int,
               eddy_queue_work(&loop, &req, (eddy_work_class)2, noop_work,
                               NULL),
               EDDY_EINVAL));
  cr_assert(eq(int,
               eddy_queue_work(&loop, &req, (eddy_work_class)-1, noop_work,
                               NULL),
               EDDY_EINVAL));
  /* Failed calls queue nothing: the loop has nothing to wait for. */
  cr_assert(eq(int, eddy_loop_alive(&loop), 0));
  cr_assert(eq(sz, eddy__pool_threads(), (size_t)0));

  cr_assert(eq(int, eddy_cancel(NULL), EDDY_EINVAL));
  cr_assert(eq(int, eddy_cancel(&req), EDDY_EINVAL), "never queued");

  /* A NULL after_work_cb is allowed; the request still completes. */
  cr_assert(eq(int,
               eddy_queue_work(&loop, &req, EDDY_WORK_FAST, noop_work, NULL),
               0));
  cr_assert(eq(int, eddy_loop_alive(&loop), 1));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, eddy_loop_alive(&loop), 0));
  eddy_test_loop_close(&loop);
}
