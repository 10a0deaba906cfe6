/* The naming of the kernels written once and included per type (ecp_im2col_body.h,
 * ecp_im2col_sn_body.h, ecp_maxpool_body.h, ecp_relu_body.h): the including header defines T (the
 * element type) and ECP_SUF (f or d) around each inclusion, and ECP_TNAME(x) names the body's
 * function x of that type, ecp_<x>_<f|d>. */
#ifndef ECP_TEMPLATE_H
#define ECP_TEMPLATE_H

#define ECP_TNAME_(x, suf) ecp_##x##_##suf
#define ECP_TNAME_X_(x, suf) ECP_TNAME_(x, suf)   /* expands ECP_SUF before the paste */
#define ECP_TNAME(x) ECP_TNAME_X_(x, ECP_SUF)

#endif
