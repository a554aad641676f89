// Loading and unloading a kernel module and making its device node without
// spawning insmod, mknod or rmmod: under emulation each spawn costs a few
// hundred milliseconds (README "fast loop").
#pragma once

#include <napi.h>

namespace hybridmem {

void InitModLoad(Napi::Env env, Napi::Object exports);

}  // namespace hybridmem
