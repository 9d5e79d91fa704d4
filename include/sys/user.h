/*
 * <sys/user.h> for the Rust libkvm on Linux: glibc's own <sys/user.h> (register layouts for
 * debuggers) followed by FreeBSD's struct kinfo_proc and the constants BSD process tools use
 * with kvm_getprocs(3). Layouts are FreeBSD amd64 (kinfo_proc is 1088 bytes); `make check`
 * compares every member's offset and size with the golden FreeBSD tables.
 *
 * Differences from FreeBSD worth knowing:
 *  - the signal sets (ki_siglist, ...) are struct __sigset (128 bits, FreeBSD's size) because
 *    glibc's sigset_t is 1024 bits; signals are numbered as on this host (bit n-1 = signal n
 *    of <signal.h>), so a test for SIGINT in ki_sigignore works;
 *  - the pointer members hold kernel addresses (or NULL); only ki_udata belongs to the caller.
 */
#include_next <sys/user.h>

#ifndef _KVM_SYS_USER_H_
#define _KVM_SYS_USER_H_

#include <sys/types.h>
#include <sys/time.h>
#include <sys/resource.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* FreeBSD scalar types that glibc does not have (amd64 widths). */
#ifndef _KVM_FREEBSD_TYPES_
#define _KVM_FREEBSD_TYPES_
typedef int64_t segsz_t;	/* segment size, in pages */
typedef uint32_t fixpt_t;	/* fixed point number, FSCALE units */
typedef int32_t lwpid_t;	/* thread id */
typedef uint64_t vm_size_t;
#endif

/* FreeBSD's signal set: 128 signals in four 32-bit words. */
#define	_SIG_WORDS	4
#define	_SIG_MAXSIG	128
struct __sigset {
	uint32_t __bits[_SIG_WORDS];
};
#define	KVM_SIGISMEMBER(set, sig) \
	(((set).__bits[((unsigned)(sig) - 1) >> 5] & (1U << (((unsigned)(sig) - 1) & 31))) != 0)

/* Scheduling priority of a thread (FreeBSD <sys/priority.h>). */
struct priority {
	unsigned char pri_class;	/* PRI_* scheduling class */
	unsigned char pri_level;	/* current priority */
	unsigned char pri_native;	/* priority before propagation */
	unsigned char pri_user;		/* user priority */
};

/* FreeBSD 15 priority ranges (13.x/14.x used 48..79 real time, 80..119 kernel, 120.. user). */
#define	PRI_ITHD		1
#define	PRI_REALTIME		2
#define	PRI_TIMESHARE		3
#define	PRI_IDLE		4
#define	PRI_FIFO_BIT		8
#define	PRI_FIFO		(PRI_FIFO_BIT | PRI_REALTIME)
#define	PRI_BASE(c)		((c) & ~PRI_FIFO_BIT)
#define	PRI_IS_REALTIME(c)	(PRI_BASE(c) == PRI_REALTIME)
#define	PRI_NEED_RR(c)		((c) != PRI_FIFO)
#define	PRI_MIN			0
#define	PRI_MAX			255
#define	PRI_MIN_ITHD		PRI_MIN
#define	PRI_MAX_ITHD		15
#define	PI_REALTIME		(PRI_MIN_ITHD + 0)
#define	PI_INTR			(PRI_MIN_ITHD + 4)
#define	PI_AV			PI_INTR
#define	PI_NET			PI_INTR
#define	PI_DISK			PI_INTR
#define	PI_TTY			PI_INTR
#define	PI_DULL			PI_INTR
#define	PI_SOFT			(PRI_MIN_ITHD + 8)
#define	PI_SOFTCLOCK		PI_SOFT
#define	PI_SWI(x)		PI_SOFT
#define	PRI_MIN_REALTIME	16
#define	PRI_MAX_REALTIME	47
#define	PRI_MIN_KERN		48
#define	PRI_MAX_KERN		87
#define	PRI_MIN_TIMESHARE	88
#define	PRI_MAX_TIMESHARE	223
#define	PUSER			PRI_MIN_TIMESHARE
#define	PRI_MIN_IDLE		224
#define	PRI_MAX_IDLE		PRI_MAX

/* Kernel sleep priorities (FreeBSD 15 <sys/priority.h>); ps's pri/upr columns print
 * pri_level - PZERO. */
