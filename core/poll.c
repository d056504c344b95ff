/* Poll handles: readiness of a descriptor the caller owns. */
#include "internal.h"

static void poll_io_cb(eddy_loop_t *loop, eddy__io_t *io, unsigned events) {
  eddy_poll_t *p = eddy__container_of(io, eddy_poll_t, io);
  int out = 0;

  /* An error on the descriptor arrives as readable and writable (the
   * backend adds them), as in libuv: the caller's next read or write
   * returns the error itself. */
  if (events & EDDY__IO_READ)
    out |= EDDY_READABLE;
  if (events & EDDY__IO_WRITE)
    out |= EDDY_WRITABLE;
  if (events & EDDY__IO_PRI)
    out |= EDDY_PRIORITIZED;
  if (events & EDDY__IO_HUP)
    out |= EDDY_DISCONNECT;
  /* Only what was asked for: a hang-up also makes a socket readable, but a
   * handle that asked for EDDY_DISCONNECT alone hears only that. */
  out &= p->wanted;
  if (out != 0)
    p->cb(p, 0, out);
}

int eddy_poll_init(eddy_loop_t *loop, eddy_poll_t *p, int fd) {
  if (loop == NULL || p == NULL || fd < 0)
    return EDDY_EINVAL;
  eddy__handle_init(loop, &p->handle, EDDY_POLL);
  p->cb = NULL;
  p->wanted = 0;
  eddy__io_init(&p->io, poll_io_cb, fd);
  return 0;
}

int eddy_poll_start(eddy_poll_t *p, int events, eddy_poll_cb cb) {
  EDDY__MISUSE(eddy__handle_closing(&p->handle), EDDY_EINVAL);
  if (cb == NULL || events == 0 ||
      (events & ~(EDDY_READABLE | EDDY_WRITABLE | EDDY_DISCONNECT |
                  EDDY_PRIORITIZED)) != 0)
    return EDDY_EINVAL;

  unsigned want = 0;
  if (events & EDDY_READABLE)
    want |= EDDY__IO_READ;
  if (events & EDDY_DISCONNECT)
    want |= EDDY__IO_HUP;
  if (events & EDDY_WRITABLE)
    want |= EDDY__IO_WRITE;
  if (events & EDDY_PRIORITIZED)
    want |= EDDY__IO_PRI;

  eddy_loop_t *loop = p->handle.loop;
  unsigned drop = p->io.events & ~want;
  if (drop != 0)
    eddy__io_stop(loop, &p->io, drop);
  int err = eddy__io_start(loop, &p->io, want);
  if (err != 0)
    return err;
  p->cb = cb;
  p->wanted = events;
  eddy__handle_start(&p->handle);
  return 0;
}

int eddy_poll_stop(eddy_poll_t *p) {
  if (!eddy_is_active(&p->handle))
    return 0;
  eddy__io_stop(p->handle.loop, &p->io, p->io.events);
  eddy__handle_stop(&p->handle);
  return 0;
}

void eddy__poll_close(eddy_poll_t *p) {
  eddy_poll_stop(p);
  eddy__io_close(p->handle.loop, &p->io);
}
