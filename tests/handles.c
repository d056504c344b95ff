/* Async, signal, poll and idle/prepare/check handles. */
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(handles, .timeout = 60);

/* ---- Async -------------------------------------------------------------- */

#define SENDERS 8
#define SENDS 100000

static long sent;      /* atomic: sends made, all threads */
static long calls;     /* callbacks run */
static long last_seen; /* `sent` as the last callback saw it */
static pthread_t loop_thread;
static int wrong_thread;

static void *sender(void *arg) {
  eddy_async_t *a = arg;
  for (int i = 0; i < SENDS; i++) {
    __atomic_fetch_add(&sent, 1, __ATOMIC_SEQ_CST);
    eddy_async_send(a);
  }
  return NULL;
}

static void async_cb(eddy_async_t *a) {
  calls++;
  if (!pthread_equal(pthread_self(), loop_thread))
    wrong_thread = 1;
  last_seen = __atomic_load_n(&sent, __ATOMIC_SEQ_CST);
  /* Only the final total ends the test: if the last wakeup were lost, the
   * loop would block for good and the test would time out. */
  if (last_seen == (long)SENDERS * SENDS)
    eddy_close((eddy_handle_t *)a, NULL);
}

EDDY_IO_TEST(handles, async_from_8_threads_coalesces_and_keeps_last_wakeup) {
  eddy_loop_t loop;
  eddy_async_t a;
  pthread_t th[SENDERS];
  eddy_test_loop_init(&loop, *backend);
  loop_thread = pthread_self();
  cr_assert(eq(int, eddy_async_init(&loop, &a, async_cb), 0));
  for (int i = 0; i < SENDERS; i++)
    pthread_create(&th[i], NULL, sender, &a);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  for (int i = 0; i < SENDERS; i++)
    pthread_join(th[i], NULL);
  cr_assert(eq(long, last_seen, (long)SENDERS * SENDS));
  cr_assert(ge(long, calls, 1L));
  cr_assert(lt(long, calls, (long)SENDERS * SENDS), "no coalescing");
  cr_assert(eq(int, wrong_thread, 0));
  eddy_test_loop_close(&loop);
}

static void count_call(eddy_async_t *a) {
  calls++;
  eddy_close((eddy_handle_t *)a, NULL);
}

EDDY_IO_TEST(handles, async_sends_before_run_coalesce_into_one_call) {
  eddy_loop_t loop;
  eddy_async_t a;
  eddy_test_loop_init(&loop, *backend);
  eddy_async_init(&loop, &a, count_call);
  for (int i = 0; i < 10; i++)
    cr_assert(eq(int, eddy_async_send(&a), 0));
  eddy_test_loop_close(&loop);
  cr_assert(eq(long, calls, 1L));
}

EDDY_IO_TEST(handles, unrefed_async_does_not_keep_loop_alive) {
  eddy_loop_t loop;
  eddy_async_t a;
  eddy_test_loop_init(&loop, *backend);
  eddy_async_init(&loop, &a, count_call);
  cr_assert(eddy_loop_alive(&loop));
  eddy_unref((eddy_handle_t *)&a);
  cr_assert(eq(int, eddy_run(&loop, EDDY_RUN_DEFAULT), 0));
  eddy_close((eddy_handle_t *)&a, NULL);
  eddy_test_loop_close(&loop);
  cr_assert(eq(long, calls, 0L));
}

/* ---- Signals ------------------------------------------------------------ */

static int sig_calls[2];
static eddy_signal_t sigs[2];

static void on_signal(eddy_signal_t *s, int signum) {
  cr_assert(eq(int, signum, SIGUSR1));
  sig_calls[s == &sigs[1]]++;
  if (sig_calls[0] && sig_calls[1]) {
    eddy_close((eddy_handle_t *)&sigs[0], NULL);
    eddy_close((eddy_handle_t *)&sigs[1], NULL);
  }
}

