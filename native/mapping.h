// The native side of a Mapping: owns one mmap'ed region and the external
// ArrayBuffer over it. The region is unmapped exactly once, either by
// unmap() (which detaches the ArrayBuffer first, so every view drops to
// length 0 before the address can be handed out again) or by the
// ArrayBuffer's finalizer when the buffer is garbage collected.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>

namespace hybridmem {

struct MapState {
	uint8_t* addr = nullptr;
	uint64_t length = 0;
	uint64_t page_size = 0;
	bool released = false;
	int busy = 0;  // async fill/verify workers reading the region
};

class MappingHandle : public Napi::ObjectWrap<MappingHandle> {
public:
	static Napi::Function DefineClass(Napi::Env env);
	// Wraps a fresh mmap result; on failure to build the JS side it unmaps.
	static Napi::Object Create(Napi::Env env, uint8_t* addr, uint64_t length, uint64_t page_size);

	explicit MappingHandle(const Napi::CallbackInfo& info);

	std::shared_ptr<MapState> state() const { return state_; }

private:
	Napi::Value GetBuffer(const Napi::CallbackInfo& info);
	Napi::Value GetAddress(const Napi::CallbackInfo& info);
	Napi::Value GetLength(const Napi::CallbackInfo& info);
	Napi::Value GetClosed(const Napi::CallbackInfo& info);
	Napi::Value GetBusy(const Napi::CallbackInfo& info);
	Napi::Value Unmap(const Napi::CallbackInfo& info);
	Napi::Value FillSync(const Napi::CallbackInfo& info);
	Napi::Value VerifySync(const Napi::CallbackInfo& info);
	Napi::Value FillAsync(const Napi::CallbackInfo& info);
	Napi::Value VerifyAsync(const Napi::CallbackInfo& info);
	Napi::Value Probe(const Napi::CallbackInfo& info);

	void RequireOpen(Napi::Env env, const char* syscall) const;

	std::shared_ptr<MapState> state_;
	Napi::ObjectReference buffer_;
};

}  // namespace hybridmem
