/* UDP handles: round trips on IPv4 and IPv6 loopback with the sender's
 * address, bursts in order, large and truncated datagrams, the send queue
 * when the socket is full, cancellation on close, recv_stop, errors. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"
#include "internal.h"

TestSuite(udp, .timeout = 60);

static int port_of(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)sa)->sin_port);
  return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

static struct sockaddr_storage name_of(const eddy_udp_t *u) {
  struct sockaddr_storage ss;
  int rc = eddy_udp_getsockname(u, &ss);
  cr_assert(eq(int, rc, 0), "getsockname: %s", eddy_err_name(rc));
  return ss;
}

/* Family, port and address: what a sender is known by. */
static void assert_same_addr(const struct sockaddr *got,
                             const struct sockaddr_storage *want) {
  char g[64], w[64];
  cr_assert(got != NULL, "no sender address");
  cr_assert(eq(int, eddy_addr_name(got, g, sizeof g), 0));
  cr_assert(
      eq(int, eddy_addr_name((const struct sockaddr *)want, w, sizeof w), 0));
  cr_assert(eq(str, g, w));
}

/* Binds u to the loopback of the family; 0, or why not (IPv6 may be off). */
static int bind_loopback(eddy_udp_t *u, int family) {
  if (family == AF_INET) {
    struct sockaddr_in a;
    eddy_ip4_addr("127.0.0.1", 0, &a);
    return eddy_udp_bind(u, (struct sockaddr *)&a, 0);
  }
  struct sockaddr_in6 a6;
  eddy_ip6_addr("::1", 0, &a6);
  return eddy_udp_bind(u, (struct sockaddr *)&a6, EDDY_UDP_IPV6ONLY);
}

static void close_both(eddy_udp_t *a, eddy_udp_t *b) {
  eddy_close((eddy_handle_t *)a, NULL);
  eddy_close((eddy_handle_t *)b, NULL);
}

/* ---- Sends: counted, and never called back from inside the call ---------- */

static int in_send;
static int sent_ok;

static void on_sent(eddy_udp_send_t *req, int status) {
  cr_assert(eq(int, in_send, 0), "send callback inside eddy_udp_send");
  cr_assert(eq(int, status, 0), "send: %s", eddy_err_name(status));
  sent_ok++;
}

static int send_text(eddy_udp_send_t *req, eddy_udp_t *u, const char *text,
                     const struct sockaddr *to, eddy_udp_send_cb cb) {
  eddy_buf_t b = eddy_buf_init((char *)text, strlen(text));
  in_send = 1;
  int rc = eddy_udp_send(req, u, &b, 1, to, cb);
  in_send = 0;
  return rc;
}

/* ---- Round trip: ping from a to b, pong back to the reported address ----- */

static eddy_udp_t ua, ub;
static eddy_udp_send_t sreq[4];
static struct sockaddr_storage name_a, name_b;
static int got_ping, got_pong;

static void pong_recv(eddy_udp_t *u, ssize_t nread, const eddy_slice_t *buf,
                      const struct sockaddr *addr, unsigned flags) {
  cr_assert(eq(long, (long)nread, 4L), "nread %s", eddy_err_name((int)nread));
  cr_assert(eq(int, memcmp(buf->base, "pong", 4), 0));
  cr_assert(eq(sz, buf->len, (size_t)4));
  cr_assert(eq(uint, flags, 0));
  assert_same_addr(addr, &name_b);
  got_pong++;
  close_both(&ua, &ub);
}

static void ping_recv(eddy_udp_t *u, ssize_t nread, const eddy_slice_t *buf,
                      const struct sockaddr *addr, unsigned flags) {
  cr_assert(eq(long, (long)nread, 4L), "nread %s", eddy_err_name((int)nread));
  cr_assert(eq(int, memcmp(buf->base, "ping", 4), 0));
  cr_assert(eq(uint, flags, 0));
  assert_same_addr(addr, &name_a);
  got_ping++;
  /* Reply to whoever it was, from inside the receive callback. */
  cr_assert(eq(int, send_text(&sreq[1], u, "pong", addr, on_sent), 0));
}

