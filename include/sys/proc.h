/*
 * <sys/proc.h> for BSD process tools built against the Rust libkvm on Linux: only what
 * userland tools take from it (P_*, P2_*, TDF_*, TDI_*, TDP_* flags, S* states, NOCPU, and
 * through FreeBSD's <sys/priority.h> and <sys/rtprio.h> the PRI_*, PZERO and RTP_PRIO_*
 * values), all of which <sys/user.h> defines.
 */
#ifndef _KVM_SYS_PROC_H_
#define _KVM_SYS_PROC_H_
#include <sys/user.h>
#endif
