/* eddy file streams and pipes: Node's fs.createReadStream /
 * fs.createWriteStream and stream.pipeline in small.  Included by eddy.h;
 * not to be included alone.  docs/static.md tells the whole story.
 *
 * A readable file stream reads a range of a file in chunks through the fs
 * requests (the pool, or the io_uring ring) and hands each chunk to the
 * data callback; a writable one writes what it is given, in order, at
 * increasing offsets, and says when its queue is above the high-water
 * mark.  eddy_stream_pipe connects any readable (a socket or a file
 * stream) to any writable (a socket or a file stream) with backpressure:
 * the source pauses while the sink is full, so memory stays bounded by
 * about the two high-water marks whatever the sizes involved.
 *
 * Neither file stream is a handle: each is closed with its own close call,
 * and its memory may be freed in or after the close callback (or, for a
 * writable stream that finished, after the finish callback). */
#ifndef EDDY_FSTREAM_H
#define EDDY_FSTREAM_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eddy_file_rstream_s eddy_file_rstream_t;
typedef struct eddy_file_wstream_s eddy_file_wstream_t;
typedef struct eddy_pipe_s eddy_pipe_t;

/* ---- Readable -------------------------------------------------------------
 */

/* nread > 0 bytes in *buf, borrowed for the call (retain a copy of the
 * slice to keep them). */
typedef void (*eddy_file_data_cb)(eddy_file_rstream_t *rs, ssize_t nread,
                                  const eddy_slice_t *buf);
/* The range was read to its end: no data callback follows. */
typedef void (*eddy_file_end_cb)(eddy_file_rstream_t *rs);
/* Opening or reading failed: no data or end callback follows.  Once. */
typedef void (*eddy_file_rerror_cb)(eddy_file_rstream_t *rs, int err);
typedef void (*eddy_file_rclose_cb)(eddy_file_rstream_t *rs);

typedef struct {
  int64_t start;     /* first byte; default 0 */
  int64_t end;       /* last byte, inclusive (Node's end); -1: to the end */
  size_t chunk_size; /* bytes per read; default 65536 */
  size_t high_water_mark; /* bytes read ahead while paused; default 65536 */
} eddy_file_rstream_options_t;

struct eddy_file_rstream_s {
  void *data; /* the application's */
  eddy_loop_t *loop;
  /* Private. */
  eddy_file_rstream_options_t opts;
  eddy_fs_t req;
  int fd;
  int own_fd;   /* opened by path: closed by close */
  int64_t pos;  /* next offset to read */
  int64_t left; /* bytes of the range not yet read; -1: to the end */
  unsigned state;
  int error;
  eddy_slice_t reading; /* the buffer of the read in flight */
  eddy_slice_t *queue;  /* read, not yet delivered (paused) */
  size_t nqueue, capqueue, queued_bytes;
  eddy_file_data_cb data_cb;
  eddy_file_end_cb end_cb;
  eddy_file_rerror_cb error_cb;
  eddy_file_rclose_cb close_cb;
  eddy_pipe_t *pipe;
};

EDDY_EXTERN void eddy_file_rstream_options_init(eddy_file_rstream_options_t *o);
/* Opens path for reading (through the fs requests); opts may be NULL.
 * Reading waits for eddy_file_rstream_start.  An open that fails is heard
 * by the error callback once the stream is started (or by nobody). */
EDDY_EXTERN int eddy_file_rstream_open(eddy_loop_t *loop,
                                       eddy_file_rstream_t *rs,
                                       const char *path,
                                       const eddy_file_rstream_options_t *opts);
/* Reads an open descriptor with positional reads; it stays the caller's
 * (not closed by close). */
EDDY_EXTERN int
eddy_file_rstream_open_fd(eddy_loop_t *loop, eddy_file_rstream_t *rs, int fd,
                          const eddy_file_rstream_options_t *opts);
/* Starts the flow: data callbacks, then the end callback, or the error
 * callback.  Never calls back inside this call.  EDDY_EALREADY if started
 * (or piped). */