static void roundtrip(const char *backend, int family) {
  eddy_loop_t loop;
  eddy_test_loop_init(&loop, backend);
  eddy_udp_init(&loop, &ua);
  eddy_udp_init(&loop, &ub);
  int err = bind_loopback(&ua, family);
  if (family == AF_INET6 &&
      (err == EDDY_EADDRNOTAVAIL || err == EDDY_EAFNOSUPPORT)) {
    close_both(&ua, &ub);
    eddy_test_loop_close(&loop);
    cr_skip_test("no IPv6 loopback here");
  }
  cr_assert(eq(int, err, 0), "bind: %s", eddy_err_name(err));
  cr_assert(eq(int, bind_loopback(&ub, family), 0));
  name_a = name_of(&ua);
  name_b = name_of(&ub);
  cr_assert(eq(int, name_a.ss_family, family));

  cr_assert(eq(int, eddy_udp_recv_start(&ua, pong_recv), 0));
  cr_assert(eq(int, eddy_udp_recv_start(&ub, ping_recv), 0));
  cr_assert(
      eq(int,
         send_text(&sreq[0], &ua, "ping", (struct sockaddr *)&name_b, on_sent),
         0));
  cr_assert(eq(int, sent_ok, 0));
  eddy_run(&loop, EDDY_RUN_DEFAULT);

  cr_assert(eq(int, got_ping, 1));
  cr_assert(eq(int, got_pong, 1));
  cr_assert(eq(int, sent_ok, 2));
  cr_assert(eq(int, eddy_loop_close(&loop), 0));
}

EDDY_IO_TEST(udp, udp4_roundtrip_reports_sender_addresses) {
  roundtrip(*backend, AF_INET);
}

EDDY_IO_TEST(udp, udp6_roundtrip_reports_sender_addresses) {
  roundtrip(*backend, AF_INET6);
}

/* ---- An unbound sender gets its socket at the first send ----------------- */

static void unbound_recv(eddy_udp_t *u, ssize_t nread, const eddy_slice_t *buf,
                         const struct sockaddr *addr, unsigned flags) {
  cr_assert(eq(long, (long)nread, 5L));
  cr_assert(eq(int, memcmp(buf->base, "hello", 5), 0));
  /* ua was bound implicitly to the wildcard address: same port. */
  cr_assert(addr != NULL && addr->sa_family == AF_INET);
  cr_assert(eq(int, port_of(addr), port_of((struct sockaddr *)&name_a)));
  got_ping++;
  close_both(&ua, &ub);
}

EDDY_IO_TEST(udp, udp_unbound_sender_gets_socket_at_first_send) {
  eddy_loop_t loop;
  struct sockaddr_storage ss;
  eddy_test_loop_init(&loop, *backend);
  eddy_udp_init(&loop, &ua);
  eddy_udp_init(&loop, &ub);
  cr_assert(eq(int, eddy_udp_getsockname(&ua, &ss), EDDY_EBADF));
  cr_assert(eq(int, eddy_udp_fd(&ua), EDDY_EBADF));
  cr_assert(eq(int, eddy_udp_recv_start(&ua, unbound_recv), EDDY_EBADF));
  cr_assert(eq(int, bind_loopback(&ub, AF_INET), 0));
  name_b = name_of(&ub);
  cr_assert(eq(int, eddy_udp_recv_start(&ub, unbound_recv), 0));

  cr_assert(
      eq(int,
         send_text(&sreq[0], &ua, "hello", (struct sockaddr *)&name_b, on_sent),
         0));
  cr_assert(ge(int, eddy_udp_fd(&ua), 0));
  name_a = name_of(&ua);
  cr_assert(ne(int, port_of((struct sockaddr *)&name_a), 0));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, got_ping, 1));
  cr_assert(eq(int, sent_ok, 1));
  cr_assert(eq(int, eddy_loop_close(&loop), 0));
}

/* ---- A burst of 100 arrives whole and in order --------------------------- */

#define BURST 100
#define BURST_LEN 200

static char burst[BURST][BURST_LEN];
static eddy_udp_send_t burst_reqs[BURST];
static int burst_next, burst_sent, tick_waiting;
static eddy_loop_t *burst_loop;

