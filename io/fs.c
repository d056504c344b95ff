/* File-system requests: argument checks and copies, then one of three
 * ways to run them (docs/fs.md):
 *  - synchronously on the caller's thread when cb is NULL;
 *  - on the loop's io_uring ring for the operations io/fs_uring.c does,
 *    when the backend is io_uring and EDDY_FS is not "pool";
 *  - else on the worker pool's fast class: the worker runs the operation
 *    (io/fs_ops.c) and the loop calls back through the completion queue.
 * A request on the pool is counted by the pool (loop->pool_reqs), one on
 * the ring by loop->active_reqs; either keeps the loop alive and makes
 * eddy_loop_close fail with EDDY_EBUSY. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "io/fs_internal.h"

/* eddy_buf_t is passed to readv/writev (and the ring) as a struct iovec. */
_Static_assert(sizeof(eddy_buf_t) == sizeof(struct iovec) &&
                   offsetof(eddy_buf_t, base) ==
                       offsetof(struct iovec, iov_base) &&
                   offsetof(eddy_buf_t, len) == offsetof(struct iovec, iov_len),
               "eddy_buf_t must have struct iovec's layout");

static void fs_free_bufs(eddy_fs_t *req) {
  if (req->bufs != NULL && req->bufs != req->u.bufsml)
    free(req->bufs);
  req->bufs = NULL;
  req->nbufs = 0;
}

/* Everything but data starts from zero: a request may be reused after
 * eddy_fs_req_cleanup. */
static int fs_init(eddy_loop_t *loop, eddy_fs_t *req, eddy_fs_type type,
                   eddy_fs_cb cb) {
  if (loop == NULL || req == NULL)
    return EDDY_EINVAL;
  void *data = req->data;
  memset(req, 0, sizeof *req);
  req->data = data;
  req->loop = loop;
  req->type = type;
  req->cb = cb;
  req->fd = -1;
  req->out_fd = -1;
  req->offset = -1;
  return 0;
}

/* Both paths in one allocation, path first (cleanup frees path). */
static int fs_paths(eddy_fs_t *req, const char *path, const char *new_path) {
  if (path == NULL)
    return EDDY_EINVAL;
  size_t n1 = strlen(path) + 1;
  size_t n2 = new_path != NULL ? strlen(new_path) + 1 : 0;
  char *buf = malloc(n1 + n2);
  if (buf == NULL)
    return EDDY_ENOMEM;
  memcpy(buf, path, n1);
  req->path = buf;
  if (new_path != NULL)
    req->new_path = memcpy(buf + n1, new_path, n2);
  return 0;
}

static int fs_bufs(eddy_fs_t *req, const eddy_buf_t bufs[], unsigned nbufs) {
  if (bufs == NULL || nbufs == 0 || nbufs > IOV_MAX)
    return EDDY_EINVAL;
  req->bufs = req->u.bufsml;
  if (nbufs > sizeof req->u.bufsml / sizeof req->u.bufsml[0]) {
    req->bufs = malloc(nbufs * sizeof *bufs);
    if (req->bufs == NULL)
      return EDDY_ENOMEM;
  }
  memcpy(req->bufs, bufs, nbufs * sizeof *bufs);
  req->nbufs = nbufs;
  return 0;
}

static int clamp_int(ssize_t r) {
  return r > INT_MAX ? INT_MAX : (int)r;
}

/* A submission that failed leaves nothing to clean up and no callback. */
static int fs_fail(eddy_fs_t *req, int err) {
  eddy_fs_req_cleanup(req);
  req->result = err;
  req->via = EDDY_FS_VIA_NONE;
  return err;
}

static void fs_work(eddy_work_t *w) {
  eddy_fs_t *req = eddy__container_of(w, eddy_fs_t, work);
  req->result = eddy__fs_exec(req);
}

static void fs_after(eddy_work_t *w, int status) {
  eddy_fs_t *req = eddy__container_of(w, eddy_fs_t, work);
  eddy__fs_finish(req, status == EDDY_ECANCELED ? status : req->result);
}

/* A failed read_file leaves no buffer behind (req->ptr is NULL), nor a
 * descriptor the ring opened for a worker that never ran (cancelled). */
static void fs_drop_failed(eddy_fs_t *req) {
  if (req->type != EDDY_FS_READ_FILE)
    return;
  if (req->fd >= 0) {
    close(req->fd);
    req->fd = -1;
  }
  if (req->result < 0) {
    free(req->ptr);
    req->ptr = NULL;
  }
}

