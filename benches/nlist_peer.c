/* Peer for benches/nlist.rs: times libbsd's nlist(3) on an ELF file.
 * usage: nlist_peer ELF NAMESFILE REPEATS
 * prints: "libbsd ns_min ns_median found checksum" (checksum = sum of n_value ^ n_type). */
#include <bsd/nlist.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long long now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
	if (argc != 4) { fprintf(stderr, "usage: %s ELF NAMES REPEATS\n", argv[0]); return 2; }
	FILE *f = fopen(argv[2], "r");
	if (!f) { perror(argv[2]); return 1; }
	char **names = NULL; size_t n = 0, cap = 0; char line[4096];
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		if (!line[0]) continue;
		if (n == cap) { cap = cap ? cap * 2 : 1024; names = realloc(names, cap * sizeof *names); }
		names[n++] = strdup(line);
	}
	fclose(f);
	int reps = atoi(argv[3]);
	if (reps < 1) reps = 1;
	struct nlist *nl = calloc(n + 1, sizeof *nl);
	long long *t = calloc(reps, sizeof *t);
	int found = 0; unsigned long sum = 0;
	for (int r = 0; r < reps; r++) {
		for (size_t i = 0; i < n; i++) { memset(&nl[i], 0, sizeof nl[i]); nl[i].n_name = names[i]; }
		nl[n].n_name = NULL;
		long long t0 = now_ns();
		int missing = nlist(argv[1], nl);
		t[r] = now_ns() - t0;
		if (missing < 0) { fprintf(stderr, "nlist failed\n"); return 1; }
		found = (int)n - missing;
		sum = 0;
		for (size_t i = 0; i < n; i++) if (nl[i].n_type) sum += nl[i].n_value ^ nl[i].n_type;
	}
	qsort(t, reps, sizeof *t, cmp);
	printf("libbsd %lld %lld %d %lu\n", t[0], t[reps / 2], found, sum);
	return 0;
}
