/* Image jobs on the pool: each operation checked by decoding its output
 * (a ping job: format and dimensions) and by `gm identify`; a crop's pixels
 * against GM's own CLI; bad inputs; the decompression bomb; many jobs at
 * once; cancel.  Pool work, not backend IO: one loop on the default
 * backend.  Test images are made by `gm convert` in a scratch directory. */
#include <dirent.h>
#include <sys/resource.h>

#include "image_helpers.h"

static eddy_loop_t loop;
static eddy_image_t job;

static void setup(void) {
  img_skip_under_valgrind();
  img_dir_make();
  cr_assert(eq(int, eddy_loop_init(&loop), 0));
  eddy_image_init(&job);
  /* 640x480, 8 bits per sample, noise-like content so every pixel
   * differs: a crop's offsets must be right to match. */
  GM("convert", "-size", "640x480", "plasma:fractal", "-depth", "8",
     (char *)img_path("in.png"));
  GM("convert", (char *)img_path("in.png"), "-quality", "90",
     (char *)img_path("in.jpg"));
}

static void teardown(void) {
  eddy_image_cleanup(&job);
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  eddy_loop_close(&loop);
  img_dir_remove();
}

TestSuite(image, .init = setup, .fini = teardown, .timeout = 30);

/* Checks job's output two ways: decoded by eddy (a ping of the buffer)
 * and by gm identify (of the buffer written to a file). */
static void expect_output(const char *want_fmt, unsigned long w,
                          unsigned long h) {
  char fmt[16];
  unsigned long iw, ih;
  cr_assert_not_null(job.out, "no output: %s", job.message);
  cr_assert(eq(ulong, job.width, w));
  cr_assert(eq(ulong, job.height, h));
  eddy_image_t ping;
  eddy_image_init(&ping);
  cr_assert(eq(int, eddy_image_source_buffer(&ping, job.out, job.out_len), 0));
  int before = img_done_count;
  cr_assert(eq(int, eddy_image_ping(&loop, &ping, img_count_done), 0));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, img_done_count, before + 1));
  cr_assert(eq(int, img_last_status, 0), "%s", ping.message);
  cr_assert(eq(str, ping.src_format, (char *)want_fmt));
  cr_assert(eq(ulong, ping.src_width, w));
  cr_assert(eq(ulong, ping.src_height, h));
  eddy_image_cleanup(&ping);
  img_write(img_path("out.bin"), job.out, job.out_len);
  img_identify(img_path("out.bin"), fmt, &iw, &ih);
  cr_assert(eq(str, fmt, (char *)want_fmt));
  cr_assert(eq(ulong, iw, w));
  cr_assert(eq(ulong, ih, h));
}

static void from_file(const char *name) {
  cr_assert(eq(int, eddy_image_source_file(&job, img_path(name)), 0));
}

/* ---- Operations ---------------------------------------------------------- */

Test(image, crop_pixels_match_gm_cli_crop) {
  from_file("in.png");
  cr_assert(eq(int, eddy_image_crop(&job, 101, 57, 200, 120), 0));
  eddy_image_output(&job, EDDY_IMAGE_PNG, 0);
  int rc = img_run_job(&loop, &job);
  cr_assert(eq(int, rc, 0), "%s", job.message);
  expect_output("PNG", 200, 120);
  /* Raw pixels of both crops, through the same lossless conversion. */
  img_write(img_path("ours.png"), job.out, job.out_len);
  GM("convert", (char *)img_path("ours.png"), (char *)img_path("ours.ppm"));
  GM("convert", (char *)img_path("in.png"), "-crop", "200x120+101+57",
     (char *)img_path("ref.ppm"));
  size_t a_len, b_len;
  unsigned char *a = img_read(img_path("ours.ppm"), &a_len);
  unsigned char *b = img_read(img_path("ref.ppm"), &b_len);
  cr_assert(eq(sz, a_len, b_len));
  cr_assert(eq(int, memcmp(a, b, a_len), 0), "the crops' pixels differ");
  free(a);
  free(b);
}

