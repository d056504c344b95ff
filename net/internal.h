/* What the net/ modules share. */
#ifndef EDDY_NET_INTERNAL_H
#define EDDY_NET_INTERNAL_H

#include <netinet/in.h>

#include "core/internal.h"

/* eddy_stream_t.sflags */
enum {
  EDDY__SF_READING = 1u << 0,
  EDDY__SF_LISTENING = 1u << 1,
  EDDY__SF_CONNECTING = 1u << 2,
  EDDY__SF_SHUTTING = 1u << 3,   /* eddy_shutdown called */
  EDDY__SF_SHUT = 1u << 4,       /* the writing side is shut down */
  EDDY__SF_READ_EOF = 1u << 5,   /* the peer's side ended */
  EDDY__SF_NEED_DRAIN = 1u << 6, /* eddy_write said full */
  EDDY__SF_IN_WRITE = 1u << 7,   /* inside eddy_write: defer callbacks */
  EDDY__SF_IN_READ = 1u << 8,    /* inside the read callback: same */
  EDDY__SF_PENDING = 1u << 9,    /* stream->pending is queued */
  EDDY__SF_CONNECTED = 1u << 10,
};

/* The length of an IPv4 or IPv6 address, 0 for any other family. */
static inline socklen_t eddy__ip_addr_len(const struct sockaddr *addr) {
  if (addr->sa_family == AF_INET)
    return sizeof(struct sockaddr_in);
  if (addr->sa_family == AF_INET6)
    return sizeof(struct sockaddr_in6);
  return 0;
}

void eddy__stream_init(eddy_loop_t *loop, eddy_stream_t *s,
                       eddy_handle_type type);
/* Adopts fd (made non-blocking and close-on-exec). */
int eddy__stream_open(eddy_stream_t *s, int fd);
/* Starts a connect on the stream's socket; req->cb runs when it ends. */
int eddy__stream_connect(eddy_connect_t *req, eddy_stream_t *s,
                         const struct sockaddr *addr, socklen_t len,
                         eddy_connect_cb cb);

#endif
