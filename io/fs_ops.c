/* The file-system operations themselves, as plain blocking system calls:
 * what a pool thread runs, and what a synchronous request (cb NULL) runs on
 * the caller's thread.  Everything here touches only the request, never
 * the loop, so it may run on any thread.  errno is read right after the
 * call that set it (it is per thread) and becomes -errno, which is eddy's
 * error code (include/eddy/errno.h). */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include "io/fs_internal.h"

#define FS_COPY_CHUNK (256 * 1024)

static ssize_t err_or(ssize_t rc) {
  return rc < 0 ? -errno : rc;
}

static struct timespec ts_from(struct statx_timestamp t) {
  struct timespec ts = {.tv_sec = t.tv_sec, .tv_nsec = t.tv_nsec};
  return ts;
}

void eddy__fs_from_statx(eddy_stat_t *st, const struct statx *sx) {
  st->dev = makedev(sx->stx_dev_major, sx->stx_dev_minor);
  st->ino = sx->stx_ino;
  st->mode = sx->stx_mode;
  st->nlink = sx->stx_nlink;
  st->uid = sx->stx_uid;
  st->gid = sx->stx_gid;
  st->rdev = makedev(sx->stx_rdev_major, sx->stx_rdev_minor);
  st->size = sx->stx_size;
  st->blksize = sx->stx_blksize;
  st->blocks = sx->stx_blocks;
  st->atime = ts_from(sx->stx_atime);
  st->mtime = ts_from(sx->stx_mtime);
  st->ctime = ts_from(sx->stx_ctime);
  if (sx->stx_mask & STATX_BTIME) {
    st->birthtime = ts_from(sx->stx_btime);
  } else {
    st->birthtime.tv_sec = 0;
    st->birthtime.tv_nsec = 0;
  }
}

static ssize_t fs_statx(eddy_fs_t *req, int dirfd, const char *path,
                        int flags) {
  struct statx sx;
  if (statx(dirfd, path, flags, STATX_BASIC_STATS | STATX_BTIME, &sx) != 0)
    return -errno;
  eddy__fs_from_statx(&req->statbuf, &sx);
  return 0;
}

static ssize_t fs_rw(eddy_fs_t *req, int write) {
  const struct iovec *iov = (const struct iovec *)req->bufs;
  int n = (int)req->nbufs;
  ssize_t rc;
  do {
    if (req->offset < 0)
      rc = write ? writev(req->fd, iov, n) : readv(req->fd, iov, n);
    else if (write)
      rc = pwritev(req->fd, iov, n, req->offset);
    else
      rc = preadv(req->fd, iov, n, req->offset);
  } while (rc < 0 && errno == EINTR);
  return err_or(rc);
}

/* mkdir -p: each missing component in turn.  An existing directory at the
 * end is success (Node's recursive mkdir); a file in the way is EEXIST at
 * the end and ENOTDIR before it. */
static ssize_t fs_mkdir_p(const char *path, int mode) {
  size_t len = strlen(path);
  char *p = malloc(len + 1);
  if (p == NULL)
    return EDDY_ENOMEM;
  memcpy(p, path, len + 1);
  ssize_t rc = 0;
  for (size_t i = 1; i <= len && rc == 0; i++) {
    if (p[i] != '/' && p[i] != '\0')
      continue;
    if (p[i - 1] == '/')
      continue; /* "a//b": nothing new */
    char saved = p[i];
    p[i] = '\0';
    if (mkdir(p, (mode_t)mode) != 0) {
      rc = -errno;
      struct stat st;
      if (rc == EDDY_EEXIST && stat(p, &st) == 0)
        rc = S_ISDIR(st.st_mode) ? 0 : i < len ? EDDY_ENOTDIR : EDDY_EEXIST;
    }
    p[i] = saved;
  }
  free(p);
  return rc;
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const eddy_dirent_t *)a)->name,
                ((const eddy_dirent_t *)b)->name);
}

static eddy_dirent_type dirent_type(unsigned char t) {
  switch (t) {
  case DT_REG:
    return EDDY_DIRENT_FILE;
  case DT_DIR:
    return EDDY_DIRENT_DIR;
  case DT_LNK:
    return EDDY_DIRENT_LINK;
  case DT_FIFO:
    return EDDY_DIRENT_FIFO;
  case DT_SOCK:
    return EDDY_DIRENT_SOCKET;
  case DT_CHR:
    return EDDY_DIRENT_CHAR;
  case DT_BLK:
    return EDDY_DIRENT_BLOCK;
  default:
    return EDDY_DIRENT_UNKNOWN;
  }
}

