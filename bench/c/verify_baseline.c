/*
 * C baseline for bench/verify.mjs: fill with memset, then verify with memcmp
 * against a 64 KiB reference chunk (memset once), i.e. the fastest plain-C
 * check of a constant pattern.
 *
 * usage: verify_baseline MIB ITERATIONS
 *   maps MIB MiB of /dev/zero MAP_SHARED itself, prints one JSON line of
 *   per-iteration nanoseconds.
 * usage: verify_baseline --serve FD MIB
 *   maps MIB MiB of the shared memory file FD (the bench passes the memfd
 *   its addon mapping uses, so both sides work on the same pages) and answers
 *   one command per stdin line: "fill" (memset) or "verify" (memcmp), each with
 *   "NANOSECONDS CPU_NANOSECONDS MISMATCHED_CHUNKS\n" on stdout (CPU: the
 *   thread's on-CPU time, which leaves out time other processes held the CPU).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024)
#define VALUE 0x5a

/* Cache-line aligned, as the addon's reference is. */
static unsigned char ref[CHUNK] __attribute__((aligned(64)));

static unsigned long long clock_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

static unsigned long long now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
static unsigned long long cpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

static unsigned long long fill(unsigned char *map, size_t size)
{
	unsigned long long t0 = now_ns();
	memset(map, VALUE, size);
	return now_ns() - t0;
}

static unsigned long long verify(const unsigned char *map, size_t size, unsigned long long *bad)
{
	unsigned long long t0 = now_ns();
	*bad = 0;
	for (size_t off = 0; off < size; off += CHUNK)
		if (memcmp(map + off, ref, CHUNK) != 0) (*bad)++;
	return now_ns() - t0;
}

static int serve(int fd, size_t size)
{
	unsigned char *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) { perror("mmap"); return 1; }
	char line[64];
	while (fgets(line, sizeof line, stdin)) {
		unsigned long long bad = 0, ns, cpu = cpu_ns();
		if (strncmp(line, "fill", 4) == 0) ns = fill(map, size);
		else if (strncmp(line, "verify", 6) == 0) ns = verify(map, size, &bad);
		else { fprintf(stderr, "verify_baseline: unknown command %s", line); return 2; }
		cpu = cpu_ns() - cpu;
		printf("%llu %llu %llu\n", ns, cpu, bad);
		fflush(stdout);
	}
	munmap(map, size);
	return 0;
}

int main(int argc, char **argv)
{
	memset(ref, VALUE, sizeof ref);
	if (argc > 3 && strcmp(argv[1], "--serve") == 0)
		return serve(atoi(argv[2]), strtoul(argv[3], NULL, 10) << 20);

	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	int iterations = argc > 2 ? atoi(argv[2]) : 7;
	size_t size = mib << 20;
	int fd = open("/dev/zero", O_RDWR);
	if (fd < 0) { perror("open /dev/zero"); return 1; }
	unsigned char *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) { perror("mmap"); return 1; }
	fill(map, size); /* fault every page in first: time steady-state fills only */

	printf("{\"fill\":[");
	for (int it = 0; it < iterations; it++) printf("%s%llu", it ? "," : "", fill(map, size));
	printf("],\"verify\":[");
	unsigned long long bad = 0, total = 0;
	for (int it = 0; it < iterations; it++) {
		printf("%s%llu", it ? "," : "", verify(map, size, &bad));
		total += bad;
	}
	printf("],\"mismatchedChunks\":%llu}\n", total);
	munmap(map, size);
	close(fd);
	return total != 0;
}
