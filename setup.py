"""Build of the compiled modules: the streaming Squid log scanner of the users' history, and the fast
way of reading YAML (libyaml's events made into plain values, :mod:`akm.yamlsource`).

Everything else is in pyproject.toml; setuptools reads ``ext_modules`` only from here.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "akm.report._squidscan",
            sources=["scripts/akm/report/_squidscan.c"],
            extra_compile_args=["-std=c11", "-pthread", "-Wall", "-Wextra"],
            extra_link_args=["-pthread"],
        ),
        Extension(
            "akm._yamlplain",
            sources=["scripts/akm/_yamlplain.c"],
            libraries=["yaml"],
            extra_compile_args=["-std=c11", "-Wall", "-Wextra"],
        ),
    ]
)
