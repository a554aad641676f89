/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints of hybridmem_test: the structured evidence of what the module
 * did to user page tables, one event per step, each with the pid of the task
 * that caused it (tracefs events/hybridmem/).  The kernel log keeps the
 * notes' lines for people; these are for programs.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM hybridmem

#if !defined(_HYBRIDMEM_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _HYBRIDMEM_TRACE_H

#include <linux/tracepoint.h>

/* An mmap passed validation and starts allocating and mapping. */
TRACE_EVENT(hybridmem_map,
	TP_PROTO(unsigned long start, unsigned long len, unsigned int mode),
	TP_ARGS(start, len, mode),
	TP_STRUCT__entry(
		__field(unsigned long, start)
		__field(unsigned long, len)
		__field(unsigned int, mode)
	),
	TP_fast_assign(
		__entry->start = start;
		__entry->len = len;
		__entry->mode = mode;
	),
	TP_printk("start=0x%lx len=%lu mode=%u",
		  __entry->start, __entry->len, __entry->mode)
);

/*
 * The mmap that started with hybridmem_map returns err.  pages: the pages
 * it mapped (0 in fault mode); on error, the index of the page that failed.
 */
TRACE_EVENT(hybridmem_map_end,
	TP_PROTO(unsigned long start, unsigned long pages, int err),
	TP_ARGS(start, pages, err),
	TP_STRUCT__entry(
		__field(unsigned long, start)
		__field(unsigned long, pages)
		__field(int, err)
	),
	TP_fast_assign(
		__entry->start = start;
		__entry->pages = pages;
		__entry->err = err;
	),
	TP_printk("start=0x%lx pages=%lu err=%d",
		  __entry->start, __entry->pages, __entry->err)
);

DECLARE_EVENT_CLASS(hybridmem_pte,
	TP_PROTO(unsigned long addr, unsigned long pfn, unsigned long index),
	TP_ARGS(addr, pfn, index),
	TP_STRUCT__entry(
		__field(unsigned long, addr)
		__field(unsigned long, pfn)
		__field(unsigned long, index)
	),
	TP_fast_assign(
		__entry->addr = addr;
		__entry->pfn = pfn;
		__entry->index = index;
	),
	TP_printk("addr=0x%lx pfn=0x%lx index=%lu",
		  __entry->addr, __entry->pfn, __entry->index)
);

/* mmap mapped page index at user address addr (pfn: the page's). */
DEFINE_EVENT(hybridmem_pte, hybridmem_page,
	TP_PROTO(unsigned long addr, unsigned long pfn, unsigned long index),
	TP_ARGS(addr, pfn, index)
);

/* The fault handler filled the pte at addr. */
DEFINE_EVENT(hybridmem_pte, hybridmem_fault,
	TP_PROTO(unsigned long addr, unsigned long pfn, unsigned long index),
	TP_ARGS(addr, pfn, index)
);

/* REMAP gave the page at addr fresh contents (and mapped it again). */
DEFINE_EVENT(hybridmem_pte, hybridmem_remap,
	TP_PROTO(unsigned long addr, unsigned long pfn, unsigned long index),
	TP_ARGS(addr, pfn, index)
);

/* zap_vma_ptes() over pages from addr; noop: the vma is not VM_PFNMAP. */
TRACE_EVENT(hybridmem_zap,
	TP_PROTO(unsigned long addr, unsigned long pages, bool noop),
	TP_ARGS(addr, pages, noop),
	TP_STRUCT__entry(
		__field(unsigned long, addr)
		__field(unsigned long, pages)
		__field(bool, noop)
	),
	TP_fast_assign(
		__entry->addr = addr;
		__entry->pages = pages;
		__entry->noop = noop;
	),
	TP_printk("addr=0x%lx pages=%lu noop=%d",
		  __entry->addr, __entry->pages, __entry->noop)
);

/* A mapping object gave its pages back to the page allocator. */
TRACE_EVENT(hybridmem_free,
	TP_PROTO(unsigned long pages),
	TP_ARGS(pages),
	TP_STRUCT__entry(
		__field(unsigned long, pages)
	),
	TP_fast_assign(
		__entry->pages = pages;
	),
	TP_printk("pages=%lu", __entry->pages)
);

#endif /* _HYBRIDMEM_TRACE_H */

/* Out of tree: define_trace.h finds this header beside the module. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE hybridmem_trace
#include <trace/define_trace.h>
