/* Terminal name of a dev_t for the examples (BSD tools call devname(3), which glibc lacks). */
#ifndef EXAMPLES_TTYNAME_H
#define EXAMPLES_TTYNAME_H

#include <stdio.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/user.h>

static const char *tty_of(dev_t dev, char *buf, size_t len)
{
	unsigned int ma, mi;

	if (dev == NODEV || dev == 0)
		return "-";
	ma = major(dev);
	mi = minor(dev);
	if (ma >= 136 && ma <= 143)
		snprintf(buf, len, "pts/%u", (ma - 136) * 256 + mi);
	else if (ma == 4 && mi < 64)
		snprintf(buf, len, "tty%u", mi);
	else if (ma == 4)
		snprintf(buf, len, "ttyS%u", mi - 64);
	else
		snprintf(buf, len, "%u,%u", ma, mi);
	return buf;
}

#endif
