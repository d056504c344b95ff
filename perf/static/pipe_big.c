/* The 1 GB pipe: a sparse file of SIZE_MB (default 1024) piped with
 * eddy_stream_pipe from a file stream into a TCP connection whose reader
 * (a thread with a 64 KB receive buffer, pausing 1 ms every 256 reads)
 * takes it slower than the server could send.  Prints the bytes, the time,
 * the peak of eddy_memory_usage().slab_used (sampled every millisecond)
 * and the growth of the resident set, and exits 1 if the bytes differ or
 * the peak passes the bound tests/pipe.c asserts for 32 MB.
 *
 *   pipe-big [SIZE_MB] [--backend epoll|io_uring] */
#include <eddy.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static eddy_loop_t loop;
static eddy_tcp_t server, conn;
static eddy_file_rstream_t rs;
static eddy_pipe_t pipe_;
static eddy_timer_t sampler;
static int port, status = -1;
static size_t peak_slab, rss0, peak_rss;
static uint64_t got;
static char path[64];

static void *reader(void *arg) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int rcv = 65536;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  struct sockaddr_in a;
  eddy_ip4_addr("127.0.0.1", port, &a);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
    return NULL;
  static char buf[65536];
  for (unsigned i = 0;; i++) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
      break;
    got += (uint64_t)n;
    if (i % 256 == 0)
      usleep(1000);
  }
  close(fd);
  return NULL;
}

static void sample(eddy_timer_t *t) {
  eddy_memory_usage_t mu;
  eddy_memory_usage(&loop, &mu);
  if (mu.slab_used > peak_slab)
    peak_slab = mu.slab_used;
  if (mu.rss > peak_rss)
    peak_rss = mu.rss;
}

static void on_rclose(eddy_file_rstream_t *r) {}

static void done(eddy_pipe_t *p, int st) {
  status = st;
  sample(&sampler);
  eddy_close(&sampler.handle, NULL);
  eddy_close(&conn.stream.handle, NULL);
  eddy_file_rstream_close(&rs, on_rclose);
}

static void on_connection(eddy_stream_t *srv, int st) {
  eddy_tcp_init(&loop, &conn);
  if (st != 0 || eddy_accept(srv, &conn.stream) != 0)
    exit(1);
  eddy_close(&server.stream.handle, NULL);
  if (eddy_file_rstream_open(&loop, &rs, path, NULL) != 0 ||
      eddy_stream_pipe(&pipe_, eddy_pipe_file_reader(&rs),
                       eddy_pipe_socket(&conn.stream), 0, done) != 0)
    exit(1);
}

int main(int argc, char **argv) {
  uint64_t mb = 1024;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc)
      setenv("EDDY_BACKEND", argv[++i], 1);
    else
      mb = strtoull(argv[i], NULL, 10);
  }
  uint64_t size = mb << 20;
  snprintf(path, sizeof path, "/tmp/eddy-pipe-big-%d", getpid());
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || ftruncate(fd, (off_t)size) != 0)
    return 1;
  close(fd);
  if (eddy_loop_init(&loop) != 0)
    return 1;
  struct sockaddr_in a;
  struct sockaddr_storage ss;
  eddy_ip4_addr("127.0.0.1", 0, &a);
  eddy_tcp_init(&loop, &server);
  eddy_tcp_bind(&server, (struct sockaddr *)&a, 0);
  eddy_listen(&server.stream, 8, on_connection);
  eddy_tcp_getsockname(&server, &ss);
  port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  eddy_memory_usage_t mu;
  eddy_memory_usage(&loop, &mu);
  rss0 = mu.rss;
  eddy_timer_init(&loop, &sampler);
  eddy_timer_start(&sampler, sample, 1, 1);
  pthread_t t;
  pthread_create(&t, NULL, reader, NULL);
  uint64_t t0 = eddy_hrtime();
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  pthread_join(t, NULL);
  double secs = (double)(eddy_hrtime() - t0) / 1e9;
  const char *be = eddy_backend_name(&loop);
  eddy_loop_close(&loop);
  unlink(path);
  size_t bound = 2 * (65536 + 65536) + EDDY_STREAM_HIGH_WATER_MARK;
  printf("pipe-big %s: %llu MB file -> slow TCP reader: %llu bytes in %.2f s "
         "(%.0f MB/s), status %s, peak slab_used %zu KB (bound %zu KB), "
         "rss growth %zu KB\n",
         be, (unsigned long long)mb, (unsigned long long)got, secs,
         (double)got / secs / 1048576, status == 0 ? "ok" : eddy_err_name(status),
         peak_slab / 1024, bound / 1024,
         peak_rss > rss0 ? (peak_rss - rss0) / 1024 : 0);
  return status == 0 && got == size && peak_slab <= bound ? 0 : 1;
}
