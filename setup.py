"""The import name is ``fraudrules``; the product card fixes the source folder ``engine/``.

setuptools maps one to the other here (setup.cfg has no way to list a mapped tree's
subpackages without naming each one), so nothing named ``engine`` or ``cli`` lands
in site-packages.
"""

from setuptools import find_packages, setup

SUBPACKAGES = find_packages("engine")

setup(
    package_dir={"fraudrules": "engine"},
    packages=["fraudrules"] + [f"fraudrules.{name}" for name in SUBPACKAGES],
)
