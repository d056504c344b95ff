/* eddy fs: asynchronous file-system requests, libuv's uv_fs_* in eddy's
 * style.  Included by eddy.h; not to be included alone.  docs/fs.md has the
 * whole contract.
 *
 * Every call takes a caller-owned eddy_fs_t and a callback:
 *  - With a callback, the call starts the operation and returns 0, or an
 *    error (EDDY_EINVAL, EDDY_ENOMEM, ...) and then the callback is never
 *    called.  The callback runs on the loop's thread with req->result set.
 *    A request in flight keeps the loop alive; eddy_loop_close() fails with
 *    EDDY_EBUSY until every request's callback has run.
 *  - With cb NULL the operation runs synchronously on the caller's thread
 *    and the call returns req->result (for start-up code, as in libuv).
 *    The loop is only used for its identity then; any thread may do this.
 *  - req->result: bytes read or written, a file descriptor, an entry count,
 *    0, or a negative EDDY_E* error (EDDY_ENOENT == -ENOENT).
 *  - eddy_fs_req_cleanup(req) frees what the request allocated (path
 *    copies, scandir entries, readlink/realpath strings, read_file's bytes).
 *    Call it once the request is done (in or after the callback, or after a
 *    synchronous call), before reusing or freeing the request.  It is safe
 *    on a request whose submission failed.
 *
 * Paths are copied: the caller's strings may go as soon as the call
 * returns.  Data buffers (read, write, write_file) are not: they must stay
 * valid until the callback runs.  The eddy_buf_t array itself is copied.
 *
 * Two paths carry the work (docs/fs.md):
 *  - the worker pool, fast class (pool/pool.c), for every operation;
 *  - the loop's io_uring ring, when the loop's backend is io_uring, for
 *    open, close, read, write (plain and vectored), stat, fstat, lstat
 *    (statx), fsync, fdatasync and read_file (open, read and close on the
 *    ring, the size from a no-sync statx of the open descriptor).  An
 *    operation the kernel rejects as unsupported (EINVAL, EOPNOTSUPP, or
 *    an opcode the ring's probe lacks) is redone on the pool
 *    transparently.  EDDY_FS=pool in the environment forces the pool path;
 *    it is read at each call, so a program may change it between calls.
 *  eddy_fs_via(req) says which path a finished request took. */
#ifndef EDDY_FS_H
#define EDDY_FS_H

#include <fcntl.h>
#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eddy_fs_s eddy_fs_t;
typedef void (*eddy_fs_cb)(eddy_fs_t *req);

typedef enum {
  EDDY_FS_UNKNOWN = 0,
  EDDY_FS_OPEN,
  EDDY_FS_CLOSE,
  EDDY_FS_READ,
  EDDY_FS_WRITE,
  EDDY_FS_STAT,
  EDDY_FS_FSTAT,
  EDDY_FS_LSTAT,
  EDDY_FS_FSYNC,
  EDDY_FS_FDATASYNC,
  EDDY_FS_FTRUNCATE,
  EDDY_FS_RENAME,
  EDDY_FS_UNLINK,
  EDDY_FS_MKDIR,
  EDDY_FS_RMDIR,
  EDDY_FS_SCANDIR,
  EDDY_FS_REALPATH,
  EDDY_FS_READLINK,
  EDDY_FS_SYMLINK,
  EDDY_FS_ACCESS,
  EDDY_FS_CHMOD,
  EDDY_FS_UTIME,
  EDDY_FS_COPYFILE,
  EDDY_FS_SENDFILE,
  EDDY_FS_READ_FILE,
  EDDY_FS_WRITE_FILE,
  EDDY_FS_TYPE_MAX
} eddy_fs_type;

/* Which path carried a request (eddy_fs_via). */
typedef enum {
  EDDY_FS_VIA_NONE = 0, /* not started, or the submission failed */
  EDDY_FS_VIA_SYNC,     /* cb NULL: ran on the caller's thread */
  EDDY_FS_VIA_POOL,     /* a pool thread (also after a ring fallback) */
  EDDY_FS_VIA_RING      /* the loop's io_uring ring */
} eddy_fs_via_t;

/* stat(2)'s answer, from statx(2) on both paths.  birthtime is zero where
 * the file system does not record it. */
typedef struct {
  uint64_t dev;
  uint64_t ino;
  uint64_t mode; /* type and permission bits, as st_mode */
  uint64_t nlink;
  uint64_t uid;
  uint64_t gid;
  uint64_t rdev;
  uint64_t size;
  uint64_t blksize;
  uint64_t blocks;
  struct timespec atime;
  struct timespec mtime;
  struct timespec ctime;
  struct timespec birthtime;
} eddy_stat_t;

typedef enum {
  EDDY_DIRENT_UNKNOWN = 0,
  EDDY_DIRENT_FILE,
  EDDY_DIRENT_DIR,
  EDDY_DIRENT_LINK,
  EDDY_DIRENT_FIFO,
  EDDY_DIRENT_SOCKET,
  EDDY_DIRENT_CHAR,
  EDDY_DIRENT_BLOCK
} eddy_dirent_type;

