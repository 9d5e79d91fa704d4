/*
 * <sys/proc.h> for BSD process tools built against the Rust libkvm on Linux: only what
 * userland tools take from it (P_* flags, S* states, NOCPU), which <sys/user.h> defines.
 */
#ifndef _KVM_SYS_PROC_H_
#define _KVM_SYS_PROC_H_
#include <sys/user.h>
#endif
