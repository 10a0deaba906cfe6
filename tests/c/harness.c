/* The C kernels of ecp_direct.h and ecp_im2col.h against a scalar reference, at every ISA level
 * this CPU and build can run (ecp_isa_best() down to the lowest vector level), float and double.
 * The Winograd F(2x2, 3x3) kernels (forward, dx with the flipped filters, dW and its reduction)
 * are called as _winograd.pxi calls them, with their own tolerance (WINO_TOL_F / _D below); so is
 * the polyphase stride-2 3x3 forward (on square and on tall tiles), dW and dx (ecp_direct_poly.h,
 * ecp_direct_poly_dx.h), with the same tolerance.
 *
 * Each check is one kernel call pattern on one geometry, compared with naive loops summing in
 * double: |got - ref| <= tol * (sum of |terms|) per element (tol 1e-4 float, 1e-11 double), exact
 * for copies (packing, im2col, transposes). It also checks the contracts around the numbers:
 * outputs outside an item stay untouched, no write past a scratch buffer of the size the Cython
 * drivers give it, no read outside the inputs (x and dy sit against PROT_NONE guard pages, on
 * both sides in turn), and the same bits where the kernels promise them (an item split another
 * way, the rows kernel against the panel kernel, windows read in place against packed; the
 * forward outputs, dW and the plane sums on every level alike). At ECP_ISA_GENERIC the direct
 * items do nothing and are not called; the helpers' portable C is checked there.
 * Scratch starts as NaN, so a read of scratch no kernel wrote shows up as a NaN in the result.
 *
 * Output: one line per failure; the levels that ran; last line exactly "N passed, M failed";
 * exit status 1 when M > 0. "-v" prints every check.
 *
 * Build (tests/c/Makefile): plain C99 over the headers, no OpenMP, -O2 without -march (the
 * kernels carry their own target attributes), GNU mode so that floating-point contraction is the
 * package build's (-ffp-contract=fast: the kernels' vector a*b + c become FMAs, as in the wheel).
 */
#define _DEFAULT_SOURCE
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "ecp_direct.h"
#include "ecp_im2col.h"

#define ROWS_PIXELS ECP_ROWS_PIX   /* pixels of one block of the rows kernel */

static const char *const LEVEL_NAMES[] = {"generic", "avx2", "avx512", "neon"};
static const char *level_name(int l) { return l >= 0 && l <= 3 ? LEVEL_NAMES[l] : "?"; }

/* ---------------------------------------------------------------------------------------------
 * Bookkeeping */

static long n_passed, n_failed;
static int verbose;
static char ctx[256];   /* "level dtype geometry" of the checks running */

static void report(int ok, const char *what, const char *detail)
{
    if (ok) n_passed++;
    else n_failed++;
    if (!ok || verbose) printf("%s %s %s%s%s\n", ok ? "ok  " : "FAIL", ctx, what, *detail ? ": " : "", detail);
    fflush(stdout);
}

/* A fault inside a kernel call (a read past a guard page) is a failed check, not the end of the run. */
static sigjmp_buf fault_jump;
static volatile sig_atomic_t in_kernel;

static void on_fault(int sig)
{
    if (in_kernel) {
        in_kernel = 0;
        siglongjmp(fault_jump, sig);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Runs CALL; on SIGSEGV / SIGBUS reports a failure named WHAT and runs ON_FAULT (a statement). */
#define GUARDED(WHAT, CALL, ON_FAULT)                                                          \
    do {                                                                                       \
        int sig_ = sigsetjmp(fault_jump, 1);                                                   \
        if (sig_ == 0) {                                                                       \
            in_kernel = 1;                                                                     \
            CALL;                                                                              \
            in_kernel = 0;                                                                     \
        } else {                                                                               \
            char d_[64];                                                                       \
            snprintf(d_, sizeof d_, "crashed with signal %d (a read or write out of bounds)", sig_); \
            report(0, WHAT, d_);                                                               \
            ON_FAULT;                                                                          \
        }                                                                                      \
    } while (0)

/* ---------------------------------------------------------------------------------------------
 * Memory: scratch and outputs with a NaN-filled tail that must stay intact; inputs against
 * guard pages. */

#define CANARY 256   /* bytes after every scratch and output buffer */

static const uint32_t NAN_F = 0x7fc0dea1u;                   /* quiet NaNs with a payload */
static const uint64_t NAN_D = 0x7ff8dea1dea1dea1ull;

typedef struct {
    int isf;      /* float (1) or double (0) */
    size_t sz;    /* bytes of an element */
} dtype;

static void fill_nan(void *p, size_t n, dtype t)
{
    for (size_t i = 0; i < n; i++) {
        if (t.isf) memcpy((char *)p + 4 * i, &NAN_F, 4);
        else memcpy((char *)p + 8 * i, &NAN_D, 8);
    }
}

static int is_nan_pattern(const void *p, size_t i, dtype t)
{
    return t.isf ? memcmp((const char *)p + 4 * i, &NAN_F, 4) == 0
                 : memcmp((const char *)p + 8 * i, &NAN_D, 8) == 0;
}

typedef struct {
    void *p;
    size_t n;   /* elements */
    dtype t;
} buf;

/* n elements (at least one), 64-byte aligned as the Cython scratch arena's, NaN, tail included */
static buf balloc(size_t n, dtype t)
{
    buf b = {NULL, n, t};
    size_t bytes = (n ? n : 1) * t.sz + CANARY;
    if (posix_memalign(&b.p, 64, bytes)) {
        fprintf(stderr, "harness: out of memory\n");
        exit(2);
    }
    fill_nan(b.p, bytes / t.sz, t);
    return b;
}

static int tail_intact(buf b)
{
    size_t m = CANARY / b.t.sz;
    for (size_t i = 0; i < m; i++)
        if (!is_nan_pattern(b.p, b.n + i, b.t)) return 0;
    return 1;
}

/* Input memory flush against a PROT_NONE page, after it (end = 1) or before it (end = 0). */
typedef struct {
    void *map;
    size_t len;
    void *p;
} guarded;

static guarded galloc(size_t bytes, int end)
{
    const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    const size_t body = (bytes + pg - 1) / pg * pg;
    guarded g;
    g.len = body + 2 * pg;
    g.map = mmap(NULL, g.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g.map == MAP_FAILED) {
        fprintf(stderr, "harness: mmap failed\n");
        exit(2);
    }
    mprotect(g.map, pg, PROT_NONE);
    mprotect((char *)g.map + pg + body, pg, PROT_NONE);
    g.p = end ? (char *)g.map + pg + body - bytes : (char *)g.map + pg;
    return g;
}

static void gfree(guarded g) { munmap(g.map, g.len); }

/* Element i of a float / double array, as a double */
static double at(const void *p, size_t i, dtype t)
{
    return t.isf ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

static void store(void *p, size_t i, double v, dtype t)
{
    if (t.isf) ((float *)p)[i] = (float)v;
    else ((double *)p)[i] = v;
}

/* xorshift64*: the same inputs on every machine, and for one geometry on every level */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static void seed(const char *text)   /* FNV-1a of the text */
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *text; text++) h = (h ^ (unsigned char)*text) * 0x100000001b3ull;
    rng_state = h ? h : 1;
}
static double uniform(void)   /* in [-1, 1) */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545F4914F6CDD1Dull) >> 11) / 4503599627370496.0 - 1.0;
}

