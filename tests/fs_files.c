/* The fs API's whole-file operations (copyfile, sendfile, read_file,
 * write_file), synchronous mode, cancel, failed submissions, the loop's
 * close while requests are in flight, and the ring's fallback to the pool,
 * through both paths (tests/fs_helpers.h). */
#include <semaphore.h>
#include <sys/socket.h>

#include "fs_helpers.h"

TestSuite(fs_files, .timeout = 30);

static eddy_fs_t req;

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  cr_assert(f != NULL, "fopen %s", path);
  static char buf[1 << 16];
  *len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  return buf;
}

/* ---- copyfile ----------------------------------------------------------- */

FS_TEST(fs_files, fs_copyfile_copies_bytes_and_mode) {
  fs_setup(mode);
  fs_put(P("src"), "some bytes to copy");
  cr_assert(eq(int, chmod(P("src"), 0640), 0));
  EXPECT(&req,
         eddy_fs_copyfile(&fs_loop, &req, P("src"), P("dst"), 0, fs_on_done),
         0);
  size_t n;
  char *got = slurp(P("dst"), &n);
  cr_assert(eq(sz, n, 18));
  cr_assert(eq(int, memcmp(got, "some bytes to copy", 18), 0));
  struct stat st;
  cr_assert(eq(int, stat(P("dst"), &st), 0));
  cr_assert(eq(int, (int)(st.st_mode & 07777), 0640));

  /* Over an existing file: replaced; with EXCL: EEXIST. */
  fs_put(P("old"), "a much longer old content that must go away");
  EXPECT(&req,
         eddy_fs_copyfile(&fs_loop, &req, P("src"), P("old"), 0, fs_on_done),
         0);
  got = slurp(P("old"), &n);
  cr_assert(eq(sz, n, 18));
  EXPECT(&req,
         eddy_fs_copyfile(&fs_loop, &req, P("src"), P("old"),
                          EDDY_FS_COPYFILE_EXCL, fs_on_done),
         EDDY_EEXIST);
  /* Onto itself: nothing lost. */
  EXPECT(&req,
         eddy_fs_copyfile(&fs_loop, &req, P("src"), P("src"), 0, fs_on_done),
         0);
  got = slurp(P("src"), &n);
  cr_assert(eq(sz, n, 18));

  EXPECT(&req,
         eddy_fs_copyfile(&fs_loop, &req, P("nope"), P("x"), 0, fs_on_done),
         EDDY_ENOENT);
  EXPECT(&req,
         eddy_fs_copyfile(&fs_loop, &req, P("src"), P("no/x"), 0, fs_on_done),
         EDDY_ENOENT);
  EXPECT(&req,
         eddy_fs_copyfile(&fs_loop, &req, P("src"), fs_dir, 0, fs_on_done),
         EDDY_EISDIR);
  /* A reflink or nothing: ENOTSUP where the file system has none (ext4,
   * tmpfs), else a faithful copy (btrfs, xfs). */
  ssize_t r =
      AWAIT(&req, eddy_fs_copyfile(&fs_loop, &req, P("src"), P("clone"),
                                   EDDY_FS_COPYFILE_FICLONE_FORCE, fs_on_done));
  if (r == 0) {
    got = slurp(P("clone"), &n);
    cr_assert(eq(sz, n, 18));
  } else {
    cr_assert(eq(int, (int)r, EDDY_ENOTSUP), "%s", eddy_err_name((int)r));
    cr_assert(eq(int, access(P("clone"), F_OK), -1), "half copy left");
  }
  eddy_fs_req_cleanup(&req);
  fs_teardown();
}

FS_TEST(fs_files, fs_copyfile_large_file) {
  fs_setup(mode);
  size_t len = 3 * 1024 * 1024 + 17;
  char *data = malloc(len);
  for (size_t i = 0; i < len; i++)
    data[i] = (char)(i * 2654435761u >> 13);
  EXPECT(&req,
         eddy_fs_write_file(&fs_loop, &req, P("big"), data, len, 0, 0644,
                            fs_on_done),
         (ssize_t)len);
  EXPECT(&req,
         eddy_fs_copyfile(&fs_loop, &req, P("big"), P("copy"), 0, fs_on_done),
         0);
  ssize_t n =
      AWAIT(&req, eddy_fs_read_file(&fs_loop, &req, P("copy"), fs_on_done));
  cr_assert(eq(i64, (int64_t)n, (int64_t)len));
  cr_assert(eq(int, memcmp(req.ptr, data, len), 0));
  eddy_fs_req_cleanup(&req);
  free(data);
  fs_teardown();
}

