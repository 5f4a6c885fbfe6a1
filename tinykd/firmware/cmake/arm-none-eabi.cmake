# CMake toolchain file for bare-metal Cortex-M with the Arm GNU toolchain (Debian: gcc-arm-none-eabi,
# libnewlib-arm-none-eabi). The core's flags (-mcpu, -mfpu, -mfloat-abi) come from the board profile
# through TINYKD_CPU_FLAGS, not from here, so one toolchain file serves every board.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_ASM_COMPILER arm-none-eabi-gcc)
set(CMAKE_OBJCOPY arm-none-eabi-objcopy)
set(CMAKE_SIZE arm-none-eabi-size)
# The compiler check cannot link a program without our start-up code and linker script.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