/* n random values in t, and the same values as doubles */
static void random_fill(void *p, double *d, size_t n, dtype t)
{
    for (size_t i = 0; i < n; i++) {
        store(p, i, uniform(), t);
        d[i] = at(p, i, t);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Geometry and the reference */

typedef struct {
    const char *name;
    ptrdiff_t N, C, H, W, O, kh, kw, ph, pw, s, oy, ox;
    ptrdiff_t hq, wq, K;
} geom;

static void geom_text(const geom *g, char *out, size_t n)
{
    snprintf(out, n, "%s x(%td,%td,%td,%td) w(%td,%td,%td,%td) pad(%td,%td) s%td(%td,%td) out %tdx%td",
             g->name, g->N, g->C, g->H, g->W, g->O, g->C, g->kh, g->kw, g->ph, g->pw, g->s, g->oy,
             g->ox, g->hq, g->wq);
}

/* input element (n, c, row, col) of the zero-padded plane, or 0 outside */
static double xin(const geom *g, const double *x, ptrdiff_t n, ptrdiff_t c, ptrdiff_t row, ptrdiff_t col)
{
    if (row < 0 || row >= g->H || col < 0 || col >= g->W) return 0.0;
    return x[((n * g->C + c) * g->H + row) * g->W + col];
}

/* y[n, o, r, q] = b[o] + sum_{c,i,j} w[o, c, i, j] x[n, c, oy + s r + i - ph, ox + s q + j - pw];
 * ay: the sums of the terms' magnitudes */
static void ref_forward(const geom *g, const double *x, const double *w, const double *b, double *y, double *ay)
{
    for (ptrdiff_t n = 0; n < g->N; n++)
        for (ptrdiff_t o = 0; o < g->O; o++)
            for (ptrdiff_t r = 0; r < g->hq; r++)
                for (ptrdiff_t q = 0; q < g->wq; q++) {
                    double acc = b[o], mag = fabs(b[o]);
                    for (ptrdiff_t c = 0; c < g->C; c++)
                        for (ptrdiff_t i = 0; i < g->kh; i++)
                            for (ptrdiff_t j = 0; j < g->kw; j++) {
                                double v = w[((o * g->C + c) * g->kh + i) * g->kw + j] *
                                           xin(g, x, n, c, g->oy + g->s * r + i - g->ph, g->ox + g->s * q + j - g->pw);
                                acc += v;
                                mag += fabs(v);
                            }
                    const size_t e = (size_t)(((n * g->O + o) * g->hq + r) * g->wq + q);
                    y[e] = acc;
                    ay[e] = mag;
                }
}

/* dW[o, k] over samples n0 .. n1-1 and dx[n, c, :, :] of every sample (the adjoint of ref_forward) */
static void ref_backward(const geom *g, const double *x, const double *w, const double *dy, ptrdiff_t n0,
                         ptrdiff_t n1, double *dw, double *adw, double *dx, double *adx)
{
    const ptrdiff_t HW = g->H * g->W, P = g->hq * g->wq;
    memset(dw, 0, (size_t)(g->O * g->K) * sizeof(double));
    memset(adw, 0, (size_t)(g->O * g->K) * sizeof(double));
    memset(dx, 0, (size_t)(g->N * g->C * HW) * sizeof(double));
    memset(adx, 0, (size_t)(g->N * g->C * HW) * sizeof(double));
    for (ptrdiff_t n = 0; n < g->N; n++)
        for (ptrdiff_t o = 0; o < g->O; o++)
            for (ptrdiff_t p = 0; p < P; p++) {
                const double d = dy[(n * g->O + o) * P + p];
                const ptrdiff_t r = p / g->wq, q = p % g->wq;
                for (ptrdiff_t c = 0; c < g->C; c++)
                    for (ptrdiff_t i = 0; i < g->kh; i++)
                        for (ptrdiff_t j = 0; j < g->kw; j++) {
                            const ptrdiff_t row = g->oy + g->s * r + i - g->ph, col = g->ox + g->s * q + j - g->pw;
                            if (row < 0 || row >= g->H || col < 0 || col >= g->W) continue;
                            const ptrdiff_t k = (c * g->kh + i) * g->kw + j;
                            const ptrdiff_t xe = (n * g->C + c) * HW + row * g->W + col;
                            if (n >= n0 && n < n1) {
                                dw[o * g->K + k] += d * x[xe];
                                adw[o * g->K + k] += fabs(d * x[xe]);
                            }
                            dx[xe] += d * w[o * g->K + k];
                            adx[xe] += fabs(d * w[o * g->K + k]);
                        }
            }
}

/* |got - ref| <= tol * mag, element by element (exact where mag is 0); NaN fails. Reports the
 * largest violation relative to mag. n elements; got(i) read through the index map idx (NULL:
 * the identity). */
static int close_enough(const char *what, const void *got, const size_t *idx, const double *ref,
                        const double *mag, size_t n, dtype t, double tol)
{
    double worst = 0.0;
    size_t wi = 0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        const double v = at(got, idx ? idx[i] : i, t), err = fabs(v - ref[i]);
        if (!(err <= tol * mag[i])) {
            const double rel = mag[i] > 0 ? err / mag[i] : INFINITY;
            if (ok || rel > worst || isnan(v)) {
                worst = isnan(v) ? NAN : rel;
                wi = i;
            }
            ok = 0;
        }
    }
    char d[160] = "";
    if (!ok)
        snprintf(d, sizeof d, "max error %.3g of the terms' magnitude (tolerance %.0e) at element %zu: got %.9g, want %.9g",
                 worst, tol, wi, at(got, idx ? idx[wi] : wi, t), ref[wi]);
    report(ok, what, d);
    return ok;
}

static int same_bits(const char *what, const void *a, const void *b, size_t n, dtype t)
{
    size_t i = 0;
    while (i < n && memcmp((const char *)a + i * t.sz, (const char *)b + i * t.sz, t.sz) == 0) i++;
    char d[128] = "";
    if (i < n) snprintf(d, sizeof d, "first difference at element %zu: %.9g against %.9g", i, at(a, i, t), at(b, i, t));
    report(i == n, what, d);
    return i == n;
}

/* Elements [lo, hi) of b still hold the NaN fill, and its tail too */
static int untouched(const char *what, buf b, size_t lo, size_t hi)
{
    size_t i = lo;
    while (i < hi && is_nan_pattern(b.p, i, b.t)) i++;
    char d[96] = "";
    if (i < hi) snprintf(d, sizeof d, "element %zu (of %zu .. %zu) was written", i, lo, hi);
    else if (!tail_intact(b)) snprintf(d, sizeof d, "written past its %zu elements", b.n);
    report(!*d, what, d);
    return !*d;
}

static int tail_ok(const char *what, buf b)
{
    char d[80] = "";
    if (!tail_intact(b)) snprintf(d, sizeof d, "written past its %zu elements", b.n);
    report(!*d, what, d);
    return !*d;
}

/* Results ecp_direct.h promises the same bits on every level (the forward outputs, dW, the plane
 * sums): the first level to run one keeps it under its name, the later ones are compared with it. */
#define MAX_KEPT 8192
static struct {
    char *key;
    void *bits;
    size_t bytes;
    int level;
} kept[MAX_KEPT];
static int n_kept, level_now;

static void same_on_every_level(const char *what, const void *p, size_t n, dtype t)
{
    char key[512];
    snprintf(key, sizeof key, "%s %s", ctx + strcspn(ctx, " "), what);   /* ctx without its level */
    for (int i = 0; i < n_kept; i++)
        if (strcmp(kept[i].key, key) == 0) {
            char w[320];
            snprintf(w, sizeof w, "%s: the bits of level %s", what, level_name(kept[i].level));
            if (kept[i].bytes != n * t.sz) report(0, w, "another size");
            else same_bits(w, p, kept[i].bits, n, t);
            return;
        }
    if (n_kept == MAX_KEPT) return;
    kept[n_kept].key = strdup(key);
    kept[n_kept].bits = malloc(n * t.sz);
    memcpy(kept[n_kept].bits, p, n * t.sz);
    kept[n_kept].bytes = n * t.sz;
    kept[n_kept++].level = level_now;
}

/* ---------------------------------------------------------------------------------------------
 * The kernels by dtype (thin wrappers, so that the checks are written once) */

typedef struct {
    dtype t;
    const char *name;
    double tol;
    ptrdiff_t (*nr)(void);
    void (*pack_w)(const void *w, ptrdiff_t O, ptrdiff_t K, void *wp);
    void (*pack_wv)(const void *w, ptrdiff_t O, ptrdiff_t K, ptrdiff_t nr, void *wv);
    void (*pack_wt)(const void *w, ptrdiff_t O, ptrdiff_t K, void *wt);
    void (*item)(const geom *g, const void *x, const void *wp, const void *bias, void *y, ptrdiff_t n0,
                 ptrdiff_t nb, ptrdiff_t r0, ptrdiff_t nr, void *panel, void *tile);
    void (*rows)(const geom *g, const void *x, const void *wv, const void *bias, void *y, ptrdiff_t n0,
                 ptrdiff_t nb, ptrdiff_t r0, ptrdiff_t nr, void *rpanel, void *tile, const int *koff);
    void (*bwd)(const geom *g, const void *x, const void *dy, const void *wt, ptrdiff_t n0, ptrdiff_t nb,
                void *dwacc, void *dx, void *rpanel, void *dpanel, void *xpanel, const int *koff, int fresh,
                ptrdiff_t d0, ptrdiff_t d1, ptrdiff_t c0, ptrdiff_t c1);
    void (*im2col_s2)(const geom *g, const void *xp, void *dst, ptrdiff_t ld);
    void (*im2col)(const geom *g, const void *xp, void *dst, ptrdiff_t ld);
    void (*col2im)(const geom *g, const void *src, ptrdiff_t ld, void *dxp);
    double (*sum_planes)(const void *src, ptrdiff_t n, ptrdiff_t count, ptrdiff_t stride);
} kernels;

static void pack_w_f(const void *w, ptrdiff_t O, ptrdiff_t K, void *wp) { ecp_pack_weights_f(w, O, K, wp); }
static void pack_w_d(const void *w, ptrdiff_t O, ptrdiff_t K, void *wp) { ecp_pack_weights_d(w, O, K, wp); }
static void pack_wv_f(const void *w, ptrdiff_t O, ptrdiff_t K, ptrdiff_t nr, void *wv) { ecp_pack_weights_v_f(w, O, K, nr, wv); }
static void pack_wv_d(const void *w, ptrdiff_t O, ptrdiff_t K, ptrdiff_t nr, void *wv) { ecp_pack_weights_v_d(w, O, K, nr, wv); }
static void pack_wt_f(const void *w, ptrdiff_t O, ptrdiff_t K, void *wt) { ecp_pack_weights_t_f(w, O, K, wt); }
static void pack_wt_d(const void *w, ptrdiff_t O, ptrdiff_t K, void *wt) { ecp_pack_weights_t_d(w, O, K, wt); }

static void item_f(const geom *g, const void *x, const void *wp, const void *bias, void *y, ptrdiff_t n0,
                   ptrdiff_t nb, ptrdiff_t r0, ptrdiff_t nr, void *panel, void *tile)
{
    ecp_direct_item_f(x, g->C, g->H, g->W, wp, g->O, g->kh, g->kw, bias, y, g->hq, g->wq, n0, nb, r0, nr,
                      g->ph, g->pw, g->s, g->oy, g->ox, panel, tile);
}
static void item_d(const geom *g, const void *x, const void *wp, const void *bias, void *y, ptrdiff_t n0,
                   ptrdiff_t nb, ptrdiff_t r0, ptrdiff_t nr, void *panel, void *tile)
{
    ecp_direct_item_d(x, g->C, g->H, g->W, wp, g->O, g->kh, g->kw, bias, y, g->hq, g->wq, n0, nb, r0, nr,
                      g->ph, g->pw, g->s, g->oy, g->ox, panel, tile);
}
static void rows_f(const geom *g, const void *x, const void *wv, const void *bias, void *y, ptrdiff_t n0,
                   ptrdiff_t nb, ptrdiff_t r0, ptrdiff_t nr, void *rpanel, void *tile, const int *koff)
{
    ecp_direct_rows_item_f(x, g->C, g->H, g->W, wv, g->O, g->kh, g->kw, bias, y, g->hq, g->wq, n0, nb, r0,
                           nr, g->ph, g->pw, g->s, g->oy, g->ox, rpanel, tile, koff);
}
static void rows_d(const geom *g, const void *x, const void *wv, const void *bias, void *y, ptrdiff_t n0,
                   ptrdiff_t nb, ptrdiff_t r0, ptrdiff_t nr, void *rpanel, void *tile, const int *koff)
{
    ecp_direct_rows_item_d(x, g->C, g->H, g->W, wv, g->O, g->kh, g->kw, bias, y, g->hq, g->wq, n0, nb, r0,
                           nr, g->ph, g->pw, g->s, g->oy, g->ox, rpanel, tile, koff);
}
static void bwd_f(const geom *g, const void *x, const void *dy, const void *wt, ptrdiff_t n0, ptrdiff_t nb,
                  void *dwacc, void *dx, void *rpanel, void *dpanel, void *xpanel, const int *koff, int fresh,
                  ptrdiff_t d0, ptrdiff_t d1, ptrdiff_t c0, ptrdiff_t c1)
{
    ecp_direct_backward_item_f(x, g->C, g->H, g->W, dy, g->O, g->hq, g->wq, wt, g->kh, g->kw, n0, nb, g->ph,
                               g->pw, g->s, g->oy, g->ox, dwacc, dx, rpanel, dpanel, xpanel, koff, fresh, d0, d1,
                               c0, c1);
}
static void bwd_d(const geom *g, const void *x, const void *dy, const void *wt, ptrdiff_t n0, ptrdiff_t nb,
                  void *dwacc, void *dx, void *rpanel, void *dpanel, void *xpanel, const int *koff, int fresh,
                  ptrdiff_t d0, ptrdiff_t d1, ptrdiff_t c0, ptrdiff_t c1)
{
    ecp_direct_backward_item_d(x, g->C, g->H, g->W, dy, g->O, g->hq, g->wq, wt, g->kh, g->kw, n0, nb, g->ph,
                               g->pw, g->s, g->oy, g->ox, dwacc, dx, rpanel, dpanel, xpanel, koff, fresh, d0, d1,
                               c0, c1);
}
static void im2col_s2_f(const geom *g, const void *xp, void *dst, ptrdiff_t ld)
{
    ecp_im2col_plane_s2_f(xp, g->H, g->W, g->kh, g->kw, g->ph, g->pw, g->oy, g->ox, g->hq, g->wq, dst, ld);
}
static void im2col_s2_d(const geom *g, const void *xp, void *dst, ptrdiff_t ld)
{
    ecp_im2col_plane_s2_d(xp, g->H, g->W, g->kh, g->kw, g->ph, g->pw, g->oy, g->ox, g->hq, g->wq, dst, ld);
}
static void im2col_f(const geom *g, const void *xp, void *dst, ptrdiff_t ld)
{
    ecp_im2col_plane_f(xp, g->H, g->W, g->kh, g->kw, g->ph, g->pw, g->s, g->oy, g->ox, g->hq, g->wq, dst, ld);
}
static void im2col_d(const geom *g, const void *xp, void *dst, ptrdiff_t ld)
{
    ecp_im2col_plane_d(xp, g->H, g->W, g->kh, g->kw, g->ph, g->pw, g->s, g->oy, g->ox, g->hq, g->wq, dst, ld);
}
static void col2im_f(const geom *g, const void *src, ptrdiff_t ld, void *dxp)
{
    ecp_col2im_plane_f(src, ld, g->H, g->W, g->kh, g->kw, g->ph, g->pw, g->s, g->oy, g->ox, g->hq, g->wq, dxp);
}
static void col2im_d(const geom *g, const void *src, ptrdiff_t ld, void *dxp)
{
    ecp_col2im_plane_d(src, ld, g->H, g->W, g->kh, g->kw, g->ph, g->pw, g->s, g->oy, g->ox, g->hq, g->wq, dxp);
}
static double sum_planes_f(const void *src, ptrdiff_t n, ptrdiff_t count, ptrdiff_t stride)
{
    return ecp_sum_planes_f(src, n, count, stride);
}
static double sum_planes_d(const void *src, ptrdiff_t n, ptrdiff_t count, ptrdiff_t stride)
{
    return ecp_sum_planes_d(src, n, count, stride);
}

static const kernels KERNELS[2] = {
    {{1, sizeof(float)}, "f32", 1e-4, ecp_direct_nr_f, pack_w_f, pack_wv_f, pack_wt_f, item_f, rows_f, bwd_f,
     im2col_s2_f, im2col_f, col2im_f, sum_planes_f},
    {{0, sizeof(double)}, "f64", 1e-11, ecp_direct_nr_d, pack_w_d, pack_wv_d, pack_wt_d, item_d, rows_d, bwd_d,
     im2col_s2_d, im2col_d, col2im_d, sum_planes_d},
};

/* ---------------------------------------------------------------------------------------------
 * One geometry's data: inputs (in the kernel's type, against a guard page, and as doubles) and the
 * reference results */

typedef struct {
    const geom *g;
    const kernels *k;
    guarded gx, gdy;
    void *x, *w, *b, *dy;
    double *xd, *wd, *bd, *dyd;
    double *y, *ay;          /* forward reference */
    double *dw, *adw, *dx, *adx;   /* backward reference, dW over the whole batch */
    size_t nx, nw, ny;
} data;

static data data_make(const geom *g, const kernels *k, int guard_end)
{
    data d;
    d.g = g;
    d.k = k;
    d.nx = (size_t)(g->N * g->C * g->H * g->W);
    d.nw = (size_t)(g->O * g->K);
    d.ny = (size_t)(g->N * g->O * g->hq * g->wq);
    d.gx = galloc(d.nx * k->t.sz, guard_end);
    d.gdy = galloc(d.ny * k->t.sz, guard_end);
    d.x = d.gx.p;
    d.dy = d.gdy.p;
    seed(ctx + strcspn(ctx, " "));   /* the geometry and dtype, not the level */
    d.w = malloc(d.nw * k->t.sz);
    d.b = malloc((size_t)g->O * k->t.sz);
    d.xd = malloc(d.nx * sizeof(double));
    d.wd = malloc(d.nw * sizeof(double));
    d.bd = malloc((size_t)g->O * sizeof(double));
    d.dyd = malloc(d.ny * sizeof(double));
    d.y = malloc(d.ny * sizeof(double));
    d.ay = malloc(d.ny * sizeof(double));
    d.dw = malloc(d.nw * sizeof(double));
    d.adw = malloc(d.nw * sizeof(double));
    d.dx = malloc(d.nx * sizeof(double));
    d.adx = malloc(d.nx * sizeof(double));
    random_fill(d.x, d.xd, d.nx, k->t);
    random_fill(d.w, d.wd, d.nw, k->t);
    random_fill(d.b, d.bd, (size_t)g->O, k->t);
    random_fill(d.dy, d.dyd, d.ny, k->t);
    ref_forward(g, d.xd, d.wd, d.bd, d.y, d.ay);
    ref_backward(g, d.xd, d.wd, d.dyd, 0, g->N, d.dw, d.adw, d.dx, d.adx);
    return d;
}

static void data_free(data *d)
{
    gfree(d->gx);
    gfree(d->gdy);
    free(d->w); free(d->b); free(d->xd); free(d->wd); free(d->bd); free(d->dyd);
    free(d->y); free(d->ay); free(d->dw); free(d->adw); free(d->dx); free(d->adx);
}

static ptrdiff_t up(ptrdiff_t a, ptrdiff_t m) { return (a + m - 1) / m * m; }

/* ---------------------------------------------------------------------------------------------
 * Portable pieces (every level, GENERIC included): the packings, the window offsets, im2col /
 * col2im of ecp_im2col.h */

static void check_packing(const data *d)
{
    const geom *g = d->g;
    const kernels *k = d->k;
    const ptrdiff_t O = g->O, K = g->K, nob = (O + 7) / 8, nkb = (K + 7) / 8;
    char what[96];
    /* Wp[ob][k][m] = w[ob*8 + m][k], zeros past O */
    buf wp = balloc((size_t)(nob * 8 * K), k->t);
    GUARDED("pack_weights", k->pack_w(d->w, O, K, wp.p), goto wt);
    {
        int ok = tail_intact(wp);
        for (ptrdiff_t ob = 0; ob < nob && ok; ob++)
            for (ptrdiff_t kk = 0; kk < K && ok; kk++)
                for (ptrdiff_t m = 0; m < 8 && ok; m++) {
                    const ptrdiff_t o = ob * 8 + m;
                    ok = at(wp.p, (size_t)((ob * K + kk) * 8 + m), k->t) == (o < O ? d->wd[o * K + kk] : 0.0);
                }
        report(ok, "pack_weights layout", ok ? "" : "an element differs from w[ob*8 + m][k] (or 0 past O), or written past the end");
    }
wt:
    free(wp.p);
    /* Wt[kb][o][m] = w[o][kb*8 + m], zeros past K */
    buf wt = balloc((size_t)(nkb * 8 * O), k->t);
    GUARDED("pack_weights_t", k->pack_wt(d->w, O, K, wt.p), goto wv);
    {
        int ok = tail_intact(wt);
        for (ptrdiff_t kb = 0; kb < nkb && ok; kb++)
            for (ptrdiff_t o = 0; o < O && ok; o++)
                for (ptrdiff_t m = 0; m < 8 && ok; m++) {
                    const ptrdiff_t kk = kb * 8 + m;
                    ok = at(wt.p, (size_t)((kb * O + o) * 8 + m), k->t) == (kk < K ? d->wd[o * K + kk] : 0.0);
                }
        report(ok, "pack_weights_t layout", ok ? "" : "an element differs from w[o][kb*8 + m] (or 0 past K), or written past the end");
    }
wv:
    free(wt.p);
    /* Wv[ob][k][l] = w[ob*nr + l][k], zeros past O, nr = NR of the level (GENERIC: NEON's) */
    {
        const ptrdiff_t nr = k->nr() ? k->nr() : 8, nov = (O + nr - 1) / nr;
        buf wv = balloc((size_t)(nov * nr * K), k->t);
        snprintf(what, sizeof what, "pack_weights_v nr=%td", nr);
        GUARDED(what, k->pack_wv(d->w, O, K, nr, wv.p), goto koff);
        {
            int ok = tail_intact(wv);
            for (ptrdiff_t ob = 0; ob < nov && ok; ob++)
                for (ptrdiff_t kk = 0; kk < K && ok; kk++)
                    for (ptrdiff_t l = 0; l < nr && ok; l++) {
                        const ptrdiff_t o = ob * nr + l;
                        ok = at(wv.p, (size_t)((ob * K + kk) * nr + l), k->t) == (o < O ? d->wd[o * K + kk] : 0.0);
                    }
            report(ok, what, ok ? "" : "an element differs from w[ob*nr + l][k] (or 0 past O), or written past the end");
        }
    koff:
        free(wv.p);
    }
    /* koff[k] = c*H*W + i*W + j, zeros up to n */
    {
        const ptrdiff_t n = nkb * 8 + 3;
        int *koff = malloc((size_t)n * sizeof(int)), ok = 1;
        ecp_window_offsets(g->C, g->H, g->W, g->kh, g->kw, n, koff);
        for (ptrdiff_t kk = 0; kk < n && ok; kk++) {
            const ptrdiff_t c = kk / (g->kh * g->kw), i = kk / g->kw % g->kh, j = kk % g->kw;
            ok = koff[kk] == (kk < K ? c * g->H * g->W + i * g->W + j : 0);
        }
        report(ok, "window_offsets", ok ? "" : "an offset differs from c*H*W + i*W + j (or 0 past K)");
        free(koff);
    }
}

/* im2col of one plane (sample 0, channel C-1): every element of the kh*kw rows written, exact
 * copies; ld > hq*wq, the gaps between rows untouched. The stride-2 AVX-512-style copy
 * (im2col_s2) is checked against the same reference and the portable copy, bit for bit. */
static void check_im2col(const data *d, int which_s2)
{
    const geom *g = d->g;
    const kernels *k = d->k;
    const ptrdiff_t P = g->hq * g->wq, ld = P + 3, rows = g->kh * g->kw;
    const size_t plane = (size_t)((g->C - 1) * g->H * g->W);
    const void *xp = (const char *)d->x + plane * k->t.sz;
    buf dst = balloc((size_t)(rows * ld), k->t);
    const char *what = which_s2 ? "im2col_plane_s2" : "im2col_plane (ecp_im2col.h)";
    int ok = 1;
    GUARDED(what, (which_s2 ? k->im2col_s2 : k->im2col)(g, xp, dst.p, ld), ok = -1);
    if (ok < 0) {
        free(dst.p);
        return;
    }
    for (ptrdiff_t i = 0; i < g->kh && ok; i++)
        for (ptrdiff_t j = 0; j < g->kw && ok; j++)
            for (ptrdiff_t p = 0; p < P && ok; p++) {
                const ptrdiff_t r = p / g->wq, q = p % g->wq;
                const double want = xin(g, d->xd + plane, 0, 0, g->oy + g->s * r + i - g->ph, g->ox + g->s * q + j - g->pw);
                ok = at(dst.p, (size_t)((i * g->kw + j) * ld + p), k->t) == want;
            }
    for (ptrdiff_t row = 0; row < rows && ok; row++)
        for (ptrdiff_t p = P; p < ld && ok; p++) ok = is_nan_pattern(dst.p, (size_t)(row * ld + p), k->t);
    if (ok) ok = tail_intact(dst);
    report(ok, what, ok ? "" : "an element is not the input sample (or 0 outside the plane), or a gap / the tail was written");
    free(dst.p);
}

/* col2im: dxp (H*W) = the sum of the taps' rows placed back, every element written */
static void check_col2im(const data *d)
{
    const geom *g = d->g;
    const kernels *k = d->k;
    const ptrdiff_t P = g->hq * g->wq, ld = P + 2, HW = g->H * g->W;
    void *src = malloc((size_t)(g->kh * g->kw * ld) * k->t.sz);
    double *srcd = malloc((size_t)(g->kh * g->kw * ld) * sizeof(double));
    double *ref = calloc((size_t)HW, sizeof(double)), *mag = calloc((size_t)HW, sizeof(double));
    random_fill(src, srcd, (size_t)(g->kh * g->kw * ld), k->t);
    buf dxp = balloc((size_t)HW, k->t);
    for (ptrdiff_t i = 0; i < g->kh; i++)
        for (ptrdiff_t j = 0; j < g->kw; j++)
            for (ptrdiff_t p = 0; p < P; p++) {
                const ptrdiff_t r = p / g->wq, q = p % g->wq;
                const ptrdiff_t row = g->oy + g->s * r + i - g->ph, col = g->ox + g->s * q + j - g->pw;
                if (row < 0 || row >= g->H || col < 0 || col >= g->W) continue;
                ref[row * g->W + col] += srcd[(i * g->kw + j) * ld + p];
                mag[row * g->W + col] += fabs(srcd[(i * g->kw + j) * ld + p]);
            }
    int crashed = 0;
    GUARDED("col2im_plane (ecp_im2col.h)", k->col2im(g, src, ld, dxp.p), crashed = 1);
    if (!crashed) {
        close_enough("col2im_plane (ecp_im2col.h)", dxp.p, NULL, ref, mag, (size_t)HW, k->t, k->tol);
        tail_ok("col2im_plane output bounds", dxp);
    }
    free(src); free(srcd); free(ref); free(mag); free(dxp.p);
}

/* ---------------------------------------------------------------------------------------------
 * Vector-level kernels */

/* forward, one kernel ("panel" or "rows" with or without koff) over a list of items; y starts as
 * NaN. After the first item, everything outside it must be untouched. Returns y (caller frees) or
 * NULL after a crash. */
typedef struct {
    ptrdiff_t n0, nb, r0, nr;
} item;

static int make_items(const geom *g, int split, item *it)
{
    /* split 0: one item, the whole batch; 1: samples in two runs (a part of the batch each);
     * 2: blocks of output rows of one sample (the drivers' row items) */
    int n = 0;
    if (split == 0 || (split == 1 && g->N < 2)) {
        it[n++] = (item){0, g->N, 0, g->hq};
    } else if (split == 1) {
        const ptrdiff_t h = g->N / 2;
        it[n++] = (item){h, g->N - h, 0, g->hq};   /* the later samples first */
        it[n++] = (item){0, h, 0, g->hq};
    } else {
        const ptrdiff_t rb = g->hq > 2 ? (g->hq + 2) / 3 : 1;
        for (ptrdiff_t s = 0; s < g->N; s++)
            for (ptrdiff_t r0 = 0; r0 < g->hq; r0 += rb) it[n++] = (item){s, 1, r0, g->hq - r0 < rb ? g->hq - r0 : rb};
    }
    return n;
}

enum { FWD_PANEL, FWD_ROWS, FWD_ROWS_KOFF };
static const char *const FWD_NAMES[] = {"forward panel", "forward rows", "forward rows (windows in place, koff)"};

static void *run_forward(const data *d, int kind, volatile int split)
{
    const geom *g = d->g;
    const kernels *k = d->k;
    const ptrdiff_t NR = k->nr(), O = g->O, K = g->K, nob = (O + 7) / 8, nov = (O + NR - 1) / NR;
    item its[512];
    const volatile int n_items = make_items(g, split, its);
    char what[160];
    snprintf(what, sizeof what, "%s, %s", FWD_NAMES[kind], split == 0 ? "one item" : split == 1 ? "items of samples" : "items of rows");
    /* scratch as _drivers.pxi sizes it */
    buf wp = balloc((size_t)(kind == FWD_PANEL ? nob * 8 * K : nov * NR * K), k->t);
    buf tile = balloc((size_t)(kind == FWD_PANEL ? nob * 8 * NR : nov * ROWS_PIXELS * NR), k->t);
    buf panel = balloc((size_t)(kind == FWD_PANEL ? K * NR : ROWS_PIXELS * K + NR / 2), k->t);
    int *koff = NULL;
    buf y = balloc(d->ny, k->t);
    void *result = NULL;
    if (kind == FWD_ROWS_KOFF) {
        koff = malloc((size_t)K * sizeof(int));
        ecp_window_offsets(g->C, g->H, g->W, g->kh, g->kw, K, koff);
    }
    if (kind == FWD_PANEL) GUARDED(what, k->pack_w(d->w, O, K, wp.p), goto out);
    else GUARDED(what, k->pack_wv(d->w, O, K, NR, wp.p), goto out);
    for (volatile int i = 0; i < n_items; i++) {
        const item it = its[i];
        if (kind == FWD_PANEL) GUARDED(what, k->item(g, d->x, wp.p, d->b, y.p, it.n0, it.nb, it.r0, it.nr, panel.p, tile.p), goto out);
        else GUARDED(what, k->rows(g, d->x, wp.p, d->b, y.p, it.n0, it.nb, it.r0, it.nr, panel.p, tile.p, koff), goto out);
        if (i == 0 && n_items > 1) {
            /* the first item wrote its outputs only */
            const ptrdiff_t P = g->hq * g->wq;
            int ok = 1;
            for (ptrdiff_t n = 0; n < g->N && ok; n++)
                for (ptrdiff_t o = 0; o < O && ok; o++)
                    for (ptrdiff_t p = 0; p < P && ok; p++) {
                        const ptrdiff_t r = p / g->wq;
                        const int mine = n >= it.n0 && n < it.n0 + it.nb && r >= it.r0 && r < it.r0 + it.nr;
                        ok = mine != is_nan_pattern(y.p, (size_t)((n * O + o) * P + p), k->t);
                    }
            char w2[320];
            snprintf(w2, sizeof w2, "%s: item (n0 %td, nb %td, r0 %td, nr %td) writes its outputs, no other", what, it.n0, it.nb, it.r0, it.nr);
            report(ok, w2, ok ? "" : "an output outside the item was written, or one of its own was not");
        }
    }
    char w3[320];
    close_enough(what, y.p, NULL, d->y, d->ay, d->ny, k->t, k->tol);
    snprintf(w3, sizeof w3, "%s: no write past y or the scratch", what);
    {
        const int ok = tail_intact(y) && tail_intact(wp) && tail_intact(tile) && tail_intact(panel);
        report(ok, w3, ok ? "" : "a buffer's tail was written (y, packed weights, tile or panel)");
    }
    result = y.p;
    y.p = NULL;
out:
    free(wp.p); free(tile.p); free(panel.p); free(koff); free(y.p);
    return result;
}

static void check_forward(const data *d)
{
    void *ref_bits = NULL;
    char what[160];
    for (int kind = FWD_PANEL; kind <= FWD_ROWS_KOFF; kind++)
        for (int split = 0; split < 3; split++) {
            void *y = run_forward(d, kind, split);
            if (!y) continue;
            if (!ref_bits) {
                ref_bits = y;
                same_on_every_level("forward y", y, d->ny, d->k->t);
                continue;
            }
            /* one chain over k per output: the same bits whatever the items and the kernel */
            snprintf(what, sizeof what, "%s, split %d: the bits of the panel kernel on one item", FWD_NAMES[kind], split);
            same_bits(what, y, ref_bits, d->ny, d->k->t);
            free(y);
        }
    free(ref_bits);
}

/* The backward item: dW (filter-major, or k-major with the windows read in place), dx, or both;
 * inplace: koff (only where every window lies inside the plane, as the drivers pass it). The
 * batch in one item, or in two (in sample order, the first fresh, the second adding to dW), as a
 * driver's slot runs its items. parts > 1: each item as the driver's tasks of fewer slots than
 * threads run it, dW in parts of its 8-row blocks and dx in parts of the channels, one call each. */
typedef struct {
    void *dw;   /* dense O x K, from dwacc */
    void *dx;
} bwd_out;

static int windows_inside(const geom *g)
{
    return g->oy >= g->ph && g->ox >= g->pw && g->oy + g->s * (g->hq - 1) - g->ph + g->kh <= g->H &&
           g->ox + g->s * (g->wq - 1) - g->pw + g->kw <= g->W;
}

static bwd_out run_backward(const data *d, int want_dw, int want_dx, int inplace, int split, int parts)
{
    const geom *g = d->g;
    const kernels *k = d->k;
    const ptrdiff_t NR = k->nr(), O = g->O, K = g->K, HW = g->H * g->W;
    const ptrdiff_t nob = (O + 7) / 8, nkb = (K + 7) / 8, Kp = up(K, NR), Ob = up(O, NR);
    bwd_out res = {NULL, NULL};
    char what[160];
    snprintf(what, sizeof what, "backward %s%s%s%s, %s%s", want_dw ? "dW" : "", want_dw && want_dx ? "+" : "",
             want_dx ? "dx" : "", want_dw ? (inplace ? " (windows in place, koff)" : " (windows packed)") : "",
             split ? "two items" : "one item", parts > 1 ? ", in parts" : "");
    /* scratch as _drivers.pxi sizes it */
    buf dwacc = balloc((size_t)(want_dw ? (inplace ? nkb * 8 * Ob : nob * 8 * Kp) : 1), k->t);
    buf wt = balloc((size_t)(want_dx ? nkb * 8 * O : 1), k->t);
    buf rpanel = balloc((size_t)(NR * (Kp > Ob ? Kp : Ob) + NR / 2), k->t);
    buf dpanel = balloc((size_t)(nob * 8 * NR), k->t);
    buf xpanel = balloc((size_t)(want_dx ? nkb * 8 * NR : 1), k->t);
    buf dx = balloc(d->nx, k->t);
    int *koff = NULL;
    memset(dpanel.p, 0, dpanel.n * k->t.sz);   /* rows past O stay 0: the caller's duty */
    if (inplace) {
        koff = malloc((size_t)(nkb * 8) * sizeof(int));
        ecp_window_offsets(g->C, g->H, g->W, g->kh, g->kw, nkb * 8, koff);
    }
    if (want_dx) GUARDED(what, k->pack_wt(d->w, O, K, wt.p), goto out);
    item its[2];
    volatile int n_items = 1;
    its[0] = (item){0, g->N, 0, 0};
    if (split && g->N >= 2) {
        its[0] = (item){0, g->N / 2, 0, 0};   /* in sample order: dW's chain runs over the pixels in order */
        its[1] = (item){g->N / 2, g->N - g->N / 2, 0, 0};
        n_items = 2;
    }
    const ptrdiff_t units = inplace ? nkb : nob;   /* dwacc's blocks of 8 rows */
    for (volatile int i = 0; i < n_items; i++) {
        if (parts <= 1)
            GUARDED(what, k->bwd(g, d->x, d->dy, wt.p, its[i].n0, its[i].nb, want_dw ? dwacc.p : NULL,
                                 want_dx ? dx.p : NULL, rpanel.p, dpanel.p, xpanel.p, koff, i == 0, 0, units, 0,
                                 g->C), goto out);
        for (volatile int p = 0; parts > 1 && p < parts; p++) {
            if (want_dw)
                GUARDED(what, k->bwd(g, d->x, d->dy, wt.p, its[i].n0, its[i].nb, dwacc.p, NULL, rpanel.p, dpanel.p,
                                     xpanel.p, koff, i == 0, p * units / parts, (p + 1) * units / parts, 0, 0),
                        goto out);
            if (want_dx)
                GUARDED(what, k->bwd(g, d->x, d->dy, wt.p, its[i].n0, its[i].nb, NULL, dx.p, rpanel.p, dpanel.p,
                                     xpanel.p, koff, i == 0, 0, 0, p * g->C / parts, (p + 1) * g->C / parts),
                        goto out);
        }
        if (want_dx && i == 0 && n_items > 1) {
            char w2[320];
            snprintf(w2, sizeof w2, "%s: the first item writes dx of its samples only", what);
            untouched(w2, dx, (size_t)(its[1].n0 * g->C * HW), d->nx);
        }
    }
    {
        char w3[320];
        snprintf(w3, sizeof w3, "%s: no write past dx or the scratch", what);
        const int ok = tail_intact(dx) && tail_intact(dwacc) && tail_intact(wt) && tail_intact(rpanel) &&
                       tail_intact(dpanel) && tail_intact(xpanel);
        report(ok, w3, ok ? "" : "a buffer's tail was written (dx, dwacc, wt, rpanel, dpanel or xpanel)");
    }
    if (want_dw) {
        size_t *idx = malloc(d->nw * sizeof(size_t));
        for (ptrdiff_t o = 0; o < O; o++)
            for (ptrdiff_t kk = 0; kk < K; kk++) idx[o * K + kk] = (size_t)(inplace ? kk * Ob + o : o * Kp + kk);
        char w4[320];
        snprintf(w4, sizeof w4, "%s: dW", what);
        close_enough(w4, dwacc.p, idx, d->dw, d->adw, d->nw, k->t, k->tol);
        res.dw = malloc(d->nw * k->t.sz);
        for (size_t e = 0; e < d->nw; e++) memcpy((char *)res.dw + e * k->t.sz, (char *)dwacc.p + idx[e] * k->t.sz, k->t.sz);
        free(idx);
    }
    if (want_dx) {
        char w5[320];
        snprintf(w5, sizeof w5, "%s: dx", what);
        close_enough(w5, dx.p, NULL, d->dx, d->adx, d->nx, k->t, k->tol);
        res.dx = dx.p;
        dx.p = NULL;
    }
out:
    free(dwacc.p); free(wt.p); free(rpanel.p); free(dpanel.p); free(xpanel.p); free(dx.p); free(koff);
    return res;
}

static void check_backward(const data *d)
{
    const kernels *k = d->k;
    char what[200];
    /* both, packed, two items: the reference bits for the others */
    bwd_out base = run_backward(d, 1, 1, 0, 1, 1);
    if (base.dw) same_on_every_level("backward dW", base.dw, d->nw, k->t);
    const int inside = windows_inside(d->g);
    const struct {
        int dw, dx, inplace, split, parts;
    } cases[] = {{1, 0, 0, 0, 1}, {1, 0, 0, 1, 1}, {0, 1, 0, 1, 1}, {0, 1, 0, 0, 1}, {1, 1, 1, 1, 1}, {1, 0, 1, 0, 1},
                 {1, 1, 0, 1, 3}, {1, 1, 1, 1, 3}, {1, 1, 0, 1, 8}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        if (cases[c].inplace && !inside) continue;
        bwd_out r = run_backward(d, cases[c].dw, cases[c].dx, cases[c].inplace, cases[c].split, cases[c].parts);
        /* dW is one chain over the pixels in order: the same bits for any items, with or without
         * dx, packed or in place. dx depends on the items (its runs), not on dW. */
        if (r.dw && base.dw) {
            snprintf(what, sizeof what, "backward dW (%s, %s%s%s): the bits of dW+dx packed in two items",
                     cases[c].inplace ? "in place" : "packed", cases[c].split ? "two items" : "one item",
                     cases[c].dx ? ", with dx" : "", cases[c].parts > 1 ? ", in parts" : "");
            same_bits(what, r.dw, base.dw, d->nw, k->t);
        }
        if (r.dx && base.dx && cases[c].split) {
            snprintf(what, sizeof what, "backward dx (%s%s): the bits of dW+dx in the same items",
                     cases[c].dw ? (cases[c].inplace ? "with dW in place" : "with dW") : "alone",
                     cases[c].parts > 1 ? ", in parts" : "");
            same_bits(what, r.dx, base.dx, d->nx, k->t);
        }
        free(r.dw);
        free(r.dx);
    }
    free(base.dw);
    free(base.dx);
}

static int sum_planes_guarded(const kernels *k, const void *src, ptrdiff_t n, ptrdiff_t count, ptrdiff_t stride,
                              double *out)
{
    int crashed = 0;
    GUARDED("sum_planes", *out = k->sum_planes(src, n, count, stride), crashed = 1);
    return !crashed;
}

/* the bias gradient's plane sums: sum_planes(dy + o*P, P, N, O*P) for every filter o */
static void check_sum_planes(const data *d)
{
    const geom *g = d->g;
    const ptrdiff_t P = g->hq * g->wq;
    int ok = 1;
    double worst = 0, *sums = malloc((size_t)g->O * sizeof(double));
    for (ptrdiff_t o = 0; o < g->O; o++) {
        double ref = 0, mag = 0, got = 0;
        for (ptrdiff_t n = 0; n < g->N; n++)
            for (ptrdiff_t p = 0; p < P; p++) {
                ref += d->dyd[(n * g->O + o) * P + p];
                mag += fabs(d->dyd[(n * g->O + o) * P + p]);
            }
        if (!sum_planes_guarded(d->k, (const char *)d->dy + (size_t)(o * P) * d->k->t.sz, P, g->N, g->O * P, &got)) {
            free(sums);
            return;
        }
        sums[o] = got;
        const double err = fabs(got - ref);
        if (!(err <= 1e-13 * mag + 1e-300)) {
            ok = 0;
            if (!(err / mag <= worst)) worst = err / mag;
        }
    }
    char det[96] = "";
    if (!ok) snprintf(det, sizeof det, "max error %.3g of the magnitude (tolerance 1e-13: a sum in double)", worst);
    report(ok, "sum_planes", det);
    same_on_every_level("sum_planes", sums, (size_t)g->O, (dtype){0, sizeof(double)});
    free(sums);
}

/* float transpose: dst[j*ldd + i] = src[i*lds + j], nothing else of dst written */
static void check_transpose(void)
{
    static const ptrdiff_t sizes[][2] = {{1, 1}, {16, 16}, {3, 17}, {17, 3}, {31, 40}, {40, 33}, {8, 64}, {64, 5}};
    const dtype tf = {1, sizeof(float)};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const ptrdiff_t rows = sizes[s][0], cols = sizes[s][1], lds = cols + 3, ldd = rows + 5;
        float *src = malloc((size_t)(rows * lds) * sizeof(float));
        double *srcd = malloc((size_t)(rows * lds) * sizeof(double));
        random_fill(src, srcd, (size_t)(rows * lds), tf);
        buf dst = balloc((size_t)(cols * ldd), tf);
        char what[64];
        snprintf(what, sizeof what, "transpose_f %tdx%td", rows, cols);
        volatile int ok = 1;
        GUARDED(what, ecp_transpose_f(src, lds, rows, cols, dst.p, ldd), ok = -1);
        if (ok == 1) {
            for (ptrdiff_t j = 0; j < cols && ok; j++)
                for (ptrdiff_t i = 0; i < ldd && ok; i++)
                    ok = i < rows ? ((float *)dst.p)[j * ldd + i] == src[i * lds + j]
                                  : is_nan_pattern(dst.p, (size_t)(j * ldd + i), tf);
            if (ok) ok = tail_intact(dst);
            report(ok, what, ok ? "" : "an element is not its transpose, or dst was written outside rows x cols");
        }
        free(src); free(srcd); free(dst.p);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Winograd F(2x2, 3x3) (ecp_direct_wino.h, entry points in ecp_wino_entry.h), called as
 * _winograd.pxi's drivers call them: the forward (_run_wino), dx as the convolution of dY with the
 * flipped filters at padding 2 - p (_run_wino with flip), dW from per-slot du and the reduction
 * (_run_wino_dw), db from the plane sums. Tolerance per element: |error| <= WINO_TOL_F (float) or
 * WINO_TOL_D (double) times the sum of the direct terms' magnitudes, as for the direct kernels
 * but looser: the transforms add values before the products and cancel after them, so an output
 * can carry a few times a float ulp of the transformed magnitudes. Not checked across levels:
 * ecp_direct_wino.h promises the same bits over items, blocks and thread counts only. */

#define WINO_TOL_F 4e-6
#define WINO_TOL_D 1e-14

#define WINO_WRAP(suf)                                                                                 \
    static void wweights_##suf(const void *w, ptrdiff_t O, ptrdiff_t C, int flip, ptrdiff_t ob0,      \
                               ptrdiff_t ob1, void *u)                                                 \
    {                                                                                                  \
        ecp_wino_weights_##suf(w, O, C, flip, ob0, ob1, u);                                            \
    }                                                                                                  \
    static void wweights_shared_##suf(const void *w, ptrdiff_t O, ptrdiff_t C, int flip, void *u)     \
    {                                                                                                  \
        ecp_wino_weights_shared_##suf(w, O, C, flip, u);                                               \
    }                                                                                                  \
    static void witem_##suf(const void *x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, const void *u,      \
                            ptrdiff_t O, const void *bias, void *y, ptrdiff_t hq, ptrdiff_t wq,        \
                            ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t tr0, ptrdiff_t ntr, ptrdiff_t ph,    \
                            ptrdiff_t pw, void *vbuf, void *mbuf, void *rbuf)                          \
    {                                                                                                  \
        ecp_wino_item_##suf(x, C, H, W, u, O, bias, y, hq, wq, n0, nb, tr0, ntr, ph, pw, vbuf, mbuf, \
                            rbuf);                                                                     \
    }                                                                                                  \
    static void wdw_item_##suf(const void *x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, const void *dy,  \
                               ptrdiff_t O, ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb,    \
                               ptrdiff_t tr0, ptrdiff_t ntr, ptrdiff_t ph, ptrdiff_t pw, void *du,     \
                               int fresh, void *vbuf, void *vt, void *mbuf)                            \
    {                                                                                                  \
        ecp_wino_dw_item_##suf(x, C, H, W, dy, O, hq, wq, n0, nb, tr0, ntr, ph, pw, du, fresh, vbuf,  \
                               vt, mbuf);                                                              \
    }                                                                                                  \
    static void wdw_reduce_##suf(const void *du, ptrdiff_t n_slots, ptrdiff_t stride, ptrdiff_t O,    \
                                 ptrdiff_t C, ptrdiff_t Cp, ptrdiff_t o0, ptrdiff_t o1, void *dw)      \
    {                                                                                                  \
        ecp_wino_dw_reduce_##suf(du, n_slots, stride, O, C, Cp, o0, o1, dw);                           \
    }
