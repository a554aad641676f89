#include "errors.h"

#include <cctype>
#include <cstring>

namespace hybridmem {

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall, const std::string& path) {
	const char* name = strerrorname_np(err);
	std::string code = name ? name : "E" + std::to_string(err);
	// libuv's messages are strerror's text starting in lower case; the
	// TypeScript layer swaps in libuv's exact text where Node knows it.
	std::string text = strerror(err);
	if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
	std::string message = code + ": " + text + ", " + syscall;
	if (!path.empty()) message += " '" + path + "'";
	Napi::Error error = Napi::Error::New(env, message);
	error.Set("errno", Napi::Number::New(env, -err));
	error.Set("code", Napi::String::New(env, code));
	error.Set("syscall", Napi::String::New(env, syscall));
	if (!path.empty()) error.Set("path", Napi::String::New(env, path));
	return error;
}

void ThrowErrno(Napi::Env env, int err, const char* syscall, const std::string& path) {
	throw ErrnoError(env, err, syscall, path);
}

}  // namespace hybridmem
