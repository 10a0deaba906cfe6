"""Build the ecp Cython kernels.

Build switches (environment variables read at build time):

``ECP_USE_OPENMP``   ``1`` (default) probes the compiler for OpenMP and uses it when it works;
                     ``0`` builds without it. A fallback is announced loudly, and at run time
                     ``ecp.openmp_enabled()`` says which build you have.
``ECP_CYTHON_DEBUG`` ``1`` turns Cython's bounds, wraparound and initialisation checks back on
                     (for one test run in CI; slow).
``ECP_MARCH_NATIVE`` ``1`` adds ``-march=native`` (a faster build for this machine only; never
                     for wheels you distribute).

All compiler directives live here, in one place.
"""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup


def _flag(name, default):
    value = os.environ.get(name, default).strip().lower()
    return value not in ("0", "false", "no", "off", "")


def _openmp_works(cc_flags):
    """Compile and link a tiny OpenMP program with the compiler the build will use: $CC when set
    (setuptools compiles with it too), else the one Python was built with."""
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    src = textwrap.dedent(
        """
        #include <omp.h>
        int main(void) {
            int n = 0;
            #pragma omp parallel reduction(+:n)
            n += 1;
            return n > 0 ? 0 : 1;
        }
        """
    )
    tmp = tempfile.mkdtemp()
    try:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as fh:
            fh.write(src)
        cmd = cc + cc_flags + [path, "-o", os.path.join(tmp, "probe")]
        res = subprocess.run(cmd, capture_output=True, text=True)
        return res.returncode == 0
    except OSError:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


use_openmp = _flag("ECP_USE_OPENMP", "1")
debug = _flag("ECP_CYTHON_DEBUG", "0")
native = _flag("ECP_MARCH_NATIVE", "0")

msvc = os.name == "nt"  # MSVC spells the flags differently and has no probe-able CC
# -fno-math-errno: no kernel reads errno, and without it GCC will not vectorise sqrt (Adam's step)
compile_args = ["/O2"] if msvc else ["-O3", "-fno-math-errno"]
if native and not msvc:
    compile_args.append("-march=native")
link_args = []
if use_openmp and msvc:
    compile_args.append("/openmp")
elif use_openmp:
    if _openmp_works(["-fopenmp"]):
        compile_args.append("-fopenmp")
        link_args.append("-fopenmp")
    else:
        use_openmp = False
        bar = "*" * 78
        sys.stderr.write(
            f"\n{bar}\n* ecp: OpenMP was requested but the compiler cannot build an OpenMP program.\n"
            "* The kernels will run on ONE thread. Install an OpenMP runtime (libgomp /\n"
            "* libomp) and reinstall, or set ECP_USE_OPENMP=0 to silence this warning.\n"
            f"{bar}\n\n"
        )

directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": debug,
    "initializedcheck": debug,
    "nonecheck": debug,
    "cdivision": not debug,
    "embedsignature": True,
}

macros = [("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")]
if debug:
    macros.append(("ECP_CYTHON_DEBUG", "1"))  # ecp._kernels._openmp.bounds_checked() reports it


# The C headers every extension may include: listed as dependencies, so that editing one rebuilds
# the extensions (Cython itself tracks the .pxd / .pxi pieces a .pyx cimports or includes).
HEADERS = sorted(glob.glob("src/ecp/_kernels/*.h"))


def ext(name):
    return Extension(
        f"ecp._kernels.{name}",
        [f"src/ecp/_kernels/{name}.pyx"],
        include_dirs=[np.get_include(), "src/ecp/_kernels"],
        depends=HEADERS,
        define_macros=macros,
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )


# One extension per compiled module. _conv.pyx is built from the pieces it includes (_scratch.pxi,
# _im2col_items.pxi, _reductions.pxi, _drivers.pxi, _plans.pxi) and the declarations it cimports
# (_conv.pxd, _c_kernels.pxd, _blas.pxd).
EXTENSIONS = ("_blas", "_openmp", "_conv", "_pool", "_activation", "_optim")

setup(
    ext_modules=cythonize(
        [ext(n) for n in EXTENSIONS],
        compiler_directives=directives,
        force=debug,  # directives are not in Cython's up-to-date check: regenerate the C
        compile_time_env={},
    ),
)