static void burst_sent_cb(eddy_udp_send_t *req, int status) {
  cr_assert(eq(int, in_send, 0), "send callback inside eddy_udp_send");
  cr_assert(eq(int, status, 0), "send: %s", eddy_err_name(status));
  cr_assert(eq(int, (int)(intptr_t)req->data, burst_sent), "in order");
  burst_sent++;
}

static void burst_tick(void *arg) {
  tick_waiting = 0;
}

static void burst_recv(eddy_udp_t *u, ssize_t nread, const eddy_slice_t *buf,
                       const struct sockaddr *addr, unsigned flags) {
  cr_assert(eq(int, tick_waiting, 0), "ticks drain after each datagram");
  cr_assert(eq(long, (long)nread, (long)BURST_LEN));
  cr_assert(eq(uint, flags, 0));
  cr_assert(eq(int, memcmp(buf->base, burst[burst_next], BURST_LEN), 0),
            "datagram %d out of order", burst_next);
  burst_next++;
  tick_waiting = 1;
  eddy_next_tick(burst_loop, burst_tick, NULL);
  if (burst_next == BURST)
    close_both(&ua, &ub);
}

EDDY_IO_TEST(udp, udp_burst_of_100_arrives_in_order) {
  eddy_loop_t loop;
  eddy_test_loop_init(&loop, *backend);
  burst_loop = &loop;
  eddy_udp_init(&loop, &ua);
  eddy_udp_init(&loop, &ub);
  cr_assert(eq(int, bind_loopback(&ub, AF_INET), 0));
  /* Room for the whole burst, so the kernel drops nothing. */
  int rcvbuf = 1 << 20;
  cr_assert(eq(int,
               setsockopt(eddy_udp_fd(&ub), SOL_SOCKET, SO_RCVBUF, &rcvbuf,
                          sizeof rcvbuf),
               0));
  name_b = name_of(&ub);
  cr_assert(eq(int, eddy_udp_recv_start(&ub, burst_recv), 0));

  for (int i = 0; i < BURST; i++) {
    memset(burst[i], 'a' + i % 26, BURST_LEN);
    memcpy(burst[i], &i, sizeof i);
    eddy_buf_t b = eddy_buf_init(burst[i], BURST_LEN);
    burst_reqs[i].data = (void *)(intptr_t)i;
    in_send = 1;
    int rc = eddy_udp_send(&burst_reqs[i], &ua, &b, 1,
                           (struct sockaddr *)&name_b, burst_sent_cb);
    in_send = 0;
    cr_assert(eq(int, rc, 0), "send %d: %s", i, eddy_err_name(rc));
  }
  cr_assert(eq(int, burst_sent, 0));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, burst_next, BURST));
  cr_assert(eq(int, burst_sent, BURST));
  cr_assert(eq(int, eddy_loop_close(&loop), 0));
}

/* ---- Large datagrams ----------------------------------------------------- */

#define BIG 65000 /* under IPv4's largest payload, 65507 */

static char big[100000];
static int big_got;

static void fill_pattern(char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = (char)(i * 7 + i / 251);
}

static void big_recv(eddy_udp_t *u, ssize_t nread, const eddy_slice_t *buf,
                     const struct sockaddr *addr, unsigned flags) {
  cr_assert(eq(long, (long)nread, (long)BIG), "nread %ld", (long)nread);
  cr_assert(eq(uint, flags, 0), "a whole datagram is not partial");
  cr_assert(eq(int, memcmp(buf->base, big, BIG), 0));
  big_got++;
  close_both(&ua, &ub);
}

EDDY_IO_TEST(udp, udp_65000_byte_datagram_arrives_whole) {
  eddy_loop_t loop;
  eddy_test_loop_init(&loop, *backend);
  eddy_udp_init(&loop, &ua);
  eddy_udp_init(&loop, &ub);
  cr_assert(eq(int, bind_loopback(&ub, AF_INET), 0));
  name_b = name_of(&ub);
  cr_assert(eq(int, eddy_udp_recv_start(&ub, big_recv), 0));
  fill_pattern(big, BIG);
  eddy_buf_t b[2] = {eddy_buf_init(big, 1000),
                     eddy_buf_init(big + 1000, BIG - 1000)};
  cr_assert(eq(
      int,
      eddy_udp_send(&sreq[0], &ua, b, 2, (struct sockaddr *)&name_b, on_sent),
      0));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, big_got, 1));
  cr_assert(eq(int, sent_ok, 1));
  cr_assert(eq(int, eddy_loop_close(&loop), 0));
}

