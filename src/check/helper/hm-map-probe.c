// SPDX-License-Identifier: GPL-2.0
/*
 * hm-map-probe: the parts of `hybridmem check` that Node cannot do with a
 * live mapping: fork(), munmap() of part of a mapping, and threads touching
 * one mapping while another thread maps and unmaps.  It works on an fd it
 * inherits (so recipe targets, opened through ioctls, work too) and prints
 * one "key: value" line per observation, then "result: ok" or
 * "result: fail <why>".  Exit status 0 for ok, 1 for fail, 2 for bad usage.
 *
 *   hm-map-probe fork     FD OFFSET LENGTH PAGESIZE   shared both ways across fork, child exits first
 *   hm-map-probe orphan   FD OFFSET LENGTH PAGESIZE   the parent exits, the child keeps mapping
 *   hm-map-probe partial  FD OFFSET LENGTH PAGESIZE   munmap head, middle and tail pages
 *   hm-map-probe threads  FD OFFSET LENGTH PAGESIZE N MILLISECONDS
 *   hm-map-probe procs    FD OFFSET LENGTH PAGESIZE N MILLISECONDS   N processes, each its own mapping
 *   hm-map-probe mremap   FD OFFSET LENGTH PAGESIZE   move the mapping (MREMAP_MAYMOVE | MREMAP_FIXED)
 *   hm-map-probe dontneed FD OFFSET LENGTH PAGESIZE   madvise(MADV_DONTNEED), then read every page
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
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int fd;
static off_t offset;
static size_t length, page;

static void *map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);

	if (p == MAP_FAILED) {
		printf("result: fail mmap %s\n", strerror(errno));
		exit(1);
	}
	printf("mapped-at: %p\n", p);
	return p;
}

/*
 * A marker in the caller's trace instance (HM_TRACE_MARKER names its
 * trace_marker file), ordered with the kernel's events: the caller's PFN
 * trace learns when this process's last use of the pages ended.
 */
static void mark(const char *label)
{
	const char *path = getenv("HM_TRACE_MARKER");
	char text[64];
	int m;

	if (!path)
		return;
	m = open(path, O_WRONLY);
	if (m < 0)
		return;
	snprintf(text, sizeof(text), "hybridmem: %s", label);
	if (write(m, text, strlen(text)) < 0)
		perror("trace_marker");
	close(m);
}

/* The address-tag pattern: every 64-bit word holds its byte offset + seed. */
static void tag(void *p, size_t from, size_t len, uint64_t seed)
{
	uint64_t *w = (uint64_t *)((char *)p + from);

	for (size_t i = 0; i < len / 8; i++)
		w[i] = from + i * 8 + seed;
}

static size_t check_tag(const void *p, size_t from, size_t len, uint64_t seed)
{
	const uint64_t *w = (const uint64_t *)((const char *)p + from);
	size_t bad = 0;

	for (size_t i = 0; i < len / 8; i++)
		bad += w[i] != from + i * 8 + seed;
	return bad;
}

/* The PFN of each page, from pagemap (0 when not present or not root). */
static void print_pfns(const char *who, const void *p, size_t len)
{
	int pm = open("/proc/self/pagemap", O_RDONLY);

	if (pm < 0)
		return;
	/* Pages with no mapping-API event count as mapped from here on. */
	mark("pagemap");
	printf("pfns-%s:", who);
	for (size_t i = 0; i < len / page; i++) {
		uint64_t e = 0;
		off_t at = (off_t)(((uintptr_t)p / page + i) * 8);

		if (pread(pm, &e, 8, at) == 8 && (e >> 63))
			printf(" %llx", (unsigned long long)(e & ((1ULL << 55) - 1)));
		else
			printf(" -");
	}
	printf("\n");
	close(pm);
}

/* Maps the target, tags it all with seed, says which PFNs back it, forks. */
static pid_t map_tag_fork(char **p, uint64_t seed)
{
	pid_t child;

	*p = map(length);
	tag(*p, 0, length, seed);
	print_pfns("parent", *p, length);
	fflush(stdout);
	child = fork();
	if (child < 0) {
		printf("result: fail fork %s\n", strerror(errno));
		exit(1);
	}
	return child;
}

