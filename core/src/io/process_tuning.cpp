#include "qpruner/process_tuning.h"

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace qpruner {

void tuneAllocatorForTensors()
{
#if defined(__GLIBC__)
    if (const char* env = std::getenv("QPRUNER_MALLOC_DEFAULTS"); env && std::strcmp(env, "1") == 0)
        return;
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

} // namespace qpruner
