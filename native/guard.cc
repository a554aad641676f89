#include "guard.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <new>

namespace hybridmem {

namespace {

// One slot per thread inside a guard. A table searched by pthread_self()
// instead of thread_local: a dlopen'ed library's TLS may be allocated lazily
// (malloc) on first access, which must not happen inside a signal handler
// that runs on a thread that never used the guard (a V8 wasm trap). The
// table grows by blocks of 64 slots, linked once and never freed, so any
// number of threads can be inside a guard at once and the handler only ever
// reads a list that can grow but never shrink.
struct FaultSlot {
	std::atomic<pthread_t> owner{0};
	volatile sig_atomic_t armed = 0;
	volatile uintptr_t start = 0;
	volatile uintptr_t end = 0;
	volatile uintptr_t fault_addr = 0;
	sigjmp_buf jump;
};

constexpr int kSlotsPerBlock = 64;
struct SlotBlock {
	FaultSlot slots[kSlotsPerBlock];
	std::atomic<SlotBlock*> next{nullptr};
};

SlotBlock g_first_block;
struct sigaction g_prev_segv;
struct sigaction g_prev_bus;
std::once_flag g_install_once;
int g_install_error = 0;

FaultSlot* AcquireSlot() {
	pthread_t self = pthread_self();
	for (SlotBlock* block = &g_first_block;;) {
		for (FaultSlot& slot : block->slots) {
			pthread_t expected = 0;
			if (slot.owner.load(std::memory_order_relaxed) == 0 && slot.owner.compare_exchange_strong(expected, self))
				return &slot;
		}
		SlotBlock* next = block->next.load(std::memory_order_acquire);
		if (next == nullptr) {
			SlotBlock* fresh = new (std::nothrow) SlotBlock();
			if (fresh == nullptr) return nullptr;
			if (block->next.compare_exchange_strong(next, fresh, std::memory_order_acq_rel)) {
				next = fresh;
			} else {
				delete fresh;  // another thread linked one first; next is now that block
			}
		}
		block = next;
	}
}

void ReleaseSlot(FaultSlot* slot) {
	slot->armed = 0;
	slot->owner.store(0);
}

FaultSlot* FindArmedSlot() {
	pthread_t self = pthread_self();
	for (SlotBlock* block = &g_first_block; block != nullptr; block = block->next.load(std::memory_order_acquire)) {
		for (FaultSlot& slot : block->slots)
			if (slot.owner.load(std::memory_order_relaxed) == self && slot.armed) return &slot;
	}
	return nullptr;
}

void Chain(int sig, siginfo_t* info, void* context) {
	const struct sigaction& prev = sig == SIGBUS ? g_prev_bus : g_prev_segv;
	if (prev.sa_flags & SA_SIGINFO) {
		if (prev.sa_sigaction) {
			prev.sa_sigaction(sig, info, context);
			return;
		}
	} else if (prev.sa_handler == SIG_IGN) {
		return;
	} else if (prev.sa_handler != SIG_DFL) {
		prev.sa_handler(sig);
		return;
	}
	// Default action: restore it and let the signal kill the process as it
	// would have without us. A fault re-executes the instruction on return;
	// a signal sent by kill() must be raised again.
	struct sigaction dfl;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, nullptr);
	if (info == nullptr || info->si_code <= 0) raise(sig);
}

void OnFault(int sig, siginfo_t* info, void* context) {
	// Only a fault the kernel raised (si_code > 0: BUS_ADRERR, SEGV_MAPERR,
	// ...) is a fault of the walk. A signal sent by kill/sigqueue/tgkill
	// (si_code <= 0) carries a sender's pid where si_addr would be, whatever
	// it says; it goes on to the previous handler like any other signal.
	FaultSlot* slot = info != nullptr && info->si_code > 0 ? FindArmedSlot() : nullptr;
	if (slot != nullptr) {
		uintptr_t addr = reinterpret_cast<uintptr_t>(info->si_addr);
		if (addr >= slot->start && addr < slot->end) {
			slot->fault_addr = addr;
			slot->armed = 0;
			// SA_NODEFER left the signal unblocked, so no mask to restore.
			siglongjmp(slot->jump, 1);
		}
	}
	Chain(sig, info, context);
}

void Install() {
	struct sigaction action;
	memset(&action, 0, sizeof action);
	action.sa_sigaction = OnFault;
	action.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
	sigemptyset(&action.sa_mask);
	if (sigaction(SIGSEGV, &action, &g_prev_segv) != 0 || sigaction(SIGBUS, &action, &g_prev_bus) != 0)
		g_install_error = errno;
}

}  // namespace

int InstallFaultHandlers() {
	std::call_once(g_install_once, Install);
	return g_install_error;
}

int GuardedWalk(uint8_t* base, uint64_t begin, uint64_t end, uint64_t page_size, uint64_t chunk, const WalkOps& ops,
	void* ctx, std::vector<uint64_t>* faulting_pages) {
	if (int err = InstallFaultHandlers()) return err;
	FaultSlot* slot = AcquireSlot();
	if (slot == nullptr) return ENOMEM;
	slot->start = reinterpret_cast<uintptr_t>(base + begin);
	slot->end = reinterpret_cast<uintptr_t>(base + end);

	// Locals changed between sigsetjmp and siglongjmp must be volatile.
	volatile uint64_t pos = begin;
	volatile uint64_t chunk_start = begin;
	if (sigsetjmp(slot->jump, 0) != 0) {
		uint64_t page = (slot->fault_addr - reinterpret_cast<uintptr_t>(base)) / page_size;
		auto at = std::lower_bound(faulting_pages->begin(), faulting_pages->end(), page);
		if (at == faulting_pages->end() || *at != page) faulting_pages->insert(at, page);
		ops.restore(ctx);
		pos = chunk_start;  // walk the chunk again, now stopping before the page
	}
	for (;;) {
		uint64_t p = pos;
		if (p >= end) break;
		uint64_t page = p / page_size;
		auto next = std::lower_bound(faulting_pages->begin(), faulting_pages->end(), page);
		if (next != faulting_pages->end() && *next == page) {
			pos = std::min(end, (page + 1) * page_size);
			continue;
		}
		uint64_t stop = std::min(end, p + chunk);
		if (next != faulting_pages->end()) stop = std::min(stop, *next * page_size);
		chunk_start = p;
		ops.save(ctx);
		slot->armed = 1;
		std::atomic_signal_fence(std::memory_order_seq_cst);
		ops.chunk(ctx, base, p, stop - p);
		std::atomic_signal_fence(std::memory_order_seq_cst);
		slot->armed = 0;
		pos = stop;
	}
	ReleaseSlot(slot);
	return 0;
}

}  // namespace hybridmem
