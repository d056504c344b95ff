/* eddy_stream_pipe: any readable into any writable, with backpressure.
 *
 * The pipe sees its two ends through two small tables of operations, one
 * per kind of end (docs/static.md, "Pipes"):
 *
 *   source: start (deliver chunks to pipe_data, the end to pipe_src_end,
 *           errors to pipe_fail), pause, resume, stop (detach);
 *   sink:   write (a chunk, retained until written: 0, EDDY_STREAM_FULL or
 *           an error), end (finish: pipe_done when flushed), stop.
 *
 * A sink that said full calls pipe_drain when it fell below its mark; the
 * source resumes then.  So at any time the sink holds at most its mark
 * plus one chunk, and the source at most what it reads ahead (a file
 * stream: its high-water mark; a socket: the read in progress).
 *
 * A socket end finds its pipe through eddy_stream_t.pipe_out / pipe_in; a
 * file stream through its pipe field. */
#include <stdlib.h>
#include <string.h>

#include "net/internal.h"

/* io/fstream.c: pauses a piped stream and forgets it was started. */
void eddy__file_rstream_detach(eddy_file_rstream_t *rs);

enum {
  P_ACTIVE = 1u << 0,
  P_PAUSED = 1u << 1, /* the source is paused for the sink */
  P_ENDING = 1u << 2, /* the sink is finishing */
  P_DONE = 1u << 3,
};

struct eddy__pipe_src_ops_s {
  int (*start)(eddy_pipe_t *p);
  void (*pause)(eddy_pipe_t *p);
  void (*resume)(eddy_pipe_t *p);
  void (*stop)(eddy_pipe_t *p);
};

struct eddy__pipe_dst_ops_s {
  int (*write)(eddy_pipe_t *p, const eddy_slice_t *chunk);
  int (*end)(eddy_pipe_t *p);
  void (*stop)(eddy_pipe_t *p);
};

/* ---- The pipe ---------------------------------------------------------------
 */

static void pipe_detach(eddy_pipe_t *p) {
  p->sops->stop(p);
  p->dops->stop(p);
  p->state &= ~P_ACTIVE;
}

static void pipe_done(eddy_pipe_t *p, int status) {
  if (p->state & P_DONE)
    return;
  p->state |= P_DONE;
  if (p->state & P_ACTIVE)
    pipe_detach(p);
  if (p->cb != NULL) {
    p->cb(p, status);
    eddy__after_callback(p->loop);
  }
}

static void pipe_fail(eddy_pipe_t *p, int err) {
  pipe_done(p, err);
}

static void pipe_data(eddy_pipe_t *p, const eddy_slice_t *chunk) {
  p->bytes += chunk->len;
  int r = p->dops->write(p, chunk);
  if (r < 0) {
    pipe_fail(p, r);
  } else if (r == EDDY_STREAM_FULL && !(p->state & P_PAUSED)) {
    p->state |= P_PAUSED;
    p->sops->pause(p);
  }
}

static void pipe_drain(eddy_pipe_t *p) {
  if (!(p->state & P_PAUSED) || (p->state & P_DONE))
    return;
  p->state &= ~P_PAUSED;
  p->sops->resume(p);
}

static void pipe_src_end(eddy_pipe_t *p) {
  if (p->flags & EDDY_PIPE_NO_END) {
    pipe_done(p, 0);
    return;
  }
  p->state |= P_ENDING;
  int err = p->dops->end(p);
  if (err != 0)
    pipe_fail(p, err);
}

/* ---- Socket ends
 * -------------------------------------------------------------- */

static eddy_stream_t *sock(const eddy_pipe_end_t *e) {
  return e->ptr;
}

static void sock_read(eddy_stream_t *s, ssize_t nread,
                      const eddy_slice_t *buf) {
  eddy_pipe_t *p = s->pipe_out;
  if (p == NULL)
    return;
  if (nread > 0)
    pipe_data(p, buf);
  else if (nread == EDDY_EOF)
    pipe_src_end(p);
  else
    pipe_fail(p, (int)nread);
}

static int sock_src_start(eddy_pipe_t *p) {
  eddy_stream_t *s = sock(&p->src);
  p->saved_read_cb = s->read_cb;
  s->pipe_out = p;
  int err = eddy_read_start(s, sock_read);
  if (err != 0)
    s->pipe_out = NULL;
  return err;
}

static void sock_src_pause(eddy_pipe_t *p) {
  eddy_read_stop(sock(&p->src));
}

static void sock_src_resume(eddy_pipe_t *p) {
  int err = eddy_read_start(sock(&p->src), sock_read);
  if (err != 0)
    pipe_fail(p, err);
}