Test(image, crop_outside_the_image_is_an_op_error) {
  from_file("in.png");
  eddy_image_crop(&job, 600, 0, 100, 100);
  int rc = img_run_job(&loop, &job);
  cr_assert(eq(int, rc, EDDY_EINVAL));
  cr_assert(eq(int, job.error, EDDY_IMAGE_EOP), "%s", job.message);
  cr_assert_null(job.out);
}

Test(image, resize_gives_the_exact_size) {
  from_file("in.jpg");
  eddy_image_resize(&job, 300, 100);
  eddy_image_output(&job, EDDY_IMAGE_JPEG, 80);
  cr_assert(eq(int, img_run_job(&loop, &job), 0), "%s", job.message);
  expect_output("JPEG", 300, 100);
  cr_assert(eq(str, job.src_format, "JPEG"));
  cr_assert(eq(ulong, job.src_width, 640));
}

Test(image, thumbnail_with_one_side_keeps_the_aspect) {
  from_file("in.jpg");
  eddy_image_thumbnail(&job, 160, 0);
  cr_assert(eq(int, img_run_job(&loop, &job), 0), "%s", job.message);
  expect_output("JPEG", 160, 120); /* AUTO: the source's format */
}

Test(image, fit_contain_fits_inside_the_box) {
  from_file("in.jpg");
  eddy_image_fit(&job, 200, 200, EDDY_IMAGE_CONTAIN);
  eddy_image_output(&job, EDDY_IMAGE_PNG, 0);
  cr_assert(eq(int, img_run_job(&loop, &job), 0), "%s", job.message);
  expect_output("PNG", 200, 150);
}

Test(image, fit_cover_fills_the_box) {
  from_file("in.jpg");
  eddy_image_fit(&job, 200, 200, EDDY_IMAGE_COVER);
  eddy_image_output(&job, EDDY_IMAGE_WEBP, 70);
  cr_assert(eq(int, img_run_job(&loop, &job), 0), "%s", job.message);
  expect_output("WEBP", 200, 200);
}

/* 1920x1080 to 320x200 is the size hint's case: decoded at a fraction. */
Test(image, cover_of_a_big_jpeg_through_the_size_hint) {
  GM("convert", "-size", "1920x1080", "gradient:white-black",
     (char *)img_path("big.jpg"));
  from_file("big.jpg");
  eddy_image_fit(&job, 320, 200, EDDY_IMAGE_COVER);
  cr_assert(eq(int, img_run_job(&loop, &job), 0), "%s", job.message);
  expect_output("JPEG", 320, 200);
  cr_assert(eq(ulong, job.src_width, 1920));
}

Test(image, rotate_by_90_swaps_the_sides) {
  from_file("in.png");
  eddy_image_rotate(&job, 90);
  eddy_image_output(&job, EDDY_IMAGE_PNG, 0);
  cr_assert(eq(int, img_run_job(&loop, &job), 0), "%s", job.message);
  expect_output("PNG", 480, 640);
}

Test(image, gif_output_is_a_gif) {
  from_file("in.jpg");
  eddy_image_thumbnail(&job, 64, 0); /* GIF's quantizer is slow at size */
  eddy_image_output(&job, EDDY_IMAGE_GIF, 0);
  cr_assert(eq(int, img_run_job(&loop, &job), 0), "%s", job.message);
  expect_output("GIF", 64, 48);
}

