// Module entry: the thin syscall surface (open, close, memfd, ftruncate,
// mmap), the typed ioctls of kmod/hybridmem_uapi.h, and pageSize. Everything
// that can be decided in TypeScript (names, validation, defaults) is.
#include <fcntl.h>
#include <napi.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "args.h"
#include "errors.h"
#include "guard.h"
#include "hybridmem_uapi.h"
#include "mapping.h"

namespace hybridmem {

namespace {

uint64_t PageSize() { return static_cast<uint64_t>(sysconf(_SC_PAGESIZE)); }

Napi::Value Open(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "path must be a string");
	std::string path = info[0].As<Napi::String>();
	int flags = info.Length() > 1 ? static_cast<int>(ToI64(info[1], "flags")) : O_RDWR;
	int fd = open(path.c_str(), flags | O_CLOEXEC);
	if (fd < 0) ThrowErrno(env, errno, "open", path);
	return Napi::Number::New(env, fd);
}

Napi::Value Close(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	int fd = ToFd(info[0]);
	if (close(fd) != 0) ThrowErrno(env, errno, "close");
	return env.Undefined();
}

Napi::Value Memfd(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	std::string name = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "hybridmem";
	int fd = memfd_create(name.c_str(), MFD_CLOEXEC);
	if (fd < 0) ThrowErrno(env, errno, "memfd_create");
	return Napi::Number::New(env, fd);
}

Napi::Value Ftruncate(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	int fd = ToFd(info[0]);
	int64_t size = ToI64(info[1], "size");
	if (ftruncate(fd, size) != 0) ThrowErrno(env, errno, "ftruncate");
	return env.Undefined();
}

// mmap(fd, length, prot, shared, offset) -> NativeMapping
Napi::Value Mmap(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	int fd = ToFd(info[0]);
	uint64_t length = ToU64(info[1], "length");
	int prot = static_cast<int>(ToI64(info[2], "prot"));
	bool shared = info[3].ToBoolean();
	uint64_t offset = info.Length() > 4 ? ToU64(info[4], "offset") : 0;
	if (length == 0 || offset > static_cast<uint64_t>(INT64_MAX)) ThrowErrno(env, EINVAL, "mmap");
	void* addr = mmap(nullptr, length, prot, shared ? MAP_SHARED : MAP_PRIVATE, fd, static_cast<off_t>(offset));
	if (addr == MAP_FAILED) ThrowErrno(env, errno, "mmap");
	return MappingHandle::Create(env, static_cast<uint8_t*>(addr), length, PageSize());
}

template <typename T>
void Ioctl(Napi::Env env, int fd, unsigned long request, T* arg) {
	if (ioctl(fd, request, arg) != 0) ThrowErrno(env, errno, "ioctl");
}

Napi::Value GetInfo(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	struct hybridmem_info out = {};
	Ioctl(env, ToFd(info[0]), HYBRIDMEM_IOC_GET_INFO, &out);
	Napi::Object o = Napi::Object::New(env);
	o.Set("version", out.version);
	o.Set("pageSize", out.page_size);
	o.Set("mapMode", out.map_mode);
	o.Set("zapAfterMap", out.zap_after_map);
	o.Set("failAt", out.fail_at);
	o.Set("allowBug", out.allow_bug);
	o.Set("maxPages", Napi::BigInt::New(env, static_cast<uint64_t>(out.max_pages)));
	o.Set("maxTotalPages", Napi::BigInt::New(env, static_cast<uint64_t>(out.max_total_pages)));
	o.Set("logPages", out.log_pages);
	return o;
}

Napi::Value SetMode(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	int fd = ToFd(info[0]);
	if (info.Length() < 2 || !info[1].IsObject()) throw Napi::TypeError::New(env, "mode object expected");
	Napi::Object m = info[1].As<Napi::Object>();
	struct hybridmem_mode mode = {};
	mode.map_mode = static_cast<__u32>(ToU64(m.Get("mapMode"), "mapMode"));
	mode.zap_after_map = static_cast<__u32>(ToU64(m.Get("zapAfterMap"), "zapAfterMap"));
	mode.fail_at = static_cast<__s32>(ToI64(m.Get("failAt"), "failAt"));
	Ioctl(env, fd, HYBRIDMEM_IOC_SET_MODE, &mode);
	return env.Undefined();
}

Napi::Value GetStats(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	struct hybridmem_stats s = {};
	Ioctl(env, ToFd(info[0]), HYBRIDMEM_IOC_GET_STATS, &s);
	Napi::Object o = Napi::Object::New(env);
	auto big = [&](const char* key, __u64 v) { o.Set(key, Napi::BigInt::New(env, static_cast<uint64_t>(v))); };
	big("livePages", s.live_pages);
	big("liveMappings", s.live_mappings);
	big("maps", s.maps);
	big("mapFailures", s.map_failures);
	big("zaps", s.zaps);
	big("faults", s.faults);
	big("remaps", s.remaps);
	big("frees", s.frees);
	return o;
}

Napi::Value RangeIoctl(const Napi::CallbackInfo& info, unsigned long request) {
	Napi::Env env = info.Env();
	struct hybridmem_range range = {};
	int fd = ToFd(info[0]);
	range.addr = ToU64(info[1], "addr");
	range.length = ToU64(info[2], "length");
	Ioctl(env, fd, request, &range);
	Napi::Object o = Napi::Object::New(env);
	o.Set("pages", Napi::Number::New(env, double(range.pages)));
	o.Set("flags", range.flags);
	return o;
}

// ioctl with any command number and any argument address, for the bad-input
// checks (unknown command -> ENOTTY, unmapped argument -> EFAULT).  The kernel
// validates both; nothing here dereferences the address.
Napi::Value IoctlRaw(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	int fd = ToFd(info[0]);
	unsigned long request = static_cast<unsigned long>(ToU64(info[1], "request"));
	unsigned long arg = static_cast<unsigned long>(ToU64(info[2], "arg"));
	int ret = ioctl(fd, request, arg);
	if (ret < 0) ThrowErrno(env, errno, "ioctl");
	return Napi::Number::New(env, ret);
}

// Tries to grow a mapping in place (mremap without MREMAP_MAYMOVE), which a
// driver's VM_DONTEXPAND must refuse.  Should it succeed, the mapping is
// shrunk back at once so its owner still unmaps exactly what it mapped.
Napi::Value MremapGrow(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	void* addr = reinterpret_cast<void*>(static_cast<uintptr_t>(ToU64(info[0], "address")));
	size_t old_len = static_cast<size_t>(ToU64(info[1], "oldLength"));
	size_t new_len = static_cast<size_t>(ToU64(info[2], "newLength"));
	void* got = mremap(addr, old_len, new_len, 0);
	if (got == MAP_FAILED) ThrowErrno(env, errno, "mremap");
	mremap(addr, new_len, old_len, 0);
	return env.Undefined();
}

Napi::Value Zap(const Napi::CallbackInfo& info) { return RangeIoctl(info, HYBRIDMEM_IOC_ZAP); }
Napi::Value Remap(const Napi::CallbackInfo& info) { return RangeIoctl(info, HYBRIDMEM_IOC_REMAP); }

Napi::Object Init(Napi::Env env, Napi::Object exports) {
	// Installed at load so it sits above whatever handler Node/V8 set up
	// (and chains to it); failure is reported by the first guarded call.
	InstallFaultHandlers();
	exports.Set("NativeMapping", MappingHandle::DefineClass(env));
	exports.Set("open", Napi::Function::New<Open>(env, "open"));
	exports.Set("close", Napi::Function::New<Close>(env, "close"));
	exports.Set("memfd", Napi::Function::New<Memfd>(env, "memfd"));
	exports.Set("ftruncate", Napi::Function::New<Ftruncate>(env, "ftruncate"));
	exports.Set("mmap", Napi::Function::New<Mmap>(env, "mmap"));
	exports.Set("getInfo", Napi::Function::New<GetInfo>(env, "getInfo"));
	exports.Set("setMode", Napi::Function::New<SetMode>(env, "setMode"));
	exports.Set("getStats", Napi::Function::New<GetStats>(env, "getStats"));
	exports.Set("zap", Napi::Function::New<Zap>(env, "zap"));
	exports.Set("remap", Napi::Function::New<Remap>(env, "remap"));
	exports.Set("ioctlRaw", Napi::Function::New<IoctlRaw>(env, "ioctlRaw"));
	exports.Set("mremapGrow", Napi::Function::New<MremapGrow>(env, "mremapGrow"));
	exports.Set("pageSize", Napi::Number::New(env, double(PageSize())));
	Napi::Object constants = Napi::Object::New(env);
	constants.Set("PROT_NONE", PROT_NONE);
	constants.Set("PROT_READ", PROT_READ);
	constants.Set("PROT_WRITE", PROT_WRITE);
	constants.Set("O_RDONLY", O_RDONLY);
	constants.Set("O_WRONLY", O_WRONLY);
	constants.Set("O_RDWR", O_RDWR);
	constants.Set("UAPI_VERSION", HYBRIDMEM_UAPI_VERSION);
	constants.Set("RANGE_NOOP", HYBRIDMEM_RANGE_NOOP);
	constants.Set("MODE_COUNT", static_cast<int>(HYBRIDMEM_MODE_COUNT));
	constants.Set("IOC_GET_INFO", Napi::Number::New(env, double(HYBRIDMEM_IOC_GET_INFO)));
	constants.Set("IOC_MAGIC", static_cast<int>(HYBRIDMEM_IOC_MAGIC));
	exports.Set("constants", constants);
	return exports;
}

}  // namespace

}  // namespace hybridmem

static Napi::Object InitHybridmem(Napi::Env env, Napi::Object exports) { return hybridmem::Init(env, exports); }

NODE_API_MODULE(hybridmem, InitHybridmem)