#define	PSWP			(PRI_MIN_KERN + 0)
#define	PVM			(PRI_MIN_KERN + 4)
#define	PINOD			(PRI_MIN_KERN + 8)
#define	PRIBIO			(PRI_MIN_KERN + 12)
#define	PVFS			(PRI_MIN_KERN + 16)
#define	PZERO			(PRI_MIN_KERN + 20)
#define	PSOCK			(PRI_MIN_KERN + 24)
#define	PWAIT			(PRI_MIN_KERN + 28)
#define	PLOCK			(PRI_MIN_KERN + 32)
#define	PPAUSE			(PRI_MIN_KERN + 36)

/* rtprio(2) classes, aliases of the PRI_* classes in ki_pri.pri_class (FreeBSD <sys/rtprio.h>,
 * which <sys/proc.h> includes there). */
#define	RTP_PRIO_ITHD		PRI_ITHD
#define	RTP_PRIO_REALTIME	PRI_REALTIME
#define	RTP_PRIO_NORMAL		PRI_TIMESHARE
#define	RTP_PRIO_IDLE		PRI_IDLE
#define	RTP_PRIO_FIFO_BIT	PRI_FIFO_BIT
#define	RTP_PRIO_FIFO		PRI_FIFO
#define	RTP_PRIO_BASE(P)	PRI_BASE(P)
#define	RTP_PRIO_IS_REALTIME(P)	PRI_IS_REALTIME(P)
#define	RTP_PRIO_NEED_RR(P)	PRI_NEED_RR(P)
#define	RTP_PRIO_MIN		0
#define	RTP_PRIO_MAX		31

/* Load averages as the kernel keeps them (FreeBSD <sys/resource.h>). */
struct loadavg {
	fixpt_t ldavg[3];
	long fscale;
};

#ifndef FSHIFT
#define	FSHIFT	11		/* bits right of the fixed point */
#endif
#ifndef FSCALE
#define	FSCALE	(1 << FSHIFT)
#endif

/* kvm_getcptime(3) slots. */
#define	CP_USER		0
#define	CP_NICE		1
#define	CP_SYS		2
#define	CP_INTR		3
#define	CP_IDLE		4
#define	CPUSTATES	5

#ifndef NODEV
#define	NODEV		((dev_t)-1)	/* no terminal */
#endif
#ifndef MAXCOMLEN
#define	MAXCOMLEN	19
#endif
#ifndef MAXLOGNAME
#define	MAXLOGNAME	33
#endif

/* Sizes of the strings in kinfo_proc (each array has one more byte for the NUL). */
#define	KI_NSPARE_INT	2
#define	KI_NSPARE_LONG	12
#define	KI_NSPARE_PTR	5
#define	WMESGLEN	8
#define	LOCKNAMELEN	8
#define	TDNAMLEN	16
#define	COMMLEN		19
#define	KI_EMULNAMELEN	16
#define	KI_NGROUPS	16
#define	LOGNAMELEN	17
#define	LOGINCLASSLEN	17
#define	OCOMMLEN	TDNAMLEN
#define	ki_ocomm	ki_tdname

#define	KINFO_PROC_SIZE	1088

/* ki_cr_flags */
#define	KI_CRF_CAPABILITY_MODE	0x00000001
#define	KI_CRF_GRP_OVERFLOW	0x80000000	/* more groups than KI_NGROUPS */
/* The credential flag behind KI_CRF_CAPABILITY_MODE (FreeBSD <sys/ucred.h>, which its
 * <sys/user.h> includes); ps tests ki_cr_flags with it. */
#ifndef CRED_FLAG_CAPMODE
#define	CRED_FLAG_CAPMODE	0x00000001
#endif

struct pargs;
struct proc;
struct user;
struct vnode;
struct filedesc;
struct vmspace;
struct pcb;
struct thread;
struct pwddesc;

