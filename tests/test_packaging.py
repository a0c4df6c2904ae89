"""`pip install` of the project prints no setuptools warnings (issue 14, item 11): the license is an
SPDX expression, and setuptools reads pyproject.toml without a deprecation warning."""

import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_pyproject_reads_without_setuptools_warnings(monkeypatch):
    setuptools = pytest.importorskip("setuptools", minversion="77")  # the build-system's own floor
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    monkeypatch.chdir(ROOT)  # the readme and packages are found relative to the project
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), ROOT / "pyproject.toml")
    assert not [w for w in caught if issubclass(w.category, (setuptools.SetuptoolsDeprecationWarning, UserWarning))]
    assert dist.metadata.license_expression == "MIT"
    assert not [c for c in dist.metadata.classifiers or [] if c.startswith("License ::")]  # SPDX says it
