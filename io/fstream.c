/* File streams: include/eddy/fstream.h has the contract.
 *
 * Both streams keep one fs request in flight at a time (their own
 * eddy_fs_t), which is what keeps the order of reads and writes without a
 * lock or a sequence number, and bounds what they hold: a readable stream
 * reads ahead at most high_water_mark bytes while nobody takes them; a
 * writable stream holds what it was given until the kernel has it, and
 * says when that passes high_water_mark.  Callbacks never run inside the
 * call that caused them: what would is moved to a tick. */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

/* Both streams' state bits. */
enum {
  S_OPENING = 1u << 0,   /* an open by path is in flight */
  S_BUSY = 1u << 1,      /* a read or write is in flight */
  S_TICK = 1u << 2,      /* a tick is queued */
  S_STARTED = 1u << 3,   /* readable: start was called */
  S_PAUSED = 1u << 4,    /* readable: paused */
  S_EOF = 1u << 5,       /* readable: no more reads */
  S_DONE = 1u << 6,      /* end or error delivered; writable: finished */
  S_CLOSING = 1u << 7,   /* close / end / destroy called */
  S_FINISHING = 1u << 8, /* fsync or close of the file in flight */
  S_SYNCED = 1u << 9,    /* writable: fsync done */
  S_DRAIN = 1u << 10,    /* writable: write said full */
  S_ERR_SENT = 1u << 11  /* writable: error callback ran */
};

static int tick(eddy_loop_t *loop, unsigned *state, void (*cb)(void *),
                void *arg) {
  if (*state & S_TICK)
    return 0;
  int err = eddy_next_tick(loop, cb, arg);
  if (err == 0)
    *state |= S_TICK;
  return err;
}

/* ---- Readable -------------------------------------------------------------
 */

static void r_pump(eddy_file_rstream_t *rs);

void eddy_file_rstream_options_init(eddy_file_rstream_options_t *o) {
  o->start = 0;
  o->end = -1;
  o->chunk_size = 65536;
  o->high_water_mark = 65536;
}

static int r_init(eddy_loop_t *loop, eddy_file_rstream_t *rs,
                  const eddy_file_rstream_options_t *opts) {
  eddy_file_rstream_options_t d;
  if (opts == NULL) {
    eddy_file_rstream_options_init(&d);
    opts = &d;
  }
  if (opts->start < 0 || (opts->end >= 0 && opts->end < opts->start - 1) ||
      opts->chunk_size == 0)
    return EDDY_EINVAL;
  memset(rs, 0, sizeof *rs);
  rs->loop = loop;
  rs->opts = *opts;
  rs->fd = -1;
  rs->pos = opts->start;
  rs->left = opts->end >= 0 ? opts->end - opts->start + 1 : -1;
  if (rs->left == 0)
    rs->state |= S_EOF;
  return 0;
}

static void r_on_open(eddy_fs_t *req) {
  eddy_file_rstream_t *rs = req->data;
  rs->state &= ~S_OPENING;
  if (req->result >= 0) {
    rs->fd = (int)req->result;
    rs->own_fd = 1;
  } else {
    rs->error = (int)req->result;
  }
  eddy_fs_req_cleanup(req);
  r_pump(rs);
}

int eddy_file_rstream_open(eddy_loop_t *loop, eddy_file_rstream_t *rs,
                           const char *path,
                           const eddy_file_rstream_options_t *opts) {
  int err = r_init(loop, rs, opts);
  if (err != 0)
    return err;
  rs->req.data = rs;
  err = eddy_fs_open(loop, &rs->req, path, O_RDONLY, 0, r_on_open);
  if (err != 0)
    return err;
  rs->state |= S_OPENING;
  return 0;
}

int eddy_file_rstream_open_fd(eddy_loop_t *loop, eddy_file_rstream_t *rs,
                              int fd, const eddy_file_rstream_options_t *opts) {
  if (fd < 0)
    return EDDY_EBADF;
  int err = r_init(loop, rs, opts);
  if (err == 0)
    rs->fd = fd;
  return err;
}

static void r_tick(void *arg) {
  eddy_file_rstream_t *rs = arg;
  rs->state &= ~S_TICK;
  r_pump(rs);
}

static void r_drop_queue(eddy_file_rstream_t *rs) {
  for (size_t i = 0; i < rs->nqueue; i++)
    eddy_slice_release(&rs->queue[i]);
  free(rs->queue);
  rs->queue = NULL;
  rs->nqueue = rs->capqueue = rs->queued_bytes = 0;
}

