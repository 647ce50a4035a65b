"""The installed version of larkops: read without importing the app, so `larkops --version`
answers at once."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    try:
        return version("larkops")
    except PackageNotFoundError:
        return "0+unknown"
