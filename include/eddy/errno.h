/* eddy error codes: negative errno values, one table for names and messages.
 *
 * EDDY_ERRNO_MAP is the only list of errors in eddy.  The enum below and the
 * name/message table in core/error.c are both generated from it, so a code
 * can never have a name without a message or the other way round.
 */
#ifndef EDDY_ERRNO_H
#define EDDY_ERRNO_H

#include <errno.h>

/* Codes eddy defines itself live far above any errno value. */
#define EDDY__EOF (-4095)
#define EDDY__EUNHANDLED (-4094)

#define EDDY_ERRNO_MAP(X)                                                     \
  X(E2BIG, -E2BIG, "argument list too long")                                  \
  X(EACCES, -EACCES, "permission denied")                                     \
  X(EADDRINUSE, -EADDRINUSE, "address already in use")                        \
  X(EADDRNOTAVAIL, -EADDRNOTAVAIL, "address not available")                   \
  X(EAFNOSUPPORT, -EAFNOSUPPORT, "address family not supported")              \
  X(EAGAIN, -EAGAIN, "resource temporarily unavailable")                      \
  X(EALREADY, -EALREADY, "connection already in progress")                    \
  X(EBADF, -EBADF, "bad file descriptor")                                     \
  X(EBUSY, -EBUSY, "resource busy or locked")                                 \
  X(ECANCELED, -ECANCELED, "operation canceled")                              \
  X(ECONNABORTED, -ECONNABORTED, "software caused connection abort")          \
  X(ECONNREFUSED, -ECONNREFUSED, "connection refused")                        \
  X(ECONNRESET, -ECONNRESET, "connection reset by peer")                      \
  X(EEXIST, -EEXIST, "file already exists")                                   \
  X(EFAULT, -EFAULT, "bad address in system call argument")                   \
  X(EFBIG, -EFBIG, "file too large")                                          \
  X(EHOSTUNREACH, -EHOSTUNREACH, "host is unreachable")                       \
  X(EINTR, -EINTR, "interrupted system call")                                 \
  X(EINVAL, -EINVAL, "invalid argument")                                      \
  X(EIO, -EIO, "i/o error")                                                   \
  X(EISCONN, -EISCONN, "socket is already connected")                         \
  X(EISDIR, -EISDIR, "illegal operation on a directory")                      \
  X(ELOOP, -ELOOP, "too many symbolic links encountered")                     \
  X(EMFILE, -EMFILE, "too many open files")                                   \
  X(EMSGSIZE, -EMSGSIZE, "message too long")                                  \
  X(ENAMETOOLONG, -ENAMETOOLONG, "name too long")                             \
  X(ENETDOWN, -ENETDOWN, "network is down")                                   \
  X(ENETUNREACH, -ENETUNREACH, "network is unreachable")                      \
  X(ENFILE, -ENFILE, "file table overflow")                                   \
  X(ENOBUFS, -ENOBUFS, "no buffer space available")                           \
  X(ENODEV, -ENODEV, "no such device")                                        \
  X(ENOENT, -ENOENT, "no such file or directory")                             \
  X(ENOMEM, -ENOMEM, "not enough memory")                                     \
  X(ENOSPC, -ENOSPC, "no space left on device")                               \
  X(ENOSYS, -ENOSYS, "function not implemented")                              \
  X(ENOTCONN, -ENOTCONN, "socket is not connected")                           \
  X(ENOTDIR, -ENOTDIR, "not a directory")                                     \
  X(ENOTEMPTY, -ENOTEMPTY, "directory not empty")                             \
  X(ENOTSOCK, -ENOTSOCK, "socket operation on non-socket")                    \
  X(ENOTSUP, -ENOTSUP, "operation not supported")                             \
  X(EOVERFLOW, -EOVERFLOW, "value too large for defined data type")           \
  X(EPERM, -EPERM, "operation not permitted")                                 \
  X(EPIPE, -EPIPE, "broken pipe")                                             \
  X(EPROTO, -EPROTO, "protocol error")                                        \
  X(ERANGE, -ERANGE, "result too large")                                      \
  X(EROFS, -EROFS, "read-only file system")                                   \
  X(ESPIPE, -ESPIPE, "invalid seek")                                          \
  X(ESRCH, -ESRCH, "no such process")                                         \
  X(ETIMEDOUT, -ETIMEDOUT, "connection timed out")                            \
  X(EXDEV, -EXDEV, "cross-device link not permitted")                         \
  X(EOF, EDDY__EOF, "end of file")                                            \
  X(EUNHANDLED, EDDY__EUNHANDLED, "unhandled error event")

typedef enum {
#define EDDY__ERR_ENUM(name, value, msg) EDDY_##name = (value),
  EDDY_ERRNO_MAP(EDDY__ERR_ENUM)
#undef EDDY__ERR_ENUM
  EDDY__ERRNO_MAX = -4096
} eddy_errno_t;

#endif