static void sock_src_stop(eddy_pipe_t *p) {
  eddy_stream_t *s = sock(&p->src);
  if (!eddy__handle_closing(&s->handle))
    eddy_read_stop(s);
  s->read_cb = p->saved_read_cb;
  s->pipe_out = NULL;
}

static const struct eddy__pipe_src_ops_s sock_src = {
    sock_src_start, sock_src_pause, sock_src_resume, sock_src_stop};

/* A chunk on its way into a socket. */
typedef struct {
  eddy_write_t w;
  eddy_slice_t chunk;
} sock_write_t;

static void sock_written(eddy_write_t *w, int status) {
  sock_write_t *sw = eddy__container_of(w, sock_write_t, w);
  eddy_stream_t *s = w->stream;
  eddy_slice_release(&sw->chunk);
  free(sw);
  eddy_pipe_t *p = s->pipe_in; /* NULL once the pipe let go */
  if (p == NULL)
    return;
  p->writes--;
  if (status < 0)
    pipe_fail(p, status);
}

static int sock_dst_write(eddy_pipe_t *p, const eddy_slice_t *chunk) {
  sock_write_t *sw = malloc(sizeof *sw);
  if (sw == NULL)
    return EDDY_ENOMEM;
  sw->chunk = *chunk;
  eddy_slice_retain(&sw->chunk);
  eddy_buf_t b = eddy_buf_init(chunk->base, chunk->len);
  int r = eddy_write(&sw->w, sock(&p->dst), &b, 1, sock_written);
  if (r < 0) {
    eddy_slice_release(&sw->chunk);
    free(sw);
    return r;
  }
  p->writes++;
  return r;
}

static void sock_drain(eddy_stream_t *s) {
  if (s->pipe_in != NULL)
    pipe_drain(s->pipe_in);
}

static void sock_shut(eddy_shutdown_t *req, int status) {
  eddy_pipe_t *p = req->data;
  if (p != NULL && sock(&p->dst)->pipe_in == p)
    pipe_done(p, status);
}

static int sock_dst_end(eddy_pipe_t *p) {
  p->sd.data = p;
  return eddy_shutdown(&p->sd, sock(&p->dst), sock_shut);
}

static void sock_dst_stop(eddy_pipe_t *p) {
  eddy_stream_t *s = sock(&p->dst);
  s->drain_cb = p->saved_drain_cb;
  s->pipe_in = NULL;
  p->sd.data = NULL; /* a shutdown still queued tells nobody */
}

static const struct eddy__pipe_dst_ops_s sock_dst = {
    sock_dst_write, sock_dst_end, sock_dst_stop};

/* ---- File ends
 * ----------------------------------------------------------------- */

static eddy_file_rstream_t *rfile(const eddy_pipe_end_t *e) {
  return e->ptr;
}

static eddy_file_wstream_t *wfile(const eddy_pipe_end_t *e) {
  return e->ptr;
}

static void rfile_data(eddy_file_rstream_t *rs, ssize_t nread,
                       const eddy_slice_t *buf) {
  if (rs->pipe != NULL)
    pipe_data(rs->pipe, buf);
}

static void rfile_end(eddy_file_rstream_t *rs) {
  if (rs->pipe != NULL)
    pipe_src_end(rs->pipe);
}

static void rfile_error(eddy_file_rstream_t *rs, int err) {
  if (rs->pipe != NULL)
    pipe_fail(rs->pipe, err);
}

static int rfile_start(eddy_pipe_t *p) {
  eddy_file_rstream_t *rs = rfile(&p->src);
  rs->pipe = p;
  int err = eddy_file_rstream_start(rs, rfile_data, rfile_end, rfile_error);
  if (err != 0)
    rs->pipe = NULL;
  return err;
}

static void rfile_pause(eddy_pipe_t *p) {
  eddy_file_rstream_pause(rfile(&p->src));
}

static void rfile_resume(eddy_pipe_t *p) {
  eddy_file_rstream_resume(rfile(&p->src));
}

/* Detached, the stream is paused and may be started again by its owner. */
static void rfile_stop(eddy_pipe_t *p) {
  eddy_file_rstream_t *rs = rfile(&p->src);
  rs->pipe = NULL;
  eddy__file_rstream_detach(rs);
}

static const struct eddy__pipe_src_ops_s rfile_src = {rfile_start, rfile_pause,
                                                      rfile_resume, rfile_stop};

static int wfile_write(eddy_pipe_t *p, const eddy_slice_t *chunk) {
  return eddy_file_wstream_write_slice(wfile(&p->dst), chunk);
}

