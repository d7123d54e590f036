// fp32 matrix product with AVX-512 for the training step's large products (t5_sgemm in CKernels.h).
//
// The layout is the classic one of BLIS/GotoBLAS: C is computed in tiles of MR x NR = 12 x 32 (24 zmm
// accumulators) from "packed" copies of A and B, laid out so the inner loop reads both contiguously:
//
//   for each block of NC columns of C        (the packed B block, KC x NC, stays in L2)
//     for each slice of KC along k           (C accumulates over the slices)
//       pack B[KC, NC] into panels of NR columns: for each k, NR consecutive values
//       for each block of MC rows of C
//         pack A[MC, KC] into panels of MR rows: for each k, MR consecutive values
//         for each NR panel of B, for each MR panel of A: the micro-kernel,
//           KC steps of: two vector loads of B, MR broadcasts of A, 2·MR fused multiply-adds
//
// Packing pads partial panels with zeros, so the micro-kernel always runs full tiles; a partial tile of C
// is written through a small buffer. op(A) and op(B) may be transposed, which only changes how the
// packing reads them. Each element of C is a sum over k in increasing order, in KC-long partial sums.
//
// Why not OpenBLAS: this machine's OpenBLAS may run its AVX2 kernels (they are chosen by CPU table or by
// OPENBLAS_CORETYPE), which use half the width of the AVX-512 units. Without AVX-512 the caller uses BLAS.
#include "CKernels.h"
#include <pthread.h>

#include <stdlib.h>

#if defined(__x86_64__) && (defined(__clang__) || defined(__GNUC__))
#include <immintrin.h>
#include <pthread.h>

// PF: how far ahead (floats) pack_b prefetches each weight row; 64 measured best of 64/128/256 on the t5-base
// encoder (tools/bench/RESULTS.md, "Kernel choices").
enum { MR = 12, NR = 32, KC = 256, MC = 96, NC = 512, PF = 64 };

// Packing buffers, one pair per thread (the products run on the runtime's few long-lived worker threads and
// on callers' threads), freed if the thread exits.
struct packing { float *a, *b; };
static pthread_key_t packing_key;
static pthread_once_t packing_once = PTHREAD_ONCE_INIT;

static void free_packing(void *p) {
    struct packing *buffers = p;
    free(buffers->a);
    free(buffers->b);
    free(buffers);
}

static void make_packing_key(void) { pthread_key_create(&packing_key, free_packing); }

static struct packing *packing_buffers(void) {
    pthread_once(&packing_once, make_packing_key);
    struct packing *buffers = pthread_getspecific(packing_key);
    if (buffers) return buffers;
    buffers = malloc(sizeof *buffers);
    if (!buffers) return NULL;
    buffers->a = aligned_alloc(64, sizeof(float) * MC * KC);
    buffers->b = aligned_alloc(64, sizeof(float) * NC * KC);
    if (!buffers->a || !buffers->b || pthread_setspecific(packing_key, buffers) != 0) {
        free_packing(buffers);
        return NULL;
    }
    return buffers;
}

// r[i] <- column i of the 16 x 16 block whose rows are r[0..15]: three rounds of lane shuffles
// (pairs of rows, then 128-bit quarters, then halves).
__attribute__((target("avx512f")))
static inline void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);      // per quarter: r_i[0] r_i+1[0] r_i[1] r_i+1[1]
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);  //              r_i[2] r_i+1[2] r_i[3] r_i+1[3]
    }
    for (int i = 0; i < 16; i += 4) {
        // quarter L of u[i + j] = column 4L + j of rows i..i+3
        u[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int h = 0; h < 16; h += 8) {
        for (int j = 0; j < 4; j++) {
            t[h + j] = _mm512_shuffle_f32x4(u[h + j], u[h + j + 4], 0x88);      // columns j, 8 + j
            t[h + j + 4] = _mm512_shuffle_f32x4(u[h + j], u[h + j + 4], 0xdd);  // columns 4 + j, 12 + j
        }
    }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
    }
}

