/* Streams over TCP (IPv4, IPv6) and Unix sockets: echo, backpressure,
 * half-close, errors, EMFILE. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(stream, .timeout = 60);

/* ---- An echo server and a client that checks the echo ------------------- */

typedef struct {
  eddy_tcp_t tcp; /* first: the stream handle */
  eddy_unix_t un;
  eddy_write_t w;
  char buf[256];
} conn_t;

static eddy_stream_t *server;
static conn_t peer;      /* the server's side of the one connection */
static eddy_stream_t *peer_stream;
static char got[64];
static size_t got_len;
static int client_done;

static void echo_written(eddy_write_t *req, int status) {
  cr_assert(eq(int, status, 0));
}

static void echo_read(eddy_stream_t *s, ssize_t nread, const eddy_slice_t *buf) {
  if (nread == EDDY_EOF) {
    eddy_close((eddy_handle_t *)s, NULL);
    eddy_close((eddy_handle_t *)server, NULL);
    return;
  }
  cr_assert(gt(long, (long)nread, 0L), "read: %s", eddy_err_name((int)nread));
  /* The slice is borrowed: copy before writing it back. */
  memcpy(peer.buf, buf->base, (size_t)nread);
  eddy_buf_t b = eddy_buf_init(peer.buf, (size_t)nread);
  cr_assert(eq(int, eddy_write(&peer.w, s, &b, 1, echo_written), 0));
}

static void on_connection(eddy_stream_t *srv, int status) {
  cr_assert(eq(int, status, 0));
  cr_assert(eq(int, eddy_accept(srv, peer_stream), 0));
  cr_assert(eq(int, eddy_accept(srv, peer_stream), EDDY_EAGAIN));
  cr_assert(eq(int, eddy_read_start(peer_stream, echo_read), 0));
}

static eddy_write_t client_w;
static eddy_shutdown_t client_sd;

static void client_read(eddy_stream_t *s, ssize_t nread,
                        const eddy_slice_t *buf) {
  if (nread == EDDY_EOF) {
    client_done = 1;
    eddy_close((eddy_handle_t *)s, NULL);
    return;
  }
  cr_assert(gt(long, (long)nread, 0L));
  memcpy(got + got_len, buf->base, (size_t)nread);
  got_len += (size_t)nread;
  if (got_len == 5)
    cr_assert(eq(int, eddy_shutdown(&client_sd, s, NULL), 0));
}

static void client_connected(eddy_connect_t *req, int status) {
  cr_assert(eq(int, status, 0), "connect: %s", eddy_err_name(status));
  static char hello[] = "hello";
  eddy_buf_t b = eddy_buf_init(hello, 5);
  cr_assert(eq(int, eddy_write(&client_w, req->stream, &b, 1, NULL), 0));
  cr_assert(eq(int, eddy_read_start(req->stream, client_read), 0));
}

static void run_echo(eddy_loop_t *loop, eddy_stream_t *client) {
  eddy_run(loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, client_done, 1));
  cr_assert(eq(sz, got_len, (size_t)5));
  cr_assert(eq(int, memcmp(got, "hello", 5), 0));
  cr_assert(eq(int, eddy_loop_close(loop), 0));
}

