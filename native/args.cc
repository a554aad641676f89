#include "args.h"

#include <cmath>
#include <string>

namespace hybridmem {

namespace {
constexpr double kMaxSafe = 9007199254740991.0;

[[noreturn]] void TypeErr(const Napi::Env& env, const char* name, const char* what) {
	Napi::TypeError error = Napi::TypeError::New(env, std::string("The \"") + name + "\" argument " + what);
	error.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
	throw error;
}
}  // namespace

int64_t ToI64(const Napi::Value& value, const char* name) {
	Napi::Env env = value.Env();
	if (value.IsBigInt()) {
		bool lossless = false;
		int64_t v = value.As<Napi::BigInt>().Int64Value(&lossless);
		if (!lossless) TypeErr(env, name, "does not fit in 64 bits");
		return v;
	}
	if (value.IsNumber()) {
		double d = value.As<Napi::Number>().DoubleValue();
		if (!std::isfinite(d) || std::trunc(d) != d || std::fabs(d) > kMaxSafe)
			TypeErr(env, name, "must be a safe integer or a bigint");
		return static_cast<int64_t>(d);
	}
	TypeErr(env, name, "must be a number or a bigint");
}

uint64_t ToU64(const Napi::Value& value, const char* name) {
	Napi::Env env = value.Env();
	if (value.IsBigInt()) {
		bool lossless = false;
		uint64_t v = value.As<Napi::BigInt>().Uint64Value(&lossless);
		if (!lossless) TypeErr(env, name, "must be a non-negative 64-bit integer");
		return v;
	}
	int64_t v = ToI64(value, name);
	if (v < 0) TypeErr(env, name, "must not be negative");
	return static_cast<uint64_t>(v);
}

int ToFd(const Napi::Value& value) {
	int64_t fd = ToI64(value, "fd");
	if (fd < 0 || fd > INT32_MAX) TypeErr(value.Env(), "fd", "must be a valid file descriptor");
	return static_cast<int>(fd);
}

uint64_t OptU64(const Napi::Object& obj, const char* key, uint64_t fallback) {
	if (!obj.Has(key)) return fallback;
	Napi::Value v = obj.Get(key);
	if (v.IsUndefined() || v.IsNull()) return fallback;
	return ToU64(v, key);
}

}  // namespace hybridmem
