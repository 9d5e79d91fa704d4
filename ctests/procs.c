/*
 * kvm_getprocs / kvm_getargv / kvm_getenvv on this machine, compared with /proc, through the
 * public headers only. Children with known argv, environment, process group, session, a pty
 * as controlling terminal, uid 65534 and several threads are spawned (the program re-executes
 * itself as "procs-child"); each filter must find exactly the expected children.
 */
#define _GNU_SOURCE
#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <kvm.h>
#include <sys/user.h>

#include "t.h"

#define CHILD_NAME "procs-child"

static kvm_t *kd;
static char self[PATH_MAX];
static char errbuf[_POSIX2_LINE_MAX];
static pid_t c_pgrp, c_sess, c_nobody, c_threads, c_zombie;
static dev_t c_tty;
static int ptm = -1;
static char *child_env[] = { "KVMTEST=1", "EMPTY=", "LONG=" "0123456789abcdef", NULL };

/* ---- the child side ---- */

static void *park(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

static int child_main(int argc, char **argv)
{
	if (argc > 0 && strcmp(argv[argc - 1], "threads") == 0) {
		pthread_t t;
		int i;
		for (i = 0; i < 3; i++)
			pthread_create(&t, NULL, park, NULL);
	}
	park(NULL);
	return 0;
}

/* ---- spawning ---- */

enum how { PGRP, SESS, NOBODY, THREADS };

static pid_t spawn(enum how how)
{
	char *argv[] = { CHILD_NAME, "", "arg two", "", how == THREADS ? "threads" : "sleep", NULL };
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	switch (how) {
	case PGRP:
		setpgid(0, 0);
		break;
	case SESS: {
		int fd;
		setsid();
		fd = open(ptsname(ptm), O_RDWR);
		if (fd < 0 || ioctl(fd, TIOCSCTTY, 0) < 0)
			_exit(3);
		break;
	}
	case NOBODY:
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(4);
		break;
	case THREADS:
		break;
	}
	execve(self, argv, child_env);
	_exit(5);
}

/* Waits until the child runs our program (not the pre-exec copy of the parent). */
static void wait_exec(pid_t pid)
{
	char path[64], buf[64];
	int i;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	for (i = 0; i < 500; i++) {
		FILE *f = fopen(path, "r");
		if (f != NULL) {
			int ok = fgets(buf, sizeof(buf), f) != NULL && strncmp(buf, "procs", 5) == 0;
			fclose(f);
			snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
			f = fopen(path, "r");
			if (f != NULL) {
				ok = ok && fgets(buf, sizeof(buf), f) != NULL &&
				    strcmp(buf, CHILD_NAME) == 0;
				fclose(f);
			}
			snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
			if (ok)
				break;
		}
		usleep(10000);
	}
	usleep(20000); /* threads */
}

/* ---- /proc ---- */

struct pstat {
	char state;
	int ppid, pgrp, session, tty_nr, tpgid;
	long nice, nthreads;
};

static int read_stat(pid_t pid, struct pstat *ps)
{
	char path[64], buf[1024], *p;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n > 0 ? n : 0] = '\0';
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	n = sscanf(p + 2, "%c %d %d %d %d %d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %ld %ld",
	    &ps->state, &ps->ppid, &ps->pgrp, &ps->session, &ps->tty_nr, &ps->tpgid,
	    &ps->nice, &ps->nthreads);
	return n == 8 ? 0 : -1;
}

/* The NUL-separated contents of /proc/PID/<what>. */
static size_t read_vec(pid_t pid, const char *what, char *buf, size_t len)
{
	char path[64];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, what);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	n = fread(buf, 1, len, f);
	fclose(f);
	return n;
}

/* ---- helpers ---- */

static struct kinfo_proc *getprocs(int op, int arg, int *cnt)
{
	*cnt = -1;
	return kvm_getprocs(kd, op, arg, cnt);
}

static int count_pid(struct kinfo_proc *kp, int cnt, pid_t pid)
{
	int i, n = 0;
	for (i = 0; i < cnt; i++)
		n += kp[i].ki_pid == pid;
	return n;
}

/* Which of our children a selection holds, as a bit set (1 = pgrp, 2 = sess, 4 = nobody, 8 = threads). */
static int ours(struct kinfo_proc *kp, int cnt)
{
	return (count_pid(kp, cnt, c_pgrp) ? 1 : 0) | (count_pid(kp, cnt, c_sess) ? 2 : 0) |
	    (count_pid(kp, cnt, c_nobody) ? 4 : 0) | (count_pid(kp, cnt, c_threads) ? 8 : 0);
}