/* One process (or thread) as kvm_getprocs(3) returns it. */
struct kinfo_proc {
	int	ki_structsize;		/* sizeof(struct kinfo_proc) */
	int	ki_layout;
	struct pargs *ki_args;
	struct proc *ki_paddr;		/* kernel address of the process */
	struct user *ki_addr;
	struct vnode *ki_tracep;
	struct vnode *ki_textvp;
	struct filedesc *ki_fd;
	struct vmspace *ki_vmspace;
	const void *ki_wchan;		/* what the thread sleeps on */
	pid_t	ki_pid;
	pid_t	ki_ppid;
	pid_t	ki_pgid;
	pid_t	ki_tpgid;		/* foreground process group of the terminal */
	pid_t	ki_sid;
	pid_t	ki_tsid;		/* session of the terminal */
	short	ki_jobc;
	short	ki_spare_short1;
	uint32_t ki_tdev_freebsd11;
	struct __sigset ki_siglist;	/* pending signals */
	struct __sigset ki_sigmask;	/* blocked signals */
	struct __sigset ki_sigignore;	/* ignored signals */
	struct __sigset ki_sigcatch;	/* caught signals */
	uid_t	ki_uid;			/* effective */
	uid_t	ki_ruid;		/* real */
	uid_t	ki_svuid;		/* saved */
	gid_t	ki_rgid;
	gid_t	ki_svgid;
	short	ki_ngroups;
	short	ki_spare_short2;
	gid_t	ki_groups[KI_NGROUPS];
	vm_size_t ki_size;		/* virtual size, bytes */
	segsz_t	ki_rssize;		/* resident set, pages */
	segsz_t	ki_swrss;
	segsz_t	ki_tsize;		/* text, pages */
	segsz_t	ki_dsize;		/* data, pages */
	segsz_t	ki_ssize;		/* stack, pages */
	unsigned short ki_xstat;	/* exit status of a zombie */
	unsigned short ki_acflag;
	fixpt_t	ki_pctcpu;		/* %cpu, FSCALE units */
	unsigned int ki_estcpu;
	unsigned int ki_slptime;
	unsigned int ki_swtime;		/* seconds in memory */
	unsigned int ki_cow;
	uint64_t ki_runtime;		/* run time, microseconds */
	struct timeval ki_start;	/* start time */
	struct timeval ki_childtime;
	long	ki_flag;		/* P_* */
	long	ki_kiflag;		/* KI_* */
	int	ki_traceflag;
	char	ki_stat;		/* S* */
	signed char ki_nice;
	char	ki_lock;
	char	ki_rqindex;
	unsigned char ki_oncpu_old;
	unsigned char ki_lastcpu_old;
	char	ki_tdname[TDNAMLEN + 1];	/* thread name */
	char	ki_wmesg[WMESGLEN + 1];	/* wait message */
	char	ki_login[LOGNAMELEN + 1];
	char	ki_lockname[LOCKNAMELEN + 1];
	char	ki_comm[COMMLEN + 1];	/* command name */
	char	ki_emul[KI_EMULNAMELEN + 1];
	char	ki_loginclass[LOGINCLASSLEN + 1];
	char	ki_moretdname[MAXCOMLEN - TDNAMLEN + 1];
	char	ki_sparestrings[46];
	int	ki_spareints[KI_NSPARE_INT];
	dev_t	ki_tdev;		/* controlling terminal, NODEV if none */
	int	ki_oncpu;
	int	ki_lastcpu;
	int	ki_tracer;
	int	ki_flag2;
	int	ki_fibnum;
	unsigned int ki_cr_flags;
	int	ki_jid;
	int	ki_numthreads;
	lwpid_t	ki_tid;
	struct priority ki_pri;
	struct rusage ki_rusage;
	struct rusage ki_rusage_ch;	/* children, summed */
	struct pcb *ki_pcb;
	void	*ki_kstack;
	void	*ki_udata;		/* free for the caller (top, w) */
	struct thread *ki_tdaddr;
	struct pwddesc *ki_pd;
	void	*ki_spareptrs[KI_NSPARE_PTR];
	long	ki_sparelongs[KI_NSPARE_LONG];
	long	ki_sflag;		/* PS_* */
	long	ki_tdflags;
};

#define	ki_childstime	ki_rusage_ch.ru_stime
#define	ki_childutime	ki_rusage_ch.ru_utime

/* ki_sflag */
#define	PS_INMEM	0x00001

/* ki_kiflag */
#define	KI_CTTY		0x00000001	/* has a controlling terminal */
#define	KI_SLEADER	0x00000002	/* session leader */
#define	KI_LOCKBLOCK	0x00000004

/* ki_stat */
#define	SIDL	1
#define	SRUN	2
#define	SSLEEP	3
#define	SSTOP	4
#define	SZOMB	5
#define	SWAIT	6
#define	SLOCK	7

