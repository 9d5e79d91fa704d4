/*
 * Real Linux vmcores (generated under qemu, with ground truth) through the public API:
 * kvm_openfiles, kvm_nlist/kvm_nlist2 (symbols the dump carries), kvm_read of linux_banner
 * against the guest's /proc/version, unreadable addresses, kvm_write refusal, kvm_native,
 * kvm_walk_pages (every page once, early stop). Dump sets come from $KVM_LINUX_DUMPS,
 * $KVM_LINUX_DUMPS_NOKASLR, $KVM_LINUX_DUMPS_LA57 (default target/linux-dumps*); a missing
 * set or a format no backend reads yet is reported as skipped (an error when
 * KVM_REQUIRE_DUMP_BACKENDS is set, once the dump backends are merged). With a process
 * backend for dumps, kvm_getprocs must list the guest's user processes with their comm and
 * parent.
 */
#include <sys/types.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kvm.h>
#include <nlist.h>
#include <sys/user.h>

#include "t.h"

static char dir[PATH_MAX];
static const char *core_name;

static int truth_symbol(const char *name, unsigned long long *addr)
{
	char path[PATH_MAX + 32], line[512], sym[256], type;
	unsigned long long a;
	FILE *f;

	snprintf(path, sizeof(path), "%s/truth/kallsyms", dir);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "%llx %c %255s", &a, &type, sym) == 3 && strcmp(sym, name) == 0) {
			fclose(f);
			*addr = a;
			return 0;
		}
	}
	fclose(f);
	return -1;
}

