/* A tiny test framework for the C harness: CHECK records a failure and goes on; each test
 * is a function run by RUN; main returns non-zero when anything failed. */
#ifndef CTESTS_T_H
#define CTESTS_T_H

#include <stdio.h>
#include <string.h>

static int t_failures, t_checks, t_skipped;
static const char *t_current = "";

#define CHECK(cond)                                                                   \
	do {                                                                          \
		t_checks++;                                                           \
		if (!(cond)) {                                                        \
			t_failures++;                                                 \
			fprintf(stderr, "FAIL %s (%s:%d): %s\n", t_current, __FILE__, \
			    __LINE__, #cond);                                         \
		}                                                                     \
	} while (0)

#define CHECK_STR(got, want)                                                           \
	do {                                                                           \
		const char *g_ = (got), *w_ = (want);                                  \
		t_checks++;                                                            \
		if (g_ == NULL || strcmp(g_, w_) != 0) {                               \
			t_failures++;                                                  \
			fprintf(stderr, "FAIL %s (%s:%d): %s is \"%s\", expected \"%s\"\n", \
			    t_current, __FILE__, __LINE__, #got, g_ ? g_ : "(null)", w_); \
		}                                                                      \
	} while (0)

#define RUN(fn)                                                 \
	do {                                                    \
		int before_ = t_failures;                       \
		t_current = #fn;                                \
		t_skipped = 0;                                  \
		fn();                                           \
		printf("%s %s\n", t_failures != before_ ? "FAIL" : \
		    t_skipped ? "skip" : "ok  ", #fn);          \
	} while (0)

#define SKIP(why)                                               \
	do {                                                    \
		printf("skipped: %s: %s\n", t_current, why);    \
		t_skipped = 1;                                  \
		return;                                         \
	} while (0)

#define T_DONE()                                                                \
	(printf("%d checks, %d failures\n", t_checks, t_failures), t_failures != 0)

#endif
