"""pytest settings for tests/idp: pysaml2 and its dependencies raise DeprecationWarnings on
Python 3.11 that say nothing about this code."""


def pytest_configure(config):
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning")
