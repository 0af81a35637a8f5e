/* Fused CPU training kernels for the small backbone at the suite's 8 px instrument (issue 19; docs/methods.md §4.5;
 * read by wsol_utils/nets/fused.py, which checks every shape, dtype and layout before calling in here).
 *
 * In PyTorch a training step of the small models is some twenty operations, most writing a (64, C, 32, 32) float
 * tensor that the next layer, a ReLU or the backward reads again. These kernels do several layers at once with the
 * work in registers and the cache:
 *
 *   stem: conv 3x3 (3 -> 8, pad 1) -> 2x2 max pool -> ReLU of the backbone's first stage. The forward writes only
 *     the pooled map after the ReLU and one byte per pooled value (which window position held the maximum, or 4
 *     where the ReLU passes no gradient); the backward computes only the weight and bias gradients (the input is
 *     the image) from the sparse full-resolution gradient, rebuilt 16 pixels at a time in registers.
 *   head: a conv-form branch 1x1 16 -> 32, ReLU, 1x1 32 -> 32, ReLU, 1x1 32 -> n (n <= 16), per feature cell an MLP
 *     out = W3 relu(W2 relu(W1 x + b1) + b2) + b3. Cells go R = 8 at a time with their accumulators in registers;
 *     the forward writes only the class maps and the backward recomputes each block's hidden activations.
 *   cam_head: CAM's fc-form branch, the same hidden layers ending in each image's sum of the last one (the global
 *     average pool's numerator; the Linear classifier and the division stay in PyTorch).
 *
 * The same equations as the PyTorch layers; the sums run in this file's fixed order (float rounding differs from
 * oneDNN's, as it differs between CPUs), so a run is deterministic on one machine. Weight and bias gradients
 * accumulate into zeroed buffers (fused.py gives each chunk of images its own and adds them in order). x86-64 with
 * AVX-512F only (checked at run time by `available`); elsewhere, or built with -DWSOL_NO_FUSED_KERNELS, the module
 * builds and `available()` is False. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(WSOL_NO_FUSED_KERNELS)
#define HAVE_KERNELS 1
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f,fma")))

/* ---------------------------------------------------------------- stem */
#define CI 3
#define CO 8
#define KK 27
#define V 16

/* a vector's 16 lanes summed in a fixed order (not the header's shuffle tree, which differs between compilers) */
AVX512 static inline float lane_sum(__m512 v) {
    float t[16], s = 0.0f;
    _mm512_storeu_ps(t, v);
    for (int i = 0; i < 16; i++) s += t[i];
    return s;
}
/* image's 3 planes copied into `pad`, (H + 2) x (Wd + 2) each with a zero border: every 3x3 tap of a 16-pixel run
 * is then one plain unaligned load */
