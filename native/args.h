// Argument conversion shared by the bindings: 64-bit sizes arrive as bigint
// or as a safe-integer number; anything else is an error in Node's shape
// (ERR_INVALID_ARG_TYPE for the wrong type, ERR_OUT_OF_RANGE for a value
// outside the range), never a silent truncation to int (the mmap-io bug).
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace hybridmem {

uint64_t ToU64(const Napi::Value& value, const char* name);
int64_t ToI64(const Napi::Value& value, const char* name);
// A number (not bigint) in [min, max].
int64_t ToInt(const Napi::Value& value, const char* name, int64_t min, int64_t max);
int ToFd(const Napi::Value& value);
// The value as Node's ERR_OUT_OF_RANGE prints it (1_000_000_000_000, 5n).
std::string RangeReceived(const Napi::Value& value);
// An options object: a plain object (not an array, function, string, ...).
Napi::Object ToOptions(const Napi::Value& value, const char* name);
// An optional property of an options object, with a default.
uint64_t OptU64(const Napi::Object& obj, const char* key, const char* name, uint64_t fallback);

}  // namespace hybridmem