void eddy__fs_finish(eddy_fs_t *req, ssize_t result) {
  req->result = result;
  fs_drop_failed(req);
  fs_free_bufs(req); /* as libuv: the copied array is gone by the callback */
  req->cb(req);      /* may free or reuse req */
}

/* A small file's bytes land in a buffer the loop allocates here, which
 * the worker grows with realloc if the file is bigger.  Buffers that a
 * worker malloc'd and the loop freed made glibc grow and trim the worker's
 * arena over and over: madvise, page faults and TLB shootdowns were a
 * fifth of the CPU time of reading 4 KB files (perf/files/README.md).
 * realloc keeps a chunk in the arena it came from, the loop thread's. */
#define FS_RF_FIRST 8192

int eddy__fs_pool_submit(eddy_fs_t *req) {
  if (req->type == EDDY_FS_READ_FILE && req->ptr == NULL) {
    req->ptr = malloc(FS_RF_FIRST); /* NULL: the worker allocates */
    req->len = req->ptr != NULL ? FS_RF_FIRST : 0;
  }
  req->via = EDDY_FS_VIA_POOL;
  return eddy_queue_work(req->loop, &req->work, EDDY_WORK_FAST, fs_work,
                         fs_after);
}

/* Runs or starts a request whose arguments are in place. */
static int fs_submit(eddy_fs_t *req) {
  if (req->cb == NULL) {
    req->via = EDDY_FS_VIA_SYNC;
    req->result = eddy__fs_exec(req);
    fs_drop_failed(req);
    fs_free_bufs(req);
    return clamp_int(req->result);
  }
  if (eddy__fs_uring_submit(req))
    return 0;
  int err = eddy__fs_pool_submit(req);
  return err != 0 ? fs_fail(req, err) : 0;
}

static int fs_path_op(eddy_loop_t *loop, eddy_fs_t *req, eddy_fs_type type,
                      const char *path, const char *new_path, eddy_fs_cb cb) {
  int err = fs_init(loop, req, type, cb);
  if (err != 0)
    return err;
  err = fs_paths(req, path, new_path);
  if (err != 0)
    return fs_fail(req, err);
  return fs_submit(req);
}

static int fs_fd_op(eddy_loop_t *loop, eddy_fs_t *req, eddy_fs_type type,
                    int fd, eddy_fs_cb cb) {
  int err = fs_init(loop, req, type, cb);
  if (err != 0)
    return err;
  req->fd = fd;
  return fs_submit(req);
}

static int fs_rw_op(eddy_loop_t *loop, eddy_fs_t *req, eddy_fs_type type,
                    int fd, const eddy_buf_t bufs[], unsigned nbufs,
                    int64_t offset, eddy_fs_cb cb) {
  int err = fs_init(loop, req, type, cb);
  if (err != 0)
    return err;
  if (offset < -1)
    return fs_fail(req, EDDY_EINVAL);
  err = fs_bufs(req, bufs, nbufs);
  if (err != 0)
    return fs_fail(req, err);
  req->fd = fd;
  req->offset = offset;
  return fs_submit(req);
}

/* ---- The API ----------------------------------------------------------------
 */

int eddy_fs_open(eddy_loop_t *loop, eddy_fs_t *req, const char *path, int flags,
                 int mode, eddy_fs_cb cb) {
  int err = fs_init(loop, req, EDDY_FS_OPEN, cb);
  if (err != 0)
    return err;
  req->flags = flags;
  req->mode = mode;
  err = fs_paths(req, path, NULL);
  return err != 0 ? fs_fail(req, err) : fs_submit(req);
}

int eddy_fs_close(eddy_loop_t *loop, eddy_fs_t *req, int fd, eddy_fs_cb cb) {
  return fs_fd_op(loop, req, EDDY_FS_CLOSE, fd, cb);
}

int eddy_fs_read(eddy_loop_t *loop, eddy_fs_t *req, int fd,
                 const eddy_buf_t bufs[], unsigned nbufs, int64_t offset,
                 eddy_fs_cb cb) {
  return fs_rw_op(loop, req, EDDY_FS_READ, fd, bufs, nbufs, offset, cb);
}

int eddy_fs_write(eddy_loop_t *loop, eddy_fs_t *req, int fd,
                  const eddy_buf_t bufs[], unsigned nbufs, int64_t offset,
                  eddy_fs_cb cb) {
  return fs_rw_op(loop, req, EDDY_FS_WRITE, fd, bufs, nbufs, offset, cb);
}

