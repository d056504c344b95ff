/* UDP handles: datagrams on the backend's readiness interface.
 *
 * A send tries sendmsg at once; if the socket is full the request joins a
 * queue that goes out, in order, when the socket is writable.  Either way
 * its callback never runs inside eddy_udp_send: a send that finished there
 * waits for the next pending phase, one that finished on writable readiness
 * hears it at the end of that readiness callback.  Every send counts in
 * loop->active_reqs from the call to its callback.
 *
 * Receiving reads at most UDP_RECVS_PER_EVENT datagrams per readiness
 * event, each into a read block of the loop (64 KB, bigger than any IPv4
 * datagram), lent to the callback and released after it. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "net/internal.h"

/* Enough to drain a burst in one event, bounded so that one busy socket
 * cannot starve the loop's other descriptors. */
#define UDP_RECVS_PER_EVENT 32

/* eddy_udp_t.uflags */
enum {
  UDP_RECEIVING = 1u << 0,
  UDP_PENDING = 1u << 1, /* u->pending is queued */
  UDP_CONNECTED = 1u << 2,
};

/* eddy_buf_t is {base, len}, laid out as struct iovec: the buffers go to
 * sendmsg as they are. */
_Static_assert(sizeof(eddy_buf_t) == sizeof(struct iovec), "iovec layout");
_Static_assert(offsetof(eddy_buf_t, len) == offsetof(struct iovec, iov_len),
               "iovec layout");

static eddy_udp_send_t *queue_req(eddy_queue_t *n) {
  return eddy__container_of(n, eddy_udp_send_t, node);
}

static size_t req_bytes(const eddy_udp_send_t *req) {
  size_t total = 0;
  for (unsigned i = 0; i < req->nbufs; i++)
    total += req->bufs[i].len;
  return total;
}

/* The socket is made when the address family is known. */
static int udp_socket(eddy_udp_t *u, int family) {
  if (u->io.fd >= 0)
    return 0;
  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  u->io.fd = fd;
  return 0;
}

/* One datagram: the byte count or a negative error (EDDY_EAGAIN when the
 * socket is full).  MSG_NOSIGNAL: a Unix datagram socket whose peer went
 * away gives EPIPE, not SIGPIPE. */
