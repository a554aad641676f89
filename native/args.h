// Argument conversion shared by the bindings: 64-bit sizes arrive as bigint
// or as a safe-integer number; anything else is a TypeError, never a silent
// truncation to int (the mmap-io bug).
#pragma once

#include <napi.h>

#include <cstdint>

namespace hybridmem {

uint64_t ToU64(const Napi::Value& value, const char* name);
int64_t ToI64(const Napi::Value& value, const char* name);
int ToFd(const Napi::Value& value);
// An optional property of an options object, with a default.
uint64_t OptU64(const Napi::Object& obj, const char* key, uint64_t fallback);

}  // namespace hybridmem
