/*
 * <nlist.h> with FreeBSD's layout of struct nlist (the a.out-era symbol request used by
 * kvm_nlist(3)), for the Rust libkvm on Linux. glibc has no <nlist.h>; libelf's has a
 * different layout, so programs using kvm_nlist must see this one first (-I include).
 */
#ifndef _NLIST_H_
#define _NLIST_H_

#ifdef __cplusplus
extern "C" {
#endif

/*
 * On LP64 char * and long have the same size, so FreeBSD's padding member between the name
 * and n_type has zero width; n_value is then naturally aligned at offset 16.
 */
struct nlist {
#ifdef _AOUT_INCLUDE_
	union {
		char *n_name;		/* symbol name */
		long n_strx;		/* string table offset (a.out files) */
	} n_un;
#else
	char *n_name;			/* symbol name, NULL or "" ends a list */
#endif
	unsigned char n_type;		/* N_* type, N_UNDF when not found */
	char n_other;
	short n_desc;
	unsigned long n_value;		/* symbol value (address) */
};

/* n_type values; N_EXT is or-ed in for global symbols. */
#define	N_UNDF	0x00
#define	N_ABS	0x02
#define	N_TEXT	0x04
#define	N_DATA	0x06
#define	N_BSS	0x08
#define	N_INDR	0x0a
#define	N_SIZE	0x0c
#define	N_COMM	0x12
#define	N_SETA	0x14
#define	N_SETT	0x16
#define	N_SETD	0x18
#define	N_SETB	0x1a
#define	N_SETV	0x1c
#define	N_FN	0x1e
#define	N_WARN	0x1e
#define	N_EXT	0x01
#define	N_TYPE	0x1e
#define	N_STAB	0xe0

/* n_other: symbol kind and binding. */
#define	AUX_OBJECT	1
#define	AUX_FUNC	2
#define	BIND_WEAK	2

#ifdef __cplusplus
}
#endif

#endif /* !_NLIST_H_ */
