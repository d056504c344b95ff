/* The emitter: Node's EventEmitter semantics. */
#include <string.h>

#include "helpers.h"

/* Listeners append their ctx's first character to a log. */
static char trace[256];
static size_t trace_len;

static void mark(char c) {
  cr_assert(lt(sz, trace_len, sizeof(trace) - 1));
  trace[trace_len++] = c;
  trace[trace_len] = '\0';
}

static void tag_cb(eddy_emitter_t *e, const char *event, void *payload,
                   void *ctx) {
  mark(*(const char *)ctx);
}

static void reset_trace(void) {
  trace[0] = '\0';
  trace_len = 0;
}

TestSuite(emitter, .init = reset_trace);

Test(emitter, listeners_run_in_registration_order) {
  eddy_emitter_t e;
  eddy_emitter_init(&e);
  cr_assert(eq(int, eddy_on(&e, "data", tag_cb, "a"), 0));
  cr_assert(eq(int, eddy_on(&e, "data", tag_cb, "b"), 0));
  cr_assert(eq(int, eddy_on(&e, "end", tag_cb, "x"), 0));
  cr_assert(eq(int, eddy_on(&e, "data", tag_cb, "c"), 0));
  cr_assert(eq(int, eddy_emit(&e, "data", NULL), 3));
  cr_assert(eq(str, trace, "abc"));
  cr_assert(eq(int, eddy_emit(&e, "end", NULL), 1));
  cr_assert(eq(str, trace, "abcx"));
  cr_assert(eq(int, eddy_emit(&e, "nobody", NULL), 0));
  cr_assert(eq(str, trace, "abcx"));
  eddy_emitter_destroy(&e);
}

static struct {
  eddy_emitter_t *e;
  const char *event;
  void *payload;
  void *ctx;
} seen;

static void record_cb(eddy_emitter_t *e, const char *event, void *payload,
                      void *ctx) {
  seen.e = e;
  seen.event = event;
  seen.payload = payload;
  seen.ctx = ctx;
}

Test(emitter, listener_gets_emitter_event_payload_and_ctx) {
  eddy_emitter_t e;
  int payload = 42, ctx = 7;
  eddy_emitter_init(&e);
  cr_assert(eq(int, eddy_on(&e, "data", record_cb, &ctx), 0));
  const char *event = "data";
  cr_assert(eq(int, eddy_emit(&e, event, &payload), 1));
  cr_assert(eq(ptr, seen.e, &e));
  cr_assert(eq(str, (char *)seen.event, "data"));
  cr_assert(eq(ptr, seen.payload, &payload));
  cr_assert(eq(ptr, seen.ctx, &ctx));
  eddy_emitter_destroy(&e);
}

Test(emitter, event_names_are_copied) {
  eddy_emitter_t e;
  char name[16];
  eddy_emitter_init(&e);
  strcpy(name, "data");
  cr_assert(eq(int, eddy_on(&e, name, tag_cb, "a"), 0));
  strcpy(name, "gone");
  cr_assert(eq(sz, eddy_listener_count(&e, "data"), 1));
  cr_assert(eq(sz, eddy_listener_count(&e, "gone"), 0));
  cr_assert(eq(int, eddy_emit(&e, "data", NULL), 1));
  cr_assert(eq(str, trace, "a"));
  eddy_emitter_destroy(&e);
}

Test(emitter, listener_count_counts_one_event) {
  eddy_emitter_t e;
  eddy_emitter_init(&e);
  cr_assert(eq(sz, eddy_listener_count(&e, "data"), 0));
  eddy_on(&e, "data", tag_cb, "a");
  eddy_once(&e, "data", tag_cb, "b");
  eddy_on(&e, "end", tag_cb, "c");
  cr_assert(eq(sz, eddy_listener_count(&e, "data"), 2));
  cr_assert(eq(sz, eddy_listener_count(&e, "end"), 1));
  cr_assert(eq(sz, eddy_listener_count(&e, "dat"), 0));
  eddy_emitter_destroy(&e);
  cr_assert(eq(sz, eddy_listener_count(&e, "data"), 0));
}

Test(emitter, once_listener_runs_once) {
  eddy_emitter_t e;
  eddy_emitter_init(&e);
  cr_assert(eq(int, eddy_once(&e, "data", tag_cb, "o"), 0));
  cr_assert(eq(int, eddy_on(&e, "data", tag_cb, "a"), 0));
  cr_assert(eq(int, eddy_emit(&e, "data", NULL), 2));
  cr_assert(eq(int, eddy_emit(&e, "data", NULL), 1));
  cr_assert(eq(str, trace, "oaa"));
  cr_assert(eq(sz, eddy_listener_count(&e, "data"), 1));
  eddy_emitter_destroy(&e);
}

/* Node's onceWrapper removes the listener before calling it. */
static size_t count_inside;

static void count_cb(eddy_emitter_t *e, const char *event, void *payload,
                     void *ctx) {
  count_inside = eddy_listener_count(e, event);
}

