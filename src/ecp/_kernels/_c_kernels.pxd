# The C kernels of ecp_im2col.h (portable) and ecp_direct.h (AVX-512, AVX2, NEON, with portable
# fallbacks where noted there), declared for Cython. Declarations only: cimporting this adds no module.

cdef extern from "ecp_im2col.h" nogil:
    void ecp_im2col_plane_f(const float *xp, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh,
                            Py_ssize_t kw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t s, Py_ssize_t oy,
                            Py_ssize_t ox, Py_ssize_t hq, Py_ssize_t wq, float *dst0,
                            Py_ssize_t ld)
    void ecp_im2col_plane_d(const double *xp, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh,
                            Py_ssize_t kw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t s, Py_ssize_t oy,
                            Py_ssize_t ox, Py_ssize_t hq, Py_ssize_t wq, double *dst0,
                            Py_ssize_t ld)
    void ecp_col2im_plane_f(const float *src0, Py_ssize_t ld, Py_ssize_t H, Py_ssize_t W,
                            Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t s,
                            Py_ssize_t oy, Py_ssize_t ox, Py_ssize_t hq, Py_ssize_t wq,
                            float *dxp)
    void ecp_col2im_plane_d(const double *src0, Py_ssize_t ld, Py_ssize_t H, Py_ssize_t W,
                            Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t s,
                            Py_ssize_t oy, Py_ssize_t ox, Py_ssize_t hq, Py_ssize_t wq,
                            double *dxp)


cdef extern from "ecp_direct.h" nogil:
    enum:
        ECP_ISA_GENERIC
        ECP_ISA_AVX2
        ECP_ISA_AVX512
        ECP_ISA_NEON
        ECP_MR
        ECP_ROWS_PIX
    int ecp_isa_best()
    int ecp_isa_set(int level)
    int ecp_isa_get()
    int ecp_direct_supported()
    Py_ssize_t ecp_direct_nr_f()
    Py_ssize_t ecp_direct_nr_d()
    double ecp_sum_planes_f(const float *src, Py_ssize_t n, Py_ssize_t count, Py_ssize_t stride)
    double ecp_sum_planes_d(const double *src, Py_ssize_t n, Py_ssize_t count, Py_ssize_t stride)
    void ecp_transpose_f(const float *src, Py_ssize_t lds, Py_ssize_t rows, Py_ssize_t cols,
                         float *dst, Py_ssize_t ldd)
    void ecp_window_offsets(Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh, Py_ssize_t kw,
                            Py_ssize_t n, int *koff)
    void ecp_im2col_plane_s2_f(const float *xp, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh,
                               Py_ssize_t kw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t oy, Py_ssize_t ox,
                               Py_ssize_t hq, Py_ssize_t wq, float *dst0, Py_ssize_t ld)
    void ecp_im2col_plane_s2_d(const double *xp, Py_ssize_t H, Py_ssize_t W, Py_ssize_t kh,
                               Py_ssize_t kw, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t oy, Py_ssize_t ox,
                               Py_ssize_t hq, Py_ssize_t wq, double *dst0, Py_ssize_t ld)
    void ecp_pack_weights_f(const float *w, Py_ssize_t O, Py_ssize_t K, float *wp)
    void ecp_pack_weights_d(const double *w, Py_ssize_t O, Py_ssize_t K, double *wp)
    void ecp_direct_item_f(const float *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                           const float *wp, Py_ssize_t O, Py_ssize_t kh, Py_ssize_t kw,
                           const float *bias, float *y, Py_ssize_t hq, Py_ssize_t wq,
                           Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t r0, Py_ssize_t nr,
                           Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t s, Py_ssize_t oy, Py_ssize_t ox,
                           float *panel, float *tile)
    void ecp_direct_item_d(const double *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                           const double *wp, Py_ssize_t O, Py_ssize_t kh, Py_ssize_t kw,
                           const double *bias, double *y, Py_ssize_t hq, Py_ssize_t wq,
                           Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t r0, Py_ssize_t nr,
                           Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t s, Py_ssize_t oy, Py_ssize_t ox,
                           double *panel, double *tile)
    void ecp_pack_weights_v_f(const float *w, Py_ssize_t O, Py_ssize_t K, Py_ssize_t nr, float *wv)
    void ecp_pack_weights_v_d(const double *w, Py_ssize_t O, Py_ssize_t K, Py_ssize_t nr, double *wv)
    void ecp_direct_rows_item_f(const float *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                const float *wv, Py_ssize_t O, Py_ssize_t kh, Py_ssize_t kw,
                                const float *bias, float *y, Py_ssize_t hq, Py_ssize_t wq,
                                Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t r0, Py_ssize_t nr,
                                Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t s, Py_ssize_t oy, Py_ssize_t ox,
                                float *rpanel, float *tile, const int *koff)
    void ecp_direct_rows_item_d(const double *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                const double *wv, Py_ssize_t O, Py_ssize_t kh, Py_ssize_t kw,
                                const double *bias, double *y, Py_ssize_t hq, Py_ssize_t wq,
                                Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t r0, Py_ssize_t nr,
                                Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t s, Py_ssize_t oy, Py_ssize_t ox,
                                double *rpanel, double *tile, const int *koff)
    void ecp_pack_weights_t_f(const float *w, Py_ssize_t O, Py_ssize_t K, float *wt)
    void ecp_pack_weights_t_d(const double *w, Py_ssize_t O, Py_ssize_t K, double *wt)
    void ecp_direct_backward_item_f(const float *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                    const float *dy, Py_ssize_t O, Py_ssize_t hq, Py_ssize_t wq,
                                    const float *wt, Py_ssize_t kh, Py_ssize_t kw,
                                    Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t s,
                                    Py_ssize_t oy, Py_ssize_t ox, float *dwacc, float *dx,
                                    float *rpanel, float *dpanel, float *xpanel, const int *koff,
                                    int fresh, Py_ssize_t d0, Py_ssize_t d1, Py_ssize_t c0, Py_ssize_t c1)
    void ecp_direct_backward_item_d(const double *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
                                    const double *dy, Py_ssize_t O, Py_ssize_t hq, Py_ssize_t wq,
                                    const double *wt, Py_ssize_t kh, Py_ssize_t kw,
                                    Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t s,
                                    Py_ssize_t oy, Py_ssize_t ox, double *dwacc, double *dx,
                                    double *rpanel, double *dpanel, double *xpanel, const int *koff,
                                    int fresh, Py_ssize_t d0, Py_ssize_t d1, Py_ssize_t c0, Py_ssize_t c1)


