// SPDX-License-Identifier: GPL-2.0
/*
 * hybridmem_test - maps freshly allocated pages into user space through
 * every path of the field notes (remap_pfn_range, vm_insert_page(s),
 * high-order remaps, a fault handler, zap_vma_ptes), done right and
 * observable, plus the notes' crash (vm_insert_page on a VM_PFNMAP vma) on
 * explicit request only.
 *
 * Char device "kex" (dynamic major, minor 0): the node is made by hand, as
 * in the notes: mknod /dev/devKex c $(awk '$2=="kex"{print $1}'
 * /proc/devices) 0.  The ioctl ABI is hybridmem_uapi.h; the kernel log
 * lines are parsed by user space, so their texts are part of the ABI too.
 *
 * Memory: every page is charged to the memory cgroup of the task that
 * calls mmap (__GFP_ACCOUNT), so memory.max bounds what one user can pin
 * (except the insert modes on 5.10, where vm_insert_page() refuses charged
 * pages);
 * the allocation and mapping loops give up on a fatal signal (an OOM
 * victim must not go on allocating under the mmap write lock); the caps
 * are in bytes, whatever the page size.  Log output is bounded: every
 * line a user can cause counts against a budget per open file and a
 * module-wide rate limit.
 *
 * Ownership: the pages of one mmap belong to a refcounted struct hm_mapping
 * on vm_private_data.  vm_ops->open (fork, vma split, mremap move) takes a
 * reference, vm_ops->close drops one, and the pages are freed only when the
 * last vma using them is gone, i.e. after the kernel has torn down every
 * pte that pointed at them.  remap_pfn_range() and vmf_insert_pfn() take no
 * page reference (the ptes are "special"), so the notes' __free_page() right
 * after remap_pfn_range() handed a page back to the allocator while user
 * space could still read and write it: a use-after-free.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/bitmap.h>
#include <linux/cdev.h>
#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/highmem.h>
#include <linux/kobject.h>
#include <linux/kref.h>
#include <linux/log2.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/ratelimit.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>

#include <asm/cacheflush.h>

#include "hybridmem_compat.h"
#include "hybridmem_uapi.h"

#define CREATE_TRACE_POINTS
#include "hybridmem_trace.h"

/* ------------------------------------------------------------------------
 * Module parameters: the defaults every new open starts from.
 */

static const char * const hm_mode_names[] = {
	[HYBRIDMEM_MODE_REMAP_PFN]	= "remap_pfn",
	[HYBRIDMEM_MODE_INSERT_PAGE]	= "insert_page",
	[HYBRIDMEM_MODE_INSERT_PAGES]	= "insert_pages",
	[HYBRIDMEM_MODE_REMAP_CONTIG]	= "remap_contig",
	[HYBRIDMEM_MODE_FAULT]		= "fault",
	[HYBRIDMEM_MODE_MIXED]		= "mixed",
	[HYBRIDMEM_MODE_FREE_AFTER_MAP]	= "free_after_map",
	[HYBRIDMEM_MODE_LEAK_ON_ERROR]	= "leak_on_error",
};

#define HM_MODE_COUNT	ARRAY_SIZE(hm_mode_names)

/*
 * Caps in bytes, so they mean the same with 4 KiB and 64 KiB pages.  The
 * ceilings keep the per-mapping page array (8 bytes a page) small enough
 * for kvcalloc() without a warning, whatever root writes.
 */
#define HM_MAP_BYTES_DEFAULT	SZ_256M
#define HM_MAP_BYTES_LIMIT	SZ_1G
#define HM_TOTAL_BYTES_DEFAULT	SZ_1G
#define HM_LOG_PAGES_LIMIT	4096U
#define HM_LOG_BUDGET_DEFAULT	2048U
#define HM_LOG_BUDGET_LIMIT	(1024U * 1024U)

static unsigned int map_mode = HYBRIDMEM_MODE_REMAP_PFN;
static bool zap_after_map;
static int fail_at = -1;
static unsigned long max_map_bytes = HM_MAP_BYTES_DEFAULT;
static unsigned long max_total_bytes;	/* 0 until init: see hm_init() */
static bool allow_bug;
static bool allow_as_written;
static unsigned int log_pages = 64;
static unsigned int log_budget = HM_LOG_BUDGET_DEFAULT;

static int hm_param_set_mode(const char *val, const struct kernel_param *kp)
{
	int mode = sysfs_match_string(hm_mode_names, val);

	if (mode < 0)
		return -EINVAL;
	WRITE_ONCE(*(unsigned int *)kp->arg, mode);
	return 0;
}

static int hm_param_get_mode(char *buf, const struct kernel_param *kp)
{
	unsigned int mode = READ_ONCE(*(unsigned int *)kp->arg);

	return scnprintf(buf, PAGE_SIZE, "%s\n", hm_mode_names[mode]);
}

static const struct kernel_param_ops hm_mode_ops = {
	.set = hm_param_set_mode,
	.get = hm_param_get_mode,
};
module_param_cb(map_mode, &hm_mode_ops, &map_mode, 0644);
MODULE_PARM_DESC(map_mode,
		 "remap_pfn (default), insert_page, insert_pages, remap_contig, fault, mixed, free_after_map or leak_on_error");

static int hm_param_set_fail_at(const char *val, const struct kernel_param *kp)
{
	int n, err = kstrtoint(val, 0, &n);

	if (err)
		return err;
	if (n < -1)
		return -EINVAL;
	WRITE_ONCE(*(int *)kp->arg, n);
	return 0;
}

static const struct kernel_param_ops hm_fail_at_ops = {
	.set = hm_param_set_fail_at,
	.get = param_get_int,
};
module_param_cb(fail_at, &hm_fail_at_ops, &fail_at, 0644);
MODULE_PARM_DESC(fail_at,
		 "simulate a failure while mapping this page index (-1: off)");

/* The most RAM one mapping or all of them may hold, page aligned. */
static unsigned long hm_bytes_limit(const struct kernel_param *kp)
{
	unsigned long ram = totalram_pages() << PAGE_SHIFT;

	if (kp->arg == &max_map_bytes)
		return min_t(unsigned long, HM_MAP_BYTES_LIMIT, ram);
	return ram;
}

static int hm_param_set_bytes(const char *val, const struct kernel_param *kp)
{
	unsigned long n, limit = hm_bytes_limit(kp);
	int err = kstrtoul(val, 0, &n);

	if (err)
		return err;
	if (n < PAGE_SIZE)
		return -EINVAL;
	if (n > limit) {
		pr_info("%s %lu clamped to %lu\n", kp->name, n, limit);
		n = limit;
	}
	WRITE_ONCE(*(unsigned long *)kp->arg, ALIGN_DOWN(n, PAGE_SIZE));
	return 0;
}