AVX512 static void pad_image(const float *img, int H, int Wd, float *pad) {
    int S = Wd + 2;
    memset(pad, 0, sizeof(float) * CI * (H + 2) * S);
    for (int ci = 0; ci < CI; ci++)
        for (int y = 0; y < H; y++)
            memcpy(pad + ((long)ci * (H + 2) + y + 1) * S + 1, img + ((long)ci * H + y) * Wd, sizeof(float) * Wd);
}
/* the 16 input pixels x0 + kx - 1 .. x0 + kx + 14 of row y + ky - 1 of channel ci (zero outside the image) */
AVX512 static inline __m512 tap(const float *pad, int H, int Wd, int ci, int y, int x0, int ky, int kx) {
    return _mm512_loadu_ps(pad + ((long)ci * (H + 2) + y + ky) * (Wd + 2) + x0 + kx);
}
/* acc[c] = b[c] + sum_k W[c][k] * tap_k for the 16 pixels x0.. of row y */
AVX512 static inline void conv_row(const float *pad, int H, int Wd, int y, int x0, const float *Wk, const float *b,
                                   __m512 acc[CO]) {
    for (int c = 0; c < CO; c++) acc[c] = _mm512_set1_ps(b[c]);
    for (int ci = 0; ci < CI; ci++)
        for (int ky = 0; ky < 3; ky++)
            for (int kx = 0; kx < 3; kx++) {
                __m512 v = tap(pad, H, Wd, ci, y, x0, ky, kx);
                int k = (ci * 3 + ky) * 3 + kx;
                for (int c = 0; c < CO; c++) acc[c] = _mm512_fmadd_ps(_mm512_set1_ps(Wk[c * KK + k]), v, acc[c]);
            }
}
/* keep `cand` where it beats `best` (greater, or NaN: PyTorch's max pool), recording `pos` */
AVX512 static inline void challenge(__m512 *best, __m512i *where, __m512 cand, int pos) {
    __mmask16 wins = _mm512_cmp_ps_mask(cand, *best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(cand, cand, _CMP_UNORD_Q);
    *best = _mm512_mask_mov_ps(*best, wins, cand);
    *where = _mm512_mask_mov_epi32(*where, wins, _mm512_set1_epi32(pos));
}
/* x (B, 3, H, Wd) NCHW, H even, Wd a multiple of 16; Wk (8, 27); out (B, H/2, Wd/2, 8) channels_last after the
 * ReLU; code (B, 8, H/2, Wd/2): the maximum's window position 0..3 (row-major, the first of equal values wins), 4
 * where the maximum is <= 0 (the ReLU's gradient is zero there). Returns 0, or -1 when out of memory. */
AVX512 static int stem_forward(const float *x, long B, int H, int Wd, const float *Wk, const float *b, float *out,
                               uint8_t *code) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    /* lane l holds (channel c + l / 8, pooled cell q = l % 8): its channels_last offset q * 8 + l / 8 */
    const __m512i scatter = _mm512_set_epi32(57, 49, 41, 33, 25, 17, 9, 1, 56, 48, 40, 32, 24, 16, 8, 0);
    const __m512 zero = _mm512_setzero_ps();
    int Hp = H / 2, Wp = Wd / 2;
    float *pad = malloc(sizeof(float) * CI * (H + 2) * (Wd + 2));
    if (pad == NULL) return -1;
    for (long n = 0; n < B; n++) {
        pad_image(x + n * CI * H * Wd, H, Wd, pad);
        for (int py = 0; py < Hp; py++)
            for (int x0 = 0; x0 < Wd; x0 += V) {
                __m512 r0[CO], r1[CO];
                conv_row(pad, H, Wd, 2 * py, x0, Wk, b, r0);
                conv_row(pad, H, Wd, 2 * py + 1, x0, Wk, b, r1);
                float *cells = out + ((n * Hp + py) * Wp + x0 / 2) * CO;
                for (int c = 0; c < CO; c += 2) { /* channel c in lanes 0-7, c + 1 in lanes 8-15 */
                    __m512 best = _mm512_permutex2var_ps(r0[c], even, r0[c + 1]);
                    __m512i where = _mm512_setzero_si512();
                    challenge(&best, &where, _mm512_permutex2var_ps(r0[c], odd, r0[c + 1]), 1);
                    challenge(&best, &where, _mm512_permutex2var_ps(r1[c], even, r1[c + 1]), 2);
                    challenge(&best, &where, _mm512_permutex2var_ps(r1[c], odd, r1[c + 1]), 3);
                    __mmask16 dead = _mm512_cmp_ps_mask(best, zero, _CMP_LE_OQ);
                    where = _mm512_mask_mov_epi32(where, dead, _mm512_set1_epi32(4));
                    _mm512_i32scatter_ps(cells + c, scatter, _mm512_max_ps(zero, best), 4); /* ReLU keeps NaN */
                    __m128i bytes = _mm512_cvtepi32_epi8(where);
                    long plane = ((n * CO + c) * Hp + py) * Wp + x0 / 2;
                    _mm_storel_epi64((__m128i *)(code + plane), bytes);
                    _mm_storel_epi64((__m128i *)(code + plane + (long)Hp * Wp), _mm_srli_si128(bytes, 8));
                }
            }
    }
    free(pad);
    return 0;
}
/* gout (B, 8, H/2, Wd/2) NCHW; gW (8, 27) and gb (8) accumulate. Returns 0, or -1 when out of memory. */
AVX512 static int stem_backward(const float *x, long B, int H, int Wd, const uint8_t *code, const float *gout,
                                float *gW, float *gb) {
    /* lane j of a 16-pixel run belongs to pooled cell j / 2 and window column j % 2 */
    const __m512i twice = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    const __m512i column = _mm512_set_epi32(1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0);
    int Hp = H / 2, Wp = Wd / 2;
    float *pad = malloc(sizeof(float) * CI * (H + 2) * (Wd + 2));
    if (pad == NULL) return -1;
    for (long n = 0; n < B; n++) {
        pad_image(x + n * CI * H * Wd, H, Wd, pad);
        for (int c = 0; c < CO; c++) {
            __m512 acc[KK], bias = _mm512_setzero_ps();
            for (int k = 0; k < KK; k++) acc[k] = _mm512_setzero_ps();
            for (int y = 0; y < H; y++) {
                __m512i position = _mm512_add_epi32(column, _mm512_set1_epi32((y & 1) * 2));
                for (int x0 = 0; x0 < Wd; x0 += V) {
                    long cell = ((n * CO + c) * Hp + y / 2) * Wp + x0 / 2;
                    __m512 g8 = _mm512_castps256_ps512(_mm256_loadu_ps(gout + cell));
                    __m512i c8 = _mm512_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(code + cell)));
                    __mmask16 hit = _mm512_cmpeq_epi32_mask(_mm512_permutexvar_epi32(twice, c8), position);
                    __m512 g = _mm512_maskz_mov_ps(hit, _mm512_permutexvar_ps(twice, g8));
                    bias = _mm512_add_ps(bias, g);
                    for (int ci = 0; ci < CI; ci++)
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                int k = (ci * 3 + ky) * 3 + kx;
                                acc[k] = _mm512_fmadd_ps(g, tap(pad, H, Wd, ci, y, x0, ky, kx), acc[k]);
                            }
                }
            }
            for (int k = 0; k < KK; k++) gW[c * KK + k] += lane_sum(acc[k]);
            gb[c] += lane_sum(bias);
        }
    }
    free(pad);
    return 0;
}

