#pragma once
// Thin RAII layer over the HDF5 1.10 C API: owned handles that close themselves, and checked calls
// that turn a failure into a bbt::Error naming the operation and HDF5's own innermost message.
#include <hdf5.h>

#include <string>
#include <utility>

namespace bbt::io::h5 {

// Switches off HDF5's automatic printing of its error stack (for the calling thread); every
// failure is reported once, as an exception, instead. Cheap; called by every entry point.
void silence_errors();

// HDF5's description of the error that is on the stack right now ("file signature not found"),
// innermost first; empty if there is none. Must be called before the next HDF5 call clears it.
std::string last_error_message();

// Throws bbt::Error("<context>: <HDF5 message>") when `status` is negative; returns it otherwise.
herr_t check(herr_t status, const std::string& context);
htri_t check_tri(htri_t status, const std::string& context);

// One owned hid_t of any kind (file, group, dataset, dataspace, datatype, attribute, property
// list): closed with H5Idec_ref when the owner goes away. Move-only.
class Handle {
 public:
  Handle() = default;
  // Takes ownership of `id`; throws bbt::Error("<context>: ...") if `id` is invalid (negative).
  Handle(hid_t id, const std::string& context);
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }
  // Closes now; returns false if HDF5 reported a failure (never throws, for destructors).
  bool reset() noexcept;
  // Forgets the id without closing it: for objects that a failed write has left in a state that
  // HDF5 can no longer close (closing them again would crash inside the library).
  void abandon() noexcept { id_ = H5I_INVALID_HID; }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

}  // namespace bbt::io::h5
