#include "CKernels.h"

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

#define T5_ROWS4_KERNEL(NAME, TYPE, WIDEN, SCALE_DECL, SCALE_OF)                                              \
    __attribute__((target("avx512f,avx512bw"))) static void NAME(                                             \
        const TYPE *w, SCALE_DECL int64_t ldw, int64_t r0, int64_t r1, int64_t k, const float *x, int64_t ldx, \
        int64_t m, float *y, int64_t ldy, int acc) {                                                          \
        int64_t kv = k / 16 * 16;                                                                              \
        int64_t o = r0;                                                                                        \
        for (; o + 4 <= r1; o += 4) {                                                                          \
            const TYPE *w0 = w + o * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;                       \
            for (int64_t r = 0; r < m; r++) {                                                                  \
                const float *xr = x + r * ldx;                                                                 \
                __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;                                    \
                int64_t i = 0;                                                                                 \
                for (; i < kv; i += 16) {                                                                      \
                    __m512 xv = _mm512_loadu_ps(xr + i);                                                       \
                    s0 = _mm512_fmadd_ps(WIDEN(w0 + i), xv, s0);                                               \
                    s1 = _mm512_fmadd_ps(WIDEN(w1 + i), xv, s1);                                               \
                    s2 = _mm512_fmadd_ps(WIDEN(w2 + i), xv, s2);                                               \
                    s3 = _mm512_fmadd_ps(WIDEN(w3 + i), xv, s3);                                               \
                }                                                                                              \
                float t[4] = {_mm512_reduce_add_ps(s0), _mm512_reduce_add_ps(s1), _mm512_reduce_add_ps(s2),    \
                              _mm512_reduce_add_ps(s3)};                                                       \
                for (; i < k; i++) {                                                                           \
                    t[0] += (float)SCALAR(w0[i]) * xr[i];                                                      \
                    t[1] += (float)SCALAR(w1[i]) * xr[i];                                                      \
                    t[2] += (float)SCALAR(w2[i]) * xr[i];                                                      \
                    t[3] += (float)SCALAR(w3[i]) * xr[i];                                                      \
                }                                                                                              \
                for (int j = 0; j < 4; j++) {                                                                  \
                    float v = t[j] * SCALE_OF(o + j);                                                          \
                    float *dst = y + r * ldy + o + j;                                                          \
                    *dst = acc ? *dst + v : v;                                                                 \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
        TAIL(o, r1);                                                                                           \
    }

#define SCALAR(v) bf16_to_f32(v)
#define NO_SCALE_DECL
#define NO_SCALE_OF(o) 1.0f
#define TAIL(o, r1) bf16_gemm_scalar(w, ldw, o, r1, k, x, ldx, m, y, ldy, acc)
T5_ROWS4_KERNEL(bf16_gemm_avx512, uint16_t, bf16x16_avx512, NO_SCALE_DECL, NO_SCALE_OF)
#undef SCALAR
#undef TAIL

#define SCALAR(v) (v)
#define SCALE_DECL const float *scale,
#define SCALE_OF(o) scale[o]
#define TAIL(o, r1) int8_gemm_scalar(w, scale, ldw, o, r1, k, x, ldx, m, y, ldy, acc)
T5_ROWS4_KERNEL(int8_gemm_avx512, int8_t, int8x16_avx512, SCALE_DECL, SCALE_OF)
#undef SCALAR
#undef TAIL

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

#define T5_ROWS4_KERNEL_AVX2(NAME, TYPE, WIDEN, SCALE_DECL, SCALE_OF)                                         \
    __attribute__((target("avx2,fma"))) static void NAME(                                                     \
        const TYPE *w, SCALE_DECL int64_t ldw, int64_t r0, int64_t r1, int64_t k, const float *x, int64_t ldx, \
        int64_t m, float *y, int64_t ldy, int acc) {                                                          \
        int64_t kv = k / 8 * 8;                                                                                \
        int64_t o = r0;                                                                                        \
        for (; o + 4 <= r1; o += 4) {                                                                          \
            const TYPE *w0 = w + o * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;                       \
            for (int64_t r = 0; r < m; r++) {                                                                  \
                const float *xr = x + r * ldx;                                                                 \
                __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;                                    \
                int64_t i = 0;                                                                                 \
                for (; i < kv; i += 8) {                                                                       \
                    __m256 xv = _mm256_loadu_ps(xr + i);                                                       \
                    s0 = _mm256_fmadd_ps(WIDEN(w0 + i), xv, s0);                                               \
                    s1 = _mm256_fmadd_ps(WIDEN(w1 + i), xv, s1);                                               \
                    s2 = _mm256_fmadd_ps(WIDEN(w2 + i), xv, s2);                                               \
                    s3 = _mm256_fmadd_ps(WIDEN(w3 + i), xv, s3);                                               \
                }                                                                                              \
                float t[4] = {hsum256(s0), hsum256(s1), hsum256(s2), hsum256(s3)};                             \
                for (; i < k; i++) {                                                                           \
                    t[0] += (float)SCALAR(w0[i]) * xr[i];                                                      \
                    t[1] += (float)SCALAR(w1[i]) * xr[i];                                                      \
                    t[2] += (float)SCALAR(w2[i]) * xr[i];                                                      \
                    t[3] += (float)SCALAR(w3[i]) * xr[i];                                                      \
                }                                                                                              \
                for (int j = 0; j < 4; j++) {                                                                  \
                    float v = t[j] * SCALE_OF(o + j);                                                          \
                    float *dst = y + r * ldy + o + j;                                                          \
                    *dst = acc ? *dst + v : v;                                                                 \
                }                                                                                              \
            }                                                                                                  \
        }                                                                                                      \
        TAIL(o, r1);                                                                                           \
    }

#define SCALAR(v) bf16_to_f32(v)
#define TAIL(o, r1) bf16_gemm_scalar(w, ldw, o, r1, k, x, ldx, m, y, ldy, acc)
T5_ROWS4_KERNEL_AVX2(bf16_gemm_avx2, uint16_t, bf16x8_avx2, NO_SCALE_DECL, NO_SCALE_OF)
#undef SCALAR
#undef TAIL

#define SCALAR(v) (v)
#define TAIL(o, r1) int8_gemm_scalar(w, scale, ldw, o, r1, k, x, ldx, m, y, ldy, acc)
T5_ROWS4_KERNEL_AVX2(int8_gemm_avx2, int8_t, int8x8_avx2, SCALE_DECL, SCALE_OF)
#undef SCALAR
#undef TAIL

enum isa { ISA_UNKNOWN, ISA_SCALAR, ISA_AVX2, ISA_AVX512 };
static enum isa detected = ISA_UNKNOWN;

static enum isa current_isa(void) {
    if (detected == ISA_UNKNOWN) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
            detected = ISA_AVX512;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            detected = ISA_AVX2;
        else
            detected = ISA_SCALAR;
    }
    return detected;
}

void t5_bf16_gemm(const uint16_t *w, int64_t ldw, int64_t r0, int64_t r1, int64_t k, const float *x, int64_t ldx,
                  int64_t m, float *y, int64_t ldy, int acc) {
    switch (current_isa()) {
    case ISA_AVX512: bf16_gemm_avx512(w, ldw, r0, r1, k, x, ldx, m, y, ldy, acc); break;
    case ISA_AVX2: bf16_gemm_avx2(w, ldw, r0, r1, k, x, ldx, m, y, ldy, acc); break;
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