#define	NOCPU		(-1)
#define	NOCPU_OLD	255
#define	MAXCPU_OLD	254

/* ki_flag (FreeBSD <sys/proc.h> P_* bits). */
#define	P_ADVLOCK		0x00000001
#define	P_CONTROLT		0x00000002
#define	P_KPROC			0x00000004
#define	P_UNUSED3		0x00000008
#define	P_PPWAIT		0x00000010
#define	P_PROFIL		0x00000020
#define	P_STOPPROF		0x00000040
#define	P_HADTHREADS		0x00000080
#define	P_SUGID			0x00000100
#define	P_SYSTEM		0x00000200
#define	P_SINGLE_EXIT		0x00000400
#define	P_TRACED		0x00000800
#define	P_WAITED		0x00001000
#define	P_WEXIT			0x00002000
#define	P_EXEC			0x00004000
#define	P_WKILLED		0x00008000
#define	P_CONTINUED		0x00010000
#define	P_STOPPED_SIG		0x00020000
#define	P_STOPPED_TRACE		0x00040000
#define	P_STOPPED_SINGLE	0x00080000
#define	P_PROTECTED		0x00100000
#define	P_SIGEVENT		0x00200000
#define	P_SINGLE_BOUNDARY	0x00400000
#define	P_HWPMC			0x00800000
#define	P_JAILED		0x01000000
#define	P_TOTAL_STOP		0x02000000
#define	P_INEXEC		0x04000000
#define	P_STATCHILD		0x08000000
#define	P_INMEM			0x10000000
#define	P_SWAPPINGOUT		0x20000000
#define	P_SWAPPINGIN		0x40000000
#define	P_PPTRACE		0x80000000
#define	P_STOPPED	(P_STOPPED_SIG | P_STOPPED_SINGLE | P_STOPPED_TRACE)

/* ki_flag2 (FreeBSD <sys/proc.h> P2_* bits). */
#define	P2_INHERIT_PROTECTED	0x00000001
#define	P2_NOTRACE		0x00000002
#define	P2_NOTRACE_EXEC		0x00000004
#define	P2_AST_SU		0x00000008
#define	P2_PTRACE_FSTP		0x00000010
#define	P2_TRAPCAP		0x00000020
#define	P2_ASLR_ENABLE		0x00000040
#define	P2_ASLR_DISABLE		0x00000080
#define	P2_ASLR_IGNSTART	0x00000100
#define	P2_PROTMAX_ENABLE	0x00000200
#define	P2_PROTMAX_DISABLE	0x00000400
#define	P2_STKGAP_DISABLE	0x00000800
#define	P2_STKGAP_DISABLE_EXEC	0x00001000
#define	P2_ITSTOPPED		0x00002000
#define	P2_PTRACEREQ		0x00004000
#define	P2_NO_NEW_PRIVS		0x00008000
#define	P2_WXORX_DISABLE	0x00010000
#define	P2_WXORX_ENABLE_EXEC	0x00020000
#define	P2_WEXIT		0x00040000
#define	P2_REAPKILLED		0x00080000
#define	P2_MEMBAR_PRIVE		0x00100000
#define	P2_MEMBAR_PRIVE_SYNCORE	0x00200000
#define	P2_MEMBAR_GLOBE		0x00400000

/* ki_tdflags (FreeBSD <sys/proc.h> TDF_* bits of the thread's td_flags). On Linux only
 * TDF_SINTR is set: an interruptible sleep (state S or I), which ps shows as S or I rather
 * than D. */
#define	TDF_BORROWING		0x00000001
#define	TDF_INPANIC		0x00000002
#define	TDF_INMEM		0x00000004
#define	TDF_SINTR		0x00000008
#define	TDF_TIMEOUT		0x00000010
#define	TDF_IDLETD		0x00000020
#define	TDF_CANSWAP		0x00000040
#define	TDF_SIGWAIT		0x00000080
#define	TDF_KTH_SUSP		0x00000100
#define	TDF_ALLPROCSUSP		0x00000200
#define	TDF_BOUNDARY		0x00000400
#define	TDF_SBDRY		0x00002000
#define	TDF_UPIBLOCKED		0x00004000
#define	TDF_NOLOAD		0x00040000
#define	TDF_SERESTART		0x00080000
#define	TDF_THRWAKEUP		0x00100000
#define	TDF_SEINTR		0x00200000
#define	TDF_SWAPINREQ		0x00400000
#define	TDF_SCHED0		0x01000000
#define	TDF_SCHED1		0x02000000
#define	TDF_SCHED2		0x04000000
#define	TDF_SCHED3		0x08000000