static void free_dirents(eddy_dirent_t *ents, size_t n) {
  for (size_t i = 0; i < n; i++)
    free((char *)ents[i].name);
  free(ents);
}

/* req->ptr: an array of result entries, each name its own allocation;
 * eddy_fs_req_cleanup frees them (it reads the count from result). */
static ssize_t fs_scandir(eddy_fs_t *req) {
  DIR *d = opendir(req->path);
  if (d == NULL)
    return -errno;
  eddy_dirent_t *ents = NULL;
  size_t n = 0, cap = 0;
  ssize_t rc = 0;
  struct dirent *de;
  for (errno = 0; (de = readdir(d)) != NULL; errno = 0) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      eddy_dirent_t *grown = realloc(ents, cap * sizeof *ents);
      if (grown == NULL) {
        rc = EDDY_ENOMEM;
        break;
      }
      ents = grown;
    }
    ents[n].name = strdup(de->d_name);
    if (ents[n].name == NULL) {
      rc = EDDY_ENOMEM;
      break;
    }
    ents[n++].type = dirent_type(de->d_type);
  }
  if (rc == 0 && errno != 0)
    rc = -errno;
  closedir(d);
  if (rc != 0) {
    free_dirents(ents, n);
    return rc;
  }
  if (n > 1)
    qsort(ents, n, sizeof *ents, by_name);
  req->ptr = ents;
  return (ssize_t)n;
}

void eddy__fs_free_dirents(eddy_fs_t *req) {
  free_dirents(req->ptr, req->result > 0 ? (size_t)req->result : 0);
}

static ssize_t fs_realpath(eddy_fs_t *req) {
  char *p = realpath(req->path, NULL);
  if (p == NULL)
    return -errno;
  req->ptr = p;
  return 0;
}

static ssize_t fs_readlink(eddy_fs_t *req) {
  size_t cap = 256;
  for (;;) {
    char *buf = malloc(cap);
    if (buf == NULL)
      return EDDY_ENOMEM;
    ssize_t n = readlink(req->path, buf, cap);
    if (n < 0) {
      n = -errno;
      free(buf);
      return n;
    }
    if ((size_t)n < cap) {
      buf[n] = '\0';
      req->ptr = buf;
      return n;
    }
    free(buf); /* maybe truncated: again, bigger */
    if (cap > PATH_MAX * 16)
      return EDDY_ENAMETOOLONG;
    cap *= 4;
  }
}

static struct timespec ts_of(double t) {
  struct timespec ts;
  ts.tv_sec = (time_t)t;
  ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
  if (ts.tv_nsec < 0) {
    ts.tv_sec--;
    ts.tv_nsec += 1000000000L;
  }
  return ts;
}

static ssize_t fs_utime(eddy_fs_t *req) {
  struct timespec ts[2] = {ts_of(req->atime), ts_of(req->mtime)};
  return err_or(utimensat(AT_FDCWD, req->path, ts, 0));
}

/* Writes all of buf unless an error comes. */
static ssize_t write_all(int fd, const char *buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, buf + done, len - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    done += (size_t)n;
  }
  return (ssize_t)done;
}

/* The bytes of src after the kernel-side copies failed or were refused. */
static ssize_t copy_rw(int src, int dst) {
  char *buf = malloc(FS_COPY_CHUNK);
  if (buf == NULL)
    return EDDY_ENOMEM;
  ssize_t rc;
  for (;;) {
    rc = read(src, buf, FS_COPY_CHUNK);
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc <= 0) {
      rc = rc < 0 ? -errno : 0;
      break;
    }
    rc = write_all(dst, buf, (size_t)rc);
    if (rc < 0)
      break;
  }
  free(buf);
  return rc;
}

/* copy_file_range until the end; 1 when the kernel refuses it for these
 * files (the caller then copies by hand). */
static ssize_t copy_range(int src, int dst) {
  int first = 1;
  for (;;) {
    ssize_t n = copy_file_range(src, NULL, dst, NULL, 1u << 30, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && first &&
        (errno == ENOSYS || errno == EXDEV || errno == EINVAL ||
         errno == EOPNOTSUPP || errno == EBADF))
      return 1;
    if (n <= 0)
      return n < 0 ? -errno : 0;
    first = 0;
  }
}

