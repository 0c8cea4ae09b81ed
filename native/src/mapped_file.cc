#include "mapped_file.h"

#include <atomic>
#include <csignal>
#include <cstring>
#include <limits>
#include <mutex>

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

bool MappedFile::faulted() const { return false; }

void MappedFile::dont_need(size_t, size_t) const {
  // Windows trims clean file-backed pages under pressure on its own; there is
  // no portable equivalent of MADV_DONTNEED for a copy-on-write view.
}

#else  // POSIX

// ---- the truncation guard ----
// Reading a page of a mapping past the end of a file that shrank since it was
// mapped raises SIGBUS, whose default action kills the process: a model file
// that another process truncates or rewrites in place would take a server
// down. The guard is a SIGBUS handler: when the faulting address lies in one
// of our mappings it maps a private zero page over the faulting page
// (MAP_FIXED, so the read retries and succeeds), marks the mapping faulted,
// and returns; faults elsewhere go to the handler installed before ours, or to
// the default action. Readers then check faulted() and refuse what they read.
// The table is fixed and lock-free (the handler may run on any thread at any
// time); mappings beyond its size are simply not guarded.
namespace {

constexpr int kGuardSlots = 1024;

struct GuardSlot {
  std::atomic<uintptr_t> begin{0};  // 0: free
  std::atomic<uintptr_t> end{0};
  std::atomic<int> faulted{0};
};

GuardSlot g_slots[kGuardSlots];
struct sigaction g_previous;
uintptr_t g_page = 4096;
std::once_flag g_installed;

void on_sigbus(int sig, siginfo_t* info, void* context) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(info->si_addr);
  for (GuardSlot& s : g_slots) {
    const uintptr_t b = s.begin.load(std::memory_order_acquire);
    if (b == 0 || a < b || a >= s.end.load(std::memory_order_acquire)) continue;
    void* page = reinterpret_cast<void*>(a & ~(g_page - 1));
    if (mmap(page, g_page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
      s.faulted.store(1, std::memory_order_release);
      return;
    }
    break;
  }
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction != nullptr) {
      g_previous.sa_sigaction(sig, info, context);
      return;
    }
  } else if (g_previous.sa_handler == SIG_IGN) {
    return;
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != nullptr) {
    g_previous.sa_handler(sig);
    return;
  }
  // Not ours and nobody else's: the default action, once this handler returns
  // and the access faults again.
  signal(SIGBUS, SIG_DFL);
}

void install_guard() {
  const long p = sysconf(_SC_PAGESIZE);
  if (p > 0) g_page = static_cast<uintptr_t>(p);
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, &g_previous);
}

int guard(uint8_t* data, size_t size) {
  std::call_once(g_installed, install_guard);
  for (int i = 0; i < kGuardSlots; i++) {
    uintptr_t expected = 0;
    GuardSlot& s = g_slots[i];
    // claim with a placeholder so no other mapping takes the slot, then publish the range
    if (!s.begin.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) continue;
    s.faulted.store(0, std::memory_order_relaxed);
    s.end.store(reinterpret_cast<uintptr_t>(data) + size, std::memory_order_release);
    s.begin.store(reinterpret_cast<uintptr_t>(data), std::memory_order_release);
    return i;
  }
  return -1;
}

void unguard(int slot) {
  if (slot < 0) return;
  g_slots[slot].end.store(0, std::memory_order_release);
  g_slots[slot].begin.store(0, std::memory_order_release);
}

}  // namespace

bool MappedFile::faulted() const {
  return guard_slot_ >= 0 && g_slots[guard_slot_].faulted.load(std::memory_order_acquire) != 0;
}

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
  guard_slot_ = guard(data_, size_);
  return true;
}

void MappedFile::unmap() {
  // unguarded first: once unmapped, the addresses may be handed to anyone
  unguard(guard_slot_);
  guard_slot_ = -1;
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