static int bound_port(eddy_tcp_t *t) {
  struct sockaddr_storage ss;
  cr_assert(eq(int, eddy_tcp_getsockname(t, &ss), 0));
  if (ss.ss_family == AF_INET)
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* A listening IPv4 server on a free loopback port, its accepted side in
 * `peer`, and a client connecting to it. */
typedef struct {
  eddy_tcp_t srv, client;
  eddy_connect_t creq;
} tcp_setup_t;

static void tcp_start(eddy_loop_t *loop, tcp_setup_t *t,
                      eddy_connection_cb on_conn, eddy_connect_cb on_connected) {
  struct sockaddr_in addr;
  eddy_tcp_init(loop, &t->srv);
  eddy_tcp_init(loop, &t->client);
  eddy_tcp_init(loop, &peer.tcp);
  server = &t->srv.stream;
  peer_stream = &peer.tcp.stream;
  eddy_ip4_addr("127.0.0.1", 0, &addr);
  cr_assert(eq(int, eddy_tcp_bind(&t->srv, (struct sockaddr *)&addr, 0), 0));
  cr_assert(eq(int, eddy_listen(&t->srv.stream, 16, on_conn), 0));
  eddy_ip4_addr("127.0.0.1", bound_port(&t->srv), &addr);
  cr_assert(eq(int, eddy_tcp_connect(&t->creq, &t->client,
                                     (struct sockaddr *)&addr, on_connected),
               0));
}

EDDY_IO_TEST(stream, tcp4_echo_roundtrip_and_half_close) {
  eddy_loop_t loop;
  tcp_setup_t t;
  eddy_test_loop_init(&loop, *backend);
  tcp_start(&loop, &t, on_connection, client_connected);
  run_echo(&loop, &t.client.stream);
}

/* EDDY_URING_MIN_WAIT=<µs> makes io_uring wait for a batch of completions
 * (core/uring.c, u_submit_and_wait_batch) where the kernel can.  A lone
 * completion must still arrive (after the minimum), and the poll timeout
 * must still end a wait with none: a timer fires with no IO at all.
 * epoll ignores the setting. */
static int batch_timer_fired;
static void batch_timer_cb(eddy_timer_t *t) {
  batch_timer_fired++;
}

EDDY_IO_TEST(stream, tcp4_echo_and_timer_with_batch_wait) {
  eddy_loop_t loop;
  tcp_setup_t t;
  setenv("EDDY_URING_MIN_WAIT", "20", 1);
  eddy_test_loop_init(&loop, *backend);
  eddy_timer_t timer;
  eddy_timer_init(&loop, &timer);
  eddy_timer_start(&timer, batch_timer_cb, 5, 0);
  cr_assert(eq(int, eddy_run(&loop, EDDY_RUN_DEFAULT), 0));
  cr_assert(eq(int, batch_timer_fired, 1), "the wait ends at the timeout");
  eddy_close((eddy_handle_t *)&timer, NULL);
  tcp_start(&loop, &t, on_connection, client_connected);
  run_echo(&loop, &t.client.stream);
}

EDDY_IO_TEST(stream, tcp6_echo_roundtrip) {
  eddy_loop_t loop;
  eddy_tcp_t srv, client;
  eddy_connect_t creq;
  struct sockaddr_in6 addr;
  eddy_test_loop_init(&loop, *backend);
  eddy_tcp_init(&loop, &srv);
  eddy_tcp_init(&loop, &client);
  eddy_tcp_init(&loop, &peer.tcp);
  server = &srv.stream;
  peer_stream = &peer.tcp.stream;
  eddy_ip6_addr("::1", 0, &addr);
  int err = eddy_tcp_bind(&srv, (struct sockaddr *)&addr, EDDY_TCP_IPV6ONLY);
  if (err == EDDY_EADDRNOTAVAIL || err == EDDY_EAFNOSUPPORT)
    cr_skip_test("no IPv6 loopback here");
  cr_assert(eq(int, err, 0), "bind [::1]: %s", eddy_err_name(err));
  cr_assert(eq(int, eddy_listen(&srv.stream, 16, on_connection), 0));
  eddy_ip6_addr("::1", bound_port(&srv), &addr);
  cr_assert(eq(int, eddy_tcp_connect(&creq, &client, (struct sockaddr *)&addr,
                                     client_connected), 0));
  run_echo(&loop, &client.stream);
}

EDDY_IO_TEST(stream, unix_echo_roundtrip_path_and_abstract) {
  for (int abstract = 0; abstract < 2; abstract++) {
    eddy_loop_t loop;
    eddy_unix_t srv, client;
    eddy_connect_t creq;
    char path[64];
    snprintf(path, sizeof path, "%s/tmp/eddy-test-%d.sock",
             abstract ? "@" : "", (int)getpid());
    if (abstract)
      path[0] = '\0';
    else
      unlink(path);
    got_len = 0;
    client_done = 0;
    eddy_test_loop_init(&loop, *backend);
    eddy_unix_init(&loop, &srv);
    eddy_unix_init(&loop, &client);
    eddy_unix_init(&loop, &peer.un);
    server = &srv.stream;
    peer_stream = &peer.un.stream;
    cr_assert(eq(int, eddy_unix_bind(&srv, path), 0));
    cr_assert(eq(int, eddy_listen(&srv.stream, 16, on_connection), 0));
    cr_assert(eq(int, eddy_unix_connect(&creq, &client, path,
                                        client_connected), 0));
    run_echo(&loop, &client.stream);
    if (!abstract)
      unlink(path);
  }
}

/* ---- Large writes with backpressure ------------------------------------- */

#define CHUNK (64 * 1024)
#define TOTAL (16 * 1024 * 1024)

static char chunk[CHUNK];
static eddy_write_t wreqs[TOTAL / CHUNK];
static size_t queued, written_cbs, received, full_seen, drains;
static uint32_t sent_sum, recv_sum;
static eddy_timer_t slow_timer;
static int write_cb_in_write;
static int in_write_call;

static void bp_written(eddy_write_t *req, int status) {
  cr_assert(eq(int, status, 0));
  if (in_write_call)
    write_cb_in_write = 1;
  written_cbs++;
}

static void pump(eddy_stream_t *s) {
  while (queued < TOTAL) {
    eddy_buf_t b = eddy_buf_init(chunk, CHUNK);
    for (size_t i = 0; i < CHUNK; i += 4096)
      sent_sum = sent_sum * 31 + (uint8_t)chunk[i];
    in_write_call = 1;
    int r = eddy_write(&wreqs[queued / CHUNK], s, &b, 1, bp_written);
    in_write_call = 0;
    cr_assert(ge(int, r, 0));
    queued += CHUNK;
    if (r == EDDY_STREAM_FULL) {
      full_seen++;
      /* Node's rule: stop writing until 'drain'. */
      cr_assert(ge(sz, s->write_queue_size, s->high_water_mark));
      return;
    }
  }
  eddy_shutdown(&client_sd, s, NULL);
}

static void bp_drain(eddy_stream_t *s) {
  drains++;
  cr_assert(lt(sz, s->write_queue_size, s->high_water_mark));
  pump(s);
}

static void resume_reading(eddy_timer_t *t);

static void slow_read(eddy_stream_t *s, ssize_t nread, const eddy_slice_t *buf) {
  if (nread == EDDY_EOF) {
    eddy_close((eddy_handle_t *)s, NULL);
    eddy_close((eddy_handle_t *)server, NULL);
    eddy_close((eddy_handle_t *)&slow_timer, NULL);
    return;
  }
  cr_assert(gt(long, (long)nread, 0L));
  for (size_t off = received % 4096 ? 4096 - received % 4096 : 0;
       off < (size_t)nread; off += 4096)
    recv_sum = recv_sum * 31 + (uint8_t)buf->base[off];
  received += (size_t)nread;
  /* A slow reader: pause after each read, resume a millisecond later. */
  eddy_read_stop(s);
  eddy_timer_start(&slow_timer, resume_reading, 1, 0);
}

static void resume_reading(eddy_timer_t *t) {
  eddy_read_start(peer_stream, slow_read);
}

static void bp_connection(eddy_stream_t *srv, int status) {
  cr_assert(eq(int, eddy_accept(srv, peer_stream), 0));
  eddy_read_start(peer_stream, slow_read);
}

static void bp_connected(eddy_connect_t *req, int status) {
  cr_assert(eq(int, status, 0));
  eddy_stream_set_drain_cb(req->stream, bp_drain);
  pump(req->stream);
}

static void client_closed_on_eof(eddy_stream_t *s, ssize_t n,
                                 const eddy_slice_t *b) {
  if (n < 0)
    eddy_close((eddy_handle_t *)s, NULL);
}

EDDY_IO_TEST(stream, large_writes_respect_high_water_mark_and_drain) {
  eddy_loop_t loop;
  tcp_setup_t t;
  for (size_t i = 0; i < CHUNK; i++)
    chunk[i] = (char)(i * 7 + i / 4096);
  eddy_test_loop_init(&loop, *backend);
  eddy_timer_init(&loop, &slow_timer);
  tcp_start(&loop, &t, bp_connection, bp_connected);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  /* The client's side is still open: its peer closed; read EOF to end. */
  eddy_read_start(&t.client.stream, client_closed_on_eof);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(sz, received, (size_t)TOTAL));
  cr_assert(eq(u32, recv_sum, sent_sum), "bytes differ end to end");
  cr_assert(eq(sz, written_cbs, (size_t)(TOTAL / CHUNK)));
  cr_assert(gt(sz, full_seen, (size_t)0), "eddy_write never said full");
  cr_assert(eq(sz, drains, full_seen));
  cr_assert(eq(int, write_cb_in_write, 0), "write callback inside eddy_write");
  cr_assert(eq(int, eddy_loop_close(&loop), 0));
}