/* ---------------------------------------------------------------- heads */
#define K 16
#define W 32
#define R 8
/* a[r] (two zmm: 32 lanes) += sum_i in[r * stride + i] * M[i] for i < n, M rows of 32, for R cells */
AVX512 static inline void add_rows32(const float *in, int stride, int n, const float *M, __m512 a0[R], __m512 a1[R]) {
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
AVX512 static inline void layer32(const float *in, int nin, const float *Wt, const float *b, float *out) {
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
/* out[r] = in[r] Wt + b for R cells, nc <= 16 outputs (one masked zmm) */
AVX512 static inline void layer_classes(const float *in, const float *Wt, const float *b, int nc, float *out) {
    __mmask16 m = (__mmask16)((1u << nc) - 1);
    __m512 a[R];
    __m512 bv = _mm512_maskz_loadu_ps(m, b);
    for (int r = 0; r < R; r++) a[r] = bv;
    for (int i = 0; i < W; i++) {
        __m512 w = _mm512_maskz_loadu_ps(m, Wt + i * nc);
        for (int r = 0; r < R; r++) a[r] = _mm512_fmadd_ps(_mm512_set1_ps(in[r * W + i]), w, a[r]);
    }
    for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(out + r * nc, m, a[r]);
}
/* out[r] = (h[r] > 0) * sum_j g[r * gstride + j] * M[j] for j < nj, M rows of 32: a ReLU layer's input gradient */
AVX512 static inline void back32(const float *g, int gstride, int nj, const float *M, const float *h, float *out) {
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
/* G[i] (32 wide) += sum_r a[r][i] * g[r] for i < ni (a multiple of 8); gb += sum_r g[r]. Eight rows of G at a
 * time stay in registers while the R cells stream past: 16 independent accumulations, not one chain per row. */
AVX512 static inline void outer32(const float *a, int astride, int ni, const float *g, float *G, float *gb) {
    __m512 s0 = _mm512_loadu_ps(gb), s1 = _mm512_loadu_ps(gb + 16);
    for (int r = 0; r < R; r++) {
        s0 = _mm512_add_ps(s0, _mm512_loadu_ps(g + r * W));
        s1 = _mm512_add_ps(s1, _mm512_loadu_ps(g + r * W + 16));
    }
    _mm512_storeu_ps(gb, s0);
    _mm512_storeu_ps(gb + 16, s1);
    for (int i0 = 0; i0 < ni; i0 += 8) {
        __m512 c0[8], c1[8];
        for (int i = 0; i < 8; i++) {
            c0[i] = _mm512_loadu_ps(G + (i0 + i) * W);
            c1[i] = _mm512_loadu_ps(G + (i0 + i) * W + 16);
        }
        for (int r = 0; r < R; r++) {
            __m512 g0 = _mm512_loadu_ps(g + r * W), g1 = _mm512_loadu_ps(g + r * W + 16);
            for (int i = 0; i < 8; i++) {
                __m512 v = _mm512_set1_ps(a[r * astride + i0 + i]);
                c0[i] = _mm512_fmadd_ps(v, g0, c0[i]);
                c1[i] = _mm512_fmadd_ps(v, g1, c1[i]);
            }
        }
        for (int i = 0; i < 8; i++) {
            _mm512_storeu_ps(G + (i0 + i) * W, c0[i]);
            _mm512_storeu_ps(G + (i0 + i) * W + 16, c1[i]);
        }
    }
}
/* the two hidden layers' backward for R cells from g2 (the gradient at h2's pre-activation): the weight and bias
 * gradients accumulate, gx (R, 16) is written */
AVX512 static inline void back_hidden(const float *xp, const float *h1, const float *g2, const float *W1,
                                      const float *W2, float *gx, float *gW1t, float *gb1, float *gW2t, float *gb2) {
    float g1[R * W];
    outer32(h1, W, W, g2, gW2t, gb2); /* gW2t += h1^T g2 */
    back32(g2, W, W, W2, h1, g1);     /* g1 = relu'(h1) * W2^T g2 */
    outer32(xp, K, K, g1, gW1t, gb1); /* gW1t += x^T g1 */
    __m512 a[R];                      /* gx = W1^T g1 (W1 rows of 16), the R cells' sums side by side */
    for (int r = 0; r < R; r++) a[r] = _mm512_setzero_ps();
    for (int j = 0; j < W; j++) {
        __m512 w = _mm512_loadu_ps(W1 + j * K);
        for (int r = 0; r < R; r++) a[r] = _mm512_fmadd_ps(_mm512_set1_ps(g1[r * W + j]), w, a[r]);
    }
    for (int r = 0; r < R; r++) _mm512_storeu_ps(gx + r * K, a[r]);
}
/* x (P, 16) cells, P a multiple of R; W1t (16, 32), W2t (32, 32), W3t (32, nc) transposed; out (P, nc) */
AVX512 static void head_forward(const float *x, long P, int nc, const float *W1t, const float *b1, const float *W2t,
                                const float *b2, const float *W3t, const float *b3, float *out) {
    float h1[R * W], h2[R * W];
    for (long p = 0; p < P; p += R) {
        layer32(x + p * K, K, W1t, b1, h1);
        layer32(h1, W, W2t, b2, h2);
        layer_classes(h2, W3t, b3, nc, out + p * nc);
    }
}
/* W1 (32, 16), W2 (32, 32), W3 (nc, 32) as PyTorch holds them; gout (P, nc); gx (P, 16) written */
AVX512 static void head_backward(const float *x, long P, int nc, const float *W1t, const float *b1, const float *W2t,
                                 const float *b2, const float *W1, const float *W2, const float *W3, const float *gout,
                                 float *gx, float *gW1t, float *gb1, float *gW2t, float *gb2, float *gW3t,
                                 float *gb3) {
    float h1[R * W], h2[R * W], g2[R * W];
    __mmask16 m = (__mmask16)((1u << nc) - 1);
    for (long p = 0; p < P; p += R) {
        const float *xp = x + p * K, *g3 = gout + p * nc;
        layer32(xp, K, W1t, b1, h1);
        layer32(h1, W, W2t, b2, h2);
        __m512 g3v[R]; /* the classifier: gb3, and gW3t (32 x nc) sixteen rows at a time in registers */
        __m512 s = _mm512_maskz_loadu_ps(m, gb3);
        for (int r = 0; r < R; r++) {
            g3v[r] = _mm512_maskz_loadu_ps(m, g3 + r * nc);
            s = _mm512_add_ps(s, g3v[r]);
        }
        _mm512_mask_storeu_ps(gb3, m, s);
        for (int i0 = 0; i0 < W; i0 += 16) {
            __m512 c[16];
            for (int i = 0; i < 16; i++) c[i] = _mm512_maskz_loadu_ps(m, gW3t + (i0 + i) * nc);
            for (int r = 0; r < R; r++)
                for (int i = 0; i < 16; i++) c[i] = _mm512_fmadd_ps(_mm512_set1_ps(h2[r * W + i0 + i]), g3v[r], c[i]);
            for (int i = 0; i < 16; i++) _mm512_mask_storeu_ps(gW3t + (i0 + i) * nc, m, c[i]);
        }
        back32(g3, nc, nc, W3, h2, g2); /* g2 = relu'(h2) * W3^T g3 */
        back_hidden(xp, h1, g2, W1, W2, gx + p * K, gW1t, gb1, gW2t, gb2);
    }
}
/* x (P, 16): the cells of P / cells images in order, cells a multiple of R; sums (P / cells, 32) written */
AVX512 static void cam_head_forward(const float *x, long P, long cells, const float *W1t, const float *b1,
                                    const float *W2t, const float *b2, float *sums) {
    float h1[R * W], h2[R * W];
    for (long image = 0; image < P / cells; image++) {
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        for (long p = image * cells; p < (image + 1) * cells; p += R) {
            layer32(x + p * K, K, W1t, b1, h1);
            layer32(h1, W, W2t, b2, h2);
            for (int r = 0; r < R; r++) {
                s0 = _mm512_add_ps(s0, _mm512_loadu_ps(h2 + r * W));
                s1 = _mm512_add_ps(s1, _mm512_loadu_ps(h2 + r * W + 16));
            }
        }
        _mm512_storeu_ps(sums + image * W, s0);
        _mm512_storeu_ps(sums + image * W + 16, s1);
    }
}
/* gsum (P / cells, 32): the gradient of each of an image's h2 cells (the mean's 1 / cells included) */
AVX512 static void cam_head_backward(const float *x, long P, long cells, const float *W1t, const float *b1,
                                     const float *W2t, const float *b2, const float *W1, const float *W2,
                                     const float *gsum, float *gx, float *gW1t, float *gb1, float *gW2t, float *gb2) {
    float h1[R * W], h2[R * W], g2[R * W];
    __m512 z = _mm512_setzero_ps();
    for (long p = 0; p < P; p += R) {
        const float *xp = x + p * K, *gi = gsum + (p / cells) * W;
        layer32(xp, K, W1t, b1, h1);
        layer32(h1, W, W2t, b2, h2);
        __m512 u0 = _mm512_loadu_ps(gi), u1 = _mm512_loadu_ps(gi + 16);
        for (int r = 0; r < R; r++) { /* g2 = relu'(h2) * the image's gradient */
            __mmask16 k0 = _mm512_cmp_ps_mask(_mm512_loadu_ps(h2 + r * W), z, _CMP_GT_OQ);
            __mmask16 k1 = _mm512_cmp_ps_mask(_mm512_loadu_ps(h2 + r * W + 16), z, _CMP_GT_OQ);
            _mm512_storeu_ps(g2 + r * W, _mm512_maskz_mov_ps(k0, u0));
            _mm512_storeu_ps(g2 + r * W + 16, _mm512_maskz_mov_ps(k1, u1));
        }
        back_hidden(xp, h1, g2, W1, W2, gx + p * K, gW1t, gb1, gW2t, gb2);
    }
}
#endif /* HAVE_KERNELS */

/* ---------------------------------------------------------------- Python */
/* Each function takes (sizes: tuple[int, ...], pointers: tuple[int, ...]): the data addresses of float32 (or
 * uint8 code) tensors that fused.py has checked and keeps alive for the call. */
static int unpack(PyObject *args, Py_ssize_t nsizes, long *sizes, Py_ssize_t nptrs, void **ptrs) {
    PyObject *s, *p;
    if (!PyArg_ParseTuple(args, "O!O!", &PyTuple_Type, &s, &PyTuple_Type, &p)) return -1;
    if (PyTuple_GET_SIZE(s) != nsizes || PyTuple_GET_SIZE(p) != nptrs) {
        PyErr_Format(PyExc_ValueError, "expected %zd sizes and %zd pointers", nsizes, nptrs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nsizes; i++) {
        sizes[i] = PyLong_AsLong(PyTuple_GET_ITEM(s, i));
        if (sizes[i] <= 0) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "sizes must be positive");
            return -1;
        }
    }
    for (Py_ssize_t i = 0; i < nptrs; i++) {
        ptrs[i] = PyLong_AsVoidPtr(PyTuple_GET_ITEM(p, i));
        if (ptrs[i] == NULL) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "null pointer");
            return -1;
        }
    }
    return 0;
}