Test(image, strip_drops_the_comment) {
  char out[256];
  GM("convert", (char *)img_path("in.jpg"), "-comment", "eddy-was-here",
     (char *)img_path("c.jpg"));
  from_file("c.jpg");
  eddy_image_strip(&job);
  cr_assert(eq(int, img_run_job(&loop, &job), 0), "%s", job.message);
  expect_output("JPEG", 640, 480);
  img_write(img_path("s.jpg"), job.out, job.out_len);
  char *with[] = {
      "gm", "identify", "-format", "[%c]", (char *)img_path("c.jpg"), NULL};
  img_run(with, out, sizeof out);
  cr_assert_not_null(strstr(out, "eddy-was-here"), "%s", out);
  char *without[] = {
      "gm", "identify", "-format", "[%c]", (char *)img_path("s.jpg"), NULL};
  img_run(without, out, sizeof out);
  cr_assert_null(strstr(out, "eddy-was-here"), "%s", out);
}

Test(image, operations_apply_in_order_and_to_a_file) {
  from_file("in.png");
  eddy_image_crop(&job, 0, 0, 400, 200);
  eddy_image_rotate(&job, 270);
  eddy_image_resize(&job, 0, 100);
  eddy_image_output(&job, EDDY_IMAGE_PNG, 0);
  cr_assert(eq(int, eddy_image_output_file(&job, img_path("o.png")), 0));
  cr_assert(eq(int, img_run_job(&loop, &job), 0), "%s", job.message);
  cr_assert_null(job.out);
  char fmt[16];
  unsigned long w, h;
  img_identify(img_path("o.png"), fmt, &w, &h);
  cr_assert(eq(str, fmt, "PNG"));
  cr_assert(eq(ulong, w, 50)); /* 400x200 -> 200x400 -> 50x100 */
  cr_assert(eq(ulong, h, 100));
}

Test(image, ping_reads_the_header_only) {
  unsigned char png[256];
  size_t n = img_bomb_png(png, 50000, 50000);
  eddy_image_source_buffer(&job, png, n);
  int before = img_done_count;
  cr_assert(eq(int, eddy_image_ping(&loop, &job, img_count_done), 0));
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, img_done_count, before + 1));
  cr_assert(eq(int, img_last_status, 0), "%s", job.message);
  cr_assert(eq(str, job.src_format, "PNG"));
  cr_assert(eq(ulong, job.src_width, 50000));
  cr_assert(eq(ulong, job.src_height, 50000));
  cr_assert_null(job.out);
}

/* ---- Bad input ----------------------------------------------------------- */

static void expect_failure(int status, eddy_image_error err) {
  int rc = img_run_job(&loop, &job);
  cr_assert(eq(int, rc, status), "status %s, %s", eddy_err_name(rc),
            job.message);
  cr_assert(eq(int, job.error, err), "error %s: %s",
            eddy_image_error_name(job.error), job.message);
  cr_assert_null(job.out);
  cr_assert(ne(int, job.message[0], 0));
}

Test(image, zero_byte_buffer_and_file_are_empty_input) {
  eddy_image_source_buffer(&job, "", 0);
  eddy_image_thumbnail(&job, 10, 10);
  expect_failure(EDDY_EINVAL, EDDY_IMAGE_EEMPTY);
  eddy_image_cleanup(&job);
  eddy_image_init(&job);
  img_write(img_path("empty.png"), "", 0);
  from_file("empty.png");
  expect_failure(EDDY_EINVAL, EDDY_IMAGE_EEMPTY);
}

Test(image, garbage_is_not_an_image) {
  char junk[4096];
  for (size_t i = 0; i < sizeof junk; i++)
    junk[i] = (char)(i * 7919 % 251);
  eddy_image_source_buffer(&job, junk, sizeof junk);
  expect_failure(EDDY_EINVAL, EDDY_IMAGE_EFORMAT);
}

/* GM could read these (SVG with an external image, MVG drawing a file):
 * eddy decodes only the formats it recognises itself. */
