#include "patterns.h"

#include <time.h>

#include <cstring>

#include "guard.h"

namespace hybridmem {

namespace {

constexpr uint64_t kChunk = 64 * 1024;
// A reference window for byte patterns: one chunk plus one period (256), so
// any chunk starting at any offset finds its expected bytes at ref + (off & 255).
constexpr uint64_t kRefSize = kChunk + 256;

uint64_t NowNs() {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// The random pattern: a stateless hash of (seed, 32-bit lane index), so any
// sub-range can be generated on its own and the loops vectorize (32-bit
// multiplies exist in SSE4.1/AVX2; 64-bit ones do not). lowbias32 by
// Chris Wellons; the seed is folded to 32 bits.
inline uint32_t Scramble(uint32_t x) {
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	x ^= x >> 16;
	return x;
}

inline uint32_t Lane(uint32_t seed32, uint64_t lane) { return Scramble(static_cast<uint32_t>(lane) * 0x9e3779b9u + seed32); }

inline uint32_t Seed32(uint64_t seed) { return static_cast<uint32_t>(seed ^ (seed >> 32)); }

inline uint64_t RandomAt(uint64_t seed, uint64_t index) {
	uint32_t s = Seed32(seed);
	return static_cast<uint64_t>(Lane(s, index * 2)) | (static_cast<uint64_t>(Lane(s, index * 2 + 1)) << 32);
}

inline uint64_t ExpectedWord(const PatternSpec& spec, uint64_t off) {
	return spec.pattern == Pattern::AddressTag ? off + spec.seed : RandomAt(spec.seed, off >> 3);
}

void BuildReference(const PatternSpec& spec, uint8_t* ref) {
	if (spec.pattern == Pattern::Constant) {
		memset(ref, spec.value, kRefSize);
		return;
	}
	for (uint64_t i = 0; i < kRefSize; i++) ref[i] = static_cast<uint8_t>((i + spec.seed) & 0xff);
}

struct Context {
	PatternSpec spec;
	const uint8_t* ref = nullptr;
	uint64_t limit = 0;  // end of the region (offset from base)
	uint64_t bytes = 0;
	uint64_t saved_bytes = 0;
	// verify only: fixed storage, so nothing allocates inside a guarded chunk
	Mismatch* mismatches = nullptr;
	uint32_t capacity = 0;
	uint32_t stored = 0;
	uint64_t count = 0;
	uint32_t saved_stored = 0;
	uint64_t saved_count = 0;
};

void Save(void* c) {
	Context* ctx = static_cast<Context*>(c);
	ctx->saved_bytes = ctx->bytes;
	ctx->saved_stored = ctx->stored;
	ctx->saved_count = ctx->count;
}

void Restore(void* c) {
	Context* ctx = static_cast<Context*>(c);
	ctx->bytes = ctx->saved_bytes;
	ctx->stored = ctx->saved_stored;
	ctx->count = ctx->saved_count;
}

// x86-64 gets AVX-512 and AVX2 clones picked at load time; other
// architectures (the arm64 prebuild) compile the loops once, vectorised
// for their baseline (NEON on arm64).
#if defined(__x86_64__)
#define HM_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define HM_VECTOR_CLONES
#endif

inline void Record(Context* ctx, uint64_t off, uint64_t expected, uint64_t actual) {
	if (ctx->stored < ctx->capacity) ctx->mismatches[ctx->stored++] = Mismatch{off, expected, actual};
	ctx->count++;
}

HM_VECTOR_CLONES void FillWords(uint64_t* p, uint64_t off, uint64_t n,
	Pattern pattern, uint64_t seed) {
	if (pattern == Pattern::AddressTag) {
		for (uint64_t i = 0; i < n; i++) p[i] = off + i * 8 + seed;
	} else {
		uint32_t* lanes = reinterpret_cast<uint32_t*>(p);
		uint32_t x = static_cast<uint32_t>(off >> 2) * 0x9e3779b9u + Seed32(seed);
		for (uint64_t j = 0; j < n * 2; j++, x += 0x9e3779b9u) lanes[j] = Scramble(x);
	}
}

// Returns the OR of all differences: zero when the words match. Prefetches
// 4 KiB ahead like DiffRandom (the hardware prefetcher stops at each page).
HM_VECTOR_CLONES uint64_t DiffAddressTag(const uint64_t* p, uint64_t off, uint64_t n,
	uint64_t seed, uint64_t limit) {
	constexpr uint64_t kBlockWords = 1024 / 8;
	constexpr uint64_t kAheadBytes = 4096;
	const char* bytes = reinterpret_cast<const char*>(p);
	uint64_t diff = 0;
	uint64_t base = off + seed;
	for (uint64_t b = 0; b < n; b += kBlockWords) {
		const uint64_t e = n - b < kBlockWords ? n : b + kBlockWords;
		for (uint64_t q = b * 8 + kAheadBytes; q < e * 8 + kAheadBytes && q < limit; q += 64) __builtin_prefetch(bytes + q);
		for (uint64_t i = b; i < e; i++) diff |= p[i] ^ (base + i * 8);
	}
	return diff;
}

// The random pattern costs about as much arithmetic per byte as the memory
// takes to stream in, and a core busy hashing issues its loads late (the
// hardware prefetcher also stops at each 4 KiB page): so the loop prefetches
// the cache lines 4 KiB ahead, one 1 KiB block at a time, interleaved with the
// hashing, up to `limit` bytes past p (the end of the region, not only of the
// chunk: a prefetch never faults). One function, so the hashing loop and the
// prefetches stay in one vectorized body without a call per block.
// Returns the OR of all differences: zero when the words match.
HM_VECTOR_CLONES uint64_t DiffRandom(const uint64_t* p, uint64_t off, uint64_t n,
	uint64_t seed, uint64_t limit) {
	constexpr uint64_t kBlockBytes = 1024;
	constexpr uint64_t kAheadBytes = 4096;
	const uint32_t* lanes = reinterpret_cast<const uint32_t*>(p);
	const char* bytes = reinterpret_cast<const char*>(p);
	const uint64_t total = n * 8;
	uint32_t x = static_cast<uint32_t>(off >> 2) * 0x9e3779b9u + Seed32(seed);
	uint32_t diff = 0;
	uint64_t j = 0;
	for (uint64_t b = 0; b < total; b += kBlockBytes) {
		const uint64_t e = total - b < kBlockBytes ? total : b + kBlockBytes;
		for (uint64_t q = b + kAheadBytes; q < e + kAheadBytes && q < limit; q += 64) __builtin_prefetch(bytes + q);
		for (const uint64_t je = e / 4; j < je; j++, x += 0x9e3779b9u) diff |= lanes[j] ^ Scramble(x);
	}
	return diff;
}

void FillChunk(void* c, uint8_t* base, uint64_t off, uint64_t len) {
	Context* ctx = static_cast<Context*>(c);
	uint8_t* p = base + off;
	switch (ctx->spec.pattern) {
		case Pattern::Constant:
			memset(p, ctx->spec.value, len);
			break;
		case Pattern::Counter:
			memcpy(p, ctx->ref + (off & 0xff), len);
			break;
		default:
			FillWords(reinterpret_cast<uint64_t*>(p), off, len >> 3, ctx->spec.pattern, ctx->spec.seed);
	}
	ctx->bytes += len;
}

void VerifyChunk(void* c, uint8_t* base, uint64_t off, uint64_t len) {
	Context* ctx = static_cast<Context*>(c);
	const uint8_t* p = base + off;
	const PatternSpec& spec = ctx->spec;
	if (!IsWordPattern(spec.pattern)) {
		const uint8_t* expected = ctx->ref + (spec.pattern == Pattern::Counter ? (off & 0xff) : 0);
		if (memcmp(p, expected, len) != 0) {
			for (uint64_t i = 0; i < len; i++)
				if (p[i] != expected[i]) Record(ctx, off + i, expected[i], p[i]);
		}
	} else {
		const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
		uint64_t n = len >> 3;
		uint64_t diff = spec.pattern == Pattern::AddressTag ? DiffAddressTag(w, off, n, spec.seed, ctx->limit - off)
		                                                    : DiffRandom(w, off, n, spec.seed, ctx->limit - off);
		if (diff != 0) {
			for (uint64_t i = 0; i < n; i++) {
				uint64_t e = ExpectedWord(spec, off + i * 8);
				if (w[i] != e) Record(ctx, off + i * 8, e, w[i]);
			}
		}
	}
	ctx->bytes += len;
}

}  // namespace

uint64_t RandomWord(uint64_t seed, uint64_t index) { return RandomAt(seed, index); }

void FillRegion(uint8_t* base, uint64_t offset, uint64_t length, uint64_t page_size, const PatternSpec& spec,
	RegionResult* out) {
	uint64_t t0 = NowNs();
	std::vector<uint8_t> ref;
	Context ctx;
	ctx.spec = spec;
	if (spec.pattern == Pattern::Counter) {
		ref.resize(kRefSize);
		BuildReference(spec, ref.data());
		ctx.ref = ref.data();
	}
	// A refilled chunk is idempotent, so only the byte count needs rolling back.
	WalkOps ops{FillChunk, Save, Restore};
	out->error = GuardedWalk(base, offset, offset + length, page_size, kChunk, ops, &ctx, &out->faulting_pages);
	out->bytes = ctx.bytes;
	out->ns = NowNs() - t0;
}

void VerifyRegion(uint8_t* base, uint64_t offset, uint64_t length, uint64_t page_size, const PatternSpec& spec,
	uint32_t max_mismatches, VerifyResult* out) {
	uint64_t t0 = NowNs();
	std::vector<uint8_t> ref;
	Context ctx;
	ctx.spec = spec;
	if (!IsWordPattern(spec.pattern)) {
		ref.resize(kRefSize);
		BuildReference(spec, ref.data());
		ctx.ref = ref.data();
	}
	ctx.limit = offset + length;
	out->mismatches.resize(max_mismatches);
	ctx.mismatches = out->mismatches.data();
	ctx.capacity = max_mismatches;
	WalkOps ops{VerifyChunk, Save, Restore};
	out->error = GuardedWalk(base, offset, offset + length, page_size, kChunk, ops, &ctx, &out->faulting_pages);
	out->mismatches.resize(ctx.stored);
	out->mismatch_count = ctx.count;
	out->bytes = ctx.bytes;
	out->ns = NowNs() - t0;
}

}  // namespace hybridmem
