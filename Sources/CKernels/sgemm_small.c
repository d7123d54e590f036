// fp32 products of a few activation rows with a weight stored [out, in]: decode steps of a batch or of a
// beam, and short prefills (t5_sgemm_small in CKernels.h).
//
// With m = 5..48 rows the packed kernel of sgemm.c spends as long copying (transposing) the weight into
// its panels as multiplying, and pads m up to its 12-row tiles; the weight, read once per step, is the
// cost. Here nothing is packed: C[r, o] = dot(A[r, :], B[o, :]) is computed in tiles of 4 weight rows x 4
// activation rows, 16 zmm accumulators over k, each weight vector feeding four fused multiply-adds and
// each activation vector four. The four weight rows (4·k floats) stay in L1 while every block of four
// activation rows passes over them, so the weight crosses the memory bus once, front to back. The 16
// partial-sum vectors of a tile are then reduced together (a transpose-and-add tree) into 4 x 4 sums.
#include "CKernels.h"

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

#define T5_TARGET __attribute__((target("avx512f,avx512dq"), always_inline)) static inline

// [sum(a), sum(b), sum(c), sum(d)]: pairwise interleave-and-add inside each 128-bit lane, then across lanes.
T5_TARGET __m128 sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));  // a01 b01 a23 b23 per lane
    __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    __m512 abcd = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),   // a b c d per lane
                                _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
    __m256 half = _mm256_add_ps(_mm512_castps512_ps256(abcd), _mm512_extractf32x8_ps(abcd, 1));
    return _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1));
}

// The R x O tile (R activation rows from a, O weight rows from b; R, O <= 4 and constant after inlining).
// `next` (or NULL): the following weight rows, prefetched line by line while this tile runs.
T5_TARGET void tile(int R, int O, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb, float *c,
                    int64_t ldc, int accumulate, const float *next) {
    __m512 acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int o = 0; o < 4; o++) acc[r][o] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= k; i += 16) {
        __m512 w[4];
        for (int o = 0; o < O; o++) w[o] = _mm512_loadu_ps(b + o * ldb + i);
        if (next)
            for (int o = 0; o < 4; o++) _mm_prefetch((const char *)(next + o * ldb + i), _MM_HINT_T0);
        for (int r = 0; r < R; r++) {
            __m512 x = _mm512_loadu_ps(a + r * lda + i);
            for (int o = 0; o < O; o++) acc[r][o] = _mm512_fmadd_ps(x, w[o], acc[r][o]);
        }
    }
    if (i < k) {
        __mmask16 tail = (__mmask16)((1u << (k - i)) - 1);
        __m512 w[4];
        for (int o = 0; o < O; o++) w[o] = _mm512_maskz_loadu_ps(tail, b + o * ldb + i);
        for (int r = 0; r < R; r++) {
            __m512 x = _mm512_maskz_loadu_ps(tail, a + r * lda + i);
            for (int o = 0; o < O; o++) acc[r][o] = _mm512_fmadd_ps(x, w[o], acc[r][o]);
        }
    }
    for (int r = 0; r < R; r++) {
        float sums[4];
        _mm_storeu_ps(sums, sum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
        float *cr = c + r * ldc;
        for (int o = 0; o < O; o++) cr[o] = accumulate ? cr[o] + sums[o] : sums[o];
    }
}

// All activation rows against weight rows [o, o + O).
// The first pass over them also prefetches the next four weight rows (`next`, NULL for the last block):
// the later passes find these four in L1, and the memory stream never waits for a demand miss.
T5_TARGET void weight_rows(int O, int64_t m, int64_t k, const float *a, int64_t lda, const float *b, int64_t ldb,
                           float *c, int64_t ldc, int accumulate, const float *next) {
    int64_t r = 0;
    for (; r + 4 <= m; r += 4, next = NULL) tile(4, O, k, a + r * lda, lda, b, ldb, c + r * ldc, ldc, accumulate, next);
    switch (m - r) {
    case 3: tile(3, O, k, a + r * lda, lda, b, ldb, c + r * ldc, ldc, accumulate, next); break;
    case 2: tile(2, O, k, a + r * lda, lda, b, ldb, c + r * ldc, ldc, accumulate, next); break;
    case 1: tile(1, O, k, a + r * lda, lda, b, ldb, c + r * ldc, ldc, accumulate, next); break;
    default: break;
    }
}

__attribute__((target("avx512f,avx512dq")))
static void sgemm_small_avx512(int64_t m, int64_t n_begin, int64_t n_end, int64_t k, const float *a, int64_t lda,
                               const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate) {
    int64_t o = n_begin;
    for (; o + 4 <= n_end; o += 4) {
        const float *next = o + 8 <= n_end ? b + (o + 4) * ldb : NULL;
        weight_rows(4, m, k, a, lda, b + o * ldb, ldb, c + o, ldc, accumulate, next);
    }
    switch (n_end - o) {
    case 3: weight_rows(3, m, k, a, lda, b + o * ldb, ldb, c + o, ldc, accumulate, NULL); break;
    case 2: weight_rows(2, m, k, a, lda, b + o * ldb, ldb, c + o, ldc, accumulate, NULL); break;
    case 1: weight_rows(1, m, k, a, lda, b + o * ldb, ldb, c + o, ldc, accumulate, NULL); break;
    default: break;
    }
}

int t5_sgemm_small(int64_t m, int64_t n_begin, int64_t n_end, int64_t k, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate) {
    if (!t5_sgemm_available()) return 0;
    if (m > 0 && n_end > n_begin && k > 0) sgemm_small_avx512(m, n_begin, n_end, k, a, lda, b, ldb, c, ldc, accumulate);
    return 1;
}

#else

int t5_sgemm_small(int64_t m, int64_t n_begin, int64_t n_end, int64_t k, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate) {
    (void)m; (void)n_begin; (void)n_end; (void)k; (void)a; (void)lda; (void)b; (void)ldb; (void)c; (void)ldc;
    (void)accumulate;
    return 0;
}

#endif
