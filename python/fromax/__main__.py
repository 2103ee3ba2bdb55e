"""``python -m fromax``: print the configuration (see :func:`fromax.show_config`).

``python -m fromax --check`` also runs the self-check (``fromax._selfcheck``): the compiled
kernels run a few optimizers' steps and match the pure-JAX reference; exits 1 if not.
"""

import argparse
import sys

from fromax._config import show_config

parser = argparse.ArgumentParser(prog="python -m fromax", description=__doc__.splitlines()[0])
parser.add_argument("--check", action="store_true",
                    help="also run the kernels against the reference (exit status 1 on a failure)")
args = parser.parse_args()
show_config()
if args.check:
    from fromax._selfcheck import check

    sys.exit(0 if check() else 1)