/* ---- Errors --------------------------------------------------------------- */

static int connect_status = 1;
static eddy_phase connect_phase;

static void refused(eddy_connect_t *req, int status) {
  connect_status = status;
  connect_phase = eddy_loop_phase(req->stream->handle.loop);
  eddy_close((eddy_handle_t *)req->stream, NULL);
}

EDDY_IO_TEST(stream, connect_refused_reports_econnrefused) {
  eddy_loop_t loop;
  eddy_tcp_t probe, client;
  eddy_connect_t creq;
  struct sockaddr_in addr;
  eddy_test_loop_init(&loop, *backend);
  /* A port that was just free: bind, read it, close without listening. */
  eddy_tcp_init(&loop, &probe);
  eddy_ip4_addr("127.0.0.1", 0, &addr);
  eddy_tcp_bind(&probe, (struct sockaddr *)&addr, 0);
  eddy_ip4_addr("127.0.0.1", bound_port(&probe), &addr);
  eddy_close((eddy_handle_t *)&probe, NULL);
  eddy_tcp_init(&loop, &client);
  cr_assert(eq(int, eddy_tcp_connect(&creq, &client, (struct sockaddr *)&addr,
                                     refused), 0));
  cr_assert(eq(int, connect_status, 1), "callback ran inside the call");
  eddy_test_loop_close(&loop);
  cr_assert(eq(int, connect_status, EDDY_ECONNREFUSED), "got %s",
            eddy_err_name(connect_status));
}

