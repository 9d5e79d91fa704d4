/*
 * What BSD process tools (ps, w, pgrep/pkill, top) take from <sys/user.h>, <sys/proc.h>,
 * <sys/sysctl.h>, <kvm.h> and <nlist.h>, used the way they use it: the headers are included in
 * their order next to glibc's, every TDF_*, TDI_*, TDP_*, P2_*, PZERO/sleep priority,
 * RTP_PRIO_* and CRED_FLAG_CAPMODE value is checked against FreeBSD's (those are not in the
 * golden tables, so their values are written here), and ps's state/priority/rtprio columns and
 * w's choice of the "most interesting" process are computed from live kvm_getprocs records.
 */
#define _GNU_SOURCE
#include <sys/types.h>
#include <sys/param.h>
#include <sys/ioctl.h>
#include <sys/priority.h>
#include <sys/proc.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysctl.h>
#include <sys/time.h>
#include <sys/user.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <limits.h>
#include <nlist.h>
#include <paths.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kvm.h>

#include "t.h"

/* FreeBSD's values (sys/sys/proc.h, priority.h, rtprio.h, ucred.h of the 15.0 tree). */
static const struct {
	const char *name;
	long long got, want;
} values[] = {
#define V(n, v) { #n, (long long)(n), (long long)(v) }
	V(TDF_BORROWING, 0x1), V(TDF_INPANIC, 0x2), V(TDF_INMEM, 0x4), V(TDF_SINTR, 0x8),
	V(TDF_TIMEOUT, 0x10), V(TDF_IDLETD, 0x20), V(TDF_CANSWAP, 0x40), V(TDF_SIGWAIT, 0x80),
	V(TDF_KTH_SUSP, 0x100), V(TDF_ALLPROCSUSP, 0x200), V(TDF_BOUNDARY, 0x400),
	V(TDF_SBDRY, 0x2000), V(TDF_UPIBLOCKED, 0x4000), V(TDF_NOLOAD, 0x40000),
	V(TDF_SERESTART, 0x80000), V(TDF_THRWAKEUP, 0x100000), V(TDF_SEINTR, 0x200000),
	V(TDF_SWAPINREQ, 0x400000), V(TDF_SCHED0, 0x1000000), V(TDF_SCHED1, 0x2000000),
	V(TDF_SCHED2, 0x4000000), V(TDF_SCHED3, 0x8000000),
	V(TDI_SUSPENDED, 0x1), V(TDI_SLEEPING, 0x2), V(TDI_SWAPPED, 0x4), V(TDI_LOCK, 0x8),
	V(TDI_IWAIT, 0x10),
	V(TDP_OLDMASK, 0x1), V(TDP_INKTR, 0x2), V(TDP_INKTRACE, 0x4), V(TDP_BUFNEED, 0x8),
	V(TDP_COWINPROGRESS, 0x10), V(TDP_ALTSTACK, 0x20), V(TDP_DEADLKTREAT, 0x40),
	V(TDP_NOFAULTING, 0x80), V(TDP_SIGFASTBLOCK, 0x100), V(TDP_OWEUPC, 0x200),
	V(TDP_ITHREAD, 0x400), V(TDP_SYNCIO, 0x800), V(TDP_SCHED1, 0x1000), V(TDP_SCHED2, 0x2000),
	V(TDP_SCHED3, 0x4000), V(TDP_SCHED4, 0x8000), V(TDP_GEOM, 0x10000),
	V(TDP_SOFTDEP, 0x20000), V(TDP_NORUNNINGBUF, 0x40000), V(TDP_WAKEUP, 0x80000),
	V(TDP_INBDFLUSH, 0x100000), V(TDP_KTHREAD, 0x200000), V(TDP_CALLCHAIN, 0x400000),
	V(TDP_IGNSUSP, 0x800000), V(TDP_AUDITREC, 0x1000000), V(TDP_RFPPWAIT, 0x2000000),
	V(TDP_RESETSPUR, 0x4000000), V(TDP_NERRNO, 0x8000000), V(TDP_UIOHELD, 0x10000000),
	V(TDP_INTCPCALLOUT, 0x20000000), V(TDP_EXECVMSPC, 0x40000000),
	V(TDP_SIGFASTPENDING, 0x80000000),
	V(P2_INHERIT_PROTECTED, 0x1), V(P2_NOTRACE, 0x2), V(P2_NOTRACE_EXEC, 0x4),
	V(P2_AST_SU, 0x8), V(P2_PTRACE_FSTP, 0x10), V(P2_TRAPCAP, 0x20), V(P2_ASLR_ENABLE, 0x40),
	V(P2_ASLR_DISABLE, 0x80), V(P2_ASLR_IGNSTART, 0x100), V(P2_PROTMAX_ENABLE, 0x200),
	V(P2_PROTMAX_DISABLE, 0x400), V(P2_STKGAP_DISABLE, 0x800),
	V(P2_STKGAP_DISABLE_EXEC, 0x1000), V(P2_ITSTOPPED, 0x2000), V(P2_PTRACEREQ, 0x4000),
	V(P2_NO_NEW_PRIVS, 0x8000), V(P2_WXORX_DISABLE, 0x10000),
	V(P2_WXORX_ENABLE_EXEC, 0x20000), V(P2_WEXIT, 0x40000), V(P2_REAPKILLED, 0x80000),
	V(P2_MEMBAR_PRIVE, 0x100000), V(P2_MEMBAR_PRIVE_SYNCORE, 0x200000),
	V(P2_MEMBAR_GLOBE, 0x400000),
	V(PSWP, 48), V(PVM, 52), V(PINOD, 56), V(PRIBIO, 60), V(PVFS, 64), V(PZERO, 68),
	V(PSOCK, 72), V(PWAIT, 76), V(PLOCK, 80), V(PPAUSE, 84),
	V(RTP_PRIO_ITHD, 1), V(RTP_PRIO_REALTIME, 2), V(RTP_PRIO_NORMAL, 3), V(RTP_PRIO_IDLE, 4),
	V(RTP_PRIO_FIFO_BIT, 8), V(RTP_PRIO_FIFO, 10), V(RTP_PRIO_MIN, 0), V(RTP_PRIO_MAX, 31),
	V(RTP_PRIO_BASE(RTP_PRIO_FIFO), RTP_PRIO_REALTIME),
	V(RTP_PRIO_IS_REALTIME(RTP_PRIO_FIFO), 1), V(RTP_PRIO_IS_REALTIME(RTP_PRIO_NORMAL), 0),
	V(PRI_NEED_RR(PRI_FIFO), 0), V(PRI_NEED_RR(PRI_REALTIME), 1),
	V(RTP_PRIO_NEED_RR(RTP_PRIO_FIFO), 0), V(PI_REALTIME, 0), V(PI_INTR, 4), V(PI_AV, 4),
	V(PI_NET, 4), V(PI_DISK, 4), V(PI_TTY, 4), V(PI_DULL, 4), V(PI_SOFT, 8),
	V(PI_SOFTCLOCK, 8), V(PI_SWI(0), 8),
	V(CRED_FLAG_CAPMODE, 0x1), V(CRED_FLAG_CAPMODE, KI_CRF_CAPABILITY_MODE),
	V(PS_INMEM, 0x1),
#undef V
};

