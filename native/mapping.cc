#include "mapping.h"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "args.h"
#include "errors.h"
#include "guard.h"
#include "patterns.h"

namespace hybridmem {

namespace {

struct AddonData {
	Napi::FunctionReference mapping_ctor;
};

// The finalizer's hint: keeps the state alive until the buffer is collected.
using StateHolder = std::shared_ptr<MapState>;

void Release(MapState* state) {
	if (state->released) return;
	state->released = true;
	munmap(state->addr, state->length);
}

// The ArrayBuffer's finalizer: runs when the buffer is collected (or at once
// if it could not be created); a no-op for the munmap when unmap() came first.
void FinalizeBuffer(napi_env, void*, void* hint) {
	StateHolder* holder = static_cast<StateHolder*>(hint);
	Release(holder->get());
	delete holder;
}

struct RegionArgs {
	PatternSpec spec;
	uint64_t offset = 0;
	uint64_t length = 0;
	uint32_t max_mismatches = 0;
};

// {pattern: 0..3, seed, value, offset, length, maxMismatches}; the
// TypeScript layer has validated names and ranges, this re-checks bounds so
// a bad call cannot read outside the mapping.
RegionArgs ParseRegion(const Napi::CallbackInfo& info, const MapState& state) {
	Napi::Env env = info.Env();
	if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "options object expected");
	Napi::Object o = info[0].As<Napi::Object>();
	RegionArgs args;
	uint64_t pattern = OptU64(o, "pattern", 0);
	if (pattern > 3) throw Napi::RangeError::New(env, "unknown pattern code");
	args.spec.pattern = static_cast<Pattern>(pattern);
	args.spec.seed = OptU64(o, "seed", 0);
	args.spec.value = static_cast<uint8_t>(OptU64(o, "value", 0));
	args.offset = OptU64(o, "offset", 0);
	args.length = OptU64(o, "length", state.length - std::min(args.offset, state.length));
	args.max_mismatches = static_cast<uint32_t>(std::min<uint64_t>(OptU64(o, "maxMismatches", 16), 1u << 20));
	if (args.offset > state.length || args.length > state.length - args.offset)
		throw Napi::RangeError::New(env, "range lies outside the mapping");
	if (IsWordPattern(args.spec.pattern) && ((args.offset | args.length) & 7))
		throw Napi::RangeError::New(env, "word patterns need an 8-byte aligned offset and length");
	return args;
}

Napi::Array FaultingToJs(Napi::Env env, const std::vector<uint64_t>& pages) {
	Napi::Array arr = Napi::Array::New(env, pages.size());
	for (size_t i = 0; i < pages.size(); i++) arr.Set(static_cast<uint32_t>(i), Napi::Number::New(env, double(pages[i])));
	return arr;
}

Napi::Object FillToJs(Napi::Env env, const RegionResult& r) {
	Napi::Object o = Napi::Object::New(env);
	o.Set("bytes", Napi::Number::New(env, double(r.bytes)));
	o.Set("faultingPages", FaultingToJs(env, r.faulting_pages));
	o.Set("ns", Napi::Number::New(env, double(r.ns)));
	return o;
}

Napi::Object VerifyToJs(Napi::Env env, const VerifyResult& r, bool words) {
	Napi::Object o = FillToJs(env, r);
	Napi::Array list = Napi::Array::New(env, r.mismatches.size());
	for (size_t i = 0; i < r.mismatches.size(); i++) {
		const Mismatch& m = r.mismatches[i];
		Napi::Object item = Napi::Object::New(env);
		item.Set("offset", Napi::Number::New(env, double(m.offset)));
		if (words) {
			item.Set("expected", Napi::BigInt::New(env, m.expected));
			item.Set("actual", Napi::BigInt::New(env, m.actual));
		} else {
			item.Set("expected", Napi::Number::New(env, double(m.expected)));
			item.Set("actual", Napi::Number::New(env, double(m.actual)));
		}
		list.Set(static_cast<uint32_t>(i), item);
	}
	o.Set("mismatches", list);
	o.Set("mismatchCount", Napi::Number::New(env, double(r.mismatch_count)));
	o.Set("unit", Napi::Number::New(env, words ? 8 : 1));
	return o;
}

// Runs a fill or verify on the libuv pool. While it runs the mapping is busy:
// unmap() refuses with EBUSY instead of pulling the pages from under it, and
// the handle's JS object (which holds the ArrayBuffer) is kept alive.
class RegionWorker : public Napi::AsyncWorker {
public:
	RegionWorker(Napi::Env env, Napi::Object handle, std::shared_ptr<MapState> state, RegionArgs args, bool verify)
		: Napi::AsyncWorker(env, verify ? "hybridmem.verify" : "hybridmem.fill"),
		  deferred_(Napi::Promise::Deferred::New(env)),
		  handle_(Napi::Persistent(handle)),
		  state_(std::move(state)),
		  args_(args),
		  verify_(verify) {
		state_->busy++;
	}

	Napi::Promise Promise() { return deferred_.Promise(); }