/* ---- sendfile ----------------------------------------------------------- */

FS_TEST(fs_files, fs_sendfile_file_to_socket_and_file) {
  fs_setup(mode);
  fs_put(P("src"), "0123456789abcdef");
  int in = open(P("src"), O_RDONLY);
  int sv[2];
  cr_assert(eq(int, socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0));
  EXPECT(&req, eddy_fs_sendfile(&fs_loop, &req, sv[0], in, 4, 6, fs_on_done),
         6);
  char buf[32] = {0};
  cr_assert(eq(i64, (int64_t)read(sv[1], buf, sizeof buf), 6));
  cr_assert(eq(str, buf, "456789"));
  /* Past the end: what there is. */
  EXPECT(&req, eddy_fs_sendfile(&fs_loop, &req, sv[0], in, 10, 100, fs_on_done),
         6);
  /* -1: from and moving the file position. */
  cr_assert(eq(i64, (int64_t)lseek(in, 14, SEEK_SET), 14));
  EXPECT(&req, eddy_fs_sendfile(&fs_loop, &req, sv[0], in, -1, 10, fs_on_done),
         2);
  cr_assert(eq(i64, (int64_t)lseek(in, 0, SEEK_CUR), 16));

  int out = open(P("dst"), O_WRONLY | O_CREAT, 0644);
  EXPECT(&req, eddy_fs_sendfile(&fs_loop, &req, out, in, 0, 16, fs_on_done),
         16);
  close(out);
  size_t n;
  char *got = slurp(P("dst"), &n);
  cr_assert(eq(sz, n, 16));
  cr_assert(eq(int, memcmp(got, "0123456789abcdef", 16), 0));

  close(sv[0]);
  close(sv[1]);
  EXPECT(&req, eddy_fs_sendfile(&fs_loop, &req, sv[0], in, 0, 1, fs_on_done),
         EDDY_EBADF);
  close(in);
  fs_teardown();
}

/* ---- read_file, write_file ------------------------------------------------
 */

FS_TEST(fs_files, fs_read_file_whole) {
  fs_setup(mode);
  fs_put(P("small"), "small file\n");
  ssize_t n =
      AWAIT(&req, eddy_fs_read_file(&fs_loop, &req, P("small"), fs_on_done));
  cr_assert(eq(i64, (int64_t)n, 11));
  cr_assert(eq(str, (char *)req.ptr, "small file\n"));
  /* The caller may keep the bytes. */
  char *kept = req.ptr;
  req.ptr = NULL;
  eddy_fs_req_cleanup(&req);
  cr_assert(eq(str, kept, "small file\n"));
  free(kept);

  /* Files with no size to go by are read to the end; on the ring path
   * they are handed to the pool (docs/fs.md). */
  fs_want_via = fs_ring_mode() ? EDDY_FS_VIA_POOL : EDDY_FS_VIA_NONE;
  fs_put(P("empty"), "");
  EXPECT(&req, eddy_fs_read_file(&fs_loop, &req, P("empty"), fs_on_done), 0);
  n = AWAIT(&req,
            eddy_fs_read_file(&fs_loop, &req, "/proc/self/status", fs_on_done));
  cr_assert(n > 0);
  cr_assert(strstr(req.ptr, "Pid:") != NULL);
  cr_assert(eq(sz, strlen(req.ptr), (size_t)n));
  eddy_fs_req_cleanup(&req);
  fs_want_via = EDDY_FS_VIA_NONE;

  EXPECT(&req, eddy_fs_read_file(&fs_loop, &req, P("nope"), fs_on_done),
         EDDY_ENOENT);
  EXPECT(&req, eddy_fs_read_file(&fs_loop, &req, fs_dir, fs_on_done),
         EDDY_EISDIR);
  EXPECT(&req, eddy_fs_read_file(&fs_loop, &req, P("small/x"), fs_on_done),
         EDDY_ENOTDIR);
  cr_assert(req.ptr == NULL);
  fs_teardown();
}

static const char *fifo_path;

static void *fifo_writer(void *arg) {
  (void)arg;
  int fd = open(fifo_path, O_WRONLY); /* waits for the reader */
  if (fd >= 0) {
    for (int i = 0; i < 3; i++) {
      if (write(fd, "through a fifo ", 15) != 15)
        break;
      usleep(1000);
    }
    close(fd);
  }
  return NULL;
}

/* A FIFO is read to its end, by one reader, whichever of the reader and
 * the writer comes first: it goes to the pool, whose open blocks until the
 * writer comes (the ring's open would not wait, and the read would end
 * before the first byte; io/fs_uring.c, special_file). */
