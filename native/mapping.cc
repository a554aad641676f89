#include "mapping.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "args.h"
#include "errors.h"
#include "guard.h"
#include "patterns.h"

// Present in every Node that registers experimental Node-API modules (20.10+);
// declared weak so a runtime without it only leaks a weak reference.
extern "C" napi_status NAPI_CDECL node_api_post_finalizer(napi_env env, napi_finalize finalize_cb,
	void* finalize_data, void* finalize_hint) __attribute__((weak));

namespace hybridmem {

struct Group {
	MapState* head = nullptr;
};

namespace {

// Type tags tell a NativeMapping from a group object (both are wrapped).
constexpr napi_type_tag kMappingTag = {0x6879627269646d65ull, 0x6d6d617070696e67ull};
constexpr napi_type_tag kGroupTag = {0x6879627269646d65ull, 0x6d67726f75700000ull};

// V8 is told each region costs this much on top of its length: a vma is a
// scarce resource (vm.max_map_count), and the external-memory pressure makes
// V8 collect dropped mappings after a few thousand instead of tens of thousands.
constexpr int64_t kRegionCost = 16 * 1024;

std::atomic<int64_t> g_live{0};
int64_t g_limit = 0;
int64_t g_max_map_count = 0;
std::once_flag g_limit_once;

void ComputeLimit() {
	g_max_map_count = 65530;
	if (FILE* f = fopen("/proc/sys/vm/max_map_count", "re")) {
		long long v = 0;
		if (fscanf(f, "%lld", &v) == 1 && v > 0) g_max_map_count = v;
		fclose(f);
	}
	// A quarter of the kernel's limit stays for V8, libuv and everything else
	// in the process; running out of vmas there is a fatal V8 OOM, not an error.
	g_limit = g_max_map_count - g_max_map_count / 4;
	if (const char* env = getenv("HYBRIDMEM_MAX_MAPPINGS")) {
		long long v = atoll(env);
		if (v > 0 && v < g_limit) g_limit = v;
	}
}

int64_t Limit() {
	std::call_once(g_limit_once, ComputeLimit);
	return g_limit;
}

// Node-API requires the result pointer (napi_invalid_arg without it, and
// then nothing is adjusted). A basic call: allowed inside finalizers.
void AdjustExternal(napi_env env, int64_t change) {
	int64_t total = 0;
	napi_adjust_external_memory(env, change, &total);
}

struct AddonData {
	napi_ref mapping_ctor = nullptr;
	MapState* constructing = nullptr;  // set only while CreateMapping builds an instance
	EnvState* env_state = nullptr;
};

AddonData* GetData(napi_env env) {
	void* data = nullptr;
	napi_get_instance_data(env, &data);
	return static_cast<AddonData*>(data);
}

void Unlink(MapState* s) {
	if (s->group == nullptr) return;
	if (s->prev) s->prev->next = s->next;
	else s->group->head = s->next;
	if (s->next) s->next->prev = s->prev;
	s->group = nullptr;
	s->prev = s->next = nullptr;
}

void Link(MapState* s, Group* group) {
	s->group = group;
	s->prev = nullptr;
	s->next = group->head;
	if (group->head) group->head->prev = s;
	group->head = s;
}

// Gives the range back to the kernel. Only basic Node-API calls: this also
// runs inside the garbage collector.
void ReleaseRange(napi_env env, MapState* s) {
	if (!s->mapped) return;
	munmap(s->addr, s->length);
	s->mapped = false;
	s->reserved = false;
	ReturnMappingSlot();
	if (s->charge) AdjustExternal(env, -s->charge);
	s->charge = 0;
	Unlink(s);
}

// Releases the range once nothing can reach it: no async call runs on it,
// no ArrayBuffer over it is alive, and the NativeMapping is gone or closed.
void MaybeRelease(napi_env env, MapState* s) {
	if (!s->mapped || s->busy > 0) return;
	if (s->buffers > 0) return;
	if (!s->closed && s->handle_alive) return;
	ReleaseRange(env, s);
}

void MaybeDelete(MapState* s) {
	if (!s->mapped && !s->handle_alive && s->buffers == 0 && s->busy == 0) delete s;
}

void DeleteRef(napi_env env, void* data, void*) { napi_delete_reference(env, static_cast<napi_ref>(data)); }

// Basic finalizer of an ArrayBuffer over the region (runs in the GC, or at
// environment teardown).
void BufferFinalize(node_api_basic_env basic_env, void* data, void* hint) {
	napi_env env = const_cast<napi_env>(basic_env);
	MapState* s = static_cast<MapState*>(data);
	napi_ref ref = static_cast<napi_ref>(hint);
	s->buffers--;
	if (s->buffer_ref == ref) s->buffer_ref = nullptr;
	// Deleting a reference is not allowed inside the GC; post it.
	if (!s->env_state->tearing_down && node_api_post_finalizer != nullptr)
		node_api_post_finalizer(env, DeleteRef, ref, nullptr);
	MaybeRelease(env, s);
	MaybeDelete(s);
}

// Basic finalizer of the NativeMapping object.
void HandleFinalize(node_api_basic_env basic_env, void* data, void*) {
	napi_env env = const_cast<napi_env>(basic_env);
	MapState* s = static_cast<MapState*>(data);
	s->handle_alive = false;
	MaybeRelease(env, s);
	MaybeDelete(s);
}

void GroupFinalize(node_api_basic_env, void* data, void*) {
	Group* group = static_cast<Group*>(data);
	for (MapState* s = group->head; s != nullptr;) {
		MapState* next = s->next;
		s->group = nullptr;
		s->prev = s->next = nullptr;
		s = next;
	}
	delete group;
}

void EnvCleanup(void* arg) { static_cast<EnvState*>(arg)->tearing_down = true; }

void DeleteAddonData(napi_env, void* data, void*) { delete static_cast<AddonData*>(data); }

// The ArrayBuffer over the region: the live one, or a new one.
napi_value BufferOf(napi_env env, MapState* s) {
	napi_value value = nullptr;
	if (s->buffer_ref != nullptr) {
		napi_get_reference_value(env, s->buffer_ref, &value);
		if (value != nullptr) return value;
	}
	napi_value raw = nullptr;
	// No finalizer here: the region's lifetime follows the object (below),
	// not the backing store, which may outlive it briefly.
	napi_status status = napi_create_external_arraybuffer(env, s->addr, s->length, nullptr, nullptr, &raw);
	if (status != napi_ok) {
		Napi::Error error = Napi::Error::New(env);
		if (error.IsEmpty()) error = Napi::Error::New(env, "cannot create an ArrayBuffer over the mapping");
		if (!error.Value().Has("code")) error.Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
		throw error;
	}
	napi_ref ref = nullptr;
	NAPI_THROW_IF_FAILED(env, napi_create_reference(env, raw, 0, &ref), nullptr);
	if (napi_add_finalizer(env, raw, s, BufferFinalize, ref, nullptr) != napi_ok) {
		napi_delete_reference(env, ref);
		throw Napi::Error::New(env);
	}
	s->buffers++;
	s->buffer_ref = ref;  // an older, collected one's reference is deleted by its finalizer
	return raw;
}

// unmap(): gives the driver's mapping back. While an ArrayBuffer object over
// the range is alive, the range is not returned to the kernel but replaced
// (atomically, MAP_FIXED) by anonymous zero-filled private memory with the
// same protection: the buffer is not detached, because Node's own native
// code may still use it (zlib asserts its input view's length on every
// chunk and aborts on a detached one; a pending write or read holds the raw
// pointer), and with the reservation in place nothing that holds the old
// pointer can reach another mapping.
bool CloseState(napi_env env, MapState* s) {
	if (s->closed) return false;
	if (s->busy > 0) ThrowErrno(env, EBUSY, "munmap");
	s->closed = true;
	Unlink(s);
	if (s->buffers > 0) {
		void* got = mmap(s->addr, s->length, s->prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
		if (got == s->addr) {
			s->reserved = true;
			return true;
		}
	}
	int rc = munmap(s->addr, s->length);
	int err = errno;
	s->mapped = false;
	ReturnMappingSlot();
	if (s->charge) AdjustExternal(env, -s->charge);
	s->charge = 0;
	if (rc != 0) ThrowErrno(env, err, "munmap");
	return true;
}

// ---- NativeMapping methods -------------------------------------------------

using Method = Napi::Value (*)(const Napi::CallbackInfo&, MapState*);

template <Method M>
napi_value Trampoline(napi_env env, napi_callback_info cbinfo) {
	try {
		Napi::CallbackInfo info(env, cbinfo);
		napi_value self = info.This();
		bool tagged = false;
		void* ptr = nullptr;
		if (napi_check_object_type_tag(env, self, &kMappingTag, &tagged) != napi_ok || !tagged ||
			napi_unwrap(env, self, &ptr) != napi_ok) {
			Napi::TypeError error = Napi::TypeError::New(env, "Value of \"this\" must be of type NativeMapping");
			error.Set("code", Napi::String::New(env, "ERR_INVALID_THIS"));
			throw error;
		}
		return M(info, static_cast<MapState*>(ptr));
	} catch (const Napi::Error& error) {
		error.ThrowAsJavaScriptException();
		return nullptr;
	}
}

void RequireOpen(Napi::Env env, MapState* s, const char* operation) {
	if (s->closed) ThrowCoded(env, "ERR_MAPPING_CLOSED", std::string("cannot ") + operation + ": the mapping was unmapped");
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
RegionArgs ParseRegion(const Napi::CallbackInfo& info, const MapState& s) {
	Napi::Env env = info.Env();
	Napi::Object o = ToOptions(info[0], "options");
	RegionArgs args;
	Napi::Value pattern = o.Get("pattern");
	args.spec.pattern = static_cast<Pattern>(pattern.IsUndefined() ? 0 : ToInt(pattern, "options.pattern", 0, 3));
	args.spec.seed = static_cast<uint64_t>(OptU64(o, "seed", "options.seed", 0));
	Napi::Value value = o.Get("value");
	args.spec.value = static_cast<uint8_t>(value.IsUndefined() ? 0 : ToInt(value, "options.value", 0, 255));
	args.offset = OptU64(o, "offset", "options.offset", 0);
	if (args.offset > s.length)
		ThrowOutOfRange(env, "options.offset", "<= " + std::to_string(s.length) + " (the mapping's length)",
			RangeReceived(o.Get("offset")));
	args.length = OptU64(o, "length", "options.length", s.length - args.offset);
	if (args.length > s.length - args.offset)
		ThrowOutOfRange(env, "options.length",
			"<= " + std::to_string(s.length - args.offset) + " (the mapping's length minus the offset)",
			RangeReceived(o.Get("length")));
	Napi::Value max = o.Get("maxMismatches");
	args.max_mismatches =
		static_cast<uint32_t>(std::min<int64_t>(max.IsUndefined() ? 16 : ToInt(max, "options.maxMismatches", 0, UINT32_MAX), 1 << 20));
	if (IsWordPattern(args.spec.pattern) && ((args.offset | args.length) & 7))
		ThrowOutOfRange(env, (args.offset & 7) ? "options.offset" : "options.length",
			"a multiple of 8 for a word pattern", std::to_string((args.offset & 7) ? args.offset : args.length));
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

Napi::Error GuardError(Napi::Env env, int err, const char* operation) {
	if (err == ENOMEM) {
		Napi::Error error = Napi::Error::New(env, std::string("cannot ") + operation +
			": no memory for this thread's fault-guard slot");
		error.Set("code", Napi::String::New(env, "ERR_HYBRIDMEM_GUARD"));
		return error;
	}
	return ErrnoError(env, err, operation);
}

// A fill or verify on the libuv pool, with the raw Node-API so nothing can
// throw out of the completion: when the environment goes away (worker
// terminate(), process.exit() in a worker) the completion still runs, finds
// it cannot call into JavaScript, and only cleans up.
struct RegionWork {
	napi_async_work work = nullptr;
	napi_deferred deferred = nullptr;
	napi_ref handle_ref = nullptr;  // keeps the NativeMapping alive while it runs
	MapState* state = nullptr;
	RegionArgs args;
	bool verify = false;
	VerifyResult result;
};

void ExecuteWork(napi_env, void* data) {
	RegionWork* w = static_cast<RegionWork*>(data);
	MapState* s = w->state;
	if (w->verify)
		VerifyRegion(s->addr, w->args.offset, w->args.length, s->page_size, w->args.spec, w->args.max_mismatches,
			&w->result);
	else
		FillRegion(s->addr, w->args.offset, w->args.length, s->page_size, w->args.spec, &w->result);
}

void CompleteWork(napi_env env, napi_status status, void* data) {
	RegionWork* w = static_cast<RegionWork*>(data);
	MapState* s = w->state;
	s->busy--;
	if (!s->env_state->tearing_down && status == napi_ok) {
		try {
			Napi::HandleScope scope(env);
			const char* operation = w->verify ? "verify" : "fill";
			if (w->result.error) {
				napi_reject_deferred(env, w->deferred, GuardError(env, w->result.error, operation).Value());
			} else {
				Napi::Value value = w->verify ? Napi::Value(VerifyToJs(env, w->result, IsWordPattern(w->args.spec.pattern)))
				                              : Napi::Value(FillToJs(env, w->result));
				napi_resolve_deferred(env, w->deferred, value);
			}
		} catch (...) {
			// The environment cannot run JavaScript any more; nobody awaits the promise.
		}
	}
	napi_delete_reference(env, w->handle_ref);
	napi_delete_async_work(env, w->work);
	MaybeRelease(env, s);
	MaybeDelete(s);
	delete w;
}

Napi::Value QueueRegion(const Napi::CallbackInfo& info, MapState* s, bool verify) {
	Napi::Env env = info.Env();
	RequireOpen(env, s, verify ? "verify" : "fill");
	RegionArgs args = ParseRegion(info, *s);
	RegionWork* w = new RegionWork();
	w->state = s;
	w->args = args;
	w->verify = verify;
	napi_value promise = nullptr;
	napi_value name = Napi::String::New(env, verify ? "hybridmem.verify" : "hybridmem.fill");
	if (napi_create_promise(env, &w->deferred, &promise) != napi_ok ||
		napi_create_reference(env, info.This(), 1, &w->handle_ref) != napi_ok ||
		napi_create_async_work(env, nullptr, name, ExecuteWork, CompleteWork, w, &w->work) != napi_ok ||
		napi_queue_async_work(env, w->work) != napi_ok) {
		if (w->work) napi_delete_async_work(env, w->work);
		if (w->handle_ref) napi_delete_reference(env, w->handle_ref);
		delete w;  // the promise is never settled, and never returned
		throw Napi::Error::New(env);
	}
	s->busy++;
	return Napi::Value(env, promise);
}

Napi::Value FillAsync(const Napi::CallbackInfo& info, MapState* s) { return QueueRegion(info, s, false); }
Napi::Value VerifyAsync(const Napi::CallbackInfo& info, MapState* s) { return QueueRegion(info, s, true); }

Napi::Value FillSync(const Napi::CallbackInfo& info, MapState* s) {
	Napi::Env env = info.Env();
	RequireOpen(env, s, "fill");
	RegionArgs args = ParseRegion(info, *s);
	RegionResult result;
	FillRegion(s->addr, args.offset, args.length, s->page_size, args.spec, &result);
	if (result.error) throw GuardError(env, result.error, "fill");
	return FillToJs(env, result);
}

Napi::Value VerifySync(const Napi::CallbackInfo& info, MapState* s) {
	Napi::Env env = info.Env();
	RequireOpen(env, s, "verify");
	RegionArgs args = ParseRegion(info, *s);
	VerifyResult result;
	VerifyRegion(s->addr, args.offset, args.length, s->page_size, args.spec, args.max_mismatches, &result);
	if (result.error) throw GuardError(env, result.error, "verify");
	return VerifyToJs(env, result, IsWordPattern(args.spec.pattern));
}

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

// probe({touch, offset, length}) -> Uint8Array of page states. mincore()
// reads residency without touching; touch gives each non-resident page one
// guarded read, so a page that would raise SIGBUS is reported as faulting.
Napi::Value Probe(const Napi::CallbackInfo& info, MapState* s) {
	Napi::Env env = info.Env();
	RequireOpen(env, s, "probe");
	bool touch = false;
	uint64_t offset = 0;
	uint64_t length = s->length;
	uint64_t ps = s->page_size;
	if (!info[0].IsUndefined()) {
		Napi::Object o = ToOptions(info[0], "options");
		Napi::Value t = o.Get("touch");
		if (!t.IsUndefined() && !t.IsBoolean()) ThrowArgType(env, "options.touch", "of type boolean", t);
		touch = t.IsBoolean() && t.As<Napi::Boolean>().Value();
		offset = OptU64(o, "offset", "options.offset", 0);
		if (offset > s->length || offset % ps)
			ThrowOutOfRange(env, "options.offset",
				"a multiple of the page size (" + std::to_string(ps) + ") and <= " + std::to_string(s->length),
				RangeReceived(o.Get("offset")));
		length = OptU64(o, "length", "options.length", s->length - offset);
		if (length > s->length - offset || length % ps)
			ThrowOutOfRange(env, "options.length",
				"a multiple of the page size (" + std::to_string(ps) + ") and <= " + std::to_string(s->length - offset),
				RangeReceived(o.Get("length")));
	}
	uint64_t pages = length / ps;
	Napi::Uint8Array states = Napi::Uint8Array::New(env, pages);
	if (pages == 0) return states;
	std::vector<unsigned char> vec(pages);
	if (mincore(s->addr + offset, length, vec.data()) != 0) ThrowErrno(env, errno, "mincore");
	uint8_t* out = states.Data();
	for (uint64_t i = 0; i < pages; i++) out[i] = vec[i] & 1;
	if (touch) {
		ProbeContext ctx{out, offset / ps, ps};
		std::vector<uint64_t> faulting;
		WalkOps ops{TouchChunk, NoSnapshot, NoSnapshot};
		int err = GuardedWalk(s->addr, offset, offset + length, ps, ps, ops, &ctx, &faulting);
		if (err) throw GuardError(env, err, "probe");
		for (uint64_t page : faulting) out[page - offset / ps] = 2;
	}
	return states;
}

Napi::Value Unmap(const Napi::CallbackInfo& info, MapState* s) {
	return Napi::Boolean::New(info.Env(), CloseState(info.Env(), s));
}

Napi::Value GetBuffer(const Napi::CallbackInfo& info, MapState* s) {
	if (s->closed) return info.Env().Undefined();
	return Napi::Value(info.Env(), BufferOf(info.Env(), s));
}

Napi::Value GetAddress(const Napi::CallbackInfo& info, MapState* s) {
	return Napi::BigInt::New(info.Env(), static_cast<uint64_t>(reinterpret_cast<uintptr_t>(s->addr)));
}

Napi::Value GetLength(const Napi::CallbackInfo& info, MapState* s) {
	return Napi::Number::New(info.Env(), double(s->length));
}

Napi::Value GetClosed(const Napi::CallbackInfo& info, MapState* s) { return Napi::Boolean::New(info.Env(), s->closed); }

Napi::Value GetBusy(const Napi::CallbackInfo& info, MapState* s) { return Napi::Boolean::New(info.Env(), s->busy > 0); }

// `new NativeMapping()` from JavaScript is refused; CreateMapping sets
// `constructing` around its own napi_new_instance.
napi_value Construct(napi_env env, napi_callback_info cbinfo) {
	napi_value self = nullptr;
	napi_get_cb_info(env, cbinfo, nullptr, nullptr, &self, nullptr);
	AddonData* data = GetData(env);
	MapState* s = data ? data->constructing : nullptr;
	if (s == nullptr) {
		napi_throw_type_error(env, "ERR_ILLEGAL_CONSTRUCTOR",
			"Illegal constructor: a NativeMapping comes from mmap()");
		return nullptr;
	}
	data->constructing = nullptr;
	if (napi_wrap(env, self, s, HandleFinalize, nullptr, nullptr) != napi_ok ||
		napi_type_tag_object(env, self, &kMappingTag) != napi_ok) {
		napi_throw_error(env, "ERR_HYBRIDMEM_NATIVE", "cannot wrap the mapping");
		return nullptr;
	}
	s->handle_alive = true;
	return self;
}

Napi::Value CreateGroup(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	Napi::Object object = Napi::Object::New(env);
	Group* group = new Group();
	if (napi_wrap(env, object, group, GroupFinalize, nullptr, nullptr) != napi_ok) {
		delete group;
		throw Napi::Error::New(env);
	}
	NAPI_THROW_IF_FAILED(env, napi_type_tag_object(env, object, &kGroupTag), Napi::Value());
	return object;
}

// closeGroup(group): unmaps every unclosed mapping made with the group, or
// throws EBUSY (changing nothing) while one of them runs an async call.
Napi::Value CloseGroup(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	Group* group = ToGroup(info[0]);
	if (group == nullptr) ThrowArgType(env, "group", "a group from createGroup()", info[0]);
	for (MapState* s = group->head; s != nullptr; s = s->next)
		if (s->busy > 0) ThrowErrno(env, EBUSY, "close");
	uint32_t count = 0;
	while (group->head != nullptr) {
		CloseState(env, group->head);  // unlinks it
		count++;
	}
	return Napi::Number::New(env, count);
}

Napi::Value LiveMappings(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	Napi::Object o = Napi::Object::New(env);
	o.Set("live", Napi::Number::New(env, double(g_live.load())));
	o.Set("limit", Napi::Number::New(env, double(Limit())));
	o.Set("maxMapCount", Napi::Number::New(env, double(g_max_map_count)));
	return o;
}

template <Method M>
napi_property_descriptor MethodProp(const char* name) {
	return {name, nullptr, Trampoline<M>, nullptr, nullptr, nullptr, napi_default_method, nullptr};
}

template <Method M>
napi_property_descriptor GetterProp(const char* name) {
	return {name, nullptr, nullptr, Trampoline<M>, nullptr, nullptr, napi_configurable, nullptr};
}

}  // namespace

Group* ToGroup(const Napi::Value& value) {
	if (value.IsUndefined() || value.IsNull()) return nullptr;
	napi_env env = value.Env();
	bool tagged = false;
	void* ptr = nullptr;
	if (!value.IsObject() || napi_check_object_type_tag(env, value, &kGroupTag, &tagged) != napi_ok || !tagged ||
		napi_unwrap(env, value, &ptr) != napi_ok)
		ThrowArgType(value.Env(), "group", "a group from createGroup()", value);
	return static_cast<Group*>(ptr);
}

void ReserveMappingSlot(Napi::Env env) {
	int64_t limit = Limit();
	if (g_live.fetch_add(1) < limit) return;
	g_live.fetch_sub(1);
	// Dropped mappings wait for a collection; force one (external memory far
	// beyond V8's hard limit makes it collect at once, finalizers included).
	constexpr int64_t kNudge = int64_t(1) << 40;
	AdjustExternal(env, kNudge);
	AdjustExternal(env, -kNudge);
	if (g_live.fetch_add(1) < limit) return;
	g_live.fetch_sub(1);
	ThrowCoded(env, "ERR_HYBRIDMEM_TOO_MANY_MAPPINGS",
		"cannot map: " + std::to_string(g_live.load()) + " mappings are live (counting ranges still reserved for " +
			"buffers of unmapped ones), and the limit is " + std::to_string(limit) + " (3/4 of vm.max_map_count = " +
			std::to_string(g_max_map_count) + ", or HYBRIDMEM_MAX_MAPPINGS); unmap() mappings you no longer need");
}

void ReturnMappingSlot() { g_live.fetch_sub(1); }

Napi::Object CreateMapping(Napi::Env env, uint8_t* addr, uint64_t length, uint64_t page_size, int prot, Group* group) {
	AddonData* data = GetData(env);
	MapState* s = new MapState();
	s->env = env;
	s->env_state = data->env_state;
	s->addr = addr;
	s->length = length;
	s->page_size = page_size;
	s->prot = prot;
	napi_value ctor = nullptr;
	napi_value instance = nullptr;
	data->constructing = s;
	napi_status status = napi_get_reference_value(env, data->mapping_ctor, &ctor);
	if (status == napi_ok) status = napi_new_instance(env, ctor, 0, nullptr, &instance);
	data->constructing = nullptr;
	if (status != napi_ok || !s->handle_alive) {
		munmap(addr, length);
		ReturnMappingSlot();
		if (!s->handle_alive) delete s;  // else the wrap's finalizer owns it
		throw Napi::Error::New(env);
	}
	s->charge = kRegionCost + static_cast<int64_t>(std::min<uint64_t>(length, uint64_t(1) << 40));
	AdjustExternal(env, s->charge);
	if (group) Link(s, group);
	Napi::Object object(env, instance);
	// Node cannot view every length as one buffer; find out now, while the
	// caller can still be told, rather than at the first m.bytes.
	if (length > (uint64_t(1) << 31)) {
		try {
			BufferOf(env, s);
		} catch (...) {
			CloseState(env, s);
			throw;
		}
	}
	return object;
}

void InitMappings(Napi::Env env, Napi::Object exports) {
	AddonData* data = new AddonData();
	data->env_state = new EnvState();  // left allocated: finalizers may read it during teardown
	napi_add_env_cleanup_hook(env, EnvCleanup, data->env_state);
	NAPI_THROW_IF_FAILED_VOID(env, napi_set_instance_data(env, data, DeleteAddonData, nullptr));
	napi_property_descriptor props[] = {
		GetterProp<GetBuffer>("buffer"),
		GetterProp<GetAddress>("address"),
		GetterProp<GetLength>("length"),
		GetterProp<GetClosed>("closed"),
		GetterProp<GetBusy>("busy"),
		MethodProp<Unmap>("unmap"),
		MethodProp<FillSync>("fillSync"),
		MethodProp<VerifySync>("verifySync"),
		MethodProp<FillAsync>("fillAsync"),
		MethodProp<VerifyAsync>("verifyAsync"),
		MethodProp<Probe>("probe"),
	};
	napi_value ctor = nullptr;
	NAPI_THROW_IF_FAILED_VOID(env, napi_define_class(env, "NativeMapping", NAPI_AUTO_LENGTH, Construct, nullptr,
		sizeof props / sizeof props[0], props, &ctor));
	NAPI_THROW_IF_FAILED_VOID(env, napi_create_reference(env, ctor, 1, &data->mapping_ctor));
	exports.Set("NativeMapping", Napi::Value(env, ctor));
	exports.Set("createGroup", Napi::Function::New<CreateGroup>(env, "createGroup"));
	exports.Set("closeGroup", Napi::Function::New<CloseGroup>(env, "closeGroup"));
	exports.Set("liveMappings", Napi::Function::New<LiveMappings>(env, "liveMappings"));
}

}  // namespace hybridmem
