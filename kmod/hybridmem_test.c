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
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>

#include "hybridmem_compat.h"
#include "hybridmem_uapi.h"

/* ------------------------------------------------------------------------
 * Module parameters: the defaults every new open starts from.
 */

static const char * const hm_mode_names[HYBRIDMEM_MODE_COUNT] = {
	[HYBRIDMEM_MODE_REMAP_PFN]	= "remap_pfn",
	[HYBRIDMEM_MODE_INSERT_PAGE]	= "insert_page",
	[HYBRIDMEM_MODE_INSERT_PAGES]	= "insert_pages",
	[HYBRIDMEM_MODE_REMAP_CONTIG]	= "remap_contig",
	[HYBRIDMEM_MODE_FAULT]		= "fault",
	[HYBRIDMEM_MODE_MIXED]		= "mixed",
	[HYBRIDMEM_MODE_FREE_AFTER_MAP]	= "free_after_map",
	[HYBRIDMEM_MODE_LEAK_ON_ERROR]	= "leak_on_error",
};

static unsigned int map_mode = HYBRIDMEM_MODE_REMAP_PFN;
static bool zap_after_map;
static int fail_at = -1;
static unsigned long max_pages = 65536;	/* 256 MiB of 4 KiB pages */
static unsigned long max_total_pages;	/* 0 until init: see hm_init() */
static bool allow_bug;
static bool allow_as_written;
static unsigned int log_pages = 64;

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

static int hm_param_set_pages(const char *val, const struct kernel_param *kp)
{
	unsigned long n;
	int err = kstrtoul(val, 0, &n);

	if (err)
		return err;
	if (!n)
		return -EINVAL;
	WRITE_ONCE(*(unsigned long *)kp->arg, n);
	return 0;
}

static const struct kernel_param_ops hm_pages_ops = {
	.set = hm_param_set_pages,
	.get = param_get_ulong,
};
module_param_cb(max_pages, &hm_pages_ops, &max_pages, 0644);
MODULE_PARM_DESC(max_pages, "largest mapping in pages (default 65536)");
module_param_cb(max_total_pages, &hm_pages_ops, &max_total_pages, 0644);
MODULE_PARM_DESC(max_total_pages,
		 "cap on pages allocated by all mappings together (default: half of RAM, at most 262144)");

module_param(zap_after_map, bool, 0644);
MODULE_PARM_DESC(zap_after_map,
		 "zap_vma_ptes() every page right after mapping it (the notes' test1)");
module_param(allow_bug, bool, 0444);
MODULE_PARM_DESC(allow_bug,
		 "let map_mode=mixed hit the kernel BUG in vm_insert_page (default: -EPERM)");
module_param(allow_as_written, bool, 0444);
MODULE_PARM_DESC(allow_as_written,
		 "let map_mode free_after_map and leak_on_error run the notes' test2 code as written: a use-after-free and a leak (default: -EPERM)");
module_param(log_pages, uint, 0644);
MODULE_PARM_DESC(log_pages,
		 "per-page log lines one operation prints at most (default 64)");

#define HM_DEFAULT_MAX_TOTAL_PAGES	262144UL

/* ------------------------------------------------------------------------
 * Counters, module wide; read by GET_STATS and sysfs.
 */

static struct {
	atomic_long_t live_pages;	/* reserved against max_total_pages */
	atomic_long_t live_mappings;
	atomic_long_t maps;
	atomic_long_t map_failures;
	atomic_long_t zaps;
	atomic_long_t faults;
	atomic_long_t remaps;
	atomic_long_t frees;
} hm_stats;

/* ------------------------------------------------------------------------
 * Per-page log lines, capped at log_pages per operation.
 */

struct hm_log {
	unsigned int left;
	unsigned long suppressed;
};

static void hm_log_init(struct hm_log *log)
{
	log->left = READ_ONCE(log_pages);
	log->suppressed = 0;
}

