// CPUID / XGETBV feature detection behind hostCpuFeatures(), and the feature list as text.
#include "model/cpu_features.h"

#include <cstdlib>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace qpruner::model {

namespace {

#if defined(__x86_64__) || defined(__i386__)
CpuFeatures detect()
{
    CpuFeatures f;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return f;
    const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    f.fma = (c >> 12) & 1;
    f.f16c = (c >> 29) & 1;
    unsigned long long xcr0 = 0;
    if (osxsave) {
        unsigned lo = 0, hi = 0;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = (static_cast<unsigned long long>(hi) << 32) | lo;
    }
    const bool ymm = avx && (xcr0 & 0x6) == 0x6;          // XMM and YMM state saved by the OS
    const bool zmm = ymm && (xcr0 & 0xe0) == 0xe0;        // opmask, ZMM0-15 high halves, ZMM16-31
    const bool tiles = (xcr0 & (3ull << 17)) == (3ull << 17); // AMX TILECFG and TILEDATA
    f.fma = f.fma && ymm;
    f.f16c = f.f16c && ymm;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        f.avx2 = ymm && ((b >> 5) & 1);
        f.avx512f = zmm && ((b >> 16) & 1);
        f.avx512bw = zmm && ((b >> 30) & 1);
        f.amxbf16 = tiles && ((d >> 22) & 1);
        const unsigned maxSub = a;
        if (maxSub >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d))
            f.avx512bf16 = zmm && ((a >> 5) & 1);
    }
    return f;
}
#else
CpuFeatures detect() { return {}; }
#endif

} // namespace

std::string CpuFeatures::describe() const
{
    std::string s;
    const auto add = [&](bool on, const char* name) {
        if (!on)
            return;
        if (!s.empty())
            s += ' ';
        s += name;
    };
    add(avx2, "avx2");
    add(fma, "fma");
    add(f16c, "f16c");
    add(avx512f, "avx512f");
    add(avx512bw, "avx512bw");
    add(avx512bf16, "avx512_bf16");
    add(amxbf16, "amx_bf16");
    return s.empty() ? "none" : s;
}

const CpuFeatures& hostCpuFeatures()
{
    static const CpuFeatures f = detect();
    return f;
}

bool ownCpuKernelsEnabled()
{
    static const bool enabled = [] {
        const char* v = std::getenv("QPRUNER_KERNELS");
        return !(v && std::string(v) == "libtorch");
    }();
    return enabled;
}

} // namespace qpruner::model
