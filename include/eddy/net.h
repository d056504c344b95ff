/* eddy networking: streams (TCP, Unix domain sockets), UDP, DNS.
 * Included by eddy.h; not to be included alone. */
#ifndef EDDY_NET_H
#define EDDY_NET_H

#include <netdb.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eddy_stream_s eddy_stream_t;
typedef struct eddy_tcp_s eddy_tcp_t;
typedef struct eddy_unix_s eddy_unix_t;
typedef struct eddy_write_s eddy_write_t;
typedef struct eddy_connect_s eddy_connect_t;
typedef struct eddy_shutdown_s eddy_shutdown_t;

/* nread > 0: that many bytes in *buf, which is borrowed for the call; to
 * keep them, copy the slice struct and eddy_slice_retain() the copy (then
 * eddy_slice_release() it when done).  nread == EDDY_EOF: the peer shut
 * down its side; reading stops.  nread < 0: an error; reading stops. */
typedef void (*eddy_read_cb)(eddy_stream_t *s, ssize_t nread,
                             const eddy_slice_t *buf);
typedef void (*eddy_write_cb)(eddy_write_t *req, int status);
typedef void (*eddy_connect_cb)(eddy_connect_t *req, int status);
typedef void (*eddy_shutdown_cb)(eddy_shutdown_t *req, int status);
/* A connection waits: call eddy_accept() in the callback to take it.
 * status < 0 (EDDY_EMFILE, ...): a connection was shed; the server keeps
 * listening. */
typedef void (*eddy_connection_cb)(eddy_stream_t *server, int status);
/* The write queue fell below the high-water mark after eddy_write said it
 * was above: Node's 'drain'. */
typedef void (*eddy_drain_cb)(eddy_stream_t *s);

/* Node's default writableHighWaterMark. */
#define EDDY_STREAM_HIGH_WATER_MARK 16384
/* eddy_write's return when the queue is at or above the high-water mark:
 * the write is queued; wait for the drain callback before writing more. */
#define EDDY_STREAM_FULL 1

struct eddy_stream_s {
  eddy_handle_t handle;
  size_t write_queue_size; /* bytes queued, not yet written */
  size_t high_water_mark;
  /* Private. */
  eddy__sio_t sio;
  eddy_read_cb read_cb;
  eddy_connection_cb connection_cb;
  eddy_drain_cb drain_cb;
  eddy_queue_t write_queue; /* requests not fully written, in order */
  eddy_queue_t write_done;  /* written, callbacks not yet run */
  eddy__pending_t pending;  /* runs write_done (and errors) next iteration */
  eddy_connect_t *connect_req;
  eddy_shutdown_t *shutdown_req;
  int accepted_fd;
  int error; /* a write error to deliver to later writes */
  unsigned sflags;
  struct eddy_pipe_s *pipe_out; /* the pipe reading it (net/pipe.c) */
  struct eddy_pipe_s *pipe_in;  /* the pipe writing to it */
};

/* A range of a file a write sends after its buffers (eddy_write_file);
 * len 0 when there is none.  The backend sees it through fill_iov. */
struct eddy__wfile_s {
  int fd;
  int64_t offset; /* advances as bytes leave */
  size_t len;     /* bytes still to send */
};

struct eddy_write_s {
  void *data;
  eddy_stream_t *stream;
  /* Private. */
  eddy_write_cb cb;
  eddy_queue_t node;
  eddy_buf_t *bufs; /* small, or allocated when nbufs > 4 */
  eddy_buf_t small[4];
  unsigned nbufs;
  unsigned index; /* first buffer not fully written */
  int status;
  struct eddy__wfile_s file;
};

struct eddy_connect_s {
  void *data;
  eddy_stream_t *stream;
  /* Private. */
  eddy_connect_cb cb;
  int status;
};

struct eddy_shutdown_s {
  void *data;
  eddy_stream_t *stream;
  /* Private. */
  eddy_shutdown_cb cb;
};

EDDY_EXTERN int eddy_read_start(eddy_stream_t *s, eddy_read_cb cb);
EDDY_EXTERN int eddy_read_stop(eddy_stream_t *s);
/* Queues the buffers, in order after earlier writes; their bytes must stay
 * valid until cb (the array itself is copied).  Returns 0, or
 * EDDY_STREAM_FULL when the queue is now at or above the high-water mark,
 * or a negative error (then cb is never called). */
EDDY_EXTERN int eddy_write(eddy_write_t *req, eddy_stream_t *s,
                           const eddy_buf_t bufs[], unsigned nbufs,
                           eddy_write_cb cb);
