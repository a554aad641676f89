// SPDX-License-Identifier: GPL-2.0
/*
 * hm-stress: runs one `hybridmem stress` program against /dev/devKex (or
 * the node given by HM_STRESS_NODE).  Node cannot fork with a live mapping,
 * so the operations run here.  The program is text, one operation a line:
 *
 *   hybridmem-stress 1
 *   procs P threads T
 *   W OP A B C          worker W = process W / T, thread W % T
 *
 * Each process has fd slots and map slots shared by its threads.  Every
 * mapping lives inside its slot's window of an address-space arena reserved
 * PROT_NONE at start, and every unmapped range is reserved again at once:
 * a pointer this program touches never leaves the arena, so a stale slot
 * (another thread unmapped it) costs a guarded SIGSEGV, never memory of
 * the program's own.  Touches run under a SIGBUS/SIGSEGV guard.
 *
 * collide pins two operations on one mapping to the same moment (see
 * collide()): a race window the random schedule rarely lands in.
 *
 * Prints "count OP ok N" / "count OP ERRNO N" / "count OP SIGBUS N"
 * lines, then "result: done".  Exit 0 when the program ran to its end.
 *
 * Any other driver (HM_STRESS_GENERIC=rw or r, its declared protections):
 * only generic operations run (SET_MODE, ZAP, REMAP and GET_STATS are
 * hybridmem_test's and are skipped), mmap uses HM_STRESS_MAP's
 * OFFSET:LENGTH and maps at most LENGTH.  With HM_STRESS_FDS=3,4,5 the fds
 * come from the caller (a recipe made them with ioctls): open dups one,
 * and each process closes them all before it exits with its mappings.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "hybridmem_uapi.h"

#define MAX_WORKERS	64
#define MAX_OPS		100000
#define FD_SLOTS	3
#define MAP_SLOTS	6
#define SLOT_PAGES	64	/* window per map slot: mappings of 1..32 pages, grow room */
#define MAX_CHILDREN	256

enum op {
	OP_OPEN, OP_CLOSE, OP_SETMODE, OP_MMAP, OP_TOUCH, OP_MUNMAP, OP_MREMAP_MOVE,
	OP_MREMAP_GROW, OP_MPROTECT, OP_MADVISE, OP_ZAP, OP_REMAP, OP_FORK, OP_STATS,
	OP_SLEEP, OP_COLLIDE, OP_COUNT,
	ROW_MAPPED = OP_COUNT,	/* successful mmaps, by map mode */
	ROWS
};

static const char *const op_names[ROWS] = {
	"open", "close", "setmode", "mmap", "touch", "munmap", "mremap-move",
	"mremap-grow", "mprotect", "madvise", "zap", "remap", "fork", "stats",
	"sleep", "collide", "mapped",
};

static const char *const mode_names[] = {
	"remap_pfn", "insert_page", "insert_pages", "remap_contig", "fault",
	"mixed", "free_after_map", "leak_on_error",
};

struct insn {
	int op;
	long a, b, c;
};

struct worker {
	struct insn *insns;
	int n, cap;
};

static struct worker workers[MAX_WORKERS];
static int procs = 1, threads = 1;
static size_t page;
static const char *node = HYBRIDMEM_NODE_PATH;

/* A driver other than hybridmem_test: where to map, how much, and how. */
static int generic, readonly_target;
static int nsources, sources[FD_SLOTS];
static long src_off[FD_SLOTS], src_pages[FD_SLOTS];

/* Counts from every process, in a shared anonymous mapping. */
#define ERRNOS 140
#define OUT_OK 0
#define OUT_SIGBUS (ERRNOS + 1)
#define OUT_SIGSEGV (ERRNOS + 2)
/* An operation the program's state gave nothing to act on (mremap-move only). */
#define OUT_SKIPPED (ERRNOS + 3)
#define OUTCOMES (ERRNOS + 4)
static _Atomic long (*counts)[OUTCOMES];

