/* The epoll backend: readiness, level-triggered, one epoll_wait per
 * iteration.  A watcher's epoll data is the watcher itself; a watcher
 * stopped while its readiness waits in the same batch is skipped because
 * its `events` no longer asks for it, and its memory is still valid: the
 * caller frees handles only in close callbacks, after the poll phase. */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "internal.h"

#define EPOLL_BATCH 1024

static int epoll_init(eddy_loop_t *loop) {
  struct epoll_event *events = malloc(EPOLL_BATCH * sizeof *events);
  if (events == NULL)
    return EDDY_ENOMEM;
  int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) {
    int err = -errno;
    free(events);
    return err;
  }
  loop->backend_fd = fd;
  loop->backend_data = events;
  return 0;
}

static void epoll_close(eddy_loop_t *loop) {
  close(loop->backend_fd);
  free(loop->backend_data);
  loop->backend_fd = -1;
  loop->backend_data = NULL;
}

static uint32_t to_epoll(unsigned events) {
  uint32_t e = 0;
  if (events & EDDY__IO_READ)
    e |= EPOLLIN;
  if (events & EDDY__IO_WRITE)
    e |= EPOLLOUT;
  if (events & EDDY__IO_PRI)
    e |= EPOLLPRI;
  if (events & EDDY__IO_HUP)
    e |= EPOLLRDHUP;
  if (events & EDDY__IO_EDGE)
    e |= EPOLLET;
  return e;
}

static unsigned from_epoll(uint32_t e, unsigned wanted) {
  unsigned events = 0;
  if (e & EPOLLIN)
    events |= EDDY__IO_READ;
  if (e & EPOLLOUT)
    events |= EDDY__IO_WRITE;
  if (e & EPOLLPRI)
    events |= EDDY__IO_PRI;
  if (e & (EPOLLRDHUP | EPOLLHUP))
    events |= EDDY__IO_HUP;
  if (e & EPOLLERR)
    events |= EDDY__IO_ERR;
  /* Errors and hang-ups wake readers and writers alike: their next
   * syscall reports what happened. */
  if (e & (EPOLLERR | EPOLLHUP))
    events |= wanted & (EDDY__IO_READ | EDDY__IO_WRITE);
  return events;
}

static int epoll_apply(eddy_loop_t *loop, eddy__io_t *io, unsigned events) {
  if (events == io->pevents)
    return 0;
  struct epoll_event ev = {.events = to_epoll(events), .data.ptr = io};
  int op = events == 0       ? EPOLL_CTL_DEL
           : io->pevents == 0 ? EPOLL_CTL_ADD
                              : EPOLL_CTL_MOD;
  if (epoll_ctl(loop->backend_fd, op, io->fd, &ev) != 0) {
    /* A descriptor closed behind our back is already out of the set. */
    if (op == EPOLL_CTL_DEL && (errno == EBADF || errno == ENOENT)) {
      io->pevents = 0;
      return 0;
    }
    return -errno;
  }
  io->pevents = events;
  return 0;
}

static int epoll_io_start(eddy_loop_t *loop, eddy__io_t *io, unsigned events) {
  unsigned want = io->events | events;
  int err = epoll_apply(loop, io, want);
  if (err == 0)
    io->events = want;
  return err;
}

static void epoll_io_stop(eddy_loop_t *loop, eddy__io_t *io, unsigned events) {
  io->events &= ~events;
  epoll_apply(loop, io, io->events);
}

static void epoll_io_close(eddy_loop_t *loop, eddy__io_t *io) {
  io->events = 0;
  epoll_apply(loop, io, 0);
}

static void epoll_wait_dispatch(eddy_loop_t *loop, int timeout) {
  struct epoll_event *events = loop->backend_data;
  int n = epoll_wait(loop->backend_fd, events, EPOLL_BATCH, timeout);
  int err = n < 0 ? errno : 0;

  eddy_update_time(loop);
  if (n < 0) {
    /* EINTR: a signal not routed to a signalfd.  The loop iterates again
     * and recomputes the timeout. */
    assert(err == EINTR);
    (void)err;
    return;
  }
  for (int i = 0; i < n; i++) {
    eddy__io_t *io = events[i].data.ptr;
    if (io->events == 0)
      continue; /* stopped by an earlier callback of this batch */
    unsigned ready = from_epoll(events[i].events, io->events);
    ready &= io->events | EDDY__IO_HUP | EDDY__IO_ERR;
    if (ready == 0)
      continue;
    io->cb(loop, io, ready);
    eddy__after_callback(loop);
  }
}

const eddy__backend_t eddy__backend_epoll = {
    .name = "epoll",
    .init = epoll_init,
    .close = epoll_close,
    .io_start = epoll_io_start,
    .io_stop = epoll_io_stop,
    .io_close = epoll_io_close,
    .wait = epoll_wait_dispatch,
    .accept_start = eddy__epoll_accept_start,
    .accept_stop = eddy__epoll_accept_stop,
    .read_start = eddy__epoll_read_start,
    .read_stop = eddy__epoll_read_stop,
    .write = eddy__epoll_write,
    .connect = eddy__epoll_connect,
    .sio_stop = eddy__epoll_sio_stop,
    .sio_busy = eddy__epoll_sio_busy,
};
