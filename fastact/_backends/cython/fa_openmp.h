/* OpenMP where the compiler has it, else serial stand-ins for the runtime
 * functions the extension calls.  Cython guards its prange pragmas with
 * #ifdef _OPENMP, so without OpenMP every parallel loop runs serially on the
 * calling thread and gives the same bits (the chunks do not change). */
#ifndef FA_OPENMP_H
#define FA_OPENMP_H

#ifdef _OPENMP
#include <omp.h>
#define FA_HAS_OPENMP 1
#else
#define FA_HAS_OPENMP 0
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_num_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
static inline void omp_set_num_threads(int n) { (void)n; }
#endif

#endif