Test(image, svg_and_mvg_are_never_handed_to_gm) {
  static const char svg[] =
      "<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\" "
      "xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"10\" "
      "height=\"10\"><image xlink:href=\"/etc/hostname\" width=\"10\" "
      "height=\"10\"/></svg>";
  eddy_image_source_buffer(&job, svg, sizeof svg - 1);
  expect_failure(EDDY_EINVAL, EDDY_IMAGE_EFORMAT);
  eddy_image_cleanup(&job);
  eddy_image_init(&job);
  static const char mvg[] = "push graphic-context\nviewbox 0 0 10 10\n"
                            "image over 0,0 10,10 'in.png'\n";
  eddy_image_source_buffer(&job, mvg, sizeof mvg - 1);
  expect_failure(EDDY_EINVAL, EDDY_IMAGE_EFORMAT);
}

Test(image, missing_file_is_enoent) {
  from_file("nope.png");
  expect_failure(EDDY_ENOENT, EDDY_IMAGE_EFILE);
}

static void truncated(const char *name, size_t keep) {
  size_t len;
  unsigned char *data = img_read(img_path(name), &len);
  cr_assert(lt(sz, keep, len));
  eddy_image_source_buffer(&job, data, keep);
  eddy_image_thumbnail(&job, 64, 0);
  int rc = img_run_job(&loop, &job);
  cr_assert(eq(int, rc, EDDY_EINVAL), "%s: %s", name, job.message);
  cr_assert(job.error == EDDY_IMAGE_ECORRUPT || job.error == EDDY_IMAGE_EFORMAT,
            "%s: %s: %s", name, eddy_image_error_name(job.error), job.message);
  free(data);
}

Test(image, truncated_png_and_jpeg_are_refused) {
  truncated("in.png", 2000);
  eddy_image_cleanup(&job);
  eddy_image_init(&job);
  truncated("in.jpg", 5000);
  eddy_image_cleanup(&job);
  eddy_image_init(&job);
  truncated("in.png", 20); /* the signature and half a header */
}

Test(image, lenient_accepts_a_truncated_jpeg) {
  size_t len;
  unsigned char *data = img_read(img_path("in.jpg"), &len);
  eddy_image_source_buffer(&job, data, len / 2);
  job.lenient = 1;
  eddy_image_thumbnail(&job, 64, 0);
  cr_assert(eq(int, img_run_job(&loop, &job), 0), "%s", job.message);
  cr_assert(eq(ulong, job.width, 64));
  free(data);
}

static long max_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* 50,000 x 50,000 grey pixels would be 2.5 GB at 8 bits (20 GB in GM's
 * 16-bit cache): the ping refuses it before a pixel is allocated. */
Test(image, decompression_bomb_is_refused_quickly_with_bounded_memory) {
  unsigned char png[256];
  size_t n = img_bomb_png(png, 50000, 50000);
  long rss0 = max_rss_kb();
  uint64_t t0 = eddy_hrtime();
  eddy_image_source_buffer(&job, png, n);
  eddy_image_thumbnail(&job, 100, 100);
  expect_failure(EDDY_EFBIG, EDDY_IMAGE_ETOO_LARGE);
  uint64_t ms = (eddy_hrtime() - t0) / 1000000;
  cr_assert(lt(u64, ms, 2000), "took %llu ms", (unsigned long long)ms);
  cr_assert(lt(long, max_rss_kb() - rss0, 64 * 1024), "RSS grew %ld KB",
            max_rss_kb() - rss0);
  cr_assert(eq(ulong, job.src_width, 50000));
}

Test(image, limits_are_the_jobs_own) {
  from_file("in.png");
  job.limits.max_width = 639;
  expect_failure(EDDY_EFBIG, EDDY_IMAGE_ETOO_LARGE);
  eddy_image_cleanup(&job);
  eddy_image_init(&job);
  from_file("in.png");
  job.limits.max_pixels = 640 * 480 - 1;
  expect_failure(EDDY_EFBIG, EDDY_IMAGE_ETOO_LARGE);
  eddy_image_cleanup(&job);
  eddy_image_init(&job);
  from_file("in.png");
  job.limits.max_input = 100;
  expect_failure(EDDY_EFBIG, EDDY_IMAGE_ETOO_LARGE);
}