Test(emitter, once_listener_is_removed_before_it_runs) {
  eddy_emitter_t e;
  eddy_emitter_init(&e);
  eddy_once(&e, "data", count_cb, NULL);
  count_inside = 99;
  cr_assert(eq(int, eddy_emit(&e, "data", NULL), 1));
  cr_assert(eq(sz, count_inside, 0));
  eddy_emitter_destroy(&e);
}

Test(emitter, same_once_listener_twice_runs_twice_then_never) {
  eddy_emitter_t e;
  eddy_emitter_init(&e);
  eddy_once(&e, "data", tag_cb, "o");
  eddy_once(&e, "data", tag_cb, "o");
  cr_assert(eq(int, eddy_emit(&e, "data", NULL), 2));
  cr_assert(eq(int, eddy_emit(&e, "data", NULL), 0));
  cr_assert(eq(str, trace, "oo"));
  eddy_emitter_destroy(&e);
}

Test(emitter, off_removes_most_recent_match) {
  eddy_emitter_t e;
  static const char a[] = "a", b[] = "b";
  eddy_emitter_init(&e);
  eddy_on(&e, "data", tag_cb, (void *)a);
  eddy_on(&e, "data", tag_cb, (void *)b);
  eddy_on(&e, "data", tag_cb, (void *)a);
  cr_assert(eq(int, eddy_off(&e, "data", tag_cb, (void *)a), 0));
  /* The later "a" went: the earlier one still runs before "b". */
  cr_assert(eq(int, eddy_emit(&e, "data", NULL), 2));
  cr_assert(eq(str, trace, "ab"));
  eddy_emitter_destroy(&e);
}

Test(emitter, off_matches_event_cb_and_ctx) {
  eddy_emitter_t e;
  static const char a[] = "a", b[] = "b";
  eddy_emitter_init(&e);
  eddy_on(&e, "data", tag_cb, (void *)a);
  cr_assert(eq(int, eddy_off(&e, "end", tag_cb, (void *)a), EDDY_ENOENT));
  cr_assert(eq(int, eddy_off(&e, "data", tag_cb, (void *)b), EDDY_ENOENT));
  cr_assert(eq(int, eddy_off(&e, "data", record_cb, (void *)a), EDDY_ENOENT));
  cr_assert(eq(int, eddy_off(&e, "data", tag_cb, (void *)a), 0));
  cr_assert(eq(int, eddy_off(&e, "data", tag_cb, (void *)a), EDDY_ENOENT));
  cr_assert(eq(int, eddy_emit(&e, "data", NULL), 0));
  eddy_emitter_destroy(&e);
}

Test(emitter, off_removes_once_listener) {
  eddy_emitter_t e;
  eddy_emitter_init(&e);
  eddy_once(&e, "data", tag_cb, "o");
  cr_assert(eq(int, eddy_off(&e, "data", tag_cb, "o"), 0));
  cr_assert(eq(int, eddy_emit(&e, "data", NULL), 0));
  cr_assert(eq(str, trace, ""));
  eddy_emitter_destroy(&e);
}

Test(emitter, error_without_listener_is_unhandled) {
  eddy_emitter_t e;
  eddy_emitter_init(&e);
  eddy_on(&e, "data", tag_cb, "a");
  cr_assert(eq(int, eddy_emit(&e, "error", NULL), EDDY_EUNHANDLED));
  cr_assert(eq(int, eddy_emit_error(&e, EDDY_ECONNRESET), EDDY_ECONNRESET));
  cr_assert(eq(str, trace, ""));
  eddy_emitter_destroy(&e);
}

static int error_seen;

static void error_cb(eddy_emitter_t *e, const char *event, void *payload,
                     void *ctx) {
  error_seen = *(int *)payload;
}

Test(emitter, emit_error_with_listener_delivers_code) {
  eddy_emitter_t e;
  eddy_emitter_init(&e);
  eddy_on(&e, "error", error_cb, NULL);
  cr_assert(eq(int, eddy_emit_error(&e, EDDY_EPIPE), 0));
  cr_assert(eq(int, error_seen, EDDY_EPIPE));
  int err = EDDY_EIO;
  cr_assert(eq(int, eddy_emit(&e, "error", &err), 1));
  cr_assert(eq(int, error_seen, EDDY_EIO));
  eddy_emitter_destroy(&e);
}

/* A listener that adds another: the new one waits for the next emit. */
static void adder_cb(eddy_emitter_t *e, const char *event, void *payload,
                     void *ctx) {
  mark('A');
  cr_assert(eq(int, eddy_on(e, event, tag_cb, "n"), 0));
}

Test(emitter, listener_added_during_emit_runs_next_time) {
  eddy_emitter_t e;
  eddy_emitter_init(&e);
  eddy_once(&e, "data", adder_cb, NULL);
  eddy_on(&e, "data", tag_cb, "b");
  cr_assert(eq(int, eddy_emit(&e, "data", NULL), 2));
  cr_assert(eq(str, trace, "Ab"));
  cr_assert(eq(int, eddy_emit(&e, "data", NULL), 2));
  cr_assert(eq(str, trace, "Abbn"));
  eddy_emitter_destroy(&e);
}

