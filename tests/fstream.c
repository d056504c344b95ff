/* File streams: reading in chunks and ranges, pause and resume, errors,
 * writing with the high-water mark, drain and finish, destroy. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"

TestSuite(fstream, .timeout = 30);

static eddy_loop_t loop;
static char path[64];

static uint64_t fnv(uint64_t h, const void *data, size_t len) {
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++)
    h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}
#define FNV0 0xcbf29ce484222325ULL

static char pattern(size_t i) {
  return (char)(i * 7 + i / 251);
}

/* A file of size bytes of the pattern; its hash from offset a to b. */
static void make_file(size_t size) {
  snprintf(path, sizeof path, "/tmp/eddy-fstream-%d", getpid());
  FILE *f = fopen(path, "wb");
  cr_assert_not_null(f);
  for (size_t i = 0; i < size; i++)
    fputc(pattern(i), f);
  fclose(f);
}

static uint64_t pattern_hash(size_t a, size_t b) {
  uint64_t h = FNV0;
  for (size_t i = a; i < b; i++) {
    char c = pattern(i);
    h = fnv(h, &c, 1);
  }
  return h;
}

/* ---- Reading ------------------------------------------------------------- */

static eddy_file_rstream_t rs;
static uint64_t got_hash;
static size_t got_bytes, chunks, max_chunk;
static int ends, errors, last_error, closes, data_while_paused;
static eddy_timer_t timer;

static void reset(void) {
  got_hash = FNV0;
  got_bytes = chunks = max_chunk = 0;
  ends = errors = last_error = closes = data_while_paused = 0;
}

static void on_rclose(eddy_file_rstream_t *r) {
  closes++;
}

static void on_data(eddy_file_rstream_t *r, ssize_t n, const eddy_slice_t *b) {
  if (eddy_file_rstream_is_paused(r))
    data_while_paused++;
  got_hash = fnv(got_hash, b->base, (size_t)n);
  got_bytes += (size_t)n;
  chunks++;
  if ((size_t)n > max_chunk)
    max_chunk = (size_t)n;
}

static void on_end(eddy_file_rstream_t *r) {
  ends++;
  eddy_file_rstream_close(r, on_rclose);
}

static void on_error(eddy_file_rstream_t *r, int err) {
  errors++;
  last_error = err;
  eddy_file_rstream_close(r, on_rclose);
}

EDDY_IO_TEST(fstream, reads_a_file_in_chunks) {
  make_file(300000);
  reset();
  eddy_test_loop_init(&loop, *backend);
  eddy_file_rstream_options_t o;
  eddy_file_rstream_options_init(&o);
  o.chunk_size = 65536;
  cr_assert(eq(int, eddy_file_rstream_open(&loop, &rs, path, &o), 0));
  cr_assert(
      eq(int, eddy_file_rstream_start(&rs, on_data, on_end, on_error), 0));
  cr_assert(eq(sz, chunks, 0)); /* never inside start */
  eddy_test_loop_close(&loop);
  cr_assert(eq(int, ends, 1));
  cr_assert(eq(int, errors, 0));
  cr_assert(eq(int, closes, 1));
  cr_assert(eq(sz, got_bytes, 300000));
  cr_assert(eq(u64, got_hash, pattern_hash(0, 300000)));
  cr_assert(eq(sz, chunks, 5)); /* 4 x 64 KB + the rest */
  cr_assert(eq(sz, max_chunk, 65536));
  unlink(path);
}

EDDY_IO_TEST(fstream, reads_a_range_of_an_open_descriptor) {
  make_file(100000);
  reset();
  eddy_test_loop_init(&loop, *backend);
  int fd = open(path, O_RDONLY);
  eddy_file_rstream_options_t o;
  eddy_file_rstream_options_init(&o);
  o.start = 1000;
  o.end = 70999; /* inclusive */
  o.chunk_size = 10000;
  cr_assert(eq(int, eddy_file_rstream_open_fd(&loop, &rs, fd, &o), 0));
  cr_assert(
      eq(int, eddy_file_rstream_start(&rs, on_data, on_end, on_error), 0));
  eddy_test_loop_close(&loop);
  cr_assert(eq(int, ends, 1));
  cr_assert(eq(sz, got_bytes, 70000));
  cr_assert(eq(u64, got_hash, pattern_hash(1000, 71000)));
  /* The descriptor stays the caller's. */
  cr_assert(eq(int, fcntl(fd, F_GETFD) >= 0, 1));
  close(fd);
  unlink(path);
}

