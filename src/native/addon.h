// Each part of the addon registers its functions on the module's exports.
#pragma once

#include <napi.h>

#include <string>

namespace nha {

void RegisterNotify(Napi::Env env, Napi::Object exports);
void RegisterJournalSend(Napi::Env env, Napi::Object exports);
void RegisterJournalReader(Napi::Env env, Napi::Object exports);
void RegisterTimex(Napi::Env env, Napi::Object exports);
void RegisterMemory(Napi::Env env, Napi::Object exports);

// A JS Error for a failed libsystemd call: "<what>: <strerror>", with .errno set to the positive errno.
Napi::Error SystemError(Napi::Env env, const std::string& what, int negative_errno);

}  // namespace nha