static void r_on_closed(eddy_fs_t *req) {
  eddy_file_rstream_t *rs = req->data;
  eddy_fs_req_cleanup(req);
  rs->state &= ~S_FINISHING;
  rs->fd = -1;
  if (rs->close_cb != NULL)
    rs->close_cb(rs);
}

/* Closing: once nothing is in flight, the file, then the callback. */
static void r_close_step(eddy_file_rstream_t *rs) {
  if (rs->state & (S_OPENING | S_BUSY | S_TICK | S_FINISHING))
    return;
  r_drop_queue(rs);
  if (rs->own_fd && rs->fd >= 0) {
    rs->state |= S_FINISHING;
    rs->req.data = rs;
    if (eddy_fs_close(rs->loop, &rs->req, rs->fd, r_on_closed) == 0)
      return;
    rs->state &= ~S_FINISHING;
    eddy_fs_close(rs->loop, &rs->req, rs->fd, NULL); /* here, then */
    eddy_fs_req_cleanup(&rs->req);
  }
  rs->fd = -1;
  if (rs->close_cb != NULL)
    rs->close_cb(rs);
}

static int r_push(eddy_file_rstream_t *rs, const eddy_slice_t *s) {
  if (rs->nqueue == rs->capqueue) {
    size_t cap = rs->capqueue ? rs->capqueue * 2 : 4;
    eddy_slice_t *q = realloc(rs->queue, cap * sizeof *q);
    if (q == NULL)
      return EDDY_ENOMEM;
    rs->queue = q;
    rs->capqueue = cap;
  }
  rs->queue[rs->nqueue++] = *s;
  rs->queued_bytes += s->len;
  return 0;
}

static void r_on_read(eddy_fs_t *req) {
  eddy_file_rstream_t *rs = req->data;
  ssize_t n = req->result;
  eddy_slice_t s = rs->reading;
  eddy_fs_req_cleanup(req);
  rs->state &= ~S_BUSY;
  rs->reading = (eddy_slice_t){0};
  if (n > 0 && !(rs->state & S_CLOSING)) {
    s.len = (size_t)n;
    rs->pos += n;
    if (rs->left > 0 && (rs->left -= n) == 0)
      rs->state |= S_EOF;
    int err = r_push(rs, &s);
    if (err != 0) {
      eddy_slice_release(&s);
      rs->error = err;
    }
  } else {
    eddy_slice_release(&s);
    if (n == 0)
      rs->state |= S_EOF;
    else if (n < 0 && rs->error == 0)
      rs->error = (int)n;
  }
  r_pump(rs);
}

static void r_read(eddy_file_rstream_t *rs) {
  size_t want = rs->opts.chunk_size;
  if (rs->left >= 0 && (uint64_t)rs->left < want)
    want = (size_t)rs->left;
  int err = eddy_slice_alloc(rs->loop, want, &rs->reading);
  if (err == 0) {
    eddy_buf_t b = eddy_buf_init(rs->reading.base, want);
    rs->req.data = rs;
    err = eddy_fs_read(rs->loop, &rs->req, rs->fd, &b, 1, rs->pos, r_on_read);
    if (err != 0)
      eddy_slice_release(&rs->reading);
  }
  if (err != 0)
    rs->error = err;
  else
    rs->state |= S_BUSY;
}

/* Delivers what may be delivered, then reads if there is room. */
static void r_pump(eddy_file_rstream_t *rs) {
  unsigned flowing = S_STARTED | S_PAUSED | S_DONE;
again:
  if (rs->state & S_CLOSING) {
    r_close_step(rs);
    return;
  }
  while (rs->nqueue > 0 && (rs->state & flowing) == S_STARTED) {
    eddy_slice_t s = rs->queue[0];
    memmove(rs->queue, rs->queue + 1, --rs->nqueue * sizeof s);
    rs->queued_bytes -= s.len;
    rs->data_cb(rs, (ssize_t)s.len, &s);
    eddy_slice_release(&s);
    if (rs->state & S_CLOSING) {
      r_close_step(rs);
      return;
    }
  }
  if ((rs->state & flowing) == S_STARTED && rs->nqueue == 0) {
    if (rs->error != 0) {
      rs->state |= S_DONE;
      if (rs->error_cb != NULL)
        rs->error_cb(rs, rs->error);
      return;
    }
    if ((rs->state & (S_EOF | S_BUSY)) == S_EOF) {
      rs->state |= S_DONE;
      if (rs->end_cb != NULL)
        rs->end_cb(rs);
      return;
    }
  }
  if (!(rs->state & (S_BUSY | S_EOF | S_OPENING | S_DONE)) && rs->error == 0 &&
      rs->fd >= 0 && rs->queued_bytes < rs->opts.high_water_mark) {
    r_read(rs);
    if (rs->error != 0) /* the submission failed: tell it */
      goto again;
  }
}

