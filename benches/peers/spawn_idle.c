/* Benchmark helper: forks N idle children (each blocked in pause()), prints "ready N",
 * then waits for EOF on stdin and kills and reaps them. Children also die with this process
 * (PR_SET_PDEATHSIG), so nothing outlives a crashed benchmark. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 10000;
	pid_t self = getpid();
	pid_t *kids = calloc((size_t)n, sizeof *kids);
	long made = 0;
	if (!kids)
		return 1;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (; made < n; made++) {
		pid_t p = fork();
		if (p < 0) {
			perror("fork");
			break;
		}
		if (p == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != self)
				_exit(0);
			for (;;)
				pause();
		}
		kids[made] = p;
	}
	printf("ready %ld\n", made);
	fflush(stdout);
	char c;
	while (read(0, &c, 1) > 0)
		;
	for (long i = 0; i < made; i++)
		kill(kids[i], SIGKILL);
	while (wait(NULL) > 0)
		;
	return made == n ? 0 : 2;
}