static ssize_t udp_sendmsg(int fd, const eddy_buf_t *bufs, unsigned nbufs,
                           const void *addr, socklen_t addrlen) {
  struct msghdr msg = {
      .msg_name = (void *)addr,
      .msg_namelen = addrlen,
      .msg_iov = (struct iovec *)bufs,
      .msg_iovlen = nbufs,
  };
  ssize_t n;
  do
    n = sendmsg(fd, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return errno == EWOULDBLOCK ? EDDY_EAGAIN : -errno;
  return n;
}

/* Checks where a datagram may go: an IPv4 or IPv6 address on a handle that
 * is not connected, NULL on one that is.  *len is 0 for NULL. */
static int check_dest(const eddy_udp_t *u, const struct sockaddr *addr,
                      socklen_t *len) {
  *len = 0;
  if (addr == NULL)
    return (u->uflags & UDP_CONNECTED) ? 0 : EDDY_ENOTCONN;
  *len = eddy__ip_addr_len(addr);
  if (*len == 0)
    return EDDY_EINVAL;
  return (u->uflags & UDP_CONNECTED) ? EDDY_EISCONN : 0;
}

/* ---- Send completion ----------------------------------------------------- */

static void schedule_pending(eddy_udp_t *u) {
  if (u->uflags & UDP_PENDING)
    return;
  u->uflags |= UDP_PENDING;
  eddy__pending_add(u->handle.loop, &u->pending);
}

static void complete(eddy_udp_t *u, eddy_udp_send_t *req) {
  eddy_loop_t *loop = u->handle.loop;
  eddy__queue_remove(&req->node);
  loop->active_reqs--;
  if (req->bufs != req->small)
    free(req->bufs);
  req->bufs = NULL;
  if (req->cb != NULL) {
    req->cb(req, req->status);
    eddy__after_callback(loop);
  }
}

/* Runs the callbacks of the sends finished so far; sends finished by those
 * callbacks wait for the next round.  If a callback closes the handle, the
 * rest go back to send_done for the close phase (udp_finish_hook). */
static void run_done(eddy_udp_t *u) {
  eddy_queue_t q;
  eddy__queue_move(&u->send_done, &q);
  while (!eddy__queue_empty(&q)) {
    complete(u, queue_req(eddy__queue_head(&q)));
    if (!eddy__handle_closing(&u->handle))
      continue;
    while (!eddy__queue_empty(&q)) {
      eddy_queue_t *last = q.prev;
      eddy__queue_remove(last);
      eddy__queue_insert_head(&u->send_done, last);
    }
  }
}

static void udp_pending(eddy_loop_t *loop, eddy__pending_t *p) {
  eddy_udp_t *u = eddy__container_of(p, eddy_udp_t, pending);
  u->uflags &= ~UDP_PENDING;
  run_done(u);
}

/* The queued datagrams, in order, until the socket is full again. */
static void flush_queue(eddy_udp_t *u) {
  while (!eddy__queue_empty(&u->send_queue)) {
    eddy_udp_send_t *req = queue_req(eddy__queue_head(&u->send_queue));
    ssize_t n =
        udp_sendmsg(u->io.fd, req->bufs, req->nbufs, &req->addr, req->addrlen);
    if (n == EDDY_EAGAIN)
      return;
    u->send_queue_size -= req_bytes(req);
    u->send_queue_count--;
    req->status = n < 0 ? (int)n : 0;
    eddy__queue_remove(&req->node);
    eddy__queue_insert_tail(&u->send_done, &req->node);
  }
  eddy__io_stop(u->handle.loop, &u->io, EDDY__IO_WRITE);
}

int eddy_udp_send(eddy_udp_send_t *req, eddy_udp_t *u, const eddy_buf_t bufs[],
                  unsigned nbufs, const struct sockaddr *addr,
                  eddy_udp_send_cb cb) {
  EDDY__MISUSE(eddy__handle_closing(&u->handle), EDDY_EINVAL);
  socklen_t len;
  if (req == NULL || bufs == NULL || nbufs == 0)
    return EDDY_EINVAL;
  int err = check_dest(u, addr, &len);
  if (err == 0 && addr != NULL)
    err = udp_socket(u, addr->sa_family);
  if (err != 0)
    return err;

  req->bufs = req->small;
  if (nbufs > sizeof req->small / sizeof req->small[0]) {
    req->bufs = malloc(nbufs * sizeof *bufs);
    if (req->bufs == NULL)
      return EDDY_ENOMEM;
  }
  memcpy(req->bufs, bufs, nbufs * sizeof *bufs);
  req->nbufs = nbufs;
  req->handle = u;
  req->cb = cb;
  req->addrlen = len;
  if (len != 0)
    memcpy(&req->addr, addr, len);
  req->status = 0;

  eddy_loop_t *loop = u->handle.loop;
  if (eddy__queue_empty(&u->send_queue)) {
    ssize_t n = udp_sendmsg(u->io.fd, req->bufs, nbufs, addr, len);
    if (n != EDDY_EAGAIN) {
      req->status = n < 0 ? (int)n : 0;
      eddy__queue_insert_tail(&u->send_done, &req->node);
      loop->active_reqs++;
      schedule_pending(u);
      return 0;
    }
    err = eddy__io_start(loop, &u->io, EDDY__IO_WRITE);
    if (err != 0) {
      if (req->bufs != req->small)
        free(req->bufs);
      return err;
    }
  }
  eddy__queue_insert_tail(&u->send_queue, &req->node);
  u->send_queue_size += req_bytes(req);
  u->send_queue_count++;
  loop->active_reqs++;
  return 0;
}

ssize_t eddy_udp_try_send(eddy_udp_t *u, const eddy_buf_t bufs[],
                          unsigned nbufs, const struct sockaddr *addr) {
  EDDY__MISUSE(eddy__handle_closing(&u->handle), EDDY_EINVAL);
  socklen_t len;
  if (bufs == NULL || nbufs == 0)
    return EDDY_EINVAL;
  int err = check_dest(u, addr, &len);
  if (err == 0 && addr != NULL)
    err = udp_socket(u, addr->sa_family);
  if (err != 0)
    return err;
  if (!eddy__queue_empty(&u->send_queue))
    return EDDY_EAGAIN; /* order: queued datagrams go first */
  return udp_sendmsg(u->io.fd, bufs, nbufs, addr, len);
}

/* ---- Receiving ----------------------------------------------------------- */

/* One datagram into a fresh read block.  0 if the socket is empty, else 1
 * after the callback ran (with a datagram or an error). */
static int recv_one(eddy_loop_t *loop, eddy_udp_t *u) {
  eddy_slice_t slice;
  struct sockaddr_storage peer;
  int err = eddy__read_block(loop, &slice);
  if (err != 0) {
    u->recv_cb(u, err, NULL, NULL, 0);
    return 1;
  }
  struct iovec iov = {.iov_base = slice.base, .iov_len = slice.len};
  struct msghdr msg = {
      .msg_name = &peer,
      .msg_namelen = sizeof peer,
      .msg_iov = &iov,
      .msg_iovlen = 1,
  };
  ssize_t n;
  do
    n = recvmsg(u->io.fd, &msg, 0);
  while (n < 0 && errno == EINTR);
  err = n < 0 ? errno : 0;
  if (n < 0) {
    eddy_slice_release(&slice);
    if (err == EAGAIN || err == EWOULDBLOCK)
      return 0;
    u->recv_cb(u, -err, NULL, NULL, 0);
    return 1;
  }
  /* MSG_TRUNC in msg_flags: the kernel dropped the datagram's tail. */
  unsigned flags = (msg.msg_flags & MSG_TRUNC) ? EDDY_UDP_PARTIAL : 0;
  slice.len = (size_t)n;
  u->recv_cb(u, n, &slice,
             msg.msg_namelen > sizeof(sa_family_t) ? (struct sockaddr *)&peer
                                                   : NULL,
             flags);
  eddy_slice_release(&slice);
  return 1;
}

static void udp_io_cb(eddy_loop_t *loop, eddy__io_t *io, unsigned events) {
  eddy_udp_t *u = eddy__container_of(io, eddy_udp_t, io);

  if (events & (EDDY__IO_READ | EDDY__IO_ERR)) {
    for (int i = 0; i < UDP_RECVS_PER_EVENT && (u->uflags & UDP_RECEIVING);
         i++) {
      if (!recv_one(loop, u))
        break;
      eddy__after_callback(loop);
    }
  }
  /* A receive callback may have closed the handle: then io is closed and
   * its sends wait for the close phase. */
  if (eddy__handle_closing(&u->handle))
    return;
  if ((events & (EDDY__IO_WRITE | EDDY__IO_ERR)) &&
      !eddy__queue_empty(&u->send_queue)) {
    flush_queue(u);
    run_done(u);
  }
}

int eddy_udp_recv_start(eddy_udp_t *u, eddy_udp_recv_cb cb) {
  EDDY__MISUSE(eddy__handle_closing(&u->handle), EDDY_EINVAL);
  if (cb == NULL)
    return EDDY_EINVAL;
  if (u->io.fd < 0)
    return EDDY_EBADF; /* bind first */
  u->recv_cb = cb;
  if (u->uflags & UDP_RECEIVING)
    return 0;
  int err = eddy__io_start(u->handle.loop, &u->io, EDDY__IO_READ);
  if (err != 0)
    return err;
  u->uflags |= UDP_RECEIVING;
  eddy__handle_start(&u->handle);
  return 0;
}

int eddy_udp_recv_stop(eddy_udp_t *u) {
  if (!(u->uflags & UDP_RECEIVING))
    return 0;
  u->uflags &= ~UDP_RECEIVING;
  eddy__io_stop(u->handle.loop, &u->io, EDDY__IO_READ);
  eddy__handle_stop(&u->handle);
  return 0;
}

/* ---- Sockets: init, open, bind, connect ---------------------------------- */

/* eddy_close(): no callback of the handle runs after this; the sends that
 * wait for the socket are cancelled, and all sends still owed a callback
 * hear it in the close phase, before close_cb. */
static void udp_stop_hook(eddy_handle_t *h) {
  eddy_udp_t *u = (eddy_udp_t *)h;

  u->uflags &= ~UDP_RECEIVING;
  if (u->io.fd >= 0) {
    eddy__io_close(h->loop, &u->io);
    close(u->io.fd);
    u->io.fd = -1;
  }
  if (u->uflags & UDP_PENDING) {
    eddy__queue_remove(&u->pending.node);
    u->uflags &= ~UDP_PENDING;
  }
  while (!eddy__queue_empty(&u->send_queue)) {
    eddy_udp_send_t *req = queue_req(eddy__queue_head(&u->send_queue));
    req->status = EDDY_ECANCELED;
    eddy__queue_remove(&req->node);
    eddy__queue_insert_tail(&u->send_done, &req->node);
  }
  u->send_queue_size = 0;
  u->send_queue_count = 0;
}

/* Nothing can be sent on a closing handle, so send_done only shrinks. */
static void udp_finish_hook(eddy_handle_t *h) {
  eddy_udp_t *u = (eddy_udp_t *)h;
  while (!eddy__queue_empty(&u->send_done))
    complete(u, queue_req(eddy__queue_head(&u->send_done)));
}

int eddy_udp_init(eddy_loop_t *loop, eddy_udp_t *u) {
  if (loop == NULL || u == NULL)
    return EDDY_EINVAL;
  eddy__handle_init(loop, &u->handle, EDDY_UDP);
  u->handle.stop_hook = udp_stop_hook;
  u->handle.finish_hook = udp_finish_hook;
  u->send_queue_size = 0;
  u->send_queue_count = 0;
  eddy__io_init(&u->io, udp_io_cb, -1);
  u->recv_cb = NULL;
  eddy__queue_init(&u->send_queue);
  eddy__queue_init(&u->send_done);
  u->pending.cb = udp_pending;
  eddy__queue_init(&u->pending.node);
  u->uflags = 0;
  return 0;
}

int eddy_udp_open(eddy_udp_t *u, int fd) {
  EDDY__MISUSE(eddy__handle_closing(&u->handle), EDDY_EINVAL);
  if (fd < 0)
    return EDDY_EINVAL;
  if (u->io.fd >= 0)
    return EDDY_EBUSY;
  int type;
  socklen_t len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0)
    return -errno;
  if (type != SOCK_DGRAM)
    return EDDY_EINVAL;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)
    return -errno;
  struct sockaddr_storage peer;
  len = sizeof peer;
  if (getpeername(fd, (struct sockaddr *)&peer, &len) == 0)
    u->uflags |= UDP_CONNECTED;
  u->io.fd = fd;
  return 0;
}