static int cmd_fork(void)
{
	char *p;
	int status;
	pid_t child = map_tag_fork(&p, 1);
	size_t bad;

	if (child == 0) {
		/* The child sees the parent's write and writes page 1 for it. */
		bad = check_tag(p, 0, page, 1);
		/* Only into a page that is still ours: a freed one may be a page table now. */
		if (!bad)
			tag(p, page, page, 2);
		printf("child-sees-parent-write: %s\n", bad ? "no" : "yes");
		fflush(stdout);
		_exit(bad ? 1 : 0);
	}
	waitpid(child, &status, 0);
	bad = check_tag(p, page, page, 2);
	printf("parent-sees-child-write: %s\n", bad ? "no" : "yes");
	/*
	 * The child's exit closed its vma: the parent's pages must live on.
	 * Read only: if the driver freed them, writing would corrupt whoever
	 * has them now.
	 */
	size_t lost = check_tag(p, 0, page, 1) + (length > 2 * page ? check_tag(p, 2 * page, length - 2 * page, 1) : 0);
	printf("parent-after-child-exit: %s\n", lost ? "corrupt" : "intact");
	mark("unmap");
	munmap(p, length);
	bad += lost;
	if (!WIFEXITED(status) || WEXITSTATUS(status) || bad)
		printf("result: fail %s\n", lost ? "the parent's pages changed when the child exited" : "shared mapping not shared both ways");
	else
		printf("result: ok\n");
	return WIFEXITED(status) && !WEXITSTATUS(status) && !bad ? 0 : 1;
}

static int cmd_orphan(void)
{
	char *p;
	pid_t child = map_tag_fork(&p, 5);

	if (child == 0) {
		pid_t parent = getppid();
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		size_t bad;

		for (int i = 0; i < 500 && getppid() == parent; i++)
			nanosleep(&ts, NULL);
		/* The parent has unmapped, closed and exited: this vma is the last user. */
		nanosleep(&ts, NULL);
		bad = check_tag(p, 0, length, 5);
		/* Write only into pages that are still ours (see cmd_fork). */
		if (!bad) {
			tag(p, 0, length, 6);
			bad += check_tag(p, 0, length, 6);
		}
		print_pfns("orphan", p, length);
		printf("orphan-after-parent-exit: %s\nresult: %s\n", bad ? "corrupt" : "intact", bad ? "fail data lost after the parent exited" : "ok");
		fflush(stdout);
		mark("unmap");
		munmap(p, length);
		_exit(bad ? 1 : 0);
	}
	munmap(p, length);
	close(fd);
	printf("parent: unmapped, closed, exiting\n");
	fflush(stdout);
	return 0;
}

static int cmd_partial(void)
{
	size_t pages = length / page, mid = pages / 2, last = pages - 1, bad = 0;
	char *p;

	if (pages < 3) {
		printf("result: fail needs 3 pages\n");
		return 1;
	}
	p = map(length);
	tag(p, 0, length, 9);
	size_t gone[3] = { 0, mid, last };
	const char *names[3] = { "head", "middle", "tail" };

	for (int i = 0; i < 3; i++) {
		int r = munmap(p + gone[i] * page, page);

		printf("munmap-%s: %s\n", names[i], r ? strerror(errno) : "done");
	}
	for (size_t i = 0; i < pages; i++)
		if (i != 0 && i != mid && i != last)
			bad += check_tag(p, i * page, page, 9) != 0;
	printf("pages-intact: %zu of %zu\n", pages - 3 - bad, pages - 3);
	mark("unmap");
	munmap(p, length);
	printf("result: %s\n", bad ? "fail pages that stayed mapped changed" : "ok");
	return bad ? 1 : 0;
}

struct toucher {
	char *p;
	atomic_int *stop;
	unsigned long touches, bad;
	unsigned int id;
};

static void *touch(void *arg)
{
	struct toucher *t = arg;

	while (!atomic_load(t->stop)) {
		for (size_t i = t->id % (length / page); i < length / page; i += 2) {
			volatile uint64_t *w = (volatile uint64_t *)(t->p + i * page);
			uint64_t v = ((uint64_t)t->id << 32) | t->touches;

			w[t->id] = v;
			t->bad += w[t->id] != v;
			t->touches++;
		}
	}
	return NULL;
}

static int cmd_threads(int n, int ms)
{
	char *p = map(length);
	atomic_int stop = 0;
	struct toucher t[64];
	pthread_t th[64];
	unsigned long cycles = 0, failed = 0, bad = 0, touches = 0;
	struct timespec start, now;

	if (n > 64)
		n = 64;
	for (int i = 0; i < n; i++) {
		t[i] = (struct toucher){ .p = p, .stop = &stop, .id = (unsigned int)i };
		pthread_create(&th[i], NULL, touch, &t[i]);
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		void *q = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);

		if (q == MAP_FAILED) {
			failed++;
		} else {
			((volatile char *)q)[0] = 1;
			munmap(q, length);
		}
		cycles++;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
	atomic_store(&stop, 1);
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		bad += t[i].bad;
		touches += t[i].touches;
	}
	munmap(p, length);
	printf("threads: %d\ntouches: %lu\nlost-writes: %lu\nmap-unmap-cycles: %lu\nmap-failures: %lu\n", n, touches, bad, cycles, failed);
	printf("result: %s\n", bad ? "fail writes lost under concurrent map/unmap" : "ok");
	return bad ? 1 : 0;
}

