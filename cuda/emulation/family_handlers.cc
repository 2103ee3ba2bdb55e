// The CUDA engine's handlers and kernels, compiled as host C++ against the emulation in this
// directory (cuda_runtime.h): the same source file nvcc compiles, not a copy.
#include "family_handlers.cu"
