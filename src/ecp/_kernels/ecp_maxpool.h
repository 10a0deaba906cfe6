/* One output row of 2x2 / stride-2 max pooling, branch-free so that the compiler can if-convert
 * and vectorise it: on real data the winner of a window is unpredictable, and mispredicted
 * branches cost far more than the comparisons.
 *
 * r0, r1: the two input rows (length >= 2*wq); y, idx: wq outputs; idx is the flat position
 * top + column offset in the (H, W) plane, with top = index of r0[0] in the plane.
 * Ties go to the first maximum in row-major window order; a NaN beats any number and the first
 * NaN of the window wins, so NaN propagates as in NumPy's max.
 * ecp_maxpool_row_{f,d} (and its NaN path ecp_maxpool_row_nan_{f,d}) are written once, in
 * ecp_maxpool_body.h, included below per type.
 */
#ifndef ECP_MAXPOOL_H
#define ECP_MAXPOOL_H

#if defined(_MSC_VER) && !defined(restrict)
#define restrict __restrict  /* MSVC's C compiler spells C99's restrict this way */
#endif

#include <stddef.h>
#include <stdint.h>

#include "ecp_template.h"

#define T float
#define ECP_SUF f
#include "ecp_maxpool_body.h"
#define T double
#define ECP_SUF d
#include "ecp_maxpool_body.h"

#endif