/* ---- Many jobs, cancel, misuse ------------------------------------------- */

#define NJOBS 100
static eddy_image_t jobs[NJOBS];
static int statuses[NJOBS];
static int ndone;

static void many_done(eddy_image_t *j, int status) {
  statuses[j - jobs] = status;
  ndone++;
}

Test(image, a_hundred_concurrent_jobs_all_finish) {
  GM("convert", (char *)img_path("in.png"), "-resize", "160x120",
     (char *)img_path("small.png"));
  size_t len;
  unsigned char *data = img_read(img_path("small.png"), &len);
  for (int i = 0; i < NJOBS; i++) {
    eddy_image_init(&jobs[i]);
    eddy_image_source_buffer(&jobs[i], data, len);
    eddy_image_thumbnail(&jobs[i], 10 + (unsigned long)i, 0);
    eddy_image_output(&jobs[i], i % 2 ? EDDY_IMAGE_PNG : EDDY_IMAGE_JPEG, 0);
    statuses[i] = 1;
    cr_assert(eq(int, eddy_image_run(&loop, &jobs[i], many_done), 0));
  }
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, ndone, NJOBS));
  for (int i = 0; i < NJOBS; i++) {
    cr_assert(eq(int, statuses[i], 0), "job %d: %s", i, jobs[i].message);
    cr_assert(eq(ulong, jobs[i].width, 10 + (unsigned long)i));
    cr_assert_not_null(jobs[i].out);
    eddy_image_cleanup(&jobs[i]);
  }
  free(data);
}

Test(image, cancel_while_queued_calls_back_with_ecanceled) {
  setenv("EDDY_THREADPOOL_SIZE", "2", 1); /* one slow thread */
  for (int i = 0; i < 10; i++) {
    eddy_image_init(&jobs[i]);
    eddy_image_source_file(&jobs[i], img_path("in.jpg"));
    eddy_image_resize(&jobs[i], 500, 400);
    statuses[i] = 1;
    cr_assert(eq(int, eddy_image_run(&loop, &jobs[i], many_done), 0));
  }
  cr_assert(eq(int, eddy_image_cancel(&jobs[9]), 0));
  cr_assert(eq(int, eddy_image_cancel(&jobs[9]), EDDY_EBUSY)); /* once */
  eddy_run(&loop, EDDY_RUN_DEFAULT);
  cr_assert(eq(int, ndone, 10));
  cr_assert(eq(int, statuses[9], EDDY_ECANCELED));
  cr_assert(eq(int, jobs[9].error, EDDY_IMAGE_ECANCELED));
  cr_assert_null(jobs[9].out);
  for (int i = 0; i < 9; i++) {
    cr_assert(eq(int, statuses[i], 0), "job %d: %s", i, jobs[i].message);
    cr_assert(eq(int, eddy_image_cancel(&jobs[i]), EDDY_EBUSY));
  }
  for (int i = 0; i < 10; i++)
    eddy_image_cleanup(&jobs[i]);
}

Test(image, building_a_job_refuses_bad_arguments) {
  cr_assert(eq(int, eddy_image_run(&loop, &job, img_count_done), EDDY_EINVAL));
  cr_assert(eq(int, eddy_image_crop(&job, 0, 0, 0, 10), EDDY_EINVAL));
  cr_assert(eq(int, eddy_image_resize(&job, 0, 0), EDDY_EINVAL));
  cr_assert(
      eq(int, eddy_image_fit(&job, 10, 0, EDDY_IMAGE_COVER), EDDY_EINVAL));
  cr_assert(eq(int, eddy_image_output(&job, EDDY_IMAGE_PNG, 101), EDDY_EINVAL));
  for (int i = 0; i < EDDY_IMAGE_MAX_OPS; i++)
    cr_assert(eq(int, eddy_image_strip(&job), 0));
  cr_assert(eq(int, eddy_image_strip(&job), EDDY_ENOBUFS));
  from_file("in.png");
  cr_assert(eq(int, eddy_image_source_file(&job, "x"), EDDY_EINVAL));
  cr_assert(eq(int, eddy_image_format_parse("JPG", 3), EDDY_IMAGE_JPEG));
  cr_assert(eq(int, eddy_image_format_parse("tiff", 4), -1));
}

