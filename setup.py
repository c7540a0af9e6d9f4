"""Build of the one compiled module: the streaming Squid log scanner of the users' history.

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
        )
    ]
)