/* One process's slots; the lock guards the tables, not the syscalls. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int fds[FD_SLOTS];
static int fd_mode[FD_SLOTS];	/* the map mode SET_MODE last gave it */
static int fd_src[FD_SLOTS];	/* generic: the source (offset, length) it came from */
static struct {
	int used;
	int fd;		/* the fd it was mapped through (ZAP/REMAP use it) */
	size_t pages;
} maps[MAP_SLOTS];
static char *arena;
static char *hole;	/* collide's 2 MiB-aligned hole between two reservations */
static pthread_mutex_t hole_lock = PTHREAD_MUTEX_INITIALIZER;
#define HOLE_SIZE	(2UL << 20)
static pid_t children[MAX_CHILDREN];
static int nchildren;

static __thread sigjmp_buf guard_jb;
static __thread volatile sig_atomic_t guard_armed;
static __thread volatile int guard_sig;

static void on_fault(int sig)
{
	if (guard_armed) {
		guard_armed = 0;
		guard_sig = sig;
		siglongjmp(guard_jb, 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void count(int op, int outcome)
{
	atomic_fetch_add(&counts[op][outcome], 1);
}

static void count_ret(int op, long r)
{
	count(op, r < 0 ? (errno < ERRNOS ? errno : ERRNOS) : OUT_OK);
}

static char *window(int slot)
{
	return arena + (size_t)slot * SLOT_PAGES * page;
}

/* Whether the vma holding p maps the device node (/proc/self/maps names it). */
static int device_vma(const void *p)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	int found = 0;

	if (!f)
		return 1;	/* cannot tell: count it, the test looks */
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		unsigned long ino = 0;

		if (sscanf(line, "%lx-%lx %*s %*s %*s %lu", &lo, &hi, &ino) >= 2 && (unsigned long)p >= lo && (unsigned long)p < hi) {
			/* Another driver's vma may name anything: it is the one with an inode (the arena's are anonymous). */
			found = generic ? ino != 0 : strstr(line, node) != NULL;
			break;
		}
	}
	fclose(f);
	return found;
}

/* Put PROT_NONE reservation back over [p, p + len): the range stays ours. */
static void reserve(char *p, size_t len)
{
	if (mmap(p, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED) {
		perror("hm-stress: re-reserving the arena");
		_exit(3);
	}
}

/* Write each page's tag, read it back; a fault on a page counts and moves on. */
static int touch(char *base, size_t pages, int write, unsigned long seed)
{
	volatile int faults = 0;

	for (volatile size_t i = 0; i < pages; i++) {
		volatile uint64_t *w = (volatile uint64_t *)(base + i * page);

		guard_armed = 1;
		if (sigsetjmp(guard_jb, 1)) {
			faults = guard_sig;
			continue;
		}
		if (write)
			w[0] = (uintptr_t)w + seed;
		(void)w[page / 16];
		guard_armed = 0;
	}
	return faults;
}

static void touch_counted(int op, char *base, size_t pages, int write, unsigned long seed)
{
	int sig = touch(base, pages, write, seed);

	count(op, sig == SIGBUS ? OUT_SIGBUS : sig == SIGSEGV ? OUT_SIGSEGV : OUT_OK);
}

static void reap(int block)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < nchildren;) {
		if (waitpid(children[i], NULL, block ? 0 : WNOHANG) == children[i] || (block && errno == ECHILD)) {
			children[i] = children[--nchildren];
			continue;
		}
		i++;
	}
	pthread_mutex_unlock(&lock);
}

/*
 * collide: this thread maps pages of fd alone in the hole (its own page
 * table: an munmap frees that too), writes them, then at a barrier does
 * one of ZAP, REMAP, touch, MADV_DONTNEED over them while a partner thread
 * does one of munmap (all), munmap (upper half: a split), mprotect (upper
 * half), fork (the child exits at once), after a jitter.  COLLIDE_ROUNDS
 * rounds, each on a fresh mapping, the jitter swept over 0..7 x 20 us from
 * a start the program gives: which one lines up differs by kernel and load.
 */
#define COLLIDE_ROUNDS	8

struct pair {
	_Atomic int ready, go, done;
	int kind;
	size_t pages;
	long jitter;	/* the first round's, in 20 us steps */
};

static void spin_until(_Atomic int *v, int want)
{
	for (long i = 0; atomic_load(v) < want; i++)
		if (i > 200)
			sched_yield();
}

static void busy_us(long us)
{
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000 < us);
}

