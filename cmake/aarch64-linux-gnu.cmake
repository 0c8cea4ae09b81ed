# Cross-build for 64-bit Arm Linux with Debian's cross toolchain
# (apt-get install g++-aarch64-linux-gnu qemu-user), and run what it builds
# under qemu-aarch64 with the cross toolchain's libraries as the sysroot:
#   cmake -S . -B build-ctest-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#   cmake --build build-ctest-arm64 -j && ctest --test-dir build-ctest-arm64
# Baseline ARMv8.0-A (no -march/-mcpu): NEON is mandatory there; SDOT is chosen
# at run time from HWCAP.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(QK_CROSS_TRIPLE aarch64-linux-gnu CACHE STRING "GNU triple of the cross toolchain")
set(CMAKE_C_COMPILER ${QK_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${QK_CROSS_TRIPLE}-g++)
set(CMAKE_AR ${QK_CROSS_TRIPLE}-ar CACHE FILEPATH "")
set(CMAKE_STRIP ${QK_CROSS_TRIPLE}-strip CACHE FILEPATH "")

# Debian puts the target's libc and libstdc++ here (libc6-arm64-cross, ...).
set(QK_CROSS_SYSROOT /usr/${QK_CROSS_TRIPLE} CACHE PATH "Target libraries for qemu (-L)")
set(CMAKE_FIND_ROOT_PATH ${QK_CROSS_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

find_program(QK_QEMU_AARCH64 qemu-aarch64)
if(QK_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${QK_QEMU_AARCH64} -L ${QK_CROSS_SYSROOT})
endif()