static int live_backend(void)
{
	int cnt;
	return getprocs(KERN_PROC_PID, getpid(), &cnt) != NULL;
}

/* ---- tests ---- */

static void pid_fields_match_proc(void)
{
	pid_t kids[] = { c_pgrp, c_sess, c_nobody, c_threads };
	size_t k;

	for (k = 0; k < sizeof(kids) / sizeof(kids[0]); k++) {
		struct pstat ps;
		int cnt;
		struct kinfo_proc *kp = getprocs(KERN_PROC_PID, kids[k], &cnt);

		CHECK(kp != NULL && cnt == 1);
		if (kp == NULL || cnt != 1 || read_stat(kids[k], &ps) != 0)
			continue;
		CHECK(kp->ki_structsize == (int)sizeof(struct kinfo_proc));
		CHECK(kp->ki_pid == kids[k]);
		CHECK(kp->ki_ppid == getpid() && kp->ki_ppid == ps.ppid);
		CHECK(kp->ki_pgid == ps.pgrp);
		CHECK(kp->ki_sid == ps.session);
		CHECK(kp->ki_nice == ps.nice);
		CHECK(kp->ki_numthreads == ps.nthreads);
		CHECK(kp->ki_stat == SSLEEP);
		CHECK_STR(kp->ki_comm, "procs");
		CHECK(kp->ki_udata == NULL);
		CHECK(kp->ki_flag & P_INMEM);
		CHECK(!(kp->ki_flag & P_SYSTEM));
		CHECK(kp->ki_pri.pri_class == PRI_TIMESHARE);
		CHECK(kp->ki_start.tv_sec > 0);
		kp->ki_udata = kp;	/* writable, as w(1) and top(1) use it */
	}
}

static void filters_select_exactly(void)
{
	struct kinfo_proc *kp;
	int cnt, i, all_ok;

	kp = getprocs(KERN_PROC_PGRP, c_pgrp, &cnt);
	CHECK(kp != NULL && cnt == 1 && ours(kp, cnt) == 1);
	kp = getprocs(KERN_PROC_SESSION, c_sess, &cnt);
	CHECK(kp != NULL && cnt == 1 && ours(kp, cnt) == 2);
	kp = getprocs(KERN_PROC_TTY, (int)c_tty, &cnt);
	CHECK(kp != NULL && cnt == 1 && ours(kp, cnt) == 2);
	if (kp != NULL && cnt == 1) {
		CHECK(kp->ki_tdev == c_tty);
		CHECK(kp->ki_flag & P_CONTROLT);
		CHECK(kp->ki_kiflag & KI_CTTY);
		CHECK(kp->ki_kiflag & KI_SLEADER);
		CHECK(kp->ki_tsid == c_sess);
	}
	kp = getprocs(KERN_PROC_UID, 65534, &cnt);
	CHECK(kp != NULL && ours(kp, cnt) == 4);
	for (i = 0, all_ok = 1; kp != NULL && i < cnt; i++)
		all_ok &= kp[i].ki_uid == 65534;
	CHECK(all_ok);
	kp = getprocs(KERN_PROC_RUID, 65534, &cnt);
	CHECK(kp != NULL && ours(kp, cnt) == 4);
	for (i = 0, all_ok = 1; kp != NULL && i < cnt; i++)
		all_ok &= kp[i].ki_ruid == 65534 && kp[i].ki_rgid == 65534;
	CHECK(all_ok);
	kp = getprocs(KERN_PROC_PROC, 0, &cnt);
	CHECK(kp != NULL && ours(kp, cnt) == 15 && count_pid(kp, cnt, c_threads) == 1);
	kp = getprocs(KERN_PROC_ALL, 0, &cnt);
	CHECK(kp != NULL && ours(kp, cnt) == 15);
}

static void threads_one_row_each(void)
{
	int cnt, i, j, distinct = 1;
	struct kinfo_proc *kp = getprocs(KERN_PROC_PID | KERN_PROC_INC_THREAD, c_threads, &cnt);

	CHECK(kp != NULL && cnt == 4);
	for (i = 0; kp != NULL && i < cnt; i++) {
		CHECK(kp[i].ki_pid == c_threads);
		CHECK(kp[i].ki_tid > 0);
		for (j = 0; j < i; j++)
			distinct &= kp[i].ki_tid != kp[j].ki_tid;
	}
	CHECK(distinct);
	kp = getprocs(KERN_PROC_PID, c_threads, &cnt);
	CHECK(kp != NULL && cnt == 1 && kp->ki_numthreads == 4);
	kp = getprocs(KERN_PROC_ALL | KERN_PROC_INC_THREAD, 0, &cnt);
	CHECK(kp != NULL && count_pid(kp, cnt, c_threads) == 4);
}