// Rows [i0, i0 + mc) and k in [p0, p0 + kc) of op(A) into panels of MR rows: panel q holds, for each k,
// the MR values op(A)[i0 + q·MR + r, k] (zeros past row mc).
__attribute__((target("avx512f")))
static void pack_a(const float *a, int64_t lda, int trans, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
                   float *dst) {
    for (int64_t q = 0; q < mc; q += MR, dst += MR * kc) {
        int64_t rows = mc - q < MR ? mc - q : MR;
        if (trans) {
            // op(A)[i, k] = a[k, i]: the MR values of a k are contiguous in a.
            for (int64_t p = 0; p < kc; p++) {
                const float *src = a + (p0 + p) * lda + i0 + q;
                float *d = dst + p * MR;
                for (int64_t r = 0; r < rows; r++) d[r] = src[r];
                for (int64_t r = rows; r < MR; r++) d[r] = 0;
            }
        } else {
            // op(A)[i, k] = a[i, k]: 16 k of the panel's rows at a time, transposed in registers.
            int64_t p = 0;
            for (; p + 16 <= kc; p += 16) {
                __m512 r[16];
                for (int64_t i = 0; i < 16; i++)
                    r[i] = i < rows ? _mm512_loadu_ps(a + (i0 + q + i) * lda + p0 + p) : _mm512_setzero_ps();
                transpose16(r);
                for (int t = 0; t < 16; t++) _mm512_mask_storeu_ps(dst + (p + t) * MR, (1 << MR) - 1, r[t]);
            }
            for (; p < kc; p++) {
                float *d = dst + p * MR;
#pragma clang loop vectorize(disable)
                for (int64_t r = 0; r < rows; r++) d[r] = a[(i0 + q + r) * lda + p0 + p];
                for (int64_t r = rows; r < MR; r++) d[r] = 0;
            }
        }
    }
}

// k in [p0, p0 + kc) and columns [j0, j0 + nc) of op(B) into panels of NR columns: panel q holds, for each
// k, the NR values op(B)[k, j0 + q·NR + c] (zeros past column nc).
__attribute__((target("avx512f")))
static void pack_b(const float *b, int64_t ldb, int trans, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
                   float *dst) {
    for (int64_t q = 0; q < nc; q += NR, dst += NR * kc) {
        int64_t cols = nc - q < NR ? nc - q : NR;
        if (trans) {
            // op(B)[k, j] = b[j, k] (a weight stored [out, in]): 16 k of 16 rows of b at a time, transposed
            // in registers.
            int64_t p = 0;
            for (; p + 16 <= kc; p += 16) {
                // 32 rows are read side by side, one line each per step: too many streams for the hardware
                // prefetcher, so each row is fetched PF floats ahead (weights come from DRAM); near the end
                // of this k slice the prefetch moves on to the same lines of the next panel's rows, which
                // are packed next.
                int64_t ahead = p + PF < kc ? p0 + p + PF : p0 + p + PF - kc;
                int64_t shift = p + PF < kc ? 0 : NR;
                for (int64_t h = 0; h < NR; h += 16) {
                    __m512 r[16];
                    for (int64_t i = 0; i < 16; i++) {
                        if (q + shift + h + i < nc)
                            _mm_prefetch((const char *)(b + (j0 + q + shift + h + i) * ldb + ahead), _MM_HINT_T0);
                        r[i] = h + i < cols ? _mm512_loadu_ps(b + (j0 + q + h + i) * ldb + p0 + p) : _mm512_setzero_ps();
                    }
                    transpose16(r);
                    for (int t = 0; t < 16; t++) _mm512_store_ps(dst + (p + t) * NR + h, r[t]);
                }
            }
            for (; p < kc; p++) {
                float *d = dst + p * NR;
#pragma clang loop vectorize(disable)
                for (int64_t c = 0; c < cols; c++) d[c] = b[(j0 + q + c) * ldb + p0 + p];
                for (int64_t c = cols; c < NR; c++) d[c] = 0;
            }
        } else if (cols == NR) {
            for (int64_t p = 0; p < kc; p++) {
                const float *src = b + (p0 + p) * ldb + j0 + q;
                _mm512_store_ps(dst + p * NR, _mm512_loadu_ps(src));
                _mm512_store_ps(dst + p * NR + 16, _mm512_loadu_ps(src + 16));
            }
        } else {
            for (int64_t p = 0; p < kc; p++) {
                const float *src = b + (p0 + p) * ldb + j0 + q;
                float *d = dst + p * NR;
                for (int64_t c = 0; c < cols; c++) d[c] = src[c];
                for (int64_t c = cols; c < NR; c++) d[c] = 0;
            }
        }
    }
}

