/* Pool-internal declarations (pool/pool.c). */
#ifndef EDDY_POOL_H
#define EDDY_POOL_H

/* The process-wide pool has an explicit lifetime: it starts with the first
 * eddy_queue_work() and lives until this is called.  Shutdown lets the
 * threads run every request still queued, joins them and puts the pool back
 * to "not started" (the size is read again from EDDY_THREADPOOL_SIZE on the
 * next submission).  Submissions made while it runs fail with EDDY_EBUSY.
 * Call it from one thread at a time, never from a pool thread. */
void eddy__pool_shutdown(void);

#endif
