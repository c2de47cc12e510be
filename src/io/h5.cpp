#include "bbt/io/h5.hpp"

#include <vector>

#include "bbt/common/error.hpp"

namespace bbt::io::h5 {
namespace {

// HDF5 registers an exit handler on its first call that closes every id still open. After a failed
// write (disk full) a dataset whose close failed stays registered half-closed, and that handler then
// crashes in H5D_close. Every bbt handle is closed (or deliberately abandoned) before exit, so the
// handler has nothing to do; it must be switched off before the library's first call.
[[maybe_unused]] const bool kNoExitHandler = H5dont_atexit() >= 0;

// HDF5's messages may span lines (the sec2 driver's "file write failed: time = %s, ..." embeds
// ctime()'s trailing newline): control characters become spaces, runs of spaces one, and no space is
// left before a comma or semicolon or at either end, so that every error stays one line.
std::string one_line(const std::string& text) {
  std::string out;
  for (char c : text) {
    const bool space = c == ' ' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
    if (space) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      if ((c == ',' || c == ';') && !out.empty() && out.back() == ' ') out.pop_back();
      out += c;
    }
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

herr_t collect_description(unsigned /*n*/, const H5E_error2_t* err, void* client) {
  auto* messages = static_cast<std::vector<std::string>*>(client);
  if (err == nullptr || err->desc == nullptr) return 0;
  std::string text = one_line(err->desc);
  if (!text.empty()) messages->push_back(std::move(text));
  return 0;
}

}  // namespace

void silence_errors() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

std::string last_error_message() {
  std::vector<std::string> messages;
  // Upward: the innermost (most specific) error first, the API-level one last.
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, collect_description, &messages);
  std::string out;
  // The innermost message names the cause; one more level usually says what was being done.
  for (std::size_t i = 0; i < messages.size() && i < 2; ++i) {
    if (i > 0 && messages[i] == messages[i - 1]) continue;
    if (!out.empty()) out += "; ";
    out += messages[i];
  }
  return out;
}

herr_t check(herr_t status, const std::string& context) {
  if (status < 0) {
    const std::string detail = last_error_message();
    throw Error(context + (detail.empty() ? std::string() : " (HDF5: " + detail + ")"));
  }
  return status;
}

htri_t check_tri(htri_t status, const std::string& context) {
  check(status < 0 ? -1 : 0, context);
  return status;
}

Handle::Handle(hid_t id, const std::string& context) {
  if (id < 0) check(-1, context);
  id_ = id;
}

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = std::exchange(other.id_, H5I_INVALID_HID);
  }
  return *this;
}

bool Handle::reset() noexcept {
  if (id_ < 0) return true;
  const hid_t id = std::exchange(id_, H5I_INVALID_HID);
  return H5Idec_ref(id) >= 0;
}

}  // namespace bbt::io::h5