// C[rows, cols] (+)= the MR x NR tile of (packed A panel) · (packed B panel) over kc steps.
__attribute__((target("avx512f")))
static void micro_kernel(int64_t kc, const float *pa, const float *pb, float *c, int64_t ldc, int64_t rows,
                         int64_t cols, int accumulate) {
    __m512 acc[MR][2];
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t p = 0; p < kc; p++, pa += MR, pb += NR) {
        __m512 b0 = _mm512_load_ps(pb), b1 = _mm512_load_ps(pb + 16);
        for (int r = 0; r < MR; r++) {
            __m512 a = _mm512_set1_ps(pa[r]);
            acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
        }
    }
    if (rows == MR && cols == NR) {
        for (int r = 0; r < MR; r++) {
            float *cr = c + r * ldc;
            if (accumulate) {
                acc[r][0] = _mm512_add_ps(_mm512_loadu_ps(cr), acc[r][0]);
                acc[r][1] = _mm512_add_ps(_mm512_loadu_ps(cr + 16), acc[r][1]);
            }
            _mm512_storeu_ps(cr, acc[r][0]);
            _mm512_storeu_ps(cr + 16, acc[r][1]);
        }
        return;
    }
    float tile[MR * NR] __attribute__((aligned(64)));
    for (int r = 0; r < MR; r++) {
        _mm512_store_ps(tile + r * NR, acc[r][0]);
        _mm512_store_ps(tile + r * NR + 16, acc[r][1]);
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < cols; j++)
            c[r * ldc + j] = accumulate ? c[r * ldc + j] + tile[r * NR + j] : tile[r * NR + j];
}

// C[:, 0..<nc] (+)= op(A)[:, p0..<p0 + kc] · (the packed k slice of B, nc columns): every block of MC rows
// of A packed, then the micro-kernel over every MR x NR tile.
__attribute__((target("avx512f")))
static void multiply_slice(int64_t m, int64_t nc, int64_t kc, const float *a, int64_t lda, int trans_a, int64_t p0,
                           const float *packed_b, float *c, int64_t ldc, int acc, float *packed_a) {
    for (int64_t i0 = 0; i0 < m; i0 += MC) {
        int64_t mc = m - i0 < MC ? m - i0 : MC;
        pack_a(a, lda, trans_a, i0, mc, p0, kc, packed_a);
        for (int64_t jr = 0; jr < nc; jr += NR) {
            int64_t cols = nc - jr < NR ? nc - jr : NR;
            for (int64_t ir = 0; ir < mc; ir += MR) {
                int64_t rows = mc - ir < MR ? mc - ir : MR;
                micro_kernel(kc, packed_a + ir * kc, packed_b + jr * kc, c + (i0 + ir) * ldc + jr, ldc, rows, cols, acc);
            }
        }
    }
}

