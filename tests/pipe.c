/* eddy_stream_pipe: file to socket to a slow reader with memory bounded,
 * socket to file byte-identical, file to file, NO_END, unpipe, errors. */
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(pipe, .timeout = 60);

static eddy_loop_t loop;
static char src_path[64], dst_path[64];

static uint64_t fnv(uint64_t h, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++)
    h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}
#define FNV0 0xcbf29ce484222325ULL

/* A sparse file of size bytes with a marker every 4 KB, so misplaced
 * bytes change the hash; returns its hash. */
static uint64_t make_sparse(const char *p, size_t size) {
  int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
  cr_assert(fd >= 0);
  cr_assert(eq(int, ftruncate(fd, (off_t)size), 0));
  for (size_t off = 0; off < size; off += 4096) {
    uint64_t v = off * 2654435761u + 1;
    cr_assert(eq(int, (int)pwrite(fd, &v, sizeof v, (off_t)off), 8));
  }
  static char buf[1 << 16];
  uint64_t h = FNV0;
  ssize_t n;
  lseek(fd, 0, SEEK_SET);
  while ((n = read(fd, buf, sizeof buf)) > 0)
    h = fnv(h, buf, (size_t)n);
  close(fd);
  return h;
}

static uint64_t hash_file(const char *p, size_t *size) {
  static char buf[1 << 16];
  int fd = open(p, O_RDONLY);
  cr_assert(fd >= 0, "%s", p);
  uint64_t h = FNV0;
  ssize_t n;
  *size = 0;
  while ((n = read(fd, buf, sizeof buf)) > 0) {
    h = fnv(h, buf, (size_t)n);
    *size += (size_t)n;
  }
  close(fd);
  return h;
}

static void paths(void) {
  snprintf(src_path, sizeof src_path, "/tmp/eddy-pipe-src-%d", getpid());
  snprintf(dst_path, sizeof dst_path, "/tmp/eddy-pipe-dst-%d", getpid());
}

/* ---- A TCP pair: the loop's side accepted, the thread's side blocking ---- */

static eddy_tcp_t server, conn;
static int port, conn_ready;
static pthread_t thread;

static void on_connection(eddy_stream_t *srv, int status) {
  cr_assert(eq(int, status, 0));
  cr_assert(eq(int, eddy_tcp_init(&loop, &conn), 0));
  cr_assert(eq(int, eddy_accept(srv, &conn.stream), 0));
  conn_ready = 1;
  eddy_close(&server.stream.handle, NULL);
}

static void listen_any(void) {
  struct sockaddr_in a;
  struct sockaddr_storage ss;
  eddy_ip4_addr("127.0.0.1", 0, &a);
  cr_assert(eq(int, eddy_tcp_init(&loop, &server), 0));
  cr_assert(eq(int, eddy_tcp_bind(&server, (struct sockaddr *)&a, 0), 0));
  cr_assert(eq(int, eddy_listen(&server.stream, 8, on_connection), 0));
  eddy_tcp_getsockname(&server, &ss);
  port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  conn_ready = 0;
}

