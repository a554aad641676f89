/*
 * C baseline for bench/verify.mjs: over a MAP_SHARED mapping of /dev/zero
 * (the same kind of mapping the addon verifies), fill with memset, then
 * verify with memcmp against a 64 KiB reference chunk (memset once), i.e. the
 * fastest plain-C check of a constant pattern. Prints one JSON line of
 * per-iteration nanoseconds.
 *
 * usage: verify_baseline MIB ITERATIONS
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (64 * 1024)

static unsigned long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
	int iterations = argc > 2 ? atoi(argv[2]) : 7;
	size_t size = mib << 20;
	static unsigned char ref[CHUNK];
	int fd = open("/dev/zero", O_RDWR);
	if (fd < 0) { perror("open /dev/zero"); return 1; }
	unsigned char *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) { perror("mmap"); return 1; }
	memset(ref, 0x5a, sizeof ref);
	memset(map, 0x5a, size); /* fault every page in first: time steady-state fills only */

	printf("{\"fill\":[");
	for (int it = 0; it < iterations; it++) {
		unsigned long long t0 = now_ns();
		memset(map, 0x5a, size);
		printf("%s%llu", it ? "," : "", now_ns() - t0);
	}
	printf("],\"verify\":[");
	unsigned long long bad = 0;
	for (int it = 0; it < iterations; it++) {
		unsigned long long t0 = now_ns();
		for (size_t off = 0; off < size; off += CHUNK)
			if (memcmp(map + off, ref, CHUNK) != 0) bad++;
		printf("%s%llu", it ? "," : "", now_ns() - t0);
	}
	printf("],\"mismatchedChunks\":%llu}\n", bad);
	munmap(map, size);
	close(fd);
	return bad != 0;
}
