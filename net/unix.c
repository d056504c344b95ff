/* Unix domain stream sockets: paths, and Linux's abstract namespace. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "net/internal.h"

int eddy_unix_init(eddy_loop_t *loop, eddy_unix_t *u) {
  if (loop == NULL || u == NULL)
    return EDDY_EINVAL;
  eddy__stream_init(loop, &u->stream, EDDY_UNIX);
  return 0;
}

int eddy_unix_open(eddy_unix_t *u, int fd) {
  EDDY__MISUSE(eddy__handle_closing(&u->stream.handle), EDDY_EINVAL);
  if (fd < 0)
    return EDDY_EINVAL;
  if (u->stream.sio.io.fd >= 0)
    return EDDY_EBUSY;
  return eddy__stream_open(&u->stream, fd);
}

/* A path, or "\0name" for the abstract namespace (its length counts). */
static int unix_addr(const char *path, struct sockaddr_un *sun,
                     socklen_t *len) {
  if (path == NULL)
    return EDDY_EINVAL;
  size_t n = path[0] == '\0' ? 1 + strlen(path + 1) : strlen(path);
  if (n == 0 || n >= sizeof sun->sun_path)
    return n == 0 ? EDDY_EINVAL : EDDY_ENAMETOOLONG;
  memset(sun, 0, sizeof *sun);
  sun->sun_family = AF_UNIX;
  memcpy(sun->sun_path, path, n);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
                     (path[0] != '\0'));
  return 0;
}

static int unix_socket(eddy_unix_t *u) {
  if (u->stream.sio.io.fd >= 0)
    return 0;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  u->stream.sio.io.fd = fd;
  return 0;
}

int eddy_unix_bind(eddy_unix_t *u, const char *path) {
  EDDY__MISUSE(eddy__handle_closing(&u->stream.handle), EDDY_EINVAL);
  struct sockaddr_un sun;
  socklen_t len;
  int err = unix_addr(path, &sun, &len);
  if (err == 0)
    err = unix_socket(u);
  if (err == 0 && bind(u->stream.sio.io.fd, (struct sockaddr *)&sun, len) != 0)
    err = -errno;
  return err;
}

int eddy_unix_connect(eddy_connect_t *req, eddy_unix_t *u, const char *path,
                      eddy_connect_cb cb) {
  EDDY__MISUSE(eddy__handle_closing(&u->stream.handle), EDDY_EINVAL);
  struct sockaddr_un sun;
  socklen_t len;
  if (req == NULL || cb == NULL)
    return EDDY_EINVAL;
  int err = unix_addr(path, &sun, &len);
  if (err == 0)
    err = unix_socket(u);
  if (err != 0)
    return err;
  return eddy__stream_connect(req, &u->stream, (struct sockaddr *)&sun, len,
                              cb);
}
