// libFuzzer target: qk::MappedFile (native/src/mapped_file.h) on a file written
// from the input. Maps it, checks every byte, then applies paging hints at
// arbitrary offsets and lengths (huge, overflowing, past the end): will_need,
// dont_need after writes through the copy-on-write mapping (the whole pages the
// range covers read the file again, every other byte keeps what was written),
// advise_huge_pages; optionally truncates the file under the mapping and reads
// every byte (the SIGBUS guard must turn the lost pages into zeros and report
// faulted(), never kill the process). A model of every byte is kept and the
// mapping must equal it at the end.
//
// Input: flags, extra length (u16), hint count, hints (kind, offset, length), file bytes.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "fuzz_common.h"
#include "mapped_file.h"

using qkfuzz::Bytes;

namespace {

[[noreturn]] void fail(const char* what, size_t at = 0) {
  std::fprintf(stderr, "fuzz: %s (at byte %zu)\n", what, at);
  std::abort();
}

const std::string& path() {
  static const std::string p = [] {
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir && *dir ? dir : "/tmp") + "/qk-fuzz-mapped-" + std::to_string(getpid()) + ".bin";
  }();
  return p;
}

void write_file(const std::vector<uint8_t>& bytes) {
  const int fd = ::open(path().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) fail("cannot create the temporary file");
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w <= 0) fail("cannot write the temporary file");
    done += static_cast<size_t>(w);
  }
  ::close(fd);
}

size_t offset_of(Bytes& in, uint8_t kind) {
  switch (kind >> 6) {
    case 0: return in.u16();
    case 1: return in.u32();
    case 2: return SIZE_MAX - in.u16();  // offset + length overflows
    default: return static_cast<size_t>(in.u32()) << 12;
  }
}

void run(const uint8_t* data, size_t size) {
  Bytes in{data, size};
  const uint8_t flags = in.u8();
  const size_t extra = (flags & 1) ? in.u16() % 40000 : 0;  // multi-page files from small inputs
  const int hints = in.u8() % 8;
  struct Hint { uint8_t kind; size_t offset, length; uint8_t value; };
  std::vector<Hint> hs;
  for (int i = 0; i < hints; ++i) {
    Hint h;
    h.kind = in.u8();
    h.offset = offset_of(in, h.kind);
    h.length = offset_of(in, static_cast<uint8_t>(h.kind << 2));
    h.value = in.u8();
    hs.push_back(h);
  }
  const size_t truncate_to = (flags & 2) ? in.u32() : SIZE_MAX;
  std::vector<uint8_t> file(in.p, in.p + in.n);
  for (size_t i = 0; i < extra; ++i) file.push_back(static_cast<uint8_t>(i * 131 + 7));
  write_file(file);

  // Errors, never crashes: a missing file and a directory.
  {
    qk::MappedFile bad;
    std::string err;
    if (bad.map((path() + ".missing").c_str(), &err) || err.empty()) fail("mapped a missing file");
    if (bad.map(std::getenv("TMPDIR") && *std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp", &err) || err.empty()) fail("mapped a directory");
  }

  qk::MappedFile mf;
  std::string err;
  if (!mf.map(path().c_str(), &err)) fail(("map failed: " + err).c_str());
  if ((flags & 4) && !mf.map(path().c_str(), &err)) fail("a second map of the same object failed");  // remaps
  if (mf.size() != file.size()) fail("size differs from the file", mf.size());
  if (file.empty() != !mf.mapped() || (file.empty() && mf.data() != nullptr)) fail("empty file: data() must be null");
  const size_t n = mf.size();
  uint8_t* p = mf.data();
  for (size_t i = 0; i < n; ++i)
    if (p[i] != file[i]) fail("mapped byte differs from the file", i);

  const long ps = sysconf(_SC_PAGESIZE);
  const size_t page = ps > 0 ? static_cast<size_t>(ps) : 4096;
  std::vector<uint8_t> model = file;
  std::vector<bool> priv((n + page - 1) / page, false);  // a written (copy-on-write) page
  for (const Hint& h : hs) {
    switch (h.kind % 4) {
      case 0:
        mf.will_need(h.offset, h.length);
        break;
      case 1: {
        // write [offset, offset + length) clipped, then drop the whole pages of the range
        if (h.offset < n) {
          const size_t end = h.offset + std::min(h.length % 9000, n - h.offset);
          for (size_t i = h.offset; i < end; ++i) p[i] = model[i] = h.value;
          if (end > h.offset)
            for (size_t pg = h.offset / page; pg <= (end - 1) / page; ++pg) priv[pg] = true;
        }
        const size_t doff = h.kind & 0x20 ? h.offset : h.offset - h.offset % page;
        mf.dont_need(doff, h.length);
        if (doff < n) {
          const size_t len = std::min(h.length, n - doff);
          size_t start = doff - doff % page, end = doff + len;
          if (start < doff) start += page;
          if (end < n) end -= end % page;
          for (size_t i = start; i < end; ++i) model[i] = file[i];
          for (size_t pg = start / page; pg * page < end; ++pg) priv[pg] = false;
        }
        break;
      }
      case 2:
        if (p) (void)qk::advise_huge_pages(p + std::min(h.offset, n), std::min(h.length, n - std::min(h.offset, n)));
        break;
      default:  // a view: compare its bytes
        if (h.offset < n) {
          const size_t end = h.offset + std::min(h.length, n - h.offset);
          for (size_t i = h.offset; i < end; ++i)
            if (p[i] != model[i]) fail("a view's byte differs from the model", i);
        }
        break;
    }
  }
  for (size_t i = 0; i < n; ++i)
    if (p[i] != model[i]) fail("mapped byte differs from the model after the hints", i);
  if (mf.faulted()) fail("faulted() before any truncation");

  if (truncate_to != SIZE_MAX && n > 0) {
    const size_t t = truncate_to % n;
    if (::truncate(path().c_str(), static_cast<off_t>(t)) != 0) fail("truncate failed");
    // Truncation drops every page wholly past the new end, copy-on-write copies
    // included (Linux: unmap_mapping_range(..., even_cows)), so reading them faults
    // and the guard puts zeros there; the page holding the new end keeps a private
    // copy as written, else reads zeros from the end on.
    const size_t kept = (t + page - 1) / page * page;
    const bool lost = n > kept;
    for (size_t i = t; i < n; ++i)
      if (i >= kept || !priv[i / page]) model[i] = 0;
    for (size_t i = 0; i < n; ++i) {
      const uint8_t v = *static_cast<volatile uint8_t*>(p + i);
      if (v != model[i]) fail("after truncation a byte is neither what was written, the file's, nor zero", i);
    }
    if (mf.faulted() != lost) fail(lost ? "faulted() false after a lost page was read" : "faulted() true with no lost page");
  }
  mf.unmap();
  if (mf.mapped() || mf.size() != 0 || mf.faulted()) fail("unmap left state behind");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  run(data, size);
  return 0;
}
