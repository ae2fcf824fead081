"""The package's layout: everything is declared in pyproject.toml except where the sources of
four subpackages live. The suite, the load tests, the example plans and the manifests stay at
the repository's top level (where DESIGN.md puts them and users of a checkout look for them)
and are installed inside the package, so an installed ``chaos`` carries everything it needs:
``pytest --pyargs chaos.experiments``, ``importlib.resources`` for locustfiles and shapes,
``chaos init`` for the plans and manifests."""

from setuptools import find_packages, setup

MAPPED = {
    "chaos.experiments": "experiments",
    "chaos.loadtests": "loadtests",
    "chaos.loadtests.shapes": "loadtests/shapes",
    "chaos.plans": "plans",
    "chaos.deploy": "deploy",
}

setup(
    packages=[*find_packages(include=["chaos", "chaos.*"]), *MAPPED],
    package_dir=MAPPED,
    package_data={
        "chaos": ["py.typed", "scaffold/*.tmpl", "scaffold/*/*.tmpl", "scaffold/.github/workflows/*.tmpl"],
        "chaos.plans": ["*.yaml"],
        "chaos.deploy": ["*.yaml"],
    },
)
