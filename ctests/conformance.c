/*
 * Error paths and descriptor rules of kvm(3), through the public headers only: FreeBSD's ATF
 * checklist (kvm_close, kvm_geterr, kvm_open, kvm_open2 tests) and the Linux port's own checks
 * (libkvm-behaviour.md §13). Run under valgrind by `make check`.
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvm.h>
#include <nlist.h>
#include <sys/user.h>

#include "t.h"

/* FreeBSD's private reporter; its tests declare it the same way. */
void _kvm_err(kvm_t *kd, const char *program, const char *fmt, ...);

static char errbuf[_POSIX2_LINE_MAX];
static char textfile[64];
static char emptyfile[64];

static void errbuf_clear(void) { errbuf[0] = '\0'; }
static int errbuf_has_error(const char *s) { return strcmp(s, "") != 0; }

/* Runs fn with stderr sent to a file; returns what was printed (static buffer). */
static const char *capture_stderr(void (*fn)(void))
{
	static char out[4096];
	char path[] = "/tmp/kvm-ctest-stderr-XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	ssize_t n;

	fflush(stderr);
	dup2(fd, 2);
	fn();
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, out, sizeof(out) - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(path);
	return out;
}

static void close_null(void)
{
	errno = 0;
	CHECK(kvm_close(NULL) == -1);
	CHECK(errno == EINVAL);
}

static void geterr_null(void)
{
	const char *s = kvm_geterr(NULL);
	CHECK(s != NULL);
	CHECK_STR(s, "");
}

static void open_nonexistent_quiet(void) { CHECK(kvm_open(NULL, "/nonexistent", NULL, O_RDONLY, NULL) == NULL); }
static void open_nonexistent_prog(void) { CHECK(kvm_open(NULL, "/nonexistent", NULL, O_RDONLY, "kvm_open_test") == NULL); }
static void open_zero_prog(void) { CHECK(kvm_open("/nonexistent", "/dev/zero", NULL, O_RDONLY, "prog") == NULL); }
static void open_empty_prefix(void) { CHECK(kvm_open(NULL, "/nonexistent", NULL, O_RDONLY, "") == NULL); }

/* O1, O2: NULL results; with errstr the message goes to stderr with the prefix. */
static void open_errors_to_stderr(void)
{
	const char *out;

	CHECK_STR(capture_stderr(open_nonexistent_quiet), "");
	CHECK_STR(capture_stderr(open_nonexistent_prog),
	    "kvm_open_test: /nonexistent: No such file or directory\n");
	/* The dead-kernel path opens the execfile; its error text belongs to the symbol loader. */
	out = capture_stderr(open_zero_prog);
	CHECK(strncmp(out, "prog: ", 6) == 0 && strlen(out) > 7 && out[strlen(out) - 1] == '\n');
	CHECK_STR(capture_stderr(open_empty_prefix), ": /nonexistent: No such file or directory\n");
}

/* O3, O4, P3, P4: a text file is neither a core nor a kernel. */
static void open_text_files(void)
{
	CHECK(kvm_open(NULL, textfile, NULL, O_RDONLY, NULL) == NULL);
	CHECK(kvm_open(textfile, "/bin/sh", NULL, O_RDONLY, NULL) == NULL);
	errbuf_clear();
	CHECK(kvm_open2(NULL, textfile, O_RDONLY, errbuf, NULL) == NULL);
	CHECK(errbuf_has_error(errbuf));
	errbuf_clear();
	CHECK(kvm_open2(textfile, "/bin/sh", O_RDONLY, errbuf, NULL) == NULL);
	CHECK(errbuf_has_error(errbuf));
	errbuf_clear();
	CHECK(kvm_openfiles(NULL, textfile, NULL, O_RDONLY, errbuf) == NULL);
	CHECK(errbuf_has_error(errbuf));
}

/* P1, P2: with a NULL errbuf nothing is written anywhere; with one, a message. */
static void open2_errbuf(void)
{
	errbuf_clear();
	CHECK(kvm_open2(NULL, "/nonexistent", O_RDONLY, NULL, NULL) == NULL);
	CHECK(!errbuf_has_error(errbuf));
	CHECK(kvm_open2(NULL, "/nonexistent", O_RDONLY, errbuf, NULL) == NULL);
	CHECK_STR(errbuf, "/nonexistent: No such file or directory");
	errbuf_clear();
	CHECK(kvm_open2("/nonexistent", "/dev/zero", O_RDONLY, NULL, NULL) == NULL);
	CHECK(!errbuf_has_error(errbuf));
	CHECK(kvm_open2("/nonexistent", "/dev/zero", O_RDONLY, errbuf, NULL) == NULL);
	CHECK(errbuf_has_error(errbuf));
}

