# Put first on PYTHONPATH by `make test` / `make run` / the notebook tests, so that every Python
# process they start (Jupyter kernels included) refuses network connections outside loopback.
# The module is loaded by file path so that starting a process does not import torch.
import importlib.util as _u
import pathlib as _p
import sys as _s

_file = _p.Path(__file__).resolve().parents[2] / "lessons_lib" / "netguard.py"
if _file.exists():
    _spec = _u.spec_from_file_location("lessons_lib.netguard", _file)
    _mod = _u.module_from_spec(_spec)
    _spec.loader.exec_module(_mod)
    _s.modules.setdefault("_lessons_netguard", _mod)
    _mod.install()
