// The cores this process may run on. sched_getaffinity and CPU_COUNT need _GNU_SOURCE, which Swift's Glibc
// module does not define, so the call lives here.
#define _GNU_SOURCE
#include "CKernels.h"

#if defined(__linux__)
#include <sched.h>
#endif

int t5_affinity_cores(void) {
#if defined(__linux__)
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
#endif
    return 0;
}