static void open_flags(void)
{
	int ok[] = { O_RDONLY, O_WRONLY, O_RDWR, 3 };
	int bad[] = { O_RDONLY | O_CREAT, O_CLOEXEC, O_NONBLOCK, O_RDWR | O_TRUNC, 4 };
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		kvm_t *kd = kvm_openfiles(NULL, "/dev/null", NULL, ok[i], errbuf);
		CHECK(kd != NULL);
		if (kd != NULL)
			CHECK(kvm_close(kd) == 0);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errbuf_clear();
		CHECK(kvm_openfiles(NULL, "/dev/null", NULL, bad[i], errbuf) == NULL);
		CHECK_STR(errbuf, "bad flags arg");
	}
}

/* The name length is checked before the flags. */
static void open_exec_too_long(void)
{
	char name[1100];

	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	errbuf_clear();
	CHECK(kvm_openfiles(name, "/dev/null", NULL, O_CREAT, errbuf) == NULL);
	CHECK_STR(errbuf, "exec file name too long");
	name[1024] = '\0';	/* strlen 1024 = MAXPATHLEN: too long */
	errbuf_clear();
	CHECK(kvm_openfiles(name, "/dev/null", NULL, O_CREAT, errbuf) == NULL);
	CHECK_STR(errbuf, "exec file name too long");
	name[1023] = '\0';
	errbuf_clear();
	CHECK(kvm_openfiles(name, "/dev/null", NULL, O_CREAT, errbuf) == NULL);
	CHECK_STR(errbuf, "bad flags arg");
}

static void open_empty_core(void)
{
	errbuf_clear();
	CHECK(kvm_openfiles(NULL, emptyfile, NULL, O_RDONLY, errbuf) == NULL);
	CHECK_STR(errbuf, "empty file: Invalid argument");
}

/* errbuf is _POSIX2_LINE_MAX bytes and always NUL-terminated, however long the message. */
static void errbuf_truncated(void)
{
	static char big[_POSIX2_LINE_MAX + 64];
	char path[4000];
	int i;

	strcpy(path, "/nonexistent");
	for (i = strlen(path); i < (int)sizeof(path) - 3; i += 2)
		memcpy(path + i, "/a", 2);
	path[i] = '\0';
	memset(big, 'X', sizeof(big));
	CHECK(kvm_openfiles(NULL, path, NULL, O_RDONLY, big) == NULL);
	CHECK(big[_POSIX2_LINE_MAX - 1] == '\0');
	CHECK(strlen(big) == _POSIX2_LINE_MAX - 1);
	CHECK(big[_POSIX2_LINE_MAX] == 'X');
	CHECK(strncmp(big, "/nonexistent/a/a", 16) == 0);
}

/* "/dev/null" is the live system without kernel memory: nothing else is opened. */
static void devnull_core(void)
{
	char buf[8];
	kvm_t *kd;

	errbuf_clear();
	kd = kvm_openfiles("/nonexistent-kernel", "/dev/null", NULL, O_RDONLY, errbuf);
	CHECK(kd != NULL);
	CHECK(!errbuf_has_error(errbuf));
	if (kd == NULL)
		return;
	CHECK_STR(kvm_geterr(kd), "");
	CHECK(kvm_native(kd) == 1);
	CHECK(kvm_kerndisp(kd) == 0);
	CHECK(kvm_read(kd, 0x1000, buf, sizeof(buf)) == 0);
	CHECK_STR(kvm_geterr(kd), "short read");
	CHECK(kvm_read2(kd, 0x1000, buf, 0) == 0);
	/* G2: writing through a read-only descriptor fails with a message. */
	CHECK(kvm_write(kd, 0, NULL, 0) == -1);
	CHECK(errbuf_has_error(kvm_geterr(kd)));
	CHECK(strstr(kvm_geterr(kd), "kvm_write") != NULL);
	CHECK(kvm_walk_pages(kd, NULL, NULL) == 0);
	CHECK(kvm_close(kd) == 0);

	kd = kvm_openfiles(NULL, "/dev/null", NULL, O_RDWR, errbuf);
	CHECK(kd != NULL);
	if (kd == NULL)
		return;
	CHECK(kvm_write(kd, 0, NULL, 0) == 0);
	CHECK_STR(kvm_geterr(kd), "");
	CHECK(kvm_close(kd) == 0);
}