int eddy_fs_stat(eddy_loop_t *loop, eddy_fs_t *req, const char *path,
                 eddy_fs_cb cb) {
  return fs_path_op(loop, req, EDDY_FS_STAT, path, NULL, cb);
}

int eddy_fs_fstat(eddy_loop_t *loop, eddy_fs_t *req, int fd, eddy_fs_cb cb) {
  return fs_fd_op(loop, req, EDDY_FS_FSTAT, fd, cb);
}

int eddy_fs_lstat(eddy_loop_t *loop, eddy_fs_t *req, const char *path,
                  eddy_fs_cb cb) {
  return fs_path_op(loop, req, EDDY_FS_LSTAT, path, NULL, cb);
}

int eddy_fs_fsync(eddy_loop_t *loop, eddy_fs_t *req, int fd, eddy_fs_cb cb) {
  return fs_fd_op(loop, req, EDDY_FS_FSYNC, fd, cb);
}

int eddy_fs_fdatasync(eddy_loop_t *loop, eddy_fs_t *req, int fd,
                      eddy_fs_cb cb) {
  return fs_fd_op(loop, req, EDDY_FS_FDATASYNC, fd, cb);
}

int eddy_fs_ftruncate(eddy_loop_t *loop, eddy_fs_t *req, int fd, int64_t length,
                      eddy_fs_cb cb) {
  int err = fs_init(loop, req, EDDY_FS_FTRUNCATE, cb);
  if (err != 0)
    return err;
  if (length < 0)
    return fs_fail(req, EDDY_EINVAL);
  req->fd = fd;
  req->offset = length;
  return fs_submit(req);
}

int eddy_fs_rename(eddy_loop_t *loop, eddy_fs_t *req, const char *path,
                   const char *new_path, eddy_fs_cb cb) {
  if (new_path == NULL)
    return EDDY_EINVAL;
  return fs_path_op(loop, req, EDDY_FS_RENAME, path, new_path, cb);
}

int eddy_fs_unlink(eddy_loop_t *loop, eddy_fs_t *req, const char *path,
                   eddy_fs_cb cb) {
  return fs_path_op(loop, req, EDDY_FS_UNLINK, path, NULL, cb);
}

int eddy_fs_mkdir(eddy_loop_t *loop, eddy_fs_t *req, const char *path, int mode,
                  int flags, eddy_fs_cb cb) {
  int err = fs_init(loop, req, EDDY_FS_MKDIR, cb);
  if (err != 0)
    return err;
  if (flags & ~EDDY_FS_MKDIR_RECURSIVE)
    return fs_fail(req, EDDY_EINVAL);
  req->mode = mode;
  req->flags = flags;
  err = fs_paths(req, path, NULL);
  return err != 0 ? fs_fail(req, err) : fs_submit(req);
}

int eddy_fs_rmdir(eddy_loop_t *loop, eddy_fs_t *req, const char *path,
                  eddy_fs_cb cb) {
  return fs_path_op(loop, req, EDDY_FS_RMDIR, path, NULL, cb);
}

int eddy_fs_scandir(eddy_loop_t *loop, eddy_fs_t *req, const char *path,
                    int flags, eddy_fs_cb cb) {
  if (flags != 0)
    return EDDY_EINVAL;
  return fs_path_op(loop, req, EDDY_FS_SCANDIR, path, NULL, cb);
}

int eddy_fs_scandir_next(eddy_fs_t *req, eddy_dirent_t *ent) {
  if (req == NULL || ent == NULL || req->type != EDDY_FS_SCANDIR ||
      req->result < 0)
    return EDDY_EINVAL;
  if (req->ptr == NULL || req->pos >= (size_t)req->result)
    return EDDY_EOF;
  *ent = ((eddy_dirent_t *)req->ptr)[req->pos++];
  return 0;
}

int eddy_fs_realpath(eddy_loop_t *loop, eddy_fs_t *req, const char *path,
                     eddy_fs_cb cb) {
  return fs_path_op(loop, req, EDDY_FS_REALPATH, path, NULL, cb);
}

int eddy_fs_readlink(eddy_loop_t *loop, eddy_fs_t *req, const char *path,
                     eddy_fs_cb cb) {
  return fs_path_op(loop, req, EDDY_FS_READLINK, path, NULL, cb);
}

int eddy_fs_symlink(eddy_loop_t *loop, eddy_fs_t *req, const char *target,
                    const char *new_path, eddy_fs_cb cb) {
  if (new_path == NULL)
    return EDDY_EINVAL;
  return fs_path_op(loop, req, EDDY_FS_SYMLINK, target, new_path, cb);
}

