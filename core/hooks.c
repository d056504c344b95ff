/* Idle, prepare and check handles: one layout, one list per phase.
 *
 * An active idle handle keeps the poll phase from blocking; prepare runs
 * right before poll; check right after it (Node's setImmediate). */
#include "internal.h"

static eddy_queue_t *hook_list(eddy_loop_t *loop, eddy_handle_type type) {
  switch (type) {
  case EDDY_IDLE:
    return &loop->idle_handles;
  case EDDY_PREPARE:
    return &loop->prepare_handles;
  default:
    return &loop->check_handles;
  }
}

static int hook_init(eddy_loop_t *loop, struct eddy__hook_s *h,
                     eddy_handle_type type) {
  if (loop == NULL || h == NULL)
    return EDDY_EINVAL;
  eddy__handle_init(loop, &h->handle, type);
  h->cb = NULL;
  eddy__queue_init(&h->node);
  return 0;
}

static int hook_start(struct eddy__hook_s *h, eddy_handle_type type,
                      void (*cb)(struct eddy__hook_s *)) {
  EDDY__MISUSE(eddy__handle_closing(&h->handle), EDDY_EINVAL);
  if (cb == NULL || h->handle.type != type)
    return EDDY_EINVAL;
  h->cb = cb;
  if (eddy_is_active(&h->handle))
    return 0;
  eddy__queue_insert_tail(hook_list(h->handle.loop, type), &h->node);
  eddy__handle_start(&h->handle);
  return 0;
}

static int hook_stop(struct eddy__hook_s *h) {
  if (!eddy_is_active(&h->handle))
    return 0;
  eddy__queue_remove(&h->node);
  eddy__handle_stop(&h->handle);
  return 0;
}

void eddy__hook_close(struct eddy__hook_s *h) {
  hook_stop(h);
}

/* The handles active when the phase begins run once each, in start order;
 * one started by a callback of the phase waits for the next iteration, and
 * one stopped by an earlier callback does not run. */
void eddy__run_hooks(eddy_loop_t *loop, eddy_queue_t *list) {
  eddy_queue_t q;

  if (eddy__queue_empty(list))
    return;
  eddy__queue_move(list, &q);
  while (!eddy__queue_empty(&q)) {
    eddy_queue_t *n = eddy__queue_head(&q);
    struct eddy__hook_s *h = eddy__container_of(n, struct eddy__hook_s, node);
    eddy__queue_remove(n);
    eddy__queue_insert_tail(list, n);
    h->cb(h);
    eddy__after_callback(loop);
  }
}

int eddy_idle_init(eddy_loop_t *loop, eddy_idle_t *h) {
  return hook_init(loop, h, EDDY_IDLE);
}

int eddy_idle_start(eddy_idle_t *h, void (*cb)(eddy_idle_t *h)) {
  return hook_start(h, EDDY_IDLE, cb);
}

int eddy_idle_stop(eddy_idle_t *h) {
  return hook_stop(h);
}

int eddy_prepare_init(eddy_loop_t *loop, eddy_prepare_t *h) {
  return hook_init(loop, h, EDDY_PREPARE);
}

int eddy_prepare_start(eddy_prepare_t *h, void (*cb)(eddy_prepare_t *h)) {
  return hook_start(h, EDDY_PREPARE, cb);
}

int eddy_prepare_stop(eddy_prepare_t *h) {
  return hook_stop(h);
}

int eddy_check_init(eddy_loop_t *loop, eddy_check_t *h) {
  return hook_init(loop, h, EDDY_CHECK);
}

int eddy_check_start(eddy_check_t *h, void (*cb)(eddy_check_t *h)) {
  return hook_start(h, EDDY_CHECK, cb);
}

int eddy_check_stop(eddy_check_t *h) {
  return hook_stop(h);
}
