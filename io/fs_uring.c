/* File-system requests on the loop's io_uring ring.
 *
 * open, close, read, write (plain and vectored), stat / lstat / fstat
 * (statx), fsync and fdatasync are one submission each, each carrying
 * the request's ring_op, whose handler (fs_cqe) core/uring.c calls with
 * the completion.  read_file is two rounds: openat, then a read of the
 * whole size hard-linked to the close, so a small file costs the loop two
 * trips through the ring and no thread switch.  Everything else, and whatever
 * the kernel refuses as unsupported (EINVAL, EOPNOTSUPP), goes to the pool: the
 * caller never sees the difference except in eddy_fs_via().
 *
 * A request on the ring counts in loop->active_reqs from submission to its
 * callback: the loop stays alive, poll blocks in io_uring_enter (which is
 * where DEFER_TASKRUN completions are produced), and eddy_loop_close says
 * EDDY_EBUSY while the kernel still holds request memory. */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/uring.h"
#include "io/fs_internal.h"

/* read_file's steps on the ring */
enum { RF_OPEN = 0, RF_READ_CLOSE };

/* A read of the whole file must fit a CQE's int result. */
#define RF_MAX_SIZE (1u << 30)

static const unsigned char ring_ops[] = {
    IORING_OP_OPENAT, IORING_OP_CLOSE,  IORING_OP_READ,  IORING_OP_WRITE,
    IORING_OP_READV,  IORING_OP_WRITEV, IORING_OP_STATX, IORING_OP_FSYNC};

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int ring_ops_ok; /* every op of ring_ops is in the kernel's probe */

/* Once per process: a kernel that lacks any of the opcodes gets the pool
 * for all of them, which keeps the per-operation logic simple. */
static void probe_ops(void) {
  struct io_uring_probe *p = io_uring_get_probe();
  if (p == NULL)
    return;
  int ok = 1;
  for (size_t i = 0; i < sizeof ring_ops; i++)
    ok &= io_uring_opcode_supported(p, ring_ops[i]) != 0;
  io_uring_free_probe(p);
  ring_ops_ok = ok;
}

/* EDDY_FS=pool, read at each call so a program (or a test) may switch. */
static int forced_pool(void) {
  const char *s = getenv("EDDY_FS");
  return s != NULL && strcmp(s, "pool") == 0;
}

static int on_ring(const eddy_fs_t *req) {
  switch (req->type) {
  case EDDY_FS_OPEN:
  case EDDY_FS_CLOSE:
  case EDDY_FS_READ:
  case EDDY_FS_WRITE:
  case EDDY_FS_STAT:
  case EDDY_FS_LSTAT:
  case EDDY_FS_FSTAT:
  case EDDY_FS_FSYNC:
  case EDDY_FS_FDATASYNC:
  case EDDY_FS_READ_FILE:
    break;
  default:
    return 0;
  }
  if (req->loop->backend != &eddy__backend_uring || forced_pool())
    return 0;
  pthread_once(&probe_once, probe_ops);
  return ring_ops_ok;
}

static void fs_cqe(eddy_loop_t *loop, eddy__ring_op_t *op, int res,
                   unsigned flags);

static struct io_uring_sqe *fs_sqe(eddy_fs_t *req) {
  req->ring_op.cqe = fs_cqe;
  struct io_uring_sqe *sqe = eddy__u_op_sqe(req->loop, &req->ring_op);
  req->ring_wait++;
  return sqe;
}

static void prep_statx(eddy_fs_t *req, int dirfd, const char *path, int flags) {
  io_uring_prep_statx(fs_sqe(req), dirfd, path, flags,
                      STATX_BASIC_STATS | STATX_BTIME,
                      (struct statx *)req->u.statx);
}

