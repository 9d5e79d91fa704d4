/*
 * <sys/sysctl.h> for BSD process tools built against the Rust libkvm on Linux: FreeBSD's
 * top-level and kern.* MIB numbers and, through <sys/user.h>, the KERN_PROC_* operations of
 * kvm_getprocs(3). glibc (2.32 and later) has no <sys/sysctl.h>; no sysctl() is provided.
 */
#ifndef _KVM_SYS_SYSCTL_H_
#define _KVM_SYS_SYSCTL_H_

#include <sys/user.h>

#define	CTL_SYSCTL	0
#define	CTL_KERN	1
#define	CTL_VM		2
#define	CTL_VFS		3
#define	CTL_NET		4
#define	CTL_DEBUG	5
#define	CTL_HW		6
#define	CTL_MACHDEP	7
#define	CTL_USER	8
#define	CTL_P1003_1B	9

#define	KERN_OSTYPE	1
#define	KERN_OSRELEASE	2
#define	KERN_OSREV	3
#define	KERN_VERSION	4
#define	KERN_MAXPROC	6
#define	KERN_ARGMAX	8
#define	KERN_HOSTNAME	10
#define	KERN_CLOCKRATE	12
#define	KERN_PROC	14
#define	KERN_FILE	15
#define	KERN_BOOTTIME	21
#define	KERN_OSRELDATE	24
#define	KERN_USRSTACK	33

#define	HW_MACHINE	1
#define	HW_MODEL	2
#define	HW_NCPU		3
#define	HW_BYTEORDER	4
#define	HW_PHYSMEM	5
#define	HW_USERMEM	6
#define	HW_PAGESIZE	7
#define	HW_MACHINE_ARCH	11
#define	HW_REALMEM	12

#endif /* !_KVM_SYS_SYSCTL_H_ */