static void *partner_main(void *arg)
{
	struct pair *p = arg;
	size_t half = p->pages / 2;

	for (int r = 1; r <= COLLIDE_ROUNDS; r++) {
		atomic_store(&p->ready, r);
		spin_until(&p->go, r);
		if (atomic_load(&p->go) > COLLIDE_ROUNDS)
			break;
		busy_us((p->jitter + r) % 8 * 20);
		switch (p->kind) {
		case 0:
			munmap(hole, p->pages * page);
			break;
		case 1:
			munmap(hole + half * page, (p->pages - half) * page);
			break;
		case 2:
			mprotect(hole + half * page, (p->pages - half) * page, PROT_READ);
			break;
		default: {
			pid_t pid = fork();

			if (pid == 0)
				_exit(0);
			if (pid > 0)
				waitpid(pid, NULL, 0);
		}
		}
		atomic_store(&p->done, r);
	}
	return NULL;
}

static void collide(int fd, long kind, long c, unsigned long seed)
{
	struct pair p = { .kind = (int)(kind % 4), .pages = 1 + (size_t)(c & 63), .jitter = (c >> 6) & 7 };
	int mine = (int)(kind / 4 % 4);
	pthread_t tid;
	int r;

	if (pthread_mutex_trylock(&hole_lock))
		return;	/* another thread of this process is colliding */
	if (pthread_create(&tid, NULL, partner_main, &p)) {
		pthread_mutex_unlock(&hole_lock);
		return;
	}
	for (r = 1; r <= COLLIDE_ROUNDS; r++) {
		struct hybridmem_range rg = { .addr = (uintptr_t)hole, .length = p.pages * page };
		void *m = mmap(hole, p.pages * page, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);

		if (m == MAP_FAILED || m != hole) {
			count_ret(OP_COLLIDE, -1);
			if (m != MAP_FAILED)
				munmap(m, p.pages * page);	/* a kernel without MAP_FIXED_NOREPLACE put it elsewhere */
			break;
		}
		touch(hole, p.pages, 1, seed);
		spin_until(&p.ready, r);
		atomic_store(&p.go, r);
		switch (mine) {
		case 0:
		case 1:
			count_ret(OP_COLLIDE, ioctl(fd, mine ? HYBRIDMEM_IOC_REMAP : HYBRIDMEM_IOC_ZAP, &rg));
			break;
		case 2:
			touch_counted(OP_COLLIDE, hole, p.pages, 1, seed);
			break;
		default:
			count_ret(OP_COLLIDE, madvise(hole, p.pages * page, MADV_DONTNEED));
		}
		spin_until(&p.done, r);
		munmap(hole, HOLE_SIZE);	/* what the partner left: the hole is empty again */
	}
	atomic_store(&p.go, COLLIDE_ROUNDS + 1);
	pthread_join(tid, NULL);
	pthread_mutex_unlock(&hole_lock);
}

