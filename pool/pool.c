/* The worker pool: a fixed set of threads, shared by every loop of the
 * process, for work that would block the loop (file system, images, DNS).
 *
 * Submission appends the request to one of two global queues, fast or slow,
 * under the pool mutex.  A worker takes fast work first and slow work only
 * while fewer than half the threads run slow work, so a burst of image jobs
 * cannot starve file reads.  When the work is done the worker appends the
 * request to its loop's completion queue (loop->wq) and writes the loop's
 * eventfd if that queue was empty; the loop then takes the whole queue in
 * one lock and runs the after-work callbacks on its own thread.
 *
 * Lock order: a worker never holds the global pool mutex and a loop's
 * wq_mutex at the same time; each is taken, used and released on its own,
 * so no order between them exists and none can deadlock. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"
#include "pool.h"

#define EDDY__POOL_DEFAULT_SIZE 4u
#define EDDY__POOL_MAX_SIZE 1024u
/* Image work (GraphicsMagick) recurses deeply; glibc's usual default. */
#define EDDY__POOL_STACK_SIZE (8u << 20)

/* eddy_work_t.state.  Zero (a request never queued) is none of these. */
enum {
  EDDY__WORK_QUEUED = 1, /* in a pool queue, may be cancelled */
  EDDY__WORK_RUNNING,    /* taken by a worker (or finished, not delivered) */
  EDDY__WORK_CANCELED,   /* taken off the queue by eddy_cancel */
  EDDY__WORK_DONE        /* after_work_cb called or about to be */
};

static struct {
  pthread_mutex_t mutex;
  pthread_cond_t cond;
  eddy_queue_t fast;
  eddy_queue_t slow;
  size_t nqueued;        /* requests in fast and slow */
  unsigned size;         /* configured thread count, 0 until first start */
  unsigned slow_limit;   /* max(1, size / 2) */
  unsigned slow_running; /* workers running slow work */
  unsigned nthreads;     /* threads created */
  unsigned idle;         /* workers waiting on cond */
  unsigned waking;       /* of those, signalled and not yet awake (0, 1) */
  int started;           /* all threads created */
  int stopping;          /* eddy__pool_shutdown in progress */
  int atfork_registered;
  pthread_t threads[EDDY__POOL_MAX_SIZE];
} pool = {
    .mutex = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP,
    .cond = PTHREAD_COND_INITIALIZER,
    .fast = {&pool.fast, &pool.fast},
    .slow = {&pool.slow, &pool.slow},
};

/* The critical sections are a few list operations long, so a waiter spins
 * a little before it sleeps in the kernel (glibc's adaptive mutex): under a
 * burst of submissions that saves most futex calls. */
static int pool_mutex_init(pthread_mutex_t *m) {
  pthread_mutexattr_t attr;
  int rc;

  rc = pthread_mutexattr_init(&attr);
  if (rc != 0)
    return -rc;
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
  rc = pthread_mutex_init(m, &attr);
  pthread_mutexattr_destroy(&attr);
  return -rc;
}

/* EDDY_THREADPOOL_SIZE: a decimal number; 0, garbage or nothing mean the
 * default, numbers above the maximum mean the maximum. */
static unsigned pool_size_from_env(void) {
  const char *s = getenv("EDDY_THREADPOOL_SIZE");
  char *end;
  unsigned long long n;

  if (s == NULL || *s < '0' || *s > '9')
    return EDDY__POOL_DEFAULT_SIZE;
  errno = 0;
  n = strtoull(s, &end, 10);
  if (*end != '\0' || n == 0)
    return EDDY__POOL_DEFAULT_SIZE;
  if (errno == ERANGE || n > EDDY__POOL_MAX_SIZE)
    return EDDY__POOL_MAX_SIZE;
  return (unsigned)n;
}

/* Puts the pool back to "not started".  The threads must be gone: joined,
 * or never copied into this process (fork). */
