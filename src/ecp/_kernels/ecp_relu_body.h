/* ecp_relu.h's loops for one type, written once: included there with T (element type) and
 * ECP_SUF (f or d) defined; defines ecp_relu_<suf> and ecp_relu_backward_<suf> (contract in
 * ecp_relu.h). No include guard on purpose. */

static void ECP_TNAME(relu)(const T *x, T *y, ptrdiff_t n)
{
    ECP_IVDEP
    for (ptrdiff_t i = 0; i < n; i++)
        y[i] = x[i] <= 0 ? (T) 0 : x[i];
}

static void ECP_TNAME(relu_backward)(const T *dy, const T *y, T *dx, ptrdiff_t n)
{
    ECP_IVDEP
    for (ptrdiff_t i = 0; i < n; i++) {
        T keep = y[i] > 0;  /* a 0/1 then a product: no branch, so it vectorises */
        dx[i] = dy[i] * keep;
    }
}

#undef T
#undef ECP_SUF