static const struct kernel_param_ops hm_bytes_ops = {
	.set = hm_param_set_bytes,
	.get = param_get_ulong,
};

module_param_cb(max_map_bytes, &hm_bytes_ops, &max_map_bytes, 0644);
MODULE_PARM_DESC(max_map_bytes,
		 "largest mapping in bytes (default 256 MiB, at most 1 GiB)");
module_param_cb(max_total_bytes, &hm_bytes_ops, &max_total_bytes, 0644);
MODULE_PARM_DESC(max_total_bytes,
		 "cap on bytes allocated by all mappings together (default: half of RAM, at most 1 GiB; at most RAM)");

static int hm_param_set_lines(const char *val, const struct kernel_param *kp)
{
	unsigned int limit = kp->arg == &log_pages ? HM_LOG_PAGES_LIMIT :
						       HM_LOG_BUDGET_LIMIT;
	unsigned long long n;
	int err = kstrtoull(val, 0, &n);

	if (err)
		return err;
	if (n > limit) {
		pr_info("%s %llu clamped to %u\n", kp->name, n, limit);
		n = limit;
	}
	WRITE_ONCE(*(unsigned int *)kp->arg, (unsigned int)n);
	return 0;
}

static const struct kernel_param_ops hm_lines_ops = {
	.set = hm_param_set_lines,
	.get = param_get_uint,
};

module_param(zap_after_map, bool, 0644);
MODULE_PARM_DESC(zap_after_map,
		 "zap_vma_ptes() every page right after mapping it (the notes' test1)");
module_param(allow_bug, bool, 0444);
MODULE_PARM_DESC(allow_bug,
		 "let map_mode=mixed hit the kernel BUG in vm_insert_page (default: -EPERM)");
module_param(allow_as_written, bool, 0444);
MODULE_PARM_DESC(allow_as_written,
		 "let map_mode free_after_map and leak_on_error run the notes' test2 code as written: a use-after-free and a leak (default: -EPERM)");
module_param_cb(log_pages, &hm_lines_ops, &log_pages, 0644);
MODULE_PARM_DESC(log_pages,
		 "per-page log lines one operation prints at most (default 64, at most 4096)");
module_param_cb(log_budget, &hm_lines_ops, &log_budget, 0644);
MODULE_PARM_DESC(log_budget,
		 "log lines one open file may cause, all operations together (default 2048)");

/* ------------------------------------------------------------------------
 * Counters, module wide; read by GET_STATS and sysfs.
 */

static struct {
	atomic_long_t live_pages;	/* reserved against max_total_bytes */
	atomic_long_t live_mappings;
	atomic_long_t maps;
	atomic_long_t map_failures;
	atomic_long_t zaps;
	atomic_long_t faults;
	atomic_long_t remaps;
	atomic_long_t frees;
} hm_stats;

/* ------------------------------------------------------------------------
 * Per-open state.
 */

struct hm_file {
	spinlock_t lock;		/* guards the three fields below */
	enum hybridmem_map_mode map_mode;
	bool zap_after_map;
	int fail_at;
	atomic_t log_left;		/* lines this open file may still log */
	atomic_t log_spent;		/* the budget's end was announced */
};

/* ------------------------------------------------------------------------
 * Log lines.  Everything a user can make the module print goes through
 * hm_log_ok(): a budget per open file (log_budget lines), then a rate
 * limit over the whole module, so neither many operations on one file nor
 * many files flood the log.  Per-page lines are also capped at log_pages
 * per operation, with a count of the rest.
 */

static DEFINE_RATELIMIT_STATE(hm_log_rs, 5 * HZ, 2048);

static bool hm_log_ok(struct hm_file *hf)
{
	if (atomic_dec_if_positive(&hf->log_left) < 0) {
		if (!atomic_xchg(&hf->log_spent, 1))
			pr_info_ratelimited("log budget of this open file (%u lines) used up: no more lines from it\n",
					    READ_ONCE(log_budget));
		return false;
	}
	return __ratelimit(&hm_log_rs);
}

#define hm_info(hf, fmt, ...)					\
	do {							\
		if (hm_log_ok(hf))				\
			pr_info(fmt, ##__VA_ARGS__);		\
	} while (0)

struct hm_log {
	struct hm_file *hf;
	unsigned int left;
	unsigned long suppressed;
};

static void hm_log_init(struct hm_log *log, struct hm_file *hf)
{
	log->hf = hf;
	log->left = READ_ONCE(log_pages);
	log->suppressed = 0;
}

static bool hm_log_page(struct hm_log *log)
{
	if (log->left) {
		log->left--;
		return hm_log_ok(log->hf);
	}
	log->suppressed++;
	return false;
}

static void hm_log_flush(struct hm_log *log)
{
	if (log->suppressed)
		hm_info(log->hf, "%lu more per-page lines suppressed\n",
			log->suppressed);
	log->suppressed = 0;
}

/* ------------------------------------------------------------------------
 * Mapping objects.
 */

struct hm_mapping {
	struct kref kref;
	/*
	 * The file that mmap()ed it: every vma of the mapping holds a
	 * reference on that file, and the last vm_ops->close (which frees
	 * the mapping) runs before the vma drops it.
	 */
	struct hm_file *hf;
	enum hybridmem_map_mode mode;
	int fail_at;			/* fault mode: this page SIGBUSes */
	unsigned long npages;		/* pages in the mapping */
	unsigned long reserved;		/* pages counted in live_pages */
	unsigned long nr_alloc;		/* pages[0..nr_alloc) are allocated */
	struct page **pages;		/* order-0 pages, one ref each: ours */
	unsigned long *block_start;	/* remap_contig: first page of a block */
	unsigned long *faulted;		/* fault mode: pte filled since zap */
	atomic_t fault_log_left;
	atomic_long_t fault_log_suppressed;
};

static const struct vm_operations_struct hm_vm_ops;

static void hm_mapping_release(struct kref *kref)
{
	struct hm_mapping *m = container_of(kref, struct hm_mapping, kref);
	unsigned long i, suppressed;

	suppressed = atomic_long_read(&m->fault_log_suppressed);
	if (suppressed)
		hm_info(m->hf, "%lu more per-page lines suppressed\n",
			suppressed);
	/*
	 * No user pte maps these pages any more: this runs from the last
	 * vm_ops->close, after the kernel unmapped the vma, or from the mmap
	 * error path after hm_zap() (see hm_mmap()).  Pages that
	 * vm_insert_page() mapped also hold a reference of their own, so
	 * dropping ours is safe even before their ptes are gone.
	 */
	for (i = 0; i < m->nr_alloc; i++) {
		__free_page(m->pages[i]);
		if (!((i + 1) % 256))
			cond_resched();
	}
	trace_hybridmem_free(m->nr_alloc);
	hm_info(m->hf, "freed %lu pages\n", m->nr_alloc);
	atomic_long_add(m->nr_alloc, &hm_stats.frees);
	atomic_long_sub(m->reserved, &hm_stats.live_pages);
	atomic_long_dec(&hm_stats.live_mappings);
	kvfree(m->faulted);
	kvfree(m->block_start);
	kvfree(m->pages);
	kfree(m);
}

static void hm_mapping_put(struct hm_mapping *m)
{
	kref_put(&m->kref, hm_mapping_release);
}

/*
 * HM_PLANT_*: bugs planted on purpose for `hybridmem stress` to find; only
 * the test fixture build (test/fixtures/stress-plants) defines them, never
 * the shipped module.
 */
static void hm_vm_open(struct vm_area_struct *vma)
{
	struct hm_mapping *m = vma->vm_private_data;

#ifdef HM_PLANT_OPEN_NO_REF
	/* Planted: a fork or split vma shares m without a reference. */
	(void)m;
#else
	kref_get(&m->kref);
#endif
}

static void hm_vm_close(struct vm_area_struct *vma)
{
#ifdef HM_PLANT_CLOSE_LEAK
	/* Planted: a one-page vma never drops its reference (a leak). */
	if (vma_pages(vma) == 1)
		return;
#endif
	hm_mapping_put(vma->vm_private_data);
}

/* Index into m->pages of the page mapped at addr (vm_pgoff moves on split). */
static unsigned long hm_page_index(struct vm_area_struct *vma,
				   unsigned long addr)
{
	return vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT);
}