static int cancel_status[3] = {1, 1, 1};
static int close_cb_ran_after;

static void note_cancel(eddy_write_t *req, int status) {
  cancel_status[(intptr_t)req->data] = status;
}

static void stream_closed(eddy_handle_t *h) {
  close_cb_ran_after = cancel_status[2] != 1;
}

static void write_then_close(eddy_connect_t *req, int status) {
  static eddy_write_t w[3];
  static char big[1 << 20];
  eddy_buf_t b = eddy_buf_init(big, sizeof big);
  cr_assert(eq(int, status, 0));
  /* 3 MB to a peer that never reads: most of it is still queued. */
  for (intptr_t i = 0; i < 3; i++) {
    w[i].data = (void *)i;
    eddy_write(&w[i], req->stream, &b, 1, note_cancel);
  }
  eddy_close((eddy_handle_t *)req->stream, stream_closed);
  eddy_close((eddy_handle_t *)server, NULL);
}

static void accept_and_hold(eddy_stream_t *srv, int status) {
  eddy_accept(srv, peer_stream);
  eddy_close((eddy_handle_t *)peer_stream, NULL);
}

EDDY_IO_TEST(stream, close_cancels_queued_writes_before_close_callback) {
  eddy_loop_t loop;
  tcp_setup_t t;
  eddy_test_loop_init(&loop, *backend);
  tcp_start(&loop, &t, accept_and_hold, write_then_close);
  eddy_test_loop_close(&loop);
  cr_assert(eq(int, cancel_status[2], EDDY_ECANCELED));
  cr_assert(eq(int, close_cb_ran_after, 1));
}