static void constants(void)
{
	size_t i;

	for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		t_checks++;
		if (values[i].got != values[i].want) {
			t_failures++;
			fprintf(stderr, "FAIL constants: %s is %#llx, FreeBSD has %#llx\n",
			    values[i].name, values[i].got, values[i].want);
		}
	}
}

/* ps's keyword table: offsets of the members its columns print. */
#define KOFF(x) offsetof(struct kinfo_proc, x)
static void ps_keywords(void)
{
	static const size_t off[] = { KOFF(ki_acflag), KOFF(ki_cow), KOFF(ki_dsize),
		KOFF(ki_flag), KOFF(ki_flag2), KOFF(ki_fibnum), KOFF(ki_groups), KOFF(ki_jid),
		KOFF(ki_jobc), KOFF(ki_traceflag), KOFF(ki_tid), KOFF(ki_nice), KOFF(ki_numthreads),
		KOFF(ki_paddr), KOFF(ki_pgid), KOFF(ki_pid), KOFF(ki_ppid), KOFF(ki_swtime),
		KOFF(ki_rgid), KOFF(ki_rssize), KOFF(ki_pri), KOFF(ki_ruid), KOFF(ki_sid),
		KOFF(ki_siglist), KOFF(ki_sigcatch), KOFF(ki_sigignore), KOFF(ki_sigmask),
		KOFF(ki_slptime), KOFF(ki_ssize), KOFF(ki_svgid), KOFF(ki_svuid), KOFF(ki_tdaddr),
		KOFF(ki_tpgid), KOFF(ki_tracer), KOFF(ki_tsid), KOFF(ki_tsize), KOFF(ki_uid),
		KOFF(ki_vmspace), KOFF(ki_xstat), KOFF(ki_cr_flags), KOFF(ki_tdflags),
		KOFF(ki_moretdname), KOFF(ki_loginclass), KOFF(ki_lockname), KOFF(ki_emul) };
	size_t i;

	for (i = 0; i < sizeof(off) / sizeof(off[0]); i++)
		CHECK(off[i] < sizeof(struct kinfo_proc));
	/* ps's thread name buffer: ki_tdname + ki_moretdname fit COMMLEN + 1 (MAXCOMLEN + 1). */
	CHECK(sizeof(((struct kinfo_proc *)0)->ki_tdname) +
	    sizeof(((struct kinfo_proc *)0)->ki_moretdname) - 1 == MAXCOMLEN + 1);
	CHECK(sizeof(((struct kinfo_proc *)0)->ki_wmesg) == WMESGLEN + 1);
	CHECK(sizeof(((struct kinfo_proc *)0)->ki_login) == LOGNAMELEN + 1);
	CHECK(sizeof(((struct kinfo_proc *)0)->ki_comm) == COMMLEN + 1);
	CHECK(sizeof(((struct kinfo_proc *)0)->ki_loginclass) == LOGINCLASSLEN + 1);
	CHECK(sizeof(((struct kinfo_proc *)0)->ki_udata) == sizeof(void *));
	CHECK(sizeof(fixpt_t) == 4 && sizeof(segsz_t) == 8 && sizeof(lwpid_t) == 4);
}

