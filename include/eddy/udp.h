/* eddy UDP sockets: libuv's uv_udp_t, what Node's dgram runs on.
 * Included by eddy.h (through eddy/net.h); not to be included alone.
 *
 * A handle owns one datagram socket, made non-blocking and close-on-exec
 * when the address family is known: at eddy_udp_bind, eddy_udp_connect or
 * the first send.  The handle is active (keeps the loop alive) while it
 * receives; each send is a request that keeps the loop alive until its
 * callback has run. */
#ifndef EDDY_UDP_H
#define EDDY_UDP_H

#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eddy_udp_s eddy_udp_t;
typedef struct eddy_udp_send_s eddy_udp_send_t;

/* Flags of eddy_udp_bind and of the receive callback; the values are
 * libuv's. */
enum {
  EDDY_UDP_IPV6ONLY = 1, /* bind: an IPv6 socket that does not take IPv4 */
  EDDY_UDP_PARTIAL = 2,  /* recv: the datagram did not fit, the rest is lost */
  EDDY_UDP_REUSEADDR = 4 /* bind: SO_REUSEADDR, several sockets, one port */
};

/* status 0: the datagram went to the kernel; else an error from sendmsg
 * (EDDY_EMSGSIZE, EDDY_ENETUNREACH, ...), or EDDY_ECANCELED when the
 * handle was closed before the datagram could be sent.  Never called from
 * inside eddy_udp_send. */
typedef void (*eddy_udp_send_cb)(eddy_udp_send_t *req, int status);

/* One datagram: nread >= 0 bytes (0 is an empty datagram) in *buf, which is
 * borrowed for the call (copy the slice struct and eddy_slice_retain() the
 * copy to keep it), from *addr (NULL when the socket family has none, as an
 * unnamed Unix socket).  flags has EDDY_UDP_PARTIAL when the datagram was
 * longer than the buffer: *buf then holds its first nread bytes.
 * nread < 0: an error from the socket (buf and addr NULL); receiving goes
 * on. */
typedef void (*eddy_udp_recv_cb)(eddy_udp_t *u, ssize_t nread,
                                 const eddy_slice_t *buf,
                                 const struct sockaddr *addr, unsigned flags);

struct eddy_udp_s {
  eddy_handle_t handle;
  size_t send_queue_size;  /* bytes waiting for the socket to be writable */
  size_t send_queue_count; /* datagrams waiting, likewise */
  /* Private. */
  eddy__io_t io;
  eddy_udp_recv_cb recv_cb;
  eddy_queue_t send_queue; /* waiting for writable, in order */
  eddy_queue_t send_done;  /* sent or failed, callbacks not yet run */
  eddy__pending_t pending; /* runs send_done next iteration */
  unsigned uflags;
};

struct eddy_udp_send_s {
  void *data;
  eddy_udp_t *handle;
  /* Private. */
  eddy_udp_send_cb cb;
  eddy_queue_t node;
  struct sockaddr_storage addr;
  socklen_t addrlen; /* 0: the connected peer */
  eddy_buf_t *bufs;  /* small, or allocated when nbufs > 4 */
  eddy_buf_t small[4];
  unsigned nbufs;
  int status;
};

EDDY_EXTERN int eddy_udp_init(eddy_loop_t *loop, eddy_udp_t *u);
/* Adopts a datagram socket (any family; a Unix SOCK_DGRAM socket works
 * too): made non-blocking and close-on-exec, closed with the handle.
 * EDDY_EBUSY if the handle has a socket, EDDY_EINVAL if fd is not a
 * datagram socket. */
EDDY_EXTERN int eddy_udp_open(eddy_udp_t *u, int fd);
/* flags: EDDY_UDP_IPV6ONLY (IPv6 addresses only), EDDY_UDP_REUSEADDR. */
EDDY_EXTERN int eddy_udp_bind(eddy_udp_t *u, const struct sockaddr *addr,
                              unsigned flags);
/* Fixes the peer: sends may then pass a NULL address, and only the peer's
 * datagrams arrive.  addr NULL dissolves the association. */
EDDY_EXTERN int eddy_udp_connect(eddy_udp_t *u, const struct sockaddr *addr);

/* Sends one datagram made of the buffers, in order after earlier sends, to
 * addr (NULL on a connected handle).  The buffers' bytes must stay valid
 * until cb (the array itself is copied).  Tries the socket at once; if it
 * is full the datagram waits for it to be writable.  Returns 0 (cb will run
 * with the outcome) or a usage error, and then cb is never called:
 * EDDY_EINVAL (no buffers, an address that is not IPv4 or IPv6),
 * EDDY_EISCONN (an address on a connected handle), EDDY_ENOTCONN (NULL on
 * one that is not), EDDY_ENOMEM, or the error of making the socket. */
EDDY_EXTERN int eddy_udp_send(eddy_udp_send_t *req, eddy_udp_t *u,
                              const eddy_buf_t bufs[], unsigned nbufs,
                              const struct sockaddr *addr, eddy_udp_send_cb cb);
/* Sends now or not at all: the byte count, EDDY_EAGAIN if the socket is
 * full or sends are queued, or an error. */
EDDY_EXTERN ssize_t eddy_udp_try_send(eddy_udp_t *u, const eddy_buf_t bufs[],
                                      unsigned nbufs,
                                      const struct sockaddr *addr);

/* Calls cb for each datagram until eddy_udp_recv_stop or close; calling it
 * again replaces cb.  EDDY_EBADF before bind (or a first send) gave the
 * handle a socket. */
EDDY_EXTERN int eddy_udp_recv_start(eddy_udp_t *u, eddy_udp_recv_cb cb);
/* Datagrams that arrive meanwhile wait in the socket's receive buffer. */
EDDY_EXTERN int eddy_udp_recv_stop(eddy_udp_t *u);

/* The socket's options; EDDY_EBADF before it exists. */
EDDY_EXTERN int eddy_udp_getsockname(const eddy_udp_t *u,
                                     struct sockaddr_storage *addr);
EDDY_EXTERN int eddy_udp_getpeername(const eddy_udp_t *u,
                                     struct sockaddr_storage *addr);
EDDY_EXTERN int eddy_udp_set_broadcast(eddy_udp_t *u, int enable);
/* Unicast TTL (IPv4) or hop limit (IPv6), 1 to 255. */
EDDY_EXTERN int eddy_udp_set_ttl(eddy_udp_t *u, int ttl);
/* The descriptor, or EDDY_EBADF before there is one.  For options eddy has
 * no call for (SO_RCVBUF, multicast): setsockopt on it. */
EDDY_EXTERN int eddy_udp_fd(const eddy_udp_t *u);

#ifdef __cplusplus
}
#endif
#endif