EDDY_IO_TEST(stream, write_after_shutdown_is_epipe_and_unbound_is_ebadf) {
  eddy_loop_t loop;
  eddy_unix_t a, b;
  eddy_write_t w;
  eddy_shutdown_t sd;
  int sv[2];
  char x = 'x';
  eddy_buf_t buf = eddy_buf_init(&x, 1);
  cr_assert(eq(int, socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0));
  eddy_test_loop_init(&loop, *backend);
  eddy_unix_init(&loop, &a);
  eddy_unix_init(&loop, &b);
  cr_assert(eq(int, eddy_write(&w, &b.stream, &buf, 1, NULL), EDDY_EBADF));
  cr_assert(eq(int, eddy_read_start(&b.stream, client_read), EDDY_ENOTCONN));
  cr_assert(eq(int, eddy_unix_open(&a, sv[0]), 0));
  cr_assert(eq(long, (long)eddy_try_write(&a.stream, &buf, 1), 1L));
  cr_assert(eq(int, eddy_shutdown(&sd, &a.stream, NULL), 0));
  cr_assert(eq(int, eddy_shutdown(&sd, &a.stream, NULL), EDDY_EALREADY));
  cr_assert(eq(int, eddy_write(&w, &a.stream, &buf, 1, NULL), EDDY_EPIPE));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  char rd[4];
  cr_assert(eq(long, (long)read(sv[1], rd, sizeof rd), 1L));
  cr_assert(eq(long, (long)read(sv[1], rd, sizeof rd), 0L)); /* FIN */
  eddy_close((eddy_handle_t *)&a, NULL);
  eddy_close((eddy_handle_t *)&b, NULL);
  eddy_test_loop_close(&loop);
  close(sv[1]);
}

/* ---- EMFILE ---------------------------------------------------------------- */

static int emfile_seen, accepted_after;
static int spare_fds[64];
static int nspare;
static eddy_tcp_t late_peer;

static void emfile_connection(eddy_stream_t *srv, int status) {
  if (status == EDDY_EMFILE) {
    emfile_seen++;
    /* Descriptors free up: the server must take the next connection. */
    while (nspare > 0)
      close(spare_fds[--nspare]);
    return;
  }
  cr_assert(eq(int, status, 0));
  eddy_tcp_init(srv->handle.loop, &late_peer);
  cr_assert(eq(int, eddy_accept(srv, &late_peer.stream), 0));
  accepted_after++;
  eddy_close((eddy_handle_t *)&late_peer, NULL);
  eddy_close((eddy_handle_t *)srv, NULL);
}

static void connect_twice(int port) {
  /* The clients live in a child process with its own descriptors. */
  for (int i = 0; i < 2; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    eddy_ip4_addr("127.0.0.1", port, &a);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
      _exit(1);
    usleep(200000); /* let the server see them one at a time */
    close(fd);
  }
  _exit(0);
}

