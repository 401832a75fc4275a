# The OpenMP runtime functions the extension calls (fa_openmp.h: serial
# stand-ins in a build without OpenMP).
cdef extern from "fa_openmp.h" nogil:
    int FA_HAS_OPENMP
    int omp_get_max_threads()
    int omp_get_num_threads()
    int omp_get_thread_num()
    void omp_set_num_threads(int)
