/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Every kernel-version difference hybridmem_test.c cares about, in one
 * place.  The module itself calls only the hm_*
 * wrappers below and never tests LINUX_VERSION_CODE.
 *
 * Versions (see kernel-facts.md of the project's research notes):
 *   4.18  zap_vma_ptes() returns void (was int: -1 outside the vma or on a
 *         vma without VM_PFNMAP)
 *   5.7   vm_insert_pages()
 *   5.8   mmap_sem renamed mmap_lock, mmap_read_lock() & co.
 *   5.14  vma_lookup()
 *   6.3   vma->vm_flags is const: vm_flags_set() (asserts the mmap write
 *         lock, per-VMA locks)
 *   6.4   MAX_ORDER is the largest order (inclusive), was one past it;
 *         per-VMA locks: vma_start_write()
 *   6.8   MAX_ORDER renamed MAX_PAGE_ORDER
 */
#ifndef _HYBRIDMEM_COMPAT_H
#define _HYBRIDMEM_COMPAT_H

#include <linux/version.h>
#include <linux/mm.h>
#include <linux/mmzone.h>

#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 8, 0)
#include <linux/mmap_lock.h>

static inline void hm_mmap_read_lock(struct mm_struct *mm)
{
	mmap_read_lock(mm);
}

static inline void hm_mmap_read_unlock(struct mm_struct *mm)
{
	mmap_read_unlock(mm);
}

static inline int hm_mmap_write_lock_killable(struct mm_struct *mm)
{
	return mmap_write_lock_killable(mm);
}

static inline void hm_mmap_write_unlock(struct mm_struct *mm)
{
	mmap_write_unlock(mm);
}
#else
static inline void hm_mmap_read_lock(struct mm_struct *mm)
{
	down_read(&mm->mmap_sem);
}

static inline void hm_mmap_read_unlock(struct mm_struct *mm)
{
	up_read(&mm->mmap_sem);
}

static inline int hm_mmap_write_lock_killable(struct mm_struct *mm)
{
	return down_write_killable(&mm->mmap_sem);
}

static inline void hm_mmap_write_unlock(struct mm_struct *mm)
{
	up_write(&mm->mmap_sem);
}
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

/* Does nothing unless the vma is VM_PFNMAP, on every version. */
static inline void hm_zap_vma_ptes(struct vm_area_struct *vma,
				   unsigned long addr, unsigned long size)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(4, 18, 0)
	zap_vma_ptes(vma, addr, size);
#else
	(void)zap_vma_ptes(vma, addr, size);
#endif
}

/* On return *num is the number of pages NOT inserted, as upstream. */
static inline int hm_vm_insert_pages(struct vm_area_struct *vma,
				     unsigned long addr, struct page **pages,
				     unsigned long *num)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(5, 7, 0)
	return vm_insert_pages(vma, addr, pages, num);
#else
	unsigned long i;
	int err;

	for (i = 0; i < *num; i++) {
		err = vm_insert_page(vma, addr + i * PAGE_SIZE, pages[i]);
		if (err) {
			*num -= i;
			return err;
		}
	}
	*num = 0;
	return 0;
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

#endif /* _HYBRIDMEM_COMPAT_H */
