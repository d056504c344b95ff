/* The next-tick and microtask queues (process.nextTick and promise jobs).
 *
 * Node >= 11 drains them after every callback: all ticks, including ticks
 * queued by ticks; then all microtasks, including microtasks queued by
 * microtasks (a tick queued by a microtask waits for the microtask queue
 * to empty, as V8's checkpoint does); and again while ticks remain. */
#include <stdlib.h>

#include "internal.h"

static int ring_push(eddy__task_ring_t *r, void (*cb)(void *), void *arg) {
  if (r->len == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 64;
    eddy__task_t *buf = malloc(cap * sizeof *buf);
    if (buf == NULL)
      return EDDY_ENOMEM;
    /* Unwrap the old ring into the start of the new one. */
    for (size_t i = 0; i < r->len; i++)
      buf[i] = r->buf[(r->head + i) & (r->cap - 1)];
    free(r->buf);
    r->buf = buf;
    r->head = 0;
    r->cap = cap;
  }
  r->buf[(r->head + r->len) & (r->cap - 1)] = (eddy__task_t){cb, arg};
  r->len++;
  return 0;
}

static eddy__task_t ring_shift(eddy__task_ring_t *r) {
  eddy__task_t t = r->buf[r->head];
  r->head = (r->head + 1) & (r->cap - 1);
  r->len--;
  return t;
}

int eddy_next_tick(eddy_loop_t *loop, void (*cb)(void *arg), void *arg) {
  if (loop == NULL || cb == NULL)
    return EDDY_EINVAL;
  return ring_push(&loop->ticks, cb, arg);
}

int eddy_queue_microtask(eddy_loop_t *loop, void (*cb)(void *arg),
                         void *arg) {
  if (loop == NULL || cb == NULL)
    return EDDY_EINVAL;
  return ring_push(&loop->microtasks, cb, arg);
}

void eddy__run_ticks(eddy_loop_t *loop) {
  /* A tick that runs a nested callback of the loop must not start a second
   * drain: the outer one is already walking the queues in order. */
  if (loop->draining)
    return;
  loop->draining = 1;
  do {
    while (loop->ticks.len != 0) {
      eddy__task_t t = ring_shift(&loop->ticks);
      t.cb(t.arg);
    }
    while (loop->microtasks.len != 0) {
      eddy__task_t t = ring_shift(&loop->microtasks);
      t.cb(t.arg);
    }
  } while (loop->ticks.len != 0 || loop->microtasks.len != 0);
  loop->draining = 0;
}

void eddy__ticks_free(eddy_loop_t *loop) {
  free(loop->ticks.buf);
  free(loop->microtasks.buf);
  loop->ticks = (eddy__task_ring_t){0};
  loop->microtasks = (eddy__task_ring_t){0};
}