/* IPv4 on loopback cannot carry a datagram bigger than the 64 KB read
 * block, but a Unix datagram socket can, and eddy_udp_open adopts one. */
static int trunc_got;

static void trunc_recv(eddy_udp_t *u, ssize_t nread, const eddy_slice_t *buf,
                       const struct sockaddr *addr, unsigned flags) {
  if (trunc_got++ == 0) {
    cr_assert(eq(long, (long)nread, (long)EDDY__READ_BLOCK));
    cr_assert(eq(uint, flags, EDDY_UDP_PARTIAL));
    cr_assert(eq(int, memcmp(buf->base, big, EDDY__READ_BLOCK), 0));
    return;
  }
  /* The next datagram is whole again: the tail of the first was dropped. */
  cr_assert(eq(long, (long)nread, 3L));
  cr_assert(eq(uint, flags, 0));
  cr_assert(eq(int, memcmp(buf->base, "end", 3), 0));
  eddy_close((eddy_handle_t *)u, NULL);
}

EDDY_IO_TEST(udp, udp_datagram_longer_than_block_is_partial) {
  eddy_loop_t loop;
  int sv[2];
  eddy_test_loop_init(&loop, *backend);
  eddy_udp_init(&loop, &ub);
  cr_assert(eq(int, socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0));
  cr_assert(eq(int, eddy_udp_open(&ub, sv[1]), 0));
  cr_assert(eq(int, eddy_udp_open(&ub, sv[1]), EDDY_EBUSY));
  cr_assert(eq(int, eddy_udp_recv_start(&ub, trunc_recv), 0));
  fill_pattern(big, sizeof big);
  cr_assert(eq(long, (long)send(sv[0], big, sizeof big, 0), (long)sizeof big));
  cr_assert(eq(long, (long)send(sv[0], "end", 3, 0), 3L));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, trunc_got, 2));
  close(sv[0]);
  cr_assert(eq(int, eddy_loop_close(&loop), 0));
}

/* ---- A full socket: sends queue, then go out in order when writable ------ */

/* Loopback UDP never fills a send buffer (the kernel hands each datagram
 * to the receiver at once), so these tests use a connected pair of Unix
 * datagram sockets: there the sender's buffer holds every datagram the
 * peer has not read, so sending until EAGAIN fills it deterministically,
 * and reading on the other end makes it writable again. */
static int fill_socket(eddy_udp_t *u) {
  char f = 'f';
  eddy_buf_t b = eddy_buf_init(&f, 1);
  for (int n = 0; n < 100000; n++) {
    ssize_t r = eddy_udp_try_send(u, &b, 1, NULL);
    if (r == EDDY_EAGAIN)
      return n;
    cr_assert(eq(long, (long)r, 1L), "try_send: %s", eddy_err_name((int)r));
  }
  cr_fatal("the socket never filled");
  return 0;
}

static const char *const queued_text[] = {"q0", "q1", "q2"};
static int queued_cbs, fillers, queued_got;

static void queued_sent(eddy_udp_send_t *req, int status) {
  cr_assert(eq(int, in_send, 0));
  cr_assert(eq(int, status, 0), "send: %s", eddy_err_name(status));
  cr_assert(eq(int, (int)(intptr_t)req->data, queued_cbs), "in order");
  queued_cbs++;
}

static void queued_recv(eddy_udp_t *u, ssize_t nread, const eddy_slice_t *buf,
                        const struct sockaddr *addr, unsigned flags) {
  cr_assert(gt(long, (long)nread, 0L), "recv: %s", eddy_err_name((int)nread));
  if (nread == 1 && buf->base[0] == 'f') {
    cr_assert(eq(int, queued_got, 0), "fillers come first");
    fillers++;
    return;
  }
  cr_assert(eq(long, (long)nread, 2L));
  cr_assert(eq(int, memcmp(buf->base, queued_text[queued_got], 2), 0),
            "queued datagram %d out of order", queued_got);
  if (++queued_got == 3)
    close_both(&ua, &ub);
}