WINO_WRAP(f)
WINO_WRAP(d)

typedef struct {
    double tol;
    void (*weights)(const void *w, ptrdiff_t O, ptrdiff_t C, int flip, ptrdiff_t ob0, ptrdiff_t ob1, void *u);
    void (*weights_shared)(const void *w, ptrdiff_t O, ptrdiff_t C, int flip, void *u);
    void (*item)(const void *x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, const void *u, ptrdiff_t O, const void *bias,
                 void *y, ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t tr0, ptrdiff_t ntr,
                 ptrdiff_t ph, ptrdiff_t pw, void *vbuf, void *mbuf, void *rbuf);
    void (*dw_item)(const void *x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, const void *dy, ptrdiff_t O, ptrdiff_t hq,
                    ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t tr0, ptrdiff_t ntr, ptrdiff_t ph, ptrdiff_t pw,
                    void *du, int fresh, void *vbuf, void *vt, void *mbuf);
    void (*dw_reduce)(const void *du, ptrdiff_t n_slots, ptrdiff_t stride, ptrdiff_t O, ptrdiff_t C, ptrdiff_t Cp,
                      ptrdiff_t o0, ptrdiff_t o1, void *dw);
} wkernels;

static const wkernels WKERNELS[2] = {
    {WINO_TOL_F, wweights_f, wweights_shared_f, witem_f, wdw_item_f, wdw_reduce_f},
    {WINO_TOL_D, wweights_d, wweights_shared_d, witem_d, wdw_item_d, wdw_reduce_d},
};

