/* ReLU over n contiguous values, forward and backward, for _activation.pyx.
 *
 * The output may be the input itself (in place): every y[i] depends on x[i] alone, so the loops
 * carry no dependence, which the ivdep pragma tells the compiler (its runtime overlap check would
 * otherwise send the in-place case to the scalar loop). Same values as NumPy:
 *   forward  y = (x <= 0) ? 0 : x   -- np.maximum(x, 0): NaN stays NaN, -0.0 becomes +0.0;
 *   backward dx = dy * (y > 0)      -- dy * 1 or dy * 0: -0.0 for a negative dy, NaN for an
 *                                      infinite or NaN one.
 * ecp_relu_{f,d} and ecp_relu_backward_{f,d} are written once, in ecp_relu_body.h, included
 * below per type. */
#ifndef ECP_RELU_H
#define ECP_RELU_H
#include <stddef.h>

#include "ecp_template.h"

#if defined(__GNUC__) && !defined(__clang__)
#define ECP_IVDEP _Pragma("GCC ivdep")
#elif defined(__clang__)
#define ECP_IVDEP _Pragma("clang loop vectorize(enable)")
#else
#define ECP_IVDEP
#endif

#define T float
#define ECP_SUF f
#include "ecp_relu_body.h"
#define T double
#define ECP_SUF d
#include "ecp_relu_body.h"

#endif