/* One scandir entry; name belongs to the request (valid until cleanup). */
typedef struct {
  const char *name;
  eddy_dirent_type type;
} eddy_dirent_t;

/* eddy_fs_mkdir flags */
#define EDDY_FS_MKDIR_RECURSIVE                                                \
  1 /* create missing parents; an existing                                     \
       directory at path is then not EEXIST */
/* eddy_fs_copyfile flags */
#define EDDY_FS_COPYFILE_EXCL 1          /* EDDY_EEXIST if new_path exists */
#define EDDY_FS_COPYFILE_FICLONE_FORCE 2 /* reflink or fail (EDDY_ENOTSUP) */

struct eddy_fs_s {
  void *data;
  eddy_loop_t *loop;
  eddy_fs_type type;
  ssize_t result;      /* see the top of this file */
  const char *path;    /* the request's copy of the (first) path, or NULL */
  eddy_stat_t statbuf; /* stat, fstat, lstat */
  /* scandir: the entries (use eddy_fs_scandir_next); readlink, realpath:
   * the NUL-terminated string; read_file: the bytes (result of them, plus
   * a NUL after them, not counted).  Owned by the request and freed by
   * eddy_fs_req_cleanup; to keep read_file's bytes, copy ptr, set req->ptr
   * to NULL, and free() them later. */
  void *ptr;
  /* Private. */
  eddy_fs_cb cb;
  eddy_work_t work;
  eddy__ring_op_t ring_op; /* the ring's completions (io/fs_uring.c) */
  char *new_path;
  int fd;
  int out_fd;
  int flags;
  int mode;
  int64_t offset;
  size_t len;
  double atime;
  double mtime;
  const void *wdata;
  eddy_buf_t *bufs;
  unsigned nbufs;
  unsigned pos;        /* scandir iterator */
  unsigned via;        /* eddy_fs_via_t */
  unsigned ring_stage; /* read_file on the ring: which step */
  unsigned ring_wait;  /* ring completions still to come */
  union {
    eddy_buf_t bufsml[4];
    uint64_t statx[32]; /* a struct statx for the ring's statx */
  } u;
};

/* open(2): result is the descriptor.  flags O_*, mode for O_CREAT.
 * O_CLOEXEC is always added. */
EDDY_EXTERN int eddy_fs_open(eddy_loop_t *loop, eddy_fs_t *req,
                             const char *path, int flags, int mode,
                             eddy_fs_cb cb);
EDDY_EXTERN int eddy_fs_close(eddy_loop_t *loop, eddy_fs_t *req, int fd,
                              eddy_fs_cb cb);
/* preadv / pwritev at offset, or readv / writev at the file position when
 * offset is -1.  result: bytes (0 at end of file for a read).  A write is
 * not repeated when short: result says what went.  nbufs >= 1; the array
 * is copied, the memory it points to is not. */
EDDY_EXTERN int eddy_fs_read(eddy_loop_t *loop, eddy_fs_t *req, int fd,
                             const eddy_buf_t bufs[], unsigned nbufs,
                             int64_t offset, eddy_fs_cb cb);
EDDY_EXTERN int eddy_fs_write(eddy_loop_t *loop, eddy_fs_t *req, int fd,
                              const eddy_buf_t bufs[], unsigned nbufs,
                              int64_t offset, eddy_fs_cb cb);
/* Fill req->statbuf. */
EDDY_EXTERN int eddy_fs_stat(eddy_loop_t *loop, eddy_fs_t *req,
                             const char *path, eddy_fs_cb cb);
EDDY_EXTERN int eddy_fs_fstat(eddy_loop_t *loop, eddy_fs_t *req, int fd,
                              eddy_fs_cb cb);
EDDY_EXTERN int eddy_fs_lstat(eddy_loop_t *loop, eddy_fs_t *req,
                              const char *path, eddy_fs_cb cb);
EDDY_EXTERN int eddy_fs_fsync(eddy_loop_t *loop, eddy_fs_t *req, int fd,
                              eddy_fs_cb cb);
EDDY_EXTERN int eddy_fs_fdatasync(eddy_loop_t *loop, eddy_fs_t *req, int fd,
                                  eddy_fs_cb cb);
EDDY_EXTERN int eddy_fs_ftruncate(eddy_loop_t *loop, eddy_fs_t *req, int fd,
                                  int64_t length, eddy_fs_cb cb);
EDDY_EXTERN int eddy_fs_rename(eddy_loop_t *loop, eddy_fs_t *req,
                               const char *path, const char *new_path,
                               eddy_fs_cb cb);
EDDY_EXTERN int eddy_fs_unlink(eddy_loop_t *loop, eddy_fs_t *req,
                               const char *path, eddy_fs_cb cb);