FS_TEST(fs_files, fs_read_file_fifo_to_the_end) {
  fs_setup(mode);
  fifo_path = P("fifo");
  cr_assert(eq(int, mkfifo(fifo_path, 0600), 0));
  pthread_t th;
  cr_assert(eq(int, pthread_create(&th, NULL, fifo_writer, NULL), 0));
  fs_want_via = EDDY_FS_VIA_POOL;
  ssize_t n =
      AWAIT(&req, eddy_fs_read_file(&fs_loop, &req, fifo_path, fs_on_done));
  fs_want_via = EDDY_FS_VIA_NONE;
  pthread_join(th, NULL);
  cr_assert(eq(i64, (int64_t)n, 45), "%s", eddy_err_name((int)n));
  cr_assert(eq(str, (char *)req.ptr,
               "through a fifo through a fifo through a fifo "));
  eddy_fs_req_cleanup(&req);
  fs_teardown();
}

FS_TEST(fs_files, fs_write_file_truncate_excl_append) {
  fs_setup(mode);
  fs_put(P("f"), "previous longer content");
  EXPECT(
      &req,
      eddy_fs_write_file(&fs_loop, &req, P("f"), "new", 3, 0, 0644, fs_on_done),
      3);
  size_t n;
  char *got = slurp(P("f"), &n);
  cr_assert(eq(sz, n, 3));
  cr_assert(eq(int, memcmp(got, "new", 3), 0));
  EXPECT(&req,
         eddy_fs_write_file(&fs_loop, &req, P("f"), "+more", 5, O_APPEND, 0644,
                            fs_on_done),
         5);
  got = slurp(P("f"), &n);
  cr_assert(eq(sz, n, 8));
  cr_assert(eq(int, memcmp(got, "new+more", 8), 0));
  EXPECT(&req,
         eddy_fs_write_file(&fs_loop, &req, P("f"), "x", 1, O_EXCL, 0644,
                            fs_on_done),
         EDDY_EEXIST);
  EXPECT(&req,
         eddy_fs_write_file(&fs_loop, &req, P("new"), "", 0, O_EXCL, 0600,
                            fs_on_done),
         0);
  struct stat st;
  cr_assert(eq(int, stat(P("new"), &st), 0));
  cr_assert(eq(i64, (int64_t)st.st_size, 0));
  cr_assert(eq(int, (int)(st.st_mode & 0777), 0600));
  EXPECT(&req,
         eddy_fs_write_file(&fs_loop, &req, P("no/f"), "x", 1, 0, 0644,
                            fs_on_done),
         EDDY_ENOENT);
  EXPECT(
      &req,
      eddy_fs_write_file(&fs_loop, &req, fs_dir, "x", 1, 0, 0644, fs_on_done),
      EDDY_EISDIR);
  EXPECT(
      &req,
      eddy_fs_write_file(&fs_loop, &req, P("f/x"), "x", 1, 0, 0644, fs_on_done),
      EDDY_ENOTDIR);
  fs_teardown();
}

/* ---- many at once ----------------------------------------------------------
 */

#define MANY_FILES 300

static int many_done, many_bad;

static void on_many(eddy_fs_t *r) {
  fs_on_done(r);
  char want[32];
  int len = snprintf(want, sizeof want, "file number %zu", (size_t)r->data);
  if (r->result != len || memcmp(r->ptr, want, (size_t)len) != 0)
    many_bad++;
  many_done++;
  eddy_fs_req_cleanup(r);
}

FS_TEST(fs_files, fs_read_file_many_in_flight) {
  fs_setup(mode);
  char content[32];
  for (size_t i = 0; i < MANY_FILES; i++) {
    snprintf(content, sizeof content, "file number %zu", i);
    fs_put(P("f%zu", i), content);
  }
  eddy_fs_t *reqs = calloc(MANY_FILES, sizeof *reqs);
  for (size_t i = 0; i < MANY_FILES; i++) {
    reqs[i].data = (void *)i;
    cr_assert(eq(
        int, eddy_fs_read_file(&fs_loop, &reqs[i], P("f%zu", i), on_many), 0));
  }
  eddy_run(&fs_loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, many_done, MANY_FILES));
  cr_assert(eq(int, many_bad, 0));
  free(reqs);
  fs_teardown();
}

/* ---- synchronous mode ------------------------------------------------------
 */

