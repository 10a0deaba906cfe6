/* Easy average pooling's kernel widening by the p x p box and its adjoint, for _pool.pyx: p^2
 * shifted adds along a flat run of whole planes (independent, vectorised, constant offsets), in
 * chunks of about ECP_BOX_CHUNK outputs kept in L1.
 *
 *   ecp_box_widen_{f,d}(w, wide, n_planes, kh, kw, p, z): wide (n_planes, kh+p-1, kw+p-1) = each
 *     plane of w (n_planes, kh, kw) full-convolved with the box, times 1/p^2. Each tap sums its p^2
 *     terms from 0 in the order (box column j, then box row i), then is scaled once. z: scratch of
 *     ecp_box_zsize(kh, kw, p) elements, zeroed by the caller.
 *   ecp_box_fold_{f,d}(dwide, dwk, n_planes, kh, kw, p, acc): the adjoint, dwk (n_planes, kh, kw)
 *     from dwide (n_planes, kh+p-1, kw+p-1): each tap the sum of its p x p taps of dwide from 0 in
 *     the same order, times 1/p^2. acc: scratch of ecp_box_accsize(kh, kw, p) elements.
 *
 * Each output depends on its own plane alone, so a run of planes may be cut anywhere (the
 * callers' threads take chunks of planes) with the same bits. Written once in ecp_box_body.h,
 * included below per type. */
#ifndef ECP_BOX_H
#define ECP_BOX_H
#include <stddef.h>

#include "ecp_template.h"

#define ECP_BOX_CHUNK 2048

#if defined(__GNUC__) && !defined(__clang__)
/* a short row's copy stays a loop: GCC would otherwise call memcpy for each 5-element row */
#define ECP_BOX_NOMEMCPY __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define ECP_BOX_NOMEMCPY
#endif

/* planes a chunk holds (the callers cut runs of planes into chunks for their threads) */
static inline ptrdiff_t ecp_box_chunk_planes(ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t p)
{
    const ptrdiff_t ps = (kh + p - 1) * (kw + p - 1);
    return ECP_BOX_CHUNK / ps > 1 ? ECP_BOX_CHUNK / ps : 1;
}

/* elements of ecp_box_widen's scratch: a chunk of planes in wide's row stride, each plane's kh
 * rows after p-1 zero rows, each row's kw values after p-1 zero columns, and a tail */
static inline ptrdiff_t ecp_box_zsize(ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t p)
{
    const ptrdiff_t dh = kh + p - 1, dw = kw + p - 1;
    return (p - 1 + ecp_box_chunk_planes(kh, kw, p) * dh) * dw + p;
}

/* elements of ecp_box_fold's scratch: a chunk of planes of dwide's size */
static inline ptrdiff_t ecp_box_accsize(ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t p)
{
    return ecp_box_chunk_planes(kh, kw, p) * (kh + p - 1) * (kw + p - 1);
}

#define T float
#define ECP_SUF f
#include "ecp_box_body.h"
#define T double
#define ECP_SUF d
#include "ecp_box_body.h"

#endif