/* N processes map the target each on their own and write their own words of every page. */
static int cmd_procs(int n, int ms)
{
	pid_t kids[64];
	int lost = 0, failed = 0;

	if (n > 64)
		n = 64;
	for (int k = 0; k < n; k++) {
		kids[k] = fork();
		if (kids[k] == 0) {
			char *p = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
			struct timespec start, now;
			unsigned long bad = 0, round = 0;

			if (p == MAP_FAILED)
				_exit(3);
			clock_gettime(CLOCK_MONOTONIC, &start);
			do {
				for (size_t i = 0; i < length / page; i++) {
					volatile uint64_t *w = (volatile uint64_t *)(p + i * page) + 64 + k;
					uint64_t v = ((uint64_t)k << 48) | round;

					*w = v;
					bad += *w != v;
				}
				round++;
				clock_gettime(CLOCK_MONOTONIC, &now);
			} while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
			munmap(p, length);
			_exit(bad ? 1 : 0);
		}
	}
	for (int k = 0; k < n; k++) {
		int status;

		waitpid(kids[k], &status, 0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) == 1)
			lost++;
		else if (WEXITSTATUS(status) == 3)
			failed++;
	}
	printf("processes: %d\nprocesses-losing-writes: %d\nprocesses-mmap-failed: %d\n", n, lost, failed);
	if (failed == n) {
		printf("result: fail mmap in every process\n");
		return 1;
	}
	printf("result: %s\n", lost ? "fail writes lost with several processes mapping at once" : "ok");
	return lost ? 1 : 0;
}

static int cmd_mremap(void)
{
	char *p = map(length), *to, *q;
	size_t bad;

	tag(p, 0, length, 13);
	/* A free place to move to, reserved so MREMAP_FIXED replaces nothing of ours. */
	to = mmap(NULL, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	q = mremap(p, length, length, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (q == MAP_FAILED) {
		printf("mremap-move: refused %s\n", strerror(errno));
		munmap(to, length);
		mark("unmap");
		munmap(p, length);
		printf("result: ok\n");
		return 0;
	}
	bad = check_tag(q, 0, length, 13);
	printf("mremap-move: done, from %p to %p\nmoved-contents: %s\n", (void *)p, (void *)q, bad ? "changed" : "intact");
	mark("unmap");
	munmap(q, length);
	printf("result: %s\n", bad ? "fail the contents changed when the mapping moved" : "ok");
	return bad ? 1 : 0;
}

static sigjmp_buf fault_jmp;

static void on_fault(int sig)
{
	siglongjmp(fault_jmp, sig);
}

/* What a page reads after MADV_DONTNEED: driver-specific (refault the same page, zero, SIGBUS). */
static int cmd_dontneed(void)
{
	char *p = map(length);
	size_t intact = 0, zero = 0, other = 0, faults = 0;
	struct sigaction sa = { .sa_handler = on_fault }, old_bus, old_segv;
	int r;

	tag(p, 0, length, 17);
	r = madvise(p, length, MADV_DONTNEED);
	printf("madvise-dontneed: %s\n", r ? strerror(errno) : "done");
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &old_bus);
	sigaction(SIGSEGV, &sa, &old_segv);
	for (size_t i = 0; i < length / page; i++) {
		volatile const uint64_t *w = (volatile const uint64_t *)(p + i * page);

		if (sigsetjmp(fault_jmp, 1)) {
			faults++;
			continue;
		}
		if (!check_tag(p, i * page, page, 17))
			intact++;
		else if (w[0] == 0 && w[page / 8 - 1] == 0)
			zero++;
		else
			other++;
	}
	sigaction(SIGBUS, &old_bus, NULL);
	sigaction(SIGSEGV, &old_segv, NULL);
	printf("after-dontneed: %zu intact, %zu zero, %zu other, %zu fault\n", intact, zero, other, faults);
	mark("unmap");
	munmap(p, length);
	printf("result: ok\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 6) {
		fprintf(stderr, "usage: hm-map-probe fork|orphan|partial|threads|procs|mremap|dontneed FD OFFSET LENGTH PAGESIZE [N MS]\n");
		return 2;
	}
	fd = atoi(argv[2]);
	offset = (off_t)strtoull(argv[3], NULL, 0);
	length = strtoull(argv[4], NULL, 0);
	page = strtoull(argv[5], NULL, 0);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "fork"))
		return cmd_fork();
	if (!strcmp(argv[1], "orphan"))
		return cmd_orphan();
	if (!strcmp(argv[1], "partial"))
		return cmd_partial();
	if (!strcmp(argv[1], "threads") && argc >= 8)
		return cmd_threads(atoi(argv[6]), atoi(argv[7]));
	if (!strcmp(argv[1], "procs") && argc >= 8)
		return cmd_procs(atoi(argv[6]), atoi(argv[7]));
	if (!strcmp(argv[1], "mremap"))
		return cmd_mremap();
	if (!strcmp(argv[1], "dontneed"))
		return cmd_dontneed();
	fprintf(stderr, "hm-map-probe: unknown command %s\n", argv[1]);
	return 2;
}
