"""The settings every fuzz property runs under (the example count comes from the profile).

The profiles are tests/conftest.py's: "ci" (the default: the same examples every run, no
example database), "thorough" (HYPOTHESIS_PROFILE=thorough: 10,000 per property, by hand).
No deadline: an example that crosses a loaded machine's scheduler is slow, not wrong; and
hostile inputs are large and slow to build by design.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

__all__ = ["fuzz"]

fuzz = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
