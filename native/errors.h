// Errors thrown by the addon, in Node's shapes:
//  - a failed syscall: code, errno (negative, libuv's convention), syscall
//    and optional path, as an error from node:fs;
//  - a bad argument: TypeError ERR_INVALID_ARG_TYPE, RangeError
//    ERR_OUT_OF_RANGE or TypeError ERR_INVALID_ARG_VALUE, with Node's message
//    text ("The "fd" argument must be of type number. Received type string
//    ('3')"), so even the raw binding's errors carry a code;
//  - anything else: an Error with an ERR_HYBRIDMEM_* code.
#pragma once

#include <napi.h>

#include <string>

namespace hybridmem {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& path = std::string());

[[noreturn]] void ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& path = std::string());

// What Node's messages say after "Received": type string ('x'), type number
// (5), null, an instance of Foo, function f, ...
std::string DescribeReceived(const Napi::Value& value);

// name is an argument ("fd") or a property ("options.length"); expected
// follows "must be", e.g. "of type number".
[[noreturn]] void ThrowArgType(Napi::Env env, const std::string& name, const std::string& expected,
	const Napi::Value& actual);
// range follows "It must be", e.g. ">= 0 && <= 2147483647"; received is the
// value as Node prints it.
[[noreturn]] void ThrowOutOfRange(Napi::Env env, const std::string& name, const std::string& range,
	const std::string& received);
[[noreturn]] void ThrowArgValue(Napi::Env env, const std::string& name, const std::string& reason,
	const Napi::Value& actual);
[[noreturn]] void ThrowCoded(Napi::Env env, const char* code, const std::string& message);

}  // namespace hybridmem