static int kernels_available(void) {
#ifdef HAVE_KERNELS
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static PyObject *py_available(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    return PyBool_FromLong(kernels_available());
}

static int refuse(void) {
    if (kernels_available()) return 0;
    PyErr_SetString(PyExc_RuntimeError, "the fused kernels need an x86-64 CPU with AVX-512F");
    return -1;
}

#define F(i) ((float *)ptrs[i])
#define CF(i) ((const float *)ptrs[i])

#ifdef HAVE_KERNELS
#define WITHOUT_GIL(statement) Py_BEGIN_ALLOW_THREADS statement; Py_END_ALLOW_THREADS
#else
#define WITHOUT_GIL(statement) /* never reached: refuse() raised */
#endif
/* one Python function per kernel: check and unpack (sizes, pointers), refuse a CPU without AVX-512F, run the
 * kernel without the GIL; `call` is 0, or -1 when the kernel ran out of memory */
#define KERNEL_FUNCTION(name, nsizes, nptrs, call)                                   \
    static PyObject *py_##name(PyObject *self, PyObject *args) {                     \
        long sizes[nsizes];                                                          \
        void *ptrs[nptrs];                                                           \
        int status = 0;                                                              \
        (void)self;                                                                  \
        if (unpack(args, nsizes, sizes, nptrs, ptrs) || refuse()) return NULL;       \
        WITHOUT_GIL(status = (call))                                                 \
        if (status) return PyErr_NoMemory();                                         \
        Py_RETURN_NONE;                                                              \
    }