#define PS_MAXSLP 20 /* FreeBSD <sys/vmmeter.h> MAXSLP; not ours to define */

/* ps's STAT column (bin/ps/print.c state()), with FreeBSD's NZERO of 0. */
static void ps_state(const struct kinfo_proc *k, char *buf)
{
	long flag = k->ki_flag, tdflags = k->ki_tdflags;
	char *cp = buf;

	switch (k->ki_stat) {
	case SSTOP: *cp = 'T'; break;
	case SSLEEP:
		if (tdflags & TDF_SINTR)
			*cp = k->ki_slptime >= PS_MAXSLP ? 'I' : 'S';
		else
			*cp = 'D';
		break;
	case SRUN:
	case SIDL: *cp = 'R'; break;
	case SWAIT: *cp = 'W'; break;
	case SLOCK: *cp = 'L'; break;
	case SZOMB: *cp = 'Z'; break;
	default: *cp = '?';
	}
	cp++;
	if (!(flag & P_INMEM))
		*cp++ = 'W';
	if (k->ki_nice < 0 || k->ki_pri.pri_class == PRI_REALTIME)
		*cp++ = '<';
	else if (k->ki_nice > 0 || k->ki_pri.pri_class == PRI_IDLE)
		*cp++ = 'N';
	if (flag & P_TRACED)
		*cp++ = 'X';
	if (flag & P_WEXIT && k->ki_stat != SZOMB)
		*cp++ = 'E';
	if (flag & P_PPWAIT)
		*cp++ = 'V';
	if ((flag & P_SYSTEM) || k->ki_lock > 0)
		*cp++ = 'L';
	if ((k->ki_cr_flags & CRED_FLAG_CAPMODE) != 0)
		*cp++ = 'C';
	if (k->ki_kiflag & KI_SLEADER)
		*cp++ = 's';
	if ((flag & P_CONTROLT) && k->ki_pgid == k->ki_tpgid)
		*cp++ = '+';
	if (flag & P_JAILED)
		*cp++ = 'J';
	*cp = '\0';
}

