{
  # One source list for every build: native/sources.txt (also read by
  # CMakeLists.txt and scripts/test-*.sh). Each target takes the whole list and
  # keeps its part with gyp's "sources/" regex filters:
  #   qkernels_avx2    files whose name contains "avx2"   (kernels_avx2*.cc)
  #   qkernels_avx512  files whose name contains "avx512" (kernels_avx512*.cc)
  #   qkernels         everything else (the addon itself)
  # The split exists for MSVC, which has no per-function target attributes:
  # /arch:AVX2 and /arch:AVX512 must be given per file, and only to the files
  # whose kernels are dispatched at run time after CPUID/XGETBV agree. GCC and
  # clang get identical flags for every file (the kernel files switch their ISA
  # on with `#pragma GCC target` / `#pragma clang attribute push`), so nothing
  # here may ever add -march/-mavx*: a prebuild must run on any x86-64 or
  # ARMv8.0 CPU and pick its kernels at run time.
  "variables": {
    "qk_sources": ["<!@(node -p \"require('fs').readFileSync('native/sources.txt','utf8').trim().split(/\\s+/).join(' ')\")"]
  },
  "target_defaults": {
    "include_dirs": [
      "<!(node -p \"require('node-addon-api').include_dir\")",
      "native/src"
    ],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
    # -fPIC: the two kernel archives are linked into the shared addon.
    "cflags": ["-O3", "-ffp-contract=off", "-fvisibility=hidden", "-fPIC"],
    "cflags_cc": ["-O3", "-std=c++17", "-fexceptions", "-ffp-contract=off", "-fvisibility=hidden", "-fPIC"],
    "xcode_settings": {
      "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
      "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
      "CLANG_CXX_LIBRARY": "libc++",
      "MACOSX_DEPLOYMENT_TARGET": "11.0",
      "GCC_OPTIMIZATION_LEVEL": "3",
      "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
      "OTHER_CFLAGS": ["-ffp-contract=off", "-fvisibility=hidden"]
    },
    "msvs_settings": {
      "VCCLCompilerTool": {
        "ExceptionHandling": 1,
        "Optimization": 2,
        "LanguageStandard": "stdcpp17",
        # /fp:precise (no /fp:fast) and /fp:contract never given: MSVC does not
        # contract a*b+c into FMA under /fp:precise since VS 2022 17.0, which
        # matches -ffp-contract=off elsewhere. /Zc:__cplusplus for the headers.
        "AdditionalOptions": ["/fp:precise", "/Zc:__cplusplus", "/utf-8"]
      }
    },
    "conditions": [
      ["OS=='win'", {
        "defines": ["NOMINMAX", "WIN32_LEAN_AND_MEAN", "_CRT_SECURE_NO_WARNINGS"]
      }],
      ["OS=='mac' and target_arch=='arm64'", {
        # Every Apple arm64 core has ARMv8.4 incl. SDOT (cpu.cc reports it so);
        # apple-m1 is the oldest such target, so SDOT is baseline there.
        "xcode_settings": { "OTHER_CFLAGS": ["-mcpu=apple-m1"] }
      }]
    ]
  },
  "targets": [
    {
      "target_name": "qkernels_avx2",
      "type": "static_library",
      "sources": ["<@(qk_sources)"],
      "sources/": [["exclude", "."], ["include", "avx2[^/]*\\.cc$"]],
      "msvs_settings": {
        "VCCLCompilerTool": { "AdditionalOptions": ["/arch:AVX2"] }
      }
    },
    {
      "target_name": "qkernels_avx512",
      "type": "static_library",
      "sources": ["<@(qk_sources)"],
      "sources/": [["exclude", "."], ["include", "avx512[^/]*\\.cc$"]],
      "msvs_settings": {
        "VCCLCompilerTool": { "AdditionalOptions": ["/arch:AVX512"] }
      }
    },
    {
      "target_name": "qkernels",
      "sources": ["<@(qk_sources)"],
      "sources/": [["exclude", "avx(2|512)[^/]*\\.cc$"]],
      "dependencies": ["qkernels_avx2", "qkernels_avx512"]
    }
  ]
}
