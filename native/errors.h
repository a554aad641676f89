// Node-fs-style errors from a failed syscall: code, errno (negative, libuv's
// convention), syscall and optional path, so JavaScript sees the same shape
// as an error from node:fs.
#pragma once

#include <napi.h>

#include <string>

namespace hybridmem {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& path = std::string());

[[noreturn]] void ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& path = std::string());

}  // namespace hybridmem
