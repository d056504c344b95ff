/* The loop: initialisation, the six-phase iteration, liveness, closing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Pending callbacks may queue more pending callbacks; re-run the phase at
 * most this many times per iteration so they cannot starve the loop (the
 * rest waits for the next iteration, with a poll that does not block). */
#define EDDY__PENDING_ROUNDS 8

/* The io_uring probe's verdict, made once per process: 0, or why not. */
static int uring_verdict(void) {
  static int verdict = 1; /* 1: not probed yet */
  int v = __atomic_load_n(&verdict, __ATOMIC_ACQUIRE);
  if (v == 1) {
    v = eddy__uring_probe();
    __atomic_store_n(&verdict, v, __ATOMIC_RELEASE);
  }
  return v;
}

/* EDDY_BACKEND forces a backend; without it the loop takes io_uring when
 * the kernel allows it, else epoll, and says once why it fell back. */
static const eddy__backend_t *choose_backend(int *err) {
  static int told;
  const char *want = getenv("EDDY_BACKEND");
  *err = 0;
  if (want != NULL && strcmp(want, "epoll") == 0)
    return &eddy__backend_epoll;
  if (want != NULL && strcmp(want, "io_uring") == 0)
    return &eddy__backend_uring;
  if (want != NULL && *want != '\0') {
    fprintf(stderr, "eddy: EDDY_BACKEND=%s: unknown backend (epoll, "
                    "io_uring)\n", want);
    *err = EDDY_EINVAL;
    return NULL;
  }
  int why = uring_verdict();
  if (why == 0)
    return &eddy__backend_uring;
  if (!__atomic_exchange_n(&told, 1, __ATOMIC_ACQ_REL))
    fprintf(stderr, "eddy: io_uring unavailable (%s), using epoll\n",
            eddy_strerror(why));
  return &eddy__backend_epoll;
}

int eddy_backend_available(const char *name) {
  if (name == NULL)
    return 0;
  if (strcmp(name, "epoll") == 0)
    return 1;
  return strcmp(name, "io_uring") == 0 && uring_verdict() == 0;
}

const char *eddy_backend_name(const eddy_loop_t *loop) {
  return loop->backend != NULL ? loop->backend->name : "none";
}

int eddy_loop_init(eddy_loop_t *loop) {
  int err;

  if (loop == NULL)
    return EDDY_EINVAL;
  memset(loop, 0, sizeof *loop);
  eddy__queue_init(&loop->handles);
  eddy__queue_init(&loop->pending);
  eddy__queue_init(&loop->idle_handles);
  eddy__queue_init(&loop->prepare_handles);
  eddy__queue_init(&loop->check_handles);
  eddy__queue_init(&loop->async_handles);
  eddy__queue_init(&loop->signal_handles);
  eddy__queue_init(&loop->closing);
  eddy__queue_init(&loop->timers_ready);
  loop->backend_fd = -1;
  loop->async_io.fd = -1;
  loop->wq_io.fd = -1;
  eddy__signal_loop_init(loop);
  eddy__slab_loop_init(loop);
  loop->time = eddy__clock_ms();

  loop->backend = choose_backend(&err);
  if (loop->backend == NULL)
    return err;
  err = loop->backend->init(loop);
  if (err != 0 && loop->backend == &eddy__backend_uring &&
      getenv("EDDY_BACKEND") == NULL) {
    /* The probe passed but this ring failed (memory, limits): fall back. */
    fprintf(stderr, "eddy: io_uring setup failed (%s), using epoll\n",
            eddy_strerror(err));
    loop->backend = &eddy__backend_epoll;
    err = loop->backend->init(loop);
  }
  if (err != 0) {
    fprintf(stderr, "eddy: %s backend: %s\n", loop->backend->name,
            eddy_strerror(err));
    goto fail_backend;
  }
  err = eddy__async_loop_init(loop);
  if (err != 0)
    goto fail_async;
  err = eddy__pool_loop_init(loop);
  if (err != 0)
    goto fail_pool;
  return 0;

fail_pool:
  eddy__async_loop_close(loop);
fail_async:
  loop->backend->close(loop);
fail_backend:
  loop->backend = NULL;
  return err;
}

int eddy_loop_close(eddy_loop_t *loop) {
  if (!eddy__queue_empty(&loop->handles) || loop->active_reqs != 0 ||
      __atomic_load_n(&loop->pool_reqs, __ATOMIC_ACQUIRE) != 0)
    return EDDY_EBUSY;
  eddy__pool_loop_close(loop);
  eddy__async_loop_close(loop);
  eddy__signal_loop_close(loop);
  eddy__slab_loop_close(loop);
  eddy__timers_free(loop);
  eddy__ticks_free(loop);
  loop->backend->close(loop);
  loop->backend = NULL;
  return 0;
}

