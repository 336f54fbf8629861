"""Rewrite the notebook table of README.md from lessons_lib.course (the notebooks on disk)."""
import re
from pathlib import Path

from lessons_lib import course

readme = Path(__file__).resolve().parent.parent / "README.md"
text = readme.read_text()
start = text.index("| notebook | topic | source documents |")
end = text.index("\n\n", start)
readme.write_text(text[:start] + course.readme_table() + text[end:])
print("README.md notebook table:", len(course.available()), "notebooks")