/* _scratch.pxi's _row: n elements rounded up to whole 64-byte lines */
static ptrdiff_t row64(ptrdiff_t n, size_t sz) { return (ptrdiff_t)(((size_t)n * sz + 63) / 64 * 64 / sz); }

/* Items over tile rows (th of them per sample), as _winograd.pxi deals them:
 * 0: one item, the whole batch; 1: two runs of samples (n_sitems 2); 2: one tile row (rows = 2)
 * of one sample each; 3: two tile rows (rows = 4) of one sample each. rev: the items in reverse
 * order (the forward's items run on any thread in any order; dW's slots run theirs in order). */
static int wino_items(ptrdiff_t N, ptrdiff_t th, int split, int rev, item *it)
{
    int n = 0;
    if (split == 0) it[n++] = (item){0, N, 0, th};
    else if (split == 1)
        for (int b = 0; b < 2; b++) it[n++] = (item){b * N / 2, (b + 1) * N / 2 - b * N / 2, 0, th};
    else {
        const ptrdiff_t rb = split == 2 ? 1 : 2;
        for (ptrdiff_t s = 0; s < N; s++)
            for (ptrdiff_t t0 = 0; t0 < th; t0 += rb) it[n++] = (item){s, 1, t0, th - t0 < rb ? th - t0 : rb};
    }
    if (rev)
        for (int i = 0; i < n / 2; i++) {
            const item tmp = it[i];
            it[i] = it[n - 1 - i];
            it[n - 1 - i] = tmp;
        }
    return n;
}

/* One stride-1 3x3 convolution as the Winograd kernels see it: x (N, C, H, W) into y (N, O, hq,
 * wq), padding (ph, pw), the filters w transformed with flip; ref / mag: the reference and its
 * terms' magnitudes */
typedef struct {
    const char *name;
    const void *x, *w, *bias;
    ptrdiff_t N, C, H, W, O, hq, wq, ph, pw;
    int flip;
    const double *ref, *mag;
} wconv;

/* U = G g G^T in double, against ecp_wino_weights (all blocks at once, in two shares, and the
 * _shared form, which without OpenMP does all of them): zeros past O exact, the shares the same
 * bits. */
static void check_wino_weights(const data *d, const wkernels *wk, const wconv *c)
{
    const kernels *k = d->k;
    const ptrdiff_t O = c->O, C = c->C, nob = (O + 7) / 8, nu = 16 * nob * 8 * C;
    char what[96];
    snprintf(what, sizeof what, "wino_weights%s", c->flip ? " (flipped, dx)" : "");
    buf u = balloc((size_t)nu, k->t), u2 = balloc((size_t)nu, k->t), u3 = balloc((size_t)nu, k->t);
    double *ref = malloc((size_t)nu * sizeof(double)), *mag = malloc((size_t)nu * sizeof(double));
    static const double G[4][3] = {{1, 0, 0}, {.5, .5, .5}, {.5, -.5, .5}, {0, 0, 1}};
    for (ptrdiff_t ob = 0; ob < nob; ob++)
        for (ptrdiff_t cc = 0; cc < C; cc++)
            for (ptrdiff_t m = 0; m < 8; m++) {
                const ptrdiff_t o = ob * 8 + m;
                for (int a = 0; a < 4; a++)
                    for (int b = 0; b < 4; b++) {
                        double s = 0, sm = 0;
                        for (int i = 0; i < 3 && o < O; i++)
                            for (int j = 0; j < 3; j++) {
                                /* flip: g(o, c) = w[c][o] rotated, w being the layer's (c = its O) */
                                const double g = c->flip ? d->wd[((cc * O + o) * 3 + 2 - i) * 3 + 2 - j]
                                                         : d->wd[((o * C + cc) * 3 + i) * 3 + j];
                                s += G[a][i] * g * G[b][j];
                                sm += fabs(G[a][i] * g * G[b][j]);
                            }
                        const size_t e = (size_t)((((a * 4 + b) * nob + ob) * C + cc) * 8 + m);
                        ref[e] = s;
                        mag[e] = sm;
                    }
            }
    int crashed = 0;
    GUARDED(what, (wk->weights(c->w, O, C, c->flip, 0, nob, u.p), wk->weights(c->w, O, C, c->flip, 0, nob / 2, u2.p),
                   wk->weights(c->w, O, C, c->flip, nob / 2, nob, u2.p), wk->weights_shared(c->w, O, C, c->flip, u3.p)),
            crashed = 1);
    if (!crashed) {
        close_enough(what, u.p, NULL, ref, mag, (size_t)nu, k->t, wk->tol);
        char w2[160];
        snprintf(w2, sizeof w2, "%s: no write past its 16*ceil(O/8)*8*C elements", what);
        report(tail_intact(u) && tail_intact(u2) && tail_intact(u3), w2, "");
        snprintf(w2, sizeof w2, "%s in two shares of the filter blocks: the bits of one call", what);
        same_bits(w2, u2.p, u.p, (size_t)nu, k->t);
        snprintf(w2, sizeof w2, "%s_shared: the bits of one call", what);
        same_bits(w2, u3.p, u.p, (size_t)nu, k->t);
    }
    free(u.p); free(u2.p); free(u3.p); free(ref); free(mag);
}

/* _run_wino over the items of split; y starts as NaN. Returns y (caller frees) or NULL after a
 * crash. dirty: the scratch filled by a run of the whole batch first (a thread's scratch holds
 * what its last item left). */
static void *run_wino_conv(const data *d, const wkernels *wk, const wconv *c, int split, int dirty)
{
    const kernels *k = d->k;
    const ptrdiff_t NR = k->nr(), O = c->O, nob = (O + 7) / 8, th = (c->hq + 1) / 2;
    const ptrdiff_t ny = c->N * O * c->hq * c->wq, P = c->hq * c->wq;
    item its[512];
    const volatile int n_items = wino_items(c->N, th, split, split > 0, its);
    static const char *const SPLITS[] = {"one item", "two runs of samples", "items of one tile row", "items of two tile rows"};
    char what[200];
    snprintf(what, sizeof what, "%s, %s%s", c->name, SPLITS[split], dirty ? ", scratch used before" : "");
    /* scratch as _winograd.pxi sizes it */
    buf u = balloc((size_t)(16 * nob * 8 * c->C), k->t);
    buf vbuf = balloc((size_t)(16 * (c->C + 1) * NR), k->t);
    buf mbuf = balloc((size_t)(16 * (nob * 8 + 1) * NR), k->t);
    buf rbuf = balloc((size_t)(4 * (2 * NR + 2)), k->t);
    buf y = balloc((size_t)ny, k->t);
    void *result = NULL;
    GUARDED(what, wk->weights_shared(c->w, O, c->C, c->flip, u.p), goto out);
    if (dirty) {
        GUARDED(what, wk->item(c->x, c->C, c->H, c->W, u.p, O, c->bias, y.p, c->hq, c->wq, 0, c->N, 0, th, c->ph, c->pw,
                               vbuf.p, mbuf.p, rbuf.p), goto out);
        fill_nan(y.p, (size_t)ny, k->t);
    }
    for (volatile int i = 0; i < n_items; i++) {
        const item it = its[i];
        GUARDED(what, wk->item(c->x, c->C, c->H, c->W, u.p, O, c->bias, y.p, c->hq, c->wq, it.n0, it.nb, it.r0, it.nr,
                               c->ph, c->pw, vbuf.p, mbuf.p, rbuf.p), goto out);
        if (i == 0 && n_items > 1) {   /* output rows 2*tr0 .. 2*(tr0 + ntr) - 1 of its samples, no other */
            int ok = 1;
            for (ptrdiff_t n = 0; n < c->N && ok; n++)
                for (ptrdiff_t o = 0; o < O && ok; o++)
                    for (ptrdiff_t p = 0; p < P && ok; p++) {
                        const ptrdiff_t r = p / c->wq;
                        const int mine = n >= it.n0 && n < it.n0 + it.nb && r >= 2 * it.r0 && r < 2 * (it.r0 + it.nr);
                        ok = mine != is_nan_pattern(y.p, (size_t)((n * O + o) * P + p), k->t);
                    }
            char w2[320];
            snprintf(w2, sizeof w2, "%s: item (n0 %td, nb %td, tr0 %td, ntr %td) writes its outputs, no other", what,
                     it.n0, it.nb, it.r0, it.nr);
            report(ok, w2, ok ? "" : "an output outside the item was written, or one of its own was not");
        }
    }
    close_enough(what, y.p, NULL, c->ref, c->mag, (size_t)ny, k->t, wk->tol);
    {
        char w3[320];
        snprintf(w3, sizeof w3, "%s: no write past y or the scratch", what);
        const int ok = tail_intact(y) && tail_intact(u) && tail_intact(vbuf) && tail_intact(mbuf) && tail_intact(rbuf);
        report(ok, w3, ok ? "" : "a buffer's tail was written (y, u, vbuf, mbuf or rbuf)");
    }
    result = y.p;
    y.p = NULL;
out:
    free(u.p); free(vbuf.p); free(mbuf.p); free(rbuf.p); free(y.p);
    return result;
}

/* Each output from its own tile alone: the same bits over any items, in any order, whatever the
 * scratch held (so whatever the thread count) */
static void check_wino_conv(const data *d, const wkernels *wk, const wconv *c)
{
    static const int cases[][2] = {{0, 0}, {1, 0}, {2, 0}, {3, 1}, {0, 1}};
    void *base = NULL;
    check_wino_weights(d, wk, c);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i][0] == 1 && c->N < 2) continue;
        void *y = run_wino_conv(d, wk, c, cases[i][0], cases[i][1]);
        if (!y) continue;
        if (!base) {
            base = y;
            continue;
        }
        char what[200];
        snprintf(what, sizeof what, "%s, split %d%s: the bits of one item", c->name, cases[i][0],
                 cases[i][1] ? ", scratch used before" : "");
        same_bits(what, y, base, (size_t)(c->N * c->O * c->hq * c->wq), d->k->t);
        free(y);
    }
    free(base);
}

