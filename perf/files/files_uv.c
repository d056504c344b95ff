/* The files benchmark, libuv's side: the same two workloads with uv_fs_*.
 *
 *   files-uv big FILE        64 KB uv_fs_read calls, one in flight
 *   files-uv small DIR N     each file: uv_fs_open, uv_fs_read into a 64 KB
 *                            buffer until a short read, uv_fs_close; 64
 *                            files in flight
 *
 * libuv has no read-whole-file call; open / read / close with a short read
 * taken as the end is the fewest round trips a libuv user can make (Node's
 * readFile adds an fstat).  Prints the same line as files-eddy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#define CHUNK (64 * 1024)
#define INFLIGHT 64

static uv_loop_t *loop;
static char buf[CHUNK];
static uv_file fd;
static uint64_t total, sum;
static int failed;

static void on_read(uv_fs_t *req) {
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  if (n <= 0) {
    failed = n < 0;
    return;
  }
  total += (uint64_t)n;
  sum += (unsigned char)buf[0] + (unsigned char)buf[n - 1];
  uv_buf_t b = uv_buf_init(buf, CHUNK);
  uv_fs_read(loop, req, fd, &b, 1, (int64_t)total, on_read);
}

static void big(const char *path) {
  uv_fs_t req;
  fd = uv_fs_open(loop, &req, path, O_RDONLY, 0, NULL);
  uv_fs_req_cleanup(&req);
  if (fd < 0) {
    fprintf(stderr, "open %s: %s\n", path, uv_strerror(fd));
    exit(1);
  }
  uv_buf_t b = uv_buf_init(buf, CHUNK);
  uv_fs_read(loop, &req, fd, &b, 1, 0, on_read);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_fs_close(loop, &req, fd, NULL);
  uv_fs_req_cleanup(&req);
}

typedef struct {
  uv_fs_t req;
  uv_file fd;
  size_t len;
  size_t asked;
  char buf[CHUNK];
} slot_t;

static const char *dir;
static unsigned nfiles, next_file, done_files;
static slot_t slots[INFLIGHT];

static void start_file(slot_t *s);
static void on_file_read(uv_fs_t *req);

static void on_close(uv_fs_t *req) {
  slot_t *s = req->data;
  uv_fs_req_cleanup(req);
  total += s->len;
  if (s->len > 0)
    sum += (unsigned char)s->buf[0] + (unsigned char)s->buf[s->len - 1];
  done_files++;
  start_file(s);
}

static void read_more(slot_t *s) {
  s->asked = CHUNK - s->len;
  uv_buf_t b = uv_buf_init(s->buf + s->len, (unsigned)s->asked);
  uv_fs_read(loop, &s->req, s->fd, &b, 1, (int64_t)s->len, on_file_read);
}

/* A full answer may have more behind it; a short one is the end. */
static void on_file_read(uv_fs_t *req) {
  slot_t *s = req->data;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  if (n < 0)
    failed = 1;
  if (n > 0)
    s->len += (size_t)n;
  if (n > 0 && (size_t)n == s->asked && s->len < CHUNK) {
    read_more(s);
    return;
  }
  uv_fs_close(loop, req, s->fd, on_close);
}

static void on_open(uv_fs_t *req) {
  slot_t *s = req->data;
  s->fd = (uv_file)req->result;
  uv_fs_req_cleanup(req);
  if (s->fd < 0) {
    failed = 1;
    done_files++;
    start_file(s);
    return;
  }
  s->len = 0;
  read_more(s);
}

static void start_file(slot_t *s) {
  if (next_file >= nfiles)
    return;
  char path[512];
  snprintf(path, sizeof path, "%s/f%05u", dir, next_file++);
  s->req.data = s;
  uv_fs_open(loop, &s->req, path, O_RDONLY, 0, on_open);
}

/* The process's CPU time, all threads (the pool's too), in seconds. */
static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 3 || (strcmp(argv[1], "small") == 0 && argc < 4)) {
    fprintf(stderr, "usage: %s big FILE | small DIR N\n", argv[0]);
    return 2;
  }
  loop = uv_default_loop();
  double c0 = cpu_seconds();
  uint64_t t0 = uv_hrtime();
  int is_big = strcmp(argv[1], "big") == 0;
  if (is_big) {
    big(argv[2]);
  } else {
    dir = argv[2];
    nfiles = (unsigned)strtoul(argv[3], NULL, 10);
    for (unsigned i = 0; i < INFLIGHT; i++)
      start_file(&slots[i]);
    uv_run(loop, UV_RUN_DEFAULT);
    if (done_files != nfiles)
      failed = 1;
  }
  double s = (double)(uv_hrtime() - t0) / 1e9;
  double cpu = cpu_seconds() - c0;
  if (failed)
    return 1;
  printf("%.1f %.4f %llu %llu pool %.4f\n",
         is_big ? (double)total / 1048576.0 / s : (double)nfiles / s, s,
         (unsigned long long)total, (unsigned long long)sum, cpu);
  return 0;
}
