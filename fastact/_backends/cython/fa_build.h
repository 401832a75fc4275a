/* What this build of the extension is: its compiler, and the key of the
 * sources it was generated from (fa_source_key.h, written by setup.py; see
 * fastact/_codegen/source_key.py), which the package compares at import. */
#ifndef FA_BUILD_H
#define FA_BUILD_H
#include "fa_source_key.h"

#define FA_STR_(x) #x
#define FA_STR(x) FA_STR_(x)
#if defined(__clang__)
#define FA_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define FA_COMPILER "gcc " __VERSION__
#elif defined(_MSC_VER)
#define FA_COMPILER "MSVC " FA_STR(_MSC_FULL_VER)
#else
#define FA_COMPILER "unknown C compiler"
#endif

#endif