static size_t chunks_at_resume, queued_at_resume;

static void resume_cb(eddy_timer_t *t) {
  chunks_at_resume = chunks;
  queued_at_resume = rs.queued_bytes;
  eddy_file_rstream_resume(&rs);
  eddy_close(&t->handle, NULL);
}

static void on_data_pausing(eddy_file_rstream_t *r, ssize_t n,
                            const eddy_slice_t *b) {
  on_data(r, n, b);
  if (chunks == 1) {
    eddy_file_rstream_pause(r);
    eddy_timer_start(&timer, resume_cb, 30, 0);
  }
}

EDDY_IO_TEST(fstream, pause_holds_data_until_resume) {
  make_file(200000);
  reset();
  eddy_test_loop_init(&loop, *backend);
  eddy_timer_init(&loop, &timer);
  eddy_file_rstream_options_t o;
  eddy_file_rstream_options_init(&o);
  o.chunk_size = 16384;
  o.high_water_mark = 32768;
  cr_assert(eq(int, eddy_file_rstream_open(&loop, &rs, path, &o), 0));
  eddy_file_rstream_start(&rs, on_data_pausing, on_end, on_error);
  eddy_test_loop_close(&loop);
  cr_assert(eq(sz, chunks_at_resume, 1));
  /* Reading ahead while paused stops at the high-water mark. */
  cr_assert(queued_at_resume <= o.high_water_mark + o.chunk_size,
            "read ahead %zu", queued_at_resume);
  cr_assert(eq(int, data_while_paused, 0));
  cr_assert(eq(int, ends, 1));
  cr_assert(eq(sz, got_bytes, 200000));
  cr_assert(eq(u64, got_hash, pattern_hash(0, 200000)));
  unlink(path);
}

EDDY_IO_TEST(fstream, a_missing_file_is_one_error) {
  reset();
  eddy_test_loop_init(&loop, *backend);
  cr_assert(eq(
      int, eddy_file_rstream_open(&loop, &rs, "/nonexistent/eddy/x", NULL), 0));
  eddy_file_rstream_start(&rs, on_data, on_end, on_error);
  eddy_test_loop_close(&loop);
  cr_assert(eq(int, errors, 1));
  cr_assert(eq(int, last_error, EDDY_ENOENT));
  cr_assert(eq(int, ends, 0));
  cr_assert(eq(sz, chunks, 0));
  cr_assert(eq(int, closes, 1));
}

static void on_data_closing(eddy_file_rstream_t *r, ssize_t n,
                            const eddy_slice_t *b) {
  on_data(r, n, b);
  eddy_file_rstream_close(r, on_rclose);
}

EDDY_IO_TEST(fstream, close_in_the_data_callback_stops_the_flow) {
  make_file(300000);
  reset();
  eddy_test_loop_init(&loop, *backend);
  cr_assert(eq(int, eddy_file_rstream_open(&loop, &rs, path, NULL), 0));
  eddy_file_rstream_start(&rs, on_data_closing, on_end, on_error);
  eddy_test_loop_close(&loop);
  cr_assert(eq(sz, chunks, 1));
  cr_assert(eq(int, ends + errors, 0));
  cr_assert(eq(int, closes, 1));
  unlink(path);
}

/* ---- Writing ------------------------------------------------------------- */

static eddy_file_wstream_t ws;
static int finishes, finish_status, drains, werrors, werror;
static size_t written, to_write, fulls;

static void on_finish(eddy_file_wstream_t *w, int status) {
  finishes++;
  finish_status = status;
}

static void on_werror(eddy_file_wstream_t *w, int err) {
  werrors++;
  werror = err;
}

/* Writes the pattern in 10000-byte pieces until full, then on drain. */
static void write_more(eddy_file_wstream_t *w) {
  char buf[10000];
  while (written < to_write) {
    size_t n =
        to_write - written < sizeof buf ? to_write - written : sizeof buf;
    for (size_t i = 0; i < n; i++)
      buf[i] = pattern(written + i);
    int r = eddy_file_wstream_write(w, buf, n);
    cr_assert(r == 0 || r == EDDY_STREAM_FULL, "write: %d", r);
    written += n;
    if (r == EDDY_STREAM_FULL) {
      fulls++;
      cr_assert(w->write_queue_size >= w->opts.high_water_mark);
      return;
    }
  }
  eddy_file_wstream_end(w, on_finish);
}