EDDY_IO_TEST(udp, udp_full_socket_queues_sends_until_writable) {
  eddy_loop_t loop;
  int sv[2];
  eddy_test_loop_init(&loop, *backend);
  eddy_udp_init(&loop, &ua);
  eddy_udp_init(&loop, &ub);
  cr_assert(eq(int, socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0));
  cr_assert(eq(int, eddy_udp_open(&ua, sv[0]), 0));
  cr_assert(eq(int, eddy_udp_open(&ub, sv[1]), 0));
  int filled = fill_socket(&ua);
  cr_assert(gt(int, filled, 0));

  for (int i = 0; i < 3; i++) {
    sreq[i].data = (void *)(intptr_t)i;
    cr_assert(eq(
        int, send_text(&sreq[i], &ua, queued_text[i], NULL, queued_sent), 0));
  }
  cr_assert(eq(sz, ua.send_queue_count, (size_t)3));
  cr_assert(eq(sz, ua.send_queue_size, (size_t)6));
  char x = 'x';
  eddy_buf_t b = eddy_buf_init(&x, 1);
  cr_assert(
      eq(long, (long)eddy_udp_try_send(&ua, &b, 1, NULL), (long)EDDY_EAGAIN),
      "queued datagrams go first");
  cr_assert(eq(int, eddy_loop_alive(&loop), 1), "queued sends keep it alive");

  cr_assert(eq(int, eddy_udp_recv_start(&ub, queued_recv), 0));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, fillers, filled));
  cr_assert(eq(int, queued_got, 3));
  cr_assert(eq(int, queued_cbs, 3));
  cr_assert(eq(int, eddy_loop_close(&loop), 0));
}

/* ---- Close: queued sends are cancelled, before close_cb ------------------ */

static char events[16];
static size_t nevents;

static void log_sent(eddy_udp_send_t *req, int status) {
  cr_assert(eq(int, in_send, 0));
  int expect = (int)(intptr_t)req->data;
  cr_assert(eq(int, status, expect), "status %s", eddy_err_name(status));
  events[nevents++] = status == 0 ? 's' : 'c';
}

static void log_closed(eddy_handle_t *h) {
  events[nevents++] = 'C';
}

EDDY_IO_TEST(udp, udp_close_cancels_queued_sends_before_close_cb) {
  eddy_loop_t loop;
  int sv[2];
  eddy_test_loop_init(&loop, *backend);
  eddy_udp_init(&loop, &ua);
  eddy_udp_init(&loop, &ub);
  cr_assert(eq(int, socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0));
  cr_assert(eq(int, eddy_udp_open(&ua, sv[0]), 0));
  fill_socket(&ua);
  for (int i = 0; i < 2; i++) {
    sreq[i].data = (void *)(intptr_t)EDDY_ECANCELED;
    cr_assert(eq(int, send_text(&sreq[i], &ua, "lost", NULL, log_sent), 0));
  }
  cr_assert(eq(sz, ua.send_queue_count, (size_t)2));

  /* A send that went out at once but whose callback still waits for the
   * pending phase hears its real status, also before close_cb. */
  cr_assert(eq(int, bind_loopback(&ub, AF_INET), 0));
  name_b = name_of(&ub);
  sreq[2].data = (void *)(intptr_t)0;
  cr_assert(
      eq(int,
         send_text(&sreq[2], &ub, "sent", (struct sockaddr *)&name_b, log_sent),
         0));

  eddy_close((eddy_handle_t *)&ua, log_closed);
  eddy_close((eddy_handle_t *)&ub, log_closed);
  cr_assert(eq(sz, ua.send_queue_count, (size_t)0));
  cr_assert(eq(sz, nevents, (size_t)0), "no callback inside eddy_close");
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  events[nevents] = '\0';
  cr_assert(eq(str, events, "ccCsC"));
  close(sv[1]);
  cr_assert(eq(int, eddy_loop_close(&loop), 0));
}

/* ---- recv_stop stops delivery; datagrams wait in the socket -------------- */

static int stop_got;
static eddy_timer_t stop_timer;