FS_TEST(fs_files, fs_null_callback_runs_synchronously) {
  fs_setup(mode);
  int fd = eddy_fs_open(&fs_loop, &req, P("s"), O_RDWR | O_CREAT, 0644, NULL);
  cr_assert(fd >= 0, "%s", eddy_err_name(fd));
  cr_assert(eq(int, (int)eddy_fs_via(&req), (int)EDDY_FS_VIA_SYNC));
  cr_assert(eq(i64, (int64_t)req.result, fd));
  eddy_fs_req_cleanup(&req);
  char data[] = "sync!";
  eddy_buf_t b = eddy_buf_init(data, 5);
  cr_assert(eq(int, eddy_fs_write(&fs_loop, &req, fd, &b, 1, 0, NULL), 5));
  char back[5];
  eddy_buf_t rb = eddy_buf_init(back, 5);
  cr_assert(eq(int, eddy_fs_read(&fs_loop, &req, fd, &rb, 1, 0, NULL), 5));
  cr_assert(eq(int, memcmp(back, "sync!", 5), 0));
  cr_assert(eq(int, eddy_fs_fstat(&fs_loop, &req, fd, NULL), 0));
  cr_assert(eq(u64, req.statbuf.size, 5));
  cr_assert(eq(int, eddy_fs_close(&fs_loop, &req, fd, NULL), 0));
  cr_assert(eq(int, eddy_fs_read_file(&fs_loop, &req, P("s"), NULL), 5));
  cr_assert(eq(str, (char *)req.ptr, "sync!"));
  eddy_fs_req_cleanup(&req);
  cr_assert(
      eq(int, eddy_fs_stat(&fs_loop, &req, P("nope"), NULL), EDDY_ENOENT));
  eddy_fs_req_cleanup(&req);
  cr_assert(eq(int, eddy_fs_scandir(&fs_loop, &req, fs_dir, 0, NULL), 1));
  eddy_dirent_t ent;
  cr_assert(eq(int, eddy_fs_scandir_next(&req, &ent), 0));
  cr_assert(eq(str, (char *)ent.name, "s"));
  eddy_fs_req_cleanup(&req);
  /* A synchronous request is not cancellable, and nothing is in flight. */
  cr_assert(eq(int, eddy_fs_cancel(&req), EDDY_EINVAL));
  cr_assert(eq(int, eddy_loop_alive(&fs_loop), 0));
  fs_teardown();
}

/* ---- failed submissions -----------------------------------------------------
 */

static void never_called(eddy_fs_t *r) {
  (void)r;
  cr_assert(0, "the callback of a failed submission ran");
}

FS_TEST(fs_files, fs_failed_submission_never_calls_back) {
  fs_setup(mode);
  char c;
  eddy_buf_t b = eddy_buf_init(&c, 1);
  cr_assert(eq(int,
               eddy_fs_open(&fs_loop, &req, NULL, O_RDONLY, 0, never_called),
               EDDY_EINVAL));
  cr_assert(eq(int, eddy_fs_read(&fs_loop, &req, 0, &b, 0, 0, never_called),
               EDDY_EINVAL));
  cr_assert(eq(int, eddy_fs_read(&fs_loop, &req, 0, NULL, 1, 0, never_called),
               EDDY_EINVAL));
  cr_assert(eq(int, eddy_fs_write(&fs_loop, &req, 1, &b, 1, -2, never_called),
               EDDY_EINVAL));
  cr_assert(eq(int,
               eddy_fs_mkdir(&fs_loop, &req, P("d"), 0755, 0x100, never_called),
               EDDY_EINVAL));
  cr_assert(eq(int, eddy_fs_rename(&fs_loop, &req, P("a"), NULL, never_called),
               EDDY_EINVAL));
  cr_assert(eq(int, eddy_fs_scandir(&fs_loop, &req, fs_dir, 1, never_called),
               EDDY_EINVAL));
  cr_assert(eq(int, eddy_fs_ftruncate(&fs_loop, &req, 0, -1, never_called),
               EDDY_EINVAL));
  cr_assert(eq(
      int, eddy_fs_copyfile(&fs_loop, &req, P("a"), P("b"), 0x40, never_called),
      EDDY_EINVAL));
  cr_assert(eq(int,
               eddy_fs_write_file(&fs_loop, &req, P("a"), NULL, 1, 0, 0644,
                                  never_called),
               EDDY_EINVAL));
  cr_assert(
      eq(int, eddy_fs_stat(NULL, &req, P("a"), never_called), EDDY_EINVAL));
  cr_assert(eq(int, (int)eddy_fs_via(&req), (int)EDDY_FS_VIA_NONE));
  cr_assert(eq(int, eddy_loop_alive(&fs_loop), 0));
  eddy_run(&fs_loop, EDDY_RUN_NOWAIT);
  fs_teardown();
}