static void pool_reset_locked(void) {
  eddy__queue_init(&pool.fast);
  eddy__queue_init(&pool.slow);
  pool.nqueued = 0;
  pool.size = 0;
  pool.slow_limit = 0;
  pool.slow_running = 0;
  pool.nthreads = 0;
  pool.idle = 0;
  pool.waking = 0;
  pool.started = 0;
  pool.stopping = 0;
}

/* The child of a fork has only the thread that forked: the workers, and
 * any lock they held, stayed in the parent.  Start again from nothing; the
 * next submission creates a fresh pool.  Requests queued in the parent are
 * forgotten. */
static void pool_atfork_child(void) {
  pool_mutex_init(&pool.mutex);
  pthread_cond_init(&pool.cond, NULL);
  pool_reset_locked();
}

/* Whether a worker could take something now. */
static int pool_runnable_locked(void) {
  return !eddy__queue_empty(&pool.fast) ||
         (!eddy__queue_empty(&pool.slow) && pool.slow_running < pool.slow_limit);
}

/* Wakes an idle worker, at most one at a time: while a woken worker is on
 * its way, new work waits for it, and when it takes its request it wakes
 * the next one if work is left (pool_take_locked).  A burst of submissions
 * thus costs a few wakeups instead of one each, and still spreads over all
 * the threads. */
static void pool_wake_locked(void) {
  if (pool.waking != 0 || pool.idle == 0 || !pool_runnable_locked())
    return;
  pool.waking++;
  pthread_cond_signal(&pool.cond);
}

/* The next request a worker may run, or NULL: fast work first, slow work
 * while fewer than slow_limit workers run it. */
static eddy_work_t *pool_take_locked(void) {
  eddy_queue_t *q;
  eddy_work_t *w;

  if (!eddy__queue_empty(&pool.fast)) {
    q = eddy__queue_head(&pool.fast);
  } else if (!eddy__queue_empty(&pool.slow) &&
             pool.slow_running < pool.slow_limit) {
    q = eddy__queue_head(&pool.slow);
    pool.slow_running++;
  } else {
    return NULL;
  }
  eddy__queue_remove(q);
  pool.nqueued--;
  w = eddy__container_of(q, eddy_work_t, node);
  __atomic_store_n(&w->state, EDDY__WORK_RUNNING, __ATOMIC_RELAXED);
  pool_wake_locked();
  return w;
}

/* Hands a finished (or cancelled) request to its loop.  The eventfd is
 * written only when the completion queue goes from empty to non-empty, and
 * inside the lock: once the lock is released the loop may run the
 * callback, finish and close the eventfd, so nothing may touch the loop or
 * the request after the unlock. */
static void pool_post(eddy_work_t *w, int status) {
  eddy_loop_t *loop = w->loop;
  int was_empty;

  w->status = status;
  pthread_mutex_lock(&loop->wq_mutex);
  was_empty = eddy__queue_empty(&loop->wq);
  eddy__queue_insert_tail(&loop->wq, &w->node);
  if (was_empty)
    eddy__eventfd_signal(loop->wq_io.fd);
  pthread_mutex_unlock(&loop->wq_mutex);
}

/* A worker keeps taking work while there is some it may run, and sleeps
 * only when there is none. */
static void *pool_worker(void *arg) {
  eddy_work_t *w;
  int slow;

  (void)arg;
  pthread_mutex_lock(&pool.mutex);
  for (;;) {
    w = pool_take_locked();
    if (w == NULL) {
      if (pool.stopping && pool.nqueued == 0) {
        /* Others may wait for slow work that is gone now: let them see. */
        pthread_cond_broadcast(&pool.cond);
        break;
      }
      pool.idle++;
      pthread_cond_wait(&pool.cond, &pool.mutex);
      pool.idle--;
      if (pool.waking > 0)
        pool.waking--;
      continue;
    }
    slow = w->cls == EDDY_WORK_SLOW;
    pthread_mutex_unlock(&pool.mutex);

    w->work_cb(w);
    pool_post(w, 0);

    pthread_mutex_lock(&pool.mutex);
    /* Slow work waiting for this slot is taken by this worker if there is
     * no fast work, else handed to another by pool_take_locked. */
    if (slow)
      pool.slow_running--;
  }
  pthread_mutex_unlock(&pool.mutex);
  return NULL;
}