/* _run_wino_dw's dW: the items of split dealt to n_slots slots in contiguous runs, each slot's
 * du summed by its items in order (the first fresh), then ecp_wino_dw_reduce a filter at a time.
 * rev: the slots run last first on one scratch (a thread's scratch holds another slot's data).
 * Returns dW (O x C x 3 x 3; caller frees) or NULL after a crash. */
static void *run_wino_dw(const data *d, const wkernels *wk, int split, ptrdiff_t slots, int rev)
{
    const geom *g = d->g;
    const kernels *k = d->k;
    const ptrdiff_t NR = k->nr(), O = g->O, C = g->C, nob = (O + 7) / 8, Cp = up(C, NR), th = (g->hq + 1) / 2;
    const ptrdiff_t used = 16 * nob * 8 * Cp, slot = row64(used, k->t.sz);
    item its[512];
    const int n_items = wino_items(g->N, th, split, 0, its);
    const volatile ptrdiff_t n_slots = slots < n_items ? slots : n_items;
    static const char *const SPLITS[] = {"one item", "two runs of samples", "items of one tile row", "items of two tile rows"};
    char what[200];
    snprintf(what, sizeof what, "wino dW, %s, %td slot%s%s", SPLITS[split], n_slots, n_slots > 1 ? "s" : "",
             rev ? ", last slot first" : "");
    /* scratch as _winograd.pxi sizes it */
    buf du = balloc((size_t)(n_slots * slot), k->t);
    buf vbuf = balloc((size_t)(16 * (C + 1) * NR), k->t);
    buf vt = balloc((size_t)(16 * NR * Cp), k->t);
    buf mbuf = balloc((size_t)(16 * (nob * 8 + 1) * NR), k->t);
    buf dw = balloc(d->nw, k->t), dw1 = balloc(d->nw, k->t);
    void *result = NULL;
    for (volatile ptrdiff_t ss = 0; ss < n_slots; ss++) {
        const volatile ptrdiff_t s = rev ? n_slots - 1 - ss : ss;
        const ptrdiff_t it0 = s * n_items / n_slots, it1 = (s + 1) * n_items / n_slots;
        for (volatile ptrdiff_t i = it0; i < it1; i++)
            GUARDED(what, wk->dw_item(d->x, C, g->H, g->W, d->dy, O, g->hq, g->wq, its[i].n0, its[i].nb, its[i].r0,
                                      its[i].nr, g->ph, g->pw, (char *)du.p + (size_t)(s * slot) * k->t.sz, i == it0,
                                      vbuf.p, vt.p, mbuf.p), goto out);
    }
    {   /* each slot's du within its 16*ceil(O/8)*8*Cp elements: its line padding untouched */
        char w1[300];
        snprintf(w1, sizeof w1, "%s: each slot writes its du, not the padding to the next line", what);
        int ok = 1;
        for (ptrdiff_t s = 0; s < n_slots && ok; s++)
            for (ptrdiff_t e = s * slot + used; e < (s + 1) * slot && ok; e++) ok = is_nan_pattern(du.p, (size_t)e, k->t);
        report(ok, w1, ok ? "" : "an element between a slot's du and the next slot was written");
    }
    for (volatile ptrdiff_t o = 0; o < O; o++) {
        GUARDED(what, wk->dw_reduce(du.p, n_slots, slot, O, C, Cp, o, o + 1, dw.p), goto out);
        if (o == 0 && O > 1) {
            char w2[300];
            snprintf(w2, sizeof w2, "%s: dw_reduce of filter 0 writes its row only", what);
            untouched(w2, dw, (size_t)(C * 9), d->nw);
        }
    }
    GUARDED(what, wk->dw_reduce(du.p, n_slots, slot, O, C, Cp, 0, O, dw1.p), goto out);
    {
        char w3[300];
        snprintf(w3, sizeof w3, "%s: dw_reduce of all filters at once, the bits of one at a time", what);
        same_bits(w3, dw1.p, dw.p, d->nw, k->t);
        snprintf(w3, sizeof w3, "%s: dW", what);
        close_enough(w3, dw.p, NULL, d->dw, d->adw, d->nw, k->t, wk->tol);
        snprintf(w3, sizeof w3, "%s: no write past dW, du or the scratch", what);
        const int ok = tail_intact(du) && tail_intact(vbuf) && tail_intact(vt) && tail_intact(mbuf) &&
                       tail_intact(dw) && tail_intact(dw1);
        report(ok, w3, ok ? "" : "a buffer's tail was written (du, vbuf, vt, mbuf or dW)");
    }
    result = dw.p;
    dw.p = NULL;
out:
    free(du.p); free(vbuf.p); free(vt.p); free(mbuf.p); free(dw.p); free(dw1.p);
    return result;
}

/* dW: a slot's du is one chain over its tiles in order (tiles past a block's end add exact zeros),
 * so in one slot any cut of the batch into items in order gives the same bits; with more slots,
 * the same bits whichever slot runs first on the scratch */
static void check_wino_dw(const data *d, const wkernels *wk)
{
    char what[200];
    void *base = run_wino_dw(d, wk, 0, 1, 0);
    static const int one_slot[] = {1, 2, 3};
    for (size_t i = 0; i < 3 && base; i++) {
        if (one_slot[i] == 1 && d->g->N < 2) continue;
        void *r = run_wino_dw(d, wk, one_slot[i], 1, 0);
        if (!r) continue;
        snprintf(what, sizeof what, "wino dW, split %d in one slot: the bits of one item", one_slot[i]);
        same_bits(what, r, base, d->nw, d->k->t);
        free(r);
    }
    static const int multi[][2] = {{1, 2}, {2, 3}};
    for (size_t i = 0; i < 2; i++) {
        void *a = run_wino_dw(d, wk, multi[i][0], multi[i][1], 0), *b = run_wino_dw(d, wk, multi[i][0], multi[i][1], 1);
        if (a && b) {
            snprintf(what, sizeof what, "wino dW, split %d in %d slots: the same bits whichever slot runs first",
                     multi[i][0], multi[i][1]);
            same_bits(what, b, a, d->nw, d->k->t);
        }
        free(a);
        free(b);
    }
    free(base);
}

/* Winograd geometries (stride 1, 3x3): odd planes and channel counts, paddings 0..2 (ph != pw
 * too), N = 1, C past the products' L1 block (KC = 192 on AVX-512) and not a multiple of NR, O
 * not a multiple of 8, a plane of one tile, rows of more than VL tiles, and outputs cut short
 * of the full plane (the forward and dW take them; dx needs the full one) */
typedef struct {
    const char *name;
    ptrdiff_t N, C, H, W, O;
    ptrdiff_t pads[3][2];
    ptrdiff_t cut_h, cut_w;   /* rows, columns short of the full output */
} wshape;

static const wshape WSHAPES[] = {
    {"wino-odd", 3, 3, 13, 11, 5, {{0, 0}, {1, 1}, {2, 2}}, 0, 0},
    {"wino-N1", 1, 17, 9, 7, 11, {{0, 0}, {1, 2}, {2, 1}}, 0, 0},
    {"wino-wide", 2, 5, 5, 37, 9, {{1, 1}, {0, 2}, {-1, -1}}, 0, 0},
    {"wino-deepC", 1, 200, 6, 5, 3, {{1, 1}, {-1, -1}}, 0, 0},
    {"wino-16", 2, 16, 8, 8, 16, {{1, 1}, {-1, -1}}, 0, 0},
    {"wino-tiny", 2, 1, 3, 3, 1, {{0, 0}, {1, 1}, {2, 2}}, 0, 0},
    {"wino-cut", 2, 6, 10, 9, 7, {{1, 1}, {2, 0}, {-1, -1}}, 1, 2},
};

static void check_wino_geometry(const geom *g, int t, int guard_end)
{
    const kernels *k = &KERNELS[t];
    const wkernels *wk = &WKERNELS[t];
    char gt[192];
    geom_text(g, gt, sizeof gt);
    snprintf(ctx, sizeof ctx, "[%s %s %s]", level_name(level_now), k->name, gt);
    data d = data_make(g, k, guard_end);
    const int full = g->hq == g->H + 2 * g->ph - 2 && g->wq == g->W + 2 * g->pw - 2;
    const wconv fwd = {"wino forward", d.x, d.w, d.b, g->N, g->C, g->H, g->W, g->O, g->hq, g->wq, g->ph, g->pw, 0,
                       d.y, d.ay};
    const wconv dx = {"wino dx (flipped filters)", d.dy, d.w, NULL, g->N, g->O, g->hq, g->wq, g->C, g->H, g->W,
                      2 - g->ph, 2 - g->pw, 1, d.dx, d.adx};
    if (level_now == ECP_ISA_GENERIC) {   /* the items do nothing there; the filter transform is portable */
        check_wino_weights(&d, wk, &fwd);
        check_wino_weights(&d, wk, &dx);
    } else {
        check_wino_conv(&d, wk, &fwd);
        if (full && g->ph <= 2 && g->pw <= 2) check_wino_conv(&d, wk, &dx);
        check_wino_dw(&d, wk);
    }
    check_sum_planes(&d);   /* db: _run_wino_dw sums dY's planes with ecp_sum_planes */
    data_free(&d);
}

static void run_wino_level(void)
{
    int variant = 0;
    for (size_t si = 0; si < sizeof WSHAPES / sizeof WSHAPES[0]; si++) {
        const wshape *sh = &WSHAPES[si];
        for (int pi = 0; pi < 3 && sh->pads[pi][0] >= 0; pi++) {
            const ptrdiff_t ph = sh->pads[pi][0], pw = sh->pads[pi][1];
            geom g = {sh->name, sh->N, sh->C, sh->H, sh->W, sh->O, 3, 3, ph, pw, 1, 0, 0, 0, 0, sh->C * 9};
            g.hq = sh->H + 2 * ph - 2 - sh->cut_h;
            g.wq = sh->W + 2 * pw - 2 - sh->cut_w;
            if (g.hq < 1 || g.wq < 1) continue;
            for (int t = 0; t < 2; t++) check_wino_geometry(&g, t, variant++ % 2);
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * The geometries: /work/sweep.py's shapes (batches cut down for the emulator), each with its
 * paddings, stride 1 and stride 2 (Easy Convolution: offsets oy, ox in 0..1) */

typedef struct {
    const char *name;
    ptrdiff_t N, C, H, W, O, kh, kw;
    ptrdiff_t pads[3][2];   /* (ph, pw) pairs; {-1, -1} ends the list */
} shape;

static const shape SHAPES[] = {
    {"paper-conv1", 2, 1, 28, 28, 20, 5, 5, {{0, 0}, {-1, -1}}},
    {"paper-conv2", 3, 20, 12, 12, 32, 5, 5, {{0, 0}, {1, 2}, {-1, -1}}},
    {"vgg-like", 2, 64, 10, 10, 64, 3, 3, {{1, 1}, {-1, -1}}},
    {"odd-small", 3, 3, 13, 11, 5, 3, 3, {{0, 0}, {1, 1}, {2, 2}}},
    {"odd-4x4", 2, 7, 9, 15, 33, 4, 4, {{0, 0}, {1, 1}, {2, 2}}},
    {"odd-4x5", 3, 9, 11, 13, 40, 4, 5, {{0, 0}, {1, 1}, {2, 2}}},
    {"split-3x3", 2, 16, 10, 10, 24, 3, 3, {{0, 0}, {1, 1}, {-1, -1}}},
    {"rows-3x3", 5, 32, 7, 9, 64, 3, 3, {{0, 0}, {1, 1}, {-1, -1}}},
    {"1x1", 2, 8, 10, 10, 16, 1, 1, {{0, 0}, {1, 1}, {-1, -1}}},
    {"tiny-1x1", 1, 1, 2, 2, 1, 1, 1, {{0, 0}, {1, 1}, {-1, -1}}},
    {"N1", 1, 20, 12, 12, 32, 5, 5, {{0, 0}, {2, 2}, {-1, -1}}},
    {"7x7", 2, 3, 17, 19, 10, 7, 7, {{3, 3}, {0, 0}, {-1, -1}}},
    {"3x7", 3, 4, 15, 16, 12, 3, 7, {{1, 3}, {0, 0}, {-1, -1}}},
    {"wide-2x18", 2, 2, 6, 40, 3, 2, 18, {{0, 0}, {1, 9}, {-1, -1}}},
};

static int geom_set(geom *g, const shape *sh, ptrdiff_t ph, ptrdiff_t pw, ptrdiff_t s, ptrdiff_t oy, ptrdiff_t ox)
{
    const ptrdiff_t Ho = sh->H + 2 * ph - sh->kh + 1, Wo = sh->W + 2 * pw - sh->kw + 1;
    *g = (geom){sh->name, sh->N, sh->C, sh->H, sh->W, sh->O, sh->kh, sh->kw, ph, pw, s, oy, ox, 0, 0, 0};
    g->K = sh->C * sh->kh * sh->kw;
    g->hq = s == 1 ? Ho : Ho / 2;
    g->wq = s == 1 ? Wo : Wo / 2;
    return g->hq >= 1 && g->wq >= 1;
}

/* ---------------------------------------------------------------------------------------------
 * The polyphase stride-2 3x3 forward (ecp_direct_poly.h, entry points in ecp_wino_entry.h), called
 * as _winograd.pxi's _run_poly calls it: the filter transform shared, then the items over tile
 * rows, dealt as _run_wino's, at the grid offset folded into the padding (ph - oy, pw - ox), on
 * the Easy Convolution geometries of POLY_SHAPES (stride 2, 3x3, all four offsets oy, ox). The
 * tolerance is the Winograd forward's (WINO_TOL_F / _D times the sum of the direct terms'
 * magnitudes: F(2x2, 2x2) adds and cancels as F(2x2, 3x3) does; the tall tiles' F(4, 2) down the
 * rows stays within it too). Not checked across levels: the products' blocks (KC) follow the
 * level's tile width. */

#define POLY_WRAP(suf)                                                                                 \
    static void pweights_##suf(const void *w, ptrdiff_t O, ptrdiff_t C, ptrdiff_t ob0, ptrdiff_t ob1, \
                               void *u)                                                                \
    {                                                                                                  \
        ecp_poly_weights_##suf(3, 0, w, O, C, ob0, ob1, u);                                            \
    }                                                                                                  \
    static void pweights_shared_##suf(const void *w, ptrdiff_t O, ptrdiff_t C, void *u)               \
    {                                                                                                  \
        ecp_poly_weights_shared_##suf(3, 0, w, O, C, u);                                               \
    }                                                                                                  \
    static void pitem_##suf(const void *x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, const void *u,      \
                            ptrdiff_t O, const void *bias, void *y, ptrdiff_t hq, ptrdiff_t wq,        \
                            ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t tr0, ptrdiff_t ntr, ptrdiff_t ph,    \
                            ptrdiff_t pw, void *vbuf, void *mbuf)                                      \
    {                                                                                                  \
        ecp_poly_item_##suf(3, 0, x, C, H, W, u, O, bias, y, hq, wq, n0, nb, tr0, ntr, ph, pw, vbuf,   \
                            mbuf);                                                                     \
    }                                                                                                  \
    static void pdw_item_##suf(const void *x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, const void *dy,  \
                               ptrdiff_t O, ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb,    \
                               ptrdiff_t tr0, ptrdiff_t ntr, ptrdiff_t ph, ptrdiff_t pw, void *du,     \
                               int fresh, void *vbuf, void *mt, void *mbuf)                            \
    {                                                                                                  \
        ecp_poly_dw_item_##suf(3, 0, x, C, H, W, dy, O, hq, wq, n0, nb, tr0, ntr, ph, pw, du, fresh,   \
                               vbuf, mt, mbuf);                                                        \
    }                                                                                                  \
    static void pdx_weights_shared_##suf(const void *w, ptrdiff_t O, ptrdiff_t C, void *u)            \
    {                                                                                                  \
        ecp_poly_dx_weights_shared_##suf(3, w, O, C, u);                                               \
    }                                                                                                  \
    static void pdx_item_##suf(const void *dy, ptrdiff_t O, ptrdiff_t hq, ptrdiff_t wq, const void *u, \
                               ptrdiff_t C, void *dx, ptrdiff_t H, ptrdiff_t W, ptrdiff_t n0,          \
                               ptrdiff_t nb, ptrdiff_t s0, ptrdiff_t nts, ptrdiff_t ph, ptrdiff_t pw,  \
                               void *vbuf, void *mbuf)                                                 \
    {                                                                                                  \
        ecp_poly_dx_item_##suf(3, dy, O, hq, wq, u, C, dx, H, W, n0, nb, s0, nts, ph, pw, vbuf, mbuf); \
    }                                                                                                  \
    static void pbox_weights_shared_##suf(const void *w, ptrdiff_t O, ptrdiff_t C, void *u)           \
    {                                                                                                  \
        ecp_poly_weights_shared_##suf(3, 1, w, O, C, u);                                               \
    }                                                                                                  \
    static void pbox_item_##suf(const void *x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, const void *u,  \
                                ptrdiff_t O, const void *bias, void *y, ptrdiff_t hq, ptrdiff_t wq,    \
                                ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t tr0, ptrdiff_t ntr,              \
                                ptrdiff_t ph, ptrdiff_t pw, void *vbuf, void *mbuf)                    \
    {                                                                                                  \
        ecp_poly_item_##suf(3, 1, x, C, H, W, u, O, bias, y, hq, wq, n0, nb, tr0, ntr, ph, pw, vbuf,   \
                            mbuf);                                                                     \
    }                                                                                                  \
    static void pbox_dw_item_##suf(const void *x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,              \
                                   const void *dy, ptrdiff_t O, ptrdiff_t hq, ptrdiff_t wq,            \
                                   ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t tr0, ptrdiff_t ntr,           \
                                   ptrdiff_t ph, ptrdiff_t pw, void *du, int fresh, void *vbuf,        \
                                   void *mt, void *mbuf)                                               \
    {                                                                                                  \
        ecp_poly_dw_item_##suf(3, 1, x, C, H, W, dy, O, hq, wq, n0, nb, tr0, ntr, ph, pw, du, fresh,   \
                               vbuf, mt, mbuf);                                                        \
    }                                                                                                  \
    static void pbox_dw_reduce_##suf(const void *du, ptrdiff_t n_slots, ptrdiff_t stride,             \
                                     ptrdiff_t O, ptrdiff_t C, ptrdiff_t Op, ptrdiff_t c0,             \
                                     ptrdiff_t c1, void *dw)                                           \
    {                                                                                                  \
        ecp_poly_dw_reduce_##suf(3, du, n_slots, stride, O, C, Op, c0, c1, 0.25, dw);                  \
    }                                                                                                  \
    static void pbox_adjoint_##suf(const void *d, ptrdiff_t H2, ptrdiff_t W2, void *dx, ptrdiff_t C,  \
                                   ptrdiff_t H, ptrdiff_t W, ptrdiff_t ph, ptrdiff_t pw)               \
    {                                                                                                  \
        ecp_box_adjoint_##suf(d, H2, W2, dx, C, H, W, ph, pw);                                         \
    }                                                                                                  \
    static void pbox_means_##suf(const void *x, ptrdiff_t n_planes, ptrdiff_t H, ptrdiff_t W,          \
                                 ptrdiff_t ph, ptrdiff_t pw, void *xs)                                 \
    {                                                                                                  \
        ecp_box_means_##suf(x, n_planes, H, W, ph, pw, xs);                                            \
    }                                                                                                  \
    static void pdw_reduce_##suf(const void *du, ptrdiff_t n_slots, ptrdiff_t stride, ptrdiff_t O,    \
                                 ptrdiff_t C, ptrdiff_t Op, ptrdiff_t c0, ptrdiff_t c1, void *dw)      \
    {                                                                                                  \
        ecp_poly_dw_reduce_##suf(3, du, n_slots, stride, O, C, Op, c0, c1, 1, dw);                     \
    }                                                                                                  \
    static void ptall_weights_shared_##suf(const void *w, ptrdiff_t O, ptrdiff_t C, void *u)          \
    {                                                                                                  \
        ecp_polyt_weights_shared_##suf(w, O, C, u);                                                    \
    }                                                                                                  \
    static void ptall_item_##suf(const void *x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, const void *u, \
                                 ptrdiff_t O, const void *bias, void *y, ptrdiff_t hq, ptrdiff_t wq,   \
                                 ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t tr0, ptrdiff_t ntr,             \
                                 ptrdiff_t ph, ptrdiff_t pw, void *vbuf, void *mbuf)                   \
    {                                                                                                  \
        ecp_polyt_item_##suf(x, C, H, W, u, O, bias, y, hq, wq, n0, nb, tr0, ntr, ph, pw, vbuf, mbuf); \
    }
