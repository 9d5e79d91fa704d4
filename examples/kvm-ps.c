/*
 * kvm-ps: a small ps(1) written the way BSD ps uses libkvm: kvm_openfiles on "/dev/null" (the
 * process interface only) or on a crash dump given with -M core -N kernel, kvm_getprocs, and
 * kvm_getargv for the command line.
 *
 * usage: kvm-ps [-H] [-p pid] [-U uid] [-M core] [-N kernel]
 */
#include <sys/types.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvm.h>
#include <sys/user.h>

#include "ttyname.h"

/* ps's STAT column: state letter, then '<' / 'N' for nice, 's' leader, '+' foreground. */
static void stat_of(const struct kinfo_proc *kp, char *s)
{
	switch (kp->ki_stat) {
	case SRUN: *s++ = 'R'; break;
	case SSLEEP: *s++ = kp->ki_slptime >= 20 ? 'I' : 'S'; break;
	case SSTOP: *s++ = 'T'; break;
	case SZOMB: *s++ = 'Z'; break;
	case SWAIT: *s++ = 'W'; break;
	case SLOCK: *s++ = 'L'; break;
	case SIDL: *s++ = 'I'; break;
	default: *s++ = '?'; break;
	}
	if (kp->ki_nice < 0)
		*s++ = '<';
	else if (kp->ki_nice > 0)
		*s++ = 'N';
	if (kp->ki_kiflag & KI_SLEADER)
		*s++ = 's';
	if ((kp->ki_flag & P_CONTROLT) && kp->ki_pgid == kp->ki_tpgid)
		*s++ = '+';
	*s = '\0';
}

static void usage(void)
{
	fprintf(stderr, "usage: kvm-ps [-H] [-p pid] [-U uid] [-M core] [-N kernel]\n");
	exit(1);
}

int main(int argc, char **argv)
{
	char errbuf[_POSIX2_LINE_MAX], tty[32], st[8];
	const char *memf = "/dev/null", *nlistf = NULL;
	int ch, op = KERN_PROC_PROC, arg = 0, threads = 0, cnt, i;
	struct kinfo_proc *kp;
	kvm_t *kd;

	while ((ch = getopt(argc, argv, "HM:N:p:U:")) != -1) {
		switch (ch) {
		case 'H': threads = KERN_PROC_INC_THREAD; break;
		case 'M': memf = optarg; break;
		case 'N': nlistf = optarg; break;
		case 'p': op = KERN_PROC_PID; arg = atoi(optarg); break;
		case 'U': op = KERN_PROC_UID; arg = atoi(optarg); break;
		default: usage();
		}
	}
	if (op == KERN_PROC_PROC && threads)
		op = KERN_PROC_ALL;
	if ((kd = kvm_openfiles(nlistf, memf, NULL, O_RDONLY, errbuf)) == NULL) {
		fprintf(stderr, "kvm-ps: %s\n", errbuf);
		return 1;
	}
	if ((kp = kvm_getprocs(kd, op | threads, arg, &cnt)) == NULL) {
		fprintf(stderr, "kvm-ps: %s\n", kvm_geterr(kd));
		kvm_close(kd);
		return 1;
	}
	printf("%7s %-8s %-5s %9s COMMAND\n", threads ? "TID" : "PID", "TT", "STAT", "TIME");
	for (i = 0; i < cnt; i++) {
		char **av = kvm_getargv(kd, &kp[i], 0);
		unsigned long long cs = kp[i].ki_runtime / 10000; /* centiseconds */

		stat_of(&kp[i], st);
		printf("%7d %-8s %-5s %3llu:%02llu.%02llu ", threads ? kp[i].ki_tid : kp[i].ki_pid,
		    tty_of(kp[i].ki_tdev, tty, sizeof(tty)), st, cs / 6000, cs / 100 % 60, cs % 100);
		if (av != NULL && av[0] != NULL) {
			for (; *av != NULL; av++)
				printf("%s%s", *av, av[1] ? " " : "");
		} else {
			printf("[%s]", kp[i].ki_comm);
		}
		if (threads && kp[i].ki_tdname[0] != '\0' && strcmp(kp[i].ki_tdname, kp[i].ki_comm) != 0)
			printf(" {%s}", kp[i].ki_tdname);
		putchar('\n');
	}
	kvm_close(kd);
	return 0;
}
