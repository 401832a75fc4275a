# Build information compiled into the extension (fa_build.h).
cdef extern from "fa_build.h":
    const char *FA_COMPILER
    const char *FA_SOURCE_KEY

cdef extern from "fa_intrinsics.h":
    const char *FA_SIMD_CLONES
