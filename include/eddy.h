/* eddy: Node's event loop for C.
 *
 * One loop per thread, Node's six phases (timers, pending, idle/prepare,
 * poll, check, close), a fixed worker pool whose results come back through
 * an eventfd completion queue, and a backend (epoll, later io_uring) chosen
 * when the loop starts.
 *
 * The contract, as in libuv:
 *  - The caller owns the memory of every handle and request.  Handles begin
 *    with an eddy_handle_t, so (eddy_handle_t *)&timer is valid.
 *  - *_init, then *_start / *_stop; an initialised handle must be closed with
 *    eddy_close(), and its memory may be freed only in or after close_cb.
 *  - Errors are negative errno values (EDDY_ENOENT == -ENOENT).  A call that
 *    takes a callback and fails never calls that callback.
 *  - Everything belongs to the loop's thread except eddy_async_send() and
 *    eddy_queue_work(), which any thread may call.
 *
 * docs/design.md tells the whole loop iteration and the timeout rules.
 */
#ifndef EDDY_H
#define EDDY_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "eddy/errno.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define EDDY_EXTERN __attribute__((visibility("default")))
#else
#define EDDY_EXTERN
#endif

#define EDDY_VERSION_MAJOR 0
#define EDDY_VERSION_MINOR 1
#define EDDY_VERSION_PATCH 0

typedef struct eddy_loop_s eddy_loop_t;
typedef struct eddy_handle_s eddy_handle_t;
typedef struct eddy_timer_s eddy_timer_t;
typedef struct eddy__hook_s eddy_idle_t;
typedef struct eddy__hook_s eddy_prepare_t;
typedef struct eddy__hook_s eddy_check_t;
typedef struct eddy_async_s eddy_async_t;
typedef struct eddy_signal_s eddy_signal_t;
typedef struct eddy_poll_s eddy_poll_t;
typedef struct eddy_work_s eddy_work_t;

/* Private: an operation another layer put on the loop's io_uring ring
 * (a file request, a child's wait).  The submission's user_data points at
 * it and the backend calls its handler with the completion, so the ring
 * needs to know nothing of what the operation is for. */
typedef struct eddy__ring_op_s eddy__ring_op_t;
struct eddy__ring_op_s {
  void (*cqe)(eddy_loop_t *loop, eddy__ring_op_t *op, int res, unsigned flags);
};

/* An intrusive doubly linked list node; core/queue.h has the operations. */
typedef struct eddy_queue_s {
  struct eddy_queue_s *next;
  struct eddy_queue_s *prev;
} eddy_queue_t;

/* ---- Internal pieces that public structs embed.  Do not touch. ---------- */

typedef struct eddy__io_s eddy__io_t;
typedef void (*eddy__io_cb)(eddy_loop_t *loop, eddy__io_t *io, unsigned events);

/* A file descriptor the backend watches or operates on. */
struct eddy__io_s {
  int fd;
  unsigned events;  /* what the owner wants (EDDY__IO_*) */
  unsigned pevents; /* what the backend has registered */
  eddy__io_cb cb;
  void *backend_data;
};

/* A descriptor the backend does stream operations on: accept, read into
 * loop-provided buffers, write a queue, connect.  The stream layer (net/)
 * fills in the callbacks; the backend calls them. */
typedef struct eddy__sio_s eddy__sio_t;
struct eddy_slice_s;
struct iovec;
struct eddy__sio_s {
  eddy__io_t io;
  /* A connection was accepted: fd >= 0, or a negative error. */
  void (*on_accept)(eddy__sio_t *sio, int fd);
  /* nread > 0 bytes in *slice (borrowed for the call), or EDDY_EOF, or an
   * error; with nread <= 0 slice is NULL. */
  void (*on_read)(eddy__sio_t *sio, long nread, struct eddy_slice_s *slice);
  /* Fills iov with the queued bytes not yet written; returns the count. */
  int (*fill_iov)(eddy__sio_t *sio, struct iovec *iov, int max);
  /* n bytes from the front of the queue are written, or n is an error. */
  void (*on_written)(eddy__sio_t *sio, long n);
  void (*on_connect)(eddy__sio_t *sio, int status);
  unsigned ops; /* EDDY__OP_*: what the backend is doing for it */
};

