"""``python -m services.cli ...`` is the ``runbus`` command line, without the console script.

The supervisor of ``runbus run all`` starts its children this way, so it works wherever the
interpreter does.
"""

from services.cli.main import app

app(prog_name="runbus")