static void run_insn(const struct insn *in, unsigned long seed)
{
	long a = in->a, b = in->b, c = in->c;
	int fd, slot, used;
	size_t pages;
	long r;

	switch (in->op) {
	case OP_OPEN:
		pthread_mutex_lock(&lock);
		if (fds[a % FD_SLOTS] < 0) {
			fd_src[a % FD_SLOTS] = nsources ? (int)(a % nsources) : 0;
			/* An inherited fd is dup'ed: the same file, so the same buffer the recipe made. */
			fds[a % FD_SLOTS] = nsources ? fcntl(sources[a % nsources], F_DUPFD_CLOEXEC, 0) : open(node, O_RDWR | O_CLOEXEC);
			fd_mode[a % FD_SLOTS] = 0;	/* the module's default map_mode: remap_pfn */
			count_ret(in->op, fds[a % FD_SLOTS]);
		}
		pthread_mutex_unlock(&lock);
		return;
	case OP_CLOSE:
		/* Close while mapped: the mappings hold the file. */
		pthread_mutex_lock(&lock);
		fd = fds[a % FD_SLOTS];
		fds[a % FD_SLOTS] = -1;
		pthread_mutex_unlock(&lock);
		if (fd >= 0)
			count_ret(in->op, close(fd));
		return;
	case OP_SETMODE: {
		struct hybridmem_mode m = { .map_mode = (__u32)b, .zap_after_map = (__u32)(c & 1), .fail_at = (c >> 1) ? (__s32)((c >> 1) - 1) : -1 };

		if (generic)
			return;	/* hybridmem_test's ioctl: never sent to another driver */
		fd = fds[a % FD_SLOTS];
		if (fd >= 0) {
			r = ioctl(fd, HYBRIDMEM_IOC_SET_MODE, &m);
			if (!r)
				fd_mode[a % FD_SLOTS] = (int)b;
			count_ret(in->op, r);
		}
		return;
	}
	case OP_COLLIDE:
		pthread_mutex_lock(&lock);
		fd = fds[a % FD_SLOTS];
		pthread_mutex_unlock(&lock);
		if (fd >= 0 && hole)
			collide(fd, b, c, seed);
		return;
	case OP_MMAP:
		slot = a % MAP_SLOTS;
		pthread_mutex_lock(&lock);
		fd = fds[b % FD_SLOTS];
		int mode = fd_mode[b % FD_SLOTS];
		int src = fd_src[b % FD_SLOTS];

		if (maps[slot].used || fd < 0) {
			pthread_mutex_unlock(&lock);
			return;
		}
		maps[slot].used = 1;
		pthread_mutex_unlock(&lock);
		pages = (size_t)c;
		/* Another driver: at its offset, at most its length, with its protections. */
		if (generic && pages > (size_t)src_pages[src])
			pages = (size_t)src_pages[src];
		r = (long)mmap(window(slot), pages * page, readonly_target ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd,
			       generic ? (off_t)src_off[src] : 0);
		count_ret(in->op, r == (long)MAP_FAILED ? -1 : 0);
		pthread_mutex_lock(&lock);
		if (r == (long)MAP_FAILED) {
			/* A failed MAP_FIXED may have unmapped what was there. */
			reserve(window(slot), SLOT_PAGES * page);
			maps[slot].used = 0;
		} else {
			maps[slot].fd = fd;
			maps[slot].pages = pages;
			if (mode >= 0 && mode < 8 && !generic)
				count(ROW_MAPPED, mode);
		}
		pthread_mutex_unlock(&lock);
		return;
	default:
		break;
	}

	slot = a % MAP_SLOTS;
	pthread_mutex_lock(&lock);
	used = maps[slot].used && maps[slot].pages;
	pages = maps[slot].pages;
	fd = maps[slot].fd;
	pthread_mutex_unlock(&lock);
	if (in->op == OP_FORK || in->op == OP_STATS || in->op == OP_SLEEP)
		used = 1;
	if (generic && (in->op == OP_ZAP || in->op == OP_REMAP || in->op == OP_STATS))
		return;	/* hybridmem_test's ioctls: never sent to another driver */
	if (!used) {
		if (in->op == OP_MREMAP_MOVE)
			count(in->op, OUT_SKIPPED);
		return;
	}

	/* Ranges: b = first page, c & 63 = pages (clamped), c >> 6 = which prot/advice. */
	size_t first = pages ? (size_t)b % pages : 0;
	size_t n = (c & 63) < 1 ? 1 : (size_t)(c & 63);

	if (first + n > pages)
		n = pages - first;
	char *at = window(slot) + first * page;

	switch (in->op) {
	case OP_TOUCH:
		touch_counted(in->op, window(slot), pages, (int)(b & 1) && !readonly_target, seed);
		return;
	case OP_MUNMAP:
		r = munmap(at, n * page);
		count_ret(in->op, r);
		if (!r)
			reserve(at, n * page);
		if (!r && first == 0 && n == pages) {
			pthread_mutex_lock(&lock);
			maps[slot].used = 0;
			maps[slot].pages = 0;
			pthread_mutex_unlock(&lock);
		}
		return;
	case OP_MREMAP_MOVE: {
		int to = (int)(c % MAP_SLOTS);

		pthread_mutex_lock(&lock);
		/* The first free slot from c on: a busy one would skip most moves of a program that maps a lot. */
		for (int i = 0; i < MAP_SLOTS && (to == slot || maps[to].used); i++)
			to = (to + 1) % MAP_SLOTS;
		if (to == slot || maps[to].used) {
			pthread_mutex_unlock(&lock);
			count(in->op, OUT_SKIPPED);
			return;
		}
		maps[to].used = 1;
		maps[to].pages = 0;
		pthread_mutex_unlock(&lock);
		r = (long)mremap(window(slot), pages * page, pages * page, MREMAP_MAYMOVE | MREMAP_FIXED, window(to));
		count_ret(in->op, r == (long)MAP_FAILED ? -1 : 0);
		pthread_mutex_lock(&lock);
		if (r == (long)MAP_FAILED) {
			maps[to].used = 0;
		} else {
			reserve(window(slot), pages * page);
			maps[to].pages = pages;
			maps[to].fd = fd;
			maps[slot].used = 0;
			maps[slot].pages = 0;
		}
		pthread_mutex_unlock(&lock);
		return;
	}
	case OP_MREMAP_GROW: {
		/* VM_DONTEXPAND: refused in place and moving. */
		size_t grown = (pages + 1 + (size_t)b % 8) * page;

		/*
		 * Other threads' munmaps may have left only our PROT_NONE
		 * reservation at this slot; that one may grow (and move), so
		 * only a grow of the device's own vma is counted.
		 */
		if (!device_vma(window(slot)))
			return;
		r = (long)mremap(window(slot), pages * page, grown, c & 1 ? MREMAP_MAYMOVE : 0);
		if (r != (long)MAP_FAILED && !device_vma((void *)r)) {
			if ((char *)r == window(slot)) {
				mremap(window(slot), grown, pages * page, 0);
			} else {
				munmap((void *)r, grown);
				reserve(window(slot), pages * page);
			}
			return;
		}
		count_ret(in->op, r == (long)MAP_FAILED ? -1 : 0);
		if (generic && r != (long)MAP_FAILED) {
			/* Another driver may allow it (a file does): undo it, the slot keeps its size. */
			if ((char *)r == window(slot)) {
				mremap(window(slot), grown, pages * page, 0);
			} else {
				munmap((void *)r, grown);
				reserve(window(slot), pages * page);
				pthread_mutex_lock(&lock);
				maps[slot].used = 0;
				maps[slot].pages = 0;
				pthread_mutex_unlock(&lock);
			}
			return;
		}
		if (r != (long)MAP_FAILED && (char *)r != window(slot)) {
			/* Grown and moved out of the arena: should not happen; end it here. */
			munmap((void *)r, grown);
			fprintf(stderr, "hm-stress: mremap grew a VM_DONTEXPAND mapping\n");
		}
		return;
	}
	case OP_MPROTECT: {
		static const int prots[] = { PROT_READ, PROT_READ | PROT_WRITE, PROT_NONE };
		int prot = prots[(c >> 6) % 3];

		count_ret(in->op, mprotect(at, n * page, readonly_target ? prot & ~PROT_WRITE : prot));
		return;
	}
	case OP_MADVISE: {
		static const int advs[] = { MADV_DONTNEED, MADV_WILLNEED, MADV_DONTFORK, MADV_DOFORK, MADV_NORMAL, MADV_RANDOM, MADV_COLD, MADV_PAGEOUT };

		count_ret(in->op, madvise(at, n * page, advs[(c >> 6) % 8]));
		return;
	}
	case OP_ZAP:
	case OP_REMAP: {
		struct hybridmem_range rg = { .addr = (uintptr_t)at, .length = n * page };

		count_ret(in->op, ioctl(fd, in->op == OP_ZAP ? HYBRIDMEM_IOC_ZAP : HYBRIDMEM_IOC_REMAP, &rg));
		return;
	}
	case OP_FORK: {
		/* The child touches map slot a, lives b ms, may unmap part, exits. */
		pid_t pid = fork();

		if (pid == 0) {
			int s = (int)(a % MAP_SLOTS);
			size_t p = maps[s].used ? maps[s].pages : 0;

			if (p)
				touch(window(s), p, !readonly_target, seed + 1);
			if (b)
				usleep((useconds_t)(b * 1000));
			if (p && (c & 1))
				munmap(window(s), page);
			if (p)
				touch(window(s), p, 0, seed + 1);
			_exit(0);
		}
		count_ret(in->op, pid);
		if (pid > 0) {
			pthread_mutex_lock(&lock);
			if (nchildren < MAX_CHILDREN)
				children[nchildren++] = pid;
			pthread_mutex_unlock(&lock);
			if (nchildren >= MAX_CHILDREN)
				reap(1);
			else
				reap(0);
		}
		return;
	}
	case OP_STATS: {
		struct hybridmem_stats st;
		int any = -1;

		pthread_mutex_lock(&lock);
		for (int i = 0; i < FD_SLOTS && any < 0; i++)
			any = fds[i];
		pthread_mutex_unlock(&lock);
		if (any >= 0)
			count_ret(in->op, ioctl(any, HYBRIDMEM_IOC_GET_STATS, &st));
		return;
	}
	case OP_SLEEP:
		usleep((useconds_t)(a % 50) * 1000);
		count(in->op, OUT_OK);
		return;
	default:
		return;
	}
}

