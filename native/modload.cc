// finit_module(2), delete_module(2) and mknod(2) for the VM runner's guests.
// Errors are Node-style errno errors (code, errno, syscall, path), so a caller
// can tell EEXIST from ENOEXEC from EPERM exactly as insmod's messages would.
#include "modload.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "errors.h"

namespace hybridmem {

namespace {

std::string ToStr(const Napi::CallbackInfo& info, size_t i, const char* name) {
	if (!info[i].IsString()) ThrowArgType(info.Env(), name, "of type string", info[i]);
	return info[i].As<Napi::String>().Utf8Value();
}

uint32_t ToU32(const Napi::CallbackInfo& info, size_t i, const char* name, uint32_t max) {
	if (!info[i].IsNumber()) ThrowArgType(info.Env(), name, "of type number", info[i]);
	double v = info[i].As<Napi::Number>().DoubleValue();
	if (!(v >= 0 && v <= max) || v != static_cast<double>(static_cast<uint32_t>(v)))
		ThrowOutOfRange(info.Env(), name, ">= 0 && <= " + std::to_string(max), std::to_string(v));
	return static_cast<uint32_t>(v);
}

// loadModule(path, params): finit_module on the file, as insmod does.
Napi::Value LoadModule(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	std::string path = ToStr(info, 0, "path");
	std::string params = ToStr(info, 1, "params");
	int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0) ThrowErrno(env, errno, "open", path);
	long ret = syscall(SYS_finit_module, fd, params.c_str(), 0);
	int err = errno;
	close(fd);
	if (ret != 0) ThrowErrno(env, err, "finit_module", path);
	return env.Undefined();
}

// unloadModule(name): delete_module with O_NONBLOCK, as rmmod does (EWOULDBLOCK while in use).
Napi::Value UnloadModule(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	std::string name = ToStr(info, 0, "name");
	if (syscall(SYS_delete_module, name.c_str(), O_NONBLOCK) != 0) ThrowErrno(env, errno, "delete_module", name);
	return env.Undefined();
}

// mknodChar(path, mode, major, minor): a character device node with exactly `mode` (umask does not apply).
Napi::Value MknodChar(const Napi::CallbackInfo& info) {
	Napi::Env env = info.Env();
	std::string path = ToStr(info, 0, "path");
	uint32_t mode = ToU32(info, 1, "mode", 07777);
	uint32_t major_ = ToU32(info, 2, "major", 4095);
	uint32_t minor_ = ToU32(info, 3, "minor", 1048575);
	if (mknod(path.c_str(), S_IFCHR | mode, makedev(major_, minor_)) != 0) ThrowErrno(env, errno, "mknod", path);
	if (chmod(path.c_str(), mode) != 0) ThrowErrno(env, errno, "chmod", path);
	return env.Undefined();
}

}  // namespace

void InitModLoad(Napi::Env env, Napi::Object exports) {
	exports.Set("loadModule", Napi::Function::New<LoadModule>(env, "loadModule"));
	exports.Set("unloadModule", Napi::Function::New<UnloadModule>(env, "unloadModule"));
	exports.Set("mknodChar", Napi::Function::New<MknodChar>(env, "mknodChar"));
}

}  // namespace hybridmem
