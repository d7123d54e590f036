#include "CKernels.h"
#include <pthread.h>

#include <stddef.h>
#include <string.h>

// ---------------------------------------------------------------------------------------------------
// Portable fallback: plain loops, used on non-x86 machines and as the reference in tests.
// ---------------------------------------------------------------------------------------------------

static inline float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static void bf16_gemm_scalar(const uint16_t *w, int64_t ldw, int64_t r0, int64_t r1, int64_t k, const float *x,
                             int64_t ldx, int64_t m, float *y, int64_t ldy, int acc) {
    for (int64_t o = r0; o < r1; o++) {
        const uint16_t *row = w + o * ldw;
        for (int64_t r = 0; r < m; r++) {
            const float *xr = x + r * ldx;
            float s = 0;
            for (int64_t i = 0; i < k; i++) s += bf16_to_f32(row[i]) * xr[i];
            y[r * ldy + o] = acc ? y[r * ldy + o] + s : s;
        }
    }
}

static void int8_gemm_scalar(const int8_t *w, const float *scale, int64_t ldw, int64_t r0, int64_t r1, int64_t k,
                             const float *x, int64_t ldx, int64_t m, float *y, int64_t ldy, int acc) {
    for (int64_t o = r0; o < r1; o++) {
        const int8_t *row = w + o * ldw;
        for (int64_t r = 0; r < m; r++) {
            const float *xr = x + r * ldx;
            float s = 0;
            for (int64_t i = 0; i < k; i++) s += (float)row[i] * xr[i];
            s *= scale[o];
            y[r * ldy + o] = acc ? y[r * ldy + o] + s : s;
        }
    }
}

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

// ---------------------------------------------------------------------------------------------------
// AVX-512: four weight rows at a time, widened in registers, reused from L1 for every activation row,
// so the (narrow) weights stream from memory once per call whatever m is.
// ---------------------------------------------------------------------------------------------------

__attribute__((target("avx512f,avx512bw"))) static inline __m512 bf16x16_avx512(const uint16_t *p) {
    __m256i h = _mm256_loadu_si256((const __m256i *)p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

__attribute__((target("avx512f,avx512bw"))) static inline __m512 int8x16_avx512(const int8_t *p) {
    __m128i b = _mm_loadu_si128((const __m128i *)p);
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b));
}

