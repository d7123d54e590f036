// Products of a few fp32 activation rows with a weight stored [out, in] in fp32, bf16 or int8: decode
// steps of a batch or of a beam, and short prefills (t5_sgemm_small, t5_bf16_gemm_small, t5_int8_gemm_small
// in CKernels.h).
//
// With m = 5..48 rows the packed kernel of sgemm.c spends as long copying (transposing) the weight into
// its panels as multiplying, and pads m up to its 12-row tiles; the weight, read once per step, is the
// cost. Here nothing is packed: C[r, o] = dot(A[r, :], B[o, :]) is computed in tiles of 4 weight rows x 4
// activation rows, 16 zmm accumulators over k, each weight vector feeding four fused multiply-adds and
// each activation vector four. The four weight rows (4·k floats) stay in L1 while every block of four
// activation rows passes over them, so the weight crosses the memory bus once, front to back. The 16
// partial-sum vectors of a tile are then reduced together (a transpose-and-add tree) into 4 x 4 sums.
// bf16 and int8 weights are widened in registers as they are loaded (one widening per four multiply-adds),
// so only the narrow bytes cross the memory bus; an int8 row's scale multiplies its finished sums.
#include "CKernels.h"
#include <pthread.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>

#define T5_ISA "avx512f,avx512dq,avx512bw,avx512vl"
#define T5_TARGET __attribute__((target(T5_ISA), always_inline)) static inline

enum { F32 = 0, BF16 = 1, INT8 = 2 };
// Slice of k per pass over four weight rows (see weight_rows): 16 KB of fp32 weights plus 4 activation rows.
enum { KB = 1024 };

// 16 weights from element i of row `row` (of type T) as fp32; `tail` masks a partial vector.
T5_TARGET __m512 load_weights(int T, const void *row, int64_t i, __mmask16 tail) {
    switch (T) {
    case BF16: {
        __m256i h = _mm256_maskz_loadu_epi16(tail, (const uint16_t *)row + i);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    case INT8:
        return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(tail, (const int8_t *)row + i)));
    default:
        return _mm512_maskz_loadu_ps(tail, (const float *)row + i);
    }
}

static inline const void *weight_row(int T, const void *b, int64_t row, int64_t ldb) {
    int64_t bytes = T == F32 ? 4 : T == BF16 ? 2 : 1;
    return (const char *)b + row * ldb * bytes;
}

// [sum(a), sum(b), sum(c), sum(d)]: pairwise interleave-and-add inside each 128-bit lane, then across lanes.
T5_TARGET __m128 sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));  // a01 b01 a23 b23 per lane
    __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    __m512 abcd = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),   // a b c d per lane
                                _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
    __m256 half = _mm256_add_ps(_mm512_castps512_ps256(abcd), _mm512_extractf32x8_ps(abcd, 1));
    return _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1));
}

// The R x O tile (R activation rows from a, O weight rows of type T from b; R, O <= 4 and constant after
// inlining) over k in [k0, k). Rows [pf_begin, pf_end) of `next` (the following weight rows) are prefetched
// line by line while this tile runs.
T5_TARGET void tile(int T, int R, int O, int64_t k0, int64_t k, const float *a, int64_t lda, const void *b,
                    int64_t ldb, const float *scale, float *c, int64_t ldc, int accumulate, const void *next,
                    int pf_begin, int pf_end) {
    __m512 acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int o = 0; o < 4; o++) acc[r][o] = _mm512_setzero_ps();
    const void *rows[4];
    for (int o = 0; o < O; o++) rows[o] = weight_row(T, b, o, ldb);
    for (int64_t i = k0; i < k; i += 16) {
        __mmask16 tail = k - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (k - i)) - 1);
        __m512 w[4];
        for (int o = 0; o < O; o++) w[o] = load_weights(T, rows[o], i, tail);
        if (next)
            for (int o = pf_begin; o < pf_end; o++)
                _mm_prefetch((const char *)weight_row(T, next, o, ldb) + i * (T == F32 ? 4 : T == BF16 ? 2 : 1), _MM_HINT_T0);
        for (int r = 0; r < R; r++) {
            __m512 x = _mm512_maskz_loadu_ps(tail, a + r * lda + i);
            for (int o = 0; o < O; o++) acc[r][o] = _mm512_fmadd_ps(x, w[o], acc[r][o]);
        }
    }
    __m128 factors = _mm_set1_ps(1);
    if (scale) {
        float f[4] = {1, 1, 1, 1};
        for (int o = 0; o < O; o++) f[o] = scale[o];
        factors = _mm_loadu_ps(f);
    }
    for (int r = 0; r < R; r++) {
        float sums[4];
        _mm_storeu_ps(sums, _mm_mul_ps(factors, sum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3])));
        float *cr = c + r * ldc;
        for (int o = 0; o < O; o++) cr[o] = accumulate ? cr[o] + sums[o] : sums[o];
    }
}