static void devnull_prefixed_read(void)
{
	char buf[4];
	/* errbuf ("") as errstr: hard errors go to stderr as ": msg"; errbuf stays untouched. */
	kvm_t *kd = kvm_open(NULL, "/dev/null", NULL, O_RDONLY, "ctest");

	if (kd == NULL)
		return;
	CHECK(kvm_read(kd, 0, buf, sizeof(buf)) == 0);
	CHECK_STR(kvm_geterr(kd), "");
	kvm_close(kd);
}

static void open_errstr_hard_errors(void)
{
	CHECK_STR(capture_stderr(devnull_prefixed_read), "ctest: short read\n");
}

/* G3 shape: _kvm_err stores a message; later successes leave it alone. */
static void kvm_err_sticky(void)
{
	char buf[4];
	kvm_t *kd = kvm_openfiles(NULL, "/dev/null", NULL, O_RDONLY, errbuf);

	CHECK(kd != NULL);
	if (kd == NULL)
		return;
	_kvm_err(kd, NULL, "%s", "that ends well");
	CHECK_STR(kvm_geterr(kd), "that ends well");
	CHECK(kvm_read(kd, 0, buf, 0) == 0);
	CHECK(kvm_close(NULL) == -1);
	CHECK_STR(kvm_geterr(kd), "that ends well");
	_kvm_err(kd, NULL, "%d-%s-%c", 42, "x", 'y');
	CHECK_STR(kvm_geterr(kd), "42-x-y");
	CHECK(kvm_close(kd) == 0);
}

static kvm_t *err_kd;
static void err_with_program(void) { _kvm_err(err_kd, "prog", "%s %d", "to stderr", 7); }

static void kvm_err_program(void)
{
	err_kd = kvm_openfiles(NULL, "/dev/null", NULL, O_RDONLY, errbuf);
	CHECK(err_kd != NULL);
	if (err_kd == NULL)
		return;
	CHECK_STR(capture_stderr(err_with_program), "prog: to stderr 7\n");
	CHECK_STR(kvm_geterr(err_kd), "");
	kvm_close(err_kd);
}

/* G2 and G3 on the running kernel, with Linux names: kernel memory through /proc/kcore and
 * symbols from /proc/kallsyms (root, and a kernel that provides both). */
static void live_kernel_g2_g3(void)
{
	struct nlist nl[2];
	char banner[64], want[64];
	FILE *f;
	kvm_t *kd;

	errbuf_clear();
	kd = kvm_open2(NULL, NULL, O_RDONLY, errbuf, NULL);
	CHECK(kd != NULL);
	CHECK(!errbuf_has_error(errbuf));
	if (kd == NULL)
		return;
	CHECK(kvm_write(kd, 0, NULL, 0) == -1);
	CHECK(errbuf_has_error(kvm_geterr(kd)));
	memset(nl, 0, sizeof(nl));
	nl[0].n_name = "_linux_banner";
	if (kvm_nlist(kd, nl) != 0 || nl[0].n_type == 0) {
		static char why[_POSIX2_LINE_MAX + 32];
		snprintf(why, sizeof(why), "no kernel symbols here: %s", kvm_geterr(kd));
		kvm_close(kd);
		SKIP(why);
	}
	_kvm_err(kd, NULL, "%s", "that ends well");
	memset(banner, 0, sizeof(banner));
	if (kvm_read(kd, nl[0].n_value, banner, 4) != 4) {
		static char why[_POSIX2_LINE_MAX + 32];
		snprintf(why, sizeof(why), "kernel memory not readable: %s", kvm_geterr(kd));
		kvm_close(kd);
		SKIP(why);
	}
	CHECK_STR(kvm_geterr(kd), "that ends well");
	CHECK(kvm_read(kd, nl[0].n_value, banner, sizeof(banner) - 1) == sizeof(banner) - 1);
	if ((f = fopen("/proc/version", "r")) != NULL) {
		memset(want, 0, sizeof(want));
		if (fread(want, 1, sizeof(want) - 1, f) > 0)
			CHECK(memcmp(banner, want, sizeof(banner) - 1) == 0);
		fclose(f);
	}
	CHECK(kvm_close(kd) == 0);
}

