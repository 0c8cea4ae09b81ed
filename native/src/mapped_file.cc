#include "mapped_file.h"

#include <cstring>
#include <limits>

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#else
#include <cerrno>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace qk {

namespace {

// The pages of [offset, offset + length) inside a mapping of `size` bytes:
// every page it touches (outer) or only those it covers whole (inner, so a hint
// that drops pages never reaches a neighbour's bytes).
bool page_range(const uint8_t* base, size_t size, size_t offset, size_t length, bool inner, uint8_t** begin, size_t* bytes) {
  if (!base || offset >= size) return false;
  if (length > size - offset) length = size - offset;
#ifdef _WIN32
  SYSTEM_INFO si;
  GetSystemInfo(&si);
  const size_t page = si.dwPageSize;
#else
  const long p = sysconf(_SC_PAGESIZE);
  const size_t page = p > 0 ? static_cast<size_t>(p) : 4096;
#endif
  size_t start = offset - offset % page, end = offset + length;
  if (inner) {
    if (start < offset) start += page;
    if (end < size) end -= end % page;  // the mapping's last page may be partial
  } else {
    end = end % page == 0 || end >= size ? end : end + (page - end % page);
    if (end > size) end = size;
  }
  if (end <= start) return false;
  *begin = const_cast<uint8_t*>(base) + start;
  *bytes = end - start;
  return true;
}

}  // namespace

#ifdef _WIN32

bool MappedFile::map(const char* path, std::string* error) {
  unmap();
  const int wlen = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, nullptr, 0);
  if (wlen <= 0) {
    *error = "the path is not valid UTF-8";
    return false;
  }
  std::wstring wpath(static_cast<size_t>(wlen), L'\0');
  MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, &wpath[0], wlen);
  // FILE_SHARE_DELETE lets a writer rename a new file over this one while it is mapped.
  HANDLE file = CreateFileW(wpath.c_str(), GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, nullptr,
                            OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
  if (file == INVALID_HANDLE_VALUE) {
    *error = "cannot open the file (Windows error " + std::to_string(GetLastError()) + ")";
    return false;
  }
  LARGE_INTEGER len;
  if (!GetFileSizeEx(file, &len)) {
    *error = "cannot read the file size (Windows error " + std::to_string(GetLastError()) + ")";
    CloseHandle(file);
    return false;
  }
  if (static_cast<unsigned long long>(len.QuadPart) > std::numeric_limits<size_t>::max()) {
    *error = "the file is larger than this process's address space";
    CloseHandle(file);
    return false;
  }
  if (len.QuadPart == 0) {
    CloseHandle(file);
    return true;
  }
  // PAGE_WRITECOPY + FILE_MAP_COPY: writes through a view go to private pages.
  HANDLE mapping = CreateFileMappingW(file, nullptr, PAGE_WRITECOPY, 0, 0, nullptr);
  CloseHandle(file);
  if (!mapping) {
    *error = "cannot map the file (Windows error " + std::to_string(GetLastError()) + ")";
    return false;
  }
  void* p = MapViewOfFile(mapping, FILE_MAP_COPY, 0, 0, 0);
  if (!p) {
    *error = "cannot map the file (Windows error " + std::to_string(GetLastError()) + ")";
    CloseHandle(mapping);
    return false;
  }
  data_ = static_cast<uint8_t*>(p);
  size_ = static_cast<size_t>(len.QuadPart);
  mapping_ = mapping;
  return true;
}

void MappedFile::unmap() {
  if (data_) UnmapViewOfFile(data_);
  if (mapping_) CloseHandle(static_cast<HANDLE>(mapping_));
  data_ = nullptr;
  mapping_ = nullptr;
  size_ = 0;
}

void MappedFile::will_need(size_t offset, size_t length) const {
  uint8_t* begin;
  size_t bytes;
  if (!page_range(data_, size_, offset, length, false, &begin, &bytes)) return;
#if defined(_WIN32_WINNT) && _WIN32_WINNT >= 0x0602
  WIN32_MEMORY_RANGE_ENTRY range{begin, bytes};
  PrefetchVirtualMemory(GetCurrentProcess(), 1, &range, 0);  // failure only loses the hint
#endif
}

void MappedFile::dont_need(size_t, size_t) const {
  // Windows trims clean file-backed pages under pressure on its own; there is
  // no portable equivalent of MADV_DONTNEED for a copy-on-write view.
}

#else  // POSIX

bool MappedFile::map(const char* path, std::string* error) {
  unmap();
  int fd;
  do {
    fd = ::open(path, O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    *error = std::string("cannot open the file: ") + std::strerror(errno);
    return false;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    *error = std::string("cannot stat the file: ") + std::strerror(errno);
    ::close(fd);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    *error = "not a regular file";
    ::close(fd);
    return false;
  }
  if (st.st_size < 0 || static_cast<unsigned long long>(st.st_size) > std::numeric_limits<size_t>::max()) {
    *error = "the file is larger than this process's address space";
    ::close(fd);
    return false;
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    return true;
  }
  // MAP_PRIVATE with PROT_WRITE: copy-on-write, so JavaScript can never write the
  // file nor fault on a write. The mapping outlives the descriptor.
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);
  if (p == MAP_FAILED) {
    *error = std::string("cannot map the file: ") + std::strerror(err);
    return false;
  }
  data_ = static_cast<uint8_t*>(p);
  size_ = size;
  return true;
}

void MappedFile::unmap() {
  if (data_) munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

void MappedFile::will_need(size_t offset, size_t length) const {
  uint8_t* begin;
  size_t bytes;
  if (page_range(data_, size_, offset, length, false, &begin, &bytes)) madvise(begin, bytes, MADV_WILLNEED);
}

void MappedFile::dont_need(size_t offset, size_t length) const {
  uint8_t* begin;
  size_t bytes;
  if (page_range(data_, size_, offset, length, true, &begin, &bytes)) madvise(begin, bytes, MADV_DONTNEED);
}

#endif

size_t advise_huge_pages(uint8_t* p, size_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  const uintptr_t begin = (a + kHuge - 1) / kHuge * kHuge, end = (a + n) / kHuge * kHuge;
  if (end <= begin) return 0;
  if (madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE) != 0) return 0;
  return end - begin;
#else
  (void)p;
  (void)n;
  return 0;
#endif
}

}  // namespace qk
