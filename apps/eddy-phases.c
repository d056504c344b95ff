/* eddy-phases: watch the loop's phases live.
 *
 * First it replays the seed's Node example (timers, next ticks and
 * microtasks) and prints Node's order; then it shows that a zero timer and
 * a check handle started in an IO callback run check first; then, once a
 * second, a timer queues a pool job whose completion starts a check handle
 * and closes a handle, so each line shows the phase it ran in.  Ctrl-C
 * (SIGINT) or SIGTERM stops it cleanly. */
#include <eddy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static eddy_loop_t loop;
static char seed_out[64];

static void say(const char *what) {
  printf("  [%-7s] %s\n", eddy_phase_name(eddy_loop_phase(&loop)), what);
  fflush(stdout);
}

/* ---- 1. The seed's example ----------------------------------------------- */

static void out(void *arg) {
  char num[8];
  snprintf(num, sizeof num, "%d ", (int)(intptr_t)arg);
  strcat(seed_out, num);
}

static void seed_timer(eddy_timer_t *t) {
  int first = t->handle.data != NULL;
  out((void *)(intptr_t)(first ? 2 : 9));
  eddy_next_tick(&loop, out, (void *)(intptr_t)(first ? 3 : 10));
  out((void *)(intptr_t)(first ? 4 : 11));
  eddy_queue_microtask(&loop, out, (void *)(intptr_t)(first ? 5 : 12));
  eddy_close((eddy_handle_t *)t, NULL);
}

static void seed_example(void) {
  eddy_timer_t t1, t2;
  printf("1. The seed's example: setTimeout, process.nextTick, Promise\n");
  out((void *)1);
  eddy_timer_init(&loop, &t1);
  t1.handle.data = &t1;
  eddy_timer_start(&t1, seed_timer, 0, 0);
  out((void *)7);
  eddy_queue_microtask(&loop, out, (void *)8);
  eddy_next_tick(&loop, out, (void *)6);
  eddy_timer_init(&loop, &t2);
  eddy_timer_start(&t2, seed_timer, 0, 0);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  printf("   eddy prints: %s\n   Node 20:     1 7 6 8 2 4 3 5 9 11 10 12\n\n",
         seed_out);
}

/* ---- 2. Inside an IO callback, check runs before a zero timer ------------ */

static eddy_timer_t io_timer;
static eddy_check_t io_check;

static void io_timer_cb(eddy_timer_t *t) {
  say("setTimeout(0) from the IO callback");
  eddy_close((eddy_handle_t *)t, NULL);
}

static void io_check_cb(eddy_check_t *c) {
  say("setImmediate from the IO callback");
  eddy_close((eddy_handle_t *)c, NULL);
}

static void nothing(eddy_work_t *req) {}

static void io_done(eddy_work_t *req, int status) {
  say("pool job done: start a zero timer, then a check handle");
  eddy_timer_init(&loop, &io_timer);
  eddy_timer_start(&io_timer, io_timer_cb, 0, 0);
  eddy_check_init(&loop, &io_check);
  eddy_check_start(&io_check, io_check_cb);
}

static void immediate_vs_timeout(void) {
  static eddy_work_t req;
  printf("2. In an IO callback, setImmediate runs before setTimeout(0)\n");
  eddy_queue_work(&loop, &req, EDDY_WORK_FAST, nothing, io_done);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  printf("\n");
}

/* ---- 3. Live: one round of every phase each second ----------------------- */

static eddy_timer_t ticker;
static eddy_signal_t sigint, sigterm;
static long rounds, max_rounds;

static void closed(eddy_handle_t *h) {
  say("close callback");
  free(h);
}

static void round_check(eddy_check_t *c) {
  say("check handle; closing it");
  eddy_close((eddy_handle_t *)c, closed);
}

static void round_done(eddy_work_t *req, int status) {
  say("pool job completed (eventfd completion queue)");
  eddy_check_t *c = malloc(sizeof *c);
  if (c == NULL)
    return;
  eddy_check_init(&loop, c);
  eddy_check_start(c, round_check);
  free(req);
}

static void shutdown_all(void) {
  eddy_close((eddy_handle_t *)&ticker, NULL);
  eddy_close((eddy_handle_t *)&sigint, NULL);
  eddy_close((eddy_handle_t *)&sigterm, NULL);
}

static void tick(eddy_timer_t *t) {
  char msg[64];
  snprintf(msg, sizeof msg, "timer, round %ld: queue a pool job", ++rounds);
  printf("round %ld\n", rounds);
  say(msg);
  eddy_work_t *req = malloc(sizeof *req);
  if (req != NULL && eddy_queue_work(&loop, req, EDDY_WORK_FAST, nothing,
                                     round_done) != 0)
    free(req);
  if (max_rounds > 0 && rounds >= max_rounds)
    shutdown_all();
}

static void on_signal(eddy_signal_t *s, int signum) {
  say(signum == SIGINT ? "SIGINT: closing everything"
                       : "SIGTERM: closing everything");
  shutdown_all();
}

static void live(void) {
  printf("3. Live, once a second (Ctrl-C to stop)\n");
  eddy_timer_init(&loop, &ticker);
  eddy_timer_start(&ticker, tick, 0, 1000);
  eddy_signal_init(&loop, &sigint);
  eddy_signal_start(&sigint, on_signal, SIGINT);
  eddy_signal_init(&loop, &sigterm);
  eddy_signal_start(&sigterm, on_signal, SIGTERM);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      max_rounds = atol(argv[++i]);
    } else {
      printf("usage: %s [--rounds N]\n\n"
             "Shows eddy's loop phases live: the seed's Node example, check\n"
             "before a zero timer inside an IO callback, then one round of\n"
             "timer -> pool -> check -> close each second, N rounds (default:\n"
             "until SIGINT or SIGTERM).  EDDY_BACKEND=epoll|io_uring picks\n"
             "the backend.\n", argv[0]);
      return strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  int err = eddy_loop_init(&loop);
  if (err != 0) {
    fprintf(stderr, "eddy-phases: %s\n", eddy_strerror(err));
    return 1;
  }
  printf("eddy on %s, %u pool threads\n\n", eddy_backend_name(&loop),
         eddy_threadpool_size());
  seed_example();
  immediate_vs_timeout();
  live();
  err = eddy_loop_close(&loop);
  if (err != 0)
    fprintf(stderr, "eddy-phases: loop close: %s\n", eddy_err_name(err));
  return err != 0;
}