EDDY_EXTERN int eddy_file_rstream_start(eddy_file_rstream_t *rs,
                                        eddy_file_data_cb data_cb,
                                        eddy_file_end_cb end_cb,
                                        eddy_file_rerror_cb error_cb);
/* No data callback runs after pause until resume; reading goes on until
 * high_water_mark bytes wait.  Resume delivers them from the next tick. */
EDDY_EXTERN void eddy_file_rstream_pause(eddy_file_rstream_t *rs);
EDDY_EXTERN void eddy_file_rstream_resume(eddy_file_rstream_t *rs);
EDDY_EXTERN int eddy_file_rstream_is_paused(const eddy_file_rstream_t *rs);
/* Stops everything (a read in flight finishes first, unheard), closes the
 * file if the stream opened it, then close_cb (may be NULL). */
EDDY_EXTERN void eddy_file_rstream_close(eddy_file_rstream_t *rs,
                                         eddy_file_rclose_cb close_cb);

/* ---- Writable -------------------------------------------------------------
 */

/* status 0: every byte written and the file closed (after an fsync with
 * EDDY_FILE_WSTREAM_FSYNC); else the first error. */
typedef void (*eddy_file_finish_cb)(eddy_file_wstream_t *ws, int status);
typedef void (*eddy_file_drain_cb)(eddy_file_wstream_t *ws);
/* A write failed: later writes return the error; end still finishes
 * (closing the file) with it.  Once. */
typedef void (*eddy_file_werror_cb)(eddy_file_wstream_t *ws, int err);

enum {
  EDDY_FILE_WSTREAM_FSYNC = 1 /* fsync before the close that finishes */
};

typedef struct {
  int64_t start;          /* offset of the first byte; -1 (default): 0, or
                             the end of the file with O_APPEND */
  size_t high_water_mark; /* default 16384, as eddy_write */
  unsigned flags;         /* EDDY_FILE_WSTREAM_* */
} eddy_file_wstream_options_t;

struct eddy_file_wstream_s {
  void *data; /* the application's */
  eddy_loop_t *loop;
  size_t write_queue_size; /* bytes queued, not yet written */
  /* Private. */
  eddy_file_wstream_options_t opts;
  eddy_fs_t req;
  int fd;
  int own_fd;
  int64_t pos;
  unsigned state;
  int error;
  eddy_slice_t *queue; /* waiting, in order; queue[0] is in flight */
  size_t nqueue, capqueue;
  size_t done_in_head; /* bytes of queue[0] already written */
  eddy_file_drain_cb drain_cb;
  eddy_file_werror_cb error_cb;
  eddy_file_finish_cb finish_cb;
  eddy_pipe_t *pipe;
};

EDDY_EXTERN void eddy_file_wstream_options_init(eddy_file_wstream_options_t *o);
/* Opens (creates) path for writing: flags are O_TRUNC, O_APPEND, O_EXCL
 * (added to O_WRONLY | O_CREAT), mode for a new file.  Writes may be made
 * at once: they wait for the open.  An open that fails fails them. */
EDDY_EXTERN int eddy_file_wstream_open(eddy_loop_t *loop,
                                       eddy_file_wstream_t *ws,
                                       const char *path, int flags, int mode,
                                       const eddy_file_wstream_options_t *o);
/* Writes to an open descriptor with positional writes; it stays the
 * caller's (not closed at the finish, but fsync'ed with the flag). */
EDDY_EXTERN int eddy_file_wstream_open_fd(eddy_loop_t *loop,
                                          eddy_file_wstream_t *ws, int fd,
                                          const eddy_file_wstream_options_t *o);
/* Queues a copy of len bytes.  0, or EDDY_STREAM_FULL when the queue is at
 * or above the high-water mark (queued: wait for the drain callback before
 * writing more), or an error (nothing queued): EDDY_EPIPE after end, the
 * stream's write error. */
EDDY_EXTERN int eddy_file_wstream_write(eddy_file_wstream_t *ws,
                                        const void *data, size_t len);
/* The same without a copy: retains the slice until its bytes are written. */
EDDY_EXTERN int eddy_file_wstream_write_slice(eddy_file_wstream_t *ws,
                                              const eddy_slice_t *slice);
