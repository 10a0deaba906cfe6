# The scratch arena of the _conv extension (included by _conv.pyx): per Python thread, grown on
# demand, 64-byte aligned; released by clear_scratch().

import threading

_local = threading.local()


cdef class _Arena:
    """Bytes of scratch, 64-byte aligned (a cache line: the kernels' vector loads of panel rows
    then never straddle two lines), and the address of their start."""
    cdef object buf
    cdef char *data
    cdef Py_ssize_t size

    def __cinit__(self, Py_ssize_t size):
        self.buf = np.empty(size + 64, np.uint8)
        cdef unsigned char[::1] raw = self.buf
        cdef Py_ssize_t at = <Py_ssize_t> &raw[0]
        self.data = <char *> (at + (64 - at % 64) % 64)   # at > 0: right under C division too
        self.size = size


cdef char *_scratch(Py_ssize_t nbytes) except NULL:
    """The calling thread's scratch for one kernel call: nbytes, 64-byte aligned, cut by the caller
    into its buffers (``_carve``). It holds what the threads of a call share (the backward's dW
    slots and their db partials); each OpenMP thread's own buffers live in ``_thread_scratch``.
    Kept between calls and grown when too small, so that a steady run of calls allocates (and
    page-faults) nothing; one area per call rather than a buffer per use, so a call pays one
    lookup. Each Python thread has its own, so concurrent calls never share scratch."""
    cdef _Arena arena = getattr(_local, "arena", None)
    if arena is None or arena.size < nbytes:
        arena = _Arena(max(nbytes, 64))
        _local.arena = arena
    return arena.data


cdef char **_thread_scratch(Py_ssize_t nt, Py_ssize_t nbytes) except NULL:
    """The starts of nt areas of nbytes, one per OpenMP thread of a call (index threadid()), kept
    and grown as ``_scratch``. Thread t's buffers sit in area t whatever the call, so that they
    stay in the cache of the core that last ran thread t (the drivers deal items to threads
    statically, the same way in every call)."""
    cdef list arenas = getattr(_local, "thread_arenas", None)
    cdef _Arena table = getattr(_local, "thread_table", None)
    cdef _Arena arena
    cdef Py_ssize_t t
    if arenas is None:
        arenas = []
        _local.thread_arenas = arenas
    if table is None or table.size < nt * <Py_ssize_t> sizeof(char *):
        table = _Arena(max(nt, 8) * sizeof(char *))
        _local.thread_table = table
    cdef char **starts = <char **> table.data
    for t in range(nt):
        if t == len(arenas):
            arenas.append(None)
        arena = arenas[t]
        if arena is None or arena.size < nbytes:
            arena = _Arena(max(nbytes, 64))
            arenas[t] = arena
        starts[t] = arena.data
    return starts


cdef inline Py_ssize_t _carve(Py_ssize_t *used, Py_ssize_t nbytes) noexcept:
    """Offset of the next nbytes of a call's scratch (whole cache lines: every buffer starts
    64-byte aligned); advances *used."""
    cdef Py_ssize_t at = used[0]
    used[0] = at + (nbytes + 63) // 64 * 64
    return at


cdef inline Py_ssize_t _row(Py_ssize_t n, Py_ssize_t sz) noexcept:
    """n elements of sz bytes rounded up to whole cache lines: a row of a per-thread buffer, so
    that no two threads write to one line."""
    return (n * sz + 63) // 64 * 64 // sz


def clear_scratch():
    """Release the calling thread's cached kernel scratch (ecp.conv.clear_scratch)."""
    _local.arena = None
    _local.thread_arenas = None
    _local.thread_table = None
