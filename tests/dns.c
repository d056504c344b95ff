/* getaddrinfo on the pool: names that need no network (localhost, numeric
 * addresses, RFC 6761's .invalid), error mapping, the synchronous form,
 * cancellation, the slow work class, the loop thread. */
#include <arpa/inet.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>

#include "helpers.h"
#include "internal.h"
#include "pool.h"

TestSuite(dns, .timeout = 60);

static pthread_t loop_thread;
static int calls, last_status = 1;
static struct addrinfo *last_res;

static void on_resolved(eddy_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  cr_assert(pthread_equal(pthread_self(), loop_thread),
            "callback off the loop thread");
  cr_assert(eq(ptr, res, req->addrinfo));
  calls++;
  last_status = status;
  last_res = res;
}

static int is_loopback(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
  }
  if (sa->sa_family == AF_INET6)
    return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
  return 0;
}

/* Starts a lookup, runs the loop, and checks it called back once. */
static int resolve(eddy_loop_t *loop, const char *node, const char *service,
                   const struct addrinfo *hints) {
  eddy_getaddrinfo_t req;
  calls = 0;
  last_status = 1;
  last_res = NULL;
  int rc = eddy_getaddrinfo(loop, &req, on_resolved, node, service, hints);
  cr_assert(eq(int, rc, 0), "eddy_getaddrinfo(%s): %s", node,
            eddy_err_name(rc));
  cr_assert(eq(int, calls, 0), "callback inside the call");
  eddy_run(loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, calls, 1));
  if (last_status == 0)
    cr_assert(eq(int, req.gai_error, 0));
  else
    cr_assert(ne(int, req.gai_error, 0));
  return last_status;
}

EDDY_IO_TEST(dns, dns_localhost_is_loopback_on_loop_thread) {
  eddy_loop_t loop;
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
  eddy_test_loop_init(&loop, *backend);
  loop_thread = pthread_self();
  int status = resolve(&loop, "localhost", "80", &hints);
  cr_assert(eq(int, status, 0), "localhost: %s", eddy_err_name(status));
  cr_assert(last_res != NULL);
  for (struct addrinfo *ai = last_res; ai != NULL; ai = ai->ai_next) {
    cr_assert(is_loopback(ai->ai_addr), "localhost is not loopback");
    cr_assert(eq(int, ai->ai_socktype, SOCK_STREAM), "hints were used");
  }
  eddy_freeaddrinfo(last_res);
  eddy_test_loop_close(&loop);
}

EDDY_IO_TEST(dns, dns_numeric_addresses_resolve_to_themselves) {
  eddy_loop_t loop;
  struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                           .ai_socktype = SOCK_DGRAM};
  char name[64];
  eddy_test_loop_init(&loop, *backend);
  loop_thread = pthread_self();

  cr_assert(eq(int, resolve(&loop, "127.0.0.1", "5353", &hints), 0));
  cr_assert(last_res != NULL && last_res->ai_family == AF_INET);
  cr_assert(eq(int, eddy_addr_name(last_res->ai_addr, name, sizeof name), 0));
  cr_assert(eq(str, name, "127.0.0.1:5353"));
  cr_assert(eq(ptr, last_res->ai_next, NULL), "one socket type, one entry");
  eddy_freeaddrinfo(last_res);

  cr_assert(eq(int, resolve(&loop, "::1", NULL, &hints), 0));
  cr_assert(last_res != NULL && last_res->ai_family == AF_INET6);
  cr_assert(eq(int, eddy_addr_name(last_res->ai_addr, name, sizeof name), 0));
  cr_assert(eq(str, name, "[::1]:0"));
  eddy_freeaddrinfo(last_res);

  /* A name is not a number. */
  cr_assert(eq(int, resolve(&loop, "localhost", NULL, &hints), EDDY_ENOENT));
  cr_assert(eq(ptr, last_res, NULL));
  eddy_test_loop_close(&loop);
}

/* RFC 6761: names under .invalid never resolve.  Without a resolver the
 * answer is EAI_AGAIN instead; both are fine.  The trailing dot keeps the
 * search list out of it. */
EDDY_IO_TEST(dns, dns_invalid_tld_is_enoent_or_eagain) {
  eddy_loop_t loop;
  struct addrinfo hints = {.ai_family = AF_INET};
  eddy_test_loop_init(&loop, *backend);
  loop_thread = pthread_self();
  int status = resolve(&loop, "eddy-test.invalid.", NULL, &hints);
  cr_assert(status == EDDY_ENOENT || status == EDDY_EAGAIN, "got %s",
            eddy_err_name(status));
  cr_assert(eq(ptr, last_res, NULL));
  eddy_test_loop_close(&loop);
}