static void hm_log_fault(struct hm_mapping *m, unsigned long idx,
			 unsigned long addr)
{
	trace_hybridmem_fault(addr, page_to_pfn(m->pages[idx]), idx);
	atomic_long_inc(&hm_stats.faults);
	if (atomic_dec_if_positive(&m->fault_log_left) >= 0)
		hm_info(m->hf, "fault-in page %lu at %016lx\n", idx, addr);
	else
		atomic_long_inc(&m->fault_log_suppressed);
}

/*
 * Fault mode maps every page from here, on first touch.  insert_page(s)
 * mappings come here when MADV_DONTNEED dropped a pte: the page is still
 * the module's, so it is mapped again, contents and all (a shared mapping
 * must not lose its data).  The VM_PFNMAP modes never get here for a
 * dropped pte but after ZAP (MADV_DONTNEED is EINVAL on them): that page
 * is gone for good until REMAP, so the touch gets SIGBUS.
 */
static vm_fault_t hm_vm_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct hm_mapping *m = vma->vm_private_data;
	unsigned long idx = vmf->pgoff;
	vm_fault_t ret;
	int err;

	if (idx >= m->npages)
		return VM_FAULT_SIGBUS;
	if (m->mode == HYBRIDMEM_MODE_INSERT_PAGE ||
	    m->mode == HYBRIDMEM_MODE_INSERT_PAGES) {
		/*
		 * mmap left the vma VM_MIXEDMAP; without it vm_insert_page()
		 * would want the mmap write lock (and BUG_ON without it).
		 */
		if (!(vma->vm_flags & VM_MIXEDMAP))
			return VM_FAULT_SIGBUS;
		/* -EBUSY: another thread mapped it first. */
		err = vm_insert_page(vma, vmf->address, m->pages[idx]);
		if (!err)
			hm_log_fault(m, idx, vmf->address);
		if (err == -ENOMEM)
			return VM_FAULT_OOM;
		return err && err != -EBUSY ? VM_FAULT_SIGBUS : VM_FAULT_NOPAGE;
	}
	if (m->mode != HYBRIDMEM_MODE_FAULT)
		return VM_FAULT_SIGBUS;
	if (m->fail_at >= 0 && idx == (unsigned long)m->fail_at) {
		hm_info(m->hf, "fault at page %lu (%016lx) refused: fail_at\n",
			idx, vmf->address);
		return VM_FAULT_SIGBUS;
	}
	/*
	 * vmf_insert_pfn() answers VM_FAULT_NOPAGE also when another thread's
	 * fault filled the pte first; the bit says who did.  ZAP and REMAP
	 * clear it before they empty the pte.
	 */
	ret = vmf_insert_pfn(vma, vmf->address, page_to_pfn(m->pages[idx]));
	if (ret == VM_FAULT_NOPAGE && !test_and_set_bit(idx, m->faulted))
		hm_log_fault(m, idx, vmf->address);
	return ret;
}

static const struct vm_operations_struct hm_vm_ops = {
	.open = hm_vm_open,
	.close = hm_vm_close,
	.fault = hm_vm_fault,
};

/* ------------------------------------------------------------------------
 * Allocation.
 */

/*
 * Zeroed: these pages go to user space.  Charged to the caller's memory
 * cgroup, which is who holds them: RSS does not show VM_PFNMAP pages.
 */
#define HM_GFP		(GFP_KERNEL_ACCOUNT | __GFP_ZERO)

/* Where vm_insert_page() refuses a charged page (5.10), uncharged. */
static gfp_t hm_gfp(const struct hm_mapping *m)
{
	if (m->mode == HYBRIDMEM_MODE_INSERT_PAGE ||
	    m->mode == HYBRIDMEM_MODE_INSERT_PAGES)
		return (HM_GFP & ~__GFP_ACCOUNT) | HM_INSERT_GFP_ACCOUNT;
	return HM_GFP;
}

/*
 * The pages were zeroed through the kernel mapping; the remap_pfn_range()
 * modes map them without the flush vm_insert_page() does, which an
 * aliasing data cache needs.  A no-op on x86.
 */
static void hm_flush_pages(struct page **pages, unsigned long nr)
{
	unsigned long i;

	for (i = 0; i < nr; i++)
		flush_dcache_page(pages[i]);
}

static int hm_alloc_single(struct hm_mapping *m)
{
	while (m->nr_alloc < m->npages) {
		struct page *page;

		if (fatal_signal_pending(current))
			return -EINTR;
		page = alloc_page(hm_gfp(m));
		if (!page)
			return -ENOMEM;
		m->pages[m->nr_alloc++] = page;
		cond_resched();
	}
	return 0;
}

/*
 * remap_contig: the largest blocks the buddy allocator gives, falling back
 * to smaller orders.  Each block is split_page()d (no __GFP_COMP), so every
 * page has its own reference and is freed with __free_page() like the
 * pages of the other modes; block_start remembers where blocks begin so
 * each block is mapped by one remap_pfn_range().
 */
