/* im2col / col2im for one (H, W) plane, in C so that the copies get `restrict` pointers and
 * fixed-width inner blocks: the rows copied here are short (the output width, often 4 to 24),
 * where loop set-up, alias checks and divisions, not bandwidth, set the cost.
 *
 * The stride s is 1 (full convolution) or 2 (Easy Convolution); ecp_im2col_sn.h has the routines
 * of larger strides (pooling windows of stride 3 and 4).
 * Sampling grid: output (r, q) reads input (oy + s*r + i - ph, ox + s*q + j - pw) for kernel
 * tap (i, j); reads outside the plane are zeros (the padding).
 *
 * ecp_im2col_plane_{f,d}: rows (i*kw + j) of dst0 (row stride ld) get the hq*wq samples of tap
 *                         (i, j); every element of those rows is written.
 * ecp_col2im_plane_{f,d}: dxp (H*W) = sum over taps of the rows of src0 placed back; every
 *                         element of dxp is written.
 * Both are written once, in ecp_im2col_body.h, included below per type.
 */
#ifndef ECP_IM2COL_H
#define ECP_IM2COL_H

#if defined(_MSC_VER) && !defined(restrict)
#define restrict __restrict  /* MSVC's C compiler spells C99's restrict this way */
#endif

#include <stddef.h>
#include <string.h>

#include "ecp_template.h"

/* first q >= 0 with base + s*q >= 0, and one past the last q < count with base + s*q < size */
static inline ptrdiff_t ecp_q_lo(ptrdiff_t base, ptrdiff_t s)
{
    if (base >= 0) return 0;
    return s == 1 ? -base : (-base + 1) / 2;
}

static inline ptrdiff_t ecp_q_hi(ptrdiff_t base, ptrdiff_t s, ptrdiff_t size, ptrdiff_t count)
{
    ptrdiff_t top = size - 1 - base;
    if (top < 0) return 0;
    top = (s == 1 ? top : top / 2) + 1;
    return top < count ? top : count;
}

#define T float
#define ECP_SUF f
#include "ecp_im2col_body.h"
#define T double
#define ECP_SUF d
#include "ecp_im2col_body.h"

#endif
