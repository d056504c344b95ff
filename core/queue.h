/* Intrusive circular doubly linked lists, as static inline functions.
 * A list head is an eddy_queue_t that points to itself when empty. */
#ifndef EDDY_QUEUE_H
#define EDDY_QUEUE_H

#include <stddef.h>

#include "eddy.h"

#define eddy__container_of(ptr, type, member)                                 \
  ((type *)((char *)(ptr) - offsetof(type, member)))

static inline void eddy__queue_init(eddy_queue_t *q) {
  q->next = q;
  q->prev = q;
}

static inline int eddy__queue_empty(const eddy_queue_t *q) {
  return q == q->next;
}

static inline eddy_queue_t *eddy__queue_head(const eddy_queue_t *q) {
  return q->next;
}

static inline void eddy__queue_insert_tail(eddy_queue_t *h, eddy_queue_t *q) {
  q->next = h;
  q->prev = h->prev;
  q->prev->next = q;
  h->prev = q;
}

static inline void eddy__queue_insert_head(eddy_queue_t *h, eddy_queue_t *q) {
  q->next = h->next;
  q->prev = h;
  q->next->prev = q;
  h->next = q;
}

/* Unlinks q and leaves it pointing to itself, so removing twice is harmless
 * and eddy__queue_empty(q) tells whether it is linked. */
static inline void eddy__queue_remove(eddy_queue_t *q) {
  q->prev->next = q->next;
  q->next->prev = q->prev;
  eddy__queue_init(q);
}

/* Moves every element of h to the empty list n; h becomes empty. */
static inline void eddy__queue_move(eddy_queue_t *h, eddy_queue_t *n) {
  if (eddy__queue_empty(h)) {
    eddy__queue_init(n);
    return;
  }
  n->next = h->next;
  n->prev = h->prev;
  n->next->prev = n;
  n->prev->next = n;
  eddy__queue_init(h);
}

#endif
