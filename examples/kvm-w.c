/*
 * kvm-w: the first line of w(1) and one line per logged-in user, over libkvm: load averages
 * from kvm_getloadavg, and for each terminal the foreground process found with
 * kvm_getprocs(KERN_PROC_TTY) (BSD w does the same, keeping its own pointer in ki_udata).
 */
#include <sys/types.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <utmpx.h>

#include <kvm.h>
#include <sys/user.h>

int main(void)
{
	char errbuf[_POSIX2_LINE_MAX], when[16], path[64];
	double la[3];
	struct timespec up;
	struct utmpx *u;
	time_t now = time(NULL);
	long secs, days, hours, mins;
	int users = 0, i, n;
	kvm_t *kd;

	if ((kd = kvm_openfiles(NULL, "/dev/null", NULL, O_RDONLY, errbuf)) == NULL) {
		fprintf(stderr, "kvm-w: %s\n", errbuf);
		return 1;
	}
	setutxent();
	while ((u = getutxent()) != NULL)
		users += u->ut_type == USER_PROCESS;
	clock_gettime(CLOCK_BOOTTIME, &up);
	secs = up.tv_sec;
	days = secs / 86400;
	hours = secs / 3600 % 24;
	mins = secs / 60 % 60;
	strftime(when, sizeof(when), "%l:%M%p", localtime(&now));
	printf("%s up", when);
	if (days > 0)
		printf(" %ld day%s,", days, days == 1 ? "" : "s");
	printf(" %2ld:%02ld, %d user%s", hours, mins, users, users == 1 ? "" : "s");
	if ((n = kvm_getloadavg(kd, la, 3)) == -1) {
		printf("\nkvm-w: %s\n", kvm_geterr(kd));
		kvm_close(kd);
		return 1;
	}
	printf(", load averages:");
	for (i = 0; i < n; i++)
		printf("%s %.2f", i ? "," : "", la[i]);
	printf("\n%-12s %-8s %s\n", "USER", "TTY", "WHAT");

	setutxent();
	while ((u = getutxent()) != NULL) {
		struct kinfo_proc *kp, *fg = NULL;
		struct stat st;
		int cnt;

		if (u->ut_type != USER_PROCESS)
			continue;
		snprintf(path, sizeof(path), "/dev/%.*s", (int)sizeof(u->ut_line), u->ut_line);
		if (stat(path, &st) != 0 || (kp = kvm_getprocs(kd, KERN_PROC_TTY, (int)st.st_rdev, &cnt)) == NULL)
			continue;
		for (i = 0; i < cnt; i++) {
			kp[i].ki_udata = NULL;
			if (kp[i].ki_pgid == kp[i].ki_tpgid && (fg == NULL || kp[i].ki_pid > fg->ki_pid))
				fg = &kp[i];
		}
		printf("%-12.*s %-8.*s %s\n", (int)sizeof(u->ut_user), u->ut_user,
		    (int)sizeof(u->ut_line), u->ut_line, fg ? fg->ki_comm : "-");
	}
	endutxent();
	kvm_close(kd);
	return 0;
}