EDDY_IO_TEST(handles, signal_reaches_every_handle_watching_it) {
  eddy_loop_t loop;
  eddy_test_loop_init(&loop, *backend);
  for (int i = 0; i < 2; i++) {
    eddy_signal_init(&loop, &sigs[i]);
    cr_assert(eq(int, eddy_signal_start(&sigs[i], on_signal, SIGUSR1), 0));
  }
  cr_assert(eq(int, kill(getpid(), SIGUSR1), 0));
  eddy_test_loop_close(&loop);
  cr_assert(eq(int, sig_calls[0], 1));
  cr_assert(eq(int, sig_calls[1], 1));
}

static void ignore_signal(eddy_signal_t *s, int signum) {}

EDDY_IO_TEST(handles, signal_default_action_back_when_last_handle_stops) {
  pid_t pid = fork();
  cr_assert(ge(int, pid, 0));
  if (pid == 0) {
    eddy_loop_t loop;
    eddy_signal_t a, b;
    setenv("EDDY_BACKEND", *backend, 1);
    if (eddy_loop_init(&loop) != 0)
      _exit(10);
    eddy_signal_init(&loop, &a);
    eddy_signal_init(&loop, &b);
    eddy_signal_start(&a, ignore_signal, SIGUSR2);
    eddy_signal_start(&b, ignore_signal, SIGUSR2);
    eddy_signal_stop(&a);
    /* b still watches: the signal is queued for the loop, not fatal. */
    kill(getpid(), SIGUSR2);
    eddy_run(&loop, EDDY_RUN_NOWAIT);
    eddy_signal_stop(&b);
    /* No watcher left: SIGUSR2's default action (terminate) is back. */
    kill(getpid(), SIGUSR2);
    _exit(11);
  }
  int status;
  cr_assert(eq(int, waitpid(pid, &status, 0), pid));
  int signaled = WIFSIGNALED(status);
  cr_assert(signaled, "child exited with %d",
            WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  int sig = WTERMSIG(status);
  cr_assert(eq(int, sig, SIGUSR2));
}

EDDY_IO_TEST(handles, signal_start_rejects_bad_numbers) {
  eddy_loop_t loop;
  eddy_signal_t s;
  eddy_test_loop_init(&loop, *backend);
  eddy_signal_init(&loop, &s);
  cr_assert(eq(int, eddy_signal_start(&s, ignore_signal, 0), EDDY_EINVAL));
  cr_assert(eq(int, eddy_signal_start(&s, ignore_signal, SIGKILL),
               EDDY_EINVAL));
  cr_assert(eq(int, eddy_signal_start(&s, ignore_signal, 100000),
               EDDY_EINVAL));
  cr_assert(eq(int, eddy_signal_start(&s, NULL, SIGUSR1), EDDY_EINVAL));
  eddy_close((eddy_handle_t *)&s, NULL);
  eddy_test_loop_close(&loop);
}

/* ---- Poll --------------------------------------------------------------- */

static int poll_events;

static void poll_once(eddy_poll_t *p, int status, int events) {
  cr_assert(eq(int, status, 0));
  poll_events |= events;
  eddy_close((eddy_handle_t *)p, NULL);
}

EDDY_IO_TEST(handles, poll_reports_readable_only_when_data_arrives) {
  eddy_loop_t loop;
  eddy_poll_t p;
  int sv[2];
  cr_assert(eq(int, socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0));
  eddy_test_loop_init(&loop, *backend);
  eddy_poll_init(&loop, &p, sv[0]);
  eddy_poll_start(&p, EDDY_READABLE, poll_once);
  eddy_run(&loop, EDDY_RUN_NOWAIT);
  cr_assert(eq(int, poll_events, 0), "readable before any data");
  cr_assert(eq(long, (long)write(sv[1], "ping", 4), 4L));
  eddy_test_loop_close(&loop);
  cr_assert(eq(int, poll_events, EDDY_READABLE));
  close(sv[0]);
  close(sv[1]);
}

EDDY_IO_TEST(handles, poll_reports_writable_and_disconnect) {
  eddy_loop_t loop;
  eddy_poll_t p;
  int sv[2];
  cr_assert(eq(int, socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0));
  eddy_test_loop_init(&loop, *backend);
  eddy_poll_init(&loop, &p, sv[0]);
  eddy_poll_start(&p, EDDY_WRITABLE, poll_once);
  eddy_test_loop_close(&loop);
  cr_assert(eq(int, poll_events, EDDY_WRITABLE));

  poll_events = 0;
  eddy_test_loop_init(&loop, *backend);
  eddy_poll_init(&loop, &p, sv[0]);
  eddy_poll_start(&p, EDDY_DISCONNECT, poll_once);
  shutdown(sv[1], SHUT_WR);
  eddy_test_loop_close(&loop);
  cr_assert(eq(int, poll_events, EDDY_DISCONNECT));
  close(sv[0]);
  close(sv[1]);
}

EDDY_IO_TEST(handles, poll_stop_silences_and_keeps_fd_open) {
  eddy_loop_t loop;
  eddy_poll_t p;
  int sv[2];
  cr_assert(eq(int, socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0));
  eddy_test_loop_init(&loop, *backend);
  eddy_poll_init(&loop, &p, sv[0]);
  eddy_poll_start(&p, EDDY_READABLE | EDDY_WRITABLE, poll_once);
  cr_assert(eq(int, eddy_poll_stop(&p), 0));
  cr_assert(not(eddy_loop_alive(&loop)));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, poll_events, 0));
  eddy_close((eddy_handle_t *)&p, NULL);
  eddy_test_loop_close(&loop);
  /* The descriptor is still the caller's. */
  cr_assert(eq(long, (long)write(sv[0], "x", 1), 1L));
  close(sv[0]);
  close(sv[1]);
}

