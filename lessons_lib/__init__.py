"""lessons_lib: the code behind the CNN compression and acceleration workbook.

One module per concept family; notebooks import these functions and show their source with
:func:`lessons_lib.source.show_source`. Users' scripts reuse the same functions.
"""
__version__ = "0.1.0"

from .source import show_source  # noqa: E402  (re-exported: every lesson uses it)
from .train import seed_everything  # noqa: E402

__all__ = ["show_source", "seed_everything", "__version__"]
