/* The fs API, operation by operation: success and the errors each one can
 * give (ENOENT, ENOTDIR, EISDIR, EEXIST, EACCES where root can meet it),
 * through the pool path and the io_uring path (tests/fs_helpers.h).
 *
 * EACCES: the tests run as root, for whom permission bits deny neither
 * reading nor writing.  Here it is access(X_OK) on a file without any
 * execute bit, which root is refused too; tests/fs_perm.c drops root's
 * DAC capabilities to show EACCES for the other operations. */
#include <limits.h>

#include "fs_helpers.h"

TestSuite(fs, .timeout = 30);

static eddy_fs_t req;

/* ---- open, read, write, close ------------------------------------------ */

FS_TEST(fs, fs_open_write_read_close_round_trip) {
  fs_setup(mode);
  const char *p = P("a");
  ssize_t fd =
      AWAIT(&req, eddy_fs_open(&fs_loop, &req, p, O_RDWR | O_CREAT | O_EXCL,
                               0600, fs_on_done));
  cr_assert(fd >= 0, "open: %s", eddy_err_name((int)fd));
  eddy_fs_req_cleanup(&req);

  /* Vectored write at offset 0. */
  char h[] = "hello, ", w[] = "world";
  eddy_buf_t out[2] = {eddy_buf_init(h, 7), eddy_buf_init(w, 5)};
  EXPECT(&req, eddy_fs_write(&fs_loop, &req, (int)fd, out, 2, 0, fs_on_done),
         12);

  /* Positional read of the middle, then vectored read of all. */
  char mid[5] = {0};
  eddy_buf_t in1 = eddy_buf_init(mid, 5);
  EXPECT(&req, eddy_fs_read(&fs_loop, &req, (int)fd, &in1, 1, 7, fs_on_done),
         5);
  cr_assert(eq(int, memcmp(mid, "world", 5), 0));
  char a[3], b[20];
  eddy_buf_t in2[2] = {eddy_buf_init(a, 3), eddy_buf_init(b, sizeof b)};
  EXPECT(&req, eddy_fs_read(&fs_loop, &req, (int)fd, in2, 2, 0, fs_on_done),
         12);
  cr_assert(eq(int, memcmp(a, "hel", 3), 0));
  cr_assert(eq(int, memcmp(b, "lo, world", 9), 0));
  /* At the end: 0. */
  EXPECT(&req, eddy_fs_read(&fs_loop, &req, (int)fd, &in1, 1, 12, fs_on_done),
         0);

  /* Offset -1 uses and moves the file position. */
  cr_assert(eq(i64, (int64_t)lseek((int)fd, 0, SEEK_SET), 0));
  EXPECT(&req, eddy_fs_read(&fs_loop, &req, (int)fd, &in1, 1, -1, fs_on_done),
         5);
  cr_assert(eq(int, memcmp(mid, "hello", 5), 0));
  EXPECT(&req, eddy_fs_read(&fs_loop, &req, (int)fd, &in1, 1, -1, fs_on_done),
         5);
  cr_assert(eq(int, memcmp(mid, ", wor", 5), 0));
  char bang[] = "!";
  eddy_buf_t ob = eddy_buf_init(bang, 1);
  cr_assert(eq(i64, (int64_t)lseek((int)fd, 0, SEEK_END), 12));
  EXPECT(&req, eddy_fs_write(&fs_loop, &req, (int)fd, &ob, 1, -1, fs_on_done),
         1);
  cr_assert(eq(i64, (int64_t)lseek((int)fd, 0, SEEK_CUR), 13));

  EXPECT(&req, eddy_fs_close(&fs_loop, &req, (int)fd, fs_on_done), 0);
  /* Closed: the descriptor is gone. */
  EXPECT(&req, eddy_fs_close(&fs_loop, &req, (int)fd, fs_on_done), EDDY_EBADF);
  EXPECT(&req, eddy_fs_read(&fs_loop, &req, (int)fd, &in1, 1, 0, fs_on_done),
         EDDY_EBADF);
  EXPECT(&req, eddy_fs_write(&fs_loop, &req, (int)fd, &ob, 1, 0, fs_on_done),
         EDDY_EBADF);
  fs_teardown();
}