static void stop_recv(eddy_udp_t *u, ssize_t nread, const eddy_slice_t *buf,
                      const struct sockaddr *addr, unsigned flags) {
  cr_assert(eq(long, (long)nread, 1L));
  cr_assert(eq(int, buf->base[0], '0' + stop_got), "in order");
  if (++stop_got == 1) {
    /* The other two are already readable: none may be delivered now. */
    cr_assert(eq(int, eddy_udp_recv_stop(u), 0));
    cr_assert(eq(int, eddy_is_active((eddy_handle_t *)u), 0));
  } else if (stop_got == 3) {
    close_both(&ua, &ub);
  }
}

static void stop_check(eddy_timer_t *t) {
  cr_assert(eq(int, stop_got, 1), "delivered after recv_stop");
  cr_assert(eq(int, eddy_udp_recv_start(&ub, stop_recv), 0));
  eddy_close((eddy_handle_t *)t, NULL);
}

EDDY_IO_TEST(udp, udp_recv_stop_stops_delivery) {
  eddy_loop_t loop;
  eddy_test_loop_init(&loop, *backend);
  eddy_udp_init(&loop, &ua);
  eddy_udp_init(&loop, &ub);
  eddy_timer_init(&loop, &stop_timer);
  cr_assert(eq(int, bind_loopback(&ub, AF_INET), 0));
  name_b = name_of(&ub);
  cr_assert(eq(int, eddy_is_active((eddy_handle_t *)&ub), 0));
  cr_assert(eq(int, eddy_udp_recv_start(&ub, stop_recv), 0));
  cr_assert(eq(int, eddy_is_active((eddy_handle_t *)&ub), 1));
  static const char *digits[] = {"0", "1", "2"};
  for (int i = 0; i < 3; i++)
    cr_assert(eq(int,
                 send_text(&sreq[i], &ua, digits[i], (struct sockaddr *)&name_b,
                           on_sent),
                 0));
  eddy_timer_start(&stop_timer, stop_check, 50, 0);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, stop_got, 3));
  cr_assert(eq(int, sent_ok, 3));
  cr_assert(eq(int, eddy_loop_close(&loop), 0));
}

/* ---- Connected handles --------------------------------------------------- */

static void connected_recv(eddy_udp_t *u, ssize_t nread,
                           const eddy_slice_t *buf, const struct sockaddr *addr,
                           unsigned flags) {
  cr_assert(eq(long, (long)nread, 2L));
  cr_assert(eq(int, memcmp(buf->base, "hi", 2), 0));
  assert_same_addr(addr, &name_a);
  got_ping++;
  close_both(&ua, &ub);
}

EDDY_IO_TEST(udp, udp_connected_sends_without_address) {
  eddy_loop_t loop;
  struct sockaddr_storage peer;
  eddy_test_loop_init(&loop, *backend);
  eddy_udp_init(&loop, &ua);
  eddy_udp_init(&loop, &ub);
  cr_assert(eq(int, bind_loopback(&ub, AF_INET), 0));
  name_b = name_of(&ub);
  cr_assert(eq(int, eddy_udp_connect(&ua, NULL), EDDY_ENOTCONN));
  cr_assert(eq(int, eddy_udp_connect(&ua, (struct sockaddr *)&name_b), 0));
  cr_assert(
      eq(int, eddy_udp_connect(&ua, (struct sockaddr *)&name_b), EDDY_EISCONN));
  cr_assert(eq(int, eddy_udp_getpeername(&ua, &peer), 0));
  assert_same_addr((struct sockaddr *)&peer, &name_b);
  name_a = name_of(&ua);
  cr_assert(eq(
      int, send_text(&sreq[0], &ua, "hi", (struct sockaddr *)&name_b, on_sent),
      EDDY_EISCONN));
  cr_assert(eq(int, send_text(&sreq[0], &ua, "hi", NULL, on_sent), 0));
  cr_assert(eq(int, eddy_udp_recv_start(&ub, connected_recv), 0));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, got_ping, 1));
  cr_assert(eq(int, sent_ok, 1));
  cr_assert(eq(int, eddy_loop_close(&loop), 0));
}