/* ps's RTPRIO column (priorityr()). */
static void ps_rtprio(const struct kinfo_proc *k, char *buf, size_t n)
{
	unsigned class = k->ki_pri.pri_class, level = k->ki_pri.pri_level;

	switch (class) {
	case RTP_PRIO_REALTIME: snprintf(buf, n, "real:%u", level - PRI_MIN_REALTIME); break;
	case RTP_PRIO_NORMAL:
		if (level >= PRI_MIN_TIMESHARE)
			snprintf(buf, n, "normal:%u", level - PRI_MIN_TIMESHARE);
		else
			snprintf(buf, n, "kernel:%u", level - PRI_MIN_KERN);
		break;
	case RTP_PRIO_IDLE: snprintf(buf, n, "idle:%u", level - PRI_MIN_IDLE); break;
	case RTP_PRIO_ITHD: snprintf(buf, n, "intr:%u", level - PRI_MIN_ITHD); break;
	default: snprintf(buf, n, "%u:%u", class, level); break;
	}
}

/* top's NICE column (format_nice()), with FreeBSD's NZERO of 0. */
static const char *top_nice(const struct kinfo_proc *pp, char *buf, size_t n)
{
	const char *fifo = PRI_NEED_RR(pp->ki_pri.pri_class) ? "" : "F";
	const char *kproc = (pp->ki_flag & P_KPROC) ? "k" : "";
	int base = (pp->ki_flag & P_KPROC) ? pp->ki_pri.pri_native : pp->ki_pri.pri_user;

	switch (PRI_BASE(pp->ki_pri.pri_class)) {
	case PRI_ITHD: return "-";
	case PRI_REALTIME: snprintf(buf, n, "%sr%d%s", kproc, base - PRI_MIN_REALTIME, fifo); break;
	case PRI_TIMESHARE:
		if (pp->ki_flag & P_KPROC)
			return "-";
		snprintf(buf, n, "%d", pp->ki_nice);
		break;
	case PRI_IDLE: snprintf(buf, n, "%si%d%s", kproc, base - PRI_MIN_IDLE, fifo); break;
	default: return "?";
	}
	return buf;
}

/* top's ordering of states (sorted_state[] indexed by ki_stat). */
static const int top_sorted_state[] = { [SIDL] = 3, [SRUN] = 1, [SSLEEP] = 6, [SSTOP] = 5,
	[SZOMB] = 2, [SWAIT] = 4, [SLOCK] = 7 };

/* w's proc_compare(): 1 when p2 is "more interesting" than p1. */
#define ISRUN(p) (((p)->ki_stat == SRUN) || ((p)->ki_stat == SIDL))
static int w_proc_compare(const struct kinfo_proc *p1, const struct kinfo_proc *p2)
{
	if (p1 == NULL)
		return 1;
	if (ISRUN(p1) != ISRUN(p2))
		return ISRUN(p2);
	if (ISRUN(p1)) {
		if (p2->ki_estcpu != p1->ki_estcpu)
			return p2->ki_estcpu > p1->ki_estcpu;
		return p2->ki_pid > p1->ki_pid;
	}
	if ((p1->ki_stat == SZOMB) != (p2->ki_stat == SZOMB))
		return p1->ki_stat == SZOMB;
	if (p1->ki_stat == SZOMB)
		return p2->ki_pid > p1->ki_pid;
	if (p2->ki_slptime != p1->ki_slptime)
		return p1->ki_slptime > p2->ki_slptime;
	if ((p1->ki_tdflags & TDF_SINTR) && !(p2->ki_tdflags & TDF_SINTR))
		return 1;
	if ((p2->ki_tdflags & TDF_SINTR) && !(p1->ki_tdflags & TDF_SINTR))
		return 0;
	return p2->ki_pid > p1->ki_pid;
}

static kvm_t *kd;
static pid_t sleeper = -1;

static const struct kinfo_proc *find(const struct kinfo_proc *kp, int n, pid_t pid)
{
	int i;

	for (i = 0; i < n; i++)
		if (kp[i].ki_pid == pid)
			return &kp[i];
	return NULL;
}