	void Execute() override {
		if (verify_)
			VerifyRegion(state_->addr, args_.offset, args_.length, state_->page_size, args_.spec, args_.max_mismatches,
				&result_);
		else
			FillRegion(state_->addr, args_.offset, args_.length, state_->page_size, args_.spec, &result_);
	}

	void OnOK() override {
		Napi::Env env = Env();
		Napi::HandleScope scope(env);
		state_->busy--;
		if (result_.error) {
			deferred_.Reject(ErrnoError(env, result_.error, verify_ ? "verify" : "fill").Value());
			return;
		}
		deferred_.Resolve(verify_ ? Napi::Value(VerifyToJs(env, result_, IsWordPattern(args_.spec.pattern)))
		                          : Napi::Value(FillToJs(env, result_)));
	}

	void OnError(const Napi::Error& error) override {
		state_->busy--;
		deferred_.Reject(error.Value());
	}

private:
	Napi::Promise::Deferred deferred_;
	Napi::ObjectReference handle_;
	std::shared_ptr<MapState> state_;
	RegionArgs args_;
	bool verify_;
	VerifyResult result_;
};

}  // namespace

Napi::Function MappingHandle::DefineClass(Napi::Env env) {
	Napi::Function ctor = ObjectWrap<MappingHandle>::DefineClass(env, "NativeMapping",
		{
			InstanceAccessor<&MappingHandle::GetBuffer>("buffer"),
			InstanceAccessor<&MappingHandle::GetAddress>("address"),
			InstanceAccessor<&MappingHandle::GetLength>("length"),
			InstanceAccessor<&MappingHandle::GetClosed>("closed"),
			InstanceAccessor<&MappingHandle::GetBusy>("busy"),
			InstanceMethod<&MappingHandle::Unmap>("unmap"),
			InstanceMethod<&MappingHandle::FillSync>("fillSync"),
			InstanceMethod<&MappingHandle::VerifySync>("verifySync"),
			InstanceMethod<&MappingHandle::FillAsync>("fillAsync"),
			InstanceMethod<&MappingHandle::VerifyAsync>("verifyAsync"),
			InstanceMethod<&MappingHandle::Probe>("probe"),
		});
	AddonData* data = new AddonData();
	data->mapping_ctor = Napi::Persistent(ctor);
	env.SetInstanceData<AddonData>(data);
	return ctor;
}

// Everything that can fail happens here, before the wrap object exists: a
// C++ exception thrown out of an ObjectWrap constructor leaves node-addon-api
// to free a half-built instance, which is not a path to rely on.
Napi::Object MappingHandle::Create(Napi::Env env, uint8_t* addr, uint64_t length, uint64_t page_size) {
	auto state = std::make_shared<MapState>();
	state->addr = addr;
	state->length = length;
	state->page_size = page_size;
	// The raw call, not Napi::ArrayBuffer::New: when Node cannot make the
	// buffer (too large) it runs the finalizer at once and reports failure,
	// and node-addon-api would then free its finalize data a second time.
	StateHolder* hint = new StateHolder(state);
	napi_value raw = nullptr;
	napi_status status = napi_create_external_arraybuffer(env, addr, length, FinalizeBuffer, hint, &raw);
	if (status != napi_ok) {
		if (!state->released) {  // the finalizer did not run: the hint is still ours
			delete hint;
			Release(state.get());
		}
		Napi::Error error = Napi::Error::New(env);  // the pending exception, if Node set one
		if (error.IsEmpty()) error = Napi::Error::New(env, "cannot create an ArrayBuffer over the mapping");
		if (!error.Value().Has("code")) error.Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
		throw error;
	}
	Napi::ArrayBuffer buffer(env, raw);
	// From here the buffer's finalizer owns the munmap.
	AddonData* data = env.GetInstanceData<AddonData>();
	return data->mapping_ctor.New({Napi::External<StateHolder>::New(env, new StateHolder(state),
		[](Napi::Env, StateHolder* holder) { delete holder; }), buffer});
}

MappingHandle::MappingHandle(const Napi::CallbackInfo& info) : ObjectWrap<MappingHandle>(info) {
	Napi::Env env = info.Env();
	if (info.Length() < 2 || !info[0].IsExternal() || !info[1].IsArrayBuffer())
		throw Napi::TypeError::New(env, "NativeMapping is created by mmap(), not constructed directly");
	state_ = *info[0].As<Napi::External<StateHolder>>().Data();
	buffer_ = Napi::Persistent(info[1].As<Napi::Object>());
}

void MappingHandle::RequireOpen(Napi::Env env, const char* syscall) const {
	if (state_->released) {
		Napi::Error error = Napi::Error::New(env, std::string("the mapping was unmapped (") + syscall + ")");
		error.Set("code", Napi::String::New(env, "ERR_MAPPING_CLOSED"));
		throw error;
	}
}

Napi::Value MappingHandle::GetBuffer(const Napi::CallbackInfo& info) {
	if (state_->released) return info.Env().Undefined();
	return buffer_.Value();
}

Napi::Value MappingHandle::GetAddress(const Napi::CallbackInfo& info) {
	return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(state_->addr)));
}

Napi::Value MappingHandle::GetLength(const Napi::CallbackInfo& info) {
	return Napi::Number::New(info.Env(), double(state_->length));
}

