// fds of in-tree mmap providers beyond open() (native/fdsources.cc).
#ifndef HYBRIDMEM_FDSOURCES_H
#define HYBRIDMEM_FDSOURCES_H

#include <napi.h>

namespace hybridmem {

void InitFdSources(Napi::Env env, Napi::Object exports);

}  // namespace hybridmem

#endif