int eddy_loop_alive(const eddy_loop_t *loop) {
  return loop->active_handles != 0 || loop->active_reqs != 0 ||
         __atomic_load_n(&loop->pool_reqs, __ATOMIC_ACQUIRE) != 0 ||
         !eddy__queue_empty(&loop->pending) ||
         !eddy__queue_empty(&loop->closing);
}

void eddy_stop(eddy_loop_t *loop) {
  loop->stop_flag = 1;
}

uint64_t eddy_now(const eddy_loop_t *loop) {
  return loop->time;
}

void eddy_update_time(eddy_loop_t *loop) {
  loop->time = eddy__clock_ms();
}

eddy_phase eddy_loop_phase(const eddy_loop_t *loop) {
  return loop->phase;
}

const char *eddy_phase_name(eddy_phase phase) {
  static const char *const names[] = {"none", "timers", "pending", "idle",
                                      "prepare", "poll", "check", "close"};
  if ((unsigned)phase >= sizeof names / sizeof names[0])
    return "unknown";
  return names[phase];
}

static void run_pending(eddy_loop_t *loop) {
  eddy_queue_t q;

  for (int round = 0; round < EDDY__PENDING_ROUNDS; round++) {
    if (eddy__queue_empty(&loop->pending))
      return;
    eddy__queue_move(&loop->pending, &q);
    while (!eddy__queue_empty(&q)) {
      eddy_queue_t *n = eddy__queue_head(&q);
      eddy__queue_remove(n);
      eddy__pending_t *p = eddy__container_of(n, eddy__pending_t, node);
      p->cb(loop, p);
      eddy__after_callback(loop);
    }
  }
}

/* Close callbacks run in the order eddy_close() was called.  A handle
 * closed from a close callback, or one the kernel still holds, waits for
 * the next iteration. */
static void run_closing(eddy_loop_t *loop) {
  eddy_queue_t q;

  eddy__queue_move(&loop->closing, &q);
  while (!eddy__queue_empty(&q)) {
    eddy_queue_t *n = eddy__queue_head(&q);
    eddy__queue_remove(n);
    eddy_handle_t *h = eddy__container_of(n, eddy_handle_t, close_node);
    if (h->busy_hook != NULL && h->busy_hook(h)) {
      /* The kernel still reads or writes its memory (a cancelled io_uring
       * send): wait for the completion, a later iteration. */
      eddy__queue_insert_tail(&loop->closing, n);
      continue;
    }
    if (h->finish_hook != NULL) {
      h->finish_hook(h); /* e.g. a stream's cancelled write callbacks */
      eddy__after_callback(loop);
    }
    h->flags |= EDDY__HANDLE_CLOSED;
    eddy__queue_remove(&h->handle_node);
    if (h->close_cb != NULL) {
      h->close_cb(h); /* may free h */
      eddy__after_callback(loop);
    }
  }
}

/* The poll phase blocks only when nothing else is waiting to run. */
static int poll_timeout(const eddy_loop_t *loop) {
  if (loop->stop_flag || !eddy__queue_empty(&loop->pending) ||
      !eddy__queue_empty(&loop->idle_handles) ||
      !eddy__queue_empty(&loop->closing) || !eddy_loop_alive(loop))
    return 0;
  return eddy__next_timeout(loop);
}

int eddy_run(eddy_loop_t *loop, eddy_run_mode mode) {
  int alive;

  /* What main queued before eddy_run is a script's top level: its ticks
   * and microtasks run before the first phase. */
  eddy__after_callback(loop);
  alive = eddy_loop_alive(loop);
  if (!alive)
    eddy_update_time(loop);

  while (alive && !loop->stop_flag) {
    eddy_update_time(loop);
    loop->phase = EDDY_PHASE_TIMERS;
    eddy__run_timers(loop);
    loop->phase = EDDY_PHASE_PENDING;
    run_pending(loop);
    loop->phase = EDDY_PHASE_IDLE;
    eddy__run_hooks(loop, &loop->idle_handles);
    loop->phase = EDDY_PHASE_PREPARE;
    eddy__run_hooks(loop, &loop->prepare_handles);
    loop->phase = EDDY_PHASE_POLL;
    loop->backend->wait(loop, mode == EDDY_RUN_NOWAIT ? 0 : poll_timeout(loop));
    loop->phase = EDDY_PHASE_CHECK;
    eddy__run_hooks(loop, &loop->check_handles);
    loop->phase = EDDY_PHASE_CLOSE;
    run_closing(loop);

    if (mode == EDDY_RUN_ONCE) {
      /* Poll may have blocked only for a timer: run it, so that ONCE
       * always makes progress. */
      eddy_update_time(loop);
      loop->phase = EDDY_PHASE_TIMERS;
      eddy__run_timers(loop);
    }
    loop->phase = EDDY_PHASE_NONE;
    alive = eddy_loop_alive(loop);
    if (mode != EDDY_RUN_DEFAULT)
      break;
  }
  loop->phase = EDDY_PHASE_NONE;
  loop->stop_flag = 0;
  return alive;
}
