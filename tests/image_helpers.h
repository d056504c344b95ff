/* Shared by tests/image*.c: a scratch directory, the gm CLI as a child
 * process, jobs run to completion on a loop, and a crafted PNG. */
#ifndef EDDY_TEST_IMAGE_HELPERS_H
#define EDDY_TEST_IMAGE_HELPERS_H

#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

extern char **environ;

/* GraphicsMagick pulls in libhwy, whose constructor executes RDTSCP, an
 * instruction valgrind 3.19 cannot run: under valgrind the image tests
 * skip (ASan and UBSan cover them; io/image_gm.h has the story). */
static inline void img_skip_under_valgrind(void) {
  if (RUNNING_ON_VALGRIND)
    cr_skip_test("GraphicsMagick (libhwy) cannot run under valgrind 3.19");
}

static char img_dir[64];

static inline int img_rm_one(const char *path, const struct stat *st, int flag,
                             struct FTW *ftw) {
  return remove(path);
}

/* Removes the scratch directory, whatever the test left in it. */
static inline void img_dir_remove(void) {
  if (img_dir[0] != '\0')
    nftw(img_dir, img_rm_one, 16, FTW_DEPTH | FTW_PHYS);
  img_dir[0] = '\0';
}

static inline void img_dir_make(void) {
  snprintf(img_dir, sizeof img_dir, "/tmp/eddy-img-XXXXXX");
  cr_assert_not_null(mkdtemp(img_dir));
  atexit(img_dir_remove);
}

/* img_dir/name, in a rotating set of buffers. */
static inline const char *img_path(const char *name) {
  static char bufs[8][160];
  static int next;
  char *p = bufs[next++ % 8];
  snprintf(p, sizeof bufs[0], "%s/%s", img_dir, name);
  return p;
}

/* Runs argv with stdout (and stderr) into out; the exit status or -1. */
static inline int img_run(char *const argv[], char *out, size_t cap) {
  int fds[2];
  pid_t pid;
  posix_spawn_file_actions_t fa;
  cr_assert(eq(int, pipe(fds), 0));
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  int err = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  size_t len = 0;
  ssize_t n;
  while (err == 0 && len + 1 < cap &&
         (n = read(fds[0], out + len, cap - 1 - len)) > 0)
    len += (size_t)n;
  out[len] = '\0';
  close(fds[0]);
  if (err != 0)
    return -1;
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* gm with up to 8 arguments; asserts it succeeded. */
#define GM(...)                                                                \
  do {                                                                         \
    char *argv_[] = {"gm", __VA_ARGS__, NULL};                                 \
    char out_[512];                                                            \
    int rc_ = img_run(argv_, out_, sizeof out_);                               \
    cr_assert(eq(int, rc_, 0), "gm failed: %s", out_);                         \
  } while (0)

/* "FORMAT WIDTH HEIGHT" of a file, from gm identify. */
static inline void img_identify(const char *path, char *fmt, unsigned long *w,
                                unsigned long *h) {
  char out[512];
  char *argv[] = {"gm", "identify", "-format", "%m %w %h", (char *)path, NULL};
  int rc = img_run(argv, out, sizeof out);
  cr_assert(eq(int, rc, 0), "gm identify %s: %s", path, out);
  cr_assert(eq(int, sscanf(out, "%15s %lu %lu", fmt, w, h), 3), "%s", out);
}

static inline void img_write(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  cr_assert(eq(sz, fwrite(data, 1, len, f), len));
  fclose(f);
}

/* The whole file (malloc); *len its length. */
static inline unsigned char *img_read(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "%s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc((size_t)n + 1);
  cr_assert(eq(sz, fread(buf, 1, (size_t)n, f), (size_t)n));
  fclose(f);
  *len = (size_t)n;
  return buf;
}

/* ---- A PNG by hand: the decompression bomb ------------------------------ */

static inline uint32_t img_crc(const unsigned char *p, size_t n, uint32_t c) {
  c = ~c;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
  }
  return ~c;
}

static inline size_t img_put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
  return 4;
}

static inline size_t img_chunk(unsigned char *out, const char *type,
                               const unsigned char *data, uint32_t len) {
  size_t n = img_put32(out, len);
  memcpy(out + n, type, 4);
  if (len > 0)
    memcpy(out + n + 4, data, len);
  uint32_t crc = img_crc(out + n, 4 + len, 0);
  n += 4 + len;
  return n + img_put32(out + n, crc);
}

/* A valid PNG header declaring w x h 8-bit grey pixels, then a tiny IDAT
 * (a zlib stream holding one stored block of 64 zero bytes: the first row
 * filter and a few pixels) and IEND.  About 150 bytes. */
static inline size_t img_bomb_png(unsigned char *out, uint32_t w, uint32_t h) {
  static const unsigned char sig[8] = {0x89, 'P',  'N',  'G',
                                       '\r', '\n', 0x1a, '\n'};
  unsigned char ihdr[13] = {0}, idat[2 + 5 + 64 + 4] = {0};
  size_t n = 0;
  memcpy(out, sig, 8);
  n += 8;
  img_put32(ihdr, w);
  img_put32(ihdr + 4, h);
  ihdr[8] = 8; /* bit depth; colour type 0 (grey), deflate, no interlace */
  n += img_chunk(out + n, "IHDR", ihdr, 13);
  idat[0] = 0x78;
  idat[1] = 0x01;
  idat[2] = 0x01; /* the final block, stored */
  idat[3] = 64;
  idat[4] = 0;
  idat[5] = (unsigned char)~64;
  idat[6] = 0xff;
  /* adler32 of 64 zero bytes: a = 1, b = 64 */
  img_put32(idat + 7 + 64, (64u << 16) | 1u);
  n += img_chunk(out + n, "IDAT", idat, sizeof idat);
  n += img_chunk(out + n, "IEND", NULL, 0);
  return n;
}

/* ---- Jobs ---------------------------------------------------------------- */

static int img_done_count;
static int img_last_status;

static inline void img_count_done(eddy_image_t *job, int status) {
  img_done_count++;
  img_last_status = status;
}

/* Queues job on loop and runs the loop until it is done; the status. */
static inline int img_run_job(eddy_loop_t *loop, eddy_image_t *job) {
  int before = img_done_count;
  int rc = eddy_image_run(loop, job, img_count_done);
  cr_assert(eq(int, rc, 0), "eddy_image_run: %s", eddy_err_name(rc));
  eddy_run(loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, img_done_count, before + 1));
  return img_last_status;
}

#endif