static void *thread_main(void *arg)
{
	struct worker *w = arg;
	unsigned long seed = (unsigned long)(w - workers) * 0x9e3779b97f4a7c15UL;

	for (int i = 0; i < w->n; i++)
		run_insn(&w->insns[i], seed + (unsigned long)i);
	return NULL;
}

static void process_main(int p)
{
	pthread_t tids[MAX_WORKERS];

	for (int i = 0; i < FD_SLOTS; i++)
		fds[i] = -1;
	arena = mmap(NULL, (size_t)MAP_SLOTS * SLOT_PAGES * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (arena == MAP_FAILED) {
		perror("hm-stress: arena");
		_exit(3);
	}
	/* collide's hole: 2 MiB aligned, reserved on both sides, so only collide maps there. */
	char *guard = mmap(NULL, 4 * HOLE_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (guard != MAP_FAILED) {
		hole = (char *)(((uintptr_t)guard + 2 * HOLE_SIZE - 1) & ~(HOLE_SIZE - 1));
		munmap(hole, HOLE_SIZE);
	}
	for (int t = 0; t < threads; t++)
		if (pthread_create(&tids[t], NULL, thread_main, &workers[p * threads + t])) {
			fprintf(stderr, "hm-stress: pthread_create failed\n");
			_exit(3);
		}
	for (int t = 0; t < threads; t++)
		pthread_join(tids[t], NULL);
	reap(1);
	/*
	 * Inherited fds: close every one first, so the last close of the
	 * recipe's file happens while mapped (exit unmaps before it closes).
	 */
	for (int i = 0; nsources && i < FD_SLOTS; i++) {
		if (i < nsources)
			close(sources[i]);
		if (fds[i] >= 0)
			close(fds[i]);
	}
	/* Exit with whatever is still open and mapped: exit is an operation too. */
	_exit(0);
}

static int parse(FILE *f)
{
	char line[256], name[32];
	int version = 0;

	if (!fgets(line, sizeof(line), f) || sscanf(line, "hybridmem-stress %d", &version) != 1 || version != 1)
		return -1;
	if (!fgets(line, sizeof(line), f) || sscanf(line, "procs %d threads %d", &procs, &threads) != 2 ||
	    procs < 1 || threads < 1 || procs * threads > MAX_WORKERS)
		return -1;
	char *text = NULL;
	size_t cap = 0;

	/* getline: a reproducer's comment lines (the failure's summary) may be long. */
	while (getline(&text, &cap, f) > 0) {
		struct insn in = { 0 };
		int w, op;

		if (text[0] == '#' || text[0] == '\n')
			continue;
		snprintf(line, sizeof(line), "%s", text);
		if (sscanf(line, "%d %31s %ld %ld %ld", &w, name, &in.a, &in.b, &in.c) < 2 || w < 0 || w >= procs * threads)
			return -1;
		for (op = 0; op < OP_COUNT && strcmp(op_names[op], name); op++)
			;
		if (op == OP_COUNT || in.a < 0 || in.b < 0 || in.c < 0)
			return -1;
		in.op = op;
		struct worker *wk = &workers[w];

		if (wk->n == wk->cap) {
			wk->cap = wk->cap ? wk->cap * 2 : 64;
			if (wk->cap > MAX_OPS || !(wk->insns = realloc(wk->insns, (size_t)wk->cap * sizeof(*wk->insns))))
				return -1;
		}
		wk->insns[wk->n++] = in;
	}
	free(text);
	return 0;
}

/*
 * HM_STRESS_GENERIC=rw|r, HM_STRESS_MAP=OFF:LEN[,OFF:LEN...] (bytes, one
 * per source), HM_STRESS_FDS=FD[,FD...] (inherited; else the node is opened).
 */
static int target_from_env(void)
{
	const char *g = getenv("HM_STRESS_GENERIC"), *m = getenv("HM_STRESS_MAP"), *f = getenv("HM_STRESS_FDS");
	int nmaps = 0, n;

	if (!g)
		return 0;
	generic = 1;
	if (strcmp(g, "r") && strcmp(g, "rw"))
		return -1;
	readonly_target = !strcmp(g, "r");
	for (; m && *m && nmaps < FD_SLOTS; nmaps++) {
		unsigned long long off, len;

		if (sscanf(m, "%llu:%llu%n", &off, &len, &n) != 2 || !len || len % page || off % page)
			return -1;
		src_off[nmaps] = (long)off;
		src_pages[nmaps] = (long)(len / page);
		m += n;
		if (*m == ',')
			m++;
	}
	if (!nmaps)
		return -1;
	for (; f && *f && nsources < FD_SLOTS; nsources++) {
		if (sscanf(f, "%d%n", &sources[nsources], &n) != 1 || sources[nsources] < 0 || fcntl(sources[nsources], F_GETFD) < 0)
			return -1;
		f += n;
		if (*f == ',')
			f++;
	}
	if (nsources && nsources != nmaps)
		return -1;
	/* One map for the node: every fd slot maps the same. */
	for (int i = nmaps; i < FD_SLOTS; i++) {
		src_off[i] = src_off[0];
		src_pages[i] = src_pages[0];
	}
	return 0;
}

static const char *errno_name(int e)
{
	static char buf[16];

	switch (e) {
	case EINVAL: return "EINVAL";
	case ENOMEM: return "ENOMEM";
	case EPERM: return "EPERM";
	case EBADF: return "EBADF";
	case EFAULT: return "EFAULT";
	case EINTR: return "EINTR";
	case EBUSY: return "EBUSY";
	case EAGAIN: return "EAGAIN";
	case ENOTTY: return "ENOTTY";
	case ENODEV: return "ENODEV";
	case ENOENT: return "ENOENT";
	case EACCES: return "EACCES";
	default:
		snprintf(buf, sizeof(buf), "errno%d", e);
		return buf;
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_fault, .sa_flags = SA_NODEFER };
	FILE *f;
	pid_t pids[MAX_WORKERS];
	int bad = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: hm-stress PROGRAM\n");
		return 2;
	}
	if (getenv("HM_STRESS_NODE"))
		node = getenv("HM_STRESS_NODE");
	page = (size_t)sysconf(_SC_PAGESIZE);
	if (target_from_env()) {
		fprintf(stderr, "hm-stress: HM_STRESS_GENERIC, HM_STRESS_MAP or HM_STRESS_FDS is malformed\n");
		return 2;
	}
	f = fopen(argv[1], "r");
	if (!f || parse(f)) {
		fprintf(stderr, "hm-stress: %s is not a hybridmem-stress program\n", argv[1]);
		return 2;
	}
	fclose(f);
	counts = mmap(NULL, sizeof(*counts) * ROWS, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (counts == MAP_FAILED)
		return 3;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int p = 0; p < procs; p++) {
		pids[p] = fork();
		if (pids[p] == 0)
			process_main(p);
		if (pids[p] < 0) {
			perror("hm-stress: fork");
			return 3;
		}
	}
	/* The workers hold the inherited fds now: theirs are the last references. */
	for (int i = 0; i < nsources; i++)
		close(sources[i]);
	for (int p = 0; p < procs; p++) {
		int status;

		if (waitpid(pids[p], &status, 0) != pids[p] || !WIFEXITED(status) || WEXITSTATUS(status)) {
			printf("process %d: %s %d\n", p, WIFSIGNALED(status) ? "killed by signal" : "exit status",
			       WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
			bad = 1;
		}
	}
	for (int op = 0; op < ROWS; op++)
		for (int o = 0; o < OUTCOMES; o++) {
			long v = counts[op][o];

			if (!v)
				continue;
			if (op == ROW_MAPPED) {
				printf("count mapped %s %ld\n", mode_names[o], v);
				continue;
			}
			printf("count %s %s %ld\n", op_names[op],
			       o == OUT_OK ? "ok" : o == OUT_SIGBUS ? "SIGBUS" : o == OUT_SIGSEGV ? "SIGSEGV" : o == OUT_SKIPPED ? "skipped" : errno_name(o), v);
		}
	printf("result: %s\n", bad ? "fail" : "done");
	return bad;
}