EDDY_IO_TEST(stream, emfile_sheds_connection_and_recovers) {
  eddy_loop_t loop;
  eddy_tcp_t srv;
  struct sockaddr_in addr;
  eddy_test_loop_init(&loop, *backend);
  eddy_tcp_init(&loop, &srv);
  eddy_ip4_addr("127.0.0.1", 0, &addr);
  eddy_tcp_bind(&srv, (struct sockaddr *)&addr, 0);
  cr_assert(eq(int, eddy_listen(&srv.stream, 16, emfile_connection), 0));
  int port = bound_port(&srv);
  pid_t pid = fork();
  if (pid == 0)
    connect_twice(port);
  /* Use up every descriptor under a low limit. */
  struct rlimit rl = {64, 64};
  cr_assert(eq(int, setrlimit(RLIMIT_NOFILE, &rl), 0));
  for (;;) {
    int fd = open("/dev/null", O_RDONLY);
    if (fd < 0)
      break;
    if (nspare < 64)
      spare_fds[nspare++] = fd;
  }
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  int status;
  waitpid(pid, &status, 0);
  cr_assert(eq(int, emfile_seen, 1));
  cr_assert(eq(int, accepted_after, 1));
  cr_assert(eq(int, eddy_loop_close(&loop), 0));
}

/* ---- Read buffers held by the application -------------------------------- */

#define HELD_TOTAL (8 * 1024 * 1024)
#define HELD_MAX 4096

static eddy_slice_t held[HELD_MAX];
static size_t nheld, held_received;
static uint32_t held_sum, held_sent_sum;
static eddy_timer_t release_timer;
static char held_chunk[CHUNK];
static eddy_write_t held_w[HELD_TOTAL / CHUNK];

static void release_held(eddy_timer_t *t) {
  for (size_t i = 0; i < nheld; i++)
    eddy_slice_release(&held[i]);
  nheld = 0;
}

static void hold_read(eddy_stream_t *s, ssize_t nread, const eddy_slice_t *buf) {
  if (nread == EDDY_EOF) {
    release_held(NULL);
    eddy_close((eddy_handle_t *)s, NULL);
    eddy_close((eddy_handle_t *)server, NULL);
    eddy_close((eddy_handle_t *)&release_timer, NULL);
    return;
  }
  cr_assert(gt(long, (long)nread, 0L), "read: %s", eddy_err_name((int)nread));
  for (ssize_t i = 0; i < nread; i++)
    held_sum = held_sum * 31 + (uint8_t)buf->base[i];
  held_received += (size_t)nread;
  /* Keep the buffer: the loop must not reuse it, and must not stall or
   * lose bytes when every buffer it has is held (io_uring's ring runs
   * dry and the receive waits for a buffer to come back). */
  cr_assert(lt(sz, nheld, (size_t)HELD_MAX));
  held[nheld] = *buf;
  eddy_slice_retain(&held[nheld]);
  nheld++;
}

static void hold_connection(eddy_stream_t *srv, int status) {
  cr_assert(eq(int, eddy_accept(srv, peer_stream), 0));
  eddy_read_start(peer_stream, hold_read);
}

static void held_connected(eddy_connect_t *req, int status) {
  cr_assert(eq(int, status, 0));
  for (size_t i = 0; i < HELD_TOTAL / CHUNK; i++) {
    eddy_buf_t b = eddy_buf_init(held_chunk, CHUNK);
    eddy_write(&held_w[i], req->stream, &b, 1, NULL);
  }
  eddy_shutdown(&client_sd, req->stream, NULL);
}

EDDY_IO_TEST(stream, held_read_buffers_are_not_reused_and_nothing_is_lost) {
  eddy_loop_t loop;
  tcp_setup_t t;
  for (size_t i = 0; i < CHUNK; i++)
    held_chunk[i] = (char)(i * 13 + i / 1000);
  for (size_t n = 0; n < HELD_TOTAL / CHUNK; n++)
    for (size_t i = 0; i < CHUNK; i++)
      held_sent_sum = held_sent_sum * 31 + (uint8_t)held_chunk[i];
  eddy_test_loop_init(&loop, *backend);
  eddy_timer_init(&loop, &release_timer);
  eddy_timer_start(&release_timer, release_held, 20, 20);
  tcp_start(&loop, &t, hold_connection, held_connected);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  eddy_read_start(&t.client.stream, client_closed_on_eof);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(sz, held_received, (size_t)HELD_TOTAL));
  cr_assert(eq(u32, held_sum, held_sent_sum), "bytes differ end to end");
  cr_assert(eq(int, eddy_loop_close(&loop), 0));
}