Test(image, gm_threads_default_to_one_per_job) {
  setenv("EDDY_IMAGE_THREADS", "3", 1);
  cr_assert(eq(uint, eddy_image_threads(), 3));
  eddy_image_set_threads(2);
  cr_assert(eq(uint, eddy_image_threads(), 2));
  eddy_image_set_threads(0);
  unsetenv("EDDY_IMAGE_THREADS");
  cr_assert(eq(uint, eddy_image_threads(), 1));
  cr_assert(eq(int, eddy_image_initialized(), 0)); /* nothing ran yet */
}

/* A child forked after GM started in its parent must not use GM's copied
 * locks and threads: its jobs fail with EDDY_EBUSY (EFORK). */
Test(image, a_child_forked_after_gm_started_refuses_jobs) {
  from_file("in.png");
  eddy_image_thumbnail(&job, 10, 0);
  cr_assert(eq(int, img_run_job(&loop, &job), 0), "%s", job.message);
  cr_assert(eq(int, eddy_image_initialized(), 1));
  pid_t pid = fork();
  cr_assert(ge(int, pid, 0));
  if (pid == 0) {
    eddy_loop_t child_loop;
    eddy_image_t child_job;
    eddy_image_init(&child_job);
    eddy_image_source_file(&child_job, img_path("in.png"));
    eddy_image_thumbnail(&child_job, 10, 0);
    if (eddy_loop_init(&child_loop) != 0 ||
        eddy_image_run(&child_loop, &child_job, img_count_done) != 0)
      _exit(2);
    eddy_run(&child_loop, EDDY_RUN_DEFAULT);
    _exit(img_last_status == EDDY_EBUSY && child_job.error == EDDY_IMAGE_EFORK
              ? 0
              : 1);
  }
  int st;
  cr_assert(eq(int, waitpid(pid, &st, 0), pid));
  cr_assert(ne(int, WIFEXITED(st), 0));
  cr_assert(eq(int, WEXITSTATUS(st), 0));
}

/* The nice value of each of this process's threads, -100 for none. */
static int max_thread_nice(void) {
  int max = -100;
  DIR *d = opendir("/proc/self/task");
  cr_assert_not_null(d);
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    char path[300], buf[512];
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
      continue;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* then fields 3.. */
    int field = 2, nice = 0;
    for (; p != NULL && *p != '\0'; p++)
      if (*p == ' ' && ++field == 19)
        nice = atoi(p + 1);
    max = nice > max ? nice : max;
  }
  closedir(d);
  return max;
}

static int seen_nice;

static void watch_nice(eddy_timer_t *t) {
  int n = max_thread_nice();
  seen_nice = n > seen_nice ? n : seen_nice;
  if (img_done_count > 0)
    eddy_close(&t->handle, NULL);
}

/* While a job runs its pool thread is niced (the loop's thread wins a
 * core); afterwards every thread is back where it was. */
Test(image, pool_threads_are_niced_only_while_they_make_images) {
  cr_assert(eq(int, max_thread_nice(), 0));
  eddy_image_set_nice(7);
  from_file("in.jpg");
  eddy_image_resize(&job, 3000, 2250); /* long enough to be seen */
  eddy_timer_t t;
  eddy_timer_init(&loop, &t);
  eddy_timer_start(&t, watch_nice, 1, 1);
  cr_assert(eq(int, img_run_job(&loop, &job), 0), "%s", job.message);
  if (geteuid() == 0) /* CAP_SYS_NICE: it may come back, so it is applied */
    cr_assert(eq(int, seen_nice, 7));
  cr_assert(eq(int, max_thread_nice(), 0));
}
