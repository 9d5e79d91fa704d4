/*
 * <sys/priority.h> for BSD process tools built against the Rust libkvm on Linux (top includes
 * it directly): struct priority, the PRI_* classes and ranges, PRI_NEED_RR, PI_* and the kernel
 * sleep priorities (PZERO, ...), all of which <sys/user.h> defines.
 */
#ifndef _KVM_SYS_PRIORITY_H_
#define _KVM_SYS_PRIORITY_H_
#include <sys/user.h>
#endif