FS_TEST(fs, fs_open_errors) {
  fs_setup(mode);
  fs_put(P("file"), "x");
  EXPECT(&req,
         eddy_fs_open(&fs_loop, &req, P("missing"), O_RDONLY, 0, fs_on_done),
         EDDY_ENOENT);
  EXPECT(&req,
         eddy_fs_open(&fs_loop, &req, P("file"), O_WRONLY | O_CREAT | O_EXCL,
                      0644, fs_on_done),
         EDDY_EEXIST);
  EXPECT(&req, eddy_fs_open(&fs_loop, &req, fs_dir, O_WRONLY, 0, fs_on_done),
         EDDY_EISDIR);
  EXPECT(&req,
         eddy_fs_open(&fs_loop, &req, P("file/x"), O_RDONLY, 0, fs_on_done),
         EDDY_ENOTDIR);
  EXPECT(&req,
         eddy_fs_open(&fs_loop, &req, P("file"), O_RDONLY | O_DIRECTORY, 0,
                      fs_on_done),
         EDDY_ENOTDIR);
  fs_teardown();
}

FS_TEST(fs, fs_read_write_errors) {
  fs_setup(mode);
  int dfd = open(fs_dir, O_RDONLY | O_DIRECTORY);
  cr_assert(dfd >= 0);
  char c;
  eddy_buf_t b = eddy_buf_init(&c, 1);
  EXPECT(&req, eddy_fs_read(&fs_loop, &req, dfd, &b, 1, 0, fs_on_done),
         EDDY_EISDIR);
  EXPECT(&req, eddy_fs_write(&fs_loop, &req, dfd, &b, 1, 0, fs_on_done),
         EDDY_EBADF);
  close(dfd);
  fs_put(P("ro"), "abc");
  int ro = open(P("ro"), O_RDONLY);
  EXPECT(&req, eddy_fs_write(&fs_loop, &req, ro, &b, 1, 0, fs_on_done),
         EDDY_EBADF);
  close(ro);
  fs_teardown();
}

/* ---- stat --------------------------------------------------------------- */

FS_TEST(fs, fs_stat_lstat_fstat) {
  fs_setup(mode);
  fs_put(P("f"), "12345");
  cr_assert(eq(int, symlink(P("f"), P("l")), 0));

  EXPECT(&req, eddy_fs_stat(&fs_loop, &req, P("l"), fs_on_done), 0);
  struct stat st;
  cr_assert(eq(int, stat(P("f"), &st), 0));
  cr_assert(eq(u64, req.statbuf.size, 5));
  cr_assert(eq(int, S_ISREG(req.statbuf.mode) ? 1 : 0, 1));
  cr_assert(eq(u64, req.statbuf.ino, (uint64_t)st.st_ino));
  cr_assert(eq(u64, req.statbuf.dev, (uint64_t)st.st_dev));
  cr_assert(eq(u64, req.statbuf.nlink, 1));
  cr_assert(
      eq(i64, (int64_t)req.statbuf.mtime.tv_sec, (int64_t)st.st_mtim.tv_sec));

  EXPECT(&req, eddy_fs_lstat(&fs_loop, &req, P("l"), fs_on_done), 0);
  cr_assert(eq(int, S_ISLNK(req.statbuf.mode) ? 1 : 0, 1));

  int fd = open(P("f"), O_RDONLY);
  EXPECT(&req, eddy_fs_fstat(&fs_loop, &req, fd, fs_on_done), 0);
  cr_assert(eq(u64, req.statbuf.ino, (uint64_t)st.st_ino));
  cr_assert(eq(u64, req.statbuf.size, 5));
  close(fd);

  EXPECT(&req, eddy_fs_stat(&fs_loop, &req, P("nope"), fs_on_done),
         EDDY_ENOENT);
  EXPECT(&req, eddy_fs_lstat(&fs_loop, &req, P("f/x"), fs_on_done),
         EDDY_ENOTDIR);
  EXPECT(&req, eddy_fs_fstat(&fs_loop, &req, fd, fs_on_done), EDDY_EBADF);
  fs_teardown();
}

/* ---- fsync, fdatasync, ftruncate -------------------------------------------
 */