EDDY_IO_TEST(handles, poll_start_rejects_bad_arguments) {
  eddy_loop_t loop;
  eddy_poll_t p;
  eddy_test_loop_init(&loop, *backend);
  cr_assert(eq(int, eddy_poll_init(&loop, &p, -1), EDDY_EINVAL));
  eddy_poll_init(&loop, &p, 0);
  cr_assert(eq(int, eddy_poll_start(&p, 0, poll_once), EDDY_EINVAL));
  cr_assert(eq(int, eddy_poll_start(&p, 64, poll_once), EDDY_EINVAL));
  cr_assert(eq(int, eddy_poll_start(&p, EDDY_READABLE, NULL), EDDY_EINVAL));
  eddy_close((eddy_handle_t *)&p, NULL);
  eddy_test_loop_close(&loop);
}

/* ---- Idle, prepare, check ----------------------------------------------- */

static int hook_runs[3];
static eddy_idle_t hk[3];

static void hook_count(eddy_idle_t *h) {
  int i = (int)(h - hk);
  if (++hook_runs[i] == 3)
    eddy_close((eddy_handle_t *)h, NULL);
}

EDDY_IO_TEST(handles, idle_prepare_check_run_once_per_iteration) {
  eddy_loop_t loop;
  eddy_test_loop_init(&loop, *backend);
  eddy_idle_init(&loop, &hk[0]);
  eddy_prepare_init(&loop, &hk[1]);
  eddy_check_init(&loop, &hk[2]);
  cr_assert(eq(int, eddy_idle_start(&hk[0], hook_count), 0));
  cr_assert(eq(int, eddy_prepare_start(&hk[1], hook_count), 0));
  cr_assert(eq(int, eddy_check_start(&hk[2], hook_count), 0));
  /* Starting twice is harmless; a prepare function on an idle handle is
   * refused. */
  cr_assert(eq(int, eddy_idle_start(&hk[0], hook_count), 0));
  cr_assert(eq(int, eddy_prepare_start(&hk[0], hook_count), EDDY_EINVAL));
  eddy_test_loop_close(&loop);
  for (int i = 0; i < 3; i++)
    cr_assert(eq(int, hook_runs[i], 3), "hook %d", i);
}
