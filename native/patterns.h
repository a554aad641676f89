// Fill and verify kernels for the test patterns. Byte patterns (counter,
// constant) are periodic, so the expected bytes come from one small
// reference buffer compared with memcmp; word patterns (random,
// address-tag) are generated per 64-bit word and compared in the same pass.
#pragma once

#include <cstdint>
#include <vector>

namespace hybridmem {

enum class Pattern : int { Counter = 0, Random = 1, Constant = 2, AddressTag = 3 };

struct PatternSpec {
	Pattern pattern = Pattern::Counter;
	uint64_t seed = 0;
	uint8_t value = 0;  // constant
};

inline bool IsWordPattern(Pattern p) { return p == Pattern::Random || p == Pattern::AddressTag; }

struct Mismatch {
	uint64_t offset;
	uint64_t expected;
	uint64_t actual;
};

struct RegionResult {
	uint64_t bytes = 0;  // bytes actually filled / compared (faulting pages excluded)
	std::vector<uint64_t> faulting_pages;
	uint64_t ns = 0;
	int error = 0;  // errno from the guard (ENOMEM: no slot), 0 when fine
};

struct VerifyResult : RegionResult {
	std::vector<Mismatch> mismatches;  // the first max_mismatches
	uint64_t mismatch_count = 0;       // units (bytes or words) that differ
};

// Both work on [offset, offset + length) of the mapping at base; offsets are
// from base, which is what address-tag and counter patterns are keyed on.
void FillRegion(uint8_t* base, uint64_t offset, uint64_t length, uint64_t page_size, const PatternSpec& spec,
	RegionResult* out);
void VerifyRegion(uint8_t* base, uint64_t offset, uint64_t length, uint64_t page_size, const PatternSpec& spec,
	uint32_t max_mismatches, VerifyResult* out);

// The expected 64-bit word of the random pattern at word index i.
uint64_t RandomWord(uint64_t seed, uint64_t index);

}  // namespace hybridmem