// All activation rows against weight rows [0, O) of b, in passes of four activation rows. The passes also
// prefetch the next four weight rows (`next`, NULL for the last block), spread evenly over them (one row
// per pass when there are four passes, all four in a single pass): the memory stream stays busy while
// the later passes compute from L1, and no pass waits for a demand miss. Long rows are cut into slices of
// KB values, so that four weight-row slices stay in L1 across the passes (faster for k = 2048 and 3072,
// unchanged for 512 and 768: tools/bench/RESULTS.md, "Kernel choices"); later slices add to C.
T5_TARGET void weight_rows(int T, int O, int64_t m, int64_t k, const float *a, int64_t lda, const void *b,
                           int64_t ldb, const float *scale, float *c, int64_t ldc, int accumulate, const void *next) {
    int64_t passes = (m + 3) / 4;
    int per = passes >= 4 ? 1 : (int)((4 + passes - 1) / passes);
    for (int64_t k0 = 0; k0 < k; k0 += KB) {
        int64_t k1 = k - k0 > KB ? k0 + KB : k;
        int acc = accumulate || k0 > 0;
        int64_t r = 0;
        int first = 0;
        for (; r + 4 <= m; r += 4, first += per) {
            int last = first + per < 4 ? first + per : 4;
            tile(T, 4, O, k0, k1, a + r * lda, lda, b, ldb, scale, c + r * ldc, ldc, acc, first < 4 ? next : NULL,
                 first, last);
        }
        int last = first + per < 4 ? first + per : 4;
        const void *pf = first < 4 ? next : NULL;
        switch (m - r) {
        case 3: tile(T, 3, O, k0, k1, a + r * lda, lda, b, ldb, scale, c + r * ldc, ldc, acc, pf, first, last); break;
        case 2: tile(T, 2, O, k0, k1, a + r * lda, lda, b, ldb, scale, c + r * ldc, ldc, acc, pf, first, last); break;
        case 1: tile(T, 1, O, k0, k1, a + r * lda, lda, b, ldb, scale, c + r * ldc, ldc, acc, pf, first, last); break;
        default: break;
        }
    }
}

T5_TARGET void gemm_small(int T, int64_t m, int64_t n_begin, int64_t n_end, int64_t k, const float *a,
                          int64_t lda, const void *b, int64_t ldb, const float *scale, float *c, int64_t ldc,
                          int accumulate) {
    int64_t o = n_begin;
    for (; o + 4 <= n_end; o += 4) {
        const void *next = o + 8 <= n_end ? weight_row(T, b, o + 4, ldb) : NULL;
        weight_rows(T, 4, m, k, a, lda, weight_row(T, b, o, ldb), ldb, scale ? scale + o : NULL, c + o, ldc,
                    accumulate, next);
    }
    const void *rest = weight_row(T, b, o, ldb);
    const float *rest_scale = scale ? scale + o : NULL;
    switch (n_end - o) {
    case 3: weight_rows(T, 3, m, k, a, lda, rest, ldb, rest_scale, c + o, ldc, accumulate, NULL); break;
    case 2: weight_rows(T, 2, m, k, a, lda, rest, ldb, rest_scale, c + o, ldc, accumulate, NULL); break;
    case 1: weight_rows(T, 1, m, k, a, lda, rest, ldb, rest_scale, c + o, ldc, accumulate, NULL); break;
    default: break;
    }
}

