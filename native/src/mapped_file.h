// A whole file mapped into memory, read-only on disk but copy-on-write in the
// process: a stray write through a JavaScript view changes only this
// process's pages, never the file, and never faults. No N-API here.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace qk {

class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile() { unmap(); }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  // Maps all of `path` (UTF-8). On failure returns false and says why in *error.
  // An empty file maps to data() == nullptr, size() == 0.
  bool map(const char* path, std::string* error);
  void unmap();

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool mapped() const { return data_ != nullptr; }

  // True once a read of the mapping faulted because the file had shrunk
  // underneath it (another process truncated or rewrote it): instead of
  // SIGBUS killing the process, the faulting page was replaced with zeros
  // (POSIX; see mapped_file.cc). Everything read from the mapping since may be
  // wrong, and callers must refuse it.
  bool faulted() const;

  // Paging hints for [offset, offset + length), clipped to the mapping; they
  // never change what a read returns, except that dont_need drops private
  // (written) copies of pages, which then read the file's bytes again.
  void will_need(size_t offset, size_t length) const;
  void dont_need(size_t offset, size_t length) const;

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  int guard_slot_ = -1;  // this mapping's entry in the SIGBUS guard's table, or -1
#ifdef _WIN32
  void* mapping_ = nullptr;  // HANDLE of the file mapping object
#endif
};

// Asks for transparent huge pages on the 2 MiB-aligned part of [p, p + n),
// before its pages are first written (Linux; elsewhere nothing). Weights
// streamed once a token read ~10% faster from 2 MiB pages (fewer TLB walks)
// where the kernel hands them out only on request (THP 'madvise').
// Returns the bytes advised.
size_t advise_huge_pages(uint8_t* p, size_t n);

}  // namespace qk
