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

// NAS_HOST_DEVICE, always inlined: for per-element helpers called from the CPU kernels'
// per-ISA entry points (always_inline carries them into each ISA's code) and from
// CUDA kernels.
#if defined(__CUDACC__)
#define NAS_HOST_DEVICE_INLINE __host__ __device__ __forceinline__
#elif defined(__GNUC__) || defined(__clang__)
#define NAS_HOST_DEVICE_INLINE inline __attribute__((always_inline))
#else
#define NAS_HOST_DEVICE_INLINE inline
#endif