/* Work deferred to the pending phase of the next iteration. */
typedef struct eddy__pending_s {
  eddy_queue_t node;
  void (*cb)(eddy_loop_t *loop, struct eddy__pending_s *p);
} eddy__pending_t;

struct eddy__timer_ent; /* core/timer.c */

typedef struct {
  void (*cb)(void *arg);
  void *arg;
} eddy__task_t;

typedef struct {
  eddy__task_t *buf;
  size_t head;
  size_t len;
  size_t cap; /* a power of two, or 0 */
} eddy__task_ring_t;

typedef struct {
  struct eddy__slab_s *current; /* slab small slices are carved from */
  /* The first nfree blocks are empty slabs kept for reuse; after them come
   * the blocks that still hold live slices, so loop close can find them. */
  eddy_queue_t free;
  size_t nfree;
  eddy_queue_t read_free; /* empty read blocks kept for reuse */
  size_t nread_free;
  size_t used_bytes; /* bytes held by live slices (slabs and large buffers) */
  size_t slab_bytes; /* bytes of all slabs, in use or free */
} eddy__slab_pool_t;

/* ---- Loop ---------------------------------------------------------------- */

typedef enum {
  EDDY_RUN_DEFAULT = 0, /* until the loop has nothing to do or is stopped */
  EDDY_RUN_ONCE,        /* one iteration, blocking in poll if needed */
  EDDY_RUN_NOWAIT       /* one iteration, never blocking */
} eddy_run_mode;

typedef enum {
  EDDY_PHASE_NONE = 0, /* outside eddy_run, or between phases */
  EDDY_PHASE_TIMERS,
  EDDY_PHASE_PENDING,
  EDDY_PHASE_IDLE,
  EDDY_PHASE_PREPARE,
  EDDY_PHASE_POLL,
  EDDY_PHASE_CHECK,
  EDDY_PHASE_CLOSE
} eddy_phase;

struct eddy_loop_s {
  void *data;
  /* Everything below is private. */
  unsigned active_handles; /* active and referenced */
  unsigned active_reqs;
  unsigned pool_reqs; /* atomic: work queued from any thread, not yet done */
  unsigned stop_flag;
  eddy_phase phase;
  uint64_t time; /* loop time, ms */
  eddy_queue_t handles;
  eddy_queue_t pending;
  eddy_queue_t idle_handles;
  eddy_queue_t prepare_handles;
  eddy_queue_t check_handles;
  eddy_queue_t async_handles;
  eddy_queue_t signal_handles;
  eddy_queue_t closing;
  struct eddy__timer_ent *timer_heap;
  size_t timer_len;
  size_t timer_cap;
  uint64_t timer_seq;
  eddy_queue_t timers_ready;
  eddy__task_ring_t ticks;
  eddy__task_ring_t microtasks;
  int draining;
  const struct eddy__backend_s *backend;
  int backend_fd;
  void *backend_data;
  eddy__io_t async_io; /* eventfd shared by all async handles */
  eddy__io_t wq_io;    /* eventfd of the pool's completion queue */
  pthread_mutex_t wq_mutex;
  eddy_queue_t wq;      /* finished work, appended by workers under wq_mutex */
  eddy__io_t signal_io; /* signalfd, -1 until a signal handle starts */
  sigset_t signal_mask;
  eddy__slab_pool_t slab;
};

EDDY_EXTERN int eddy_loop_init(eddy_loop_t *loop);
EDDY_EXTERN int eddy_loop_close(eddy_loop_t *loop);
EDDY_EXTERN int eddy_run(eddy_loop_t *loop, eddy_run_mode mode);
EDDY_EXTERN void eddy_stop(eddy_loop_t *loop);
EDDY_EXTERN int eddy_loop_alive(const eddy_loop_t *loop);
EDDY_EXTERN uint64_t eddy_now(const eddy_loop_t *loop);
EDDY_EXTERN void eddy_update_time(eddy_loop_t *loop);
EDDY_EXTERN uint64_t eddy_hrtime(void); /* monotonic, ns */
EDDY_EXTERN eddy_phase eddy_loop_phase(const eddy_loop_t *loop);
EDDY_EXTERN const char *eddy_phase_name(eddy_phase phase);
EDDY_EXTERN const char *eddy_backend_name(const eddy_loop_t *loop);
/* 1 if a loop initialised now could use the backend named ("epoll",
 * "io_uring"), else 0. */
EDDY_EXTERN int eddy_backend_available(const char *name);

