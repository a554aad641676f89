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
#include "fdsources.h"
#include "guard.h"
#include "hybridmem_uapi.h"
#include "mapping.h"
#include "modload.h"

namespace hybridmem {

namespace {

constexpr size_t kMemfdNameMax = 249;

uint64_t PageSize() { return static_cast<uint64_t>(sysconf(_SC_PAGESIZE)); }

std::string ToPath(const Napi::Value& value) {
	if (!value.IsString()) ThrowArgType(value.Env(), "path", "of type string", value);
	std::string path = value.As<Napi::String>();
	if (path.empty() || path.find('\0') != std::string::npos)
		ThrowArgValue(value.Env(), "path", "must be a non-empty string without null bytes", value);
	return path;
}

Napi::Value Open(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	std::string path = ToPath(info[0]);
	int flags = info[1].IsUndefined() ? O_RDWR : static_cast<int>(ToInt(info[1], "flags", 0, INT32_MAX));
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
	std::string name = "hybridmem";
	if (!info[0].IsUndefined()) {
		if (!info[0].IsString()) ThrowArgType(env, "name", "of type string", info[0]);
		name = info[0].As<Napi::String>().Utf8Value();
	}
	// memfd_create(2): EINVAL for a name longer than 249 bytes (NAME_MAX
	// minus "memfd:"); say so instead of a bare EINVAL.
	if (name.size() > kMemfdNameMax)
		ThrowArgValue(env, "name", "must be at most " + std::to_string(kMemfdNameMax) + " bytes long (memfd_create's limit; it is " + std::to_string(name.size()) + ")", info[0]);
	if (name.find('\0') != std::string::npos) ThrowArgValue(env, "name", "must not contain null bytes", info[0]);
	int fd = memfd_create(name.c_str(), MFD_CLOEXEC);
	if (fd < 0) ThrowErrno(env, errno, "memfd_create");
	return Napi::Number::New(env, fd);
}

Napi::Value Ftruncate(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	int fd = ToFd(info[0]);
	uint64_t size = ToU64(info[1], "size");
	if (size > static_cast<uint64_t>(INT64_MAX)) ThrowOutOfRange(env, "size", "< 2n ** 63n", RangeReceived(info[1]));
	if (ftruncate(fd, static_cast<off_t>(size)) != 0) ThrowErrno(env, errno, "ftruncate");
	return env.Undefined();
}

// mmap(fd, length, prot, shared, offset, group?) -> NativeMapping
Napi::Value Mmap(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	int fd = ToFd(info[0]);
	uint64_t length = ToU64(info[1], "length");
	if (length == 0) ThrowOutOfRange(env, "length", ">= 1", "0");
	int prot = static_cast<int>(ToInt(info[2], "prot", 0, PROT_READ | PROT_WRITE | PROT_EXEC));
	if (!info[3].IsBoolean()) ThrowArgType(env, "shared", "of type boolean", info[3]);
	bool shared = info[3].As<Napi::Boolean>().Value();
	uint64_t offset = info[4].IsUndefined() ? 0 : ToU64(info[4], "offset");
	if (offset > static_cast<uint64_t>(INT64_MAX)) ThrowOutOfRange(env, "offset", "< 2n ** 63n", RangeReceived(info[4]));
	Group* group = ToGroup(info[5]);
	ReserveMappingSlot(env);
	void* addr = mmap(nullptr, length, prot, shared ? MAP_SHARED : MAP_PRIVATE, fd, static_cast<off_t>(offset));
	if (addr == MAP_FAILED) {
		int err = errno;
		ReturnMappingSlot();
		ThrowErrno(env, err, "mmap");
	}
	return CreateMapping(env, static_cast<uint8_t*>(addr), length, PageSize(), prot, group);
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
	o.Set("maxMapBytes", Napi::BigInt::New(env, static_cast<uint64_t>(out.max_map_bytes)));
	o.Set("maxTotalBytes", Napi::BigInt::New(env, static_cast<uint64_t>(out.max_total_bytes)));
	o.Set("logPages", out.log_pages);
	o.Set("logBudget", out.log_budget);
	return o;
}

Napi::Value SetMode(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	int fd = ToFd(info[0]);
	Napi::Object m = ToOptions(info[1], "mode");
	struct hybridmem_mode mode = {};
	// Only the C types' ranges: the bad-input scenario hands the kernel
	// values it must refuse (map_mode 99, fail_at -5).
	mode.map_mode = static_cast<__u32>(ToInt(m.Get("mapMode"), "mode.mapMode", 0, UINT32_MAX));
	mode.zap_after_map = static_cast<__u32>(ToInt(m.Get("zapAfterMap"), "mode.zapAfterMap", 0, UINT32_MAX));
	mode.fail_at = static_cast<__s32>(ToInt(m.Get("failAt"), "mode.failAt", INT32_MIN, INT32_MAX));
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
	if (!info[0].IsBigInt()) ThrowArgType(env, "address", "of type bigint", info[0]);
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
	InitMappings(env, exports);
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
	constants.Set("IOC_GET_INFO", Napi::Number::New(env, double(HYBRIDMEM_IOC_GET_INFO)));
	constants.Set("IOC_MAGIC", static_cast<int>(HYBRIDMEM_IOC_MAGIC));
	exports.Set("constants", constants);
	InitFdSources(env, exports);
	InitModLoad(env, exports);
	return exports;
}

}  // namespace

}  // namespace hybridmem

static Napi::Object InitHybridmem(Napi::Env env, Napi::Object exports) { return hybridmem::Init(env, exports); }

// NODE_API_MODULE, except for the version reported to Node: compiled against
// the stable Node-API 8 headers, the module registers as the experimental
// version, whose basic finalizers (the ones that unmap) run synchronously in
// the garbage collection that finds their object dead instead of on a later
// event-loop turn (Node >= 20.10; see native/mapping.h).
EXTERN_C_START
NAPI_MODULE_EXPORT int32_t NODE_API_MODULE_GET_API_VERSION(void) { return NAPI_VERSION_EXPERIMENTAL; }
NAPI_MODULE_EXPORT napi_value NAPI_MODULE_INITIALIZER(napi_env env, napi_value exports) {
	return Napi::RegisterModule(env, exports, InitHybridmem);
}
EXTERN_C_END
