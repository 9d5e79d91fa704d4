/*
 * System statistics of the running system through the public API, compared with /proc and
 * sysconf: kvm_getloadavg, kvm_getcptime, kvm_getncpus, kvm_getmaxcpu, kvm_getswapinfo.
 * Skips (saying so) when the live backend does not provide them.
 */
#include <sys/types.h>

#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvm.h>
#include <sys/user.h>

#include "t.h"

static kvm_t *kd;

static int proc_loadavg(double la[3])
{
	FILE *f = fopen("/proc/loadavg", "r");
	int n = f != NULL ? fscanf(f, "%lf %lf %lf", &la[0], &la[1], &la[2]) : 0;

	if (f != NULL)
		fclose(f);
	return n == 3 ? 0 : -1;
}

static void loadavg(void)
{
	double before[3], got[3] = { -1, -1, -1 }, after[3];
	int i, n;

	proc_loadavg(before);
	n = kvm_getloadavg(kd, got, 3);
	proc_loadavg(after);
	if (n == -1)
		SKIP(kvm_geterr(kd));
	CHECK(n == 3);
	/* /proc prints two decimals; the value may change between the reads. */
	for (i = 0; i < 3; i++)
		CHECK((fabs(got[i] - before[i]) < 0.006 || fabs(got[i] - after[i]) < 0.006));
	got[1] = -7;
	CHECK(kvm_getloadavg(kd, got, 1) == 1);
	CHECK(got[1] == -7);
	CHECK(kvm_getloadavg(kd, got, 5) == 3);
}

static void cptime(void)
{
	long a[CPUSTATES], b[CPUSTATES];
	unsigned long long u, ni, sy, id, io, irq, sirq;
	FILE *f;
	int i, mono = 1;

	if (kvm_getcptime(kd, a) == -1)
		SKIP(kvm_geterr(kd));
	f = fopen("/proc/stat", "r");
	CHECK(f != NULL && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &u, &ni, &sy, &id,
	    &io, &irq, &sirq) == 7);
	if (f != NULL)
		fclose(f);
	usleep(50000);
	CHECK(kvm_getcptime(kd, b) == 0);
	for (i = 0; i < CPUSTATES; i++)
		mono &= b[i] >= a[i] && a[i] >= 0;
	CHECK(mono);
	/* Same counters as /proc/stat's first line, read in between. */
	CHECK((unsigned long long)a[CP_USER] <= u && u <= (unsigned long long)b[CP_USER]);
	CHECK((unsigned long long)a[CP_NICE] <= ni && ni <= (unsigned long long)b[CP_NICE]);
	CHECK(b[CP_IDLE] > 0);
}

static void cpus(void)
{
	int n = kvm_getncpus(kd), m = kvm_getmaxcpu(kd);

	if (n == -1)
		SKIP(kvm_geterr(kd));
	CHECK(n == sysconf(_SC_NPROCESSORS_ONLN));
	CHECK(m >= n);
	CHECK(kvm_getmaxcpu(NULL) == 0);
}

static void swapinfo(void)
{
	struct kvm_swap sw[16];
	char line[512];
	int devs = 0, n, i;
	unsigned long long used = 0, total = 0;
	FILE *f = fopen("/proc/swaps", "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		devs++;
	if (f != NULL)
		fclose(f);
	devs = devs > 0 ? devs - 1 : 0;	/* header line */
	memset(sw, 0x55, sizeof(sw));
	n = kvm_getswapinfo(kd, sw, 16, 0);
	if (n == -1)
		SKIP(kvm_geterr(kd));
	CHECK(n == (devs < 15 ? devs : 15));
	for (i = 0; i < n; i++) {
		used += sw[i].ksw_used;
		total += sw[i].ksw_total;
		CHECK(sw[i].ksw_devname[0] != '\0' && strncmp(sw[i].ksw_devname, "/dev/", 5) != 0);
	}
	/* The total row: empty name, sums of the device rows. */
	CHECK(sw[n].ksw_devname[0] == '\0');
	CHECK(sw[n].ksw_used == used && sw[n].ksw_total == total);
	CHECK(kvm_getswapinfo(kd, sw, 1, SWIF_DEV_PREFIX) == 0);
	CHECK(sw[0].ksw_devname[0] == '\0' && sw[0].ksw_total == total);
	CHECK(kvm_getswapinfo(kd, sw, 0, 0) == -1);
}

int main(void)
{
	char errbuf[_POSIX2_LINE_MAX];

	if ((kd = kvm_openfiles(NULL, "/dev/null", NULL, O_RDONLY, errbuf)) == NULL) {
		fprintf(stderr, "kvm_openfiles: %s\n", errbuf);
		return 1;
	}
	RUN(loadavg);
	RUN(cptime);
	RUN(cpus);
	RUN(swapinfo);
	CHECK(kvm_close(kd) == 0);
	return T_DONE();
}