/* Run cb(arg) after the current callback returns, before any other
 * callback of the loop: process.nextTick.  All ticks drain before the
 * microtasks, and both drain after every callback the loop runs. */
EDDY_EXTERN int eddy_next_tick(eddy_loop_t *loop, void (*cb)(void *arg),
                               void *arg);
/* Like eddy_next_tick, but after the tick queue is empty: a resolved
 * promise's continuation. */
EDDY_EXTERN int eddy_queue_microtask(eddy_loop_t *loop, void (*cb)(void *arg),
                                     void *arg);

/* ---- Handles ------------------------------------------------------------- */

typedef enum {
  EDDY_UNKNOWN_HANDLE = 0,
  EDDY_TIMER,
  EDDY_IDLE,
  EDDY_PREPARE,
  EDDY_CHECK,
  EDDY_ASYNC,
  EDDY_SIGNAL,
  EDDY_POLL,
  EDDY_TCP,
  EDDY_UNIX,
  EDDY_UDP,
  EDDY_HANDLE_TYPE_MAX
} eddy_handle_type;

typedef void (*eddy_close_cb)(eddy_handle_t *h);

struct eddy_handle_s {
  void *data;
  eddy_loop_t *loop;
  eddy_handle_type type;
  /* Private. */
  unsigned flags;
  eddy_close_cb close_cb;
  eddy_queue_t handle_node;
  eddy_queue_t close_node;
  /* For handle types above core (streams, ...): eddy_close() calls
   * stop_hook; the close phase calls finish_hook just before close_cb. */
  void (*stop_hook)(eddy_handle_t *h);
  void (*finish_hook)(eddy_handle_t *h);
  /* Nonzero while the kernel still holds the handle's memory: the close
   * callback waits for a later close phase. */
  int (*busy_hook)(eddy_handle_t *h);
};

EDDY_EXTERN void eddy_close(eddy_handle_t *h, eddy_close_cb close_cb);
EDDY_EXTERN void eddy_ref(eddy_handle_t *h);
EDDY_EXTERN void eddy_unref(eddy_handle_t *h);
EDDY_EXTERN int eddy_has_ref(const eddy_handle_t *h);
EDDY_EXTERN int eddy_is_active(const eddy_handle_t *h);
EDDY_EXTERN int eddy_is_closing(const eddy_handle_t *h);
EDDY_EXTERN const char *eddy_handle_type_name(eddy_handle_type type);

/* ---- Timers -------------------------------------------------------------- */

typedef void (*eddy_timer_cb)(eddy_timer_t *t);

struct eddy_timer_s {
  eddy_handle_t handle;
  /* Private. */
  eddy_timer_cb cb;
  uint64_t due;
  uint64_t repeat;
  size_t heap_index; /* SIZE_MAX when not in the heap */
  eddy_queue_t ready_node;
};

EDDY_EXTERN int eddy_timer_init(eddy_loop_t *loop, eddy_timer_t *t);
/* Runs cb once timeout_ms have passed (0: in the next timers phase), then
 * every repeat_ms if repeat_ms is not 0.  Restarting an active timer moves
 * it.  Timers due at the same time run in the order they were started.
 * A timeout over INT64_MAX (a negative number cast) is EDDY_EINVAL. */
EDDY_EXTERN int eddy_timer_start(eddy_timer_t *t, eddy_timer_cb cb,
                                 uint64_t timeout_ms, uint64_t repeat_ms);
EDDY_EXTERN int eddy_timer_stop(eddy_timer_t *t);
/* Restart a repeating timer with its repeat as timeout; EDDY_EINVAL if the
 * timer was never started. */
EDDY_EXTERN int eddy_timer_again(eddy_timer_t *t);
EDDY_EXTERN void eddy_timer_set_repeat(eddy_timer_t *t, uint64_t repeat_ms);
EDDY_EXTERN uint64_t eddy_timer_get_repeat(const eddy_timer_t *t);
/* Milliseconds until the timer is due, 0 if due or not active. */
EDDY_EXTERN uint64_t eddy_timer_get_due_in(const eddy_timer_t *t);

/* ---- Idle, prepare, check ------------------------------------------------ */

/* Idle handles run in the idle phase and keep poll from blocking; prepare
 * handles run just before poll; check handles just after it (setImmediate).
 * The three share one layout. */
