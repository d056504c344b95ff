/* eddy static file serving: an HTTP handler that answers requests under a
 * URL prefix with the files of a root directory.  Included by eddy.h
 * (through eddy/http.h); not to be included alone.  docs/static.md tells
 * the whole story.
 *
 *  - GET and HEAD; other methods get 405 with "Allow: GET, HEAD".
 *  - Content-Type from the extension (a small built-in table), Content-Length,
 *    Last-Modified, ETag ("size-mtime" in hex, as nginx), Accept-Ranges.
 *  - If-None-Match (checked first) and If-Modified-Since answer 304.
 *  - One "Range: bytes=..." range answers 206 with Content-Range; a range
 *    past the end answers 416 with a Content-Range of the size alone (a star
 *    for the range); several ranges, or a header that does not parse, are
 *    ignored: 200 and the whole file.  If-Range is not supported (ignored).
 *  - A directory is served as its index.html, or 404.  No listings, no
 *    redirect for a directory named without its trailing slash.
 *  - The body leaves with sendfile(2) (eddy_http_send_file).
 *  - The root is a jail: ".." segments (also percent-encoded), encoded
 *    slashes or backslashes and NUL bytes are refused before any file is
 *    opened (403 for "..", 404 for the others); the file opened is then
 *    checked through /proc/self/fd to lie under the root's real path, so a
 *    symlink that leaves the root is 404 and not a byte of its target is
 *    sent.
 *  - Opening and stat-ing go through eddy's fs requests (the pool or the
 *    io_uring ring), never blocking the loop.  An open-file cache keeps up
 *    to cache_entries descriptors with their stat, each trusted for
 *    cache_valid_ms and then opened and checked again by one request while
 *    the others go on with it (nginx's open_file_cache). */
#ifndef EDDY_HTTP_STATIC_H
#define EDDY_HTTP_STATIC_H

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eddy_http_static_s eddy_http_static_t;

typedef struct {
  const char *root;        /* the directory served (required) */
  const char *prefix;      /* URL prefix, starting with '/'; default "/" */
  const char *index;       /* a directory's file; default "index.html" */
  unsigned cache_entries;  /* open-file cache size; 0 turns it off; 256 */
  uint64_t cache_valid_ms; /* how long an entry is trusted; 1000 */
} eddy_http_static_options_t;

typedef struct {
  uint64_t served; /* 200 and 206 */
  uint64_t not_modified;
  uint64_t refused; /* 403, 404, 405, 416 */
  uint64_t cache_hits;
  uint64_t opens; /* files opened (cache misses and revalidations) */
  size_t cached;  /* entries in the cache now */
} eddy_http_static_stats_t;

EDDY_EXTERN void eddy_http_static_options_init(eddy_http_static_options_t *o);
/* Allocates the handler into *out.  The root's real path is resolved now,
 * synchronously (start-up): EDDY_ENOENT, EDDY_ENOTDIR, ... if it is not a
 * directory. */
EDDY_EXTERN int eddy_http_static_init(eddy_loop_t *loop,
                                      eddy_http_static_t **out,
                                      const eddy_http_static_options_t *o);
/* From a request callback: 1 if the request's path is under the prefix,
 * and then the handler answers and ends the response (now or later); 0 if
 * not, and the response is still the caller's. */
EDDY_EXTERN int eddy_http_static_serve(eddy_http_static_t *st,
                                       eddy_http_req_t *req,
                                       eddy_http_res_t *res);
EDDY_EXTERN void eddy_http_static_stats(const eddy_http_static_t *st,
                                        eddy_http_static_stats_t *out);
/* Closes the cached files; the memory goes once the last request the
 * handler is answering has ended.  Serving after this is misuse. */
EDDY_EXTERN void eddy_http_static_close(eddy_http_static_t *st);

#ifdef __cplusplus
}
#endif
#endif
