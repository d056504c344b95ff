/* Response bytes on their way out.
 *
 * Bytes are copied into 4 KB slab chunks; up to four chunks make a batch,
 * which leaves in one eddy_write.  The response at the front of a
 * connection's queue appends to the connection's batches; a later one
 * appends to its own until it reaches the front (pipelining: answers go out
 * in request order).  The connection flushes once per read callback, or
 * once per tick when a response is written from elsewhere, so the answers
 * to all the requests of one read leave in one write. */
#include <string.h>

#include "net/http/internal.h"

static eddy__http_out_t *target(eddy__http_exch_t *e) {
  return e->conn->first == e ? &e->conn->out : &e->out;
}

static eddy__http_batch_t *tail_batch(eddy_http_server_t *srv,
                                      eddy__http_out_t *o) {
  eddy__http_batch_t *b = o->tail;
  if (b != NULL && b->n < EDDY__HTTP_BATCH_CHUNKS && b->file_fd < 0)
    return b;
  b = eddy__http_batch_get(srv);
  if (b == NULL)
    return NULL;
  b->file_fd = -1;
  b->file_len = 0;
  b->file_cb = NULL;
  if (o->tail != NULL)
    o->tail->next = b;
  else
    o->head = b;
  o->tail = b;
  return b;
}

/* n contiguous bytes at the end of e's output, to be filled now. */
char *eddy__http_reserve(eddy__http_exch_t *e, size_t n) {
  eddy__http_out_t *o = target(e);
  eddy__http_batch_t *b = o->tail;
  if (b != NULL && b->n > 0 && b->file_fd < 0) {
    unsigned i = b->n - 1;
    if (b->chunk[i].len - b->used[i] >= n) {
      char *p = b->chunk[i].base + b->used[i];
      b->used[i] += n;
      o->bytes += n;
      return p;
    }
  }
  b = tail_batch(e->srv, o);
  if (b == NULL || eddy_slice_alloc(e->srv->loop,
                                    n > EDDY__HTTP_CHUNK ? n : EDDY__HTTP_CHUNK,
                                    &b->chunk[b->n]) != 0)
    return NULL; /* an empty batch may stay behind: flush skips it */
  b->used[b->n] = n;
  o->bytes += n;
  return b->chunk[b->n++].base;
}

/* Gives back the last n bytes of the latest reservation, unused. */
void eddy__http_unreserve(eddy__http_exch_t *e, size_t n) {
  eddy__http_out_t *o = target(e);
  eddy__http_batch_t *b = o->tail;
  b->used[b->n - 1] -= n;
  o->bytes -= n;
}

int eddy__http_append(eddy__http_exch_t *e, const void *data, size_t n) {
  if (n == 0)
    return 0;
  char *p = eddy__http_reserve(e, n);
  if (p == NULL)
    return EDDY_ENOMEM;
  memcpy(p, data, n);
  return 0;
}

void eddy__http_out_move(eddy__http_out_t *to, eddy__http_out_t *from) {
  if (from->head == NULL)
    return;
  if (to->tail != NULL)
    to->tail->next = from->head;
  else
    to->head = from->head;
  to->tail = from->tail;
  to->bytes += from->bytes;
  *from = (eddy__http_out_t){0};
}

/* Every batch leaves through here: a file's owner hears the end. */
static void batch_release(eddy_http_server_t *srv, eddy__http_batch_t *b,
                          int status) {
  eddy_http_file_cb cb = b->file_cb;
  void *arg = b->file_arg;
  b->file_cb = NULL;
  b->file_fd = -1;
  eddy__http_batch_put(srv, b);
  if (cb != NULL)
    cb(arg, status);
}

void eddy__http_out_free(eddy_http_server_t *srv, eddy__http_out_t *o) {
  while (o->head != NULL) {
    eddy__http_batch_t *b = o->head;
    o->head = b->next;
    batch_release(srv, b, EDDY_ECANCELED);
  }
  *o = (eddy__http_out_t){0};
}

int eddy__http_append_file(eddy__http_exch_t *e, int fd, int64_t offset,
                           uint64_t len, eddy_http_file_cb cb, void *arg) {
  eddy__http_out_t *o = target(e);
  eddy__http_batch_t *b = tail_batch(e->srv, o);
  if (b == NULL)
    return EDDY_ENOMEM;
  b->file_fd = fd;
  b->file_off = offset;
  b->file_len = len;
  b->file_cb = cb;
  b->file_arg = arg;
  o->bytes += len;
  return 0;
}

/* Bytes of e's response not yet in the kernel, counting what is queued
 * before it on the connection. */
size_t eddy__http_queued(const eddy__http_exch_t *e) {
  const eddy__http_conn_t *c = e->conn;
  return c->s.stream.write_queue_size + c->out.bytes + e->out.bytes;
}

static void batch_written(eddy_write_t *w, int status) {
  eddy__http_batch_t *b = eddy__container_of(w, eddy__http_batch_t, w);
  eddy__http_conn_t *c = w->data;
  batch_release(c->srv, b, status);
  eddy__http_written(c, status);
}

void eddy__http_flush(eddy__http_conn_t *c) {
  eddy__http_batch_t *b;
  while ((b = c->out.head) != NULL) {
    c->out.head = b->next;
    if (c->out.head == NULL)
      c->out.tail = NULL;
    b->next = NULL;
    if (b->n == 0 && b->file_len == 0) {
      batch_release(c->srv, b, 0);
      continue;
    }
    eddy_buf_t bufs[EDDY__HTTP_BATCH_CHUNKS];
    for (unsigned i = 0; i < b->n; i++)
      bufs[i] = eddy_buf_init(b->chunk[i].base, b->used[i]);
    b->w.data = c;
    int r = b->file_len == 0
                ? eddy_write(&b->w, &c->s.stream, bufs, b->n, batch_written)
                : eddy_write_file(&b->w, &c->s.stream, bufs, b->n, b->file_fd,
                                  b->file_off, (size_t)b->file_len,
                                  batch_written);
    if (r < 0) {
      batch_release(c->srv, b, r);
      eddy__http_out_free(c->srv, &c->out);
      eddy__http_conn_abort(c, r);
      return;
    }
    c->writes++;
    if (r == EDDY_STREAM_FULL)
      c->flags |= EDDY__C_OUT_FULL;
  }
  c->out.bytes = 0;
}