static ssize_t copy_fds(eddy_fs_t *req, int src, int dst) {
  if (ioctl(dst, FICLONE, src) == 0)
    return 0;
  if (req->flags & EDDY_FS_COPYFILE_FICLONE_FORCE)
    return errno == EOPNOTSUPP || errno == EXDEV || errno == EINVAL ||
                   errno == ENOTTY
               ? EDDY_ENOTSUP
               : -errno;
  ssize_t rc = copy_range(src, dst);
  return rc == 1 ? copy_rw(src, dst) : rc;
}

/* As libuv: the copy gets the source's permission bits, copying a file
 * onto itself is a no-op (O_TRUNC would have emptied it), and a failed
 * copy leaves no half-written destination behind. */
static ssize_t fs_copyfile(eddy_fs_t *req) {
  int src = open(req->path, O_RDONLY | O_CLOEXEC);
  if (src < 0)
    return -errno;
  struct stat sst, dst_st;
  ssize_t rc = 0;
  if (fstat(src, &sst) != 0) {
    rc = -errno;
    goto out_src;
  }
  if (!(req->flags & EDDY_FS_COPYFILE_EXCL) &&
      stat(req->new_path, &dst_st) == 0 && dst_st.st_dev == sst.st_dev &&
      dst_st.st_ino == sst.st_ino)
    goto out_src;
  int oflags = O_WRONLY | O_CREAT | O_CLOEXEC;
  oflags |= (req->flags & EDDY_FS_COPYFILE_EXCL) ? O_EXCL : O_TRUNC;
  int dst = open(req->new_path, oflags, sst.st_mode & 07777);
  if (dst < 0) {
    rc = -errno;
    goto out_src;
  }
  rc = copy_fds(req, src, dst);
  if (rc == 0 && fchmod(dst, sst.st_mode & 07777) != 0)
    rc = -errno;
  if (close(dst) != 0 && rc == 0)
    rc = -errno;
  if (rc != 0)
    unlink(req->new_path);
out_src:
  close(src);
  return rc;
}

