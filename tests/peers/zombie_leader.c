/* Test helper: the main thread exits with pthread_exit while a second thread keeps sleeping,
 * so /proc shows the thread-group leader as a zombie of a live process. */
#include <pthread.h>
#include <unistd.h>

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

int main(void)
{
	pthread_t t;
	if (pthread_create(&t, NULL, sleeper, NULL) != 0)
		return 1;
	pthread_exit(NULL);
}
