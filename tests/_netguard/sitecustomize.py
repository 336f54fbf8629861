# Put first on PYTHONPATH by `make test` / `make run` / the notebook tests, so that every Python
# process they start (Jupyter kernels included) refuses network connections outside loopback.
# `lessons_lib.netguard` is torch-free and the package imports nothing eagerly, so this import is cheap;
# the test process imports the same module object (install() is idempotent), nothing is installed twice.
try:
    from lessons_lib import netguard as _netguard
except ImportError:  # lessons_lib not installed in this interpreter: nothing to guard with
    pass
else:
    _netguard.install()