static void on_drain(eddy_file_wstream_t *w) {
  drains++;
  cr_assert(w->write_queue_size < w->opts.high_water_mark);
  write_more(w);
}

static uint64_t file_hash(size_t *size) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f);
  uint64_t h = FNV0;
  int c;
  *size = 0;
  while ((c = fgetc(f)) != EOF) {
    char ch = (char)c;
    h = fnv(h, &ch, 1);
    (*size)++;
  }
  fclose(f);
  return h;
}

EDDY_IO_TEST(fstream, writes_with_backpressure_then_finishes) {
  snprintf(path, sizeof path, "/tmp/eddy-fstream-w-%d", getpid());
  finishes = drains = werrors = 0;
  written = fulls = 0;
  to_write = 500000;
  eddy_test_loop_init(&loop, *backend);
  eddy_file_wstream_options_t o;
  eddy_file_wstream_options_init(&o);
  o.high_water_mark = 32768;
  o.flags = EDDY_FILE_WSTREAM_FSYNC;
  cr_assert(
      eq(int, eddy_file_wstream_open(&loop, &ws, path, O_TRUNC, 0644, &o), 0));
  eddy_file_wstream_set_drain_cb(&ws, on_drain);
  eddy_file_wstream_set_error_cb(&ws, on_werror);
  write_more(&ws);
  eddy_test_loop_close(&loop);
  cr_assert(eq(int, finishes, 1));
  cr_assert(eq(int, finish_status, 0));
  cr_assert(eq(int, werrors, 0));
  cr_assert(fulls > 0 && drains == (int)fulls, "fulls %zu drains %d", fulls,
            drains);
  size_t size;
  cr_assert(eq(u64, file_hash(&size), pattern_hash(0, 500000)));
  cr_assert(eq(sz, size, 500000));
  cr_assert(eq(int, eddy_file_wstream_write(&ws, "x", 1), EDDY_EPIPE));
  unlink(path);
}

EDDY_IO_TEST(fstream, a_write_stream_on_a_directory_fails_once) {
  finishes = werrors = 0;
  eddy_test_loop_init(&loop, *backend);
  cr_assert(
      eq(int, eddy_file_wstream_open(&loop, &ws, "/tmp", 0, 0644, NULL), 0));
  eddy_file_wstream_set_error_cb(&ws, on_werror);
  cr_assert(eq(int, eddy_file_wstream_write(&ws, "abc", 3), 0));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, werrors, 1));
  cr_assert(eq(int, werror, EDDY_EISDIR));
  cr_assert(eq(int, eddy_file_wstream_write(&ws, "abc", 3), EDDY_EISDIR));
  cr_assert(eq(int, eddy_file_wstream_end(&ws, on_finish), 0));
  eddy_test_loop_close(&loop);
  cr_assert(eq(int, finishes, 1));
  cr_assert(eq(int, finish_status, EDDY_EISDIR));
  cr_assert(eq(int, werrors, 1));
}

EDDY_IO_TEST(fstream, destroy_drops_what_is_queued) {
  snprintf(path, sizeof path, "/tmp/eddy-fstream-d-%d", getpid());
  finishes = werrors = 0;
  eddy_test_loop_init(&loop, *backend);
  cr_assert(eq(
      int, eddy_file_wstream_open(&loop, &ws, path, O_TRUNC, 0644, NULL), 0));
  eddy_file_wstream_set_error_cb(&ws, on_werror);
  static char big[100000];
  eddy_file_wstream_write(&ws, big, sizeof big);
  eddy_file_wstream_write(&ws, big, sizeof big);
  cr_assert(eq(int, eddy_file_wstream_destroy(&ws, on_finish), 0));
  cr_assert(eq(int, eddy_file_wstream_write(&ws, "x", 1), EDDY_EPIPE));
  eddy_test_loop_close(&loop);
  cr_assert(eq(int, finishes, 1));
  cr_assert(eq(int, finish_status, EDDY_ECANCELED));
  cr_assert(eq(int, werrors, 0));
  struct stat sb;
  cr_assert(eq(int, stat(path, &sb), 0));
  cr_assert(sb.st_size < 200000, "size %lld", (long long)sb.st_size);
  unlink(path);
}