struct eddy__hook_s {
  eddy_handle_t handle;
  /* Private. */
  void (*cb)(struct eddy__hook_s *h);
  eddy_queue_t node;
};

EDDY_EXTERN int eddy_idle_init(eddy_loop_t *loop, eddy_idle_t *h);
EDDY_EXTERN int eddy_idle_start(eddy_idle_t *h, void (*cb)(eddy_idle_t *h));
EDDY_EXTERN int eddy_idle_stop(eddy_idle_t *h);
EDDY_EXTERN int eddy_prepare_init(eddy_loop_t *loop, eddy_prepare_t *h);
EDDY_EXTERN int eddy_prepare_start(eddy_prepare_t *h,
                                   void (*cb)(eddy_prepare_t *h));
EDDY_EXTERN int eddy_prepare_stop(eddy_prepare_t *h);
EDDY_EXTERN int eddy_check_init(eddy_loop_t *loop, eddy_check_t *h);
EDDY_EXTERN int eddy_check_start(eddy_check_t *h, void (*cb)(eddy_check_t *h));
EDDY_EXTERN int eddy_check_stop(eddy_check_t *h);

/* ---- Async: wake the loop from any thread -------------------------------- */

typedef void (*eddy_async_cb)(eddy_async_t *a);

struct eddy_async_s {
  eddy_handle_t handle;
  /* Private. */
  eddy_async_cb cb;
  eddy_queue_t node;
  int pending; /* atomic: 0 idle, 1 a sender is signalling, 2 sent */
};

/* The handle is active (keeps the loop alive) from init until closed. */
EDDY_EXTERN int eddy_async_init(eddy_loop_t *loop, eddy_async_t *a,
                                eddy_async_cb cb);
/* Any thread.  Sends made before the callback runs coalesce into one call;
 * a send made after the callback started always causes another call. */
EDDY_EXTERN int eddy_async_send(eddy_async_t *a);

/* ---- Signals (signalfd) -------------------------------------------------- */

typedef void (*eddy_signal_cb)(eddy_signal_t *s, int signum);

struct eddy_signal_s {
  eddy_handle_t handle;
  int signum;
  /* Private. */
  eddy_signal_cb cb;
  eddy_queue_t node;
};

EDDY_EXTERN int eddy_signal_init(eddy_loop_t *loop, eddy_signal_t *s);
/* Several handles may watch one signal; each is called.  While any handle
 * watches a signal it is blocked for this thread and read from a signalfd;
 * when the last one stops, the signal's previous disposition is back. */
EDDY_EXTERN int eddy_signal_start(eddy_signal_t *s, eddy_signal_cb cb,
                                  int signum);
EDDY_EXTERN int eddy_signal_stop(eddy_signal_t *s);

/* ---- Poll: watch any file descriptor ------------------------------------- */

enum {
  EDDY_READABLE = 1,
  EDDY_WRITABLE = 2,
  EDDY_DISCONNECT = 4,
  EDDY_PRIORITIZED = 8
};

typedef void (*eddy_poll_cb)(eddy_poll_t *p, int status, int events);

struct eddy_poll_s {
  eddy_handle_t handle;
  /* Private. */
  eddy_poll_cb cb;
  int wanted; /* EDDY_READABLE | ... as started */
  eddy__io_t io;
};

/* The descriptor stays the caller's: closing the handle does not close it.
 * It must not be watched by another eddy handle of the same loop. */
EDDY_EXTERN int eddy_poll_init(eddy_loop_t *loop, eddy_poll_t *p, int fd);
EDDY_EXTERN int eddy_poll_start(eddy_poll_t *p, int events, eddy_poll_cb cb);
EDDY_EXTERN int eddy_poll_stop(eddy_poll_t *p);

/* ---- Worker pool --------------------------------------------------------- */

typedef enum {
  EDDY_WORK_FAST = 0, /* file system work */
  EDDY_WORK_SLOW      /* images, DNS: at most half the threads at once */
} eddy_work_class;

typedef void (*eddy_work_cb)(eddy_work_t *req);
typedef void (*eddy_after_work_cb)(eddy_work_t *req, int status);

struct eddy_work_s {
  void *data;
  eddy_loop_t *loop;
  /* Private. */
  eddy_work_cb work_cb;
  eddy_after_work_cb after_work_cb;
  eddy_queue_t node;
  eddy_work_class cls;
  int state;
  int status;
};

