/* im2col / col2im of one (H, W) plane for strides above 2 (pooling windows of stride 3 and 4),
 * with the contracts of ecp_im2col.h's routines for any stride s >= 1; written once, in
 * ecp_im2col_sn_body.h, included below per type.
 *
 * A header of its own, so that ecp_im2col.h's stride-1 and stride-2 routines stay byte-identical
 * and in their place (their speed is sensitive to it: docs/performance.md, section 12).
 */
#ifndef ECP_IM2COL_SN_H
#define ECP_IM2COL_SN_H

#if defined(_MSC_VER) && !defined(restrict)
#define restrict __restrict
#endif

#include <stddef.h>
#include <string.h>

#include "ecp_template.h"

/* Out of the hot code's way: the routines are not inlined and (ELF, GCC / Clang) sit in a section
 * of their own; the callers reach them through ..._call trampolines marked `cold`, which makes the
 * compilers lay the callers' branch to them out of line. The routines are marked `hot` so that they
 * keep the build's -O3: a function called only from cold code, or `cold` itself, is optimised for
 * size (the stride-3 conv2 forward then took twice as long). */
#if defined(__GNUC__) && defined(__ELF__)
#define ECP_SN_PLACE __attribute__((hot, noinline, section(".text.unlikely.ecp_sn")))
#define ECP_SN_COLD __attribute__((cold, noinline))
#elif defined(__GNUC__)
#define ECP_SN_PLACE __attribute__((hot, noinline))
#define ECP_SN_COLD __attribute__((cold, noinline))
#else
#define ECP_SN_PLACE
#define ECP_SN_COLD
#endif

static inline ptrdiff_t ecp_q_lo_n(ptrdiff_t base, ptrdiff_t s)
{
    return base >= 0 ? 0 : (-base + s - 1) / s;
}

static inline ptrdiff_t ecp_q_hi_n(ptrdiff_t base, ptrdiff_t s, ptrdiff_t size, ptrdiff_t count)
{
    ptrdiff_t top = size - 1 - base;
    if (top < 0) return 0;
    top = top / s + 1;
    return top < count ? top : count;
}

#define T float
#define ECP_SUF f
#include "ecp_im2col_sn_body.h"
#define T double
#define ECP_SUF d
#include "ecp_im2col_sn_body.h"

#endif
