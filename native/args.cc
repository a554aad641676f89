#include "args.h"

#include <cmath>
#include <string>

#include "errors.h"

namespace hybridmem {

namespace {
constexpr double kMaxSafe = 9007199254740991.0;

std::string Separated(std::string digits) {
	std::string sign;
	if (!digits.empty() && digits[0] == '-') {
		sign = "-";
		digits = digits.substr(1);
	}
	std::string out;
	int n = 0;
	for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
		if (n > 0 && n % 3 == 0) out.insert(out.begin(), '_');
		out.insert(out.begin(), *it);
		n++;
	}
	return sign + out;
}
}  // namespace

std::string RangeReceived(const Napi::Value& value) {
	if (value.IsBigInt()) {
		std::string text = value.ToString().Utf8Value();
		bool lossless = false;
		int64_t v = value.As<Napi::BigInt>().Int64Value(&lossless);
		if (!lossless || v > (int64_t(1) << 32) || v < -(int64_t(1) << 32)) text = Separated(text);
		return text + "n";
	}
	if (value.IsNumber()) {
		double d = value.As<Napi::Number>().DoubleValue();
		std::string text = DescribeReceived(value);  // "type number (X)"
		text = text.substr(13, text.size() - 14);
		if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) > 4294967296.0) text = Separated(text);
		return text;
	}
	return DescribeReceived(value);
}

int64_t ToI64(const Napi::Value& value, const char* name) {
	Napi::Env env = value.Env();
	if (value.IsBigInt()) {
		bool lossless = false;
		int64_t v = value.As<Napi::BigInt>().Int64Value(&lossless);
		if (!lossless) ThrowOutOfRange(env, name, ">= -(2n ** 63n) and < 2n ** 63n", RangeReceived(value));
		return v;
	}
	if (value.IsNumber()) {
		double d = value.As<Napi::Number>().DoubleValue();
		if (!std::isfinite(d) || std::trunc(d) != d) ThrowOutOfRange(env, name, "an integer", RangeReceived(value));
		if (std::fabs(d) > kMaxSafe) ThrowOutOfRange(env, name, "a safe integer or a bigint", RangeReceived(value));
		return static_cast<int64_t>(d);
	}
	ThrowArgType(env, name, "one of type number or bigint", value);
}

uint64_t ToU64(const Napi::Value& value, const char* name) {
	Napi::Env env = value.Env();
	if (value.IsBigInt()) {
		bool lossless = false;
		uint64_t v = value.As<Napi::BigInt>().Uint64Value(&lossless);
		if (!lossless) ThrowOutOfRange(env, name, ">= 0n and < 2n ** 64n", RangeReceived(value));
		return v;
	}
	int64_t v = ToI64(value, name);
	if (v < 0) ThrowOutOfRange(env, name, ">= 0", RangeReceived(value));
	return static_cast<uint64_t>(v);
}

int64_t ToInt(const Napi::Value& value, const char* name, int64_t min, int64_t max) {
	Napi::Env env = value.Env();
	if (!value.IsNumber()) ThrowArgType(env, name, "of type number", value);
	double d = value.As<Napi::Number>().DoubleValue();
	if (!std::isfinite(d) || std::trunc(d) != d) ThrowOutOfRange(env, name, "an integer", RangeReceived(value));
	if (d < static_cast<double>(min) || d > static_cast<double>(max))
		ThrowOutOfRange(env, name, ">= " + std::to_string(min) + " && <= " + std::to_string(max), RangeReceived(value));
	return static_cast<int64_t>(d);
}

int ToFd(const Napi::Value& value) { return static_cast<int>(ToInt(value, "fd", 0, INT32_MAX)); }

Napi::Object ToOptions(const Napi::Value& value, const char* name) {
	if (!value.IsObject() || value.IsArray() || value.IsFunction() || value.IsArrayBuffer() || value.IsTypedArray())
		ThrowArgType(value.Env(), name, "of type object", value);
	return value.As<Napi::Object>();
}

uint64_t OptU64(const Napi::Object& obj, const char* key, const char* name, uint64_t fallback) {
	Napi::Value v = obj.Get(key);
	if (v.IsUndefined()) return fallback;
	return ToU64(v, name);
}

}  // namespace hybridmem