/* The tools' view of this process (running) and of a child blocked in pause() (sleeping). */
static void live_columns(void)
{
	const struct kinfo_proc *me, *kid;
	struct kinfo_proc me_copy;
	struct kinfo_proc *kp;
	char st[16], rt[32];
	int n = -1, tries;

	if (kd == NULL)
		SKIP("kvm_openfiles failed");
	for (tries = 0; tries < 200; tries++) {
		kp = kvm_getprocs(kd, KERN_PROC_PROC, 0, &n);
		if (kp == NULL)
			SKIP(kvm_geterr(kd));
		kid = find(kp, n, sleeper);
		if (kid != NULL && kid->ki_stat == SSLEEP)
			break;
		usleep(10000);
	}
	me = find(kp, n, getpid());
	kid = find(kp, n, sleeper);
	CHECK(me != NULL && kid != NULL);
	if (me == NULL || kid == NULL)
		return;

	ps_state(me, st);
	CHECK(st[0] == 'R');
	CHECK((me->ki_flag & P_INMEM) != 0 && (me->ki_flag & (P_SYSTEM | P_KPROC)) == 0);
	CHECK((me->ki_tdflags & TDF_SINTR) == 0);
	ps_state(kid, st);
	CHECK_STR(st, "S");
	CHECK(kid->ki_stat == SSLEEP && (kid->ki_tdflags & TDF_SINTR) != 0);
	CHECK(kid->ki_ppid == getpid() && kid->ki_pgid == me->ki_pgid);

	/* A normal user process: time-sharing, level in the user range, pri/upr past PZERO. */
	ps_rtprio(kid, rt, sizeof(rt));
	CHECK(strncmp(rt, "normal:", 7) == 0);
	CHECK(kid->ki_pri.pri_class == RTP_PRIO_NORMAL);
	CHECK(kid->ki_pri.pri_level >= PRI_MIN_TIMESHARE && kid->ki_pri.pri_level <= PRI_MAX_TIMESHARE);
	CHECK(kid->ki_pri.pri_level - PZERO > 0 && kid->ki_pri.pri_user - PZERO > 0);
	CHECK((kid->ki_cr_flags & CRED_FLAG_CAPMODE) == 0);

	/* top: NICE of a nice-0 user process, its state rank, idle-thread filter, CPU column. */
	CHECK_STR(top_nice(kid, rt, sizeof(rt)), "0");
	CHECK(top_sorted_state[(unsigned char)kid->ki_stat] == 6);
	CHECK((kid->ki_tdflags & TDF_IDLETD) == 0 && (me->ki_tdflags & TDF_IDLETD) == 0);
	CHECK(me->ki_oncpu == NOCPU || me->ki_oncpu >= 0);

	/* w: a runner beats a sleeper; an interruptible sleeper loses to an uninterruptible one. */
	CHECK(w_proc_compare(NULL, kid) == 1);
	CHECK(w_proc_compare(kid, me) == 1 && w_proc_compare(me, kid) == 0);
	me_copy = *kid;
	me_copy.ki_tdflags &= ~TDF_SINTR;
	me_copy.ki_pid = kid->ki_pid - 1;
	CHECK(w_proc_compare(kid, &me_copy) == 1 && w_proc_compare(&me_copy, kid) == 0);

	/* w keeps a chain through ki_udata, which belongs to the caller. */
	kp[0].ki_udata = (void *)kid;
	CHECK(kp[0].ki_udata == kid);

	/* pgrep -P / ps -p: the single-process and per-thread operations. */
	kp = kvm_getprocs(kd, KERN_PROC_PID | KERN_PROC_INC_THREAD, sleeper, &n);
	CHECK(kp != NULL && n == 1 && kp[0].ki_pid == sleeper && kp[0].ki_tid == sleeper);
}

int main(void)
{
	char errbuf[_POSIX2_LINE_MAX];

	RUN(constants);
	RUN(ps_keywords);

	if ((sleeper = fork()) == 0) {
		for (;;)
			pause();
	}
	kd = kvm_openfiles(NULL, _PATH_DEVNULL, NULL, O_RDONLY, errbuf);
	RUN(live_columns);
	if (kd != NULL)
		kvm_close(kd);
	kill(sleeper, SIGKILL);
	waitpid(sleeper, NULL, 0);
	return T_DONE();
}
