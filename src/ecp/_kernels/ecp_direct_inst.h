/* One instantiation of the direct kernels: included by ecp_direct.h with T (element type),
 * ECP_SUF (f or d) and ECP_ISA_NAME (avx512, avx2 or neon) defined; defines
 * ecp_<name>_<isa>_<suf> for every kernel of the role files. No include guard on purpose. */
#define NAME(x) ECP_CAT3(ecp_##x, ECP_ISA_NAME, ECP_SUF)   /* a kernel of this instantiation */
#define VEC(x) ECP_CAT3(ecp_v_##x, ECP_ISA_NAME, ECP_SUF)  /* the vector layer's (ecp_vec.h) */
#define V VEC(V)        /* vector of VL lanes */
#define VU VEC(VU)      /* the same, unaligned */
#define MK VEC(M)       /* lane mask of V */
#define HV VEC(H)       /* half vector */
#define HMK VEC(HM)     /* lane mask of HV */
#define VL ECP_CAT3(ECP_VL, ECP_ISA_NAME, ECP_SUF)
#define TP ECP_CAT2(ECP_TP, ECP_ISA_NAME)
#define TARGET ECP_CAT2(ECP_TARGET, ECP_ISA_NAME)

#include "ecp_direct_pack.h"
#include "ecp_direct_tile.h"
#include "ecp_direct_scatter.h"
#include "ecp_direct_forward.h"
#include "ecp_direct_backward.h"
#include "ecp_direct_wino.h"
#include "ecp_direct_poly.h"
#include "ecp_direct_poly_dx.h"
#include "ecp_direct_box.h"

#undef NAME
#undef VEC
#undef V
#undef VU
#undef MK
#undef HV
#undef HMK
#undef VL
#undef TP
#undef TARGET
#undef T
#undef ECP_SUF