/* work_cb runs on a pool thread, then after_work_cb on the loop's thread
 * with 0, or EDDY_ECANCELED if eddy_cancel() took the work off the queue.
 * May be called from any thread. */
EDDY_EXTERN int eddy_queue_work(eddy_loop_t *loop, eddy_work_t *req,
                                eddy_work_class cls, eddy_work_cb work_cb,
                                eddy_after_work_cb after_work_cb);
/* EDDY_EBUSY if the work already runs or ran, EDDY_EINVAL if not queued. */
EDDY_EXTERN int eddy_cancel(eddy_work_t *req);
/* The pool's thread count (EDDY_THREADPOOL_SIZE, default 4, 1..1024). */
EDDY_EXTERN unsigned eddy_threadpool_size(void);

/* ---- Buffers ------------------------------------------------------------- */

typedef struct {
  char *base;
  size_t len;
} eddy_buf_t;

EDDY_EXTERN eddy_buf_t eddy_buf_init(char *base, size_t len);

/* A refcounted piece of loop-owned memory.  Slices up to
 * EDDY_SLAB_MAX_SLICE bytes are carved from 8 KB slabs (Node's Buffer
 * pool); larger ones are allocated alone.  Loop thread only. */
#define EDDY_SLAB_SIZE 8192
#define EDDY_SLAB_MAX_SLICE 4096

typedef struct eddy_slice_s {
  char *base;
  size_t len;
  void *owner; /* private */
} eddy_slice_t;

EDDY_EXTERN int eddy_slice_alloc(eddy_loop_t *loop, size_t len,
                                 eddy_slice_t *out);
EDDY_EXTERN void eddy_slice_retain(eddy_slice_t *s);
EDDY_EXTERN void eddy_slice_release(eddy_slice_t *s);

typedef struct {
  size_t rss;          /* resident set size of the process, bytes */
  size_t slab_used;    /* bytes held by live slices of this loop */
  size_t slab_free;    /* bytes of this loop's slabs not in use */
  size_t pool_queued;  /* work items waiting for a pool thread */
  size_t pool_threads; /* pool threads started */
} eddy_memory_usage_t;

EDDY_EXTERN int eddy_memory_usage(eddy_loop_t *loop, eddy_memory_usage_t *out);

/* ---- Emitter: Node's EventEmitter in small ------------------------------- */

typedef struct eddy_emitter_s eddy_emitter_t;
typedef void (*eddy_listener_cb)(eddy_emitter_t *e, const char *event,
                                 void *payload, void *ctx);

struct eddy_emitter_s {
  void *data;
  /* Private. */
  struct eddy__listener_s *listeners; /* in registration order */
  size_t nlisteners;
  size_t cap;
};

EDDY_EXTERN void eddy_emitter_init(eddy_emitter_t *e);
EDDY_EXTERN void eddy_emitter_destroy(eddy_emitter_t *e);
EDDY_EXTERN int eddy_on(eddy_emitter_t *e, const char *event,
                        eddy_listener_cb cb, void *ctx);
EDDY_EXTERN int eddy_once(eddy_emitter_t *e, const char *event,
                          eddy_listener_cb cb, void *ctx);
/* Removes the most recently added matching listener; EDDY_ENOENT if none. */
EDDY_EXTERN int eddy_off(eddy_emitter_t *e, const char *event,
                         eddy_listener_cb cb, void *ctx);
EDDY_EXTERN size_t eddy_listener_count(const eddy_emitter_t *e,
                                       const char *event);
/* Calls the event's listeners in order, as they were when emit began.
 * Returns how many ran.  Emitting "error" with no listener returns
 * EDDY_EUNHANDLED instead of aborting as Node would. */
EDDY_EXTERN int eddy_emit(eddy_emitter_t *e, const char *event, void *payload);
/* Emits "error" with &err as payload; returns err when nobody listens,
 * else 0. */
EDDY_EXTERN int eddy_emit_error(eddy_emitter_t *e, int err);

/* ---- Errors -------------------------------------------------------------- */

EDDY_EXTERN const char *eddy_strerror(int err);
EDDY_EXTERN const char *eddy_err_name(int err);

#ifdef __cplusplus
}
#endif

/* clang-format off: net.h first, the others use its types */
#include "eddy/net.h"
#include "eddy/image.h"
#include "eddy/fs.h"
#include "eddy/fstream.h"
/* clang-format on */

#endif