/* ---- Many connections holding their reads --------------------------------- */

#define HOLDERS 64
#define HOLDER_BYTES (80 * 1024)

static eddy_tcp_t holder_srv, holder_peers[HOLDERS], holder_clients[HOLDERS];
static eddy_connect_t holder_creq[HOLDERS];
static eddy_write_t holder_w[HOLDERS];
static eddy_shutdown_t holder_sd[HOLDERS];
static eddy_slice_t *holder_kept;
static size_t holder_nkept, holder_bytes, holder_accepted;
static int holder_eofs;

static void holder_read(eddy_stream_t *s, ssize_t nread,
                        const eddy_slice_t *buf) {
  if (nread < 0) {
    cr_assert(eq(long, (long)nread, (long)EDDY_EOF));
    eddy_close((eddy_handle_t *)s, NULL);
    if (++holder_eofs == HOLDERS) {
      for (size_t i = 0; i < holder_nkept; i++)
        eddy_slice_release(&holder_kept[i]);
      eddy_close((eddy_handle_t *)&holder_srv, NULL);
      for (int i = 0; i < HOLDERS; i++)
        eddy_close((eddy_handle_t *)&holder_clients[i], NULL);
    }
    return;
  }
  holder_bytes += (size_t)nread;
  holder_kept[holder_nkept] = *buf;
  eddy_slice_retain(&holder_kept[holder_nkept++]);
}

static void holder_connection(eddy_stream_t *srv, int status) {
  cr_assert(eq(int, status, 0));
  eddy_tcp_t *p = &holder_peers[holder_accepted++];
  eddy_tcp_init(srv->handle.loop, p);
  cr_assert(eq(int, eddy_accept(srv, &p->stream), 0));
  eddy_read_start(&p->stream, holder_read);
}

static void holder_connected(eddy_connect_t *req, int status) {
  static char payload[HOLDER_BYTES];
  size_t i = (size_t)(req - holder_creq);
  eddy_buf_t b = eddy_buf_init(payload, sizeof payload);
  cr_assert(eq(int, status, 0));
  cr_assert(ge(int, eddy_write(&holder_w[i], req->stream, &b, 1, NULL), 0));
  cr_assert(eq(int, eddy_shutdown(&holder_sd[i], req->stream, NULL), 0));
}

/* Reads kept by the application must not starve other connections: under
 * io_uring all connections of a loop share one ring of receive buffers. */
EDDY_IO_TEST(stream, kept_reads_of_many_connections_do_not_starve_the_loop) {
  eddy_loop_t loop;
  struct sockaddr_in addr;
  holder_kept = calloc(HOLDERS * (HOLDER_BYTES / 1024 + 1), sizeof *holder_kept);
  eddy_test_loop_init(&loop, *backend);
  eddy_tcp_init(&loop, &holder_srv);
  eddy_ip4_addr("127.0.0.1", 0, &addr);
  eddy_tcp_bind(&holder_srv, (struct sockaddr *)&addr, 0);
  cr_assert(eq(int, eddy_listen(&holder_srv.stream, 128, holder_connection), 0));
  eddy_ip4_addr("127.0.0.1", bound_port(&holder_srv), &addr);
  for (int i = 0; i < HOLDERS; i++) {
    eddy_tcp_init(&loop, &holder_clients[i]);
    eddy_tcp_connect(&holder_creq[i], &holder_clients[i],
                     (struct sockaddr *)&addr, holder_connected);
  }
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, holder_eofs, HOLDERS));
  cr_assert(eq(sz, holder_bytes, (size_t)HOLDERS * HOLDER_BYTES));
  cr_assert(eq(int, eddy_loop_close(&loop), 0));
  free(holder_kept);
}
