/* eddy_memory_usage: Node's process.memoryUsage, for one loop. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "internal.h"

/* Resident set size from /proc/self/statm: "size resident shared ...",
 * counted in pages. */
static int eddy__rss(size_t *rss) {
  char buf[256];
  int fd;
  do
    fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  while (fd == -1 && errno == EINTR);
  if (fd == -1)
    return -errno;

  ssize_t n;
  do
    n = read(fd, buf, sizeof(buf) - 1);
  while (n == -1 && errno == EINTR);
  int err = n == -1 ? -errno : 0;
  close(fd);
  if (err != 0)
    return err;
  buf[n] = '\0';

  unsigned long size, resident;
  if (sscanf(buf, "%lu %lu", &size, &resident) != 2)
    return EDDY_EIO;
  long page = sysconf(_SC_PAGESIZE);
  if (page <= 0)
    return EDDY_EIO;
  *rss = (size_t)resident * (size_t)page;
  return 0;
}

/* slab_free is the bytes of the loop's free slabs plus the room left in its
 * current slab.  The unused tails of older slabs that still hold slices are
 * in neither slab_used nor slab_free: they come back only with the slab. */
int eddy_memory_usage(eddy_loop_t *loop, eddy_memory_usage_t *out) {
  if (loop == NULL || out == NULL)
    return EDDY_EINVAL;
  size_t rss;
  int rc = eddy__rss(&rss);
  if (rc != 0)
    return rc;
  out->rss = rss;
  out->slab_used = loop->slab.used_bytes;
  out->slab_free = eddy__slab_free_bytes(loop);
  out->pool_queued = eddy__pool_queued();
  out->pool_threads = eddy__pool_threads();
  return 0;
}
