// Hands memory the C heap has freed back to the kernel. glibc keeps freed chunks in its heap for reuse
// and, once a large block has been freed, raises its own trim threshold, so a few MiB of start-up work
// (V8's compilers run their zones on malloc) can stay resident in an idle daemon (docs/benchmarks.md).
#include <cstdlib>  // defines __GLIBC__ on glibc
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "addon.h"

namespace nha {
namespace {

// trimMemory(): true when memory was returned to the kernel; false when there was none, or without glibc.
Napi::Value TrimMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 0) throw Napi::TypeError::New(env, "trimMemory: takes no arguments");
#ifdef __GLIBC__
  return Napi::Boolean::New(env, malloc_trim(0) == 1);
#else
  return Napi::Boolean::New(env, false);
#endif
}

}  // namespace

void RegisterMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("trimMemory", Napi::Function::New(env, TrimMemory, "trimMemory"));
}

}  // namespace nha
