/* Peer for benches/dump_read.rs: times libkdumpfile on the same reads.
 * usage: kdumpfile_peer DUMP ADDRFILE SIZE REPEAT [CACHE_PAGES]
 * ADDRFILE: little-endian u64 kernel virtual addresses.
 * Prints: open_ns=N read_ns=N reads=N ok=N sum=N rss_anon_kb=N */
#include <libkdumpfile/kdumpfile.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static long rss_anon_kb(void) {
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "RssAnon: %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

int main(int argc, char **argv) {
	if (argc < 5) {
		fprintf(stderr, "usage: %s DUMP ADDRFILE SIZE REPEAT [CACHE]\n", argv[0]);
		return 2;
	}
	size_t size = strtoul(argv[3], NULL, 0);
	int repeat = atoi(argv[4]);
	FILE *af = fopen(argv[2], "rb");
	if (!af) { perror(argv[2]); return 1; }
	fseek(af, 0, SEEK_END);
	long alen = ftell(af);
	fseek(af, 0, SEEK_SET);
	size_t n = alen / 8;
	uint64_t *addrs = malloc(alen);
	if (fread(addrs, 8, n, af) != n) { fprintf(stderr, "short addr file\n"); return 1; }
	fclose(af);

	uint64_t t0 = now_ns();
	int fd = open(argv[1], O_RDONLY);
	if (fd < 0) { perror(argv[1]); return 1; }
	kdump_ctx_t *ctx = kdump_new();
	if (!ctx) { fprintf(stderr, "kdump_new failed\n"); return 1; }
	if (argc > 5 && kdump_set_number_attr(ctx, "cache.size", strtoul(argv[5], NULL, 0)) != KDUMP_OK)
		fprintf(stderr, "cache.size: %s\n", kdump_get_err(ctx));
	if (kdump_open_fd(ctx, fd) != KDUMP_OK) { fprintf(stderr, "open: %s\n", kdump_get_err(ctx)); return 1; }
	if (kdump_set_string_attr(ctx, "arch.name", "x86_64") != KDUMP_OK)
		fprintf(stderr, "arch.name: %s\n", kdump_get_err(ctx));
	if (kdump_set_string_attr(ctx, "addrxlat.ostype", "linux") != KDUMP_OK)
		fprintf(stderr, "ostype: %s\n", kdump_get_err(ctx));
	uint64_t t1 = now_ns();

	unsigned char *buf = malloc(size);
	uint64_t sum = 0, ok = 0;
	uint64_t t2 = now_ns();
	for (int r = 0; r < repeat; r++)
		for (size_t i = 0; i < n; i++) {
			size_t len = size;
			if (kdump_read(ctx, KDUMP_KVADDR, addrs[i], buf, &len) == KDUMP_OK && len == size) {
				ok++;
				sum += buf[0] + buf[size - 1];
			}
		}
	uint64_t t3 = now_ns();
	printf("open_ns=%llu read_ns=%llu reads=%llu ok=%llu sum=%llu rss_anon_kb=%ld\n",
	       (unsigned long long)(t1 - t0), (unsigned long long)(t3 - t2),
	       (unsigned long long)n * repeat, (unsigned long long)ok,
	       (unsigned long long)sum, rss_anon_kb());
	kdump_free(ctx);
	close(fd);
	return 0;
}