/* flags: 0 or EDDY_FS_MKDIR_RECURSIVE. */
EDDY_EXTERN int eddy_fs_mkdir(eddy_loop_t *loop, eddy_fs_t *req,
                              const char *path, int mode, int flags,
                              eddy_fs_cb cb);
EDDY_EXTERN int eddy_fs_rmdir(eddy_loop_t *loop, eddy_fs_t *req,
                              const char *path, eddy_fs_cb cb);
/* The directory's entries without "." and "..", sorted by name (strcmp).
 * result: the count.  flags must be 0. */
EDDY_EXTERN int eddy_fs_scandir(eddy_loop_t *loop, eddy_fs_t *req,
                                const char *path, int flags, eddy_fs_cb cb);
/* The next entry of a finished scandir request: 0 and *ent filled, or
 * EDDY_EOF after the last, or EDDY_EINVAL for another kind of request. */
EDDY_EXTERN int eddy_fs_scandir_next(eddy_fs_t *req, eddy_dirent_t *ent);
/* req->ptr: the canonical absolute path (realpath(3)). */
EDDY_EXTERN int eddy_fs_realpath(eddy_loop_t *loop, eddy_fs_t *req,
                                 const char *path, eddy_fs_cb cb);
/* req->ptr: the link's target; result its length. */
EDDY_EXTERN int eddy_fs_readlink(eddy_loop_t *loop, eddy_fs_t *req,
                                 const char *path, eddy_fs_cb cb);
/* Creates new_path as a symbolic link to target. */
EDDY_EXTERN int eddy_fs_symlink(eddy_loop_t *loop, eddy_fs_t *req,
                                const char *target, const char *new_path,
                                eddy_fs_cb cb);
/* access(2): mode F_OK or R_OK | W_OK | X_OK. */
EDDY_EXTERN int eddy_fs_access(eddy_loop_t *loop, eddy_fs_t *req,
                               const char *path, int mode, eddy_fs_cb cb);
EDDY_EXTERN int eddy_fs_chmod(eddy_loop_t *loop, eddy_fs_t *req,
                              const char *path, int mode, eddy_fs_cb cb);
/* Access and modification times in seconds since the epoch (fractions
 * kept to the nanosecond as a double allows), as libuv's uv_fs_utime. */
EDDY_EXTERN int eddy_fs_utime(eddy_loop_t *loop, eddy_fs_t *req,
                              const char *path, double atime, double mtime,
                              eddy_fs_cb cb);
/* Copies path to new_path (created with path's permission bits, truncated
 * if it exists unless EDDY_FS_COPYFILE_EXCL).  Tries a reflink (FICLONE),
 * then copy_file_range, then read/write.  result: 0. */
EDDY_EXTERN int eddy_fs_copyfile(eddy_loop_t *loop, eddy_fs_t *req,
                                 const char *path, const char *new_path,
                                 int flags, eddy_fs_cb cb);
/* sendfile(2): up to len bytes of in_fd from in_offset (-1: its file
 * position) to out_fd.  result: bytes sent, which is short only at the end
 * of in_fd or when out_fd is non-blocking and full (then possibly 0 bytes
 * gave EDDY_EAGAIN); the caller continues from there. */
EDDY_EXTERN int eddy_fs_sendfile(eddy_loop_t *loop, eddy_fs_t *req, int out_fd,
                                 int in_fd, int64_t in_offset, size_t len,
                                 eddy_fs_cb cb);
/* The whole file: req->ptr the bytes (malloc'd, NUL after the end), result
 * their count.  Files that report size 0 (/proc) are read to the end. */
EDDY_EXTERN int eddy_fs_read_file(eddy_loop_t *loop, eddy_fs_t *req,
                                  const char *path, eddy_fs_cb cb);
/* Writes len bytes of data as the file's whole content: opened with
 * O_WRONLY | O_CREAT | O_TRUNC | flags, and mode for a new file.  flags is
 * 0 or extra O_* flags: O_EXCL fails on an existing file, O_APPEND appends
 * instead of truncating.  data must stay valid until the callback.
 * result: len, or an error (bytes may have been written then). */
EDDY_EXTERN int eddy_fs_write_file(eddy_loop_t *loop, eddy_fs_t *req,
                                   const char *path, const void *data,
                                   size_t len, int flags, int mode,
                                   eddy_fs_cb cb);

/* Takes a request no pool thread has started off the queue; its callback
 * then gets result EDDY_ECANCELED.  EDDY_EBUSY if it already runs, ran, or
 * is in the kernel's hands on the ring; EDDY_EINVAL if it was synchronous
 * or never started. */
EDDY_EXTERN int eddy_fs_cancel(eddy_fs_t *req);
EDDY_EXTERN void eddy_fs_req_cleanup(eddy_fs_t *req);
EDDY_EXTERN eddy_fs_via_t eddy_fs_via(const eddy_fs_t *req);

#ifdef __cplusplus
}
#endif
#endif