/* NULL descriptors clear caches (spec §9, §12) rather than crash. */
static void null_handle_calls(void)
{
	long cp[CPUSTATES];
	struct kvm_swap sw[2];

	CHECK(kvm_getswapinfo(NULL, sw, 2, 0) == 0);
	CHECK(kvm_getcptime(NULL, cp) == 0);
	CHECK(kvm_getmaxcpu(NULL) == 0);
	CHECK(kvm_getpcpu(NULL, 0) == NULL);
	CHECK(kvm_read(NULL, 0, cp, sizeof(cp)) == -1);
	CHECK(kvm_getprocs(NULL, KERN_PROC_PROC, 0, NULL) == NULL);
	CHECK(kvm_walk_pages(NULL, NULL, NULL) == 0);
}

/* Argument errors are reported, not crashes. */
static void bad_arguments(void)
{
	struct nlist nl[] = { { NULL, 0, 0, 0, 0 } };
	struct kvm_nlist nl2[] = { { "", 0, 0 } };
	double la[3];
	kvm_t *kd = kvm_openfiles(NULL, "/dev/null", NULL, O_RDONLY, errbuf);

	CHECK(kd != NULL);
	if (kd == NULL)
		return;
	CHECK(kvm_read(kd, 0, NULL, 16) == -1);
	CHECK(strstr(kvm_geterr(kd), "NULL") != NULL);
	CHECK(kvm_getargv(kd, NULL, 0) == NULL);
	CHECK(kvm_getenvv(kd, NULL, 0) == NULL);
	CHECK(kvm_nlist(kd, NULL) == -1);
	CHECK(kvm_nlist(kd, nl) == 0);		/* empty list */
	CHECK(kvm_nlist2(kd, nl2) == 0);	/* "" ends the list too */
	CHECK(kvm_getloadavg(kd, la, 0) == 0);	/* nothing asked, nothing written */
	CHECK(kvm_getloadavg(kd, NULL, 3) == -1);
	CHECK(kvm_getswapinfo(kd, NULL, 0, 0) == -1);
	CHECK(kvm_getpcpu(kd, -1) == NULL);
	CHECK(kvm_close(kd) == 0);
}

/* One descriptor shared by threads: calls serialize on its lock, nothing is corrupted. */
static void *hammer(void *arg)
{
	kvm_t *kd = arg;
	char buf[16];
	int i, bad = 0;

	for (i = 0; i < 2000; i++) {
		if (kvm_read(kd, 0x1000 + i, buf, sizeof(buf)) != 0)
			bad++;
		if (strcmp(kvm_geterr(kd), "short read") != 0)
			bad++;
	}
	return (void *)(long)bad;
}

static void threads_share_handle(void)
{
	pthread_t t[4];
	void *r;
	int i, bad = 0;
	kvm_t *kd = kvm_openfiles(NULL, "/dev/null", NULL, O_RDONLY, errbuf);

	CHECK(kd != NULL);
	if (kd == NULL)
		return;
	for (i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, hammer, kd);
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], &r);
		bad += (int)(long)r;
	}
	CHECK(bad == 0);
	CHECK(kvm_close(kd) == 0);
}

static void make_files(void)
{
	int fd;

	strcpy(textfile, "/tmp/kvm-ctest-text-XXXXXX");
	fd = mkstemp(textfile);
	if (write(fd, "some text, not a core\n", 22) != 22)
		abort();
	close(fd);
	strcpy(emptyfile, "/tmp/kvm-ctest-empty-XXXXXX");
	close(mkstemp(emptyfile));
}

int main(void)
{
	make_files();
	RUN(close_null);
	RUN(geterr_null);
	RUN(open_errors_to_stderr);
	RUN(open_text_files);
	RUN(open2_errbuf);
	RUN(open_flags);
	RUN(open_exec_too_long);
	RUN(open_empty_core);
	RUN(errbuf_truncated);
	RUN(devnull_core);
	RUN(open_errstr_hard_errors);
	RUN(kvm_err_sticky);
	RUN(kvm_err_program);
	RUN(live_kernel_g2_g3);
	RUN(null_handle_calls);
	RUN(bad_arguments);
	RUN(threads_share_handle);
	unlink(textfile);
	unlink(emptyfile);
	return T_DONE();
}
