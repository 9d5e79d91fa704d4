/*
 * kvm-pgrep: a small pgrep(1) over libkvm. The first of -u/-g/-s becomes the kvm_getprocs
 * operation (as BSD pgrep does); the rest, and the name pattern (an extended regex matched
 * against the command name, or the whole command line with -f), filter the result.
 *
 * usage: kvm-pgrep [-fl] [-u uid] [-g pgrp] [-s sid] [pattern]
 * Exit status 0 when something matched, 1 when nothing did, 2 on errors.
 */
#include <sys/types.h>

#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvm.h>
#include <sys/user.h>

int main(int argc, char **argv)
{
	char errbuf[_POSIX2_LINE_MAX], line[4096];
	long uid = -1, pgrp = -1, sid = -1;
	int ch, full = 0, longfmt = 0, op = KERN_PROC_PROC, arg = 0, cnt, i, found = 0;
	regex_t re;
	struct kinfo_proc *kp;
	kvm_t *kd;

	while ((ch = getopt(argc, argv, "flu:g:s:")) != -1) {
		switch (ch) {
		case 'f': full = 1; break;
		case 'l': longfmt = 1; break;
		case 'u': uid = atol(optarg); break;
		case 'g': pgrp = atol(optarg); break;
		case 's': sid = atol(optarg); break;
		default:
			fprintf(stderr, "usage: kvm-pgrep [-fl] [-u uid] [-g pgrp] [-s sid] [pattern]\n");
			return 2;
		}
	}
	if (optind < argc && regcomp(&re, argv[optind], REG_EXTENDED | REG_NOSUB) != 0) {
		fprintf(stderr, "kvm-pgrep: bad pattern: %s\n", argv[optind]);
		return 2;
	}
	if (uid >= 0) { op = KERN_PROC_UID; arg = (int)uid; }
	else if (pgrp >= 0) { op = KERN_PROC_PGRP; arg = (int)pgrp; }
	else if (sid >= 0) { op = KERN_PROC_SESSION; arg = (int)sid; }
	if ((kd = kvm_openfiles(NULL, "/dev/null", NULL, O_RDONLY, errbuf)) == NULL) {
		fprintf(stderr, "kvm-pgrep: %s\n", errbuf);
		return 2;
	}
	if ((kp = kvm_getprocs(kd, op, arg, &cnt)) == NULL) {
		fprintf(stderr, "kvm-pgrep: %s\n", kvm_geterr(kd));
		kvm_close(kd);
		return 2;
	}
	for (i = 0; i < cnt; i++) {
		const char *subject = kp[i].ki_comm;

		if (kp[i].ki_pid == getpid() || (kp[i].ki_flag & P_SYSTEM))
			continue;
		if ((uid >= 0 && kp[i].ki_uid != (uid_t)uid) || (pgrp >= 0 && kp[i].ki_pgid != pgrp) ||
		    (sid >= 0 && kp[i].ki_sid != sid))
			continue;
		if (full || longfmt) {
			char **av = kvm_getargv(kd, &kp[i], sizeof(line));
			size_t n = 0;
			line[0] = '\0';
			for (; av != NULL && *av != NULL && n < sizeof(line) - 1; av++)
				n += snprintf(line + n, sizeof(line) - n, "%s%s", n ? " " : "", *av);
			if (full && line[0] != '\0')
				subject = line;
		}
		if (optind < argc && regexec(&re, subject, 0, NULL, 0) != 0)
			continue;
		found++;
		if (longfmt)
			printf("%d %s\n", kp[i].ki_pid, line[0] ? line : kp[i].ki_comm);
		else
			printf("%d\n", kp[i].ki_pid);
	}
	if (optind < argc)
		regfree(&re);
	kvm_close(kd);
	return found ? 0 : 1;
}