FS_TEST(fs, fs_fsync_fdatasync_ftruncate) {
  fs_setup(mode);
  fs_put(P("f"), "0123456789");
  int fd = open(P("f"), O_RDWR);
  EXPECT(&req, eddy_fs_fsync(&fs_loop, &req, fd, fs_on_done), 0);
  EXPECT(&req, eddy_fs_fdatasync(&fs_loop, &req, fd, fs_on_done), 0);
  EXPECT(&req, eddy_fs_ftruncate(&fs_loop, &req, fd, 4, fs_on_done), 0);
  struct stat st;
  cr_assert(eq(int, fstat(fd, &st), 0));
  cr_assert(eq(i64, (int64_t)st.st_size, 4));
  close(fd);
  EXPECT(&req, eddy_fs_fsync(&fs_loop, &req, fd, fs_on_done), EDDY_EBADF);
  EXPECT(&req, eddy_fs_fdatasync(&fs_loop, &req, fd, fs_on_done), EDDY_EBADF);
  EXPECT(&req, eddy_fs_ftruncate(&fs_loop, &req, fd, 0, fs_on_done),
         EDDY_EBADF);
  int ro = open(P("f"), O_RDONLY);
  EXPECT(&req, eddy_fs_ftruncate(&fs_loop, &req, ro, 0, fs_on_done),
         EDDY_EINVAL);
  close(ro);
  fs_teardown();
}

/* ---- names: rename, unlink, mkdir, rmdir -------------------------------- */

FS_TEST(fs, fs_rename_and_its_errors) {
  fs_setup(mode);
  fs_put(P("a"), "A");
  cr_assert(eq(int, mkdir(P("d"), 0755), 0));
  EXPECT(&req, eddy_fs_rename(&fs_loop, &req, P("a"), P("b"), fs_on_done), 0);
  cr_assert(eq(int, access(P("a"), F_OK), -1));
  cr_assert(eq(int, access(P("b"), F_OK), 0));
  EXPECT(&req, eddy_fs_rename(&fs_loop, &req, P("a"), P("c"), fs_on_done),
         EDDY_ENOENT);
  EXPECT(&req, eddy_fs_rename(&fs_loop, &req, P("b"), P("d"), fs_on_done),
         EDDY_EISDIR);
  EXPECT(&req, eddy_fs_rename(&fs_loop, &req, P("d"), P("b"), fs_on_done),
         EDDY_ENOTDIR);
  fs_teardown();
}

FS_TEST(fs, fs_unlink_and_its_errors) {
  fs_setup(mode);
  fs_put(P("a"), "A");
  cr_assert(eq(int, mkdir(P("d"), 0755), 0));
  EXPECT(&req, eddy_fs_unlink(&fs_loop, &req, P("a"), fs_on_done), 0);
  cr_assert(eq(int, access(P("a"), F_OK), -1));
  EXPECT(&req, eddy_fs_unlink(&fs_loop, &req, P("a"), fs_on_done), EDDY_ENOENT);
  EXPECT(&req, eddy_fs_unlink(&fs_loop, &req, P("d"), fs_on_done), EDDY_EISDIR);
  fs_teardown();
}

FS_TEST(fs, fs_mkdir_plain_and_recursive) {
  fs_setup(mode);
  fs_put(P("file"), "x");
  EXPECT(&req, eddy_fs_mkdir(&fs_loop, &req, P("d"), 0750, 0, fs_on_done), 0);
  struct stat st;
  cr_assert(eq(int, stat(P("d"), &st), 0));
  cr_assert(eq(int, S_ISDIR(st.st_mode) ? 1 : 0, 1));
  EXPECT(&req, eddy_fs_mkdir(&fs_loop, &req, P("d"), 0750, 0, fs_on_done),
         EDDY_EEXIST);
  EXPECT(&req, eddy_fs_mkdir(&fs_loop, &req, P("x/y"), 0750, 0, fs_on_done),
         EDDY_ENOENT);
  EXPECT(&req, eddy_fs_mkdir(&fs_loop, &req, P("file/y"), 0750, 0, fs_on_done),
         EDDY_ENOTDIR);

  EXPECT(&req,
         eddy_fs_mkdir(&fs_loop, &req, P("x//y/z/"), 0750,
                       EDDY_FS_MKDIR_RECURSIVE, fs_on_done),
         0);
  cr_assert(eq(int, stat(P("x/y/z"), &st), 0));
  cr_assert(eq(int, S_ISDIR(st.st_mode) ? 1 : 0, 1));
  /* Already there: fine when recursive. */
  EXPECT(&req,
         eddy_fs_mkdir(&fs_loop, &req, P("x/y"), 0750, EDDY_FS_MKDIR_RECURSIVE,
                       fs_on_done),
         0);
  EXPECT(&req,
         eddy_fs_mkdir(&fs_loop, &req, P("file/a/b"), 0750,
                       EDDY_FS_MKDIR_RECURSIVE, fs_on_done),
         EDDY_ENOTDIR);
  EXPECT(&req,
         eddy_fs_mkdir(&fs_loop, &req, P("file"), 0750, EDDY_FS_MKDIR_RECURSIVE,
                       fs_on_done),
         EDDY_EEXIST);
  fs_teardown();
}

