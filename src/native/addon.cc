#include "addon.h"

#include <cstring>

namespace nha {

Napi::Error SystemError(Napi::Env env, const std::string& what, int negative_errno) {
  Napi::Error err = Napi::Error::New(env, what + ": " + std::strerror(-negative_errno));
  err.Set("errno", Napi::Number::New(env, -negative_errno));
  return err;
}

}  // namespace nha

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  nha::RegisterNotify(env, exports);
  nha::RegisterJournalSend(env, exports);
  nha::RegisterJournalReader(env, exports);
  nha::RegisterTimex(env, exports);
  nha::RegisterMemory(env, exports);
  return exports;
}

NODE_API_MODULE(node_health_native, Init)