EDDY_IO_TEST(dns, dns_bad_service_family_or_flags_are_einval) {
  eddy_loop_t loop;
  struct addrinfo hints = {.ai_flags = AI_NUMERICHOST,
                           .ai_socktype = SOCK_DGRAM};
  eddy_test_loop_init(&loop, *backend);
  loop_thread = pthread_self();
  cr_assert(eq(int, resolve(&loop, "127.0.0.1", "eddy-no-such-service", &hints),
               EDDY_EINVAL));
  cr_assert(eq(int,
               resolve(&loop, "127.0.0.1", "http",
                       &(struct addrinfo){.ai_flags = AI_NUMERICHOST,
                                          .ai_socktype = SOCK_RAW}),
               EDDY_EINVAL),
            "a service for a raw socket");
  cr_assert(eq(
      int,
      resolve(&loop, "127.0.0.1", NULL, &(struct addrinfo){.ai_family = 12345}),
      EDDY_EINVAL));
  cr_assert(eq(int,
               resolve(&loop, "127.0.0.1", NULL,
                       &(struct addrinfo){.ai_flags = 0x7fff0000}),
               EDDY_EINVAL));
  eddy_test_loop_close(&loop);
}

static void never_called(eddy_getaddrinfo_t *req, int status,
                         struct addrinfo *res) {
  cr_fatal("callback of a refused call");
}

Test(dns, dns_refused_calls_never_call_back) {
  eddy_loop_t loop;
  eddy_getaddrinfo_t req;
  cr_assert(eq(int, eddy_loop_init(&loop), 0));
  cr_assert(eq(int,
               eddy_getaddrinfo(&loop, &req, never_called, NULL, NULL, NULL),
               EDDY_EINVAL));
  cr_assert(eq(
      int, eddy_getaddrinfo(NULL, &req, never_called, "localhost", NULL, NULL),
      EDDY_EINVAL));
  cr_assert(eq(
      int, eddy_getaddrinfo(&loop, NULL, never_called, "localhost", NULL, NULL),
      EDDY_EINVAL));
  cr_assert(eq(int, eddy_getaddrinfo_cancel(NULL), EDDY_EINVAL));
  eddy_freeaddrinfo(NULL);
  eddy_test_loop_close(&loop);
}

/* cb NULL: on the caller's thread, the status returned, the list in
 * req->addrinfo, and no pool thread started for it. */
Test(dns, dns_without_callback_runs_synchronously) {
  eddy_loop_t loop;
  eddy_getaddrinfo_t req;
  struct addrinfo hints = {.ai_flags = AI_NUMERICHOST,
                           .ai_family = AF_INET,
                           .ai_socktype = SOCK_STREAM};
  char name[64];
  cr_assert(eq(int, eddy_loop_init(&loop), 0));
  cr_assert(eq(int,
               eddy_getaddrinfo(&loop, &req, NULL, "127.0.0.1", "8080", &hints),
               0));
  cr_assert(req.addrinfo != NULL);
  cr_assert(
      eq(int, eddy_addr_name(req.addrinfo->ai_addr, name, sizeof name), 0));
  cr_assert(eq(str, name, "127.0.0.1:8080"));
  eddy_freeaddrinfo(req.addrinfo);

  cr_assert(
      eq(int, eddy_getaddrinfo(&loop, &req, NULL, "not-a-number", NULL, &hints),
         EDDY_ENOENT));
  cr_assert(eq(ptr, req.addrinfo, NULL));
  cr_assert(eq(int, req.gai_error, EAI_NONAME));
  cr_assert(eq(int, eddy_getaddrinfo_cancel(&req), EDDY_EINVAL),
            "nothing queued");
  cr_assert(eq(sz, eddy__pool_threads(), (size_t)0));
  cr_assert(eq(int, eddy_loop_alive(&loop), 0));
  eddy_test_loop_close(&loop);
}

/* Every request calls back once, whatever the order they finish in. */
#define MANY 64

static int many_calls[MANY];

static void many_resolved(eddy_getaddrinfo_t *req, int status,
                          struct addrinfo *res) {
  cr_assert(pthread_equal(pthread_self(), loop_thread));
  cr_assert(eq(int, status, 0), "%s", eddy_err_name(status));
  const struct sockaddr_in *a = (const struct sockaddr_in *)res->ai_addr;
  cr_assert(eq(int, ntohs(a->sin_port), (int)(intptr_t)req->data));
  many_calls[(intptr_t)req->data]++;
  eddy_freeaddrinfo(res);
}