static int hm_alloc_contig(struct hm_mapping *m)
{
	unsigned int order = HM_MAX_ALLOC_ORDER;

	while (m->nr_alloc < m->npages) {
		unsigned long j, left = m->npages - m->nr_alloc;
		struct page *page;
		gfp_t gfp = HM_GFP;

		if (fatal_signal_pending(current))
			return -EINTR;
		order = min_t(unsigned int, order, ilog2(left));
		if (order)
			gfp |= __GFP_NOWARN | __GFP_NORETRY;
		page = alloc_pages(gfp, order);
		if (!page) {
			if (!order)
				return -ENOMEM;
			order--;
			continue;
		}
		if (order)
			split_page(page, order);
		__set_bit(m->nr_alloc, m->block_start);
		for (j = 0; j < (1UL << order); j++)
			m->pages[m->nr_alloc++] = hm_nth_page(page, j);
		cond_resched();
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Mapping at mmap time.  Each mapper returns 0 or an errno; on error
 * ctx->failed is the page index that failed and ctx->zap the number of
 * pages from vm_start that may have ptes and must be zapped.
 */

struct hm_map_ctx {
	struct hm_file *hf;
	struct vm_area_struct *vma;
	struct hm_mapping *m;
	struct hm_log log;
	unsigned long failed;
	unsigned long zap;
};

static bool hm_fail_here(struct hm_mapping *m, unsigned long i)
{
	return m->fail_at >= 0 && i == (unsigned long)m->fail_at;
}

static unsigned long hm_addr(struct hm_map_ctx *c, unsigned long i)
{
	return c->vma->vm_start + i * PAGE_SIZE;
}

static void hm_log_inserted(struct hm_map_ctx *c, unsigned long i,
			    unsigned long pfn)
{
	trace_hybridmem_page(hm_addr(c, i), pfn, i);
	/* The notes' text: a user address in 16 hex digits (not %px). */
	if (hm_log_page(&c->log))
		pr_info("inserted page %d at %016lx\n", (int)i, hm_addr(c, i));
}

static int hm_map_fail(struct hm_map_ctx *c, unsigned long i,
		       unsigned long zap, int err)
{
	c->failed = i;
	c->zap = zap;
	return err;
}

static int hm_remap_one(struct hm_map_ctx *c, unsigned long i,
			unsigned long nr)
{
	return remap_pfn_range(c->vma, hm_addr(c, i),
			       page_to_pfn(c->m->pages[i]), nr * PAGE_SIZE,
			       c->vma->vm_page_prot);
}

/* fail_at simulates an allocation failure: -ENOMEM. */
static int hm_map_remap_pfn(struct hm_map_ctx *c)
{
	unsigned long i;
	int err;

	for (i = 0; i < c->m->npages; i++) {
		if (fatal_signal_pending(current))
			return hm_map_fail(c, i, i, -EINTR);
		if (hm_fail_here(c->m, i))
			return hm_map_fail(c, i, i, -ENOMEM);
		err = hm_remap_one(c, i, 1);
		/* 6.1 does not zap a partial remap itself: include page i. */
		if (err)
			return hm_map_fail(c, i, i + 1, err);
		hm_log_inserted(c, i, page_to_pfn(c->m->pages[i]));
		cond_resched();
	}
	return 0;
}

static int hm_map_contig(struct hm_map_ctx *c)
{
	struct hm_mapping *m = c->m;
	unsigned long i, end, stop;
	struct hm_log blocks;
	int err = 0;

	hm_log_init(&blocks, c->hf);
	for (i = 0; i < m->npages && !err; i = end) {
		if (fatal_signal_pending(current)) {
			err = hm_map_fail(c, i, i, -EINTR);
			break;
		}
		end = find_next_bit(m->block_start, m->npages, i + 1);
		stop = end;
		if (m->fail_at >= 0 && (unsigned long)m->fail_at >= i &&
		    (unsigned long)m->fail_at < end)
			stop = m->fail_at;
		if (stop > i) {
			err = hm_remap_one(c, i, stop - i);
			if (err) {
				hm_map_fail(c, i, stop, err);
				break;
			}
			if (hm_log_page(&blocks))
				pr_info("remap_contig block of %lu pages at page %lu\n",
					stop - i, i);
			for (; i < stop; i++)
				hm_log_inserted(c, i, page_to_pfn(c->m->pages[i]));
		}
		if (stop < end)
			err = hm_map_fail(c, stop, stop, -ENOMEM);
		cond_resched();
	}
	hm_log_flush(&blocks);
	return err;
}

static int hm_map_insert_page(struct hm_map_ctx *c)
{
	unsigned long i;
	int err;

	for (i = 0; i < c->m->npages; i++) {
		if (fatal_signal_pending(current))
			return hm_map_fail(c, i, i, -EINTR);
		if (hm_fail_here(c->m, i))
			return hm_map_fail(c, i, i, -ENOMEM);
		/* Takes a page reference of its own; ours stays in m. */
		err = vm_insert_page(c->vma, hm_addr(c, i), c->m->pages[i]);
		if (err)
			return hm_map_fail(c, i, i, err);
		hm_log_inserted(c, i, page_to_pfn(c->m->pages[i]));
		cond_resched();
	}
	return 0;
}

static int hm_map_insert_pages(struct hm_map_ctx *c)
{
	struct hm_mapping *m = c->m;
	unsigned long i, n = m->npages, left;
	int err = 0;

	if (m->fail_at >= 0 && (unsigned long)m->fail_at < n)
		n = m->fail_at;
	left = n;
	if (n)
		err = vm_insert_pages(c->vma, c->vma->vm_start, m->pages,
				      &left);
	for (i = 0; i < n - left; i++)
		hm_log_inserted(c, i, page_to_pfn(c->m->pages[i]));
	if (err)
		return hm_map_fail(c, n - left, n - left, err);
	if (n < m->npages)
		return hm_map_fail(c, n, n, -ENOMEM);
	return 0;
}

static bool hm_as_written(enum hybridmem_map_mode mode)
{
	return mode == HYBRIDMEM_MODE_FREE_AFTER_MAP ||
	       mode == HYBRIDMEM_MODE_LEAK_ON_ERROR;
}

/*
 * The notes' test2 loop as written, reached only with allow_as_written=1:
 * alloc_page(GFP_KERNEL) (no __GFP_ZERO) and remap_pfn_range() one page at a
 * time.  free_after_map then calls __free_page() at once: remap_pfn_range()
 * took no reference, so user space maps a page the buddy allocator holds as
 * free (a use-after-free).  leak_on_error keeps the pages, but its error
 * path (see hm_mmap()) zaps pages 0..N-1 and frees nothing, as the notes'
 * "TODO free previous pages" left it.  fail_at N simulates alloc_page()
 * failing at page N.
 */
static int hm_map_as_written(struct hm_map_ctx *c)
{
	struct hm_mapping *m = c->m;
	unsigned long i;
	int err;

	for (i = 0; i < m->npages; i++) {
		struct page *page;

		if (fatal_signal_pending(current))
			return hm_map_fail(c, i, i, -EINTR);
		if (hm_fail_here(m, i))
			return hm_map_fail(c, i, i, -ENOMEM);
		page = alloc_page(GFP_KERNEL);
		if (!page)
			return hm_map_fail(c, i, i, -ENOMEM);
		err = remap_pfn_range(c->vma, hm_addr(c, i), page_to_pfn(page),
				      PAGE_SIZE, c->vma->vm_page_prot);
		if (err) {
			__free_page(page);
			return hm_map_fail(c, i, i + 1, err);
		}
		hm_log_inserted(c, i, page_to_pfn(page));
		if (m->mode == HYBRIDMEM_MODE_FREE_AFTER_MAP) {
			__free_page(page);
			atomic_long_inc(&hm_stats.frees);
		} else {
			m->pages[m->nr_alloc++] = page;
		}
		cond_resched();
	}
	return 0;
}

/*
 * The notes' crash: page 0 by remap_pfn_range() makes the vma VM_PFNMAP,
 * then vm_insert_page() on page 1 hits BUG_ON(vma->vm_flags & VM_PFNMAP)
 * in mm/memory.c.  Only reached with allow_bug=1.  The BUG fires with the
 * mmap lock held for writing, so the process hangs in exit for ever.
 */
static int hm_map_mixed(struct hm_map_ctx *c)
{
	unsigned long i;
	int err;

	for (i = 0; i < c->m->npages; i++) {
		if (hm_fail_here(c->m, i))
			return hm_map_fail(c, i, i, -ENOMEM);
		if (i == 1) {
			pr_info("mixed: vm_insert_page on a VM_PFNMAP vma: expect a crash in vm_insert_page\n");
			err = vm_insert_page(c->vma, hm_addr(c, i),
					     c->m->pages[i]);
		} else {
			err = hm_remap_one(c, i, 1);
		}
		if (err)
			return hm_map_fail(c, i, i + 1, err);
		hm_log_inserted(c, i, page_to_pfn(c->m->pages[i]));
	}
	return 0;
}

/*
 * zap_vma_ptes() one page at a time, as the notes do, with their log line.
 * Returns true when the calls could not have done anything: up to 7.0
 * zap_vma_ptes() silently ignores a vma without VM_PFNMAP, which is what
 * vm_insert_page(s) leave (VM_MIXEDMAP), so those pages stay mapped; 7.1's
 * zap_special_vma_range() zaps them too (hm_zap_acts_on()).
 */
static bool hm_zap(struct hm_file *hf, struct vm_area_struct *vma,
		   struct hm_mapping *m, unsigned long start, unsigned long nr)
{
	struct hm_log log;
	unsigned long i, addr;
	bool noop = !hm_zap_acts_on(vma);

	hm_log_init(&log, hf);
	for (i = 0; i < nr; i++) {
		addr = start + i * PAGE_SIZE;
		/* The notes' text, spaces included: parsers match it. */
		if (hm_log_page(&log))
			pr_info(" zap_vma_ptes addr 0x%lx \n", addr);
		/* Before the zap: the next fault fills this pte again. */
		if (m->faulted)
			clear_bit(hm_page_index(vma, addr), m->faulted);
		hm_zap_vma_ptes(vma, addr, PAGE_SIZE);
		cond_resched();
	}
	hm_log_flush(&log);
	trace_hybridmem_zap(start, nr, noop);
	atomic_long_add(nr, &hm_stats.zaps);
	if (nr && noop)
		hm_info(hf, "zap_vma_ptes had no effect at 0x%lx: vma is not VM_PFNMAP (%lu pages)\n",
			start, nr);
	return noop;
}

static struct hm_mapping *hm_mapping_alloc(struct hm_file *hf,
					   unsigned long npages,
					   enum hybridmem_map_mode mode,
					   int fail)
{
	struct hm_mapping *m = kzalloc(sizeof(*m), GFP_KERNEL_ACCOUNT);

	if (!m)
		return NULL;
	kref_init(&m->kref);
	m->hf = hf;
	m->mode = mode;
	m->fail_at = fail;
	m->npages = npages;
	/* free_after_map hands its pages back at once: nothing stays live. */
	m->reserved = mode == HYBRIDMEM_MODE_FREE_AFTER_MAP ? 0 : npages;
	atomic_set(&m->fault_log_left,
		   min_t(unsigned int, READ_ONCE(log_pages), INT_MAX));
	atomic_long_set(&m->fault_log_suppressed, 0);
	m->pages = kvcalloc(npages, sizeof(*m->pages), GFP_KERNEL_ACCOUNT);
	if (mode == HYBRIDMEM_MODE_REMAP_CONTIG)
		m->block_start = kvcalloc(BITS_TO_LONGS(npages),
					  sizeof(unsigned long),
					  GFP_KERNEL_ACCOUNT);
	if (mode == HYBRIDMEM_MODE_FAULT)
		m->faulted = kvcalloc(BITS_TO_LONGS(npages),
				      sizeof(unsigned long), GFP_KERNEL_ACCOUNT);
	if (!m->pages ||
	    (mode == HYBRIDMEM_MODE_REMAP_CONTIG && !m->block_start) ||
	    (mode == HYBRIDMEM_MODE_FAULT && !m->faulted)) {
		kvfree(m->faulted);
		kvfree(m->block_start);
		kvfree(m->pages);
		kfree(m);
		return NULL;
	}
	/* From here on hm_mapping_release() undoes the accounting. */
	atomic_long_inc(&hm_stats.live_mappings);
	return m;
}

/*
 * Refusals of bad input: an errno and a line saying why, nothing else; at
 * most 10 such lines every 5 s, module wide.
 */
static DEFINE_RATELIMIT_STATE(hm_refuse_rs, 5 * HZ, 10);

#define hm_refuse(hf, err, fmt, ...)					\
	({								\
		if (__ratelimit(&hm_refuse_rs) && hm_log_ok(hf))	\
			pr_info("mmap refused: " fmt "\n", ##__VA_ARGS__); \
		(err);							\
	})

static int hm_mmap(struct file *filp, struct vm_area_struct *vma)
{
	struct hm_file *hf = filp->private_data;
	unsigned long npages = vma_pages(vma), cap;
	unsigned long len = vma->vm_end - vma->vm_start;
	enum hybridmem_map_mode mode;
	struct hm_map_ctx c = { .hf = hf, .vma = vma };
	struct hm_mapping *m;
	bool zap;
	int fail, err;

	spin_lock(&hf->lock);
	mode = hf->map_mode;
	zap = hf->zap_after_map;
	fail = hf->fail_at;
	spin_unlock(&hf->lock);

	/*
	 * MAP_SHARED only: a private (COW) vma cannot be remapped page by
	 * page.  VM_MAYSHARE, not VM_SHARED: a read-only MAP_SHARED of an
	 * O_RDONLY fd has only VM_MAYSHARE.
	 */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return hm_refuse(hf, -EINVAL, "MAP_PRIVATE is not supported");
	if (vma->vm_pgoff)
		return hm_refuse(hf, -EINVAL, "offset %lu is not 0",
				 vma->vm_pgoff << PAGE_SHIFT);
	if (len > READ_ONCE(max_map_bytes))
		return hm_refuse(hf, -EINVAL,
				 "%lu bytes is more than max_map_bytes %lu",
				 len, READ_ONCE(max_map_bytes));
	if (mode == HYBRIDMEM_MODE_MIXED && !allow_bug)
		return hm_refuse(hf, -EPERM,
				 "map_mode mixed calls vm_insert_page on a VM_PFNMAP vma, which crashes the kernel; load with allow_bug=1 to let it");
	if (mode == HYBRIDMEM_MODE_MIXED && npages < 2)
		return hm_refuse(hf, -EINVAL,
				 "map_mode mixed needs 2 pages or more");
	if (hm_as_written(mode) && !allow_as_written)
		return hm_refuse(hf, -EPERM,
				 "map_mode %s is the notes' use-after-free or leak; load with allow_as_written=1 to let it",
				 hm_mode_names[mode]);

	/* Reserve against the global cap before allocating anything. */
	cap = READ_ONCE(max_total_bytes) >> PAGE_SHIFT;
	if (atomic_long_add_return(npages, &hm_stats.live_pages) > cap) {
		atomic_long_sub(npages, &hm_stats.live_pages);
		return hm_refuse(hf, -ENOMEM,
				 "%lu more bytes would pass max_total_bytes %lu",
				 len, READ_ONCE(max_total_bytes));
	}

	/* Valid: the notes' first line. */
	trace_hybridmem_map(vma->vm_start, len, mode);
	hm_info(hf, "vma->vm_end %lu vm_start %lu len %lu pages %lu vm_pgoff %lu\n",
		vma->vm_end, vma->vm_start, len, npages, vma->vm_pgoff);

	m = hm_mapping_alloc(hf, npages, mode, fail);
	if (!m) {
		atomic_long_sub(npages, &hm_stats.live_pages);
		trace_hybridmem_map_end(vma->vm_start, 0, -ENOMEM);
		return -ENOMEM;
	}
	c.m = m;
	/* hm_mapping_alloc() set what stays reserved; give back the rest. */
	atomic_long_sub(npages - m->reserved, &hm_stats.live_pages);

	/* The as-written modes allocate page by page while mapping. */
	err = hm_as_written(mode) ? 0 :
	      mode == HYBRIDMEM_MODE_REMAP_CONTIG ? hm_alloc_contig(m) :
						     hm_alloc_single(m);
	if (err) {
		c.failed = m->nr_alloc;
		c.zap = 0;
		goto fail;
	}
	if (mode == HYBRIDMEM_MODE_REMAP_PFN ||
	    mode == HYBRIDMEM_MODE_REMAP_CONTIG || mode == HYBRIDMEM_MODE_FAULT)
		hm_flush_pages(m->pages, m->nr_alloc);

	/*
	 * Never growable by mremap; kept out of core dumps.  remap_pfn_range
	 * sets the same flags (plus VM_IO|VM_PFNMAP) itself; fault mode sets
	 * them up front for vmf_insert_pfn().
	 */
	hm_vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	if (mode == HYBRIDMEM_MODE_FAULT)
		hm_vm_flags_set(vma, VM_PFNMAP | VM_IO);

	hm_log_init(&c.log, hf);
	switch (mode) {
	case HYBRIDMEM_MODE_REMAP_PFN:
		err = hm_map_remap_pfn(&c);
		break;
	case HYBRIDMEM_MODE_INSERT_PAGE:
		err = hm_map_insert_page(&c);
		break;
	case HYBRIDMEM_MODE_INSERT_PAGES:
		err = hm_map_insert_pages(&c);
		break;
	case HYBRIDMEM_MODE_REMAP_CONTIG:
		err = hm_map_contig(&c);
		break;
	case HYBRIDMEM_MODE_MIXED:
		err = hm_map_mixed(&c);
		break;
	case HYBRIDMEM_MODE_FREE_AFTER_MAP:
	case HYBRIDMEM_MODE_LEAK_ON_ERROR:
		err = hm_map_as_written(&c);
		break;
	case HYBRIDMEM_MODE_FAULT:
	default:
		/* Nothing now: hm_vm_fault() maps each page on first touch. */
		break;
	}
	hm_log_flush(&c.log);
	if (err)
		goto fail;
	hm_info(hf, "completed inserting %lu pages\n",
		mode == HYBRIDMEM_MODE_FAULT ? 0 : npages);
	trace_hybridmem_map_end(vma->vm_start,
				mode == HYBRIDMEM_MODE_FAULT ? 0 : npages, 0);

	if (zap)
		hm_zap(hf, vma, m, vma->vm_start, npages);

	vma->vm_private_data = m;
	vma->vm_ops = &hm_vm_ops;
	atomic_long_inc(&hm_stats.maps);
	return 0;

fail:
	/*
	 * vm_ops->close is not called for a vma whose ->mmap failed, so the
	 * pages are freed here.  Zap first: a pte left pointing at a freed
	 * page is live in the page tables (another thread could touch it)
	 * until the kernel unmaps the failed vma.
	 */
	hm_info(hf, "map failed at page %d: error %d\n", (int)c.failed, err);
	trace_hybridmem_map_end(vma->vm_start, c.failed, err);
	if (c.zap)
		hm_zap(hf, vma, m, vma->vm_start, c.zap);
	if (mode == HYBRIDMEM_MODE_LEAK_ON_ERROR) {
		/*
		 * The notes' bug, on purpose: the mapped pages stay allocated
		 * and counted in live_pages, and nothing points at them.
		 */
		m->reserved -= m->nr_alloc;
		m->nr_alloc = 0;
	}
	atomic_long_inc(&hm_stats.map_failures);
	hm_mapping_put(m);
	return err;
}

/* ------------------------------------------------------------------------
 * ioctls.
 */

static int hm_open(struct inode *inode, struct file *filp)
{
	struct hm_file *hf = kzalloc(sizeof(*hf), GFP_KERNEL);

	if (!hf)
		return -ENOMEM;
	spin_lock_init(&hf->lock);
	hf->map_mode = READ_ONCE(map_mode);
	hf->zap_after_map = READ_ONCE(zap_after_map);
	hf->fail_at = READ_ONCE(fail_at);
	atomic_set(&hf->log_left,
		   min_t(unsigned int, READ_ONCE(log_budget), INT_MAX));
	filp->private_data = hf;
	return 0;
}

/* Mappings point at hm_file, but every vma holds the file: none is left. */
static int hm_release(struct inode *inode, struct file *filp)
{
	kfree(filp->private_data);
	return 0;
}

static long hm_ioctl_get_info(struct hm_file *hf, void __user *uarg)
{
	struct hybridmem_info info;

	memset(&info, 0, sizeof(info));
	info.version = HYBRIDMEM_UAPI_VERSION;
	info.page_size = PAGE_SIZE;
	spin_lock(&hf->lock);
	info.map_mode = hf->map_mode;
	info.zap_after_map = hf->zap_after_map;
	info.fail_at = hf->fail_at;
	spin_unlock(&hf->lock);
	info.allow_bug = allow_bug;
	info.max_map_bytes = READ_ONCE(max_map_bytes);
	info.max_total_bytes = READ_ONCE(max_total_bytes);
	info.log_pages = READ_ONCE(log_pages);
	info.log_budget = READ_ONCE(log_budget);
	return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
}

static long hm_ioctl_set_mode(struct hm_file *hf, void __user *uarg)
{
	struct hybridmem_mode mode;

	if (copy_from_user(&mode, uarg, sizeof(mode)))
		return -EFAULT;
	if (mode.map_mode >= HM_MODE_COUNT || mode.zap_after_map > 1 ||
	    mode.fail_at < -1 || mode.reserved)
		return -EINVAL;
	spin_lock(&hf->lock);
	hf->map_mode = mode.map_mode;
	hf->zap_after_map = mode.zap_after_map;
	hf->fail_at = mode.fail_at;
	spin_unlock(&hf->lock);
	return 0;
}

static long hm_ioctl_get_stats(void __user *uarg)
{
	struct hybridmem_stats st;

	memset(&st, 0, sizeof(st));
	st.live_pages = atomic_long_read(&hm_stats.live_pages);
	st.live_mappings = atomic_long_read(&hm_stats.live_mappings);
	st.maps = atomic_long_read(&hm_stats.maps);
	st.map_failures = atomic_long_read(&hm_stats.map_failures);
	st.zaps = atomic_long_read(&hm_stats.zaps);
	st.faults = atomic_long_read(&hm_stats.faults);
	st.remaps = atomic_long_read(&hm_stats.remaps);
	st.frees = atomic_long_read(&hm_stats.frees);
	return copy_to_user(uarg, &st, sizeof(st)) ? -EFAULT : 0;
}

/* The vma of this file holding [addr, addr + len), or NULL. */
static struct vm_area_struct *hm_find_vma(struct file *filp,
					  unsigned long addr,
					  unsigned long len)
{
	struct vm_area_struct *vma = hm_vma_lookup(current->mm, addr);

	if (!vma || vma->vm_file != filp || vma->vm_ops != &hm_vm_ops ||
	    len > vma->vm_end - addr)
		return NULL;
	return vma;
}

/*
 * Give pages [first, first + nr) at addr fresh (zeroed) contents and map
 * them again.  Called with the mmap lock held for writing.  A vma without
 * VM_PFNMAP (insert_page(s)) keeps its ptes: zap_vma_ptes() cannot empty
 * it, so the pages are zeroed in place; returns true then (NOOP).
 */
static int hm_remap_range(struct hm_file *hf, struct vm_area_struct *vma,
			  struct hm_mapping *m, unsigned long addr,
			  unsigned long first, unsigned long nr, bool *noop)
{
	bool pfnmap = vma->vm_flags & VM_PFNMAP;
	struct hm_log log;
	unsigned long i, a;
	int err;

	*noop = !pfnmap;
	/*
	 * Faults under the per-VMA lock must not see the range between the
	 * zap and the remap (a spurious SIGBUS) or half zeroed (fault mode).
	 */
	hm_vma_start_write(vma);
	if (pfnmap) {
		if (m->faulted)
			bitmap_clear(m->faulted, first, nr);
		/* remap_pte_range() BUG_ONs on a present pte: empty the range. */
		hm_zap_vma_ptes(vma, addr, nr * PAGE_SIZE);
		trace_hybridmem_zap(addr, nr, false);
		atomic_long_add(nr, &hm_stats.zaps);
	}

	hm_log_init(&log, hf);
	for (i = 0; i < nr; i++) {
		struct page *page = m->pages[first + i];

		if (fatal_signal_pending(current)) {
			/* Dying: the rest stays zapped, as after ZAP. */
			hm_log_flush(&log);
			return -EINTR;
		}
		a = addr + i * PAGE_SIZE;
		clear_highpage(page);
		/* Zeroed through the kernel mapping; user space maps it. */
		flush_dcache_page(page);
		/* Fault mode: the next touch maps the page in again. */
		if (pfnmap && m->mode != HYBRIDMEM_MODE_FAULT) {
			err = remap_pfn_range(vma, a, page_to_pfn(page),
					      PAGE_SIZE, vma->vm_page_prot);
			if (err) {
				hm_log_flush(&log);
				hm_info(hf, "remap failed at page %lu: error %d\n",
					first + i, err);
				hm_zap_vma_ptes(vma, addr, (i + 1) * PAGE_SIZE);
				trace_hybridmem_zap(addr, i + 1, false);
				atomic_long_add(i + 1, &hm_stats.zaps);
				return err;
			}
		}
		trace_hybridmem_remap(a, page_to_pfn(page), first + i);
		if (hm_log_page(&log))
			pr_info("remap page %lu at %016lx\n", first + i, a);
		cond_resched();
	}
	hm_log_flush(&log);
	atomic_long_add(nr, &hm_stats.remaps);
	return 0;
}

/*
 * ZAP and REMAP act on a range of a live mapping of this file in the
 * caller's address space: the hdcdrv pattern.  ZAP only needs the mmap lock
 * for reading (like MADV_DONTNEED).  REMAP takes it for writing: the notes'
 * hdcdrv remapped under down_read(), but remap_pfn_range() sets vm_flags,
 * and since 6.3 vm_flags_set() asserts the write lock and write-locks the
 * vma against per-VMA-lock page faults; under the read lock that is a race.
 */
static long hm_ioctl_range(struct file *filp, void __user *uarg, bool remap)
{
	struct hm_file *hf = filp->private_data;
	struct mm_struct *mm = current->mm;
	struct hybridmem_range r;
	struct vm_area_struct *vma;
	struct hm_mapping *m;
	unsigned long addr, len, first, nr;
	long err = 0;
	bool noop;

	if (copy_from_user(&r, uarg, sizeof(r)))
		return -EFAULT;
	addr = r.addr;
	len = r.length;
	if (r.reserved || addr != r.addr || len != r.length || !len ||
	    !PAGE_ALIGNED(addr) || !PAGE_ALIGNED(len) || addr + len < addr)
		return -EINVAL;
	if (!mm)
		return -EINVAL;

	if (remap) {
		if (mmap_write_lock_killable(mm))
			return -EINTR;
	} else {
#ifndef HM_PLANT_ZAP_NO_LOCK	/* planted: ZAP races munmap for the vma */
		mmap_read_lock(mm);
#endif
	}
	vma = hm_find_vma(filp, addr, len);
	if (!vma) {
		err = -EINVAL;
		goto unlock;
	}
	m = vma->vm_private_data;
	first = hm_page_index(vma, addr);
	nr = len >> PAGE_SHIFT;
	if (first >= m->npages || nr > m->npages - first) {
		err = -EINVAL;
		goto unlock;
	}
	r.flags = 0;
	if (!remap) {
		noop = hm_zap(hf, vma, m, addr, nr);
	} else if (hm_as_written(m->mode)) {
		if (__ratelimit(&hm_refuse_rs))
			hm_info(hf, "remap refused at 0x%lx: map_mode %s mapping: the module does not own its pages\n",
				addr, hm_mode_names[m->mode]);
		err = -EINVAL;
	} else {
		err = hm_remap_range(hf, vma, m, addr, first, nr, &noop);
	}
	if (!err && noop)
		r.flags |= HYBRIDMEM_RANGE_NOOP;
	r.pages = err ? 0 : nr;
unlock:
	if (remap)
		mmap_write_unlock(mm);
#ifndef HM_PLANT_ZAP_NO_LOCK
	else
		mmap_read_unlock(mm);
#endif
	if (err)
		return err;
	return copy_to_user(uarg, &r, sizeof(r)) ? -EFAULT : 0;
}

static long hm_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	struct hm_file *hf = filp->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case HYBRIDMEM_IOC_GET_INFO:
		return hm_ioctl_get_info(hf, uarg);
	case HYBRIDMEM_IOC_SET_MODE:
		return hm_ioctl_set_mode(hf, uarg);
	case HYBRIDMEM_IOC_GET_STATS:
		return hm_ioctl_get_stats(uarg);
	case HYBRIDMEM_IOC_ZAP:
		return hm_ioctl_range(filp, uarg, false);
	case HYBRIDMEM_IOC_REMAP:
		return hm_ioctl_range(filp, uarg, true);
	default:
		return -ENOTTY;
	}
}

/*
 * .owner pins the module while a file is open; every vma of ours holds a
 * reference on its file, so rmmod fails (-EBUSY) exactly while an fd or a
 * mapping is alive.
 */
static const struct file_operations hm_fops = {
	.owner = THIS_MODULE,
	.open = hm_open,
	.release = hm_release,
	.mmap = hm_mmap,
	.unlocked_ioctl = hm_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

/* ------------------------------------------------------------------------
 * sysfs: /sys/kernel/hybridmem_test/<counter>, read only.
 */

#define HM_COUNTER_ATTR(name)						\
static ssize_t name##_show(struct kobject *kobj,			\
			   struct kobj_attribute *attr, char *buf)	\
{									\
	return sysfs_emit(buf, "%ld\n",					\
			  atomic_long_read(&hm_stats.name));		\
}									\
static struct kobj_attribute name##_attr = __ATTR_RO(name)

HM_COUNTER_ATTR(live_pages);
HM_COUNTER_ATTR(live_mappings);
HM_COUNTER_ATTR(maps);
HM_COUNTER_ATTR(map_failures);
HM_COUNTER_ATTR(zaps);
HM_COUNTER_ATTR(faults);
HM_COUNTER_ATTR(remaps);
HM_COUNTER_ATTR(frees);

static struct attribute *hm_attrs[] = {
	&live_pages_attr.attr,
	&live_mappings_attr.attr,
	&maps_attr.attr,
	&map_failures_attr.attr,
	&zaps_attr.attr,
	&faults_attr.attr,
	&remaps_attr.attr,
	&frees_attr.attr,
	NULL,
};

static const struct attribute_group hm_attr_group = {
	.attrs = hm_attrs,
};

/* ------------------------------------------------------------------------
 * Module init and exit.
 */

static dev_t hm_devt;
static struct cdev hm_cdev;
static struct kobject *hm_kobj;

static int __init hm_init(void)
{
	int err;

	if (!max_total_bytes)
		max_total_bytes = min_t(unsigned long, HM_TOTAL_BYTES_DEFAULT,
					(totalram_pages() / 2) << PAGE_SHIFT);

	err = alloc_chrdev_region(&hm_devt, 0, 1, HYBRIDMEM_CHRDEV_NAME);
	if (err)
		return err;
	cdev_init(&hm_cdev, &hm_fops);
	hm_cdev.owner = THIS_MODULE;

	hm_kobj = kobject_create_and_add(KBUILD_MODNAME, kernel_kobj);
	if (!hm_kobj) {
		err = -ENOMEM;
		goto err_region;
	}
	err = sysfs_create_group(hm_kobj, &hm_attr_group);
	if (err)
		goto err_kobj;
	err = cdev_add(&hm_cdev, hm_devt, 1);
	if (err)
		goto err_kobj;
	pr_info("loaded: major %d\n", MAJOR(hm_devt));
	return 0;

err_kobj:
	kobject_put(hm_kobj);
err_region:
	unregister_chrdev_region(hm_devt, 1);
	return err;
}

static void __exit hm_exit(void)
{
	cdev_del(&hm_cdev);
	kobject_put(hm_kobj);
	unregister_chrdev_region(hm_devt, 1);
	pr_info("unloaded\n");
}

module_init(hm_init);
module_exit(hm_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("hybridmem test device: every way to map pages into user space, and the notes' crash on request");
MODULE_AUTHOR("hybridmem project");
