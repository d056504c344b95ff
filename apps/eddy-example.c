/* The README's example: a timer and a pool job on one loop. */
#include <eddy.h>
#include <stdio.h>

static void work(eddy_work_t *req) { *(long *)req->data = 6 * 7; } /* pool thread */
static void done(eddy_work_t *req, int status) {                   /* loop thread */
  printf("pool job %s: %ld\n", status ? eddy_strerror(status) : "done", *(long *)req->data);
}
static void tick(eddy_timer_t *t) {
  printf("timer fired after %llu ms\n", (unsigned long long)eddy_timer_get_repeat(t));
  eddy_close((eddy_handle_t *)t, NULL);
}

int main(void) {
  eddy_loop_t loop;
  eddy_timer_t timer;
  eddy_work_t req;
  long answer = 0;
  eddy_loop_init(&loop);
  eddy_timer_init(&loop, &timer);
  eddy_timer_start(&timer, tick, 50, 50);
  req.data = &answer;
  eddy_queue_work(&loop, &req, EDDY_WORK_FAST, work, done);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  return eddy_loop_close(&loop);
}
