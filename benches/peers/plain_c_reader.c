/* Benchmark peer: the least a C program must do to read every process's /proc/PID/stat and
 * /proc/PID/status (and, with "wchan", wchan of blocked tasks that have one: stat field 35): readdir /proc, open+read+close
 * each file with a reused buffer, find the state letter. Prints the median of several passes. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char buf[8192];

static ssize_t slurp(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n >= 0)
		buf[n] = 0;
	return n;
}

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
	double wall[64], cpu[64];
	long count = 0, wchans = 0;
	if (passes < 1 || passes > 64)
		passes = 5;
	for (int p = -1; p < passes; p++) { /* pass -1 warms the dentry cache */
		double w0 = ms(CLOCK_MONOTONIC), c0 = ms(CLOCK_PROCESS_CPUTIME_ID);
		DIR *d = opendir("/proc");
		struct dirent *e;
		char path[300];
		count = wchans = 0;
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] < '0' || e->d_name[0] > '9')
				continue;
			snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
			if (slurp(path) <= 0)
				continue;
			char *rp = strrchr(buf, ')');
			char state = rp && rp[1] ? rp[2] : '?';
			/* field 35 (after the ')' that ends field 2): 1 when the task has a wait channel */
			int has_wchan = 0;
			if (rp) {
				char *q = rp + 1;
				for (int f = 2; f < 34 && q; f++)
					q = strchr(q + 1, ' ');
				has_wchan = q && q[1] != '0';
			}
			snprintf(path, sizeof path, "/proc/%s/status", e->d_name);
			if (slurp(path) <= 0)
				continue;
			if (wchan && has_wchan && (state == 'S' || state == 'D' || state == 'I')) {
				snprintf(path, sizeof path, "/proc/%s/wchan", e->d_name);
				if (slurp(path) > 0)
					wchans++;
			}
			count++;
		}
		closedir(d);
		if (p >= 0) {
			wall[p] = ms(CLOCK_MONOTONIC) - w0;
			cpu[p] = ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
		}
	}
	qsort(wall, passes, sizeof *wall, cmp);
	qsort(cpu, passes, sizeof *cpu, cmp);
	printf("count=%ld wchans=%ld wall_ms=%.3f cpu_ms=%.3f\n", count, wchans, wall[passes / 2], cpu[passes / 2]);
	return 0;
}