/* Like eddy_write (nbufs may be 0), then len bytes of the file fd from
 * offset, sent with sendfile(2) when the queue reaches them, in order with
 * the other writes; the file's bytes never pass through user memory.  fd
 * (a regular file) must stay open until cb, and its offset is not used or
 * moved.  The file's bytes count in write_queue_size.  cb hears 0 once
 * every byte left, or an error: EDDY_EIO if the file ended before offset +
 * len (it shrank).  Returns as eddy_write does.  sendfile has no
 * MSG_NOSIGNAL: the first call sets SIGPIPE to ignored if it still has its
 * default action (as Node does), so a reset peer is EPIPE, not death. */
EDDY_EXTERN int eddy_write_file(eddy_write_t *req, eddy_stream_t *s,
                                const eddy_buf_t bufs[], unsigned nbufs,
                                int fd, int64_t offset, size_t len,
                                eddy_write_cb cb);
/* Writes what the socket takes now, if nothing is queued: the byte count,
 * or EDDY_EAGAIN, or an error. */
EDDY_EXTERN ssize_t eddy_try_write(eddy_stream_t *s, const eddy_buf_t bufs[],
                                   unsigned nbufs);
/* After every queued write, shuts down the writing side (FIN). */
EDDY_EXTERN int eddy_shutdown(eddy_shutdown_t *req, eddy_stream_t *s,
                              eddy_shutdown_cb cb);
EDDY_EXTERN void eddy_stream_set_drain_cb(eddy_stream_t *s, eddy_drain_cb cb);
EDDY_EXTERN int eddy_stream_is_readable(const eddy_stream_t *s);
EDDY_EXTERN int eddy_stream_is_writable(const eddy_stream_t *s);
EDDY_EXTERN int eddy_listen(eddy_stream_t *s, int backlog,
                            eddy_connection_cb cb);
/* Takes the waiting connection into client, an initialised stream of the
 * server's kind; EDDY_EAGAIN if none waits. */
EDDY_EXTERN int eddy_accept(eddy_stream_t *server, eddy_stream_t *client);
/* The descriptor, or EDDY_EBADF before there is one. */
EDDY_EXTERN int eddy_stream_fd(const eddy_stream_t *s);

/* ---- TCP ------------------------------------------------------------------ */

struct eddy_tcp_s {
  eddy_stream_t stream;
};

enum {
  EDDY_TCP_IPV6ONLY = 1, /* an IPv6 socket that does not take IPv4 */
  EDDY_TCP_REUSEPORT = 2 /* SO_REUSEPORT: several listeners, one port */
};

EDDY_EXTERN int eddy_tcp_init(eddy_loop_t *loop, eddy_tcp_t *t);
/* Adopts a connected or listening socket. */
EDDY_EXTERN int eddy_tcp_open(eddy_tcp_t *t, int fd);
EDDY_EXTERN int eddy_tcp_bind(eddy_tcp_t *t, const struct sockaddr *addr,
                              unsigned flags);
EDDY_EXTERN int eddy_tcp_connect(eddy_connect_t *req, eddy_tcp_t *t,
                                 const struct sockaddr *addr,
                                 eddy_connect_cb cb);
EDDY_EXTERN int eddy_tcp_nodelay(eddy_tcp_t *t, int enable);
EDDY_EXTERN int eddy_tcp_keepalive(eddy_tcp_t *t, int enable,
                                   unsigned delay_s);
EDDY_EXTERN int eddy_tcp_getsockname(const eddy_tcp_t *t,
                                     struct sockaddr_storage *addr);
EDDY_EXTERN int eddy_tcp_getpeername(const eddy_tcp_t *t,
                                     struct sockaddr_storage *addr);

/* "127.0.0.1" / "::1" and a port into a sockaddr. */
EDDY_EXTERN int eddy_ip4_addr(const char *ip, int port,
                              struct sockaddr_in *addr);
EDDY_EXTERN int eddy_ip6_addr(const char *ip, int port,
                              struct sockaddr_in6 *addr);
/* The address as text, "1.2.3.4:80" or "[::1]:80". */
EDDY_EXTERN int eddy_addr_name(const struct sockaddr *addr, char *out,
                               size_t size);

/* ---- Unix domain sockets ------------------------------------------------- */

struct eddy_unix_s {
  eddy_stream_t stream;
};

EDDY_EXTERN int eddy_unix_init(eddy_loop_t *loop, eddy_unix_t *u);
EDDY_EXTERN int eddy_unix_open(eddy_unix_t *u, int fd);
/* A path, or a name starting with '\0' for the abstract namespace. */
EDDY_EXTERN int eddy_unix_bind(eddy_unix_t *u, const char *path);
EDDY_EXTERN int eddy_unix_connect(eddy_connect_t *req, eddy_unix_t *u,
                                  const char *path, eddy_connect_cb cb);

#ifdef __cplusplus
}
#endif

#include "eddy/dns.h"
#include "eddy/udp.h"
#include "eddy/http.h"

#endif