static ssize_t fs_sendfile(eddy_fs_t *req) {
  off_t off = (off_t)req->offset;
  off_t *offp = req->offset < 0 ? NULL : &off;
  size_t done = 0;
  while (done < req->len) {
    ssize_t n = sendfile(req->out_fd, req->fd, offp, req->len - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return done > 0 && errno == EAGAIN ? (ssize_t)done : -errno;
    if (n == 0)
      break; /* end of in_fd */
    done += (size_t)n;
  }
  return (ssize_t)done;
}

/* read_file's buffer is req->ptr, with room for req->len bytes.  A pool
 * request arrives with one the loop allocated (io/fs.c); growing it with
 * realloc keeps the memory in the loop thread's malloc arena, so it is
 * freed where it came from (see eddy__fs_pool_submit). */
static int rf_reserve(eddy_fs_t *req, size_t need) {
  if (req->ptr != NULL && req->len >= need)
    return 0;
  char *p = realloc(req->ptr, need);
  if (p == NULL)
    return EDDY_ENOMEM;
  req->ptr = p;
  req->len = need;
  return 0;
}

/* Reads fd to its end, for files whose size stat cannot tell (/proc,
 * pipes).  On an error the buffer stays in req->ptr for the caller to
 * free. */
static ssize_t read_to_end(eddy_fs_t *req, int fd) {
  size_t len = 0;
  for (;;) {
    size_t cap = req->ptr != NULL ? req->len : 0;
    if (cap - len < 2 && rf_reserve(req, cap < 4096 ? 4096 : cap * 2) != 0)
      return EDDY_ENOMEM;
    cap = req->len;
    ssize_t n = read(fd, (char *)req->ptr + len, cap - len - 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    if (n == 0)
      break;
    len += (size_t)n;
  }
  ((char *)req->ptr)[len] = '\0';
  return (ssize_t)len;
}

/* Reads size bytes (what fstat said) or up to an earlier end, as Node's
 * readFile does for regular files. */
static ssize_t read_sized(eddy_fs_t *req, int fd, size_t size) {
  if (rf_reserve(req, size + 1) != 0)
    return EDDY_ENOMEM;
  char *buf = req->ptr;
  size_t len = 0;
  while (len < size) {
    ssize_t n = pread(fd, buf + len, size - len, (off_t)len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -errno;
    if (n == 0)
      break;
    len += (size_t)n;
  }
  buf[len] = '\0';
  return (ssize_t)len;
}

/* On success req->ptr holds the bytes; on failure it may hold a buffer
 * the caller frees (eddy__fs_drop_failed). */
static ssize_t fs_read_file(eddy_fs_t *req) {
  /* A descriptor the ring opened already (io/fs_uring.c hands over files
   * it cannot read in one go) is read, not opened again: a FIFO's writer
   * would lose its reader in between. */
  int fd = req->fd;
  req->fd = -1;
  if (fd < 0)
    fd = open(req->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  struct stat st;
  ssize_t rc;
  if (fstat(fd, &st) != 0)
    rc = -errno;
  else if (S_ISDIR(st.st_mode))
    rc = EDDY_EISDIR;
  else if (S_ISREG(st.st_mode) && st.st_size > 0)
    rc = read_sized(req, fd, (size_t)st.st_size);
  else
    rc = read_to_end(req, fd);
  close(fd);
  return rc;
}

static ssize_t fs_write_file(eddy_fs_t *req) {
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | req->flags;
  if (!(req->flags & O_APPEND))
    flags |= O_TRUNC;
  int fd = open(req->path, flags, req->mode);
  if (fd < 0)
    return -errno;
  ssize_t rc = write_all(fd, req->wdata, req->len);
  if (close(fd) != 0 && rc >= 0)
    rc = -errno;
  return rc;
}

static ssize_t fs_close(int fd) {
  /* Linux frees the descriptor even when close fails (EINTR included):
   * never retry, which could close someone else's new descriptor. */
  return close(fd) != 0 && errno != EINTR ? -errno : 0;
}

ssize_t eddy__fs_exec(eddy_fs_t *req) {
  switch (req->type) {
  case EDDY_FS_OPEN:
    return err_or(open(req->path, req->flags | O_CLOEXEC, req->mode));
  case EDDY_FS_CLOSE:
    return fs_close(req->fd);
  case EDDY_FS_READ:
    return fs_rw(req, 0);
  case EDDY_FS_WRITE:
    return fs_rw(req, 1);
  case EDDY_FS_STAT:
    return fs_statx(req, AT_FDCWD, req->path, 0);
  case EDDY_FS_LSTAT:
    return fs_statx(req, AT_FDCWD, req->path, AT_SYMLINK_NOFOLLOW);
  case EDDY_FS_FSTAT:
    return fs_statx(req, req->fd, "", AT_EMPTY_PATH);
  case EDDY_FS_FSYNC:
    return err_or(fsync(req->fd));
  case EDDY_FS_FDATASYNC:
    return err_or(fdatasync(req->fd));
  case EDDY_FS_FTRUNCATE:
    return err_or(ftruncate(req->fd, (off_t)req->offset));
  case EDDY_FS_RENAME:
    return err_or(rename(req->path, req->new_path));
  case EDDY_FS_UNLINK:
    return err_or(unlink(req->path));
  case EDDY_FS_MKDIR:
    if (req->flags & EDDY_FS_MKDIR_RECURSIVE)
      return fs_mkdir_p(req->path, req->mode);
    return err_or(mkdir(req->path, (mode_t)req->mode));
  case EDDY_FS_RMDIR:
    return err_or(rmdir(req->path));
  case EDDY_FS_SCANDIR:
    return fs_scandir(req);
  case EDDY_FS_REALPATH:
    return fs_realpath(req);
  case EDDY_FS_READLINK:
    return fs_readlink(req);
  case EDDY_FS_SYMLINK:
    return err_or(symlink(req->path, req->new_path));
  case EDDY_FS_ACCESS:
    return err_or(access(req->path, req->mode));
  case EDDY_FS_CHMOD:
    return err_or(chmod(req->path, (mode_t)req->mode));
  case EDDY_FS_UTIME:
    return fs_utime(req);
  case EDDY_FS_COPYFILE:
    return fs_copyfile(req);
  case EDDY_FS_SENDFILE:
    return fs_sendfile(req);
  case EDDY_FS_READ_FILE:
    return fs_read_file(req);
  case EDDY_FS_WRITE_FILE:
    return fs_write_file(req);
  default:
    return EDDY_EINVAL;
  }
}