__attribute__((target(T5_ISA))) static void gemm_small_f32(int64_t m, int64_t n0, int64_t n1, int64_t k,
    const float *a, int64_t lda, const void *b, int64_t ldb, const float *scale, float *c, int64_t ldc, int acc) {
    gemm_small(F32, m, n0, n1, k, a, lda, b, ldb, scale, c, ldc, acc);
}
__attribute__((target(T5_ISA))) static void gemm_small_bf16(int64_t m, int64_t n0, int64_t n1, int64_t k,
    const float *a, int64_t lda, const void *b, int64_t ldb, const float *scale, float *c, int64_t ldc, int acc) {
    gemm_small(BF16, m, n0, n1, k, a, lda, b, ldb, scale, c, ldc, acc);
}
__attribute__((target(T5_ISA))) static void gemm_small_int8(int64_t m, int64_t n0, int64_t n1, int64_t k,
    const float *a, int64_t lda, const void *b, int64_t ldb, const float *scale, float *c, int64_t ldc, int acc) {
    gemm_small(INT8, m, n0, n1, k, a, lda, b, ldb, scale, c, ldc, acc);
}

// Read once under pthread_once, as t5_sgemm_available is (concurrent callers, no racy lazy static).
static pthread_once_t gemm_small_once = PTHREAD_ONCE_INIT;
static int gemm_small_is_available;

static void detect_gemm_small(void) {
    __builtin_cpu_init();
    gemm_small_is_available = t5_sgemm_available() && __builtin_cpu_supports("avx512dq") &&
                              __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}

int t5_gemm_small_available(void) {
    pthread_once(&gemm_small_once, detect_gemm_small);
    return gemm_small_is_available;
}

int t5_sgemm_small(int64_t m, int64_t n_begin, int64_t n_end, int64_t k, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate) {
    if (!t5_gemm_small_available()) return 0;
    if (m > 0 && n_end > n_begin && k > 0) gemm_small_f32(m, n_begin, n_end, k, a, lda, b, ldb, NULL, c, ldc, accumulate);
    return 1;
}

int t5_bf16_gemm_small(const uint16_t *w, int64_t ldw, int64_t n_begin, int64_t n_end, int64_t k, const float *x,
                       int64_t ldx, int64_t m, float *y, int64_t ldy, int accumulate) {
    if (!t5_gemm_small_available()) return 0;
    if (m > 0 && n_end > n_begin && k > 0) gemm_small_bf16(m, n_begin, n_end, k, x, ldx, w, ldw, NULL, y, ldy, accumulate);
    return 1;
}

int t5_int8_gemm_small(const int8_t *w, const float *scale, int64_t ldw, int64_t n_begin, int64_t n_end, int64_t k,
                       const float *x, int64_t ldx, int64_t m, float *y, int64_t ldy, int accumulate) {
    if (!t5_gemm_small_available()) return 0;
    if (m > 0 && n_end > n_begin && k > 0) gemm_small_int8(m, n_begin, n_end, k, x, ldx, w, ldw, scale, y, ldy, accumulate);
    return 1;
}

#else

int t5_gemm_small_available(void) { return 0; }

int t5_sgemm_small(int64_t m, int64_t n_begin, int64_t n_end, int64_t k, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate) {
    (void)m; (void)n_begin; (void)n_end; (void)k; (void)a; (void)lda; (void)b; (void)ldb; (void)c; (void)ldc;
    (void)accumulate;
    return 0;
}

int t5_bf16_gemm_small(const uint16_t *w, int64_t ldw, int64_t n_begin, int64_t n_end, int64_t k, const float *x,
                       int64_t ldx, int64_t m, float *y, int64_t ldy, int accumulate) {
    (void)w; (void)ldw; (void)n_begin; (void)n_end; (void)k; (void)x; (void)ldx; (void)m; (void)y; (void)ldy;
    (void)accumulate;
    return 0;
}

int t5_int8_gemm_small(const int8_t *w, const float *scale, int64_t ldw, int64_t n_begin, int64_t n_end, int64_t k,
                       const float *x, int64_t ldx, int64_t m, float *y, int64_t ldy, int accumulate) {
    (void)w; (void)scale; (void)ldw; (void)n_begin; (void)n_end; (void)k; (void)x; (void)ldx; (void)m; (void)y;
    (void)ldy; (void)accumulate;
    return 0;
}

#endif