static int bind_socket(int fd, const struct sockaddr *addr, unsigned flags) {
  int on = 1;
  if ((flags & EDDY_UDP_REUSEADDR) &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0)
    return -errno;
  if (addr->sa_family == AF_INET6) {
    int only = (flags & EDDY_UDP_IPV6ONLY) != 0;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof only) != 0)
      return -errno;
  }
  if (bind(fd, addr, eddy__ip_addr_len(addr)) != 0)
    return -errno;
  return 0;
}

int eddy_udp_bind(eddy_udp_t *u, const struct sockaddr *addr, unsigned flags) {
  EDDY__MISUSE(eddy__handle_closing(&u->handle), EDDY_EINVAL);
  if (addr == NULL || eddy__ip_addr_len(addr) == 0 ||
      (flags & ~(unsigned)(EDDY_UDP_IPV6ONLY | EDDY_UDP_REUSEADDR)) != 0)
    return EDDY_EINVAL;
  if ((flags & EDDY_UDP_IPV6ONLY) && addr->sa_family != AF_INET6)
    return EDDY_EINVAL;
  int fresh = u->io.fd < 0;
  int err = udp_socket(u, addr->sa_family);
  if (err != 0)
    return err;
  err = bind_socket(u->io.fd, addr, flags);
  if (err != 0 && fresh) {
    /* Leave the handle as it was, so a retry may pick another family. */
    close(u->io.fd);
    u->io.fd = -1;
  }
  return err;
}