POLY_WRAP(f)
POLY_WRAP(d)

typedef struct {
    double tol;
    void (*weights)(const void *w, ptrdiff_t O, ptrdiff_t C, ptrdiff_t ob0, ptrdiff_t ob1, void *u);
    void (*weights_shared)(const void *w, ptrdiff_t O, ptrdiff_t C, void *u);
    void (*item)(const void *x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, const void *u, ptrdiff_t O, const void *bias,
                 void *y, ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t tr0, ptrdiff_t ntr,
                 ptrdiff_t ph, ptrdiff_t pw, void *vbuf, void *mbuf);
    void (*dw_item)(const void *x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, const void *dy, ptrdiff_t O, ptrdiff_t hq,
                    ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t tr0, ptrdiff_t ntr, ptrdiff_t ph, ptrdiff_t pw,
                    void *du, int fresh, void *vbuf, void *mt, void *mbuf);
    void (*dw_reduce)(const void *du, ptrdiff_t n_slots, ptrdiff_t stride, ptrdiff_t O, ptrdiff_t C, ptrdiff_t Op,
                      ptrdiff_t c0, ptrdiff_t c1, void *dw);
    void (*box_weights_shared)(const void *w, ptrdiff_t O, ptrdiff_t C, void *u);
    void (*box_item)(const void *x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, const void *u, ptrdiff_t O,
                     const void *bias, void *y, ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t tr0,
                     ptrdiff_t ntr, ptrdiff_t ph, ptrdiff_t pw, void *vbuf, void *mbuf);
    void (*box_dw_item)(const void *x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, const void *dy, ptrdiff_t O,
                        ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t tr0, ptrdiff_t ntr,
                        ptrdiff_t ph, ptrdiff_t pw, void *du, int fresh, void *vbuf, void *mt, void *mbuf);
    void (*box_dw_reduce)(const void *du, ptrdiff_t n_slots, ptrdiff_t stride, ptrdiff_t O, ptrdiff_t C,
                          ptrdiff_t Op, ptrdiff_t c0, ptrdiff_t c1, void *dw);
    void (*box_adjoint)(const void *d, ptrdiff_t H2, ptrdiff_t W2, void *dx, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W,
                        ptrdiff_t ph, ptrdiff_t pw);
    void (*dx_weights_shared)(const void *w, ptrdiff_t O, ptrdiff_t C, void *u);
    void (*box_means)(const void *x, ptrdiff_t n_planes, ptrdiff_t H, ptrdiff_t W, ptrdiff_t ph, ptrdiff_t pw,
                      void *xs);
    void (*dx_item)(const void *dy, ptrdiff_t O, ptrdiff_t hq, ptrdiff_t wq, const void *u, ptrdiff_t C, void *dx,
                    ptrdiff_t H, ptrdiff_t W, ptrdiff_t n0, ptrdiff_t nb, ptrdiff_t s0, ptrdiff_t nts, ptrdiff_t ph,
                    ptrdiff_t pw, void *vbuf, void *mbuf);
    void (*tall_weights_shared)(const void *w, ptrdiff_t O, ptrdiff_t C, void *u);
    void (*tall_item)(const void *x, ptrdiff_t C, ptrdiff_t H, ptrdiff_t W, const void *u, ptrdiff_t O,
                      const void *bias, void *y, ptrdiff_t hq, ptrdiff_t wq, ptrdiff_t n0, ptrdiff_t nb,
                      ptrdiff_t tr0, ptrdiff_t ntr, ptrdiff_t ph, ptrdiff_t pw, void *vbuf, void *mbuf);
} pkernels;

static const pkernels PKERNELS[2] = {
    {WINO_TOL_F, pweights_f, pweights_shared_f, pitem_f, pdw_item_f, pdw_reduce_f, pbox_weights_shared_f,
     pbox_item_f, pbox_dw_item_f, pbox_dw_reduce_f, pbox_adjoint_f, pdx_weights_shared_f, pbox_means_f,
     pdx_item_f, ptall_weights_shared_f, ptall_item_f},
    {WINO_TOL_D, pweights_d, pweights_shared_d, pitem_d, pdw_item_d, pdw_reduce_d, pbox_weights_shared_d,
     pbox_item_d, pbox_dw_item_d, pbox_dw_reduce_d, pbox_adjoint_d, pdx_weights_shared_d, pbox_means_d,
     pdx_item_d, ptall_weights_shared_d, ptall_item_d},
};

/* U[(R, Q)][o][c] = (t g t^T)[R][Q] in double, t the 5 x 3 map of ecp_poly_weights (rows g0,
 * g0 + g2, g2, g1, g1), at the place ecp_direct.h's layout comment gives it (written out here, not
 * taken from ecp_poly_layout): xi = (R mod 3)*3 + Q mod 3 in order, each kx[xi] = (2 or 1)*(2 or 1)*C
 * rows of ceil(O/8)*8 filters, its streams (R, Q) in order; packed [ob][k][8]. Against
 * ecp_poly_weights (all blocks at once, in two shares) and the _shared form: zeros past O exact,
 * every element written, the shares the same bits. */
static void check_poly_weights(const data *d, const pkernels *pk)
{
    const kernels *k = d->k;
    const ptrdiff_t O = d->g->O, C = d->g->C, nob = (O + 7) / 8, rows = nob * 8, nu = 25 * rows * C;
    static const double t[5][3] = {{1, 0, 0}, {1, 0, 1}, {0, 0, 1}, {0, 1, 0}, {0, 1, 0}};
    const char *what = "poly_weights";
    buf u = balloc((size_t)nu, k->t), u2 = balloc((size_t)nu, k->t), u3 = balloc((size_t)nu, k->t);
    double *ref = malloc((size_t)nu * sizeof(double)), *mag = malloc((size_t)nu * sizeof(double));
    ptrdiff_t uoff[9], kx[9], at_u = 0;
    for (int xi = 0; xi < 9; xi++) {
        kx[xi] = (xi / 3 < 2 ? 2 : 1) * (xi % 3 < 2 ? 2 : 1) * C;
        uoff[xi] = at_u;
        at_u += kx[xi] * rows;
    }
    for (int R = 0; R < 5; R++)
        for (int Q = 0; Q < 5; Q++) {
            const int xi = (R % 3) * 3 + Q % 3, nq = Q % 3 < 2 ? 2 : 1;
            const ptrdiff_t slot = (R / 3) * nq + Q / 3;
            for (ptrdiff_t o = 0; o < rows; o++)
                for (ptrdiff_t c = 0; c < C; c++) {
                    double s = 0, sm = 0;
                    for (int i = 0; i < 3 && o < O; i++)
                        for (int j = 0; j < 3; j++) {
                            const double v = t[R][i] * d->wd[((o * C + c) * 3 + i) * 3 + j] * t[Q][j];
                            s += v;
                            sm += fabs(v);
                        }
                    const size_t e = (size_t)(uoff[xi] + ((o / 8) * kx[xi] + slot * C + c) * 8 + o % 8);
                    ref[e] = s;
                    mag[e] = sm;
                }
        }
    int crashed = 0;
    GUARDED(what, (pk->weights(d->w, O, C, 0, nob, u.p), pk->weights(d->w, O, C, 0, nob / 2, u2.p),
                   pk->weights(d->w, O, C, nob / 2, nob, u2.p), pk->weights_shared(d->w, O, C, u3.p)),
            crashed = 1);
    if (!crashed) {
        close_enough(what, u.p, NULL, ref, mag, (size_t)nu, k->t, pk->tol);
        report(tail_intact(u) && tail_intact(u2) && tail_intact(u3),
               "poly_weights: no write past its 25*ceil(O/8)*8*C elements", "");
        same_bits("poly_weights in two shares of the filter blocks: the bits of one call", u2.p, u.p, (size_t)nu, k->t);
        same_bits("poly_weights_shared: the bits of one call", u3.p, u.p, (size_t)nu, k->t);
    }
    free(u.p); free(u2.p); free(u3.p); free(ref); free(mag);
}

/* _run_poly over the items of split (wino_items); y starts as NaN. After every item, the outputs
 * written are exactly those of the items run so far (output rows tile*tr0 .. tile*(tr0 + ntr) - 1
 * of their samples, tile = 2 or, tall, 4). Returns y (caller frees) or NULL after a crash. dirty:
 * the scratch filled by a run of the whole batch first. tall: the tall tiles (ecp_polyt_*), their
 * scratch as _run_poly sizes it for them (45 streams, 15 products). */
static void *run_poly(const data *d, const pkernels *pk, int split, int dirty, int tall)
{
    const geom *g = d->g;
    const kernels *k = d->k;
    const ptrdiff_t tile = tall ? 4 : 2, ns = tall ? 45 : 25, nxi = tall ? 15 : 9;
    const ptrdiff_t NR = k->nr(), O = g->O, C = g->C, nob = (O + 7) / 8, th = (g->hq + tile - 1) / tile;
    const ptrdiff_t ny = g->N * O * g->hq * g->wq, P = g->hq * g->wq, ph = g->ph - g->oy, pw = g->pw - g->ox;
    void (*weights_shared)(const void *, ptrdiff_t, ptrdiff_t, void *) = tall ? pk->tall_weights_shared
                                                                            : pk->weights_shared;
    void (*run_item)(const void *, ptrdiff_t, ptrdiff_t, ptrdiff_t, const void *, ptrdiff_t, const void *, void *,
                     ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, ptrdiff_t, void *,
                     void *) = tall ? pk->tall_item : pk->item;
    item its[512];
    const volatile int n_items = wino_items(g->N, th, split, split > 0, its);
    static const char *const SPLITS[] = {"one item", "two runs of samples", "items of one tile row", "items of two tile rows"};
    char what[200];
    snprintf(what, sizeof what, "poly forward%s, %s%s", tall ? " (tall tiles)" : "", SPLITS[split],
             dirty ? ", scratch used before" : "");
    /* scratch as _run_poly sizes it */
    buf u = balloc((size_t)(ns * nob * 8 * C), k->t);
    buf vbuf = balloc((size_t)((ns * C + nxi) * NR), k->t);
    buf mbuf = balloc((size_t)(nxi * (nob * 8 + 1) * NR), k->t);
    buf y = balloc((size_t)ny, k->t);
    unsigned char *mine = calloc((size_t)ny, 1);   /* outputs of the items run so far */
    void *result = NULL;
    int own_ok = 1;
    GUARDED(what, weights_shared(d->w, O, C, u.p), goto out);
    if (dirty) {
        GUARDED(what, run_item(d->x, C, g->H, g->W, u.p, O, d->b, y.p, g->hq, g->wq, 0, g->N, 0, th, ph, pw, vbuf.p,
                               mbuf.p), goto out);
        fill_nan(y.p, (size_t)ny, k->t);
    }
    for (volatile int i = 0; i < n_items; i++) {
        const item it = its[i];
        GUARDED(what, run_item(d->x, C, g->H, g->W, u.p, O, d->b, y.p, g->hq, g->wq, it.n0, it.nb, it.r0, it.nr, ph,
                               pw, vbuf.p, mbuf.p), goto out);
        for (ptrdiff_t n = it.n0; n < it.n0 + it.nb; n++)
            for (ptrdiff_t o = 0; o < O; o++)
                for (ptrdiff_t p = tile * it.r0 * g->wq; p < tile * (it.r0 + it.nr) * g->wq && p < P; p++)
                    mine[(n * O + o) * P + p] = 1;
        ptrdiff_t bad = -1;
        for (ptrdiff_t e = 0; e < ny && bad < 0 && own_ok; e++)
            if (mine[e] == is_nan_pattern(y.p, (size_t)e, k->t)) bad = e;
        if (bad >= 0 && own_ok) {   /* the first item at fault only */
            char w2[320], d2[96];
            snprintf(w2, sizeof w2, "%s: item (n0 %td, nb %td, tr0 %td, ntr %td) writes its outputs, no other", what,
                     it.n0, it.nb, it.r0, it.nr);
            snprintf(d2, sizeof d2, "output %td %s", bad, mine[bad] ? "not written" : "written by an item not its own");
            report(0, w2, d2);
            own_ok = 0;
        }
    }
    if (own_ok) {
        char w2[320];
        snprintf(w2, sizeof w2, "%s: each item writes its own outputs, no other", what);
        report(1, w2, "");
    }
    close_enough(what, y.p, NULL, d->y, d->ay, (size_t)ny, k->t, pk->tol);
    {
        char w3[320];
        snprintf(w3, sizeof w3, "%s: no write past y or the scratch", what);
        const int ok = tail_intact(y) && tail_intact(u) && tail_intact(vbuf) && tail_intact(mbuf);
        report(ok, w3, ok ? "" : "a buffer's tail was written (y, u, vbuf or mbuf)");
    }
    result = y.p;
    y.p = NULL;
out:
    free(u.p); free(vbuf.p); free(mbuf.p); free(y.p); free(mine);
    return result;
}