static void prep_rw(eddy_fs_t *req) {
  struct io_uring_sqe *sqe = fs_sqe(req);
  uint64_t off = (uint64_t)req->offset; /* -1: the file position */
  int write = req->type == EDDY_FS_WRITE;
  if (req->nbufs == 1 && write)
    io_uring_prep_write(sqe, req->fd, req->bufs[0].base,
                        (unsigned)req->bufs[0].len, off);
  else if (req->nbufs == 1)
    io_uring_prep_read(sqe, req->fd, req->bufs[0].base,
                       (unsigned)req->bufs[0].len, off);
  else if (write)
    io_uring_prep_writev(sqe, req->fd, (const struct iovec *)req->bufs,
                         req->nbufs, off);
  else
    io_uring_prep_readv(sqe, req->fd, (const struct iovec *)req->bufs,
                        req->nbufs, off);
}

/* One buffer's length must fit the SQE's 32-bit length. */
static int fits_ring(const eddy_fs_t *req) {
  if (req->type != EDDY_FS_READ && req->type != EDDY_FS_WRITE)
    return 1;
  return req->nbufs != 1 || req->bufs[0].len <= RF_MAX_SIZE;
}

/* io_uring's first, non-blocking try at an open sets O_NONBLOCK and clears
 * it afterwards, so a FIFO opens at once, before any writer, and a read of
 * it ends at once (the writer then waits forever for a reader); a device
 * may behave likewise.  Whatever exists and is neither a regular file nor
 * a directory is opened by the pool, blocking as open(2) does.  One statx
 * of the path from the dentry cache; a file replaced by a FIFO after it
 * still reaches the ring (rf_opened hands such a descriptor to the pool). */
static int special_file(const char *path) {
  struct statx sx;
  if (statx(AT_FDCWD, path, AT_STATX_DONT_SYNC, STATX_TYPE, &sx) != 0)
    return 0; /* missing (O_CREAT), or the ring will say why */
  return !S_ISREG(sx.stx_mode) && !S_ISDIR(sx.stx_mode);
}

int eddy__fs_uring_submit(eddy_fs_t *req) {
  if (!on_ring(req) || !fits_ring(req))
    return 0;
  if ((req->type == EDDY_FS_OPEN || req->type == EDDY_FS_READ_FILE) &&
      special_file(req->path))
    return 0;
  req->via = EDDY_FS_VIA_RING;
  req->ring_wait = 0;
  switch (req->type) {
  case EDDY_FS_OPEN:
    io_uring_prep_openat(fs_sqe(req), AT_FDCWD, req->path,
                         req->flags | O_CLOEXEC, (mode_t)req->mode);
    break;
  case EDDY_FS_CLOSE:
    io_uring_prep_close(fs_sqe(req), req->fd);
    break;
  case EDDY_FS_READ:
  case EDDY_FS_WRITE:
    prep_rw(req);
    break;
  case EDDY_FS_STAT:
    prep_statx(req, AT_FDCWD, req->path, 0);
    break;
  case EDDY_FS_LSTAT:
    prep_statx(req, AT_FDCWD, req->path, AT_SYMLINK_NOFOLLOW);
    break;
  case EDDY_FS_FSTAT:
    prep_statx(req, req->fd, "", AT_EMPTY_PATH);
    break;
  case EDDY_FS_FSYNC:
  case EDDY_FS_FDATASYNC:
    io_uring_prep_fsync(fs_sqe(req), req->fd,
                        req->type == EDDY_FS_FDATASYNC ? IORING_FSYNC_DATASYNC
                                                       : 0);
    break;
  default: /* EDDY_FS_READ_FILE */
    req->ring_stage = RF_OPEN;
    req->fd = -1;
    io_uring_prep_openat(fs_sqe(req), AT_FDCWD, req->path, O_RDONLY | O_CLOEXEC,
                         0);
    break;
  }
  req->loop->active_reqs++;
  u_backend(req->loop)->fs_inflight++;
  return 1;
}

/* ---- Completions ----------------------------------------------------------
 */

static int unsupported(int res) {
  return res == -EINVAL || res == -EOPNOTSUPP;
}

static void ring_finish(eddy_fs_t *req, ssize_t result) {
  eddy_loop_t *loop = req->loop;
  loop->active_reqs--;
  u_backend(loop)->fs_inflight--;
  eddy__fs_finish(req, result);
  eddy__after_callback(loop);
}

/* The kernel refused the operation as such: the pool does it instead.  If
 * even that submission fails the callback gets its error. */