EDDY_EXTERN void eddy_file_wstream_set_drain_cb(eddy_file_wstream_t *ws,
                                                eddy_file_drain_cb cb);
EDDY_EXTERN void eddy_file_wstream_set_error_cb(eddy_file_wstream_t *ws,
                                                eddy_file_werror_cb cb);
/* No more writes: once the queue is written (fsync'ed with the flag) and
 * the file closed, cb(ws, status) runs, never inside this call.  After it
 * the stream's memory is the caller's.  EDDY_EALREADY if ended. */
EDDY_EXTERN int eddy_file_wstream_end(eddy_file_wstream_t *ws,
                                      eddy_file_finish_cb cb);
/* Abandons what is queued (EDDY_ECANCELED) and finishes as end does. */
EDDY_EXTERN int eddy_file_wstream_destroy(eddy_file_wstream_t *ws,
                                          eddy_file_finish_cb cb);

/* ---- Pipes
 * -------------------------------------------------------------------- */

/* One end of a pipe: a socket stream (TCP, Unix) or a file stream.  Make
 * them with the functions below. */
typedef struct {
  int kind; /* private: EDDY__PIPE_* */
  void *ptr;
} eddy_pipe_end_t;

enum {
  EDDY__PIPE_SOCKET = 1,
  EDDY__PIPE_FILE_R,
  EDDY__PIPE_FILE_W,
};

static inline eddy_pipe_end_t eddy_pipe_socket(eddy_stream_t *s) {
  eddy_pipe_end_t e = {EDDY__PIPE_SOCKET, s};
  return e;
}
static inline eddy_pipe_end_t eddy_pipe_file_reader(eddy_file_rstream_t *rs) {
  eddy_pipe_end_t e = {EDDY__PIPE_FILE_R, rs};
  return e;
}
static inline eddy_pipe_end_t eddy_pipe_file_writer(eddy_file_wstream_t *ws) {
  eddy_pipe_end_t e = {EDDY__PIPE_FILE_W, ws};
  return e;
}

/* eddy_stream_pipe flags */
enum {
  EDDY_PIPE_NO_END = 1 /* leave the sink open at the source's end */
};

/* The pipe is over: status 0 when the source ended and (unless
 * EDDY_PIPE_NO_END) the sink finished (file: written and closed; socket:
 * shut down); else the first error of either side.  Once, never after
 * eddy_stream_unpipe. */
typedef void (*eddy_pipe_cb)(eddy_pipe_t *p, int status);

struct eddy_pipe_s {
  void *data; /* the application's */
  eddy_loop_t *loop;
  uint64_t bytes; /* passed from source to sink so far */
  /* Private. */
  eddy_pipe_end_t src;
  eddy_pipe_end_t dst;
  const struct eddy__pipe_src_ops_s *sops;
  const struct eddy__pipe_dst_ops_s *dops;
  unsigned flags;
  unsigned state;
  eddy_pipe_cb cb;
  eddy_read_cb saved_read_cb; /* a socket source's, given back at unpipe */
  eddy_drain_cb saved_drain_cb;
  eddy_shutdown_t sd;
  unsigned writes; /* socket sink writes in flight */
};

/* Reads src and writes dst until src ends, with backpressure, then ends
 * dst unless EDDY_PIPE_NO_END; cb tells the outcome.  A socket source's
 * read callback and a socket sink's drain callback are the pipe's until it
 * is over; a file stream must not be started by its owner.  EDDY_EBUSY if
 * either end is already piped, EDDY_EINVAL for a source that cannot read
 * or a sink that cannot write. */
EDDY_EXTERN int eddy_stream_pipe(eddy_pipe_t *p, eddy_pipe_end_t src,
                                 eddy_pipe_end_t dst, unsigned flags,
                                 eddy_pipe_cb cb);
/* Detaches both ends where they are: the source pauses (its owner may
 * resume it), the sink keeps what was written; cb does not run. */
EDDY_EXTERN int eddy_stream_unpipe(eddy_pipe_t *p);

#ifdef __cplusplus
}
#endif
#endif