/* Each output from its own tile alone (ecp_direct_poly.h): the same bits over any items, in any
 * order, whatever the scratch held (so whatever the thread count); square and tall tiles */
static void check_poly(const data *d, const pkernels *pk)
{
    static const int cases[][2] = {{0, 0}, {1, 0}, {2, 0}, {3, 1}, {0, 1}};
    for (int tall = 0; tall < 2; tall++) {
        void *base = NULL;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            if (cases[i][0] == 1 && d->g->N < 2) continue;
            void *y = run_poly(d, pk, cases[i][0], cases[i][1], tall);
            if (!y) continue;
            if (!base) {
                base = y;
                continue;
            }
            char what[200];
            snprintf(what, sizeof what, "poly forward%s, split %d%s: the bits of one item", tall ? " (tall tiles)" : "",
                     cases[i][0], cases[i][1] ? ", scratch used before" : "");
            same_bits(what, y, base, d->ny, d->k->t);
            free(y);
        }
        free(base);
    }
}

/* _run_poly_dw's dW: the items of split dealt to n_slots slots in contiguous runs, each slot's
 * du summed by its items in order (the first fresh), then ecp_poly_dw_reduce a channel at a time.
 * rev: the slots run last first on one scratch. Returns dW (O x C x 3 x 3; caller frees) or NULL
 * after a crash. */
static void *run_poly_dw(const data *d, const pkernels *pk, int split, ptrdiff_t slots, int rev)
{
    const geom *g = d->g;
    const kernels *k = d->k;
    const ptrdiff_t NR = k->nr(), O = g->O, C = g->C, nob = (O + 7) / 8, Op = up(O, NR), th = (g->hq + 1) / 2;
    const ptrdiff_t used = Op * ecp_poly_dw_rows(3, C), slot = row64(used, k->t.sz);
    const ptrdiff_t ph = g->ph - g->oy, pw = g->pw - g->ox;
    item its[512];
    const int n_items = wino_items(g->N, th, split, 0, its);
    const volatile ptrdiff_t n_slots = slots < n_items ? slots : n_items;
    static const char *const SPLITS[] = {"one item", "two runs of samples", "items of one tile row", "items of two tile rows"};
    char what[200];
    snprintf(what, sizeof what, "poly dW, %s, %td slot%s%s", SPLITS[split], n_slots, n_slots > 1 ? "s" : "",
             rev ? ", last slot first" : "");
    /* scratch as _winograd.pxi's _run_poly_dw sizes it */
    buf du = balloc((size_t)(n_slots * slot), k->t);
    buf vbuf = balloc((size_t)((25 * C + 17) * NR), k->t);
    buf mt = balloc((size_t)(9 * NR * Op), k->t);
    buf mbuf = balloc((size_t)(9 * (nob * 8 + 1) * NR), k->t);
    buf dw = balloc(d->nw, k->t), dw1 = balloc(d->nw, k->t);
    void *result = NULL;
    for (volatile ptrdiff_t ss = 0; ss < n_slots; ss++) {
        const volatile ptrdiff_t s = rev ? n_slots - 1 - ss : ss;
        const ptrdiff_t it0 = s * n_items / n_slots, it1 = (s + 1) * n_items / n_slots;
        for (volatile ptrdiff_t i = it0; i < it1; i++)
            GUARDED(what, pk->dw_item(d->x, C, g->H, g->W, d->dy, O, g->hq, g->wq, its[i].n0, its[i].nb, its[i].r0,
                                      its[i].nr, ph, pw, (char *)du.p + (size_t)(s * slot) * k->t.sz, i == it0,
                                      vbuf.p, mt.p, mbuf.p), goto out);
    }
    {
        char w1[300];
        snprintf(w1, sizeof w1, "%s: each slot writes its du, not the padding to the next line", what);
        int ok = 1;
        for (ptrdiff_t s = 0; s < n_slots && ok; s++)
            for (ptrdiff_t e = s * slot + used; e < (s + 1) * slot && ok; e++) ok = is_nan_pattern(du.p, (size_t)e, k->t);
        report(ok, w1, ok ? "" : "an element between a slot's du and the next slot was written");
    }
    for (volatile ptrdiff_t c = 0; c < C; c++)
        GUARDED(what, pk->dw_reduce(du.p, n_slots, slot, O, C, Op, c, c + 1, dw.p), goto out);
    GUARDED(what, pk->dw_reduce(du.p, n_slots, slot, O, C, Op, 0, C, dw1.p), goto out);
    {
        char w3[300];
        snprintf(w3, sizeof w3, "%s: dw_reduce of all channels at once, the bits of one at a time", what);
        same_bits(w3, dw1.p, dw.p, d->nw, k->t);
        /* a tap's error against the largest terms' magnitude among the 9 taps of its (o, c): the
         * streams mix the taps of one window before the adjoint parts them, so a tap whose own
         * terms are all zero (a padding row) comes back as the others' rounding, not exactly 0 */
        double *amag = malloc(d->nw * sizeof(double));
        for (size_t e = 0; e < d->nw; e += 9) {
            double m = 0;
            for (size_t j = 0; j < 9; j++) m = d->adw[e + j] > m ? d->adw[e + j] : m;
            for (size_t j = 0; j < 9; j++) amag[e + j] = m;
        }
        snprintf(w3, sizeof w3, "%s: dW", what);
        close_enough(w3, dw.p, NULL, d->dw, amag, d->nw, k->t, pk->tol);
        free(amag);
        snprintf(w3, sizeof w3, "%s: no write past dW, du or the scratch", what);
        const int ok = tail_intact(du) && tail_intact(vbuf) && tail_intact(mt) && tail_intact(mbuf) &&
                       tail_intact(dw) && tail_intact(dw1);
        report(ok, w3, ok ? "" : "a buffer's tail was written (du, vbuf, mt, mbuf or dW)");
    }
    result = dw.p;
    dw.p = NULL;
out:
    free(du.p); free(vbuf.p); free(mt.p); free(mbuf.p); free(dw.p); free(dw1.p);
    return result;
}

/* dW: a slot's du is one chain over its tiles in order, so in one slot any cut of the batch into
 * items gives the same bits; with more slots, the same bits whichever slot runs first */
static void check_poly_dw(const data *d, const pkernels *pk)
{
    char what[200];
    void *base = run_poly_dw(d, pk, 0, 1, 0);
    static const int one_slot[] = {1, 2, 3};
    for (size_t i = 0; i < 3 && base; i++) {
        if (one_slot[i] == 1 && d->g->N < 2) continue;
        void *r = run_poly_dw(d, pk, one_slot[i], 1, 0);
        if (!r) continue;
        snprintf(what, sizeof what, "poly dW, split %d in one slot: the bits of one item", one_slot[i]);
        same_bits(what, r, base, d->nw, d->k->t);
        free(r);
    }
    void *a = run_poly_dw(d, pk, 2, 3, 0), *b = run_poly_dw(d, pk, 2, 3, 1);
    if (a && b) same_bits("poly dW, split 2 in 3 slots: the same bits whichever slot runs first", b, a, d->nw, d->k->t);
    free(a);
    free(b);
    free(base);
}

/* _run_poly_dx's dx over the items of split (wino_items over the dx tile rows of 4 rows); dx starts
 * as NaN and every element must be written, by its own item only. The tolerance of an element
 * is against the largest terms' magnitude of its plane: the transforms mix neighbouring dY values
 * before the products, so an element whose own terms are zero returns their rounding. Returns dx
 * (caller frees) or NULL after a crash. */
static void *run_poly_dx(const data *d, const pkernels *pk, int split)
{
    const geom *g = d->g;
    const kernels *k = d->k;
    const ptrdiff_t NR = k->nr(), O = g->O, C = g->C, H = g->H, W = g->W, HW = H * W;
    const ptrdiff_t ph = g->ph - g->oy, pw = g->pw - g->ox, mh = (ph % 4 + 4) % 4, th = (H + mh + 3) / 4;
    item its[512];
    const int n_items = wino_items(g->N, th, split, split > 0, its);
    static const char *const SPLITS[] = {"one item", "two runs of samples", "items of one tile row", "items of two tile rows"};
    char what[200];
    snprintf(what, sizeof what, "poly dx, %s", SPLITS[split]);
    /* scratch as _winograd.pxi's _run_poly_dx sizes it */
    buf u = balloc((size_t)ecp_poly_dx_usize(3, C, O), k->t);
    buf vbuf = balloc((size_t)(9 * (O + 1) * NR), k->t);
    buf mbuf = balloc((size_t)ecp_poly_dx_msize(3, C, NR), k->t);
    buf dx = balloc(d->nx, k->t);
    unsigned char *mine = calloc(d->nx, 1);
    double *amag = malloc(d->nx * sizeof(double));
    void *result = NULL;
    int own_ok = 1;
    GUARDED(what, pk->dx_weights_shared(d->w, O, C, u.p), goto out);
    for (volatile int i = 0; i < n_items; i++) {
        const item it = its[i];
        GUARDED(what, pk->dx_item(d->dy, O, g->hq, g->wq, u.p, C, dx.p, H, W, it.n0, it.nb, it.r0, it.nr, ph, pw,
                                  vbuf.p, mbuf.p), goto out);
        for (ptrdiff_t n = it.n0; n < it.n0 + it.nb; n++)
            for (ptrdiff_t c = 0; c < C; c++)
                for (ptrdiff_t y = 4 * it.r0 - mh; y < 4 * (it.r0 + it.nr) - mh; y++)
                    if (y >= 0 && y < H)
                        for (ptrdiff_t x = 0; x < W; x++) mine[(n * C + c) * HW + y * W + x] = 1;
        ptrdiff_t bad = -1;
        for (ptrdiff_t e = 0; e < (ptrdiff_t)d->nx && bad < 0 && own_ok; e++)
            if (mine[e] == is_nan_pattern(dx.p, (size_t)e, k->t)) bad = e;
        if (bad >= 0 && own_ok) {
            char w2[320], d2[96];
            snprintf(w2, sizeof w2, "%s: item (n0 %td, nb %td, s0 %td, nts %td) writes its dx rows, no other", what,
                     it.n0, it.nb, it.r0, it.nr);
            snprintf(d2, sizeof d2, "element %td %s", bad, mine[bad] ? "not written" : "written by an item not its own");
            report(0, w2, d2);
            own_ok = 0;
        }
    }
    if (own_ok) {
        char w2[320];
        snprintf(w2, sizeof w2, "%s: each item writes its own dx rows, every element, no other", what);
        report(1, w2, "");
    }
    for (size_t pl = 0; pl < d->nx / (size_t)HW; pl++) {
        double m = 0;
        for (ptrdiff_t e = 0; e < HW; e++) m = d->adx[pl * HW + e] > m ? d->adx[pl * HW + e] : m;
        for (ptrdiff_t e = 0; e < HW; e++) amag[pl * HW + e] = m;
    }
    close_enough(what, dx.p, NULL, d->dx, amag, d->nx, k->t, pk->tol);
    {
        char w3[320];
        snprintf(w3, sizeof w3, "%s: no write past dx or the scratch", what);
        const int ok = tail_intact(dx) && tail_intact(u) && tail_intact(vbuf) && tail_intact(mbuf);
        report(ok, w3, ok ? "" : "a buffer's tail was written (dx, u, vbuf or mbuf)");
    }
    result = dx.p;
    dx.p = NULL;
out:
    free(u.p); free(vbuf.p); free(mbuf.p); free(dx.p); free(mine); free(amag);
    return result;
}

/* Each dx element from its own tile alone: the same bits over any items */
static void check_poly_dx(const data *d, const pkernels *pk)
{
    void *base = run_poly_dx(d, pk, 0);
    for (int split = 1; split < 4 && base; split++) {
        if (split == 1 && d->g->N < 2) continue;
        void *r = run_poly_dx(d, pk, split);
        if (!r) continue;
        char what[200];
        snprintf(what, sizeof what, "poly dx, split %d: the bits of one item", split);
        same_bits(what, r, base, d->nx, d->k->t);
        free(r);
    }
    free(base);
}

/* Easy average pooling of a 3x3 layer on x's 2 x 2 box sums (the geometries at offset (0, 0); hq,
 * wq the pooled size): the forward (polybox_item), dW (polybox_dw_item, the reduction times 1/4)
 * and dx (the 3x3 polyphase dx on the grid of the box sums, (H + 2ph - 1) x (W + 2pw - 1), then
 * the box's adjoint), against double references built here from the box means x' of the padded
 * x; tolerance per element against the largest terms' magnitude of its plane (dx, dW: of its
 * window's taps), as the polyphase checks above. One item, one slot: the splits are the 3x3
 * kernels' own, checked above. */
static double box_x(const data *d, ptrdiff_t n, ptrdiff_t c, ptrdiff_t u, ptrdiff_t v)
{
    const geom *g = d->g;
    double s = 0;
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            const ptrdiff_t y = u + a - g->ph, x = v + b - g->pw;
            if (y >= 0 && y < g->H && x >= 0 && x < g->W) s += d->xd[((n * g->C + c) * g->H + y) * g->W + x];
        }
    return s / 4;
}