int eddy_file_rstream_start(eddy_file_rstream_t *rs, eddy_file_data_cb data_cb,
                            eddy_file_end_cb end_cb,
                            eddy_file_rerror_cb error_cb) {
  EDDY__MISUSE(rs->state & S_CLOSING, EDDY_EINVAL);
  if (data_cb == NULL)
    return EDDY_EINVAL;
  if (rs->state & S_STARTED)
    return EDDY_EALREADY;
  rs->data_cb = data_cb;
  rs->end_cb = end_cb;
  rs->error_cb = error_cb;
  rs->state |= S_STARTED;
  rs->state &= ~S_PAUSED;
  return tick(rs->loop, &rs->state, r_tick, rs);
}

void eddy_file_rstream_pause(eddy_file_rstream_t *rs) {
  rs->state |= S_PAUSED;
}

void eddy_file_rstream_resume(eddy_file_rstream_t *rs) {
  if (!(rs->state & S_PAUSED) || (rs->state & S_CLOSING))
    return;
  rs->state &= ~S_PAUSED;
  tick(rs->loop, &rs->state, r_tick, rs);
}

/* For net/pipe.c: an unpiped stream is paused and its owner may start it
 * again with callbacks of its own. */
void eddy__file_rstream_detach(eddy_file_rstream_t *rs);
void eddy__file_rstream_detach(eddy_file_rstream_t *rs) {
  rs->state |= S_PAUSED;
  rs->state &= ~S_STARTED;
}

int eddy_file_rstream_is_paused(const eddy_file_rstream_t *rs) {
  return (rs->state & S_PAUSED) != 0;
}

void eddy_file_rstream_close(eddy_file_rstream_t *rs,
                             eddy_file_rclose_cb close_cb) {
  if (rs->state & S_CLOSING)
    return;
  rs->state |= S_CLOSING;
  rs->close_cb = close_cb;
  r_drop_queue(rs);
  /* The callback runs from a tick or an fs callback, never in here. */
  if (tick(rs->loop, &rs->state, r_tick, rs) != 0 &&
      !(rs->state & (S_OPENING | S_BUSY)))
    r_close_step(rs);
}

/* ---- Writable -------------------------------------------------------------
 */

static void w_pump(eddy_file_wstream_t *ws);

void eddy_file_wstream_options_init(eddy_file_wstream_options_t *o) {
  o->start = -1;
  o->high_water_mark = EDDY_STREAM_HIGH_WATER_MARK;
  o->flags = 0;
}

static void w_init(eddy_loop_t *loop, eddy_file_wstream_t *ws,
                   const eddy_file_wstream_options_t *o, int append) {
  eddy_file_wstream_options_t d;
  if (o == NULL) {
    eddy_file_wstream_options_init(&d);
    o = &d;
  }
  memset(ws, 0, sizeof *ws);
  ws->loop = loop;
  ws->opts = *o;
  ws->fd = -1;
  /* With O_APPEND the kernel puts every write at the end (pwrite too). */
  ws->pos = o->start >= 0 ? o->start : append ? -1 : 0;
}

static void w_on_open(eddy_fs_t *req) {
  eddy_file_wstream_t *ws = req->data;
  ws->state &= ~S_OPENING;
  if (req->result >= 0) {
    ws->fd = (int)req->result;
    ws->own_fd = 1;
  } else {
    ws->error = (int)req->result;
  }
  eddy_fs_req_cleanup(req);
  w_pump(ws);
}

int eddy_file_wstream_open(eddy_loop_t *loop, eddy_file_wstream_t *ws,
                           const char *path, int flags, int mode,
                           const eddy_file_wstream_options_t *o) {
  if (flags & ~(O_TRUNC | O_APPEND | O_EXCL))
    return EDDY_EINVAL;
  w_init(loop, ws, o, (flags & O_APPEND) != 0);
  ws->req.data = ws;
  int err = eddy_fs_open(loop, &ws->req, path, O_WRONLY | O_CREAT | flags, mode,
                         w_on_open);
  if (err == 0)
    ws->state |= S_OPENING;
  return err;
}

int eddy_file_wstream_open_fd(eddy_loop_t *loop, eddy_file_wstream_t *ws,
                              int fd, const eddy_file_wstream_options_t *o) {
  if (fd < 0)
    return EDDY_EBADF;
  int fl = fcntl(fd, F_GETFL);
  w_init(loop, ws, o, fl >= 0 && (fl & O_APPEND));
  ws->fd = fd;
  return 0;
}