static int read_first_line(const char *file, char *buf, size_t len)
{
	char path[PATH_MAX + 32];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if ((f = fopen(path, "r")) == NULL || fgets(buf, len, f) == NULL) {
		if (f != NULL)
			fclose(f);
		return -1;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int truth_file(const char *rel, char *buf, size_t len)
{
	char path[PATH_MAX + 64];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (int)n;
}

/* argv from the dump's user memory equals the guest's /proc/PID/cmdline (when the backend
 * reads user space; FreeBSD's dumps never do, and then NULL with a message is fine). */
static void check_argv(kvm_t *kd, const struct kinfo_proc *k, int pid)
{
	static char want[65536];
	char rel[64], **v;
	int n, off = 0;

	snprintf(rel, sizeof(rel), "truth/proc/%d/cmdline", pid);
	if ((n = truth_file(rel, want, sizeof(want))) <= 0)
		return;	/* kernel thread, or truth missing */
	if ((v = kvm_getargv(kd, k, 0)) == NULL) {
		CHECK(kvm_geterr(kd)[0] != '\0');
		return;
	}
	for (; *v != NULL && off < n; v++) {
		CHECK_STR(*v, want + off);
		off += strlen(want + off) + 1;
	}
	CHECK(*v == NULL && off == n);
}

/* Processes of the dump against truth/pids-final.txt and truth/proc/PID/{comm,status,cmdline}. */
static void check_procs(kvm_t *kd)
{
	char rel[64], buf[8192], comm[64];
	struct kinfo_proc *kp;
	int cnt, i, pid, checked = 0;
	FILE *f;

	kp = kvm_getprocs(kd, KERN_PROC_PROC, 0, &cnt);
	if (kp == NULL) {
		printf("note: %s: kvm_getprocs: %s\n", core_name, kvm_geterr(kd));
		CHECK(getenv("KVM_REQUIRE_DUMP_BACKENDS") == NULL);
		return;
	}
	snprintf(buf, sizeof(buf), "%s/truth/pids-final.txt", dir);
	if ((f = fopen(buf, "r")) == NULL)
		return;
	while (fscanf(f, "%d", &pid) == 1) {
		struct kinfo_proc *k = NULL;
		const char *pp;

		snprintf(rel, sizeof(rel), "truth/proc/%d/comm", pid);
		if (truth_file(rel, comm, sizeof(comm)) <= 0 || strncmp(comm, "kworker", 7) == 0)
			continue;
		comm[strcspn(comm, "\n")] = '\0';
		for (i = 0; i < cnt; i++)
			if (kp[i].ki_pid == pid)
				k = &kp[i];
		CHECK(k != NULL);
		if (k == NULL) {
			fprintf(stderr, "pid %d (%s) missing from the dump's process list\n", pid, comm);
			continue;
		}
		checked++;
		CHECK(strncmp(k->ki_comm, comm, COMMLEN) == 0);
		snprintf(rel, sizeof(rel), "truth/proc/%d/status", pid);
		if (truth_file(rel, buf, sizeof(buf)) > 0 && (pp = strstr(buf, "\nPPid:")) != NULL)
			CHECK(k->ki_ppid == atoi(pp + 7));
		check_argv(kd, k, pid);
	}
	fclose(f);
	CHECK(checked > 10);
}

static unsigned long long banner_addr;
static int resolver_calls, resolver_saw_underscore;

/* kvm_open2 resolver: knows only linux_banner; records that names arrive verbatim. */
static int resolve(const char *name, kvaddr_t *addr)
{
	resolver_calls++;
	if (strcmp(name, "_linux_banner") == 0)
		resolver_saw_underscore++;
	if (strcmp(name, "linux_banner") == 0 && banner_addr != 0) {
		*addr = banner_addr;
		return 0;
	}
	return 1;
}

static void check_resolver(const char *core, const char *version)
{
	char errbuf[_POSIX2_LINE_MAX], banner[256];
	struct kvm_nlist nl[4];
	kvm_t *kd;

	if (truth_symbol("linux_banner", &banner_addr) != 0)
		return;
	kd = kvm_open2(NULL, core, O_RDONLY, errbuf, resolve);
	CHECK(kd != NULL);
	if (kd == NULL)
		return;
	memset(nl, 0, sizeof(nl));
	nl[0].n_name = "linux_banner";
	nl[1].n_name = "_linux_banner";
	nl[2].n_name = "init_task";	/* the resolver replaces the dump's own symbols */
	resolver_calls = resolver_saw_underscore = 0;
	CHECK(kvm_nlist2(kd, nl) == 2);
	CHECK(resolver_calls >= 3 && resolver_saw_underscore >= 1);
	CHECK(nl[0].n_type == (N_DATA | N_EXT) && nl[0].n_value == banner_addr);
	CHECK(nl[2].n_type == 0 && nl[2].n_value == 0);
	memset(banner, 0, sizeof(banner));
	CHECK(kvm_read(kd, nl[0].n_value, banner, sizeof(banner) - 1) == (ssize_t)sizeof(banner) - 1);
	if (version[0] != '\0')
		CHECK(strncmp(banner, version, strlen("Linux version ")) == 0);
	CHECK(kvm_close(kd) == 0);
}

struct walk {
	long pages, bad, stop_after;
};

static int count_page(struct kvm_page *p, void *arg)
{
	struct walk *w = arg;

	w->pages++;
	if (p->kp_version != LIBKVM_WALK_PAGES_VERSION || p->kp_len < 4096 ||
	    (p->kp_len & 4095) != 0 || (p->kp_paddr & 4095) != 0 || !(p->kp_prot & 1))
		w->bad++;
	return w->stop_after == 0 || w->pages < w->stop_after;
}

static void one_dump(void)
{
	char errbuf[_POSIX2_LINE_MAX], core[PATH_MAX + 32], banner[512], version[512];
	struct nlist nl[4];
	struct kvm_nlist nl2[2];
	unsigned long long want;
	struct walk w = { 0, 0, 0 };
	int r;
	kvm_t *kd;

	version[0] = '\0';
	snprintf(core, sizeof(core), "%s/%s", dir, core_name);
	kd = kvm_openfiles(NULL, core, NULL, O_RDONLY, errbuf);
	if (kd == NULL) {
		if (strstr(errbuf, "unrecognized core file format") != NULL &&
		    getenv("KVM_REQUIRE_DUMP_BACKENDS") == NULL)
			SKIP(errbuf);
		fprintf(stderr, "open %s: %s\n", core, errbuf);
		CHECK(kd != NULL);
		return;
	}
	CHECK(kvm_native(kd) == 1);

	memset(nl, 0, sizeof(nl));
	nl[0].n_name = "linux_banner";
	nl[1].n_name = "_init_task";	/* a.out-style underscore is optional */
	nl[2].n_name = "no_such_symbol_in_this_kernel";
	r = kvm_nlist(kd, nl);
	CHECK(r == 1);
	CHECK(nl[0].n_type != 0 && nl[1].n_type != 0);
	CHECK(nl[2].n_type == 0 && nl[2].n_value == 0);
	if (truth_symbol("linux_banner", &want) == 0)
		CHECK(nl[0].n_value == want);
	if (truth_symbol("init_task", &want) == 0)
		CHECK(nl[1].n_value == want);

	nl2[0].n_name = "linux_banner";
	nl2[0].n_type = 0;
	nl2[1].n_name = NULL;
	CHECK(kvm_nlist2(kd, nl2) == 0);
	CHECK(nl2[0].n_value == nl[0].n_value);

	/* The banner in the dump is the guest's /proc/version. */
	memset(banner, 0, sizeof(banner));
	CHECK(kvm_read(kd, nl[0].n_value, banner, sizeof(banner) - 1) == (ssize_t)sizeof(banner) - 1);
	if (read_first_line("truth/version", version, sizeof(version)) == 0) {
		banner[strcspn(banner, "\n")] = '\0';
		CHECK_STR(banner, version);
	}

	/* Nothing is mapped at address 0x10. */
	CHECK(kvm_read(kd, 0x10, banner, 8) == -1);
	CHECK(kvm_geterr(kd)[0] != '\0');
	CHECK(kvm_write(kd, nl[0].n_value, "x", 1) == -1);
	CHECK_STR(kvm_geterr(kd), "kvm_write not implemented for dead kernels");

	r = kvm_walk_pages(kd, count_page, &w);
	if (r == 0 && w.pages == 0) {
		printf("note: %s: kvm_walk_pages not supported for this format\n", core_name);
	} else {
		long all = w.pages;
		CHECK(r == 1);
		CHECK(w.bad == 0);
		CHECK(all > 1000);
		w.pages = 0;
		w.stop_after = 10;
		CHECK(kvm_walk_pages(kd, count_page, &w) == 0);
		CHECK(w.pages == 10);
	}
	check_procs(kd);
	CHECK(kvm_close(kd) == 0);
	check_resolver(core, version);
}

static int set_dir(const char *env, const char *def)
{
	const char *d = getenv(env);

	snprintf(dir, sizeof(dir), "%s", d != NULL && *d ? d : def);
	return 0;
}

int main(void)
{
	static const struct { const char *env, *def; } sets[] = {
		{ "KVM_LINUX_DUMPS", "target/linux-dumps" },
		{ "KVM_LINUX_DUMPS_NOKASLR", "target/linux-dumps-nokaslr" },
		{ "KVM_LINUX_DUMPS_LA57", "target/linux-dumps-la57" },
	};
	static const char *cores[] = { "vmcore.elf", "vmcore.kdump-zlib" };
	size_t s, c;

	for (s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
		char manifest[PATH_MAX + 32];
		FILE *f;

		set_dir(sets[s].env, sets[s].def);
		snprintf(manifest, sizeof(manifest), "%s/MANIFEST.tsv", dir);
		if ((f = fopen(manifest, "r")) == NULL) {
			printf("skipped: no dump set in %s (make fixtures)\n", dir);
			continue;
		}
		fclose(f);
		for (c = 0; c < sizeof(cores) / sizeof(cores[0]); c++) {
			core_name = cores[c];
			printf("== %s/%s\n", dir, core_name);
			RUN(one_dump);
		}
	}
	return T_DONE();
}
