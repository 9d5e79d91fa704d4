/* Benchmark peer: procps libproc2 reaping the fields a kinfo_proc needs from stat + status
 * (+ wchan with "wchan"), one full pass per measurement. Prints the median of several passes. */
#include <libproc2/pids.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double ms(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int wchan = argc > 1 && strcmp(argv[1], "wchan") == 0;
	int passes = argc > 2 ? atoi(argv[2]) : 5;
	enum pids_item items[] = {
		PIDS_ID_PID, PIDS_ID_PPID, PIDS_ID_PGRP, PIDS_ID_SESSION, PIDS_ID_TGID, PIDS_TTY,
		PIDS_ID_TPGID, PIDS_STATE, PIDS_FLAGS, PIDS_CMD, PIDS_TICS_USER, PIDS_TICS_SYSTEM,
		PIDS_TICS_BEGAN, PIDS_NICE, PIDS_PRIORITY, PIDS_PRIORITY_RT, PIDS_SCHED_CLASS,
		PIDS_NLWP, PIDS_PROCESSOR, PIDS_VSIZE_BYTES, PIDS_RSS, PIDS_FLT_MIN, PIDS_FLT_MAJ,
		PIDS_ID_EUID, PIDS_ID_RUID, PIDS_ID_SUID, PIDS_ID_EGID, PIDS_ID_RGID, PIDS_ID_SGID,
		PIDS_SUPGIDS, PIDS_VM_EXE, PIDS_VM_DATA, PIDS_VM_STACK, PIDS_SIGBLOCKED,
		PIDS_SIGCATCH, PIDS_SIGIGNORE, PIDS_SIGPENDING, PIDS_WCHAN_NAME,
	};
	int nitems = sizeof items / sizeof items[0] - (wchan ? 0 : 1);
	struct pids_info *info = NULL;
	double wall[64], cpu[64];
	int count = 0;
	if (passes < 1 || passes > 64)
		passes = 5;
	if (procps_pids_new(&info, items, nitems) < 0) {
		fprintf(stderr, "procps_pids_new failed\n");
		return 1;
	}
	for (int p = -1; p < passes; p++) {
		double w0 = ms(CLOCK_MONOTONIC), c0 = ms(CLOCK_PROCESS_CPUTIME_ID);
		struct pids_fetch *f = procps_pids_reap(info, PIDS_FETCH_TASKS_ONLY);
		if (!f) {
			fprintf(stderr, "procps_pids_reap failed\n");
			return 1;
		}
		count = f->counts->total;
		if (p >= 0) {
			wall[p] = ms(CLOCK_MONOTONIC) - w0;
			cpu[p] = ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
		}
	}
	qsort(wall, passes, sizeof *wall, cmp);
	qsort(cpu, passes, sizeof *cpu, cmp);
	printf("count=%d wchans=%d wall_ms=%.3f cpu_ms=%.3f\n", count, wchan ? count : 0, wall[passes / 2], cpu[passes / 2]);
	procps_pids_unref(&info);
	return 0;
}