cdef extern from "ecp_direct.h" nogil:
    # Winograd F(2x2, 3x3) (ecp_direct_wino.h, ecp_wino_entry.h)
    void ecp_wino_weights_shared_f(const float *w, Py_ssize_t O, Py_ssize_t C, int flip, float *u)
    void ecp_wino_weights_shared_d(const double *w, Py_ssize_t O, Py_ssize_t C, int flip, double *u)
    void ecp_wino_item_f(const float *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, const float *u,
                         Py_ssize_t O, const float *bias, float *y, Py_ssize_t hq, Py_ssize_t wq,
                         Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t tr0, Py_ssize_t ntr,
                         Py_ssize_t ph, Py_ssize_t pw, float *vbuf, float *mbuf, float *rbuf)
    void ecp_wino_item_d(const double *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, const double *u,
                         Py_ssize_t O, const double *bias, double *y, Py_ssize_t hq, Py_ssize_t wq,
                         Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t tr0, Py_ssize_t ntr,
                         Py_ssize_t ph, Py_ssize_t pw, double *vbuf, double *mbuf, double *rbuf)
    void ecp_wino_dw_item_f(const float *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, const float *dy,
                            Py_ssize_t O, Py_ssize_t hq, Py_ssize_t wq, Py_ssize_t n0, Py_ssize_t nb,
                            Py_ssize_t tr0, Py_ssize_t ntr, Py_ssize_t ph, Py_ssize_t pw, float *du,
                            int fresh, float *vbuf, float *mt, float *mbuf)
    void ecp_wino_dw_item_d(const double *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, const double *dy,
                            Py_ssize_t O, Py_ssize_t hq, Py_ssize_t wq, Py_ssize_t n0, Py_ssize_t nb,
                            Py_ssize_t tr0, Py_ssize_t ntr, Py_ssize_t ph, Py_ssize_t pw, double *du,
                            int fresh, double *vbuf, double *mt, double *mbuf)
    void ecp_wino_dw_reduce_f(const float *du, Py_ssize_t n_slots, Py_ssize_t stride, Py_ssize_t O,
                              Py_ssize_t C, Py_ssize_t Cp, Py_ssize_t o0, Py_ssize_t o1, float *dw)
    void ecp_wino_dw_reduce_d(const double *du, Py_ssize_t n_slots, Py_ssize_t stride, Py_ssize_t O,
                              Py_ssize_t C, Py_ssize_t Cp, Py_ssize_t o0, Py_ssize_t o1, double *dw)
    # the polyphase stride-2 kernels (ecp_direct_poly.h, ecp_wino_entry.h), of the form (k, box):
    # k = 3, 4 (the widened kernel of easy average pooling of 3x3 layers), box (k = 3) on x's 2x2
    # box sums; polyt (3x3) on tall tiles of 4 x 2 outputs
    Py_ssize_t ecp_poly_dw_rows(int k, Py_ssize_t C)
    void ecp_polyt_weights_shared_f(const float *w, Py_ssize_t O, Py_ssize_t C, float *u)
    void ecp_polyt_item_f(const float *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
            const float *u, Py_ssize_t O, const float *bias, float *y, Py_ssize_t hq, Py_ssize_t wq,
            Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t tr0, Py_ssize_t ntr, Py_ssize_t ph, Py_ssize_t pw,
            float *vbuf, float *mbuf)
    void ecp_polyt_weights_shared_d(const double *w, Py_ssize_t O, Py_ssize_t C, double *u)
    void ecp_polyt_item_d(const double *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
            const double *u, Py_ssize_t O, const double *bias, double *y, Py_ssize_t hq, Py_ssize_t wq,
            Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t tr0, Py_ssize_t ntr, Py_ssize_t ph, Py_ssize_t pw,
            double *vbuf, double *mbuf)
    void ecp_poly_weights_shared_f(int k, int box, const float *w, Py_ssize_t O, Py_ssize_t C, float *u)
    void ecp_poly_item_f(int k, int box, const float *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
            const float *u, Py_ssize_t O, const float *bias, float *y, Py_ssize_t hq, Py_ssize_t wq,
            Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t tr0, Py_ssize_t ntr, Py_ssize_t ph, Py_ssize_t pw,
            float *vbuf, float *mbuf)
    void ecp_poly_dw_item_f(int k, int box, const float *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
            const float *dy, Py_ssize_t O, Py_ssize_t hq, Py_ssize_t wq, Py_ssize_t n0, Py_ssize_t nb,
            Py_ssize_t tr0, Py_ssize_t ntr, Py_ssize_t ph, Py_ssize_t pw, float *du, int fresh,
            float *vbuf, float *mt, float *mbuf)
    void ecp_poly_dw_reduce_f(int k, const float *du, Py_ssize_t n_slots, Py_ssize_t stride,
            Py_ssize_t O, Py_ssize_t C, Py_ssize_t Op, Py_ssize_t c0, Py_ssize_t c1, float scale,
            float *dw)
    void ecp_poly_weights_shared_d(int k, int box, const double *w, Py_ssize_t O, Py_ssize_t C, double *u)
    void ecp_poly_item_d(int k, int box, const double *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
            const double *u, Py_ssize_t O, const double *bias, double *y, Py_ssize_t hq, Py_ssize_t wq,
            Py_ssize_t n0, Py_ssize_t nb, Py_ssize_t tr0, Py_ssize_t ntr, Py_ssize_t ph, Py_ssize_t pw,
            double *vbuf, double *mbuf)
    void ecp_poly_dw_item_d(int k, int box, const double *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W,
            const double *dy, Py_ssize_t O, Py_ssize_t hq, Py_ssize_t wq, Py_ssize_t n0, Py_ssize_t nb,
            Py_ssize_t tr0, Py_ssize_t ntr, Py_ssize_t ph, Py_ssize_t pw, double *du, int fresh,
            double *vbuf, double *mt, double *mbuf)
    void ecp_poly_dw_reduce_d(int k, const double *du, Py_ssize_t n_slots, Py_ssize_t stride,
            Py_ssize_t O, Py_ssize_t C, Py_ssize_t Op, Py_ssize_t c0, Py_ssize_t c1, double scale,
            double *dw)
    # the polyphase dx of the stride-2 3x3 and 4x4 convolutions
    Py_ssize_t ecp_poly_dx_usize(int k, Py_ssize_t C, Py_ssize_t O)
    Py_ssize_t ecp_poly_dx_msize(int k, Py_ssize_t C, Py_ssize_t NR)
    void ecp_poly_dx_weights_shared_f(int k, const float *w, Py_ssize_t O, Py_ssize_t C, float *u)
    void ecp_poly_dx_item_f(int k, const float *dy, Py_ssize_t O, Py_ssize_t hq, Py_ssize_t wq,
            const float *u, Py_ssize_t C, float *dx, Py_ssize_t H, Py_ssize_t W, Py_ssize_t n0,
            Py_ssize_t nb, Py_ssize_t s0, Py_ssize_t nts, Py_ssize_t ph, Py_ssize_t pw, float *vbuf,
            float *mbuf)
    void ecp_poly_dx_weights_shared_d(int k, const double *w, Py_ssize_t O, Py_ssize_t C, double *u)
    void ecp_poly_dx_item_d(int k, const double *dy, Py_ssize_t O, Py_ssize_t hq, Py_ssize_t wq,
            const double *u, Py_ssize_t C, double *dx, Py_ssize_t H, Py_ssize_t W, Py_ssize_t n0,
            Py_ssize_t nb, Py_ssize_t s0, Py_ssize_t nts, Py_ssize_t ph, Py_ssize_t pw, double *vbuf,
            double *mbuf)
    void ecp_box_means_f(const float *x, Py_ssize_t n_planes, Py_ssize_t H, Py_ssize_t W,
                         Py_ssize_t ph, Py_ssize_t pw, float *xs)
    void ecp_box_means_d(const double *x, Py_ssize_t n_planes, Py_ssize_t H, Py_ssize_t W,
                         Py_ssize_t ph, Py_ssize_t pw, double *xs)
    void ecp_box_adjoint_f(const float *d, Py_ssize_t H2, Py_ssize_t W2, float *dx, Py_ssize_t C,
                           Py_ssize_t H, Py_ssize_t W, Py_ssize_t ph, Py_ssize_t pw)
    void ecp_box_adjoint_d(const double *d, Py_ssize_t H2, Py_ssize_t W2, double *dx, Py_ssize_t C,
                           Py_ssize_t H, Py_ssize_t W, Py_ssize_t ph, Py_ssize_t pw)
    void ecp_team_barrier()
    void ecp_pack_weights_shared_f(const float *w, Py_ssize_t O, Py_ssize_t K, Py_ssize_t nr, float *wp)
    void ecp_pack_weights_shared_d(const double *w, Py_ssize_t O, Py_ssize_t K, Py_ssize_t nr, double *wp)
    void ecp_pack_weights_t_shared_f(const float *w, Py_ssize_t O, Py_ssize_t K, float *wt)
    void ecp_pack_weights_t_shared_d(const double *w, Py_ssize_t O, Py_ssize_t K, double *wt)


cdef extern from "ecp_box.h" nogil:
    # easy average pooling's kernel widening (the box backward's dx with few samples)
    Py_ssize_t ecp_box_zsize(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t p)
    void ecp_box_widen_f(const float *w, float *wide, Py_ssize_t n_planes, Py_ssize_t kh,
                         Py_ssize_t kw, Py_ssize_t p, float *z)
    void ecp_box_widen_d(const double *w, double *wide, Py_ssize_t n_planes, Py_ssize_t kh,
                         Py_ssize_t kw, Py_ssize_t p, double *z)