Napi::Value MappingHandle::GetClosed(const Napi::CallbackInfo& info) {
	return Napi::Boolean::New(info.Env(), state_->released);
}

Napi::Value MappingHandle::GetBusy(const Napi::CallbackInfo& info) {
	return Napi::Boolean::New(info.Env(), state_->busy > 0);
}

Napi::Value MappingHandle::Unmap(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	if (state_->released) return Napi::Boolean::New(env, false);
	if (state_->busy > 0) ThrowErrno(env, EBUSY, "munmap");
	// Detach first: every view drops to length 0, so no JavaScript can reach
	// the address once munmap returns it to the kernel for reuse.
	Napi::ArrayBuffer buffer = buffer_.Value().As<Napi::ArrayBuffer>();
	if (!buffer.IsDetached()) buffer.Detach();
	state_->released = true;
	if (munmap(state_->addr, state_->length) != 0) ThrowErrno(env, errno, "munmap");
	buffer_.Reset();
	return Napi::Boolean::New(env, true);
}

Napi::Value MappingHandle::FillSync(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	RequireOpen(env, "fill");
	RegionArgs args = ParseRegion(info, *state_);
	RegionResult result;
	FillRegion(state_->addr, args.offset, args.length, state_->page_size, args.spec, &result);
	if (result.error) ThrowErrno(env, result.error, "fill");
	return FillToJs(env, result);
}

Napi::Value MappingHandle::VerifySync(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	RequireOpen(env, "verify");
	RegionArgs args = ParseRegion(info, *state_);
	VerifyResult result;
	VerifyRegion(state_->addr, args.offset, args.length, state_->page_size, args.spec, args.max_mismatches, &result);
	if (result.error) ThrowErrno(env, result.error, "verify");
	return VerifyToJs(env, result, IsWordPattern(args.spec.pattern));
}

Napi::Value MappingHandle::FillAsync(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	RequireOpen(env, "fill");
	RegionArgs args = ParseRegion(info, *state_);
	auto* worker = new RegionWorker(env, info.This().As<Napi::Object>(), state_, args, false);
	Napi::Promise promise = worker->Promise();
	worker->Queue();
	return promise;
}

Napi::Value MappingHandle::VerifyAsync(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	RequireOpen(env, "verify");
	RegionArgs args = ParseRegion(info, *state_);
	auto* worker = new RegionWorker(env, info.This().As<Napi::Object>(), state_, args, true);
	Napi::Promise promise = worker->Promise();
	worker->Queue();
	return promise;
}

namespace {

struct ProbeContext {
	uint8_t* states;  // per page of the probed range: 0 absent, 1 present, 2 faulting
	uint64_t first_page;
	uint64_t page_size;
};

void TouchChunk(void* c, uint8_t* base, uint64_t off, uint64_t len) {
	ProbeContext* ctx = static_cast<ProbeContext*>(c);
	for (uint64_t at = off; at < off + len; at += ctx->page_size) {
		uint64_t index = at / ctx->page_size - ctx->first_page;
		if (ctx->states[index] != 0) continue;
		(void)*reinterpret_cast<volatile const uint8_t*>(base + at);
		ctx->states[index] = 1;
	}
}

void NoSnapshot(void*) {}

}  // namespace

// probe({touch, offset, length}) -> Uint8Array of page states. mincore()
// reads residency without touching; touch gives each non-resident page one
// guarded read, so a page that would raise SIGBUS is reported as faulting.
Napi::Value MappingHandle::Probe(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	RequireOpen(env, "probe");
	bool touch = false;
	uint64_t offset = 0;
	uint64_t length = state_->length;
	if (info.Length() > 0 && info[0].IsObject()) {
		Napi::Object o = info[0].As<Napi::Object>();
		touch = o.Has("touch") && o.Get("touch").ToBoolean();
		offset = OptU64(o, "offset", 0);
		length = OptU64(o, "length", state_->length - std::min(offset, state_->length));
	}
	uint64_t ps = state_->page_size;
	if (offset % ps || length % ps || offset > state_->length || length > state_->length - offset)
		throw Napi::RangeError::New(env, "probe range must be page aligned and inside the mapping");
	uint64_t pages = length / ps;
	Napi::Uint8Array states = Napi::Uint8Array::New(env, pages);
	if (pages == 0) return states;
	std::vector<unsigned char> vec(pages);
	if (mincore(state_->addr + offset, length, vec.data()) != 0) ThrowErrno(env, errno, "mincore");
	uint8_t* out = states.Data();
	for (uint64_t i = 0; i < pages; i++) out[i] = vec[i] & 1;
	if (touch) {
		ProbeContext ctx{out, offset / ps, ps};
		std::vector<uint64_t> faulting;
		WalkOps ops{TouchChunk, NoSnapshot, NoSnapshot};
		int err = GuardedWalk(state_->addr, offset, offset + length, ps, ps, ops, &ctx, &faulting);
		if (err) ThrowErrno(env, err, "probe");
		for (uint64_t page : faulting) out[page - offset / ps] = 2;
	}
	return states;
}

}  // namespace hybridmem