int eddy_fs_access(eddy_loop_t *loop, eddy_fs_t *req, const char *path,
                   int mode, eddy_fs_cb cb) {
  int err = fs_init(loop, req, EDDY_FS_ACCESS, cb);
  if (err != 0)
    return err;
  req->mode = mode;
  err = fs_paths(req, path, NULL);
  return err != 0 ? fs_fail(req, err) : fs_submit(req);
}

int eddy_fs_chmod(eddy_loop_t *loop, eddy_fs_t *req, const char *path, int mode,
                  eddy_fs_cb cb) {
  int err = fs_init(loop, req, EDDY_FS_CHMOD, cb);
  if (err != 0)
    return err;
  req->mode = mode;
  err = fs_paths(req, path, NULL);
  return err != 0 ? fs_fail(req, err) : fs_submit(req);
}

int eddy_fs_utime(eddy_loop_t *loop, eddy_fs_t *req, const char *path,
                  double atime, double mtime, eddy_fs_cb cb) {
  int err = fs_init(loop, req, EDDY_FS_UTIME, cb);
  if (err != 0)
    return err;
  req->atime = atime;
  req->mtime = mtime;
  err = fs_paths(req, path, NULL);
  return err != 0 ? fs_fail(req, err) : fs_submit(req);
}

int eddy_fs_copyfile(eddy_loop_t *loop, eddy_fs_t *req, const char *path,
                     const char *new_path, int flags, eddy_fs_cb cb) {
  int err = fs_init(loop, req, EDDY_FS_COPYFILE, cb);
  if (err != 0)
    return err;
  if (new_path == NULL ||
      (flags & ~(EDDY_FS_COPYFILE_EXCL | EDDY_FS_COPYFILE_FICLONE_FORCE)))
    return fs_fail(req, EDDY_EINVAL);
  req->flags = flags;
  err = fs_paths(req, path, new_path);
  return err != 0 ? fs_fail(req, err) : fs_submit(req);
}

int eddy_fs_sendfile(eddy_loop_t *loop, eddy_fs_t *req, int out_fd, int in_fd,
                     int64_t in_offset, size_t len, eddy_fs_cb cb) {
  int err = fs_init(loop, req, EDDY_FS_SENDFILE, cb);
  if (err != 0)
    return err;
  if (in_offset < -1)
    return fs_fail(req, EDDY_EINVAL);
  req->out_fd = out_fd;
  req->fd = in_fd;
  req->offset = in_offset;
  req->len = len;
  return fs_submit(req);
}

int eddy_fs_read_file(eddy_loop_t *loop, eddy_fs_t *req, const char *path,
                      eddy_fs_cb cb) {
  return fs_path_op(loop, req, EDDY_FS_READ_FILE, path, NULL, cb);
}

int eddy_fs_write_file(eddy_loop_t *loop, eddy_fs_t *req, const char *path,
                       const void *data, size_t len, int flags, int mode,
                       eddy_fs_cb cb) {
  int err = fs_init(loop, req, EDDY_FS_WRITE_FILE, cb);
  if (err != 0)
    return err;
  if ((data == NULL && len > 0) || len > SSIZE_MAX ||
      (flags & (O_ACCMODE | O_DIRECTORY | O_PATH)))
    return fs_fail(req, EDDY_EINVAL);
  req->wdata = data;
  req->len = len;
  req->flags = flags;
  req->mode = mode;
  err = fs_paths(req, path, NULL);
  return err != 0 ? fs_fail(req, err) : fs_submit(req);
}

int eddy_fs_cancel(eddy_fs_t *req) {
  if (req == NULL)
    return EDDY_EINVAL;
  switch (req->via) {
  case EDDY_FS_VIA_POOL:
    return eddy_cancel(&req->work);
  case EDDY_FS_VIA_RING:
    return EDDY_EBUSY; /* the kernel has it: it will complete */
  default:
    return EDDY_EINVAL;
  }
}

void eddy_fs_req_cleanup(eddy_fs_t *req) {
  if (req == NULL)
    return;
  free((char *)req->path);
  req->path = NULL;
  req->new_path = NULL;
  if (req->ptr != NULL) {
    if (req->type == EDDY_FS_SCANDIR)
      eddy__fs_free_dirents(req);
    else
      free(req->ptr);
    req->ptr = NULL;
  }
  fs_free_bufs(req);
}

eddy_fs_via_t eddy_fs_via(const eddy_fs_t *req) {
  return req != NULL ? (eddy_fs_via_t)req->via : EDDY_FS_VIA_NONE;
}