__attribute__((target("avx512f")))
static void sgemm_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, int trans_a,
                         const float *b, int64_t ldb, int trans_b, float *c, int64_t ldc, int accumulate,
                         float *packed_a, float *packed_b) {
    for (int64_t j0 = 0; j0 < n; j0 += NC) {
        int64_t nc = n - j0 < NC ? n - j0 : NC;
        for (int64_t p0 = 0; p0 < k; p0 += KC) {
            int64_t kc = k - p0 < KC ? k - p0 : KC;
            int acc = accumulate || p0 > 0;
            pack_b(b, ldb, trans_b, p0, kc, j0, nc, packed_b);
            multiply_slice(m, nc, kc, a, lda, trans_a, p0, packed_b, c + j0, ldc, acc, packed_a);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Weights packed once: the encoder multiplies the same weights by new activations on every call, so their
// panels are packed at load (t5_sgemm_pack_weights) instead of on every product. Layout: for each k slice
// [p0, p0 + kc) (KC long but the last), every panel of NR columns of op(B) = Bᵀ over the whole n, each
// kc x NR: exactly what pack_b writes for the slice, so a column block [j0, j0 + nc) of a slice starts at
// panel j0 / NR.
// ---------------------------------------------------------------------------------------------------

static int64_t panels_of(int64_t n) { return (n + NR - 1) / NR; }

int64_t t5_sgemm_packed_count(int64_t n, int64_t k) { return k * NR * panels_of(n); }

void t5_sgemm_pack_weights(const float *b, int64_t ldb, int64_t n, int64_t k, float *out) {
    if (!t5_sgemm_available()) return;
    for (int64_t p0 = 0; p0 < k; p0 += KC) {
        int64_t kc = k - p0 < KC ? k - p0 : KC;
        pack_b(b, ldb, 1, p0, kc, 0, n, out + p0 * NR * panels_of(n));
    }
}

__attribute__((target("avx512f")))
static void sgemm_prepacked_avx512(int64_t m, int64_t n_begin, int64_t n_end, int64_t n, int64_t k, const float *a,
                                   int64_t lda, const float *packed, float *c, int64_t ldc, int accumulate,
                                   float *packed_a) {
    for (int64_t j0 = n_begin; j0 < n_end; j0 += NC) {
        int64_t nc = n_end - j0 < NC ? n_end - j0 : NC;
        for (int64_t p0 = 0; p0 < k; p0 += KC) {
            int64_t kc = k - p0 < KC ? k - p0 : KC;
            int acc = accumulate || p0 > 0;
            const float *packed_b = packed + p0 * NR * panels_of(n) + (j0 / NR) * NR * kc;
            multiply_slice(m, nc, kc, a, lda, 0, p0, packed_b, c + j0, ldc, acc, packed_a);
        }
    }
}

int t5_sgemm_prepacked(int64_t m, int64_t n_begin, int64_t n_end, int64_t n, int64_t k, const float *a, int64_t lda,
                       const float *packed, float *c, int64_t ldc, int accumulate) {
    struct packing *buffers = t5_sgemm_available() ? packing_buffers() : NULL;
    if (!buffers) return 0;
    if (m <= 0 || n_end <= n_begin || k <= 0) return 1;
    sgemm_prepacked_avx512(m, n_begin, n_end, n, k, a, lda, packed, c, ldc, accumulate, buffers->a);
    return 1;
}

// The CPU's features are read once, under pthread_once: workers call these checks concurrently, and a plain
// lazily written static is a data race (Thread Sanitizer reports it).
static pthread_once_t sgemm_once = PTHREAD_ONCE_INIT;
static int sgemm_is_available;

static void detect_sgemm(void) {
    __builtin_cpu_init();
    const char *choice = getenv("T5_SGEMM");  // "blas" turns the kernel off (comparisons, debugging)
    sgemm_is_available = __builtin_cpu_supports("avx512f") && !(choice && choice[0] == 'b');
}

int t5_sgemm_available(void) {
    pthread_once(&sgemm_once, detect_sgemm);
    return sgemm_is_available;
}

int t5_sgemm(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, int trans_a, const float *b,
             int64_t ldb, int trans_b, float *c, int64_t ldc, int accumulate) {
    struct packing *buffers = t5_sgemm_available() ? packing_buffers() : NULL;
    if (!buffers) return 0;
    if (m <= 0 || n <= 0) return 1;
    if (k <= 0) {
        if (!accumulate)
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) c[i * ldc + j] = 0;
        return 1;
    }
    sgemm_avx512(m, n, k, a, lda, trans_a, b, ldb, trans_b, c, ldc, accumulate, buffers->a, buffers->b);
    return 1;
}

#else

int t5_sgemm_available(void) { return 0; }

int64_t t5_sgemm_packed_count(int64_t n, int64_t k) { (void)n; (void)k; return 0; }

void t5_sgemm_pack_weights(const float *b, int64_t ldb, int64_t n, int64_t k, float *out) {
    (void)b; (void)ldb; (void)n; (void)k; (void)out;
}

int t5_sgemm_prepacked(int64_t m, int64_t n_begin, int64_t n_end, int64_t n, int64_t k, const float *a, int64_t lda,
                       const float *packed, float *c, int64_t ldc, int accumulate) {
    (void)m; (void)n_begin; (void)n_end; (void)n; (void)k; (void)a; (void)lda; (void)packed; (void)c; (void)ldc;
    (void)accumulate;
    return 0;
}

int t5_sgemm(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, int trans_a, const float *b,
             int64_t ldb, int trans_b, float *c, int64_t ldc, int accumulate) {
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)trans_a; (void)b; (void)ldb; (void)trans_b;
    (void)c; (void)ldc; (void)accumulate;
    return 0;
}

#endif