static void w_tick(void *arg) {
  eddy_file_wstream_t *ws = arg;
  ws->state &= ~S_TICK;
  w_pump(ws);
}

static void w_drop_queue(eddy_file_wstream_t *ws) {
  for (size_t i = 0; i < ws->nqueue; i++)
    eddy_slice_release(&ws->queue[i]);
  ws->nqueue = 0;
  ws->done_in_head = 0;
  ws->write_queue_size = 0;
}

static void w_finished(eddy_file_wstream_t *ws) {
  ws->state |= S_DONE;
  free(ws->queue);
  ws->queue = NULL;
  ws->capqueue = 0;
  ws->fd = -1;
  if (ws->finish_cb != NULL)
    ws->finish_cb(ws, ws->error);
}

static void w_on_finish_step(eddy_fs_t *req) {
  eddy_file_wstream_t *ws = req->data;
  eddy_fs_type type = req->type;
  if (req->result < 0 && ws->error == 0)
    ws->error = (int)req->result;
  eddy_fs_req_cleanup(req);
  ws->state &= ~S_FINISHING;
  if (type == EDDY_FS_FSYNC)
    ws->state |= S_SYNCED;
  else
    ws->own_fd = 0; /* closed */
  w_pump(ws);
}

/* After end: fsync (with the flag), close (if ours), then the callback. */
static void w_finish_step(eddy_file_wstream_t *ws) {
  int err = 0;
  ws->req.data = ws;
  if ((ws->opts.flags & EDDY_FILE_WSTREAM_FSYNC) && ws->fd >= 0 &&
      ws->error == 0 && !(ws->state & S_SYNCED))
    err = eddy_fs_fsync(ws->loop, &ws->req, ws->fd, w_on_finish_step);
  else if (ws->own_fd && ws->fd >= 0)
    err = eddy_fs_close(ws->loop, &ws->req, ws->fd, w_on_finish_step);
  else {
    w_finished(ws);
    return;
  }
  if (err == 0) {
    ws->state |= S_FINISHING;
    return;
  }
  if (ws->error == 0)
    ws->error = err;
  if (ws->own_fd && ws->fd >= 0) {
    eddy_fs_close(ws->loop, &ws->req, ws->fd, NULL);
    eddy_fs_req_cleanup(&ws->req);
  }
  w_finished(ws);
}

static void w_on_write(eddy_fs_t *req) {
  eddy_file_wstream_t *ws = req->data;
  ssize_t n = req->result;
  eddy_fs_req_cleanup(req);
  ws->state &= ~S_BUSY;
  if (n < 0) {
    if (ws->error == 0)
      ws->error = (int)n;
    w_drop_queue(ws);
  } else {
    size_t left = (size_t)n;
    if (ws->pos >= 0)
      ws->pos += n;
    ws->write_queue_size -= left;
    while (left > 0 && ws->nqueue > 0) {
      size_t rest = ws->queue[0].len - ws->done_in_head;
      size_t take = left < rest ? left : rest;
      ws->done_in_head += take;
      left -= take;
      if (ws->done_in_head == ws->queue[0].len) {
        eddy_slice_release(&ws->queue[0]);
        memmove(ws->queue, ws->queue + 1, --ws->nqueue * sizeof *ws->queue);
        ws->done_in_head = 0;
      }
    }
  }
  w_pump(ws);
}

#define W_IOV 16

static void w_write(eddy_file_wstream_t *ws) {
  eddy_buf_t bufs[W_IOV];
  unsigned n = 0;
  for (size_t i = 0; i < ws->nqueue && n < W_IOV; i++, n++) {
    size_t skip = i == 0 ? ws->done_in_head : 0;
    bufs[n] = eddy_buf_init(ws->queue[i].base + skip, ws->queue[i].len - skip);
  }
  ws->req.data = ws;
  int err =
      eddy_fs_write(ws->loop, &ws->req, ws->fd, bufs, n, ws->pos, w_on_write);
  if (err == 0) {
    ws->state |= S_BUSY;
    return;
  }
  ws->error = err;
  w_drop_queue(ws);
  tick(ws->loop, &ws->state, w_tick, ws); /* tell it from a tick */
}

/* Writes, tells errors and drain, finishes.  The callbacks may write,
 * end or destroy the stream: after each, whatever it started is waited
 * for. */