int eddy_udp_connect(eddy_udp_t *u, const struct sockaddr *addr) {
  EDDY__MISUSE(eddy__handle_closing(&u->handle), EDDY_EINVAL);
  if (addr == NULL) {
    if (!(u->uflags & UDP_CONNECTED))
      return EDDY_ENOTCONN;
    struct sockaddr unspec = {.sa_family = AF_UNSPEC};
    if (connect(u->io.fd, &unspec, sizeof unspec) != 0)
      return -errno;
    u->uflags &= ~UDP_CONNECTED;
    return 0;
  }
  if (eddy__ip_addr_len(addr) == 0)
    return EDDY_EINVAL;
  if (u->uflags & UDP_CONNECTED)
    return EDDY_EISCONN;
  int err = udp_socket(u, addr->sa_family);
  if (err != 0)
    return err;
  /* A datagram socket's connect only records the peer: it never blocks. */
  int rc;
  do
    rc = connect(u->io.fd, addr, eddy__ip_addr_len(addr));
  while (rc != 0 && errno == EINTR);
  if (rc != 0)
    return -errno;
  u->uflags |= UDP_CONNECTED;
  return 0;
}

/* ---- Options ------------------------------------------------------------- */

static int udp_name(const eddy_udp_t *u, struct sockaddr_storage *addr,
                    int (*fn)(int, struct sockaddr *, socklen_t *)) {
  if (addr == NULL)
    return EDDY_EINVAL;
  if (u->io.fd < 0)
    return EDDY_EBADF;
  socklen_t len = sizeof *addr;
  memset(addr, 0, sizeof *addr);
  if (fn(u->io.fd, (struct sockaddr *)addr, &len) != 0)
    return -errno;
  return 0;
}

