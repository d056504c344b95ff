/* Async handles: wake a loop from any thread.
 *
 * All async handles of a loop share one eventfd.  A handle's `pending`
 * moves 0 -> 1 while a sender writes the eventfd, then 1 -> 2; the loop
 * moves 2 -> 0 before the callback, so a send made after the callback
 * started always causes one more call, and sends made before coalesce.
 * State 1 is a short critical section: the loop and eddy_close() wait for
 * it to end, so no sender still touches a handle whose memory is freed. */
#include <sched.h>
#include <unistd.h>

#include "internal.h"

enum { ASYNC_IDLE = 0, ASYNC_SENDING = 1, ASYNC_SENT = 2 };

/* Waits out a sender inside eddy_async_send; returns the settled state. */
static int async_settle(eddy_async_t *a) {
  int v;
  for (unsigned spins = 0;; spins++) {
    v = __atomic_load_n(&a->pending, __ATOMIC_ACQUIRE);
    if (v != ASYNC_SENDING)
      return v;
    if (spins >= 100)
      sched_yield();
  }
}

/* The sender's cheap look at `pending`.  If it still sees a send not yet
 * delivered it returns without writing anything, so that delivery must see
 * the caller's writes made before eddy_async_send: a full fence orders
 * them before the read (x86 would otherwise let the read pass the buffered
 * writes), pairing with the loop's compare-exchange.  ThreadSanitizer does
 * not model fences; there, a read-modify-write that changes nothing gives
 * the same guarantee in terms it checks. */
static inline int async_peek(eddy_async_t *a) {
#if defined(__SANITIZE_THREAD__)
  return __atomic_fetch_or(&a->pending, 0, __ATOMIC_SEQ_CST);
#else
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  return __atomic_load_n(&a->pending, __ATOMIC_RELAXED);
#endif
}

static void async_io_cb(eddy_loop_t *loop, eddy__io_t *io, unsigned events) {
  eddy_queue_t q;

  /* The eventfd is edge-triggered and never read: a send that lands after
   * this wakeup writes it again, which is a new edge for the next poll. */
  eddy__queue_move(&loop->async_handles, &q);
  while (!eddy__queue_empty(&q)) {
    eddy_queue_t *n = eddy__queue_head(&q);
    eddy_async_t *a = eddy__container_of(n, eddy_async_t, node);
    eddy__queue_remove(n);
    eddy__queue_insert_tail(&loop->async_handles, n);
    if (async_settle(a) != ASYNC_SENT)
      continue;
    int sent = ASYNC_SENT;
    if (!__atomic_compare_exchange_n(&a->pending, &sent, ASYNC_IDLE, 0,
                                     __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
      continue;
    a->cb(a);
    eddy__after_callback(loop);
  }
}

int eddy__async_loop_init(eddy_loop_t *loop) {
  int fd = eddy__eventfd();
  if (fd < 0)
    return fd;
  eddy__io_init(&loop->async_io, async_io_cb, fd);
  int err = eddy__io_start(loop, &loop->async_io,
                           EDDY__IO_READ | EDDY__IO_EDGE);
  if (err != 0) {
    close(fd);
    loop->async_io.fd = -1;
  }
  return err;
}

void eddy__async_loop_close(eddy_loop_t *loop) {
  if (loop->async_io.fd < 0)
    return;
  eddy__io_close(loop, &loop->async_io);
  close(loop->async_io.fd);
  loop->async_io.fd = -1;
}

int eddy_async_init(eddy_loop_t *loop, eddy_async_t *a, eddy_async_cb cb) {
  if (loop == NULL || a == NULL || cb == NULL)
    return EDDY_EINVAL;
  eddy__handle_init(loop, &a->handle, EDDY_ASYNC);
  a->cb = cb;
  a->pending = ASYNC_IDLE;
  eddy__queue_insert_tail(&loop->async_handles, &a->node);
  eddy__handle_start(&a->handle);
  return 0;
}

int eddy_async_send(eddy_async_t *a) {
  if (async_peek(a) != ASYNC_IDLE)
    return 0;
  int idle = ASYNC_IDLE;
  if (!__atomic_compare_exchange_n(&a->pending, &idle, ASYNC_SENDING, 0,
                                   __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
    return 0;
  eddy__eventfd_signal(a->handle.loop->async_io.fd);
  __atomic_store_n(&a->pending, ASYNC_SENT, __ATOMIC_RELEASE);
  return 0;
}

void eddy__async_close(eddy_async_t *a) {
  async_settle(a);
  eddy__queue_remove(&a->node);
}