/* The vector kvm_getargv must return for a budget of nchr bytes (FreeBSD's rules). */
static int expect_vec(const char *raw, size_t len, int nchr, char out[][64], int max)
{
	char buf[4096];
	size_t n = len, i, start = 0;
	int k = 0;

	memcpy(buf, raw, len);
	if (nchr > 0 && (size_t)nchr <= len) {
		n = nchr;
		buf[n - 1] = '\0';
	}
	for (i = 0; i < n && k < max; i++) {
		if (buf[i] == '\0') {
			snprintf(out[k++], 64, "%s", buf + start);
			start = i + 1;
		}
	}
	return k;
}

static void check_vec(char **v, const char *raw, size_t len, int nchr)
{
	char want[16][64];
	int n = expect_vec(raw, len, nchr, want, 16), i;

	CHECK(v != NULL);
	if (v == NULL)
		return;
	for (i = 0; i < n; i++) {
		CHECK(v[i] != NULL);
		if (v[i] == NULL)
			return;
		CHECK_STR(v[i], want[i]);
	}
	CHECK(v[n] == NULL);
}

static void argv_env_and_nchr(void)
{
	char raw[4096], env[4096];
	size_t len = read_vec(c_pgrp, "cmdline", raw, sizeof(raw));
	size_t elen = read_vec(c_pgrp, "environ", env, sizeof(env));
	int sizes[] = { 0, 1, 2, 5, 12, 13, 14, 20, (int)len - 1, (int)len, (int)len + 1, 100000 };
	size_t i;
	int cnt;
	struct kinfo_proc *kp = getprocs(KERN_PROC_PID, c_pgrp, &cnt), k;

	CHECK(kp != NULL && len > 20 && elen > 10);
	if (kp == NULL)
		return;
	k = *kp;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		check_vec(kvm_getargv(kd, &k, sizes[i]), raw, len, sizes[i]);
		check_vec(kvm_getenvv(kd, &k, sizes[i]), env, elen, sizes[i]);
	}
	/* argv with empty strings, exactly. */
	{
		char **v = kvm_getargv(kd, &k, 0);
		CHECK(v != NULL && v[0] && v[1] && v[2] && v[3] && v[4] && !v[5]);
		if (v != NULL && v[0] && v[1] && v[2] && v[3] && v[4]) {
			CHECK_STR(v[0], CHILD_NAME);
			CHECK_STR(v[1], "");
			CHECK_STR(v[2], "arg two");
			CHECK_STR(v[3], "");
			CHECK_STR(v[4], "sleep");
		}
		v = kvm_getenvv(kd, &k, 0);
		CHECK(v != NULL && v[0] && v[1] && v[2] && !v[3]);
		if (v != NULL && v[0] && v[1] && v[2]) {
			CHECK_STR(v[0], "KVMTEST=1");
			CHECK_STR(v[1], "EMPTY=");
		}
	}
}

static void zombie_and_missing(void)
{
	int cnt;
	struct kinfo_proc *kp = getprocs(KERN_PROC_PID, c_zombie, &cnt);

	CHECK(kp != NULL && cnt == 1);
	if (kp != NULL && cnt == 1) {
		CHECK(kp->ki_stat == SZOMB);
		CHECK(kp->ki_ppid == getpid());
	}
	/* A pid that is not there: NULL with ESRCH (ps -p, top -p rely on it). */
	errno = 0;
	kp = getprocs(KERN_PROC_PID, 0x3ffffff0, &cnt);
	CHECK(kp == NULL && errno == ESRCH);
	CHECK(kvm_geterr(kd)[0] != '\0');
	/* An unknown operation: NULL and a message. */
	kp = getprocs(999, 0, &cnt);
	CHECK(kp == NULL);
	/* Empty selection: non-NULL with no records. */
	kp = getprocs(KERN_PROC_UID, 0x7ffffff0, &cnt);
	CHECK(kp != NULL && cnt == 0);
}