KERNEL_FUNCTION(stem_forward, 3, 5,
                stem_forward(CF(0), sizes[0], (int)sizes[1], (int)sizes[2], CF(1), CF(2), F(3), (uint8_t *)ptrs[4]))
KERNEL_FUNCTION(stem_backward, 3, 5,
                stem_backward(CF(0), sizes[0], (int)sizes[1], (int)sizes[2], (const uint8_t *)ptrs[1], CF(2), F(3),
                              F(4)))
KERNEL_FUNCTION(head_forward, 2, 8,
                (head_forward(CF(0), sizes[0], (int)sizes[1], CF(1), CF(2), CF(3), CF(4), CF(5), CF(6), F(7)), 0))
KERNEL_FUNCTION(head_backward, 2, 16,
                (head_backward(CF(0), sizes[0], (int)sizes[1], CF(1), CF(2), CF(3), CF(4), CF(5), CF(6), CF(7),
                               CF(8), F(9), F(10), F(11), F(12), F(13), F(14), F(15)),
                 0))
KERNEL_FUNCTION(cam_head_forward, 2, 6,
                (cam_head_forward(CF(0), sizes[0], sizes[1], CF(1), CF(2), CF(3), CF(4), F(5)), 0))
KERNEL_FUNCTION(cam_head_backward, 2, 13,
                (cam_head_backward(CF(0), sizes[0], sizes[1], CF(1), CF(2), CF(3), CF(4), CF(5), CF(6), CF(7), F(8),
                                   F(9), F(10), F(11), F(12)),
                 0))

