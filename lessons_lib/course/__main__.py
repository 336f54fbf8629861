"""``python -m lessons_lib.course run [--fast] [--force]``: execute every notebook headless."""
import sys

from .runner import main

sys.exit(main(sys.argv[1:]))