#define W_WAIT (S_BUSY | S_OPENING | S_TICK | S_FINISHING | S_DONE)
static void w_pump(eddy_file_wstream_t *ws) {
  if (ws->state & W_WAIT)
    return;
  if (ws->error != 0) {
    w_drop_queue(ws);
    if (!(ws->state & S_ERR_SENT)) {
      ws->state |= S_ERR_SENT;
      if (ws->error_cb != NULL)
        ws->error_cb(ws, ws->error);
      if (ws->state & W_WAIT)
        return;
    }
  }
  if (ws->nqueue > 0 && ws->fd >= 0) {
    w_write(ws);
    if (ws->state & S_BUSY)
      return;
  }
  if ((ws->state & S_DRAIN) &&
      ws->write_queue_size < ws->opts.high_water_mark &&
      !(ws->state & S_CLOSING)) {
    ws->state &= ~S_DRAIN;
    if (ws->drain_cb != NULL)
      ws->drain_cb(ws);
    if (ws->state & W_WAIT)
      return;
  }
  if ((ws->state & S_CLOSING) && ws->nqueue == 0)
    w_finish_step(ws);
}

int eddy_file_wstream_write_slice(eddy_file_wstream_t *ws,
                                  const eddy_slice_t *slice) {
  if (ws->state & S_CLOSING)
    return EDDY_EPIPE;
  if (ws->error != 0)
    return ws->error;
  if (slice->len > 0) {
    if (ws->nqueue == ws->capqueue) {
      size_t cap = ws->capqueue ? ws->capqueue * 2 : 8;
      eddy_slice_t *q = realloc(ws->queue, cap * sizeof *q);
      if (q == NULL)
        return EDDY_ENOMEM;
      ws->queue = q;
      ws->capqueue = cap;
    }
    ws->queue[ws->nqueue] = *slice;
    eddy_slice_retain(&ws->queue[ws->nqueue++]);
    ws->write_queue_size += slice->len;
    /* The write starts now; its completion (never inside this call) goes
     * on. */
    if (!(ws->state & (S_BUSY | S_OPENING | S_TICK)) && ws->fd >= 0)
      w_write(ws);
  }
  if (ws->write_queue_size >= ws->opts.high_water_mark) {
    ws->state |= S_DRAIN;
    return EDDY_STREAM_FULL;
  }
  return 0;
}

int eddy_file_wstream_write(eddy_file_wstream_t *ws, const void *data,
                            size_t len) {
  if (data == NULL && len > 0)
    return EDDY_EINVAL;
  if (ws->state & S_CLOSING)
    return EDDY_EPIPE;
  if (ws->error != 0)
    return ws->error;
  eddy_slice_t s = {0};
  if (len > 0) {
    int err = eddy_slice_alloc(ws->loop, len, &s);
    if (err != 0)
      return err;
    memcpy(s.base, data, len);
  }
  int r = eddy_file_wstream_write_slice(ws, &s);
  if (len > 0)
    eddy_slice_release(&s);
  return r;
}

void eddy_file_wstream_set_drain_cb(eddy_file_wstream_t *ws,
                                    eddy_file_drain_cb cb) {
  ws->drain_cb = cb;
}

void eddy_file_wstream_set_error_cb(eddy_file_wstream_t *ws,
                                    eddy_file_werror_cb cb) {
  ws->error_cb = cb;
}

int eddy_file_wstream_end(eddy_file_wstream_t *ws, eddy_file_finish_cb cb) {
  if (ws->state & S_CLOSING)
    return EDDY_EALREADY;
  ws->state |= S_CLOSING;
  ws->finish_cb = cb;
  int err = tick(ws->loop, &ws->state, w_tick, ws);
  if (err != 0)
    ws->state &= ~S_CLOSING;
  return err;
}

int eddy_file_wstream_destroy(eddy_file_wstream_t *ws, eddy_file_finish_cb cb) {
  int err = eddy_file_wstream_end(ws, cb);
  if (err != 0 && err != EDDY_EALREADY)
    return err;
  ws->finish_cb = cb;
  /* What is in flight finishes; the rest is dropped, and the finish says
   * so.  No error callback for the stream's own cancel. */
  if (ws->error == 0)
    ws->error = EDDY_ECANCELED;
  ws->state |= S_ERR_SENT;
  if (!(ws->state & S_BUSY)) {
    w_drop_queue(ws);
  } else if (ws->nqueue > 1) {
    for (size_t i = 1; i < ws->nqueue; i++)
      eddy_slice_release(&ws->queue[i]);
    ws->nqueue = 1;
    ws->write_queue_size = ws->queue[0].len - ws->done_in_head;
  }
  return 0;
}
