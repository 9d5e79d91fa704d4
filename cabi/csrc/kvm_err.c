/* _kvm_err: FreeBSD's private, C-variadic error reporter (its tests call it directly).
 * Without a program name the message is formatted straight into the descriptor's error
 * buffer (kvm_geterr's pointer, _POSIX2_LINE_MAX bytes); with one it goes to stderr as
 * "<program>: <message>". Written in C because stable Rust cannot define variadic functions;
 * it only uses the public interface, so the library exports nothing else. */
#include <stdarg.h>
#include <stdio.h>

#define ERRBUF_SIZE 2048 /* _POSIX2_LINE_MAX, the size of the descriptor's buffer */

struct __kvm;
char *kvm_geterr(struct __kvm *kd);
void _kvm_err(struct __kvm *kd, const char *program, const char *fmt, ...);

void _kvm_err(struct __kvm *kd, const char *program, const char *fmt, ...)
{
	va_list ap;

	if (fmt == NULL)
		return;
	va_start(ap, fmt);
	if (program != NULL) {
		(void)fprintf(stderr, "%s: ", program);
		(void)vfprintf(stderr, fmt, ap);
		(void)fputc('\n', stderr);
	} else if (kd != NULL) {
		(void)vsnprintf(kvm_geterr(kd), ERRBUF_SIZE, fmt, ap);
	}
	va_end(ap);
}
