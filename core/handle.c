/* What all handles share: init, close, ref/unref.
 *
 * The close contract: eddy_close() stops the handle at once (no callback of
 * it runs afterwards) and queues it; in the close phase of the same
 * iteration its close_cb runs, in the order of the eddy_close() calls, and
 * only then may the caller free the memory.  Closing twice is a bug. */
#include "internal.h"

void eddy__handle_init(eddy_loop_t *loop, eddy_handle_t *h,
                       eddy_handle_type type) {
  h->data = NULL;
  h->loop = loop;
  h->type = type;
  h->flags = EDDY__HANDLE_REF;
  h->close_cb = NULL;
  h->stop_hook = NULL;
  h->finish_hook = NULL;
  h->busy_hook = NULL;
  eddy__queue_insert_tail(&loop->handles, &h->handle_node);
  eddy__queue_init(&h->close_node);
}

void eddy_close(eddy_handle_t *h, eddy_close_cb close_cb) {
  assert(h != NULL);
  assert(!eddy__handle_closing(h) && "handle closed twice");
  if (h == NULL || eddy__handle_closing(h))
    return; /* release builds: ignore the second close */

  h->flags |= EDDY__HANDLE_CLOSING;
  h->close_cb = close_cb;
  switch (h->type) {
  case EDDY_TIMER:
    eddy_timer_stop((eddy_timer_t *)h);
    break;
  case EDDY_IDLE:
  case EDDY_PREPARE:
  case EDDY_CHECK:
    eddy__hook_close((struct eddy__hook_s *)h);
    break;
  case EDDY_ASYNC:
    eddy__async_close((eddy_async_t *)h);
    break;
  case EDDY_SIGNAL:
    eddy__signal_close((eddy_signal_t *)h);
    break;
  case EDDY_POLL:
    eddy__poll_close((eddy_poll_t *)h);
    break;
  default:
    assert(h->stop_hook != NULL && "eddy_close: unknown handle type");
    if (h->stop_hook != NULL)
      h->stop_hook(h);
    break;
  }
  eddy__handle_stop(h);
  eddy__queue_insert_tail(&h->loop->closing, &h->close_node);
}

void eddy_ref(eddy_handle_t *h) {
  if (h->flags & EDDY__HANDLE_REF)
    return;
  h->flags |= EDDY__HANDLE_REF;
  if (h->flags & EDDY__HANDLE_ACTIVE)
    h->loop->active_handles++;
}

void eddy_unref(eddy_handle_t *h) {
  if (!(h->flags & EDDY__HANDLE_REF))
    return;
  h->flags &= ~EDDY__HANDLE_REF;
  if (h->flags & EDDY__HANDLE_ACTIVE)
    h->loop->active_handles--;
}

int eddy_has_ref(const eddy_handle_t *h) {
  return (h->flags & EDDY__HANDLE_REF) != 0;
}

int eddy_is_active(const eddy_handle_t *h) {
  return (h->flags & EDDY__HANDLE_ACTIVE) != 0;
}

int eddy_is_closing(const eddy_handle_t *h) {
  return eddy__handle_closing(h);
}

const char *eddy_handle_type_name(eddy_handle_type type) {
  static const char *const names[] = {"unknown", "timer", "idle",
                                      "prepare", "check", "async",
                                      "signal",  "poll",  "tcp",
                                      "unix",    "udp"};
  if ((unsigned)type >= sizeof names / sizeof names[0])
    return "unknown";
  return names[type];
}