static void check_polybox(const data *d, const pkernels *pk)
{
    const geom *g = d->g;
    const kernels *k = d->k;
    const ptrdiff_t NR = k->nr(), O = g->O, C = g->C, H = g->H, W = g->W, hq = g->hq, wq = g->wq;
    const ptrdiff_t nob = (O + 7) / 8, th = (hq + 1) / 2, Op = up(O, NR), H2 = H + 2 * g->ph - 1, W2 = W + 2 * g->pw - 1;
    const size_t ny = (size_t)(g->N * O * hq * wq);
    double *ry = calloc(ny, sizeof(double)), *ay = calloc(ny, sizeof(double));
    double *rw = calloc(d->nw, sizeof(double)), *aw = calloc(d->nw, sizeof(double));
    double *rd = calloc((size_t)(g->N * C * H2 * W2), sizeof(double)), *ad = calloc((size_t)(g->N * C * H2 * W2), sizeof(double));
    double *rx = calloc(d->nx, sizeof(double)), *ax = calloc(d->nx, sizeof(double));
    for (ptrdiff_t n = 0; n < g->N; n++)
        for (ptrdiff_t o = 0; o < O; o++)
            for (ptrdiff_t r = 0; r < hq; r++)
                for (ptrdiff_t q = 0; q < wq; q++) {
                    const size_t e = (size_t)(((n * O + o) * hq + r) * wq + q);
                    const double dyv = d->dyd[e];
                    ry[e] = d->bd[o];
                    ay[e] = fabs(d->bd[o]);
                    for (ptrdiff_t c = 0; c < C; c++)
                        for (int i = 0; i < 3; i++)
                            for (int j = 0; j < 3; j++) {
                                const double xv = box_x(d, n, c, 2 * r + i, 2 * q + j);
                                const double wv = d->wd[((o * C + c) * 3 + i) * 3 + j];
                                ry[e] += wv * xv;
                                ay[e] += fabs(wv * xv);
                                rw[((o * C + c) * 3 + i) * 3 + j] += dyv * xv;
                                aw[((o * C + c) * 3 + i) * 3 + j] += fabs(dyv * xv);
                                const size_t de = (size_t)(((n * C + c) * H2 + 2 * r + i) * W2 + 2 * q + j);
                                rd[de] += wv * dyv;
                                ad[de] += fabs(wv * dyv);
                            }
                }
    for (ptrdiff_t n = 0; n < g->N; n++)   /* dx: the box's adjoint of dx' */
        for (ptrdiff_t c = 0; c < C; c++)
            for (ptrdiff_t y = 0; y < H; y++)
                for (ptrdiff_t x = 0; x < W; x++)
                    for (int a = 0; a < 2; a++)
                        for (int b = 0; b < 2; b++) {
                            const ptrdiff_t u = y + g->ph - a, v = x + g->pw - b;
                            if (u < 0 || u >= H2 || v < 0 || v >= W2) continue;
                            const size_t e = (size_t)(((n * C + c) * H + y) * W + x), de = (size_t)(((n * C + c) * H2 + u) * W2 + v);
                            rx[e] += rd[de] / 4;
                            ax[e] += ad[de] / 4;
                        }
    /* the magnitudes a transform mixes: dW per window of taps, dx per plane */
    for (size_t e = 0; e < d->nw; e += 9) {
        double m = 0;
        for (int j = 0; j < 9; j++) m = aw[e + j] > m ? aw[e + j] : m;
        for (int j = 0; j < 9; j++) aw[e + j] = m;
    }
    for (size_t pl = 0; pl < d->nx / (size_t)(H * W); pl++) {
        double m = 0;
        for (ptrdiff_t e = 0; e < H * W; e++) m = ax[pl * H * W + e] > m ? ax[pl * H * W + e] : m;
        for (ptrdiff_t e = 0; e < H * W; e++) ax[pl * H * W + e] = m;
    }
    buf u = balloc((size_t)(25 * nob * 8 * C), k->t), vbuf = balloc((size_t)((25 * C + 17) * NR), k->t);
    buf mbuf = balloc((size_t)(9 * (nob * 8 + 1) * NR), k->t), y = balloc(ny, k->t);
    buf du = balloc((size_t)(Op * ecp_poly_dw_rows(3, C)), k->t), mt = balloc((size_t)(9 * NR * Op), k->t);
    buf dw = balloc(d->nw, k->t);
    buf ud = balloc((size_t)ecp_poly_dx_usize(3, C, O), k->t), vd = balloc((size_t)(9 * (O + 1) * NR), k->t);
    buf md = balloc((size_t)ecp_poly_dx_msize(3, C, NR), k->t), dd = balloc((size_t)(g->N * C * H2 * W2), k->t);
    buf dx = balloc(d->nx, k->t);
    const size_t ysz = k->t.sz;
    GUARDED("box forward", pk->box_weights_shared(d->w, O, C, u.p), goto out);
    GUARDED("box forward", pk->box_item(d->x, C, H, W, u.p, O, d->b, y.p, hq, wq, 0, g->N, 0, th, g->ph, g->pw,
                                        vbuf.p, mbuf.p), goto out);
    close_enough("box forward (easy average pooling on the box sums)", y.p, NULL, ry, ay, ny, k->t, pk->tol);
    GUARDED("box dW", pk->box_dw_item(d->x, C, H, W, d->dy, O, hq, wq, 0, g->N, 0, th, g->ph, g->pw, du.p, 1,
                                      vbuf.p, mt.p, mbuf.p), goto out);
    GUARDED("box dW", pk->box_dw_reduce(du.p, 1, 0, O, C, Op, 0, C, dw.p), goto out);
    close_enough("box dW (on the box sums, times 1/4)", dw.p, NULL, rw, aw, d->nw, k->t, pk->tol);
    GUARDED("box dx", pk->dx_weights_shared(d->w, O, C, ud.p), goto out);
    for (volatile ptrdiff_t n = 0; n < g->N; n++) {
        char *dyn = (char *)d->dy + (size_t)(n * O * hq * wq) * ysz, *ddn = (char *)dd.p + (size_t)(n * C * H2 * W2) * ysz;
        GUARDED("box dx", pk->dx_item(dyn, O, hq, wq, ud.p, C, ddn, H2, W2, 0, 1, 0, (H2 + 3) / 4, 0, 0, vd.p, md.p),
                goto out);
        GUARDED("box dx", pk->box_adjoint(ddn, H2, W2, (char *)dx.p + (size_t)(n * C * H * W) * ysz, C, H, W, g->ph,
                                          g->pw), goto out);
    }
    close_enough("box dx (the 3x3 dx on the box grid, then the box's adjoint)", dx.p, NULL, rx, ax, d->nx, k->t,
                 pk->tol);
    {
        const int ok = tail_intact(u) && tail_intact(vbuf) && tail_intact(mbuf) && tail_intact(y) && tail_intact(du) &&
                       tail_intact(mt) && tail_intact(dw) && tail_intact(ud) && tail_intact(vd) && tail_intact(md) &&
                       tail_intact(dd) && tail_intact(dx);
        report(ok, "box kernels: no write past an output or the scratch", ok ? "" : "a buffer's tail was written");
    }
out:
    free(ry); free(ay); free(rw); free(aw); free(rd); free(ad); free(rx); free(ax);
    free(u.p); free(vbuf.p); free(mbuf.p); free(y.p); free(du.p); free(mt.p); free(dw.p);
    free(ud.p); free(vd.p); free(md.p); free(dd.p); free(dx.p);
}

/* x's element e as a double (d->x holds the kernels' type) */
static double x_at(const data *d, size_t e)
{
    return d->k->t.isf ? (double)((const float *)d->x)[e] : ((const double *)d->x)[e];
}

/* ecp_box_means against the means in the kernels' type, bit for bit (each one chain: the two
 * column pairs, then their sum, times the exact 1/4), over the padded layout or, unpadded, x's
 * own (the last row and column of each plane, sums across an edge, ignored; the run's last
 * W + 1 elements zeros); then ecp_box_adjoint of a random gradient of the means against the
 * scatter of its quarters in double, over the same layout (its unread row and column zeros). */
static void check_box_means(const data *d, const pkernels *pk)
{
    const geom *g = d->g;
    const kernels *k = d->k;
    const ptrdiff_t C = g->C, H = g->H, W = g->W, P = g->N * C, flat = g->ph == 0 && g->pw == 0;
    const ptrdiff_t H2 = H + 2 * g->ph - 1, W2 = W + 2 * g->pw - 1, Hs = flat ? H : H2, Ws = flat ? W : W2;
    const size_t ns = (size_t)(P * Hs * Ws);
    buf xs = balloc(ns, k->t), ds = balloc(ns, k->t), dx = balloc(d->nx, k->t);
    double *rx = calloc(d->nx, sizeof(double)), *ax = calloc(d->nx, sizeof(double));
    int exact = 1;
    GUARDED("box means", pk->box_means(d->x, P, H, W, g->ph, g->pw, xs.p), goto out);
    for (ptrdiff_t pl = 0; pl < P; pl++)
        for (ptrdiff_t a = 0; a < H2; a++)
            for (ptrdiff_t b = 0; b < W2; b++) {
                double t[2][2];
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++) {
                        const ptrdiff_t u = a - g->ph + i, v = b - g->pw + j;
                        t[i][j] = u >= 0 && u < H && v >= 0 && v < W ? x_at(d, (size_t)((pl * H + u) * W + v)) : 0;
                    }
                const size_t e = (size_t)((pl * Hs + a) * Ws + b);
                if (k->t.isf) {
                    const float want = (((float)t[0][0] + (float)t[0][1]) + ((float)t[1][0] + (float)t[1][1])) * 0.25f;
                    exact &= memcmp(&want, (const float *)xs.p + e, 4) == 0;
                } else {
                    const double want = ((t[0][0] + t[0][1]) + (t[1][0] + t[1][1])) * 0.25;
                    exact &= memcmp(&want, (const double *)xs.p + e, 8) == 0;
                }
            }
    if (flat)   /* the run's tail: zeros */
        for (size_t e = ns - (size_t)W - 1; e < ns; e++)
            exact &= k->t.isf ? ((const float *)xs.p)[e] == 0 : ((const double *)xs.p)[e] == 0;
    report(exact, "box means (bit for bit, the tail zeros)", exact ? "" : "a mean differs");
    /* the adjoint: a gradient of the means (the dy values reused), zeros off the means */
    for (size_t e = 0; e < ns; e++) {
        const ptrdiff_t b = (ptrdiff_t)(e % (size_t)Ws), a = (ptrdiff_t)(e / (size_t)Ws % (size_t)Hs);
        const double v = a < H2 && b < W2 ? d->dyd[e % d->ny] : 0;
        if (k->t.isf) ((float *)ds.p)[e] = (float)v;
        else ((double *)ds.p)[e] = v;
    }
    for (ptrdiff_t pl = 0; pl < P; pl++)
        for (ptrdiff_t a = 0; a < H2; a++)
            for (ptrdiff_t b = 0; b < W2; b++) {
                const size_t e = (size_t)((pl * Hs + a) * Ws + b);
                const double v = k->t.isf ? (double)((const float *)ds.p)[e] : ((const double *)ds.p)[e];
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++) {
                        const ptrdiff_t u = a - g->ph + i, q = b - g->pw + j;
                        if (u < 0 || u >= H || q < 0 || q >= W) continue;
                        rx[(pl * H + u) * W + q] += v / 4;
                        ax[(pl * H + u) * W + q] += fabs(v / 4);
                    }
            }
    GUARDED("box adjoint", pk->box_adjoint(ds.p, Hs, Ws, dx.p, P, H, W, g->ph, g->pw), goto out);
    close_enough("box adjoint (of the means' layout)", dx.p, NULL, rx, ax, d->nx, k->t, pk->tol);
    {
        const int ok = tail_intact(xs) && tail_intact(dx);
        report(ok, "box means and adjoint: no write past the output", ok ? "" : "a buffer's tail was written");
    }
out:
    free(rx); free(ax);
    free(xs.p); free(ds.p); free(dx.p);
}

/* Polyphase geometries (stride 2, 3x3; Easy Convolution's hq = (H + 2ph - 2) / 2 at offset oy,
 * likewise wq): odd and even planes (odd hq: a last tile row of one output row; odd wq: a last
 * tile column of one), paddings 0..2 (ph != pw too; ph - oy = -1 at padding 0, offset 1), N = 1,
 * C neither a multiple of 8 nor of the tile width, C = 200 past the products' L1 block (KC = 192
 * rows on AVX-512, 768 on NEON; a product has up to 4C rows), O not a multiple of 8, one tile per
 * plane, and a row of more than NR tiles (W = 137: 34 tiles). All four offsets with the first
 * padding, one in turn with the others. */
static const wshape POLY_SHAPES[] = {
    {"poly-odd", 3, 3, 13, 11, 5, {{0, 0}, {1, 1}, {2, 2}}, 0, 0},
    {"poly-N1", 1, 17, 9, 7, 11, {{1, 2}, {2, 1}, {0, 0}}, 0, 0},
    {"poly-even", 2, 6, 10, 12, 7, {{1, 0}, {0, 1}, {2, 0}}, 0, 0},
    {"poly-wide", 1, 3, 5, 137, 9, {{1, 1}, {0, 2}, {-1, -1}}, 0, 0},
    {"poly-deepC", 1, 200, 7, 6, 3, {{1, 1}, {-1, -1}}, 0, 0},
    {"poly-16", 2, 16, 8, 8, 16, {{1, 1}, {-1, -1}}, 0, 0},
    {"poly-tiny", 2, 1, 3, 3, 1, {{1, 1}, {2, 2}, {-1, -1}}, 0, 0},
};

static void run_poly_level(void)
{
    int variant = 0;
    for (size_t si = 0; si < sizeof POLY_SHAPES / sizeof POLY_SHAPES[0]; si++) {
        const wshape *sh = &POLY_SHAPES[si];
        const shape s = {sh->name, sh->N, sh->C, sh->H, sh->W, sh->O, 3, 3, {{0, 0}, {-1, -1}}};
        for (int pi = 0; pi < 3 && sh->pads[pi][0] >= 0; pi++)
            for (int m = 0; m < 4; m++) {
                if (pi > 0 && m != (int)((si + (size_t)pi) % 4)) continue;
                geom g;
                if (!geom_set(&g, &s, sh->pads[pi][0], sh->pads[pi][1], 2, m / 2, m % 2)) continue;
                for (int t = 0; t < 2; t++) {
                    const kernels *k = &KERNELS[t];
                    char gt[192];
                    geom_text(&g, gt, sizeof gt);
                    snprintf(ctx, sizeof ctx, "[%s %s %s]", level_name(level_now), k->name, gt);
                    data d = data_make(&g, k, variant++ % 2);
                    check_poly_weights(&d, &PKERNELS[t]);
                    if (level_now != ECP_ISA_GENERIC) {   /* (the items do nothing there) */
                        check_poly(&d, &PKERNELS[t]);
                        check_poly_dw(&d, &PKERNELS[t]);
                        check_poly_dx(&d, &PKERNELS[t]);
                        if (g.oy == 0 && g.ox == 0) {
                            check_polybox(&d, &PKERNELS[t]);
                            check_box_means(&d, &PKERNELS[t]);
                        }
                    }
                    data_free(&d);
                }
            }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Every check of one geometry at the level in use */
static void check_geometry(const geom *g, const kernels *k, int level, int guard_end)
{
    char gt[192];
    geom_text(g, gt, sizeof gt);
    snprintf(ctx, sizeof ctx, "[%s %s %s]", level_name(level), k->name, gt);
    data d = data_make(g, k, guard_end);
    check_packing(&d);
    check_im2col(&d, 0);
    check_col2im(&d);
    check_sum_planes(&d);
    if (g->s == 2) check_im2col(&d, 1);
    if (level != ECP_ISA_GENERIC) {   /* (the direct kernels do nothing at GENERIC) */
        check_forward(&d);
        check_backward(&d);
    }
    data_free(&d);
}

static void run_level(int level)
{
    int variant = 0;
    for (size_t si = 0; si < sizeof SHAPES / sizeof SHAPES[0]; si++) {
        const shape *sh = &SHAPES[si];
        for (int pi = 0; pi < 3 && sh->pads[pi][0] >= 0; pi++) {
            const ptrdiff_t ph = sh->pads[pi][0], pw = sh->pads[pi][1];
            geom g;
            for (int m = -1; m < 4; m++) {
                /* stride 1, then stride 2: all four offsets with the first padding, one (in turn)
                 * with the others */
                if (m >= 0 && pi > 0 && m != (int)((si + (size_t)pi) % 4)) continue;
                if (!geom_set(&g, sh, ph, pw, m < 0 ? 1 : 2, m < 0 ? 0 : m / 2, m < 0 ? 0 : m % 2)) continue;
                for (int t = 0; t < 2; t++) check_geometry(&g, &KERNELS[t], level, variant++ % 2);
            }
        }
    }
    snprintf(ctx, sizeof ctx, "[%s f32]", level_name(level));
    check_transpose();
    run_wino_level();
    run_poly_level();
}

/* ecp_isa_set / ecp_isa_get / ecp_direct_supported / ecp_direct_nr_* keep their contract */
static void check_isa_api(void)
{
    const int best = ecp_isa_best();
    char d[128];
    snprintf(ctx, sizeof ctx, "[isa api]");
    snprintf(d, sizeof d, "ecp_isa_get() %d, ecp_isa_best() %d", ecp_isa_get(), best);
    report(ecp_isa_get() == best, "the level in use starts at the best", d);
    report(ecp_isa_set(ECP_ISA_GENERIC) == ECP_ISA_GENERIC && ecp_isa_get() == ECP_ISA_GENERIC && !ecp_direct_supported(),
           "GENERIC is always accepted, and then ecp_direct_supported() is 0", "");
    for (int l = 1; l <= 3; l++) {
        const int before = ecp_isa_get(), got = ecp_isa_set(l);
        snprintf(d, sizeof d, "ecp_isa_set(%s) returned %d, level now %d", level_name(l), got, ecp_isa_get());
        char what[96];
        snprintf(what, sizeof what, "ecp_isa_set(%s) sets it or returns -1 changing nothing", level_name(l));
        report((got == l && ecp_isa_get() == l && ecp_direct_supported()) || (got == -1 && ecp_isa_get() == before), what, d);
    }
    report(ecp_isa_set(best) == best && ecp_isa_get() == best, "ecp_isa_set(best) restores it", "");
}

int main(int argc, char **argv)
{
    verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fault;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);

    const int best = ecp_isa_best();
#if defined(__aarch64__)
    const char *arch = "aarch64";
#elif defined(__x86_64__)
    const char *arch = "x86_64";
#else
    const char *arch = "other";
#endif
#ifdef __clang__
    const char *cc = "clang " __clang_version__;
#elif defined(__GNUC__)
    const char *cc = "gcc " __VERSION__;
#else
    const char *cc = "cc";
#endif
    printf("ecp C harness: %s, %s, best ISA level %s\n", arch, cc, level_name(best));
    check_isa_api();
    char levels[64] = "";
    int vector_levels = 0;
    for (int l = best; l >= ECP_ISA_GENERIC; l--) {
        if (ecp_isa_set(l) != l) continue;
        const long f0 = n_failed, p0 = n_passed;
        const clock_t t0 = clock();
        level_now = l;
        run_level(l);
        printf("level %s: %ld checks, %ld failed, %.1f s\n", level_name(l), n_passed - p0 + n_failed - f0,
               n_failed - f0, (double)(clock() - t0) / CLOCKS_PER_SEC);
        strcat(levels, " ");
        strcat(levels, level_name(l));
        vector_levels += l != ECP_ISA_GENERIC;
    }
    ecp_isa_set(best);
    printf("levels run:%s%s\n", levels,
           vector_levels ? "" : " (no vector level in this build: the portable entry points only)");
    printf("%ld passed, %ld failed\n", n_passed, n_failed);
    return n_failed > 0;
}
