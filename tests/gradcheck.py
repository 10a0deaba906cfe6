"""Central differences, shared by the gradient checks of test_conv, test_pool and test_nn: the
public :func:`ecp.testing.numerical_grad` (kept here so that the tests' imports read as before)."""
from ecp.testing import numerical_grad

__all__ = ["numerical_grad"]
