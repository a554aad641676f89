/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The ioctl interface of hybridmem_test.ko (/dev/devKex).
 *
 * The single source of truth shared by the kernel module and by user space
 * (the N-API addon includes this file directly), in the spirit of the
 * kernel's lib/test_hmm_uapi.h.  Every struct has a fixed layout made of
 * __u32/__s32/__u64 fields only, so 32- and 64-bit user space agree.
 */
#ifndef _HYBRIDMEM_UAPI_H
#define _HYBRIDMEM_UAPI_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define HYBRIDMEM_UAPI_VERSION	2
#define HYBRIDMEM_CHRDEV_NAME	"kex"		/* as in /proc/devices */
#define HYBRIDMEM_NODE_PATH	"/dev/devKex"	/* the notes' node */
#define HYBRIDMEM_SYSFS_DIR	"/sys/kernel/hybridmem_test"

/*
 * How the mmap handler maps its pages; the map_mode parameter's names.
 * New modes are added at the end; there is deliberately no count here (it
 * would change meaning with every new mode): SET_MODE answers EINVAL for a
 * mode this module does not know.
 */
enum hybridmem_map_mode {
	/* "remap_pfn": one remap_pfn_range per page (test2) */
	HYBRIDMEM_MODE_REMAP_PFN = 0,
	/* "insert_page": vm_insert_page per page */
	HYBRIDMEM_MODE_INSERT_PAGE = 1,
	/* "insert_pages": one vm_insert_pages batch */
	HYBRIDMEM_MODE_INSERT_PAGES = 2,
	/* "remap_contig": high-order blocks, one remap each */
	HYBRIDMEM_MODE_REMAP_CONTIG = 3,
	/* "fault": lazy, from vm_ops->fault */
	HYBRIDMEM_MODE_FAULT = 4,
	/* "mixed": remap page 0, insert page 1: the notes' crash */
	HYBRIDMEM_MODE_MIXED = 5,
	/* The notes' test2 code as written (allow_as_written=1 only): */
	/* "free_after_map": __free_page() right after remap_pfn_range() */
	HYBRIDMEM_MODE_FREE_AFTER_MAP = 6,
	/* "leak_on_error": on failure at page N, zap 0..N-1, free nothing */
	HYBRIDMEM_MODE_LEAK_ON_ERROR = 7,
};

/* HYBRIDMEM_IOC_GET_INFO: what this module is and how this fd maps. */
struct hybridmem_info {
	__u32 version;		/* HYBRIDMEM_UAPI_VERSION */
	__u32 page_size;	/* PAGE_SIZE */
	__u32 map_mode;		/* enum hybridmem_map_mode, this fd */
	__u32 zap_after_map;	/* 0/1, this fd */
	__s32 fail_at;		/* page index to fail at, -1 = off, this fd */
	__u32 allow_bug;	/* module parameter, read-only after load */
	__u64 max_map_bytes;	/* cap per mapping, bytes */
	__u64 max_total_bytes;	/* cap on live pages, all mappings, bytes */
	__u32 log_pages;	/* per-page log lines one operation prints */
	__u32 log_budget;	/* log lines one open file prints at most */
};

/*
 * HYBRIDMEM_IOC_SET_MODE: per-fd override of the module parameters, used by
 * every later mmap of this fd.  All three fields are applied; read the
 * current values with GET_INFO first to change just one.
 */
struct hybridmem_mode {
	__u32 map_mode;		/* enum hybridmem_map_mode */
	__u32 zap_after_map;	/* 0/1 */
	__s32 fail_at;		/* -1 = off */
	__u32 reserved;		/* must be zero */
};

/*
 * HYBRIDMEM_IOC_ZAP / HYBRIDMEM_IOC_REMAP: act on [addr, addr + length) of a
 * live mapping of this fd in the caller's address space (the hdcdrv
 * pattern: the kernel takes pages away from, and gives them back to, a
 * mapping the user still holds).  addr and length are page aligned and the
 * range lies inside one vma of this device.
 */
struct hybridmem_range {
	__u64 addr;		/* in: user address */
	__u64 length;		/* in: bytes */
	__u64 pages;		/* out: pages acted on */
	__u32 flags;		/* out: HYBRIDMEM_RANGE_* */
	__u32 reserved;		/* in: must be zero */
};

