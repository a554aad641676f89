// Fault guard: lets fill/verify/probe touch pages that may raise SIGBUS or
// SIGSEGV (a zapped PFN mapping, a truncated memfd, a read-only mapping)
// without killing node. A process-wide SIGSEGV/SIGBUS handler, installed
// once and chaining to the handler it replaced (V8/Node use SIGSEGV for
// wasm traps), jumps back into GuardedWalk when the faulting address lies in
// the range the current thread armed; the page is recorded as faulting and
// the walk continues after it. Faults outside an armed range go to the
// previous handler, so a real crash stays a real crash, and so do signals
// sent by a process (si_code <= 0), whatever address they carry.
//
// The handler's code must outlive every thread and environment that loaded
// the addon: the .node is linked with -z nodelete (binding.gyp,
// CMakeLists.txt), so a worker thread that loaded it and exits cannot leave
// the process-wide handler pointing into unloaded code.
#pragma once

#include <cstdint>
#include <vector>

namespace hybridmem {

// Installs the handlers once per process; returns 0 or an errno value.
int InstallFaultHandlers();

struct WalkOps {
	// Processes [off, off + len) of the mapping at base; may fault. It must
	// not hold anything that needs a destructor: a fault abandons its frame.
	void (*chunk)(void* ctx, uint8_t* base, uint64_t off, uint64_t len);
	// Remember / roll back the context's results around a chunk, so a chunk
	// that faulted half way and is walked again is not counted twice.
	void (*save)(void* ctx);
	void (*restore)(void* ctx);
};

// Walks [begin, end) (byte offsets from base, base page aligned) in chunks of
// at most chunk bytes that never span a known faulting page. faulting_pages
// receives the sorted indices (from base) of pages that faulted. Returns 0, or
// ENOMEM when no slot could be allocated for this thread (any number of
// threads may be inside a guard at once).
int GuardedWalk(uint8_t* base, uint64_t begin, uint64_t end, uint64_t page_size, uint64_t chunk, const WalkOps& ops,
	void* ctx, std::vector<uint64_t>* faulting_pages);

}  // namespace hybridmem