EDDY_IO_TEST(udp, udp_disconnect_dissolves_the_association) {
  eddy_loop_t loop;
  struct sockaddr_storage peer;
  eddy_test_loop_init(&loop, *backend);
  eddy_udp_init(&loop, &ua);
  cr_assert(eq(int, bind_loopback(&ua, AF_INET), 0));
  name_a = name_of(&ua);
  cr_assert(eq(int, eddy_udp_connect(&ua, (struct sockaddr *)&name_a), 0));
  cr_assert(eq(int, eddy_udp_connect(&ua, NULL), 0));
  cr_assert(eq(int, eddy_udp_getpeername(&ua, &peer), EDDY_ENOTCONN));
  cr_assert(
      eq(int, send_text(&sreq[0], &ua, "hi", NULL, on_sent), EDDY_ENOTCONN));
  eddy_close((eddy_handle_t *)&ua, NULL);
  eddy_test_loop_close(&loop);
}

/* ---- Errors -------------------------------------------------------------- */

static int err_status = 1, err_calls;

static void err_sent(eddy_udp_send_t *req, int status) {
  cr_assert(eq(int, in_send, 0), "send callback inside eddy_udp_send");
  err_status = status;
  err_calls++;
}

EDDY_IO_TEST(udp, udp_bad_arguments_are_einval_and_never_call_back) {
  eddy_loop_t loop;
  struct sockaddr_in a4;
  struct sockaddr_storage other;
  eddy_test_loop_init(&loop, *backend);
  eddy_udp_init(&loop, &ua);
  eddy_ip4_addr("127.0.0.1", 9, &a4);

  /* Not an IPv4 or IPv6 address. */
  memset(&other, 0, sizeof other);
  other.ss_family = AF_UNIX;
  cr_assert(eq(
      int, send_text(&sreq[0], &ua, "x", (struct sockaddr *)&other, err_sent),
      EDDY_EINVAL));
  other.ss_family = AF_UNSPEC;
  cr_assert(eq(
      int, send_text(&sreq[0], &ua, "x", (struct sockaddr *)&other, err_sent),
      EDDY_EINVAL));
  cr_assert(eq(long,
               (long)eddy_udp_try_send(&ua, &(eddy_buf_t){"x", 1}, 1,
                                       (struct sockaddr *)&other),
               (long)EDDY_EINVAL));
  /* No buffers, no request, no address on a handle that is not connected. */
  cr_assert(eq(
      int,
      eddy_udp_send(&sreq[0], &ua, NULL, 0, (struct sockaddr *)&a4, err_sent),
      EDDY_EINVAL));
  cr_assert(eq(int,
               eddy_udp_send(NULL, &ua, &(eddy_buf_t){"x", 1}, 1,
                             (struct sockaddr *)&a4, err_sent),
               EDDY_EINVAL));
  cr_assert(
      eq(int, send_text(&sreq[0], &ua, "x", NULL, err_sent), EDDY_ENOTCONN));
  cr_assert(eq(int, eddy_udp_fd(&ua), EDDY_EBADF), "no socket made");

  /* Bind flags. */
  cr_assert(eq(int, eddy_udp_bind(&ua, (struct sockaddr *)&a4, 1u << 8),
               EDDY_EINVAL));
  cr_assert(eq(int,
               eddy_udp_bind(&ua, (struct sockaddr *)&a4, EDDY_UDP_IPV6ONLY),
               EDDY_EINVAL));
  cr_assert(
      eq(int, eddy_udp_bind(&ua, (struct sockaddr *)&other, 0), EDDY_EINVAL));
  cr_assert(eq(int, eddy_udp_recv_start(&ua, NULL), EDDY_EINVAL));

  /* Options before and after the socket exists. */
  cr_assert(eq(int, eddy_udp_set_ttl(&ua, 64), EDDY_EBADF));
  cr_assert(eq(int, eddy_udp_set_broadcast(&ua, 1), EDDY_EBADF));
  cr_assert(eq(int, bind_loopback(&ua, AF_INET), 0));
  cr_assert(eq(int, eddy_udp_set_ttl(&ua, 0), EDDY_EINVAL));
  cr_assert(eq(int, eddy_udp_set_ttl(&ua, 256), EDDY_EINVAL));
  cr_assert(eq(int, eddy_udp_set_ttl(&ua, 64), 0));
  cr_assert(eq(int, eddy_udp_set_broadcast(&ua, 1), 0));
  cr_assert(eq(int, eddy_udp_set_broadcast(&ua, 0), 0));
  cr_assert(eq(int, bind_loopback(&ua, AF_INET), EDDY_EINVAL), "bound twice");

  /* Sockets that are not datagram sockets are refused. */
  int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  eddy_udp_init(&loop, &ub);
  cr_assert(eq(int, eddy_udp_open(&ub, tcp), EDDY_EINVAL));
  cr_assert(eq(int, eddy_udp_open(&ub, -1), EDDY_EINVAL));
  close(tcp);

  /* The kernel's refusals come as a status, later: an IPv4 datagram over
   * the largest payload. */
  static char huge[70000];
  cr_assert(eq(int,
               eddy_udp_send(&sreq[1], &ua, &(eddy_buf_t){huge, sizeof huge}, 1,
                             (struct sockaddr *)&a4, err_sent),
               0));
  cr_assert(eq(int, err_calls, 0));
  eddy_run(&loop, EDDY_RUN_NOWAIT);
  cr_assert(eq(int, err_calls, 1));
  cr_assert(eq(int, err_status, EDDY_EMSGSIZE), "status %s",
            eddy_err_name(err_status));

  close_both(&ua, &ub);
  eddy_test_loop_close(&loop);
  cr_assert(eq(int, err_calls, 1));
}