static int connect_blocking(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a;
  struct timeval tv = {20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int small = 16384; /* a slow reader with a small window */
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  eddy_ip4_addr("127.0.0.1", port, &a);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* ---- File to a slow socket reader: bytes identical, memory bounded ------- */

#define BIG (32u << 20)
static eddy_file_rstream_t rs;
static eddy_file_wstream_t ws;
static eddy_pipe_t pipe_;
static int pipe_status, pipe_calls;
static uint64_t client_hash;
static size_t client_bytes, max_slab;
static eddy_timer_t sampler;

static void *slow_reader(void *arg) {
  int fd = connect_blocking();
  static char buf[16384];
  client_hash = FNV0;
  client_bytes = 0;
  if (fd < 0)
    return NULL;
  for (unsigned i = 0;; i++) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
      break;
    client_hash = fnv(client_hash, buf, (size_t)n);
    client_bytes += (size_t)n;
    if (i % 64 == 0)
      usleep(1000); /* slower than the server can send */
  }
  close(fd);
  return NULL;
}

static void sample(eddy_timer_t *t) {
  eddy_memory_usage_t mu;
  eddy_memory_usage(&loop, &mu);
  if (mu.slab_used > max_slab)
    max_slab = mu.slab_used;
}

static void on_rclosed(eddy_file_rstream_t *r) {}

static void file_to_socket_done(eddy_pipe_t *p, int status) {
  pipe_calls++;
  pipe_status = status;
  sample(&sampler);
  eddy_close(&sampler.handle, NULL);
  eddy_close(&conn.stream.handle, NULL);
  eddy_file_rstream_close(&rs, on_rclosed);
}

EDDY_IO_TEST(pipe, file_to_a_slow_socket_keeps_memory_bounded) {
  paths();
  uint64_t want = make_sparse(src_path, BIG);
  pipe_calls = 0;
  max_slab = 0;
  eddy_test_loop_init(&loop, *backend);
  listen_any();
  cr_assert(eq(int, pthread_create(&thread, NULL, slow_reader, NULL), 0));
  while (!conn_ready)
    eddy_run(&loop, EDDY_RUN_ONCE);
  eddy_file_rstream_options_t o;
  eddy_file_rstream_options_init(&o); /* 64 KB chunks, 64 KB ahead */
  cr_assert(eq(int, eddy_file_rstream_open(&loop, &rs, src_path, &o), 0));
  int err =
      eddy_stream_pipe(&pipe_, eddy_pipe_file_reader(&rs),
                       eddy_pipe_socket(&conn.stream), 0, file_to_socket_done);
  cr_assert(eq(int, err, 0), "%s", eddy_err_name(err));
  eddy_timer_init(&loop, &sampler);
  eddy_timer_start(&sampler, sample, 1, 1);
  eddy_test_loop_close(&loop);
  pthread_join(thread, NULL);
  cr_assert(eq(int, pipe_calls, 1));
  cr_assert(eq(int, pipe_status, 0), "%s", eddy_err_name(pipe_status));
  cr_assert(eq(u64, pipe_.bytes, BIG));
  cr_assert(eq(sz, client_bytes, BIG));
  cr_assert(eq(u64, client_hash, want));
  /* The file's high-water mark plus the socket's, with a chunk in flight
   * on each side: far below the 32 MB that went through. */
  size_t bound =
      2 * (o.high_water_mark + o.chunk_size) + EDDY_STREAM_HIGH_WATER_MARK;
  cr_assert(max_slab <= bound, "slab peaked at %zu, bound %zu", max_slab,
            bound);
  cr_assert(max_slab > 0);
  unlink(src_path);
}

/* ---- Socket to file
 * ----------------------------------------------------------- */

#define UPLOAD (8u << 20)
static uint64_t sent_hash;

static void *writer(void *arg) {
  int fd = connect_blocking();
  static char buf[65536];
  sent_hash = FNV0;
  if (fd < 0)
    return NULL;
  for (size_t off = 0; off < UPLOAD; off += sizeof buf) {
    for (size_t i = 0; i < sizeof buf; i++)
      buf[i] = (char)((off + i) * 13 + (off + i) / 4099);
    sent_hash = fnv(sent_hash, buf, sizeof buf);
    size_t done = 0;
    while (done < sizeof buf) {
      ssize_t n = send(fd, buf + done, sizeof buf - done, MSG_NOSIGNAL);
      if (n <= 0)
        goto out;
      done += (size_t)n;
    }
  }
out:
  shutdown(fd, SHUT_WR);
  char c;
  while (recv(fd, &c, 1, 0) > 0) {
  }
  close(fd);
  return NULL;
}

static void socket_to_file_done(eddy_pipe_t *p, int status) {
  pipe_calls++;
  pipe_status = status;
  sample(&sampler);
  eddy_close(&sampler.handle, NULL);
  eddy_close(&conn.stream.handle, NULL);
}

EDDY_IO_TEST(pipe, socket_to_file_is_byte_identical) {
  paths();
  pipe_calls = 0;
  max_slab = 0;
  eddy_test_loop_init(&loop, *backend);
  listen_any();
  cr_assert(eq(int, pthread_create(&thread, NULL, writer, NULL), 0));
  while (!conn_ready)
    eddy_run(&loop, EDDY_RUN_ONCE);
  cr_assert(
      eq(int, eddy_file_wstream_open(&loop, &ws, dst_path, O_TRUNC, 0644, NULL),
         0));
  int err =
      eddy_stream_pipe(&pipe_, eddy_pipe_socket(&conn.stream),
                       eddy_pipe_file_writer(&ws), 0, socket_to_file_done);
  cr_assert(eq(int, err, 0), "%s", eddy_err_name(err));
  eddy_timer_init(&loop, &sampler);
  eddy_timer_start(&sampler, sample, 1, 1);
  eddy_test_loop_close(&loop);
  pthread_join(thread, NULL);
  cr_assert(eq(int, pipe_calls, 1));
  cr_assert(eq(int, pipe_status, 0), "%s", eddy_err_name(pipe_status));
  size_t size;
  cr_assert(eq(u64, hash_file(dst_path, &size), sent_hash));
  cr_assert(eq(sz, size, UPLOAD));
  /* Socket reads are 64 KB blocks; the file's mark is 16 KB. */
  cr_assert(max_slab <= 8 * 65536, "slab peaked at %zu", max_slab);
  unlink(dst_path);
}

/* ---- File to file, NO_END, unpipe, errors
 * -------------------------------------- */

static void file_to_file_done(eddy_pipe_t *p, int status) {
  pipe_calls++;
  pipe_status = status;
  eddy_file_rstream_close(&rs, on_rclosed);
}

EDDY_IO_TEST(pipe, file_to_file_finishes_the_sink) {
  paths();
  uint64_t want = make_sparse(src_path, 3u << 20);
  pipe_calls = 0;
  eddy_test_loop_init(&loop, *backend);
  cr_assert(eq(int, eddy_file_rstream_open(&loop, &rs, src_path, NULL), 0));
  cr_assert(
      eq(int, eddy_file_wstream_open(&loop, &ws, dst_path, O_TRUNC, 0644, NULL),
         0));
  cr_assert(
      eq(int,
         eddy_stream_pipe(&pipe_, eddy_pipe_file_reader(&rs),
                          eddy_pipe_file_writer(&ws), 0, file_to_file_done),
         0));
  /* Either end is taken now. */
  eddy_pipe_t other;
  cr_assert(eq(int,
               eddy_stream_pipe(&other, eddy_pipe_file_reader(&rs),
                                eddy_pipe_file_writer(&ws), 0, NULL),
               EDDY_EBUSY));
  eddy_test_loop_close(&loop);
  cr_assert(eq(int, pipe_calls, 1));
  cr_assert(eq(int, pipe_status, 0));
  size_t size;
  cr_assert(eq(u64, hash_file(dst_path, &size), want));
  cr_assert(eq(sz, size, 3u << 20));
  unlink(src_path);
  unlink(dst_path);
}

static int finished;
static void on_finish(eddy_file_wstream_t *w, int status) {
  finished = 1;
}

static void no_end_done(eddy_pipe_t *p, int status) {
  pipe_calls++;
  pipe_status = status;
  eddy_file_rstream_close(&rs, on_rclosed);
  /* The sink is still open: more may be written. */
  cr_assert(eq(int, eddy_file_wstream_write(&ws, "tail", 4) >= 0, 1));
  eddy_file_wstream_end(&ws, on_finish);
}

EDDY_IO_TEST(pipe, no_end_leaves_the_sink_open) {
  paths();
  make_sparse(src_path, 100000);
  pipe_calls = finished = 0;
  eddy_test_loop_init(&loop, *backend);
  eddy_file_rstream_open(&loop, &rs, src_path, NULL);
  eddy_file_wstream_open(&loop, &ws, dst_path, O_TRUNC, 0644, NULL);
  cr_assert(eq(int,
               eddy_stream_pipe(&pipe_, eddy_pipe_file_reader(&rs),
                                eddy_pipe_file_writer(&ws), EDDY_PIPE_NO_END,
                                no_end_done),
               0));
  eddy_test_loop_close(&loop);
  cr_assert(eq(int, pipe_calls, 1));
  cr_assert(eq(int, finished, 1));
  struct stat sb;
  cr_assert(eq(int, stat(dst_path, &sb), 0));
  cr_assert(eq(i64, (int64_t)sb.st_size, 100004));
  unlink(src_path);
  unlink(dst_path);
}

static size_t own_bytes;
static void own_data(eddy_file_rstream_t *r, ssize_t n, const eddy_slice_t *b) {
  own_bytes += (size_t)n;
}
static void own_end(eddy_file_rstream_t *r) {
  eddy_file_rstream_close(r, on_rclosed);
  eddy_file_wstream_end(&ws, on_finish);
}

EDDY_IO_TEST(pipe, unpipe_hands_the_ends_back) {
  paths();
  make_sparse(src_path, 200000);
  pipe_calls = finished = 0;
  own_bytes = 0;
  eddy_test_loop_init(&loop, *backend);
  eddy_file_rstream_open(&loop, &rs, src_path, NULL);
  eddy_file_wstream_open(&loop, &ws, dst_path, O_TRUNC, 0644, NULL);
  cr_assert(
      eq(int,
         eddy_stream_pipe(&pipe_, eddy_pipe_file_reader(&rs),
                          eddy_pipe_file_writer(&ws), 0, file_to_file_done),
         0));
  cr_assert(eq(int, eddy_stream_unpipe(&pipe_), 0));
  cr_assert(eq(int, eddy_stream_unpipe(&pipe_), EDDY_EINVAL));
  /* The owner reads the stream itself now. */
  cr_assert(eq(int, eddy_file_rstream_start(&rs, own_data, own_end, NULL), 0));
  eddy_test_loop_close(&loop);
  cr_assert(eq(int, pipe_calls, 0));
  cr_assert(eq(sz, own_bytes, 200000));
  cr_assert(eq(int, finished, 1));
  unlink(src_path);
  unlink(dst_path);
}

EDDY_IO_TEST(pipe, a_source_error_is_reported_once) {
  paths();
  pipe_calls = finished = 0;
  eddy_test_loop_init(&loop, *backend);
  eddy_file_rstream_open(&loop, &rs, "/nonexistent/eddy/src", NULL);
  eddy_file_wstream_open(&loop, &ws, dst_path, O_TRUNC, 0644, NULL);
  cr_assert(
      eq(int,
         eddy_stream_pipe(&pipe_, eddy_pipe_file_reader(&rs),
                          eddy_pipe_file_writer(&ws), 0, file_to_file_done),
         0));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, pipe_calls, 1));
  cr_assert(eq(int, pipe_status, EDDY_ENOENT));
  eddy_file_wstream_end(&ws, on_finish);
  eddy_test_loop_close(&loop);
  cr_assert(eq(int, pipe_calls, 1));
  cr_assert(eq(int, finished, 1));
  unlink(dst_path);
}