// One weight row at a time, front to back (what the prefetcher streams best), widened once per vector
// and multiplied with four activation rows per pass while it sits in L1.
// `scale` is one factor per weight row (int8), or NULL (bf16).
#define T5_ROWS_KERNEL(NAME, TARGET, VEC, LANES, SETZERO, LOADX, FMADD, HSUM, TYPE, WIDEN)                   \
    __attribute__((target(TARGET))) static void NAME(                                                         \
        const TYPE *w, const float *scale, int64_t ldw, int64_t r0, int64_t r1, int64_t k, const float *x,   \
        int64_t ldx, int64_t m, float *y, int64_t ldy, int acc) {                                             \
        int64_t kv = k / LANES * LANES;                                                                        \
        for (int64_t o = r0; o < r1; o++) {                                                                    \
            const TYPE *wo = w + o * ldw;                                                                      \
            float factor = scale ? scale[o] : 1.0f;                                                            \
            int64_t r = 0;                                                                                     \
            for (; r < m; r += 4) {                                                                            \
                int64_t n = m - r < 4 ? m - r : 4;                                                             \
                const float *x0 = x + r * ldx;                                                                 \
                const float *x1 = n > 1 ? x0 + ldx : x0, *x2 = n > 2 ? x0 + 2 * ldx : x0;                      \
                const float *x3 = n > 3 ? x0 + 3 * ldx : x0;                                                   \
                VEC s0 = SETZERO(), s1 = SETZERO(), s2 = SETZERO(), s3 = SETZERO();                            \
                int64_t i = 0;                                                                                 \
                for (; i < kv; i += LANES) {                                                                   \
                    VEC wv = WIDEN(wo + i);                                                                    \
                    s0 = FMADD(wv, LOADX(x0 + i), s0);                                                         \
                    s1 = FMADD(wv, LOADX(x1 + i), s1);                                                         \
                    s2 = FMADD(wv, LOADX(x2 + i), s2);                                                         \
                    s3 = FMADD(wv, LOADX(x3 + i), s3);                                                         \
                }                                                                                              \
                float t[4] = {HSUM(s0), HSUM(s1), HSUM(s2), HSUM(s3)};                                         \
                for (; i < k; i++) {                                                                           \
                    float wi = (float)SCALAR(wo[i]);                                                           \
                    t[0] += wi * x0[i]; t[1] += wi * x1[i]; t[2] += wi * x2[i]; t[3] += wi * x3[i];            \
                }                                                                                              \
                for (int64_t j = 0; j < n; j++) {                                                              \
                    float *dst = y + (r + j) * ldy + o;                                                        \
                    *dst = acc ? *dst + t[j] * factor : t[j] * factor;                                         \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
    }

#define AVX512_ARGS "avx512f,avx512bw", __m512, 16, _mm512_setzero_ps, _mm512_loadu_ps, _mm512_fmadd_ps, _mm512_reduce_add_ps
#define AVX2_ARGS "avx2,fma", __m256, 8, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_fmadd_ps, hsum256

// ---------------------------------------------------------------------------------------------------
// AVX2 + FMA: the same loops 8 lanes wide.
// ---------------------------------------------------------------------------------------------------

__attribute__((target("avx2,fma"))) static inline __m256 bf16x8_avx2(const uint16_t *p) {
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

__attribute__((target("avx2,fma"))) static inline __m256 int8x8_avx2(const int8_t *p) {
    __m128i b = _mm_loadl_epi64((const __m128i *)p);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b));
}

__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

#define EXPAND(...) __VA_ARGS__
#define SCALAR(v) bf16_to_f32(v)
#define KERNEL(...) EXPAND(T5_ROWS_KERNEL(__VA_ARGS__))
KERNEL(bf16_gemm_avx512, AVX512_ARGS, uint16_t, bf16x16_avx512)
KERNEL(bf16_gemm_avx2, AVX2_ARGS, uint16_t, bf16x8_avx2)
#undef SCALAR
#define SCALAR(v) (v)
KERNEL(int8_gemm_avx512, AVX512_ARGS, int8_t, int8x16_avx512)
KERNEL(int8_gemm_avx2, AVX2_ARGS, int8_t, int8x8_avx2)
#undef SCALAR

enum isa { ISA_UNKNOWN, ISA_SCALAR, ISA_AVX2, ISA_AVX512 };
static enum isa detected = ISA_UNKNOWN;
static pthread_once_t isa_once = PTHREAD_ONCE_INIT;

static void detect_isa(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
        detected = ISA_AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        detected = ISA_AVX2;
    else
        detected = ISA_SCALAR;
}

// Detected once under pthread_once: the kernels are called from several workers at a time.
static enum isa current_isa(void) {
    pthread_once(&isa_once, detect_isa);
    return detected;
}

void t5_bf16_gemm(const uint16_t *w, int64_t ldw, int64_t r0, int64_t r1, int64_t k, const float *x, int64_t ldx,
                  int64_t m, float *y, int64_t ldy, int acc) {
    switch (current_isa()) {
    case ISA_AVX512: bf16_gemm_avx512(w, NULL, ldw, r0, r1, k, x, ldx, m, y, ldy, acc); break;
    case ISA_AVX2: bf16_gemm_avx2(w, NULL, ldw, r0, r1, k, x, ldx, m, y, ldy, acc); break;
    default: bf16_gemm_scalar(w, ldw, r0, r1, k, x, ldx, m, y, ldy, acc);
    }
}

void t5_int8_gemm(const int8_t *w, const float *scale, int64_t ldw, int64_t r0, int64_t r1, int64_t k,
                  const float *x, int64_t ldx, int64_t m, float *y, int64_t ldy, int acc) {
    switch (current_isa()) {
    case ISA_AVX512: int8_gemm_avx512(w, scale, ldw, r0, r1, k, x, ldx, m, y, ldy, acc); break;
    case ISA_AVX2: int8_gemm_avx2(w, scale, ldw, r0, r1, k, x, ldx, m, y, ldy, acc); break;
    default: int8_gemm_scalar(w, scale, ldw, r0, r1, k, x, ldx, m, y, ldy, acc);
    }
}

const char *t5_kernels_isa(void) {
    switch (current_isa()) {
    case ISA_AVX512: return "avx512";
    case ISA_AVX2: return "avx2";
    default: return "scalar";
    }
}

#else

void t5_bf16_gemm(const uint16_t *w, int64_t ldw, int64_t r0, int64_t r1, int64_t k, const float *x, int64_t ldx,
                  int64_t m, float *y, int64_t ldy, int acc) {
    bf16_gemm_scalar(w, ldw, r0, r1, k, x, ldx, m, y, ldy, acc);
}

void t5_int8_gemm(const int8_t *w, const float *scale, int64_t ldw, int64_t r0, int64_t r1, int64_t k,
                  const float *x, int64_t ldx, int64_t m, float *y, int64_t ldy, int acc) {
    int8_gemm_scalar(w, scale, ldw, r0, r1, k, x, ldx, m, y, ldy, acc);
}

const char *t5_kernels_isa(void) { return "scalar"; }

#endif

void t5_bf16_to_f32_rows(const uint16_t *w, int64_t ldw, int64_t r0, int64_t r1, int64_t k, float *out) {
    for (int64_t o = r0; o < r1; o++)
        for (int64_t i = 0; i < k; i++) out[(o - r0) * k + i] = bf16_to_f32(w[o * ldw + i]);
}

void t5_int8_to_f32_rows(const int8_t *w, const float *scale, int64_t ldw, int64_t r0, int64_t r1, int64_t k,
                         float *out) {
    for (int64_t o = r0; o < r1; o++)
        for (int64_t i = 0; i < k; i++) out[(o - r0) * k + i] = (float)w[o * ldw + i] * scale[o];
}
