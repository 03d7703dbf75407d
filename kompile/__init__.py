"""kompile: a GitOps configuration compiler for Django on Kubernetes.

The public API is small: compile a repo in memory, write it safely, compare it with what is on disk.
"""

__version__ = "0.5.0"

__all__ = ["__version__"]