/* A listener that removes the ones after it: they still run this time. */
static void remover_cb(eddy_emitter_t *e, const char *event, void *payload,
                       void *ctx) {
  mark('R');
  cr_assert(eq(int, eddy_off(e, event, tag_cb, "b"), 0));
  cr_assert(eq(int, eddy_off(e, event, tag_cb, "o"), 0));
}

Test(emitter, listener_removed_during_emit_still_runs_that_time) {
  eddy_emitter_t e;
  eddy_emitter_init(&e);
  eddy_on(&e, "data", remover_cb, NULL);
  eddy_on(&e, "data", tag_cb, "b");
  eddy_once(&e, "data", tag_cb, "o");
  cr_assert(eq(int, eddy_emit(&e, "data", NULL), 3));
  cr_assert(eq(str, trace, "Rbo"));
  cr_assert(eq(sz, eddy_listener_count(&e, "data"), 1));
  eddy_emitter_destroy(&e);
}

/* Emits the same event again from inside, once. */
static int inner_ran;

static void reenter_cb(eddy_emitter_t *e, const char *event, void *payload,
                       void *ctx) {
  static int depth;
  mark('R');
  if (depth == 0) {
    depth++;
    inner_ran = eddy_emit(e, event, payload);
    depth--;
  }
}

Test(emitter, once_runs_once_under_reentrant_emit) {
  eddy_emitter_t e;
  eddy_emitter_init(&e);
  eddy_on(&e, "data", reenter_cb, NULL);
  eddy_once(&e, "data", tag_cb, "o");
  eddy_on(&e, "data", tag_cb, "b");
  /* Outer R; inner R o b; outer skips o (it ran), then b. */
  cr_assert(eq(int, eddy_emit(&e, "data", NULL), 2));
  cr_assert(eq(int, inner_ran, 3));
  cr_assert(eq(str, trace, "RRobb"));
  cr_assert(eq(sz, eddy_listener_count(&e, "data"), 2));
  eddy_emitter_destroy(&e);
}

/* More than fit in the emit's stack copy. */
Test(emitter, many_listeners_keep_order) {
  static const char tags[] = "abcdefghijklmnopqrstuvwxyz";
  eddy_emitter_t e;
  eddy_emitter_init(&e);
  for (size_t i = 0; i < 20; i++) {
    if (i == 3)
      eddy_on(&e, "data", adder_cb, NULL);
    cr_assert(eq(int, eddy_on(&e, "data", tag_cb, (void *)&tags[i]), 0));
  }
  cr_assert(eq(int, eddy_emit(&e, "data", NULL), 21));
  cr_assert(eq(str, trace, "abcAdefghijklmnopqrst"));
  cr_assert(eq(sz, eddy_listener_count(&e, "data"), 22));
  eddy_emitter_destroy(&e);
}

static void destroyer_cb(eddy_emitter_t *e, const char *event, void *payload,
                         void *ctx) {
  mark('D');
  eddy_emitter_destroy(e);
}

Test(emitter, destroy_inside_listener_finishes_the_emit) {
  eddy_emitter_t e;
  eddy_emitter_init(&e);
  eddy_on(&e, "data", destroyer_cb, NULL);
  eddy_once(&e, "data", tag_cb, "o");
  eddy_on(&e, "data", tag_cb, "b");
  cr_assert(eq(int, eddy_emit(&e, "data", NULL), 3));
  cr_assert(eq(str, trace, "Dob"));
  cr_assert(eq(sz, eddy_listener_count(&e, "data"), 0));
  /* A destroyed emitter can be used again. */
  cr_assert(eq(int, eddy_on(&e, "data", tag_cb, "a"), 0));
  cr_assert(eq(int, eddy_emit(&e, "data", NULL), 1));
  eddy_emitter_destroy(&e);
  eddy_emitter_destroy(&e);
}

Test(emitter, invalid_arguments_are_einval) {
  eddy_emitter_t e;
  eddy_emitter_init(&e);
  cr_assert(eq(int, eddy_on(NULL, "data", tag_cb, NULL), EDDY_EINVAL));
  cr_assert(eq(int, eddy_on(&e, NULL, tag_cb, NULL), EDDY_EINVAL));
  cr_assert(eq(int, eddy_on(&e, "data", NULL, NULL), EDDY_EINVAL));
  cr_assert(eq(int, eddy_once(&e, "data", NULL, NULL), EDDY_EINVAL));
  cr_assert(eq(int, eddy_off(&e, NULL, tag_cb, NULL), EDDY_EINVAL));
  cr_assert(eq(int, eddy_emit(NULL, "data", NULL), EDDY_EINVAL));
  cr_assert(eq(int, eddy_emit(&e, NULL, NULL), EDDY_EINVAL));
  cr_assert(eq(int, eddy_emit_error(NULL, EDDY_EIO), EDDY_EINVAL));
  cr_assert(eq(int, eddy_emit_error(&e, 0), EDDY_EINVAL));
  cr_assert(eq(sz, eddy_listener_count(NULL, "data"), 0));
  cr_assert(eq(sz, eddy_listener_count(&e, "data"), 0));
  eddy_emitter_destroy(&e);
}