static bool hm_log_page(struct hm_log *log)
{
	if (log->left) {
		log->left--;
		return true;
	}
	log->suppressed++;
	return false;
}

static void hm_log_flush(struct hm_log *log)
{
	if (log->suppressed)
		pr_info("%lu more per-page lines suppressed\n", log->suppressed);
	log->suppressed = 0;
}

/* ------------------------------------------------------------------------
 * Per-open state and mapping objects.
 */

struct hm_file {
	spinlock_t lock;		/* guards the three fields below */
	enum hybridmem_map_mode map_mode;
	bool zap_after_map;
	int fail_at;
};

struct hm_mapping {
	struct kref kref;
	enum hybridmem_map_mode mode;
	int fail_at;			/* fault mode: this page SIGBUSes */
	unsigned long npages;		/* pages in the mapping */
	unsigned long reserved;		/* pages counted in live_pages */
	unsigned long nr_alloc;		/* pages[0..nr_alloc) are allocated */
	struct page **pages;		/* order-0 pages, one ref each: ours */
	unsigned long *block_start;	/* remap_contig: first page of a block */
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
		pr_info("%lu more per-page lines suppressed\n", suppressed);
	/*
	 * No user pte maps these pages any more: this runs from the last
	 * vm_ops->close, after the kernel unmapped the vma, or from the mmap
	 * error path after hm_zap() (see hm_mmap()).  Pages that
	 * vm_insert_page() mapped also hold a reference of their own, so
	 * dropping ours is safe even before their ptes are gone.
	 */
	for (i = 0; i < m->nr_alloc; i++)
		__free_page(m->pages[i]);
	pr_info("freed %lu pages\n", m->nr_alloc);
	atomic_long_add(m->nr_alloc, &hm_stats.frees);
	atomic_long_sub(m->reserved, &hm_stats.live_pages);
	atomic_long_dec(&hm_stats.live_mappings);
	kvfree(m->block_start);
	kvfree(m->pages);
	kfree(m);
}

static void hm_mapping_put(struct hm_mapping *m)
{
	kref_put(&m->kref, hm_mapping_release);
}

static void hm_vm_open(struct vm_area_struct *vma)
{
	struct hm_mapping *m = vma->vm_private_data;

	kref_get(&m->kref);
}

static void hm_vm_close(struct vm_area_struct *vma)
{
	hm_mapping_put(vma->vm_private_data);
}

/* Index into m->pages of the page mapped at addr (vm_pgoff moves on split). */
static unsigned long hm_page_index(struct vm_area_struct *vma,
				   unsigned long addr)
{
	return vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT);
}

/* Only fault mode maps from here; in the other modes a missing pte is gone
 * for good (zapped), so the touch gets SIGBUS as without a fault handler.
 */
static vm_fault_t hm_vm_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct hm_mapping *m = vma->vm_private_data;
	unsigned long idx = vmf->pgoff;
	vm_fault_t ret;

	if (m->mode != HYBRIDMEM_MODE_FAULT || idx >= m->npages)
		return VM_FAULT_SIGBUS;
	if (m->fail_at >= 0 && idx == (unsigned long)m->fail_at) {
		pr_info_ratelimited("fault at page %lu (%px) refused: fail_at\n",
				    idx, (void *)vmf->address);
		return VM_FAULT_SIGBUS;
	}
	ret = vmf_insert_pfn(vma, vmf->address, page_to_pfn(m->pages[idx]));
	if (ret == VM_FAULT_NOPAGE) {
		atomic_long_inc(&hm_stats.faults);
		/* %px: a user address, as in the notes; no kernel pointer. */
		if (atomic_dec_if_positive(&m->fault_log_left) >= 0)
			pr_info("fault-in page %lu at %px\n", idx,
				(void *)vmf->address);
		else
			atomic_long_inc(&m->fault_log_suppressed);
	}
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

/* Zeroed: these pages go to user space. */
#define HM_GFP		(GFP_KERNEL | __GFP_ZERO)