FS_TEST(fs, fs_rmdir_and_its_errors) {
  fs_setup(mode);
  cr_assert(eq(int, mkdir(P("e"), 0755), 0));
  cr_assert(eq(int, mkdir(P("full"), 0755), 0));
  fs_put(P("full/f"), "x");
  EXPECT(&req, eddy_fs_rmdir(&fs_loop, &req, P("e"), fs_on_done), 0);
  EXPECT(&req, eddy_fs_rmdir(&fs_loop, &req, P("e"), fs_on_done), EDDY_ENOENT);
  EXPECT(&req, eddy_fs_rmdir(&fs_loop, &req, P("full"), fs_on_done),
         EDDY_ENOTEMPTY);
  EXPECT(&req, eddy_fs_rmdir(&fs_loop, &req, P("full/f"), fs_on_done),
         EDDY_ENOTDIR);
  fs_teardown();
}

/* ---- scandir ------------------------------------------------------------ */

FS_TEST(fs, fs_scandir_sorted_with_types) {
  fs_setup(mode);
  fs_put(P("b"), "");
  fs_put(P("a"), "");
  cr_assert(eq(int, mkdir(P("c"), 0755), 0));
  cr_assert(eq(int, symlink("a", P("d")), 0));
  ssize_t n =
      AWAIT(&req, eddy_fs_scandir(&fs_loop, &req, fs_dir, 0, fs_on_done));
  cr_assert(eq(i64, (int64_t)n, 4));
  static const char *names[] = {"a", "b", "c", "d"};
  static const eddy_dirent_type types[] = {EDDY_DIRENT_FILE, EDDY_DIRENT_FILE,
                                           EDDY_DIRENT_DIR, EDDY_DIRENT_LINK};
  eddy_dirent_t ent;
  for (int i = 0; i < 4; i++) {
    cr_assert(eq(int, eddy_fs_scandir_next(&req, &ent), 0));
    cr_assert(eq(str, (char *)ent.name, (char *)names[i]));
    cr_assert(eq(int, (int)ent.type, (int)types[i]), "%s", names[i]);
  }
  cr_assert(eq(int, eddy_fs_scandir_next(&req, &ent), EDDY_EOF));
  eddy_fs_req_cleanup(&req);

  cr_assert(eq(int, mkdir(P("empty"), 0755), 0));
  EXPECT(&req, eddy_fs_scandir(&fs_loop, &req, P("empty"), 0, fs_on_done), 0);
  EXPECT(&req, eddy_fs_scandir(&fs_loop, &req, P("nope"), 0, fs_on_done),
         EDDY_ENOENT);
  EXPECT(&req, eddy_fs_scandir(&fs_loop, &req, P("a"), 0, fs_on_done),
         EDDY_ENOTDIR);
  cr_assert(eq(int, eddy_fs_scandir_next(&req, &ent), EDDY_EINVAL));
  fs_teardown();
}

/* ---- links and paths ----------------------------------------------------- */

