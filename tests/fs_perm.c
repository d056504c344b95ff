/* EACCES from the fs API on both paths, although the tests run as root.
 *
 * Root passes permission checks through two capabilities,
 * CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH.  The test takes them out of
 * the calling thread's effective set (they stay permitted, so teardown can
 * take them back) before the pool's threads exist: threads inherit their
 * creator's credentials, so the workers, and io_uring's own io-wq threads
 * created later, check permission bits like any user.  The ring's inline
 * work runs with the submitting thread's credentials.  Run as another
 * user, the bits apply anyway. */
#include <linux/capability.h>
#include <sys/syscall.h>

#include "fs_helpers.h"

TestSuite(fs_perm, .timeout = 30);

static eddy_fs_t req;

static int dac_caps(int on) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  if (syscall(SYS_capget, &h, d) != 0)
    return -1;
  unsigned bits = (1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH);
  if (on)
    d[0].effective |= bits & d[0].permitted;
  else
    d[0].effective &= ~bits;
  return (int)syscall(SYS_capset, &h, d);
}

FS_TEST(fs_perm, fs_permission_bits_give_eacces) {
  fs_setup(mode);
  fs_put(P("secret"), "s");
  cr_assert(eq(int, chmod(P("secret"), 0), 0));
  fs_put(P("readonly"), "r");
  cr_assert(eq(int, chmod(P("readonly"), 0444), 0));
  cr_assert(eq(int, mkdir(P("locked"), 0755), 0));
  fs_put(P("locked/f"), "f");
  cr_assert(eq(int, chmod(P("locked"), 0), 0));
  cr_assert(eq(int, mkdir(P("frozen"), 0755), 0));
  fs_put(P("frozen/f"), "f");
  cr_assert(eq(int, chmod(P("frozen"), 0555), 0));
  cr_assert(eq(int, dac_caps(0), 0), "capset");

  EXPECT(&req,
         eddy_fs_open(&fs_loop, &req, P("secret"), O_RDONLY, 0, fs_on_done),
         EDDY_EACCES);
  EXPECT(&req,
         eddy_fs_open(&fs_loop, &req, P("readonly"), O_WRONLY, 0, fs_on_done),
         EDDY_EACCES);
  EXPECT(&req, eddy_fs_stat(&fs_loop, &req, P("locked/f"), fs_on_done),
         EDDY_EACCES);
  EXPECT(&req, eddy_fs_read_file(&fs_loop, &req, P("secret"), fs_on_done),
         EDDY_EACCES);
  EXPECT(&req, eddy_fs_scandir(&fs_loop, &req, P("locked"), 0, fs_on_done),
         EDDY_EACCES);
  EXPECT(&req, eddy_fs_unlink(&fs_loop, &req, P("frozen/f"), fs_on_done),
         EDDY_EACCES);
  EXPECT(&req,
         eddy_fs_mkdir(&fs_loop, &req, P("frozen/d"), 0755, 0, fs_on_done),
         EDDY_EACCES);
  EXPECT(&req,
         eddy_fs_rename(&fs_loop, &req, P("frozen/f"), P("moved"), fs_on_done),
         EDDY_EACCES);
  /* access(2) checks with the real uid and, for root, the permitted
   * capabilities: it still says yes (tests/fs.c shows its EACCES). */
  EXPECT(&req, eddy_fs_access(&fs_loop, &req, P("secret"), R_OK, fs_on_done),
         getuid() == 0 ? 0 : EDDY_EACCES);
  EXPECT(&req,
         eddy_fs_write_file(&fs_loop, &req, P("readonly"), "x", 1, 0, 0644,
                            fs_on_done),
         EDDY_EACCES);
  EXPECT(
      &req,
      eddy_fs_copyfile(&fs_loop, &req, P("secret"), P("copy"), 0, fs_on_done),
      EDDY_EACCES);
  /* And synchronously, on this thread. */
  cr_assert(eq(int,
               eddy_fs_open(&fs_loop, &req, P("secret"), O_RDONLY, 0, NULL),
               EDDY_EACCES));
  eddy_fs_req_cleanup(&req);

  cr_assert(eq(int, dac_caps(1), 0), "capset back");
  chmod(P("locked"), 0755);
  chmod(P("frozen"), 0755);
  fs_teardown();
}
