/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every kernel-version difference hybridmem_test.c cares about, in one
 * place.  The module itself calls only the hm_* wrappers below and never
 * tests LINUX_VERSION_CODE.
 *
 * The oldest kernel this builds for is 5.10 (the module uses sysfs_emit(),
 * mmap_read_lock() and vm_insert_pages(); the project builds and tests it
 * against Debian bookworm's 6.1 and 6.12).  Differences from there on:
 *   5.14  vma_lookup()
 *   6.3   vma->vm_flags is const: vm_flags_set() (asserts the mmap write
 *         lock, per-VMA locks)
 *   6.4   MAX_ORDER is the largest order (inclusive), was one past it;
 *         per-VMA locks: vma_start_write()
 *   6.8   MAX_ORDER renamed MAX_PAGE_ORDER
 *   6.18  nth_page() removed: a page array is contiguous in a buddy block
 *   7.1   zap_vma_ptes() renamed zap_special_vma_range(), which also zaps
 *         VM_MIXEDMAP vmas (what vm_insert_page(s) leave), not only
 *         VM_PFNMAP
 * 5.11, 6.18 and 7.1 are feature tests (macros; a Kbuild probe of mm.h), since
 * backports make versions lie.
 */
#ifndef _HYBRIDMEM_COMPAT_H
#define _HYBRIDMEM_COMPAT_H

#include <linux/version.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/mmzone.h>

#if LINUX_VERSION_CODE < KERNEL_VERSION(5, 10, 0)
#error "hybridmem_test needs Linux 5.10 or later"
#endif

/* Callers hold the mmap lock for writing (->mmap, the REMAP ioctl). */
static inline void hm_vm_flags_set(struct vm_area_struct *vma,
				   unsigned long flags)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_set(vma, flags);
#else
	vma->vm_flags |= flags;
#endif
}

/*
 * Keeps page faults that run under the per-VMA lock alone (6.4+) out of a
 * vma whose ptes we are rewriting; the mmap write lock alone does not.
 */
static inline void hm_vma_start_write(struct vm_area_struct *vma)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
	vma_start_write(vma);
#endif
}

static inline struct vm_area_struct *hm_vma_lookup(struct mm_struct *mm,
						   unsigned long addr)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 14, 0)
	return vma_lookup(mm, addr);
#else
	struct vm_area_struct *vma = find_vma(mm, addr);

	return vma && vma->vm_start <= addr ? vma : NULL;
#endif
}

/* The largest order alloc_pages() accepts. */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 8, 0)
#define HM_MAX_ALLOC_ORDER	MAX_PAGE_ORDER
#elif LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
#define HM_MAX_ALLOC_ORDER	MAX_ORDER
#else
#define HM_MAX_ALLOC_ORDER	(MAX_ORDER - 1)
#endif

/* Page n of a block alloc_pages() returned (never crosses a section). */
#ifdef nth_page
#define hm_nth_page(page, n)	nth_page(page, n)
#else
#define hm_nth_page(page, n)	((page) + (n))
#endif

/*
 * The driver-facing zap, and the vmas it acts on: it silently does nothing
 * on any other.  HM_HAVE_ZAP_SPECIAL_VMA_RANGE comes from Kbuild, which
 * looks for the declaration in the kernel's linux/mm.h.
 */
#ifdef HM_HAVE_ZAP_SPECIAL_VMA_RANGE
#define HM_ZAP_VMA_FLAGS	(VM_PFNMAP | VM_MIXEDMAP)
#define HM_ZAP_FN		"zap_special_vma_range"
static inline void hm_zap_vma_ptes(struct vm_area_struct *vma,
				   unsigned long addr, unsigned long size)
{
	zap_special_vma_range(vma, addr, size);
}
#else
#define HM_ZAP_VMA_FLAGS	VM_PFNMAP
#define HM_ZAP_FN		"zap_vma_ptes"
static inline void hm_zap_vma_ptes(struct vm_area_struct *vma,
				   unsigned long addr, unsigned long size)
{
	zap_vma_ptes(vma, addr, size);
}
#endif

static inline bool hm_zap_acts_on(struct vm_area_struct *vma)
{
	return vma->vm_flags & HM_ZAP_VMA_FLAGS;
}

/*
 * Up to 5.10 the buddy allocator gives a __GFP_ACCOUNT page the Kmemcg page
 * type, and vm_insert_page() refuses typed pages (-EINVAL); 5.11 moved the
 * charge to page->memcg_data.  There the insert modes go uncharged.
 */
#ifdef PG_kmemcg
#define HM_INSERT_GFP_ACCOUNT	0
#else
#define HM_INSERT_GFP_ACCOUNT	__GFP_ACCOUNT
#endif

#endif /* _HYBRIDMEM_COMPAT_H */