static void to_pool(eddy_fs_t *req) {
  req->loop->active_reqs--;
  u_backend(req->loop)->fs_inflight--;
  int err = eddy__fs_pool_submit(req);
  if (err != 0) {
    req->loop->active_reqs++;
    u_backend(req->loop)->fs_inflight++;
    ring_finish(req, err);
  }
}

/* read_file's file is open: learn its size, then read all of it and close
 * it in one hard-linked pair, the second trip through the ring.
 *
 * The size comes from a statx of the new descriptor on the loop thread,
 * with AT_STATX_DONT_SYNC: the inode is in memory (the open just looked it
 * up and, on a network file system, revalidated it), and DONT_SYNC forbids
 * a trip to a server, so the call does not wait on any device.  The ring's
 * own statx always runs on an io-wq kernel thread: a thread switch per
 * file, what the ring path is there to avoid (perf/files/README.md).
 *
 * What one read cannot do (a file that is not regular, or that stat says
 * is empty, /proc; one over 1 GB) goes to the pool with the open
 * descriptor, and a worker reads it to the end. */
static void rf_opened(eddy_fs_t *req) {
  struct statx sx;
  int err = 0;
  if (statx(req->fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC,
            STATX_TYPE | STATX_SIZE, &sx) != 0)
    err = -errno;
  else if (S_ISDIR(sx.stx_mode))
    err = EDDY_EISDIR;
  if (err != 0) {
    close(req->fd); /* read-only and ours: nothing to report */
    req->fd = -1;
    ring_finish(req, err);
    return;
  }
  if (!S_ISREG(sx.stx_mode) || sx.stx_size == 0 || sx.stx_size > RF_MAX_SIZE) {
    to_pool(req); /* with req->fd: the worker reads it to the end */
    return;
  }
  char *buf = malloc(sx.stx_size + 1);
  if (buf == NULL) {
    close(req->fd);
    ring_finish(req, EDDY_ENOMEM);
    return;
  }
  req->ptr = buf;
  req->len = sx.stx_size;
  req->ring_stage = RF_READ_CLOSE;
  struct io_uring_sqe *sqe = fs_sqe(req);
  io_uring_prep_read(sqe, req->fd, buf, (unsigned)req->len, 0);
  /* HARDLINK: the close runs even when the read fails or comes up short. */
  sqe->flags |= IOSQE_IO_HARDLINK;
  io_uring_prep_close(fs_sqe(req), req->fd);
}

/* read_file's completions: the open's fd or error; then the read's count
 * and the close's status (ignored: a read-only descriptor has nothing left
 * to flush), in that order, which the link fixes. */
static void rf_cqe(eddy_fs_t *req, int res) {
  if (req->ring_stage == RF_OPEN) {
    if (res >= 0) {
      req->fd = res;
      rf_opened(req);
    } else if (unsupported(res)) {
      to_pool(req);
    } else {
      ring_finish(req, res);
    }
    return;
  }
  if (req->ring_wait == 1) {
    req->result = res; /* the read; the close is still to come */
    return;
  }
  req->fd = -1;
  ssize_t n = req->result;
  if (n < 0) {
    free(req->ptr);
    req->ptr = NULL;
    if (unsupported((int)n))
      to_pool(req);
    else
      ring_finish(req, n);
    return;
  }
  ((char *)req->ptr)[n] = '\0'; /* short if the file shrank meanwhile */
  ring_finish(req, n);
}

static void fs_cqe(eddy_loop_t *loop, eddy__ring_op_t *op, int res,
                   unsigned flags) {
  eddy_fs_t *req = eddy__container_of(op, eddy_fs_t, ring_op);
  (void)loop;
  (void)flags;
  req->ring_wait--;
  if (req->type == EDDY_FS_READ_FILE) {
    rf_cqe(req, res);
    return;
  }
  if (unsupported(res)) {
    to_pool(req);
    return;
  }
  if (res >= 0 && (req->type == EDDY_FS_STAT || req->type == EDDY_FS_LSTAT ||
                   req->type == EDDY_FS_FSTAT))
    eddy__fs_from_statx(&req->statbuf, (const struct statx *)req->u.statx);
  ring_finish(req, res);
}