FS_TEST(fs, fs_symlink_readlink_realpath) {
  fs_setup(mode);
  fs_put(P("target"), "t");
  EXPECT(&req, eddy_fs_symlink(&fs_loop, &req, "target", P("link"), fs_on_done),
         0);
  EXPECT(&req, eddy_fs_symlink(&fs_loop, &req, "target", P("link"), fs_on_done),
         EDDY_EEXIST);

  ssize_t n =
      AWAIT(&req, eddy_fs_readlink(&fs_loop, &req, P("link"), fs_on_done));
  cr_assert(eq(i64, (int64_t)n, 6));
  cr_assert(eq(str, (char *)req.ptr, "target"));
  eddy_fs_req_cleanup(&req);
  cr_assert(req.ptr == NULL);
  EXPECT(&req, eddy_fs_readlink(&fs_loop, &req, P("target"), fs_on_done),
         EDDY_EINVAL);
  EXPECT(&req, eddy_fs_readlink(&fs_loop, &req, P("nope"), fs_on_done),
         EDDY_ENOENT);

  char want[PATH_MAX];
  cr_assert(realpath(P("target"), want) != NULL);
  cr_assert(eq(i64,
               (int64_t)AWAIT(&req, eddy_fs_realpath(&fs_loop, &req,
                                                     P("./link"), fs_on_done)),
               0));
  cr_assert(eq(str, (char *)req.ptr, want));
  eddy_fs_req_cleanup(&req);
  EXPECT(&req, eddy_fs_realpath(&fs_loop, &req, P("nope"), fs_on_done),
         EDDY_ENOENT);
  EXPECT(&req, eddy_fs_realpath(&fs_loop, &req, P("target/x"), fs_on_done),
         EDDY_ENOTDIR);
  fs_teardown();
}

/* ---- access, chmod, utime -------------------------------------------------
 */

FS_TEST(fs, fs_access_chmod_utime) {
  fs_setup(mode);
  fs_put(P("f"), "x");
  EXPECT(&req, eddy_fs_access(&fs_loop, &req, P("f"), F_OK, fs_on_done), 0);
  EXPECT(&req, eddy_fs_access(&fs_loop, &req, P("f"), R_OK | W_OK, fs_on_done),
         0);
  /* No execute bit anywhere: even root is refused. */
  EXPECT(&req, eddy_fs_access(&fs_loop, &req, P("f"), X_OK, fs_on_done),
         EDDY_EACCES);
  EXPECT(&req, eddy_fs_access(&fs_loop, &req, P("nope"), F_OK, fs_on_done),
         EDDY_ENOENT);

  EXPECT(&req, eddy_fs_chmod(&fs_loop, &req, P("f"), 0751, fs_on_done), 0);
  struct stat st;
  cr_assert(eq(int, stat(P("f"), &st), 0));
  cr_assert(eq(int, (int)(st.st_mode & 07777), 0751));
  EXPECT(&req, eddy_fs_access(&fs_loop, &req, P("f"), X_OK, fs_on_done), 0);
  EXPECT(&req, eddy_fs_chmod(&fs_loop, &req, P("nope"), 0644, fs_on_done),
         EDDY_ENOENT);

  EXPECT(&req,
         eddy_fs_utime(&fs_loop, &req, P("f"), 1000000000.5, 1234567890.25,
                       fs_on_done),
         0);
  cr_assert(eq(int, stat(P("f"), &st), 0));
  cr_assert(eq(i64, (int64_t)st.st_atim.tv_sec, 1000000000));
  cr_assert(eq(i64, (int64_t)st.st_atim.tv_nsec, 500000000));
  cr_assert(eq(i64, (int64_t)st.st_mtim.tv_sec, 1234567890));
  cr_assert(eq(i64, (int64_t)st.st_mtim.tv_nsec, 250000000));
  EXPECT(&req, eddy_fs_utime(&fs_loop, &req, P("nope"), 1, 1, fs_on_done),
         EDDY_ENOENT);
  fs_teardown();
}

/* More buffers than the request holds inline: the array is copied to the
 * heap and freed before the callback. */
FS_TEST(fs, fs_vectored_io_with_many_buffers) {
  fs_setup(mode);
  int fd = open(P("v"), O_RDWR | O_CREAT, 0644);
  cr_assert(fd >= 0);
  char parts[9][2] = {"a", "b", "c", "d", "e", "f", "g", "h", "i"};
  eddy_buf_t out[9];
  for (int i = 0; i < 9; i++)
    out[i] = eddy_buf_init(parts[i], 1);
  EXPECT(&req, eddy_fs_write(&fs_loop, &req, fd, out, 9, 0, fs_on_done), 9);
  cr_assert(req.bufs == NULL);
  char back[9][1];
  eddy_buf_t in[9];
  for (int i = 0; i < 9; i++)
    in[i] = eddy_buf_init(back[8 - i], 1); /* reversed on purpose */
  EXPECT(&req, eddy_fs_read(&fs_loop, &req, fd, in, 9, 0, fs_on_done), 9);
  for (int i = 0; i < 9; i++)
    cr_assert(eq(chr, back[8 - i][0], (char)('a' + i)));
  close(fd);
  fs_teardown();
}