/* ---- cancel
 * ------------------------------------------------------------------ */

static sem_t blocker_started, blocker_release;

static void blocker_work(eddy_work_t *w) {
  (void)w;
  sem_post(&blocker_started);
  while (sem_wait(&blocker_release) != 0)
    ;
}

static void blocker_after(eddy_work_t *w, int status) {
  (void)w;
  (void)status;
}

FS_TEST(fs_files, fs_cancel_queued_request) {
  setenv("EDDY_THREADPOOL_SIZE", "1", 1);
  fs_setup(mode);
  fs_put(P("keep"), "x");
  cr_assert(eq(int, sem_init(&blocker_started, 0, 0), 0));
  cr_assert(eq(int, sem_init(&blocker_release, 0, 0), 0));
  eddy_work_t blocker;
  cr_assert(eq(int,
               eddy_queue_work(&fs_loop, &blocker, EDDY_WORK_FAST, blocker_work,
                               blocker_after),
               0));
  while (sem_wait(&blocker_started) != 0)
    ;
  /* The only thread is busy: the unlink waits in the queue. */
  eddy_fs_t victim;
  cr_assert(
      eq(int, eddy_fs_unlink(&fs_loop, &victim, P("keep"), fs_on_done), 0));
  cr_assert(eq(int, eddy_fs_cancel(&victim), 0));
  cr_assert(eq(int, eddy_fs_cancel(&victim), EDDY_EBUSY));
  sem_post(&blocker_release);
  cr_assert(eq(i64, (int64_t)fs_await(0, &victim, "cancelled unlink"),
               (int64_t)EDDY_ECANCELED));
  eddy_fs_req_cleanup(&victim);
  cr_assert(eq(int, access(P("keep"), F_OK), 0), "cancelled work ran");
  fs_teardown();
}

/* On the ring the kernel has the request at once: cancel says EBUSY and
 * the request completes normally.  On the pool a running request is
 * EBUSY too. */
FS_TEST(fs_files, fs_cancel_of_ring_or_finished_request_is_ebusy) {
  fs_setup(mode);
  fs_put(P("f"), "x");
  cr_assert(eq(int, eddy_fs_stat(&fs_loop, &req, P("f"), fs_on_done), 0));
  if (fs_ring_mode())
    cr_assert(eq(int, eddy_fs_cancel(&req), EDDY_EBUSY));
  cr_assert(eq(i64, (int64_t)fs_await(0, &req, "stat"), 0));
  cr_assert(eq(int, eddy_fs_cancel(&req), EDDY_EBUSY), "finished");
  fs_teardown();
}

/* ---- the loop and requests in flight
 * ----------------------------------------- */

FS_TEST(fs_files, fs_requests_keep_loop_alive_and_block_close) {
  fs_setup(mode);
  fs_put(P("f"), "abc");
  cr_assert(eq(int, eddy_fs_read_file(&fs_loop, &req, P("f"), fs_on_done), 0));
  cr_assert(eq(int, eddy_loop_alive(&fs_loop), 1));
  cr_assert(eq(int, eddy_loop_close(&fs_loop), EDDY_EBUSY));
  cr_assert(eq(i64, (int64_t)fs_await(0, &req, "read_file"), 3));
  eddy_fs_req_cleanup(&req);
  cr_assert(eq(int, eddy_loop_alive(&fs_loop), 0));
  fs_teardown();
}

/* ---- the ring's fallback
 * ------------------------------------------------------- */

/* O_TMPFILE without write access is EINVAL: the ring's answer sends the
 * request to the pool, whose answer (the same) reaches the callback. */
FS_TEST(fs_files, fs_ring_einval_falls_back_to_pool) {
  fs_setup(mode);
  fs_want_via = EDDY_FS_VIA_POOL;
  EXPECT(&req,
         eddy_fs_open(&fs_loop, &req, fs_dir, O_TMPFILE | O_RDONLY, 0600,
                      fs_on_done),
         EDDY_EINVAL);
  fs_want_via = EDDY_FS_VIA_NONE;
  /* And a valid O_TMPFILE open stays on the ring path. */
  ssize_t fd = AWAIT(&req, eddy_fs_open(&fs_loop, &req, fs_dir,
                                        O_TMPFILE | O_RDWR, 0600, fs_on_done));
  cr_assert(fd >= 0, "%s", eddy_err_name((int)fd));
  eddy_fs_req_cleanup(&req);
  close((int)fd);
  fs_teardown();
}