/* Creates the threads not created yet.  On failure the threads already
 * created stay (idle, harmless) and the next submission tries again.
 * Workers start with every signal blocked, so signals go to the loops'
 * signalfds; the mask is set before pthread_create so there is no window. */
static int pool_start_locked(void) {
  pthread_attr_t attr;
  sigset_t all, old;
  int rc;

  if (pool.size == 0) {
    pool.size = pool_size_from_env();
    pool.slow_limit = pool.size / 2 > 0 ? pool.size / 2 : 1;
  }
  if (!pool.atfork_registered) {
    rc = pthread_atfork(NULL, NULL, pool_atfork_child);
    if (rc != 0)
      return -rc;
    pool.atfork_registered = 1;
  }

  rc = pthread_attr_init(&attr);
  if (rc != 0)
    return -rc;
  rc = pthread_attr_setstacksize(&attr, EDDY__POOL_STACK_SIZE);
  if (rc == 0) {
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (pool.nthreads < pool.size) {
      rc = pthread_create(&pool.threads[pool.nthreads], &attr, pool_worker,
                          NULL);
      if (rc != 0)
        break;
      pool.nthreads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  pthread_attr_destroy(&attr);
  if (rc != 0)
    return -rc;
  pool.started = 1;
  return 0;
}

int eddy_queue_work(eddy_loop_t *loop, eddy_work_t *req, eddy_work_class cls,
                    eddy_work_cb work_cb, eddy_after_work_cb after_work_cb) {
  int rc;

  if (loop == NULL || req == NULL || work_cb == NULL)
    return EDDY_EINVAL;
  if (cls != EDDY_WORK_FAST && cls != EDDY_WORK_SLOW)
    return EDDY_EINVAL;

  req->loop = loop;
  req->work_cb = work_cb;
  req->after_work_cb = after_work_cb;
  req->cls = cls;
  req->status = 0;

  pthread_mutex_lock(&pool.mutex);
  if (pool.stopping) {
    pthread_mutex_unlock(&pool.mutex);
    return EDDY_EBUSY;
  }
  if (!pool.started) {
    rc = pool_start_locked();
    if (rc != 0) {
      pthread_mutex_unlock(&pool.mutex);
      return rc;
    }
  }
  /* Counted before any worker can finish it, so the loop's count never
   * goes below zero. */
  __atomic_fetch_add(&loop->pool_reqs, 1, __ATOMIC_RELAXED);
  __atomic_store_n(&req->state, EDDY__WORK_QUEUED, __ATOMIC_RELAXED);
  eddy__queue_insert_tail(cls == EDDY_WORK_FAST ? &pool.fast : &pool.slow,
                          &req->node);
  pool.nqueued++;
  pool_wake_locked();
  pthread_mutex_unlock(&pool.mutex);
  return 0;
}

int eddy_cancel(eddy_work_t *req) {
  int state;

  if (req == NULL)
    return EDDY_EINVAL;

  pthread_mutex_lock(&pool.mutex);
  state = __atomic_load_n(&req->state, __ATOMIC_RELAXED);
  if (state == EDDY__WORK_QUEUED) {
    eddy__queue_remove(&req->node);
    pool.nqueued--;
    __atomic_store_n(&req->state, EDDY__WORK_CANCELED, __ATOMIC_RELAXED);
  }
  pthread_mutex_unlock(&pool.mutex);

  switch (state) {
  case EDDY__WORK_QUEUED:
    /* The callback runs on the loop, later, as for finished work. */
    pool_post(req, EDDY_ECANCELED);
    return 0;
  case EDDY__WORK_RUNNING:
  case EDDY__WORK_CANCELED:
  case EDDY__WORK_DONE:
    return EDDY_EBUSY;
  default:
    return EDDY_EINVAL;
  }
}

unsigned eddy_threadpool_size(void) {
  unsigned n;

  pthread_mutex_lock(&pool.mutex);
  n = pool.size != 0 ? pool.size : pool_size_from_env();
  pthread_mutex_unlock(&pool.mutex);
  return n;
}

size_t eddy__pool_queued(void) {
  size_t n;

  pthread_mutex_lock(&pool.mutex);
  n = pool.nqueued;
  pthread_mutex_unlock(&pool.mutex);
  return n;
}

size_t eddy__pool_threads(void) {
  size_t n;

  pthread_mutex_lock(&pool.mutex);
  n = pool.nthreads;
  pthread_mutex_unlock(&pool.mutex);
  return n;
}

void eddy__pool_shutdown(void) {
  unsigned i, n;

  pthread_mutex_lock(&pool.mutex);
  if (pool.stopping) {
    pthread_mutex_unlock(&pool.mutex);
    return;
  }
  pool.stopping = 1;
  pool.waking = pool.idle;
  n = pool.nthreads;
  pthread_mutex_unlock(&pool.mutex);
  pthread_cond_broadcast(&pool.cond);

  for (i = 0; i < n; i++)
    pthread_join(pool.threads[i], NULL);

  pthread_mutex_lock(&pool.mutex);
  pool_reset_locked();
  pthread_mutex_unlock(&pool.mutex);
}

/* ---- The loop's side ----------------------------------------------------- */

/* The completion eventfd is readable.  Draining it before taking the queue
 * means a completion posted after the take writes it again, so none is
 * missed; one posted between the drain and the take comes with this batch
 * and leaves at worst a spurious wakeup. */
static void pool_on_done(eddy_loop_t *loop, eddy__io_t *io, unsigned events) {
  eddy_queue_t done;
  eddy_queue_t *q;
  eddy_work_t *w;
  int status;

  (void)events;
  eddy__eventfd_drain(io->fd);
  pthread_mutex_lock(&loop->wq_mutex);
  eddy__queue_move(&loop->wq, &done);
  pthread_mutex_unlock(&loop->wq_mutex);

  while (!eddy__queue_empty(&done)) {
    q = eddy__queue_head(&done);
    eddy__queue_remove(q);
    w = eddy__container_of(q, eddy_work_t, node);
    status = w->status;
    /* Before the callback, which may free the request or queue it again. */
    __atomic_store_n(&w->state, EDDY__WORK_DONE, __ATOMIC_RELAXED);
    __atomic_fetch_sub(&loop->pool_reqs, 1, __ATOMIC_RELAXED);
    if (w->after_work_cb != NULL) {
      w->after_work_cb(w, status);
      eddy__after_callback(loop);
    }
  }
}

/* The completion queue's eventfd is watched for as long as the loop lives
 * but does not keep it alive: loop->pool_reqs does. */
int eddy__pool_loop_init(eddy_loop_t *loop) {
  int rc, fd;

  loop->pool_reqs = 0;
  rc = pool_mutex_init(&loop->wq_mutex);
  if (rc != 0)
    return rc;
  eddy__queue_init(&loop->wq);

  fd = eddy__eventfd();
  if (fd < 0) {
    pthread_mutex_destroy(&loop->wq_mutex);
    return fd;
  }
  eddy__io_init(&loop->wq_io, pool_on_done, fd);
  rc = eddy__io_start(loop, &loop->wq_io, EDDY__IO_READ);
  if (rc != 0) {
    close(fd);
    loop->wq_io.fd = -1;
    pthread_mutex_destroy(&loop->wq_mutex);
    return rc;
  }
  return 0;
}

void eddy__pool_loop_close(eddy_loop_t *loop) {
  /* A worker that posted the last completion may still be inside the lock,
   * writing the eventfd; wait for it before closing the descriptor. */
  pthread_mutex_lock(&loop->wq_mutex);
  assert(eddy__queue_empty(&loop->wq));
  pthread_mutex_unlock(&loop->wq_mutex);

  eddy__io_close(loop, &loop->wq_io);
  close(loop->wq_io.fd);
  loop->wq_io.fd = -1;
  pthread_mutex_destroy(&loop->wq_mutex);
}
