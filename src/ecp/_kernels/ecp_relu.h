/* ReLU over n contiguous values, forward and backward, for _activation.pyx.
 *
 * The output may be the input itself (in place): every y[i] depends on x[i] alone, so the loops
 * carry no dependence, which the ivdep pragma tells the compiler (its runtime overlap check would
 * otherwise send the in-place case to the scalar loop). Same values as NumPy:
 *   forward  y = (x <= 0) ? 0 : x   -- np.maximum(x, 0): NaN stays NaN, -0.0 becomes +0.0;
 *   backward dx = dy * (y > 0)      -- dy * 1 or dy * 0: -0.0 for a negative dy, NaN for an
 *                                      infinite or NaN one. */
#ifndef ECP_RELU_H
#define ECP_RELU_H
#include <stddef.h>

#if defined(__GNUC__) && !defined(__clang__)
#define ECP_IVDEP _Pragma("GCC ivdep")
#elif defined(__clang__)
#define ECP_IVDEP _Pragma("clang loop vectorize(enable)")
#else
#define ECP_IVDEP
#endif

#define ECP_DEFINE_RELU(T, SUF)                                                                   \
static void ecp_relu_##SUF(const T *x, T *y, ptrdiff_t n)                                      \
{                                                                                              \
    ECP_IVDEP                                                                                  \
    for (ptrdiff_t i = 0; i < n; i++)                                                          \
        y[i] = x[i] <= 0 ? (T) 0 : x[i];                                                       \
}                                                                                              \
static void ecp_relu_backward_##SUF(const T *dy, const T *y, T *dx, ptrdiff_t n)                \
{                                                                                              \
    ECP_IVDEP                                                                                  \
    for (ptrdiff_t i = 0; i < n; i++) {                                                        \
        T keep = y[i] > 0;  /* a 0/1 then a product: no branch, so it vectorises */           \
        dx[i] = dy[i] * keep;                                                                  \
    }                                                                                          \
}

ECP_DEFINE_RELU(float, f)
ECP_DEFINE_RELU(double, d)

#endif
