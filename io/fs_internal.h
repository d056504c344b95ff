/* What io/fs.c (requests, pool path, synchronous mode) and io/fs_uring.c
 * (the io_uring path) share. */
#ifndef EDDY_FS_INTERNAL_H
#define EDDY_FS_INTERNAL_H

#include "core/internal.h"

/* Runs the request's operation on the calling thread and returns its
 * result (a count, fd or 0, or a negative EDDY_E* error).  Any thread. */
ssize_t eddy__fs_exec(eddy_fs_t *req);

/* Puts a started request on the pool (fast class).  From the loop's
 * thread.  0, or the submission's error. */
int eddy__fs_pool_submit(eddy_fs_t *req);

/* The request finished with result: frees what only the operation needed
 * and calls the callback.  Loop thread. */
void eddy__fs_finish(eddy_fs_t *req, ssize_t result);

/* io/fs_uring.c.  Starts req on the loop's ring if the loop's backend is
 * io_uring, EDDY_FS does not say "pool", and the ring does this operation:
 * returns 1 then.  0: the caller uses the pool. */
int eddy__fs_uring_submit(eddy_fs_t *req);

/* Frees scandir's entries (req->ptr, req->result of them). */
void eddy__fs_free_dirents(eddy_fs_t *req);

/* Copies a statx answer into an eddy_stat_t; both paths use it. */
struct statx;
void eddy__fs_from_statx(eddy_stat_t *st, const struct statx *sx);

#endif
