// Structured entries for journald over its native protocol (sd_journal_sendv).
#include <sys/uio.h>

// Without this, sd-journal.h adds CODE_FILE/CODE_LINE/CODE_FUNC of this file to every entry: noise, since
// the caller is JavaScript.
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include <string>
#include <vector>

#include "addon.h"

namespace nha {
namespace {

constexpr size_t kMaxFieldName = 64;

// journald's rule for names a client may set: [A-Z0-9_], not starting with "_" (trusted fields) or a
// digit, at most 64 characters. journald drops fields that break it, so reject them loudly instead.
bool ValidFieldName(const std::string& name) {
  if (name.empty() || name.size() > kMaxFieldName) return false;
  if (name[0] == '_' || (name[0] >= '0' && name[0] <= '9')) return false;
  for (char c : name) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return true;
}

// journalSend(fields: Record<string, string>): void — one entry; values are sent as their UTF-8 bytes
// (libsystemd switches to the length-prefixed form for values holding a newline).
Napi::Value JournalSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsObject() || info[0].IsArray()) {
    throw Napi::TypeError::New(env, "journalSend: fields must be an object of FIELD: value strings");
  }
  Napi::Object fields = info[0].As<Napi::Object>();
  Napi::Array names = fields.GetPropertyNames();
  if (names.Length() == 0) {
    throw Napi::TypeError::New(env, "journalSend: fields is empty; give at least MESSAGE");
  }

  std::vector<std::string> items;
  items.reserve(names.Length());
  for (uint32_t i = 0; i < names.Length(); i++) {
    std::string name = names.Get(i).ToString().Utf8Value();
    if (!ValidFieldName(name)) {
      throw Napi::TypeError::New(
          env, "journalSend: invalid field name \"" + name +
                   "\" (use A-Z, 0-9 and _, not starting with _ or a digit, at most 64 characters)");
    }
    Napi::Value value = fields.Get(name);
    if (!value.IsString()) {
      throw Napi::TypeError::New(env, "journalSend: field " + name + " must be a string");
    }
    items.push_back(name + "=" + value.As<Napi::String>().Utf8Value());
  }

  std::vector<struct iovec> iov(items.size());
  for (size_t i = 0; i < items.size(); i++) {
    iov[i].iov_base = items[i].data();
    iov[i].iov_len = items[i].size();
  }
  int r = sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
  if (r < 0) {
    throw SystemError(env, "sd_journal_sendv to /run/systemd/journal/socket", r);
  }
  return env.Undefined();
}

}  // namespace

void RegisterJournalSend(Napi::Env env, Napi::Object exports) {
  exports.Set("journalSend", Napi::Function::New(env, JournalSend, "journalSend"));
}

}  // namespace nha
