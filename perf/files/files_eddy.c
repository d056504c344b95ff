/* The files benchmark, eddy's side.
 *
 *   files-eddy big FILE        read FILE in 64 KB chunks, one read in flight
 *   files-eddy small DIR N     read DIR/f00000 .. f<N-1> whole, 64 in flight
 *
 * The path is chosen as a user would: EDDY_BACKEND=epoll (the pool) or
 * io_uring (the ring), EDDY_FS=pool to force the pool on io_uring.  Prints
 * one line: "<MB/s or files/s> <seconds> <bytes> <checksum> <via>
 * <CPU seconds of the process>". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "eddy.h"

#define CHUNK (64 * 1024)
#define INFLIGHT 64

static eddy_loop_t loop;
static char buf[CHUNK];
static int fd;
static uint64_t total, sum;
static int failed;
static eddy_fs_via_t via;

static void on_read(eddy_fs_t *req) {
  via = eddy_fs_via(req);
  if (req->result <= 0) {
    failed = req->result < 0;
    eddy_fs_req_cleanup(req);
    return;
  }
  total += (uint64_t)req->result;
  sum += (unsigned char)buf[0] + (unsigned char)buf[req->result - 1];
  eddy_fs_req_cleanup(req);
  eddy_buf_t b = eddy_buf_init(buf, CHUNK);
  if (eddy_fs_read(&loop, req, fd, &b, 1, (int64_t)total, on_read) != 0)
    failed = 1;
}

/* The process's CPU time, all threads (the pool's too), in seconds. */
static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void big(const char *path) {
  eddy_fs_t req;
  fd = eddy_fs_open(&loop, &req, path, O_RDONLY, 0, NULL);
  eddy_fs_req_cleanup(&req);
  if (fd < 0) {
    fprintf(stderr, "open %s: %s\n", path, eddy_strerror(fd));
    exit(1);
  }
  eddy_buf_t b = eddy_buf_init(buf, CHUNK);
  eddy_fs_read(&loop, &req, fd, &b, 1, 0, on_read);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  eddy_fs_close(&loop, &req, fd, NULL);
}

static const char *dir;
static unsigned nfiles, next_file, done_files;
static eddy_fs_t reqs[INFLIGHT];

static void start_small(eddy_fs_t *req);

static void on_file(eddy_fs_t *req) {
  via = eddy_fs_via(req);
  if (req->result < 0) {
    fprintf(stderr, "read_file %s: %s\n", req->path,
            eddy_strerror((int)req->result));
    failed = 1;
  } else {
    const unsigned char *p = req->ptr;
    total += (uint64_t)req->result;
    if (req->result > 0)
      sum += p[0] + p[req->result - 1];
  }
  done_files++;
  eddy_fs_req_cleanup(req);
  start_small(req);
}

static void start_small(eddy_fs_t *req) {
  if (next_file >= nfiles)
    return;
  char path[512];
  snprintf(path, sizeof path, "%s/f%05u", dir, next_file++);
  if (eddy_fs_read_file(&loop, req, path, on_file) != 0)
    failed = 1;
}

static void small(void) {
  for (unsigned i = 0; i < INFLIGHT; i++)
    start_small(&reqs[i]);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  if (done_files != nfiles)
    failed = 1;
}

int main(int argc, char **argv) {
  if (argc < 3 || (strcmp(argv[1], "small") == 0 && argc < 4)) {
    fprintf(stderr, "usage: %s big FILE | small DIR N\n", argv[0]);
    return 2;
  }
  if (eddy_loop_init(&loop) != 0)
    return 1;
  double c0 = cpu_seconds();
  uint64_t t0 = eddy_hrtime();
  int is_big = strcmp(argv[1], "big") == 0;
  if (is_big) {
    big(argv[2]);
  } else {
    dir = argv[2];
    nfiles = (unsigned)strtoul(argv[3], NULL, 10);
    small();
  }
  double s = (double)(eddy_hrtime() - t0) / 1e9;
  double cpu = cpu_seconds() - c0;
  eddy_loop_close(&loop);
  if (failed)
    return 1;
  static const char *vias[] = {"none", "sync", "pool", "ring"};
  printf("%.1f %.4f %llu %llu %s %.4f\n",
         is_big ? (double)total / 1048576.0 / s : (double)nfiles / s, s,
         (unsigned long long)total, (unsigned long long)sum, vias[via], cpu);
  return 0;
}