EDDY_IO_TEST(dns, dns_many_lookups_each_call_back_once) {
  eddy_loop_t loop;
  static eddy_getaddrinfo_t reqs[MANY];
  struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
                           .ai_family = AF_INET,
                           .ai_socktype = SOCK_DGRAM};
  eddy_test_loop_init(&loop, *backend);
  loop_thread = pthread_self();
  for (int i = 0; i < MANY; i++) {
    char port[8];
    snprintf(port, sizeof port, "%d", i);
    reqs[i].data = (void *)(intptr_t)i;
    /* The strings are copied: port goes out of scope at once. */
    cr_assert(eq(int,
                 eddy_getaddrinfo(&loop, &reqs[i], many_resolved, "127.0.0.1",
                                  port, &hints),
                 0));
  }
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  for (int i = 0; i < MANY; i++)
    cr_assert(eq(int, many_calls[i], 1), "request %d", i);
  eddy_test_loop_close(&loop);
}

/* ---- The pool: cancellation and the slow class --------------------------- */

static sem_t blocker_started, blocker_release;
static int blocker_calls;

static void sem_wait_all(sem_t *s) {
  while (sem_wait(s) != 0)
    ;
}

static void blocker_work(eddy_work_t *req) {
  sem_post(&blocker_started);
  sem_wait_all(&blocker_release);
}

static void blocker_after(eddy_work_t *req, int status) {
  cr_assert(eq(int, status, 0));
  blocker_calls++;
}

/* Occupies a pool thread with work of class cls until blocker_release. */
static void block_a_thread(eddy_loop_t *loop, eddy_work_t *w,
                           eddy_work_class cls) {
  cr_assert(eq(int, sem_init(&blocker_started, 0, 0), 0));
  cr_assert(eq(int, sem_init(&blocker_release, 0, 0), 0));
  cr_assert(
      eq(int, eddy_queue_work(loop, w, cls, blocker_work, blocker_after), 0));
  sem_wait_all(&blocker_started);
}

EDDY_IO_TEST(dns, dns_cancel_gives_ecanceled_and_no_result) {
  setenv("EDDY_THREADPOOL_SIZE", "1", 1);
  eddy_loop_t loop;
  eddy_work_t blocker;
  eddy_getaddrinfo_t req;
  eddy_test_loop_init(&loop, *backend);
  loop_thread = pthread_self();
  block_a_thread(&loop, &blocker, EDDY_WORK_FAST);

  cr_assert(eq(
      int, eddy_getaddrinfo(&loop, &req, on_resolved, "localhost", NULL, NULL),
      0));
  cr_assert(eq(int, eddy_getaddrinfo_cancel(&req), 0));
  cr_assert(eq(int, eddy_getaddrinfo_cancel(&req), EDDY_EBUSY));
  cr_assert(eq(int, calls, 0), "the callback comes from the loop, later");

  sem_post(&blocker_release);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, calls, 1));
  cr_assert(eq(int, last_status, EDDY_ECANCELED));
  cr_assert(eq(ptr, last_res, NULL));
  cr_assert(eq(int, blocker_calls, 1));
  cr_assert(eq(int, eddy_getaddrinfo_cancel(&req), EDDY_EBUSY), "done");
  eddy_test_loop_close(&loop);
}

/* With two threads, slow work may use one: while a slow job holds it, a
 * lookup waits and fast work still runs on the other thread. */
static int fast_calls;

static void fast_noop(eddy_work_t *req) {}

static void fast_after(eddy_work_t *req, int status) {
  cr_assert(eq(int, calls, 0), "the lookup ran beside slow work");
  fast_calls++;
  sem_post(&blocker_release);
}

EDDY_IO_TEST(dns, dns_lookup_is_slow_work) {
  setenv("EDDY_THREADPOOL_SIZE", "2", 1);
  eddy_loop_t loop;
  eddy_work_t blocker, fast;
  eddy_getaddrinfo_t req;
  struct addrinfo hints = {.ai_flags = AI_NUMERICHOST};
  eddy_test_loop_init(&loop, *backend);
  loop_thread = pthread_self();
  block_a_thread(&loop, &blocker, EDDY_WORK_SLOW);

  cr_assert(
      eq(int,
         eddy_getaddrinfo(&loop, &req, on_resolved, "127.0.0.1", NULL, &hints),
         0));
  cr_assert(eq(
      int, eddy_queue_work(&loop, &fast, EDDY_WORK_FAST, fast_noop, fast_after),
      0));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, fast_calls, 1));
  cr_assert(eq(int, blocker_calls, 1));
  cr_assert(eq(int, calls, 1));
  cr_assert(eq(int, last_status, 0));
  eddy_freeaddrinfo(last_res);
  eddy_test_loop_close(&loop);
}
