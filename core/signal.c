/* Signal handles, read from one signalfd per loop.
 *
 * While any handle watches a signal, the signal is blocked in the loop's
 * thread (pool threads block every signal), so the kernel queues it for the
 * signalfd instead of running its disposition.  eddy never installs a
 * handler: when the last handle of a signal stops, the signal is unblocked
 * and whatever disposition it had before (the default, usually) is back.
 * A process-wide count per signal decides when to unblock, so two loops of
 * one thread can watch the same signal. */
#include <errno.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "internal.h"

static pthread_mutex_t signal_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned signal_watchers[_NSIG]; /* under signal_lock */

static int signal_valid(int signum) {
  return signum > 0 && signum < _NSIG && signum != SIGKILL &&
         signum != SIGSTOP;
}

static void signal_dispatch(eddy_loop_t *loop, int signum) {
  eddy_queue_t q;

  eddy__queue_move(&loop->signal_handles, &q);
  while (!eddy__queue_empty(&q)) {
    eddy_queue_t *n = eddy__queue_head(&q);
    eddy_signal_t *s = eddy__container_of(n, eddy_signal_t, node);
    eddy__queue_remove(n);
    eddy__queue_insert_tail(&loop->signal_handles, n);
    if (s->signum == signum) {
      s->cb(s, signum);
      eddy__after_callback(loop);
    }
  }
}

static void signal_io_cb(eddy_loop_t *loop, eddy__io_t *io, unsigned events) {
  struct signalfd_siginfo si[16];

  for (;;) {
    ssize_t n = read(io->fd, si, sizeof si);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return; /* EAGAIN: all read */
    for (size_t i = 0; i < (size_t)n / sizeof si[0]; i++)
      signal_dispatch(loop, (int)si[i].ssi_signo);
  }
}

void eddy__signal_loop_init(eddy_loop_t *loop) {
  eddy__io_init(&loop->signal_io, signal_io_cb, -1);
  sigemptyset(&loop->signal_mask);
}

void eddy__signal_loop_close(eddy_loop_t *loop) {
  if (loop->signal_io.fd < 0)
    return;
  eddy__io_close(loop, &loop->signal_io);
  close(loop->signal_io.fd);
  loop->signal_io.fd = -1;
}

/* Points the loop's signalfd at its current mask, creating it at first. */
static int signal_update_fd(eddy_loop_t *loop) {
  int fd = signalfd(loop->signal_io.fd, &loop->signal_mask,
                    SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0)
    return -errno;
  if (loop->signal_io.fd < 0) {
    loop->signal_io.fd = fd;
    int err = eddy__io_start(loop, &loop->signal_io, EDDY__IO_READ);
    if (err != 0) {
      close(fd);
      loop->signal_io.fd = -1;
      return err;
    }
  }
  return 0;
}

static int loop_watches(eddy_loop_t *loop, int signum, eddy_signal_t *skip) {
  for (eddy_queue_t *n = loop->signal_handles.next; n != &loop->signal_handles;
       n = n->next) {
    eddy_signal_t *s = eddy__container_of(n, eddy_signal_t, node);
    if (s != skip && s->signum == signum)
      return 1;
  }
  return 0;
}

/* Blocks signum in this thread on the first watcher of the process,
 * unblocks it after the last. */
static void signal_count(int signum, int delta) {
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signum);
  pthread_mutex_lock(&signal_lock);
  if (delta > 0 && signal_watchers[signum]++ == 0)
    pthread_sigmask(SIG_BLOCK, &one, NULL);
  else if (delta < 0 && --signal_watchers[signum] == 0)
    pthread_sigmask(SIG_UNBLOCK, &one, NULL);
  pthread_mutex_unlock(&signal_lock);
}

int eddy_signal_init(eddy_loop_t *loop, eddy_signal_t *s) {
  if (loop == NULL || s == NULL)
    return EDDY_EINVAL;
  eddy__handle_init(loop, &s->handle, EDDY_SIGNAL);
  s->signum = 0;
  s->cb = NULL;
  eddy__queue_init(&s->node);
  return 0;
}

int eddy_signal_start(eddy_signal_t *s, eddy_signal_cb cb, int signum) {
  EDDY__MISUSE(eddy__handle_closing(&s->handle), EDDY_EINVAL);
  if (cb == NULL || !signal_valid(signum))
    return EDDY_EINVAL;
  if (eddy_is_active(&s->handle) && s->signum == signum) {
    s->cb = cb;
    return 0;
  }
  eddy_signal_stop(s);

  eddy_loop_t *loop = s->handle.loop;
  if (!loop_watches(loop, signum, NULL)) {
    sigaddset(&loop->signal_mask, signum);
    signal_count(signum, +1);
    int err = signal_update_fd(loop);
    if (err != 0) {
      sigdelset(&loop->signal_mask, signum);
      signal_count(signum, -1);
      return err;
    }
  }
  s->signum = signum;
  s->cb = cb;
  eddy__queue_insert_tail(&loop->signal_handles, &s->node);
  eddy__handle_start(&s->handle);
  return 0;
}

int eddy_signal_stop(eddy_signal_t *s) {
  if (!eddy_is_active(&s->handle))
    return 0;
  eddy_loop_t *loop = s->handle.loop;
  eddy__queue_remove(&s->node);
  eddy__handle_stop(&s->handle);
  if (!loop_watches(loop, s->signum, s)) {
    sigdelset(&loop->signal_mask, s->signum);
    signal_update_fd(loop); /* shrinking the mask of a live fd cannot fail */
    signal_count(s->signum, -1);
  }
  return 0;
}

void eddy__signal_close(eddy_signal_t *s) {
  eddy_signal_stop(s);
}