/*
 * ZAP/REMAP out flag: the vma is not VM_PFNMAP (insert_page, insert_pages),
 * so zap_vma_ptes() could not have done anything and the pages stay mapped.
 * REMAP then gives them fresh contents in place.
 */
#define HYBRIDMEM_RANGE_NOOP	0x1

/* HYBRIDMEM_IOC_GET_STATS: module-wide counters, as in sysfs. */
struct hybridmem_stats {
	__u64 live_pages;	/* pages allocated now */
	__u64 live_mappings;	/* mapping objects alive now */
	__u64 maps;		/* successful mmaps */
	__u64 map_failures;	/* mmaps that failed (and cleaned up) */
	__u64 zaps;		/* pages passed to zap_vma_ptes */
	__u64 faults;		/* ptes the fault handler filled */
	__u64 remaps;		/* pages mapped again by REMAP */
	__u64 frees;		/* pages freed */
};

/*
 * Not registered in Documentation/userspace-api/ioctl/ioctl-number.rst
 * (0xB6 is linux/fpga-dfl.h's); a test module's numbers stay out of tree.
 */
#define HYBRIDMEM_IOC_MAGIC	0xD6

#define HYBRIDMEM_IOC_GET_INFO	_IOR(HYBRIDMEM_IOC_MAGIC, 0x00, struct hybridmem_info)
#define HYBRIDMEM_IOC_SET_MODE	_IOW(HYBRIDMEM_IOC_MAGIC, 0x01, struct hybridmem_mode)
#define HYBRIDMEM_IOC_GET_STATS	_IOR(HYBRIDMEM_IOC_MAGIC, 0x02, struct hybridmem_stats)
#define HYBRIDMEM_IOC_ZAP	_IOWR(HYBRIDMEM_IOC_MAGIC, 0x03, struct hybridmem_range)
#define HYBRIDMEM_IOC_REMAP	_IOWR(HYBRIDMEM_IOC_MAGIC, 0x04, struct hybridmem_range)

/*
 * Errors, as implemented by hybridmem_test.c:
 *   mmap:   EINVAL  MAP_PRIVATE, offset != 0, longer than max_map_bytes,
 *                   mode mixed with fewer than 2 pages
 *           EPERM   mode mixed while the module was loaded without
 *                   allow_bug=1; mode free_after_map or leak_on_error
 *                   without allow_as_written=1
 *           ENOMEM  max_total_bytes would be passed, an allocation failed
 *                   (the pages are charged to the caller's memory cgroup,
 *                   so memory.max applies), or fail_at (a simulated
 *                   failure: the pages mapped so far are zapped and
 *                   everything is freed; map_failures counts it).  Fault
 *                   mode never fails mmap for fail_at: touching that page
 *                   raises SIGBUS instead.
 *           EINTR   a fatal signal arrived while allocating or mapping
 *           (length 0 never reaches the driver: the kernel refuses it)
 *   mremap: growing a mapping fails (VM_DONTEXPAND, every mode)
 *   madvise: MADV_DONTNEED is EINVAL on the VM_PFNMAP modes (the kernel's
 *           rule); on insert_page(s) it drops the ptes and the next touch
 *           maps the same page, with its contents, again
 *   ioctl:  ENOTTY  unknown command; EFAULT  bad argument pointer
 *           SET_MODE  EINVAL  unknown map_mode, zap_after_map > 1,
 *                   fail_at < -1, reserved != 0
 *           ZAP/REMAP EINVAL  reserved != 0, addr or length not page
 *                   aligned, length 0, or the range is not inside one vma
 *                   of a mapping of this same open file (mprotect/munmap
 *                   may have split it); REMAP also EINVAL on a
 *                   free_after_map or leak_on_error mapping (the module
 *                   does not own, or must not touch, those pages)
 *           REMAP    EINTR  killed while waiting for the mmap lock or
 *                   while remapping
 * REMAP gives the pages fresh (zeroed) contents; in fault mode they are
 * mapped again on the next touch; on insert_page(s) mappings they are
 * zeroed in place (HYBRIDMEM_RANGE_NOOP: nothing was unmapped).
 */

#endif /* _HYBRIDMEM_UAPI_H */