EDDY_IO_TEST(udp, udp_reuseaddr_shares_a_port) {
  eddy_loop_t loop;
  eddy_test_loop_init(&loop, *backend);
  eddy_udp_init(&loop, &ua);
  eddy_udp_init(&loop, &ub);
  cr_assert(eq(int, bind_loopback(&ua, AF_INET), 0));
  name_a = name_of(&ua);
  cr_assert(eq(int, eddy_udp_bind(&ub, (struct sockaddr *)&name_a, 0),
               EDDY_EADDRINUSE));
  close_both(&ua, &ub);
  eddy_run(&loop, EDDY_RUN_DEFAULT);

  eddy_udp_init(&loop, &ua);
  eddy_udp_init(&loop, &ub);
  struct sockaddr_in any;
  eddy_ip4_addr("127.0.0.1", 0, &any);
  cr_assert(eq(
      int, eddy_udp_bind(&ua, (struct sockaddr *)&any, EDDY_UDP_REUSEADDR), 0));
  name_a = name_of(&ua);
  cr_assert(eq(
      int, eddy_udp_bind(&ub, (struct sockaddr *)&name_a, EDDY_UDP_REUSEADDR),
      0));
  close_both(&ua, &ub);
  eddy_test_loop_close(&loop);
}

/* After close nothing of the handle runs, even with datagrams waiting. */
static void never_recv(eddy_udp_t *u, ssize_t nread, const eddy_slice_t *buf,
                       const struct sockaddr *addr, unsigned flags) {
  cr_fatal("receive callback after close");
}

EDDY_IO_TEST(udp, udp_close_while_receiving_delivers_nothing) {
  eddy_loop_t loop;
  eddy_test_loop_init(&loop, *backend);
  eddy_udp_init(&loop, &ua);
  eddy_udp_init(&loop, &ub);
  cr_assert(eq(int, bind_loopback(&ub, AF_INET), 0));
  name_b = name_of(&ub);
  cr_assert(eq(int, eddy_udp_recv_start(&ub, never_recv), 0));
  cr_assert(eq(
      int, send_text(&sreq[0], &ua, "x", (struct sockaddr *)&name_b, on_sent),
      0));
  close_both(&ua, &ub);
  eddy_test_loop_close(&loop);
  cr_assert(eq(int, sent_ok, 1));
}

Test(udp, udp_send_on_closed_handle_is_misuse,
     .signal = EDDY_TEST_MISUSE_SIGNAL) {
  eddy_loop_t loop;
  struct sockaddr_in a4;
  cr_assert(eq(int, eddy_loop_init(&loop), 0));
  eddy_udp_init(&loop, &ua);
  eddy_ip4_addr("127.0.0.1", 9, &a4);
  eddy_close((eddy_handle_t *)&ua, NULL);
  int rc = send_text(&sreq[0], &ua, "x", (struct sockaddr *)&a4, on_sent);
  cr_assert(eq(int, rc, EDDY_EINVAL));
  eddy_test_loop_close(&loop);
}