/* Thousands of short-lived processes while reading: no error, no torn record. */
static void churn(void)
{
	pid_t spawner;
	int round, bad = 0;

	fflush(stdout);
	fflush(stderr);
	spawner = fork();
	if (spawner == 0) {
		int i;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		for (i = 0; i < 3000; i++) {
			pid_t p = fork();
			if (p == 0)
				_exit(0);
			if (p > 0)
				waitpid(p, NULL, 0);
		}
		_exit(0);
	}
	for (round = 0; round < 40; round++) {
		int cnt, i;
		struct kinfo_proc *kp = getprocs(round & 1 ? KERN_PROC_ALL : KERN_PROC_PROC, 0, &cnt);
		if (kp == NULL) {
			bad++;
			fprintf(stderr, "churn: %s\n", kvm_geterr(kd));
			continue;
		}
		for (i = 0; i < cnt; i++)
			if (kp[i].ki_structsize != (int)sizeof(struct kinfo_proc) || kp[i].ki_pid <= 0 ||
			    kp[i].ki_comm[0] == '\0' || kp[i].ki_stat < SIDL || kp[i].ki_stat > SLOCK)
				bad++;
	}
	waitpid(spawner, NULL, 0);
	CHECK(bad == 0);
}

/* Separate descriptors in separate threads never share state. */
static void *own_descriptor(void *arg)
{
	char eb[_POSIX2_LINE_MAX];
	kvm_t *k = kvm_openfiles(NULL, "/dev/null", NULL, O_RDONLY, eb);
	long bad = 0;
	int i, cnt;

	(void)arg;
	if (k == NULL)
		return (void *)1L;
	for (i = 0; i < 100; i++) {
		struct kinfo_proc *kp = kvm_getprocs(k, KERN_PROC_PID, getpid(), &cnt);
		char **av = kp != NULL ? kvm_getargv(k, kp, 0) : NULL;
		if (kp == NULL || cnt != 1 || kp->ki_pid != getpid() || av == NULL || av[0] == NULL)
			bad++;
	}
	kvm_close(k);
	return (void *)bad;
}

static void threads_own_descriptors(void)
{
	pthread_t t[4];
	void *r;
	long bad = 0;
	int i;

	for (i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, own_descriptor, NULL);
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], &r);
		bad += (long)r;
	}
	CHECK(bad == 0);
}

int main(int argc, char **argv)
{
	ssize_t n;
	int status;

	if (argc > 0 && strcmp(argv[0], CHILD_NAME) == 0)
		return child_main(argc, argv);
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) <= 0)
		return 2;
	self[n] = '\0';
	kd = kvm_openfiles(NULL, "/dev/null", NULL, O_RDONLY, errbuf);
	if (kd == NULL) {
		fprintf(stderr, "kvm_openfiles: %s\n", errbuf);
		return 1;
	}
	if (!live_backend()) {
		printf("skipped: kvm_getprocs on the live system is not available: %s\n", kvm_geterr(kd));
		kvm_close(kd);
		return 0;
	}
	ptm = posix_openpt(O_RDWR | O_NOCTTY);
	if (ptm < 0 || grantpt(ptm) != 0 || unlockpt(ptm) != 0) {
		perror("pty");
		return 1;
	}
	{
		struct stat st;
		if (stat(ptsname(ptm), &st) != 0)
			return 1;
		c_tty = st.st_rdev;
	}
	c_pgrp = spawn(PGRP);
	c_sess = spawn(SESS);
	c_nobody = spawn(NOBODY);
	c_threads = spawn(THREADS);
	if ((c_zombie = fork()) == 0)
		_exit(0);
	wait_exec(c_pgrp);
	wait_exec(c_sess);
	wait_exec(c_nobody);
	wait_exec(c_threads);
	{
		siginfo_t si;
		waitid(P_PID, c_zombie, &si, WEXITED | WNOWAIT); /* a zombie until the end */
	}

	RUN(pid_fields_match_proc);
	RUN(filters_select_exactly);
	RUN(threads_one_row_each);
	RUN(argv_env_and_nchr);
	RUN(zombie_and_missing);
	RUN(churn);
	RUN(threads_own_descriptors);

	kill(c_pgrp, SIGKILL);
	kill(c_sess, SIGKILL);
	kill(c_nobody, SIGKILL);
	kill(c_threads, SIGKILL);
	while (wait(&status) > 0)
		;
	close(ptm);
	CHECK(kvm_close(kd) == 0);
	return T_DONE();
}
