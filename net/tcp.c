/* TCP streams, IPv4 and IPv6, and address helpers. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "net/internal.h"

int eddy_tcp_init(eddy_loop_t *loop, eddy_tcp_t *t) {
  if (loop == NULL || t == NULL)
    return EDDY_EINVAL;
  eddy__stream_init(loop, &t->stream, EDDY_TCP);
  return 0;
}

int eddy_tcp_open(eddy_tcp_t *t, int fd) {
  EDDY__MISUSE(eddy__handle_closing(&t->stream.handle), EDDY_EINVAL);
  if (fd < 0)
    return EDDY_EINVAL;
  if (t->stream.sio.io.fd >= 0)
    return EDDY_EBUSY;
  return eddy__stream_open(&t->stream, fd);
}

/* The socket is made when the address family is known: at bind or
 * connect. */
static int tcp_socket(eddy_tcp_t *t, int family) {
  if (t->stream.sio.io.fd >= 0)
    return 0;
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  t->stream.sio.io.fd = fd;
  return 0;
}

int eddy_tcp_bind(eddy_tcp_t *t, const struct sockaddr *addr, unsigned flags) {
  EDDY__MISUSE(eddy__handle_closing(&t->stream.handle), EDDY_EINVAL);
  if (addr == NULL || eddy__ip_addr_len(addr) == 0 ||
      (flags & ~(unsigned)(EDDY_TCP_IPV6ONLY | EDDY_TCP_REUSEPORT)) != 0)
    return EDDY_EINVAL;
  if ((flags & EDDY_TCP_IPV6ONLY) && addr->sa_family != AF_INET6)
    return EDDY_EINVAL;
  int err = tcp_socket(t, addr->sa_family);
  if (err != 0)
    return err;
  int fd = t->stream.sio.io.fd, on = 1;
  /* A restarted server rebinds its port while old connections linger in
   * TIME_WAIT. */
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0)
    return -errno;
  if ((flags & EDDY_TCP_REUSEPORT) &&
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0)
    return -errno;
  if (addr->sa_family == AF_INET6) {
    int only = (flags & EDDY_TCP_IPV6ONLY) != 0;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof only) != 0)
      return -errno;
  }
  if (bind(fd, addr, eddy__ip_addr_len(addr)) != 0)
    return -errno;
  return 0;
}

int eddy_tcp_connect(eddy_connect_t *req, eddy_tcp_t *t,
                     const struct sockaddr *addr, eddy_connect_cb cb) {
  EDDY__MISUSE(eddy__handle_closing(&t->stream.handle), EDDY_EINVAL);
  if (req == NULL || addr == NULL || cb == NULL || eddy__ip_addr_len(addr) == 0)
    return EDDY_EINVAL;
  int err = tcp_socket(t, addr->sa_family);
  if (err != 0)
    return err;
  return eddy__stream_connect(req, &t->stream, addr, eddy__ip_addr_len(addr), cb);
}

int eddy_tcp_nodelay(eddy_tcp_t *t, int enable) {
  int fd = t->stream.sio.io.fd;
  if (fd < 0)
    return EDDY_EBADF;
  enable = enable != 0;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &enable, sizeof enable) != 0)
    return -errno;
  return 0;
}

int eddy_tcp_keepalive(eddy_tcp_t *t, int enable, unsigned delay_s) {
  int fd = t->stream.sio.io.fd;
  if (fd < 0)
    return EDDY_EBADF;
  enable = enable != 0;
  if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &enable, sizeof enable) != 0)
    return -errno;
  if (enable && delay_s > 0) {
    int idle = (int)delay_s;
    if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) != 0)
      return -errno;
  }
  return 0;
}

static int tcp_name(const eddy_tcp_t *t, struct sockaddr_storage *addr,
                    int (*fn)(int, struct sockaddr *, socklen_t *)) {
  int fd = t->stream.sio.io.fd;
  if (addr == NULL)
    return EDDY_EINVAL;
  if (fd < 0)
    return EDDY_EBADF;
  socklen_t len = sizeof *addr;
  memset(addr, 0, sizeof *addr);
  if (fn(fd, (struct sockaddr *)addr, &len) != 0)
    return -errno;
  return 0;
}

int eddy_tcp_getsockname(const eddy_tcp_t *t, struct sockaddr_storage *addr) {
  return tcp_name(t, addr, getsockname);
}

int eddy_tcp_getpeername(const eddy_tcp_t *t, struct sockaddr_storage *addr) {
  return tcp_name(t, addr, getpeername);
}

int eddy_ip4_addr(const char *ip, int port, struct sockaddr_in *addr) {
  if (ip == NULL || addr == NULL || port < 0 || port > 65535)
    return EDDY_EINVAL;
  memset(addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_port = htons((uint16_t)port);
  return inet_pton(AF_INET, ip, &addr->sin_addr) == 1 ? 0 : EDDY_EINVAL;
}

int eddy_ip6_addr(const char *ip, int port, struct sockaddr_in6 *addr) {
  if (ip == NULL || addr == NULL || port < 0 || port > 65535)
    return EDDY_EINVAL;
  memset(addr, 0, sizeof *addr);
  addr->sin6_family = AF_INET6;
  addr->sin6_port = htons((uint16_t)port);
  return inet_pton(AF_INET6, ip, &addr->sin6_addr) == 1 ? 0 : EDDY_EINVAL;
}

int eddy_addr_name(const struct sockaddr *addr, char *out, size_t size) {
  char ip[INET6_ADDRSTRLEN];
  int n;
  if (addr == NULL || out == NULL || size == 0)
    return EDDY_EINVAL;
  if (addr->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)addr;
    inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
    n = snprintf(out, size, "%s:%u", ip, ntohs(a->sin_port));
  } else if (addr->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)addr;
    inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
    n = snprintf(out, size, "[%s]:%u", ip, ntohs(a->sin6_port));
  } else {
    return EDDY_EAFNOSUPPORT;
  }
  return n >= 0 && (size_t)n < size ? 0 : EDDY_ENOBUFS;
}
