/* What the fs test files share: every test runs once per fs path.
 *
 *   epoll             -> the pool path
 *   io_uring          -> the ring path (the pool for what the ring lacks)
 *   io_uring+pool     -> io_uring backend with EDDY_FS=pool: the pool path
 *
 * Each callback checks that the request took the path its mode promises
 * (eddy_fs_via), so the ring path cannot silently be the pool path. */
#ifndef EDDY_TEST_FS_HELPERS_H
#define EDDY_TEST_FS_HELPERS_H

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

typedef struct {
  char backend[16];
  int force_pool; /* EDDY_FS=pool */
} fs_mode_t;

static inline struct criterion_test_params fs_mode_params(void) {
  static fs_mode_t modes[3];
  size_t n = 0;
  const char *only = getenv("EDDY_TEST_BACKENDS");
  if (eddy_backend_available("epoll") &&
      (only == NULL || strstr(only, "epoll") != NULL))
    modes[n++] = (fs_mode_t){"epoll", 0};
  if (eddy_backend_available("io_uring") &&
      (only == NULL || strstr(only, "io_uring") != NULL)) {
    modes[n++] = (fs_mode_t){"io_uring", 0};
    modes[n++] = (fs_mode_t){"io_uring", 1};
  }
  return cr_make_param_array(fs_mode_t, modes, n);
}

#define FS_TEST(suite, name, ...)                                              \
  ParameterizedTestParameters(suite, name) {                                   \
    return fs_mode_params();                                                   \
  }                                                                            \
  ParameterizedTest(fs_mode_t *mode, suite, name, .fini = fs_fini,             \
                    ##__VA_ARGS__)

/* One loop, one temporary directory per test. */
static eddy_loop_t fs_loop;
static char fs_dir[64];
static const fs_mode_t *fs_mode;
static pthread_t fs_loop_thread;
static int fs_calls;
/* Set for one call whose path differs from its type's (a ring fallback). */
static eddy_fs_via_t fs_want_via;

static inline int fs_ring_mode(void) {
  return strcmp(fs_mode->backend, "io_uring") == 0 && !fs_mode->force_pool;
}

static inline int fs_ring_type(eddy_fs_type t) {
  switch (t) {
  case EDDY_FS_OPEN:
  case EDDY_FS_CLOSE:
  case EDDY_FS_READ:
  case EDDY_FS_WRITE:
  case EDDY_FS_STAT:
  case EDDY_FS_FSTAT:
  case EDDY_FS_LSTAT:
  case EDDY_FS_FSYNC:
  case EDDY_FS_FDATASYNC:
  case EDDY_FS_READ_FILE:
    return 1;
  default:
    return 0;
  }
}

/* The path a request must have taken in this mode. */
static inline eddy_fs_via_t fs_expected_via(const eddy_fs_t *req) {
  if (fs_want_via != EDDY_FS_VIA_NONE)
    return fs_want_via;
  return fs_ring_mode() && fs_ring_type(req->type) ? EDDY_FS_VIA_RING
                                                   : EDDY_FS_VIA_POOL;
}

static inline void fs_on_done(eddy_fs_t *req) {
  fs_calls++;
  cr_assert(pthread_equal(pthread_self(), fs_loop_thread),
            "callback off the loop thread");
  cr_assert(eq(int, (int)eddy_fs_via(req), (int)fs_expected_via(req)),
            "type %d took path %d in mode %s%s", (int)req->type,
            (int)eddy_fs_via(req), fs_mode->backend,
            fs_mode->force_pool ? "+pool" : "");
}

/* Started with fs_on_done by `call` (which must return 0), run the loop
 * until its callback ran once; the request's result. */
static inline ssize_t fs_await(int rc, eddy_fs_t *req, const char *what) {
  cr_assert(eq(int, rc, 0), "%s: submission failed: %s", what,
            eddy_err_name(rc));
  int before = fs_calls;
  eddy_run(&fs_loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, fs_calls, before + 1), "%s: callback calls", what);
  return req->result;
}

#define AWAIT(req, call) fs_await((call), (req), #call)

/* The result is the error expected (or the value). */
#define EXPECT(req, call, want)                                                \
  do {                                                                         \
    ssize_t got_ = AWAIT(req, call);                                           \
    cr_assert(eq(i64, (int64_t)got_, (int64_t)(want)), "%s: got %s, want %s",  \
              #call, got_ < 0 ? eddy_err_name((int)got_) : "a count",          \
              (want) < 0 ? eddy_err_name((int)(want)) : "a count");            \
    eddy_fs_req_cleanup(req);                                                  \
  } while (0)

/* A path in the test's directory; 8 rotating buffers. */
static inline const char *P(const char *fmt, ...) {
  static char bufs[8][256];
  static unsigned next;
  char *b = bufs[next++ % 8];
  int n = snprintf(b, sizeof bufs[0], "%s/", fs_dir);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(b + n, sizeof bufs[0] - (size_t)n, fmt, ap);
  va_end(ap);
  return b;
}

/* Writes a file synchronously with plain syscalls (test setup). */
static inline void fs_put(const char *path, const char *content) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  cr_assert(fd >= 0, "open %s", path);
  size_t len = strlen(content);
  cr_assert(eq(i64, (int64_t)write(fd, content, len), (int64_t)len));
  close(fd);
}

static inline void fs_setup(const fs_mode_t *mode) {
  fs_mode = mode;
  if (mode->force_pool)
    setenv("EDDY_FS", "pool", 1);
  else
    unsetenv("EDDY_FS");
  eddy_test_loop_init(&fs_loop, mode->backend);
  fs_loop_thread = pthread_self();
  snprintf(fs_dir, sizeof fs_dir, "/tmp/eddy-fs-XXXXXX");
  cr_assert(mkdtemp(fs_dir) != NULL);
}

static inline int fs_rm_one(const char *path, const struct stat *st, int flag,
                            struct FTW *ftw) {
  (void)st;
  (void)ftw;
  return flag == FTW_DP ? rmdir(path) : unlink(path);
}

/* Directories a test locked (tests/fs_perm.c) open again first: the owner
 * may chmod without any capability, and nftw calls this on a directory
 * before reading it. */
static inline int fs_unlock_one(const char *path, const struct stat *st,
                                int flag, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  if (flag == FTW_D || flag == FTW_DNR)
    chmod(path, 0700);
  return 0;
}

static inline void fs_remove_dir(void) {
  if (fs_dir[0] == '\0')
    return;
  nftw(fs_dir, fs_unlock_one, 16, FTW_PHYS);
  nftw(fs_dir, fs_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Criterion's .fini: runs after a failed assertion too, so a failing test
 * leaves no directory behind. */
static inline void fs_fini(void) {
  fs_remove_dir();
}

static inline void fs_teardown(void) {
  eddy_test_loop_close(&fs_loop);
  fs_remove_dir();
  struct stat st;
  cr_assert(stat(fs_dir, &st) != 0, "temporary directory left behind");
  fs_dir[0] = '\0';
}

#endif