/* Thread inhibitors (td_inhibitors, FreeBSD <sys/proc.h>); not in kinfo_proc, kept for
 * programs that decode struct thread read with kvm_read(3). */
#define	TDI_SUSPENDED		0x0001
#define	TDI_SLEEPING		0x0002
#define	TDI_SWAPPED		0x0004
#define	TDI_LOCK		0x0008
#define	TDI_IWAIT		0x0010

/* Private thread flags (td_pflags, FreeBSD <sys/proc.h>); not in kinfo_proc either. */
#define	TDP_OLDMASK		0x00000001
#define	TDP_INKTR		0x00000002
#define	TDP_INKTRACE		0x00000004
#define	TDP_BUFNEED		0x00000008
#define	TDP_COWINPROGRESS	0x00000010
#define	TDP_ALTSTACK		0x00000020
#define	TDP_DEADLKTREAT		0x00000040
#define	TDP_NOFAULTING		0x00000080
#define	TDP_SIGFASTBLOCK	0x00000100
#define	TDP_OWEUPC		0x00000200
#define	TDP_ITHREAD		0x00000400
#define	TDP_SYNCIO		0x00000800
#define	TDP_SCHED1		0x00001000
#define	TDP_SCHED2		0x00002000
#define	TDP_SCHED3		0x00004000
#define	TDP_SCHED4		0x00008000
#define	TDP_GEOM		0x00010000
#define	TDP_SOFTDEP		0x00020000
#define	TDP_NORUNNINGBUF	0x00040000
#define	TDP_WAKEUP		0x00080000
#define	TDP_INBDFLUSH		0x00100000
#define	TDP_KTHREAD		0x00200000
#define	TDP_CALLCHAIN		0x00400000
#define	TDP_IGNSUSP		0x00800000
#define	TDP_AUDITREC		0x01000000
#define	TDP_RFPPWAIT		0x02000000
#define	TDP_RESETSPUR		0x04000000
#define	TDP_NERRNO		0x08000000
#define	TDP_UIOHELD		0x10000000
#define	TDP_INTCPCALLOUT	0x20000000
#define	TDP_EXECVMSPC		0x40000000
#define	TDP_SIGFASTPENDING	0x80000000

/* kvm_getprocs(3) operations (FreeBSD <sys/sysctl.h> KERN_PROC_*). */
#define	KERN_PROC_ALL		0	/* everything */
#define	KERN_PROC_PID		1	/* by process id */
#define	KERN_PROC_PGRP		2	/* by process group */
#define	KERN_PROC_SESSION	3	/* by session */
#define	KERN_PROC_TTY		4	/* by controlling terminal (dev_t) */
#define	KERN_PROC_UID		5	/* by effective uid */
#define	KERN_PROC_RUID		6	/* by real uid */
#define	KERN_PROC_ARGS		7
#define	KERN_PROC_PROC		8	/* everything, without threads */
#define	KERN_PROC_SV_NAME	9
#define	KERN_PROC_RGID		10	/* by real gid */
#define	KERN_PROC_GID		11	/* by effective gid */
#define	KERN_PROC_PATHNAME	12
#define	KERN_PROC_OVMMAP	13
#define	KERN_PROC_OFILEDESC	14
#define	KERN_PROC_KSTACK	15
#define	KERN_PROC_INC_THREAD	0x10	/* or-ed in: one record per thread */
#define	KERN_PROC_VMMAP		32
#define	KERN_PROC_FILEDESC	33
#define	KERN_PROC_GROUPS	34
#define	KERN_PROC_ENV		35
#define	KERN_PROC_AUXV		36
#define	KERN_PROC_RLIMIT	37
#define	KERN_PROC_PS_STRINGS	38
#define	KERN_PROC_UMASK		39
#define	KERN_PROC_OSREL		40
#define	KERN_PROC_SIGTRAMP	41
#define	KERN_PROC_CWD		42
#define	KERN_PROC_NFDS		43
#define	KERN_PROC_SIGFASTBLK	44
#define	KERN_PROC_VM_LAYOUT	45

#ifdef __cplusplus
}
#endif

#endif /* !_KVM_SYS_USER_H_ */