int eddy_udp_getsockname(const eddy_udp_t *u, struct sockaddr_storage *addr) {
  return udp_name(u, addr, getsockname);
}

int eddy_udp_getpeername(const eddy_udp_t *u, struct sockaddr_storage *addr) {
  return udp_name(u, addr, getpeername);
}

static int set_int_opt(const eddy_udp_t *u, int level, int name, int value) {
  if (u->io.fd < 0)
    return EDDY_EBADF;
  if (setsockopt(u->io.fd, level, name, &value, sizeof value) != 0)
    return -errno;
  return 0;
}

int eddy_udp_set_broadcast(eddy_udp_t *u, int enable) {
  return set_int_opt(u, SOL_SOCKET, SO_BROADCAST, enable != 0);
}

int eddy_udp_set_ttl(eddy_udp_t *u, int ttl) {
  if (ttl < 1 || ttl > 255)
    return EDDY_EINVAL;
  if (u->io.fd < 0)
    return EDDY_EBADF;
  int family;
  socklen_t len = sizeof family;
  if (getsockopt(u->io.fd, SOL_SOCKET, SO_DOMAIN, &family, &len) != 0)
    return -errno;
  if (family == AF_INET6)
    return set_int_opt(u, IPPROTO_IPV6, IPV6_UNICAST_HOPS, ttl);
  if (family == AF_INET)
    return set_int_opt(u, IPPROTO_IP, IP_TTL, ttl);
  return EDDY_ENOTSUP;
}

int eddy_udp_fd(const eddy_udp_t *u) {
  return u->io.fd >= 0 ? u->io.fd : EDDY_EBADF;
}