static PyMethodDef methods[] = {
    {"available", py_available, METH_NOARGS, "Whether this CPU runs the kernels (x86-64 with AVX-512F)."},
    {"stem_forward", py_stem_forward, METH_VARARGS, "(B, H, W), (x, weight, bias, out, code)"},
    {"stem_backward", py_stem_backward, METH_VARARGS, "(B, H, W), (x, code, grad_out, grad_weight, grad_bias)"},
    {"head_forward", py_head_forward, METH_VARARGS, "(P, n), (x, W1t, b1, W2t, b2, W3t, b3, out)"},
    {"head_backward", py_head_backward, METH_VARARGS,
     "(P, n), (x, W1t, b1, W2t, b2, W1, W2, W3, grad_out, grad_x, gW1t, gb1, gW2t, gb2, gW3t, gb3)"},
    {"cam_head_forward", py_cam_head_forward, METH_VARARGS, "(P, cells), (x, W1t, b1, W2t, b2, sums)"},
    {"cam_head_backward", py_cam_head_backward, METH_VARARGS,
     "(P, cells), (x, W1t, b1, W2t, b2, W1, W2, grad_sums, grad_x, gW1t, gb1, gW2t, gb2)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fused_small",
                                    "Fused CPU training kernels of the small backbone (docs/methods.md §4.5).", -1,
                                    methods};

PyMODINIT_FUNC PyInit__fused_small(void) { return PyModule_Create(&module); }