static void wfile_drain(eddy_file_wstream_t *ws) {
  if (ws->pipe != NULL)
    pipe_drain(ws->pipe);
}

static void wfile_error(eddy_file_wstream_t *ws, int err) {
  if (ws->pipe != NULL)
    pipe_fail(ws->pipe, err);
}

static void wfile_finish(eddy_file_wstream_t *ws, int status) {
  if (ws->pipe != NULL)
    pipe_done(ws->pipe, status);
}

static int wfile_end(eddy_pipe_t *p) {
  return eddy_file_wstream_end(wfile(&p->dst), wfile_finish);
}

static void wfile_stop(eddy_pipe_t *p) {
  eddy_file_wstream_t *ws = wfile(&p->dst);
  ws->pipe = NULL;
  if (ws->drain_cb == wfile_drain)
    ws->drain_cb = NULL;
  if (ws->error_cb == wfile_error)
    ws->error_cb = NULL;
}

static const struct eddy__pipe_dst_ops_s wfile_dst = {wfile_write, wfile_end,
                                                      wfile_stop};

/* ---- The API
 * -------------------------------------------------------------------- */

/* The end's loop and whether it can play its part, or an error. */
static int check_src(const eddy_pipe_end_t *e, eddy_loop_t **loop) {
  if (e->kind == EDDY__PIPE_SOCKET) {
    eddy_stream_t *s = sock(e);
    if (s->pipe_out != NULL)
      return EDDY_EBUSY;
    *loop = s->handle.loop;
    return eddy__handle_closing(&s->handle) || !eddy_stream_is_readable(s)
               ? EDDY_EINVAL
               : 0;
  }
  if (e->kind == EDDY__PIPE_FILE_R) {
    eddy_file_rstream_t *rs = rfile(e);
    *loop = rs->loop;
    return rs->pipe != NULL ? EDDY_EBUSY : 0;
  }
  return EDDY_EINVAL;
}

static int check_dst(const eddy_pipe_end_t *e, eddy_loop_t **loop) {
  if (e->kind == EDDY__PIPE_SOCKET) {
    eddy_stream_t *s = sock(e);
    if (s->pipe_in != NULL)
      return EDDY_EBUSY;
    *loop = s->handle.loop;
    return eddy__handle_closing(&s->handle) || !eddy_stream_is_writable(s)
               ? EDDY_EINVAL
               : 0;
  }
  if (e->kind == EDDY__PIPE_FILE_W) {
    eddy_file_wstream_t *ws = wfile(e);
    *loop = ws->loop;
    return ws->pipe != NULL ? EDDY_EBUSY : 0;
  }
  return EDDY_EINVAL;
}

int eddy_stream_pipe(eddy_pipe_t *p, eddy_pipe_end_t src, eddy_pipe_end_t dst,
                     unsigned flags, eddy_pipe_cb cb) {
  eddy_loop_t *sl = NULL, *dl = NULL;
  if (p == NULL || src.ptr == NULL || dst.ptr == NULL ||
      (flags & ~(unsigned)EDDY_PIPE_NO_END))
    return EDDY_EINVAL;
  int err = check_src(&src, &sl);
  if (err == 0)
    err = check_dst(&dst, &dl);
  if (err != 0)
    return err;
  if (sl != dl)
    return EDDY_EINVAL;
  void *data = p->data;
  memset(p, 0, sizeof *p);
  p->data = data;
  p->loop = sl;
  p->src = src;
  p->dst = dst;
  p->flags = flags;
  p->cb = cb;
  p->sops = src.kind == EDDY__PIPE_SOCKET ? &sock_src : &rfile_src;
  p->dops = dst.kind == EDDY__PIPE_SOCKET ? &sock_dst : &wfile_dst;
  /* The sink first: a chunk may arrive as soon as the source starts. */
  if (dst.kind == EDDY__PIPE_SOCKET) {
    eddy_stream_t *s = sock(&dst);
    p->saved_drain_cb = s->drain_cb;
    s->drain_cb = sock_drain;
    s->pipe_in = p;
  } else {
    eddy_file_wstream_t *ws = wfile(&dst);
    ws->pipe = p;
    ws->drain_cb = wfile_drain;
    ws->error_cb = wfile_error;
  }
  p->state = P_ACTIVE;
  err = p->sops->start(p);
  if (err != 0) {
    p->dops->stop(p);
    p->state = 0;
  }
  return err;
}

int eddy_stream_unpipe(eddy_pipe_t *p) {
  if (!(p->state & P_ACTIVE))
    return EDDY_EINVAL;
  p->state |= P_DONE; /* no callback from now on */
  pipe_detach(p);
  return 0;
}
