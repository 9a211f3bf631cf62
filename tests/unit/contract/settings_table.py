"""Print the README settings table from `shared.settings.Settings`.

Run ``.venv/bin/python -m tests.unit.contract.settings_table`` after adding a setting and paste
the output into the docs, so the table always matches the model.
"""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_core import PydanticUndefined

from shared.settings import REPO_ROOT, Settings


def _default(value: object) -> str:
    if value is None or value is PydanticUndefined:
        return "unset"
    if isinstance(value, SecretStr):
        return "(secret)"
    text = str(value).replace(str(REPO_ROOT), "<repo>")
    return f"`{text}`"


def settings_table() -> str:
    """The Markdown table: env var, default, meaning; one row per field, in model order."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        meaning = (field.description or "").replace("|", "\\|")
        meaning = meaning.replace("<", "&lt;").replace(">", "&gt;")
        rows.append(f"| `RUNBUS_{name.upper()}` | {_default(field.default)} | {meaning} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(settings_table())
