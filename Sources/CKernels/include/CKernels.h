// Low-precision weight kernels: products of fp32 activations with bf16 or int8 weights.
//
// Swift cannot name AVX-512 / AVX2 integer-widening instructions reliably, so these few loops are C with
// per-function target attributes, chosen at run time by CPU detection, with a portable scalar fallback.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// y[r, o] (+)= sum_i x[r, i] * w[o, i] for o in [row_begin, row_end), r in [0, m).
/// w is bf16 bits (the high half of an fp32), row-major with leading dimension ldw.
void t5_bf16_gemm(const uint16_t *w, int64_t ldw, int64_t row_begin, int64_t row_end, int64_t k,
                  const float *x, int64_t ldx, int64_t m, float *y, int64_t ldy, int accumulate);

/// y[r, o] (+)= scale[o] * sum_i x[r, i] * w[o, i]; w is int8 with one fp32 scale per output row.
void t5_int8_gemm(const int8_t *w, const float *scale, int64_t ldw, int64_t row_begin, int64_t row_end, int64_t k,
                  const float *x, int64_t ldx, int64_t m, float *y, int64_t ldy, int accumulate);

/// Widens rows [row_begin, row_end) of a bf16 / int8 matrix to fp32 (out is (row_end - row_begin, k)).
void t5_bf16_to_f32_rows(const uint16_t *w, int64_t ldw, int64_t row_begin, int64_t row_end, int64_t k, float *out);
void t5_int8_to_f32_rows(const int8_t *w, const float *scale, int64_t ldw, int64_t row_begin, int64_t row_end,
                         int64_t k, float *out);

/// The CPUs in this process's affinity mask (Linux), or 0 where there is none to read.
int t5_affinity_cores(void);

/// Which instruction set the kernels run on: "avx512", "avx2" or "scalar".
const char *t5_kernels_isa(void);

/// c (m, n) (+)= op(a) (m, k) · op(b) (k, n), row-major fp32, op(x) = x or xᵀ (trans_a, trans_b), with the
/// AVX-512 kernel of sgemm.c on the calling thread (accumulate: add to c, else overwrite it). Returns 0, with
/// c untouched, when that kernel is unavailable (no AVX-512, or T5_SGEMM=blas in the environment): the caller
/// then uses BLAS.
int t5_sgemm(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, int trans_a, const float *b,
             int64_t ldb, int trans_b, float *c, int64_t ldc, int accumulate);

/// c[r, o] (+)= sum_i a[r, i] * b[o, i] for r in [0, m), o in [n_begin, n_end): a few activation rows times
/// a weight stored [out, in], without packing (sgemm_small.c), on the calling thread. Returns 0, with c
/// untouched, without AVX-512 (F, DQ, BW, VL) or with T5_SGEMM=blas. k == 0 leaves c untouched.
int t5_sgemm_small(int64_t m, int64_t n_begin, int64_t n_end, int64_t k, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate);

/// The same for bf16 / int8 weights, with t5_bf16_gemm's / t5_int8_gemm's arguments (rows [n_begin, n_end)).
int t5_bf16_gemm_small(const uint16_t *w, int64_t ldw, int64_t n_begin, int64_t n_end, int64_t k, const float *x,
                       int64_t ldx, int64_t m, float *y, int64_t ldy, int accumulate);
int t5_int8_gemm_small(const int8_t *w, const float *scale, int64_t ldw, int64_t n_begin, int64_t n_end, int64_t k,
                       const float *x, int64_t ldx, int64_t m, float *y, int64_t ldy, int accumulate);

/// Whether the t5_*_gemm_small kernels run (1) or return 0 (0).
int t5_gemm_small_available(void);

/// Whether t5_sgemm runs (1) or returns 0 (0).
int t5_sgemm_available(void);

/// Weights packed once for t5_sgemm_prepacked: b is [n, k] (a weight stored [out, in]); out holds
/// t5_sgemm_packed_count(n, k) floats. Does nothing where t5_sgemm is unavailable.
int64_t t5_sgemm_packed_count(int64_t n, int64_t k);
void t5_sgemm_pack_weights(const float *b, int64_t ldb, int64_t n, int64_t k, float *out);

/// c[:, n_begin..<n_end] (+)= a (m, k) · bᵀ for b packed by t5_sgemm_pack_weights (n columns in all;
/// n_begin a multiple of 32), on the calling thread. Returns 0, c untouched, where t5_sgemm is unavailable.
int t5_sgemm_prepacked(int64_t m, int64_t n_begin, int64_t n_end, int64_t n, int64_t k, const float *a, int64_t lda,
                       const float *packed, float *c, int64_t ldc, int accumulate);

/// A spin-wait hint for the worker pool (x86 `pause`, Arm `yield`): lets the sibling hyper-thread run and
/// keeps the spinning core from flooding the memory system with loads.
static inline void t5_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#ifdef __cplusplus
}
#endif
