/* A probe, not the engine (benchmarks/probe_train_step.py compiles and times it; issue 19): the ACoL / HCLNet branch
 * head at the 8 px instrument as one fused, cache-resident CPU kernel with AVX-512 intrinsics. Per feature cell the
 * head is an MLP, out = W3 relu(W2 relu(W1 x + b1) + b2) + b3, x 16 channels, hidden 32, 10 classes. Cells are
 * processed R = 8 at a time, so their accumulators stay in registers; nothing but the class maps is written in the
 * forward, and the backward recomputes each block's hidden activations instead of reading them from memory.
 *
 * x (P, 16) and out (P, 10) are the channels_last tensors viewed as (cells, channels), P a multiple of R.
 * Weights: W1t (16, 32), W2t (32, 32), W3t (32, 10) transposed for the forward; W1 (32, 16), W2 (32, 32),
 * W3 (10, 32) as PyTorch holds them, for the input gradients. The weight and bias gradients accumulate (the caller
 * zeroes them), summed over cells in order: float rounding differs from oneDNN's (not bit-identical). */
#include <immintrin.h>
#include <string.h>
#define K 16
#define W 32
#define C 10
#define R 8
/* a[r] (two zmm: 32 lanes) += sum_i in[r * stride + i] * M[i] for i < n, M rows of 32, for R cells */
static inline void add_rows32(const float *in, int stride, int n, const float *M, __m512 a0[R], __m512 a1[R]) {
    for (int i = 0; i < n; i++) {
        __m512 w0 = _mm512_loadu_ps(M + i * W), w1 = _mm512_loadu_ps(M + i * W + 16);
        for (int r = 0; r < R; r++) {
            __m512 v = _mm512_set1_ps(in[r * stride + i]);
            a0[r] = _mm512_fmadd_ps(v, w0, a0[r]);
            a1[r] = _mm512_fmadd_ps(v, w1, a1[r]);
        }
    }
}
/* out[r] = relu(in[r] Wt + b) for R cells, 32 outputs */
static inline void layer32(const float *in, int nin, const float *Wt, const float *b, float *out) {
    __m512 a0[R], a1[R];
    __m512 b0 = _mm512_loadu_ps(b), b1v = _mm512_loadu_ps(b + 16);
    for (int r = 0; r < R; r++) { a0[r] = b0; a1[r] = b1v; }
    add_rows32(in, nin, nin, Wt, a0, a1);
    __m512 z = _mm512_setzero_ps();
    for (int r = 0; r < R; r++) {
        _mm512_storeu_ps(out + r * W, _mm512_max_ps(a0[r], z));
        _mm512_storeu_ps(out + r * W + 16, _mm512_max_ps(a1[r], z));
    }
}
/* out[r] = in[r] Wt + b for R cells, C outputs (one masked zmm) */
static inline void layer10(const float *in, const float *Wt, const float *b, float *out) {
    __mmask16 m = (1 << C) - 1;
    __m512 a[R];
    __m512 bv = _mm512_maskz_loadu_ps(m, b);
    for (int r = 0; r < R; r++) a[r] = bv;
    for (int i = 0; i < W; i++) {
        __m512 w = _mm512_maskz_loadu_ps(m, Wt + i * C);
        for (int r = 0; r < R; r++) a[r] = _mm512_fmadd_ps(_mm512_set1_ps(in[r * W + i]), w, a[r]);
    }
    for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(out + r * C, m, a[r]);
}
void head_forward(const float *x, long P, const float *W1t, const float *b1, const float *W2t, const float *b2,
                  const float *W3t, const float *b3, float *out) {
    float h1[R * W], h2[R * W];
    for (long p = 0; p < P; p += R) {
        layer32(x + p * K, K, W1t, b1, h1);
        layer32(h1, W, W2t, b2, h2);
        layer10(h2, W3t, b3, out + p * C);
    }
}

