/* The cross-thread code under ThreadSanitizer, without Criterion.
 *
 * Criterion 2.4 cannot start under TSan (its shared arena is mapped where
 * TSan allows no memory), so `make SANITIZE=thread tsan` builds this plain
 * program instead.  Each scenario asserts its outcome; TSan reports races.
 * It ends with the "N passed, N failed" line. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eddy.h"
#include "pool.h"

static int failed_checks;

#define CHECK(cond)                                                           \
  do {                                                                        \
    if (!(cond)) {                                                            \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,      \
              #cond);                                                         \
      failed_checks++;                                                        \
    }                                                                         \
  } while (0)

static pthread_t loop_thread;

/* ---- Pool: many items, from the loop thread and from other threads ------ */

#define ITEMS 20000
#define SUBMITTERS 4

static unsigned work_runs[ITEMS * 2]; /* atomic */
static unsigned after_runs[ITEMS * 2];
static int off_thread;
static eddy_work_t reqs[ITEMS * 2];

static void count_work(eddy_work_t *req) {
  __atomic_fetch_add(&work_runs[(size_t)req->data], 1, __ATOMIC_RELAXED);
}

static void count_after(eddy_work_t *req, int status) {
  CHECK(status == 0);
  after_runs[(size_t)req->data]++;
  if (!pthread_equal(pthread_self(), loop_thread))
    off_thread = 1;
}

typedef struct {
  eddy_loop_t *loop;
  size_t first;
} submitter_t;

static void *submit_from_thread(void *arg) {
  submitter_t *s = arg;
  for (size_t i = s->first; i < s->first + ITEMS / SUBMITTERS; i++) {
    reqs[i].data = (void *)i;
    CHECK(eddy_queue_work(s->loop, &reqs[i],
                          i % 3 ? EDDY_WORK_FAST : EDDY_WORK_SLOW, count_work,
                          count_after) == 0);
  }
  return NULL;
}

static void keep_alive_cb(eddy_timer_t *t) {
  size_t done = 0;
  for (size_t i = 0; i < ITEMS * 2; i++)
    done += after_runs[i];
  if (done == ITEMS * 2)
    eddy_close((eddy_handle_t *)t, NULL);
}

static void pool_items_complete_once(void) {
  eddy_loop_t loop;
  eddy_timer_t keep_alive;
  pthread_t th[SUBMITTERS];
  submitter_t sub[SUBMITTERS];

  CHECK(eddy_loop_init(&loop) == 0);
  for (size_t i = 0; i < ITEMS; i++) {
    reqs[i].data = (void *)i;
    CHECK(eddy_queue_work(&loop, &reqs[i], EDDY_WORK_FAST, count_work,
                          count_after) == 0);
  }
  /* Work submitted from other threads keeps the loop alive only once it is
   * queued, so a timer holds the loop until every item came back. */
  eddy_timer_init(&loop, &keep_alive);
  eddy_timer_start(&keep_alive, keep_alive_cb, 1, 1);
  for (int t = 0; t < SUBMITTERS; t++) {
    sub[t] = (submitter_t){&loop, ITEMS + (size_t)t * (ITEMS / SUBMITTERS)};
    pthread_create(&th[t], NULL, submit_from_thread, &sub[t]);
  }
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  for (int t = 0; t < SUBMITTERS; t++)
    pthread_join(th[t], NULL);
  for (size_t i = 0; i < ITEMS * 2; i++) {
    CHECK(__atomic_load_n(&work_runs[i], __ATOMIC_RELAXED) == 1);
    CHECK(after_runs[i] == 1);
  }
  CHECK(!off_thread);
  CHECK(eddy_loop_close(&loop) == 0);
}

/* ---- Pool: cancel races with workers taking work ------------------------ */

static int cancel_status[256];

static void note_status(eddy_work_t *req, int status) {
  cancel_status[(size_t)req->data] = status;
}

static void pool_cancel_races(void) {
  eddy_loop_t loop;
  eddy_work_t w[256];
  CHECK(eddy_loop_init(&loop) == 0);
  for (size_t i = 0; i < 256; i++) {
    w[i].data = (void *)i;
    cancel_status[i] = 1;
    CHECK(eddy_queue_work(&loop, &w[i], EDDY_WORK_FAST, count_work,
                          note_status) == 0);
  }
  int canceled = 0;
  for (size_t i = 0; i < 256; i += 2)
    canceled += eddy_cancel(&w[i]) == 0;
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  int got = 0;
  for (size_t i = 0; i < 256; i++) {
    CHECK(cancel_status[i] == 0 || cancel_status[i] == EDDY_ECANCELED);
    got += cancel_status[i] == EDDY_ECANCELED;
  }
  CHECK(got == canceled);
  CHECK(eddy_loop_close(&loop) == 0);
}

/* ---- Async: 8 threads, the last wakeup never lost ----------------------- */

#define SENDERS 8
#define SENDS 20000

static long sent;

static void *send_many(void *arg) {
  for (int i = 0; i < SENDS; i++) {
    __atomic_fetch_add(&sent, 1, __ATOMIC_RELAXED);
    eddy_async_send(arg);
  }
  return NULL;
}

static void async_cb(eddy_async_t *a) {
  CHECK(pthread_equal(pthread_self(), loop_thread));
  if (__atomic_load_n(&sent, __ATOMIC_RELAXED) == (long)SENDERS * SENDS)
    eddy_close((eddy_handle_t *)a, NULL);
}

