// NAS_HOST_DEVICE: C10_HOST_DEVICE without torch headers. Per-element math shared by
// the CPU kernels and the CUDA kernels (which compile without torch headers, see
// CMakeLists.txt) is written once, in headers, as NAS_HOST_DEVICE inline functions:
// the CPU tests then exercise the code the GPU runs.
#pragma once

#if defined(__CUDACC__)
#define NAS_HOST_DEVICE __host__ __device__
#else
#define NAS_HOST_DEVICE
#endif
