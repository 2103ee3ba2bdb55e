"""``python -m fromax``: print the configuration (see :func:`fromax.show_config`)."""

from fromax._config import show_config

show_config()