static void async_from_threads(void) {
  eddy_loop_t loop;
  eddy_async_t a;
  pthread_t th[SENDERS];
  CHECK(eddy_loop_init(&loop) == 0);
  CHECK(eddy_async_init(&loop, &a, async_cb) == 0);
  for (int i = 0; i < SENDERS; i++)
    pthread_create(&th[i], NULL, send_many, &a);
  eddy_run(&loop, EDDY_RUN_DEFAULT); /* returns only after the last send */
  for (int i = 0; i < SENDERS; i++)
    pthread_join(th[i], NULL);
  CHECK(eddy_loop_close(&loop) == 0);
}

/* ---- Loops on several threads, sharing the pool ------------------------- */

static void nothing(eddy_work_t *req) {}

static void ping_after(eddy_work_t *req, int status) {
  int *left = req->data;
  if (--*left > 0)
    eddy_queue_work(req->loop, req, EDDY_WORK_FAST, nothing, ping_after);
}

static void *loop_on_thread(void *arg) {
  eddy_loop_t loop;
  eddy_work_t req;
  int left = 500;
  CHECK(eddy_loop_init(&loop) == 0);
  req.data = &left;
  CHECK(eddy_queue_work(&loop, &req, EDDY_WORK_FAST, nothing, ping_after) ==
        0);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  CHECK(left == 0);
  CHECK(eddy_loop_close(&loop) == 0);
  return NULL;
}

static void loops_on_threads(void) {
  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    pthread_create(&th[i], NULL, loop_on_thread, NULL);
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
}

/* ---- Signals: sent from another thread to the process ------------------- */

static int got_signal;

static void *raise_later(void *arg) {
  /* This thread blocks SIGUSR1 too, so only the loop's signalfd takes it. */
  kill(getpid(), SIGUSR1);
  return NULL;
}

static void on_usr1(eddy_signal_t *s, int signum) {
  got_signal = signum;
  eddy_close((eddy_handle_t *)s, NULL);
}

static void signal_from_thread(void) {
  eddy_loop_t loop;
  eddy_signal_t s;
  pthread_t th;
  CHECK(eddy_loop_init(&loop) == 0);
  eddy_signal_init(&loop, &s);
  CHECK(eddy_signal_start(&s, on_usr1, SIGUSR1) == 0);
  pthread_create(&th, NULL, raise_later, NULL); /* inherits the block */
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  pthread_join(th, NULL);
  CHECK(got_signal == SIGUSR1);
  CHECK(eddy_loop_close(&loop) == 0);
}

/* ---- fs: many requests through the pool (and the ring) to the loop ------- */

#define FS_REQS 1000

static char fs_file[64];
static int fs_ok, fs_bad;

static void fs_done(eddy_fs_t *req) {
  int good = req->type == EDDY_FS_READ_FILE
                 ? req->result == 5 && memcmp(req->ptr, "tsan!", 5) == 0
                 : req->result == 0 && req->statbuf.size == 5;
  good ? fs_ok++ : fs_bad++;
  if (!pthread_equal(pthread_self(), loop_thread))
    fs_bad++;
  eddy_fs_req_cleanup(req);
}

/* Workers fill the requests (stat buffers, malloc'd file bytes) that the
 * loop thread then reads and frees: the hand-over TSan must see ordered. */
static void fs_through_pool(void) {
  snprintf(fs_file, sizeof fs_file, "/tmp/eddy-tsan-fs-XXXXXX");
  int fd = mkstemp(fs_file);
  CHECK(fd >= 0 && write(fd, "tsan!", 5) == 5);
  close(fd);
  static eddy_fs_t fs_reqs[FS_REQS];
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 0)
      setenv("EDDY_FS", "pool", 1); /* the ring, if any, on the second */
    else
      unsetenv("EDDY_FS");
    eddy_loop_t loop;
    CHECK(eddy_loop_init(&loop) == 0);
    fs_ok = fs_bad = 0;
    for (int i = 0; i < FS_REQS; i++) {
      eddy_fs_t *r = &fs_reqs[i];
      int rc = i % 2 ? eddy_fs_stat(&loop, r, fs_file, fs_done)
                     : eddy_fs_read_file(&loop, r, fs_file, fs_done);
      CHECK(rc == 0);
    }
    eddy_run(&loop, EDDY_RUN_DEFAULT);
    CHECK(fs_ok == FS_REQS && fs_bad == 0);
    CHECK(eddy_loop_close(&loop) == 0);
  }
  unsetenv("EDDY_FS");
  unlink(fs_file);
}

static const struct {
  const char *name;
  void (*fn)(void);
} scenarios[] = {
    {"pool_items_complete_once", pool_items_complete_once},
    {"pool_cancel_races", pool_cancel_races},
    {"async_from_threads", async_from_threads},
    {"loops_on_threads", loops_on_threads},
    {"signal_from_thread", signal_from_thread},
    {"fs_through_pool", fs_through_pool},
};

int main(void) {
  int passed = 0, failed = 0;
  loop_thread = pthread_self();
  for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
    int before = failed_checks;
    scenarios[i].fn();
    int ok = failed_checks == before;
    printf("[%s] %s\n", ok ? "PASS" : "FAIL", scenarios[i].name);
    ok ? passed++ : failed++;
  }
  eddy__pool_shutdown();
  printf("%d passed, %d failed\n", passed, failed);
  return failed != 0;
}
