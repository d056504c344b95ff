/* The emitter: Node's EventEmitter in small.
 *
 * Listeners live in one array in registration order.  eddy_emit copies the
 * event's listeners before calling any (Node copies its array too), so a
 * listener added during an emit waits for the next emit, and one removed
 * during an emit still runs in it.  The copy lives on the stack for up to
 * EDDY__EMIT_STACK listeners, so the common emit does not allocate.
 *
 * A once listener is taken out of the array just before it runs, as Node's
 * onceWrapper does.  Because copies outlive the array entry, "has it run?"
 * cannot be read from the array: a listener removed with eddy_off during an
 * emit must still run (Node), while one that already ran in a re-entrant
 * emit must not.  So each listener gets a process-unique id, and the emits
 * in progress on this thread form a chain of stack frames; when a once
 * listener runs, its copy is marked fired in every frame of the same
 * emitter.  The chain is empty whenever no emit is running, so there is no
 * state to reset.  Listeners must return (no longjmp out of an emit).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define EDDY__EMIT_STACK 8

struct eddy__listener_s {
  char *event; /* our copy */
  eddy_listener_cb cb;
  void *ctx;
  uint64_t id;
  int once;
};

/* A listener as an emit saw it when it began. */
typedef struct {
  eddy_listener_cb cb;
  void *ctx;
  uint64_t id;
  int once;
  int fired; /* a once listener that already ran, in this emit or another */
} eddy__emit_entry_t;

typedef struct eddy__emit_frame_s {
  const eddy_emitter_t *e;
  eddy__emit_entry_t *entries;
  size_t n;
  struct eddy__emit_frame_s *up;
} eddy__emit_frame_t;

/* Emits in progress on this thread, innermost first. */
static __thread eddy__emit_frame_t *eddy__emitting;

/* Listener ids need only be unique per emitter, but an emitter may be used
 * from several threads over its life, so one counter serves all. */
static uint64_t eddy__listener_seq;

void eddy_emitter_init(eddy_emitter_t *e) {
  e->listeners = NULL;
  e->nlisteners = 0;
  e->cap = 0;
}

/* Safe to call twice, or from a listener: an emit in progress still calls
 * the rest of the listeners it copied. */
void eddy_emitter_destroy(eddy_emitter_t *e) {
  if (e == NULL)
    return;
  for (size_t i = 0; i < e->nlisteners; i++)
    free(e->listeners[i].event);
  free(e->listeners);
  eddy_emitter_init(e);
}

static int eddy__listener_add(eddy_emitter_t *e, const char *event,
                              eddy_listener_cb cb, void *ctx, int once) {
  if (e == NULL || event == NULL || cb == NULL)
    return EDDY_EINVAL;
  if (e->nlisteners == e->cap) {
    size_t cap = e->cap == 0 ? 4 : e->cap * 2;
    if (cap > SIZE_MAX / sizeof(*e->listeners))
      return EDDY_ENOMEM;
    struct eddy__listener_s *l =
        realloc(e->listeners, cap * sizeof(*e->listeners));
    if (l == NULL)
      return EDDY_ENOMEM;
    e->listeners = l;
    e->cap = cap;
  }
  char *name = strdup(event);
  if (name == NULL)
    return EDDY_ENOMEM;
  struct eddy__listener_s *l = &e->listeners[e->nlisteners++];
  l->event = name;
  l->cb = cb;
  l->ctx = ctx;
  l->id = __atomic_add_fetch(&eddy__listener_seq, 1, __ATOMIC_RELAXED);
  l->once = once;
  return 0;
}

int eddy_on(eddy_emitter_t *e, const char *event, eddy_listener_cb cb,
            void *ctx) {
  return eddy__listener_add(e, event, cb, ctx, 0);
}

int eddy_once(eddy_emitter_t *e, const char *event, eddy_listener_cb cb,
              void *ctx) {
  return eddy__listener_add(e, event, cb, ctx, 1);
}

static void eddy__listener_remove_at(eddy_emitter_t *e, size_t i) {
  free(e->listeners[i].event);
  memmove(&e->listeners[i], &e->listeners[i + 1],
          (e->nlisteners - i - 1) * sizeof(*e->listeners));
  e->nlisteners--;
}

int eddy_off(eddy_emitter_t *e, const char *event, eddy_listener_cb cb,
             void *ctx) {
  if (e == NULL || event == NULL || cb == NULL)
    return EDDY_EINVAL;
  for (size_t i = e->nlisteners; i-- > 0;) {
    const struct eddy__listener_s *l = &e->listeners[i];
    if (l->cb == cb && l->ctx == ctx && strcmp(l->event, event) == 0) {
      eddy__listener_remove_at(e, i);
      return 0;
    }
  }
  return EDDY_ENOENT;
}

size_t eddy_listener_count(const eddy_emitter_t *e, const char *event) {
  if (e == NULL || event == NULL)
    return 0;
  size_t n = 0;
  for (size_t i = 0; i < e->nlisteners; i++)
    if (strcmp(e->listeners[i].event, event) == 0)
      n++;
  return n;
}

/* A once listener is about to run: no emit may run it again, and it leaves
 * the array unless eddy_off already took it out. */
static void eddy__once_fire(eddy_emitter_t *e, uint64_t id) {
  for (eddy__emit_frame_t *f = eddy__emitting; f != NULL; f = f->up) {
    if (f->e != e)
      continue;
    for (size_t i = 0; i < f->n; i++)
      if (f->entries[i].id == id)
        f->entries[i].fired = 1;
  }
  for (size_t i = 0; i < e->nlisteners; i++) {
    if (e->listeners[i].id == id) {
      eddy__listener_remove_at(e, i);
      return;
    }
  }
}

int eddy_emit(eddy_emitter_t *e, const char *event, void *payload) {
  if (e == NULL || event == NULL)
    return EDDY_EINVAL;
  size_t n = eddy_listener_count(e, event);
  if (n == 0)
    return strcmp(event, "error") == 0 ? EDDY_EUNHANDLED : 0;

  eddy__emit_entry_t stack[EDDY__EMIT_STACK];
  eddy__emit_entry_t *entries = stack;
  if (n > EDDY__EMIT_STACK) {
    entries = malloc(n * sizeof(*entries));
    if (entries == NULL)
      return EDDY_ENOMEM;
  }
  size_t k = 0;
  for (size_t i = 0; i < e->nlisteners; i++) {
    const struct eddy__listener_s *l = &e->listeners[i];
    if (strcmp(l->event, event) == 0)
      entries[k++] = (eddy__emit_entry_t){l->cb, l->ctx, l->id, l->once, 0};
  }

  eddy__emit_frame_t frame = {e, entries, n, eddy__emitting};
  eddy__emitting = &frame;
  int ran = 0;
  for (size_t i = 0; i < n; i++) {
    if (entries[i].fired)
      continue;
    if (entries[i].once)
      eddy__once_fire(e, entries[i].id);
    entries[i].cb(e, event, payload, entries[i].ctx);
    ran++;
  }
  eddy__emitting = frame.up;

  if (entries != stack)
    free(entries);
  return ran;
}

/* Any negative value may be emitted; 0 or a positive one is not an error
 * and is EDDY_EINVAL.  An error nobody received, because nobody listens or
 * the listener copy could not be allocated, is handed back to the caller. */
int eddy_emit_error(eddy_emitter_t *e, int err) {
  if (e == NULL || err >= 0)
    return EDDY_EINVAL;
  int rc = eddy_emit(e, "error", &err);
  return rc == EDDY_EUNHANDLED || rc == EDDY_ENOMEM ? err : 0;
}
