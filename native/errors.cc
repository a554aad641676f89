#include "errors.h"

#include <cctype>
#include <cmath>
#include <cstdio>
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

namespace {

std::string NumberText(double d) {
	if (std::isnan(d)) return "NaN";
	if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
	if (d == 0) return std::signbit(d) ? "-0" : "0";
	char buf[64];
	if (std::trunc(d) == d && std::fabs(d) < 1e21)
		snprintf(buf, sizeof buf, "%.0f", d);
	else
		snprintf(buf, sizeof buf, "%.17g", d);
	return buf;
}

std::string Quote(std::string s, size_t limit) {
	if (s.size() > limit) s = s.substr(0, limit - 3) + "...";
	if (s.find('\'') == std::string::npos) return "'" + s + "'";
	return "\"" + s + "\"";
}

}  // namespace

// Node's determineSpecificType (lib/internal/errors.js), for the values a
// binding is handed.
std::string DescribeReceived(const Napi::Value& value) {
	switch (value.Type()) {
		case napi_undefined:
			return "undefined";
		case napi_null:
			return "null";
		case napi_boolean:
			return std::string("type boolean (") + (value.As<Napi::Boolean>().Value() ? "true" : "false") + ")";
		case napi_number:
			return "type number (" + NumberText(value.As<Napi::Number>().DoubleValue()) + ")";
		case napi_bigint:
			return "type bigint (" + value.ToString().Utf8Value() + "n)";
		case napi_string: {
			std::string s = value.As<Napi::String>().Utf8Value();
			if (s.size() > 28) s = s.substr(0, 25) + "...";
			return "type string (" + Quote(s, 1u << 20) + ")";
		}
		case napi_symbol:
			return "type symbol (" + value.ToString().Utf8Value() + ")";
		case napi_function: {
			Napi::Value name = value.As<Napi::Object>().Get("name");
			return "function " + (name.IsString() ? name.As<Napi::String>().Utf8Value() : std::string());
		}
		default: {
			if (value.IsArray()) return "an instance of Array";
			Napi::Value ctor = value.As<Napi::Object>().Get("constructor");
			if (ctor.IsFunction()) {
				Napi::Value name = ctor.As<Napi::Object>().Get("name");
				if (name.IsString()) return "an instance of " + name.As<Napi::String>().Utf8Value();
			}
			return "[Object: null prototype] {}";
		}
	}
}

void ThrowArgType(Napi::Env env, const std::string& name, const std::string& expected, const Napi::Value& actual) {
	const char* kind = name.find('.') == std::string::npos ? "argument" : "property";
	Napi::TypeError error = Napi::TypeError::New(env,
		"The \"" + name + "\" " + kind + " must be " + expected + ". Received " + DescribeReceived(actual));
	error.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
	throw error;
}

void ThrowOutOfRange(Napi::Env env, const std::string& name, const std::string& range, const std::string& received) {
	Napi::RangeError error = Napi::RangeError::New(env,
		"The value of \"" + name + "\" is out of range. It must be " + range + ". Received " + received);
	error.Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
	throw error;
}

void ThrowArgValue(Napi::Env env, const std::string& name, const std::string& reason, const Napi::Value& actual) {
	const char* kind = name.find('.') == std::string::npos ? "argument" : "property";
	// util.inspect's text, cut at 128 characters as Node's ERR_INVALID_ARG_VALUE does.
	std::string shown;
	if (actual.IsString())
		shown = Quote(actual.As<Napi::String>().Utf8Value(), std::string::npos);
	else if (actual.IsNumber())
		shown = NumberText(actual.As<Napi::Number>().DoubleValue());
	else
		shown = DescribeReceived(actual);
	if (shown.size() > 128) shown = shown.substr(0, 128) + "...";
	Napi::TypeError error =
		Napi::TypeError::New(env, std::string("The ") + kind + " '" + name + "' " + reason + ". Received " + shown);
	error.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_VALUE"));
	throw error;
}

void ThrowCoded(Napi::Env env, const char* code, const std::string& message) {
	Napi::Error error = Napi::Error::New(env, message);
	error.Set("code", Napi::String::New(env, code));
	throw error;
}

}  // namespace hybridmem