static int hm_alloc_single(struct hm_mapping *m)
{
	while (m->nr_alloc < m->npages) {
		struct page *page = alloc_page(HM_GFP);

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
			m->pages[m->nr_alloc++] = nth_page(page, j);
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

static void hm_log_inserted(struct hm_map_ctx *c, unsigned long i)
{
	/* %px: a user address, printed as the notes did, no kernel pointer. */
	if (hm_log_page(&c->log))
		pr_info("inserted page %d at %px\n", (int)i,
			(void *)hm_addr(c, i));
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
		if (hm_fail_here(c->m, i))
			return hm_map_fail(c, i, i, -ENOMEM);
		err = hm_remap_one(c, i, 1);
		/* 6.1 does not zap a partial remap itself: include page i. */
		if (err)
			return hm_map_fail(c, i, i + 1, err);
		hm_log_inserted(c, i);
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

	hm_log_init(&blocks);
	for (i = 0; i < m->npages && !err; i = end) {
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
				hm_log_inserted(c, i);
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
		if (hm_fail_here(c->m, i))
			return hm_map_fail(c, i, i, -ENOMEM);
		/* Takes a page reference of its own; ours stays in m. */
		err = vm_insert_page(c->vma, hm_addr(c, i), c->m->pages[i]);
		if (err)
			return hm_map_fail(c, i, i, err);
		hm_log_inserted(c, i);
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
		err = hm_vm_insert_pages(c->vma, c->vma->vm_start, m->pages,
					 &left);
	for (i = 0; i < n - left; i++)
		hm_log_inserted(c, i);
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
		hm_log_inserted(c, i);
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
			pr_info("mixed: vm_insert_page on a VM_PFNMAP vma: expect a kernel BUG\n");
			err = vm_insert_page(c->vma, hm_addr(c, i),
					     c->m->pages[i]);
		} else {
			err = hm_remap_one(c, i, 1);
		}
		if (err)
			return hm_map_fail(c, i, i + 1, err);
		hm_log_inserted(c, i);
	}
	return 0;
}

/*
 * zap_vma_ptes() one page at a time, as the notes do, with their log line.
 * Returns true when the calls could not have done anything: on current
 * kernels zap_vma_ptes() silently ignores a vma without VM_PFNMAP, which is
 * what vm_insert_page(s) leave (VM_MIXEDMAP), so those pages stay mapped.
 */
static bool hm_zap(struct vm_area_struct *vma, unsigned long start,
		   unsigned long nr)
{
	struct hm_log log;
	unsigned long i, addr;
	bool noop = !(vma->vm_flags & VM_PFNMAP);

	hm_log_init(&log);
	for (i = 0; i < nr; i++) {
		addr = start + i * PAGE_SIZE;
		/* The notes' text, spaces included: parsers match it. */
		if (hm_log_page(&log))
			pr_info(" zap_vma_ptes addr 0x%lx \n", addr);
		hm_zap_vma_ptes(vma, addr, PAGE_SIZE);
		cond_resched();
	}
	hm_log_flush(&log);
	atomic_long_add(nr, &hm_stats.zaps);
	if (nr && noop)
		pr_info("zap_vma_ptes had no effect at 0x%lx: vma is not VM_PFNMAP (%lu pages)\n",
			start, nr);
	return noop;
}

static struct hm_mapping *hm_mapping_alloc(unsigned long npages,
					   enum hybridmem_map_mode mode,
					   int fail)
{
	struct hm_mapping *m = kzalloc(sizeof(*m), GFP_KERNEL);

	if (!m)
		return NULL;
	kref_init(&m->kref);
	m->mode = mode;
	m->fail_at = fail;
	m->npages = npages;
	/* free_after_map hands its pages back at once: nothing stays live. */
	m->reserved = mode == HYBRIDMEM_MODE_FREE_AFTER_MAP ? 0 : npages;
	atomic_set(&m->fault_log_left,
		   min_t(unsigned int, READ_ONCE(log_pages), INT_MAX));
	atomic_long_set(&m->fault_log_suppressed, 0);
	m->pages = kvcalloc(npages, sizeof(*m->pages), GFP_KERNEL);
	if (mode == HYBRIDMEM_MODE_REMAP_CONTIG)
		m->block_start = kvcalloc(BITS_TO_LONGS(npages),
					  sizeof(unsigned long), GFP_KERNEL);
	if (!m->pages ||
	    (mode == HYBRIDMEM_MODE_REMAP_CONTIG && !m->block_start)) {
		kvfree(m->block_start);
		kvfree(m->pages);
		kfree(m);
		return NULL;
	}
	/* From here on hm_mapping_release() undoes the accounting. */
	atomic_long_inc(&hm_stats.live_mappings);
	return m;
}

/* Refusals of bad input: an errno and a line saying why, nothing else. */
#define hm_refuse(err, fmt, ...) \
	({ pr_info_ratelimited("mmap refused: " fmt "\n", ##__VA_ARGS__); \
	   (err); })

static int hm_mmap(struct file *filp, struct vm_area_struct *vma)
{
	struct hm_file *hf = filp->private_data;
	unsigned long npages = vma_pages(vma), cap;
	enum hybridmem_map_mode mode;
	struct hm_map_ctx c = { .vma = vma };
	struct hm_mapping *m;
	bool zap;
	int fail, err;

	pr_info("vma->vm_end %lu vm_start %lu len %lu pages %lu vm_pgoff %lu\n",
		vma->vm_end, vma->vm_start, vma->vm_end - vma->vm_start,
		npages, vma->vm_pgoff);

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
		return hm_refuse(-EINVAL, "MAP_PRIVATE is not supported");
	if (vma->vm_pgoff)
		return hm_refuse(-EINVAL, "offset %lu is not 0",
				 vma->vm_pgoff << PAGE_SHIFT);
	if (npages > READ_ONCE(max_pages))
		return hm_refuse(-EINVAL, "%lu pages is more than max_pages %lu",
				 npages, READ_ONCE(max_pages));
	if (mode == HYBRIDMEM_MODE_MIXED && !allow_bug)
		return hm_refuse(-EPERM,
				 "map_mode mixed would hit a kernel BUG in vm_insert_page; load with allow_bug=1 to let it");
	if (mode == HYBRIDMEM_MODE_MIXED && npages < 2)
		return hm_refuse(-EINVAL, "map_mode mixed needs 2 pages or more");
	if (hm_as_written(mode) && !allow_as_written)
		return hm_refuse(-EPERM,
				 "map_mode %s is the notes' use-after-free or leak; load with allow_as_written=1 to let it",
				 hm_mode_names[mode]);

	/* Reserve against the global cap before allocating anything. */
	cap = READ_ONCE(max_total_pages);
	if (atomic_long_add_return(npages, &hm_stats.live_pages) > cap) {
		atomic_long_sub(npages, &hm_stats.live_pages);
		return hm_refuse(-ENOMEM,
				 "%lu more pages would pass max_total_pages %lu",
				 npages, cap);
	}
	m = hm_mapping_alloc(npages, mode, fail);
	if (!m) {
		atomic_long_sub(npages, &hm_stats.live_pages);
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

	/*
	 * Never growable by mremap; kept out of core dumps.  remap_pfn_range
	 * sets the same flags (plus VM_IO|VM_PFNMAP) itself; fault mode sets
	 * them up front for vmf_insert_pfn().
	 */
	hm_vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	if (mode == HYBRIDMEM_MODE_FAULT)
		hm_vm_flags_set(vma, VM_PFNMAP | VM_IO);

	hm_log_init(&c.log);
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
	pr_info("completed inserting %lu pages\n",
		mode == HYBRIDMEM_MODE_FAULT ? 0 : npages);

	if (zap)
		hm_zap(vma, vma->vm_start, npages);

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
	pr_info("map failed at page %d: error %d\n", (int)c.failed, err);
	if (c.zap)
		hm_zap(vma, vma->vm_start, c.zap);
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
	filp->private_data = hf;
	return 0;
}

/* Mappings do not point at hm_file, and every vma holds the file anyway. */
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
	info.max_pages = READ_ONCE(max_pages);
	info.max_total_pages = READ_ONCE(max_total_pages);
	info.log_pages = READ_ONCE(log_pages);
	return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
}

static long hm_ioctl_set_mode(struct hm_file *hf, void __user *uarg)
{
	struct hybridmem_mode mode;

	if (copy_from_user(&mode, uarg, sizeof(mode)))
		return -EFAULT;
	if (mode.map_mode >= HYBRIDMEM_MODE_COUNT || mode.zap_after_map > 1 ||
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
 * them again.  Called with the mmap lock held for writing.
 */
static int hm_remap_range(struct vm_area_struct *vma, struct hm_mapping *m,
			  unsigned long addr, unsigned long first,
			  unsigned long nr)
{
	struct hm_log log;
	unsigned long i, a;
	int err;

	/*
	 * Faults under the per-VMA lock must not see the range between the
	 * zap and the remap (a spurious SIGBUS) or half zeroed (fault mode).
	 */
	hm_vma_start_write(vma);
	/* remap_pte_range() BUG_ONs on a present pte: empty the range. */
	hm_zap_vma_ptes(vma, addr, nr * PAGE_SIZE);
	atomic_long_add(nr, &hm_stats.zaps);

	hm_log_init(&log);
	for (i = 0; i < nr; i++) {
		a = addr + i * PAGE_SIZE;
		clear_highpage(m->pages[first + i]);
		/* Fault mode: the next touch maps the page in again. */
		if (m->mode != HYBRIDMEM_MODE_FAULT) {
			err = remap_pfn_range(vma, a,
					      page_to_pfn(m->pages[first + i]),
					      PAGE_SIZE, vma->vm_page_prot);
			if (err) {
				hm_log_flush(&log);
				pr_info("remap failed at page %lu: error %d\n",
					first + i, err);
				hm_zap_vma_ptes(vma, addr, (i + 1) * PAGE_SIZE);
				atomic_long_add(i + 1, &hm_stats.zaps);
				return err;
			}
		}
		if (hm_log_page(&log))
			pr_info("remap page %lu at %px\n", first + i,
				(void *)a);
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
	struct mm_struct *mm = current->mm;
	struct hybridmem_range r;
	struct vm_area_struct *vma;
	struct hm_mapping *m;
	unsigned long addr, len, first, nr;
	long err = 0;

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
		if (hm_mmap_write_lock_killable(mm))
			return -EINTR;
	} else {
		hm_mmap_read_lock(mm);
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
		if (hm_zap(vma, addr, nr))
			r.flags |= HYBRIDMEM_RANGE_NOOP;
	} else if (m->mode == HYBRIDMEM_MODE_INSERT_PAGE ||
		   m->mode == HYBRIDMEM_MODE_INSERT_PAGES) {
		pr_info("remap refused at 0x%lx: map_mode %s mapping: zap_vma_ptes cannot empty it and vm_insert_page on a present pte is -EBUSY\n",
			addr, hm_mode_names[m->mode]);
		err = -EINVAL;
	} else if (hm_as_written(m->mode)) {
		pr_info_ratelimited("remap refused at 0x%lx: map_mode %s mapping: the module does not own its pages\n",
				    addr, hm_mode_names[m->mode]);
		err = -EINVAL;
	} else {
		err = hm_remap_range(vma, m, addr, first, nr);
	}
	r.pages = err ? 0 : nr;
unlock:
	if (remap)
		hm_mmap_write_unlock(mm);
	else
		hm_mmap_read_unlock(mm);
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

	if (!max_total_pages)
		max_total_pages = min(HM_DEFAULT_MAX_TOTAL_PAGES,
				      totalram_pages() / 2);

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
