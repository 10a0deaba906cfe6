"""The experiment tools behind the ``ecp`` command: bench, train, reproduce, data.

They use ecp's public API (:mod:`ecp`, :mod:`ecp.nn`) like any other caller; nothing in the
library imports them. One module a job:

- :mod:`.bench` (a subpackage): ``ecp bench``, the kernels timed against SGEMM and PyTorch;
- :mod:`.train` the training loop and :class:`~.train.TrainConfig`; :mod:`.train_cli` ``ecp train``;
- :mod:`.reproduce`: ``ecp reproduce``, the paper's Tables 3-6 and Figures 5-10;
- :mod:`.data` reading and loading MNIST; :mod:`.download` ``ecp data download`` (pooch);
- :mod:`.cli`: the ``ecp`` entry point.

Shared helpers, one each: :mod:`._progress` (tqdm bars, terminal only), :mod:`._files` (atomic
writes, strict JSON, output-path checks), :mod:`._args` (argparse number types),
:mod:`._machine` (CPU, ISA, BLAS, commit) and :mod:`._results_md` (the sections of
``docs/results.md``).
"""
