// The native side of a Mapping: one mmap'ed region, the NativeMapping object
// over it and, created on first use, the external ArrayBuffer that views it.
//
// Who may still reach the region decides when it goes back to the kernel:
//  - the NativeMapping object and every ArrayBuffer made over the region
//    hold it; each has a basic finalizer that runs inside the garbage
//    collection that finds it dead (the addon registers as the experimental
//    Node-API version, whose basic finalizers run synchronously from the GC),
//    so mappings dropped without unmap() in a synchronous loop are released
//    by the next scavenge instead of piling up to vm.max_map_count;
//  - unmap() releases the driver's mapping, but while an ArrayBuffer object
//    over it is alive (any view keeps it alive: one held by a pending
//    fs.read, stream.write or zlib call, or by user code) the address range
//    stays reserved by anonymous zero-filled private memory with the same
//    protection, so whatever still holds the pointer reads zeros and writes
//    into scratch pages, and no later mmap can be given the address. The
//    buffer is not detached: Node's zlib aborts on a detached input view;
//  - an async fill/verify holds it until its completion runs.
// Live regions (mapped or reserved) are counted process-wide, and mmap
// refuses with ERR_HYBRIDMEM_TOO_MANY_MAPPINGS well below vm.max_map_count.
#pragma once

#include <napi.h>

#include <cstdint>

namespace hybridmem {

struct Group;

struct EnvState {
	bool tearing_down = false;
};

struct MapState {
	napi_env env = nullptr;
	EnvState* env_state = nullptr;
	uint8_t* addr = nullptr;
	uint64_t length = 0;
	uint64_t page_size = 0;
	int prot = 0;
	int64_t charge = 0;          // external memory reported to V8 for this region
	int busy = 0;                // async fill/verify calls using the region
	bool closed = false;         // unmap() or the group's close() ran: no more use
	bool mapped = true;          // [addr, addr + length) is still ours (mapping or reservation)
	bool reserved = false;       // it is the reservation kept after unmap()
	bool handle_alive = false;   // the NativeMapping object has not been collected
	int buffers = 0;             // ArrayBuffer objects over the region not yet collected
	napi_ref buffer_ref = nullptr;  // weak: the newest of them
	Group* group = nullptr;      // the device's list of unclosed mappings
	MapState* prev = nullptr;
	MapState* next = nullptr;
};

// Defines NativeMapping and the per-environment data; call once from Init.
void InitMappings(Napi::Env env, Napi::Object exports);

// Wraps a fresh mmap result (counted in the live total by the caller) into a
// NativeMapping; on failure it unmaps and throws.
Napi::Object CreateMapping(Napi::Env env, uint8_t* addr, uint64_t length, uint64_t page_size, int prot, Group* group);

// The live-mapping budget: throws ERR_HYBRIDMEM_TOO_MANY_MAPPINGS when no
// mapping can be added, after one forced garbage collection.
void ReserveMappingSlot(Napi::Env env);
void ReturnMappingSlot();

// A group (one per KexDevice) from binding.createGroup(), or nullptr for
// undefined/null; throws ERR_INVALID_ARG_TYPE for anything else.
Group* ToGroup(const Napi::Value& value);

}  // namespace hybridmem