/* out[r] = (h[r] > 0) * sum_j g[r * gstride + j] * M[j] for j < nj, M rows of 32: a ReLU layer's input gradient */
static inline void back32(const float *g, int gstride, int nj, const float *M, const float *h, float *out) {
    __m512 a0[R], a1[R];
    for (int r = 0; r < R; r++) { a0[r] = _mm512_setzero_ps(); a1[r] = _mm512_setzero_ps(); }
    add_rows32(g, gstride, nj, M, a0, a1);
    __m512 z = _mm512_setzero_ps();
    for (int r = 0; r < R; r++) {
        __mmask16 k0 = _mm512_cmp_ps_mask(_mm512_loadu_ps(h + r * W), z, _CMP_GT_OQ);
        __mmask16 k1 = _mm512_cmp_ps_mask(_mm512_loadu_ps(h + r * W + 16), z, _CMP_GT_OQ);
        _mm512_storeu_ps(out + r * W, _mm512_maskz_mov_ps(k0, a0[r]));
        _mm512_storeu_ps(out + r * W + 16, _mm512_maskz_mov_ps(k1, a1[r]));
    }
}
/* G[i] (32 wide) += sum_r a[r][i] * g[r] for i < ni; gb += sum_r g[r] */
static inline void outer32(const float *a, int astride, int ni, const float *g, float *G, float *gb) {
    __m512 g0[R], g1[R];
    __m512 s0 = _mm512_loadu_ps(gb), s1 = _mm512_loadu_ps(gb + 16);
    for (int r = 0; r < R; r++) {
        g0[r] = _mm512_loadu_ps(g + r * W); g1[r] = _mm512_loadu_ps(g + r * W + 16);
        s0 = _mm512_add_ps(s0, g0[r]); s1 = _mm512_add_ps(s1, g1[r]);
    }
    _mm512_storeu_ps(gb, s0); _mm512_storeu_ps(gb + 16, s1);
    for (int i = 0; i < ni; i++) {
        __m512 c0 = _mm512_loadu_ps(G + i * W), c1 = _mm512_loadu_ps(G + i * W + 16);
        for (int r = 0; r < R; r++) {
            __m512 v = _mm512_set1_ps(a[r * astride + i]);
            c0 = _mm512_fmadd_ps(v, g0[r], c0);
            c1 = _mm512_fmadd_ps(v, g1[r], c1);
        }
        _mm512_storeu_ps(G + i * W, c0); _mm512_storeu_ps(G + i * W + 16, c1);
    }
}
void head_backward(const float *x, long P, const float *W1t, const float *b1, const float *W2t, const float *b2,
                   const float *W1, const float *W2, const float *W3, const float *gout, float *gx, float *gW1t,
                   float *gb1, float *gW2t, float *gb2, float *gW3t, float *gb3) {
    float h1[R * W], h2[R * W], g2[R * W], g1[R * W];
    __mmask16 m = (1 << C) - 1;
    for (long p = 0; p < P; p += R) {
        const float *xp = x + p * K, *g3 = gout + p * C;
        layer32(xp, K, W1t, b1, h1);
        layer32(h1, W, W2t, b2, h2);
        /* classifier: gb3, gW3t (32 x 10) */
        __m512 g3v[R];
        __m512 s = _mm512_maskz_loadu_ps(m, gb3);
        for (int r = 0; r < R; r++) { g3v[r] = _mm512_maskz_loadu_ps(m, g3 + r * C); s = _mm512_add_ps(s, g3v[r]); }
        _mm512_mask_storeu_ps(gb3, m, s);
        for (int i = 0; i < W; i++) {
            __m512 c = _mm512_maskz_loadu_ps(m, gW3t + i * C);
            for (int r = 0; r < R; r++) c = _mm512_fmadd_ps(_mm512_set1_ps(h2[r * W + i]), g3v[r], c);
            _mm512_mask_storeu_ps(gW3t + i * C, m, c);
        }
        back32(g3, C, C, W3, h2, g2);          /* g2 = relu'(h2) * W3^T g3 */
        outer32(h1, W, W, g2, gW2t, gb2);          /* gW2t += h1^T g2 */
        back32(g2, W, W, W2, h1, g1);           /* g1 = relu'(h1) * W2^T g2 */
        outer32(xp, K, K, g1, gW1t, gb1);          /* gW1t += x^T g1 */
        for (int r = 0; r < R; r++) {              /* gx = W1^T g1 (W1 rows of 16) */
            __m512 a = _mm512_setzero_ps();
            for (int j = 0; j < W; j++) a = _mm512_fmadd_ps(_mm512_set1_ps(g1[r * W + j]), _mm512_loadu_ps(W1 + j * K), a);
            _mm512_storeu_ps(gx + (p + r) * K, a);
        }
    }
}
