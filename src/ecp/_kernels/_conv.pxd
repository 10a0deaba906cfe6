# Declarations shared by the pieces of the _conv extension (_conv.pyx and the .pxi it includes).

# The kernel a plan runs. ecp._dispatch picks it per call; the Python classes of the same names
# (IntEnum) are ecp._kernels._conv.ForwardKernel and .BackwardKernel.
cpdef enum ForwardKernel:
    IM2COL_BLAS = 0     # im2col + one GEMM per item (_im2col_items.pxi)
    DIRECT_PANEL = 1    # ecp_direct.h's panel kernel: needs DIRECT_SUPPORTED
    DIRECT_ROWS = 2     # ecp_direct.h's pixel-rows kernel: needs DIRECT_SUPPORTED
    WINOGRAD = 3        # Winograd F(2x2, 3x3) (ecp_direct_wino.h), stride-1 3x3 only; else DIRECT_PANEL
    POLYPHASE_BOX = 4   # easy average pooling of a 3x3 layer: the polyphase stride-2 3x3 kernel on
                        # x's 2x2 box sums (ecp_direct_poly.h), w the 3x3 filters; needs DIRECT_SUPPORTED
    POLYPHASE_TALL = 5  # the stride-2 3x3 convolution by the polyphase kernel on tall tiles (4 x 2
                        # outputs, ecp_direct_poly.h); needs DIRECT_SUPPORTED

cpdef enum BackwardKernel:
    BLAS = 0            # im2col + GEMMs + col2im (_im2col_items.pxi)
    DIRECT = 1          # ecp_direct.h's fused backward: needs DIRECT_SUPPORTED
    SPLIT = 2           # dW and db as BLAS, then dx alone as DIRECT
    WINOGRAD_BACKWARD = 3  # dW, db and dx by Winograd F(2x2, 3x3) at stride 1, 3x3 (dx: padding
                           # <= 2, else SPLIT's direct dx); by the polyphase splits at stride 2, 3x3
                           # or 4x4 (ecp_direct_poly.h, ecp_direct_poly_dx.h)
    POLYPHASE_BOX_BACKWARD = 4  # the backward of ForwardKernel.POLYPHASE_BOX (w 3x3): dW and db by the
                                # polyphase split on x's box sums, dx by that of the widened kernel


cdef struct _Geom:
    # A call's geometry: x (N, C, H, W), w (O, C, kh, kw), zero padding ph rows on the top and
    # bottom and pw columns on the left and right, and the output (or dy) (N, O, hq, wq) on the
    # sampling grid (stride, oy, ox) of the padded input
    Py_ssize_t N, C, H, W, O, kh, kw, hq, wq, ph, pw, stride, oy, ox
