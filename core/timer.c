/* Timers: a 4-ary min-heap of (due, start order) kept in one array.
 *
 * The heap stores the key next to the timer pointer, so sifting compares
 * contiguous memory instead of chasing pointers into the timers; four
 * children per node halve the depth of a binary heap.  Ties on the due
 * time go to the timer started first: every start takes a fresh sequence
 * number. */
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"

struct eddy__timer_ent {
  uint64_t due;
  uint64_t seq;
  eddy_timer_t *t;
};

typedef struct eddy__timer_ent ent_t;

static inline int ent_less(const ent_t *a, const ent_t *b) {
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static inline void heap_put(eddy_loop_t *loop, size_t i, ent_t e) {
  loop->timer_heap[i] = e;
  e.t->heap_index = i;
}

static void sift_up(eddy_loop_t *loop, size_t i, ent_t e) {
  while (i > 0) {
    size_t parent = (i - 1) / 4;
    if (!ent_less(&e, &loop->timer_heap[parent]))
      break;
    heap_put(loop, i, loop->timer_heap[parent]);
    i = parent;
  }
  heap_put(loop, i, e);
}

static void sift_down(eddy_loop_t *loop, size_t i, ent_t e) {
  size_t n = loop->timer_len;
  for (;;) {
    size_t first = 4 * i + 1;
    if (first >= n)
      break;
    size_t end = first + 4 < n ? first + 4 : n;
    size_t best = first;
    for (size_t c = first + 1; c < end; c++)
      if (ent_less(&loop->timer_heap[c], &loop->timer_heap[best]))
        best = c;
    if (!ent_less(&loop->timer_heap[best], &e))
      break;
    heap_put(loop, i, loop->timer_heap[best]);
    i = best;
  }
  heap_put(loop, i, e);
}

static int heap_insert(eddy_loop_t *loop, eddy_timer_t *t, uint64_t due) {
  if (loop->timer_len == loop->timer_cap) {
    size_t cap = loop->timer_cap ? loop->timer_cap * 2 : 64;
    ent_t *heap = realloc(loop->timer_heap, cap * sizeof *heap);
    if (heap == NULL)
      return EDDY_ENOMEM;
    loop->timer_heap = heap;
    loop->timer_cap = cap;
  }
  ent_t e = {due, loop->timer_seq++, t};
  sift_up(loop, loop->timer_len++, e);
  return 0;
}

static void heap_remove(eddy_loop_t *loop, eddy_timer_t *t) {
  size_t i = t->heap_index;
  ent_t gone = loop->timer_heap[i];
  ent_t last = loop->timer_heap[--loop->timer_len];
  t->heap_index = SIZE_MAX;
  if (i == loop->timer_len)
    return;
  if (ent_less(&last, &gone))
    sift_up(loop, i, last);
  else
    sift_down(loop, i, last);
}

int eddy_timer_init(eddy_loop_t *loop, eddy_timer_t *t) {
  if (loop == NULL || t == NULL)
    return EDDY_EINVAL;
  eddy__handle_init(loop, &t->handle, EDDY_TIMER);
  t->cb = NULL;
  t->due = 0;
  t->repeat = 0;
  t->heap_index = SIZE_MAX;
  eddy__queue_init(&t->ready_node);
  return 0;
}

int eddy_timer_start(eddy_timer_t *t, eddy_timer_cb cb, uint64_t timeout_ms,
                     uint64_t repeat_ms) {
  EDDY__MISUSE(eddy__handle_closing(&t->handle), EDDY_EINVAL);
  EDDY__MISUSE(timeout_ms > INT64_MAX || repeat_ms > INT64_MAX, EDDY_EINVAL);
  if (cb == NULL)
    return EDDY_EINVAL;

  eddy_loop_t *loop = t->handle.loop;
  eddy_timer_stop(t);
  uint64_t due = loop->time + timeout_ms; /* both <= INT64_MAX: no wrap */
  int err = heap_insert(loop, t, due);
  if (err != 0)
    return err;
  t->cb = cb;
  t->due = due;
  t->repeat = repeat_ms;
  eddy__handle_start(&t->handle);
  return 0;
}

int eddy_timer_stop(eddy_timer_t *t) {
  if (!eddy_is_active(&t->handle))
    return 0;
  if (t->heap_index != SIZE_MAX)
    heap_remove(t->handle.loop, t);
  eddy__queue_remove(&t->ready_node); /* due in this phase, not yet run */
  eddy__handle_stop(&t->handle);
  return 0;
}

int eddy_timer_again(eddy_timer_t *t) {
  EDDY__MISUSE(eddy__handle_closing(&t->handle), EDDY_EINVAL);
  if (t->cb == NULL)
    return EDDY_EINVAL;
  if (t->repeat == 0)
    return 0;
  return eddy_timer_start(t, t->cb, t->repeat, t->repeat);
}

void eddy_timer_set_repeat(eddy_timer_t *t, uint64_t repeat_ms) {
  t->repeat = repeat_ms > INT64_MAX ? INT64_MAX : repeat_ms;
}

uint64_t eddy_timer_get_repeat(const eddy_timer_t *t) {
  return t->repeat;
}

uint64_t eddy_timer_get_due_in(const eddy_timer_t *t) {
  uint64_t now = t->handle.loop->time;
  if (!eddy_is_active(&t->handle) || t->due <= now)
    return 0;
  return t->due - now;
}

/* The timers phase.  Every timer due now is first moved to a ready list,
 * so a timer (re)started by a callback of this phase, even with a zero
 * timeout, runs in the next iteration and not in this one. */
void eddy__run_timers(eddy_loop_t *loop) {
  eddy_queue_t *ready = &loop->timers_ready;

  while (loop->timer_len > 0 && loop->timer_heap[0].due <= loop->time) {
    eddy_timer_t *t = loop->timer_heap[0].t;
    heap_remove(loop, t);
    eddy__queue_insert_tail(ready, &t->ready_node);
  }
  while (!eddy__queue_empty(ready)) {
    eddy_queue_t *n = eddy__queue_head(ready);
    eddy__queue_remove(n);
    eddy_timer_t *t = eddy__container_of(n, eddy_timer_t, ready_node);
    /* Re-arm a repeating timer before its callback, so that the callback
     * may stop or restart it. */
    if (t->repeat != 0 && heap_insert(loop, t, loop->time + t->repeat) == 0)
      t->due = loop->time + t->repeat;
    else
      eddy__handle_stop(&t->handle);
    t->cb(t);
    eddy__after_callback(loop);
  }
}

int eddy__next_timeout(const eddy_loop_t *loop) {
  if (loop->timer_len == 0)
    return -1;
  uint64_t due = loop->timer_heap[0].due;
  if (due <= loop->time)
    return 0;
  uint64_t diff = due - loop->time;
  return diff > INT32_MAX ? INT32_MAX : (int)diff;
}

void eddy__timers_free(eddy_loop_t *loop) {
  free(loop->timer_heap);
  loop->timer_heap = NULL;
  loop->timer_len = 0;
  loop->timer_cap = 0;
}
